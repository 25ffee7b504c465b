"""llmnb.explain: attention maps and gradient x input saliency (tiny BERT; one test on MiniLM)."""
import numpy as np
import pytest
import torch

import llmnb
from llmnb.tools.interpret import ExplainError, Explanation, explain

TEXT = "the staff were wonderful but the room was awful"


@pytest.fixture(scope="module")
def tiny():
    return llmnb.load_model("tiny-bert", num_labels=2, id2label={0: "negative", 1: "positive"}, device="cpu")


def eager_attentions(lm, text):
    """Attention weights computed directly, with the eager kernel, for comparison."""
    batch = lm.tokenizer([text], return_tensors="pt")
    lm.model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return [a[0] for a in lm.model.eval()(**batch, output_attentions=True).attentions]
    finally:
        lm.model.set_attn_implementation("sdpa")


def test_attention_is_the_chosen_layer_and_head(tiny):
    expected = eager_attentions(tiny, TEXT)
    ex = explain(tiny, TEXT)
    assert isinstance(ex, Explanation)
    assert ex.tokens == tiny.tokenizer.convert_ids_to_tokens(tiny.tokenizer(TEXT)["input_ids"])
    n = len(ex.tokens)
    assert ex.attention.shape == (n, n) and ex.layer == 1 and ex.num_layers == 2 and ex.num_heads == 2
    np.testing.assert_allclose(ex.attention, expected[-1].mean(0).numpy(), atol=1e-5)  # default: last layer, mean of heads
    np.testing.assert_allclose(ex.attention.sum(-1), 1.0, atol=1e-5)  # softmax rows
    one = explain(tiny, TEXT, layer=0, head=1)
    np.testing.assert_allclose(one.attention, expected[0][1].numpy(), atol=1e-5)
    assert one.layer == 0 and one.head == 1 and "head 1" in repr(one)


def test_saliency_is_gradient_times_input_for_the_class(tiny):
    model, tok = tiny
    batch = tok([TEXT], return_tensors="pt")
    model.eval()
    out = model(**batch, output_hidden_states=True)
    logits, start = out.logits[0], out.hidden_states[0]  # start: the embedding layer's output
    words = [i for i, t in enumerate(tok.convert_ids_to_tokens(batch["input_ids"][0])) if t not in ("[CLS]", "[SEP]")]
    for target in (0, 1):
        (grad,) = torch.autograd.grad(logits[target], start, retain_graph=True)
        raw = (grad * start).sum(-1)[0].detach()
        expected = (raw / raw[words].abs().max()).clamp(-1, 1).numpy()
        ex = explain(tiny, TEXT, target=["negative", "positive"][target])
        assert ex.label == ["negative", "positive"][target]
        np.testing.assert_allclose(ex.saliency, expected, atol=1e-4)
        assert max(abs(ex.saliency[i]) for i in words) == pytest.approx(1.0)
    predicted = ["negative", "positive"][int(logits.argmax())]
    ex = explain(tiny, TEXT)
    assert ex.label == predicted and set(ex.scores) == {"negative", "positive"}
    assert sum(ex.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(token not in ("[CLS]", "[SEP]") for token, _ in ex.top_tokens(20))


def test_before_the_layernorm_the_product_says_nothing_about_the_word(tiny):
    """Why saliency is taken after the embedding LayerNorm: before it, gradient x word embedding
    is exactly minus gradient x (position + segment embedding), whatever the word."""
    model, tok = tiny
    batch = tok([TEXT], return_tensors="pt")
    model.eval()
    emb = model.bert.embeddings
    word = emb.word_embeddings(batch["input_ids"]).detach().requires_grad_(True)
    rest = (emb.position_embeddings.weight[: word.shape[1]] + emb.token_type_embeddings.weight[0]).detach()
    logits = model(inputs_embeds=word, attention_mask=batch["attention_mask"]).logits[0]
    (grad,) = torch.autograd.grad(logits[1], word)
    np.testing.assert_allclose((grad * word).sum(-1)[0].detach(), -(grad[0] * rest).sum(-1), atol=1e-5)


def test_explain_leaves_the_model_as_it_was(tiny):
    model = tiny.model
    model.train()
    explain(tiny, TEXT)
    assert model.training and model.config._attn_implementation == "sdpa"
    assert all(p.grad is None for p in model.parameters())


def test_mistakes_name_the_fix(tiny):
    with pytest.raises(ExplainError, match="2 layers"):
        explain(tiny, TEXT, layer=2)
    with pytest.raises(ExplainError, match="2 heads"):
        explain(tiny, TEXT, head=5)
    with pytest.raises(ExplainError, match="non-empty text"):
        explain(tiny, "   ")
    with pytest.raises(ExplainError, match="negative, positive"):
        explain(tiny, TEXT, target="neutral")
    with pytest.raises(ExplainError, match="FineTuneResult"):
        explain("tiny-bert", TEXT)


def test_minilm_renders_tokens_heatmap_and_figure():
    lm = llmnb.load_model("minilm", device="cpu")
    ex = explain(lm, "The battery died on day two.")
    assert ex.num_layers == 6 and ex.num_heads == 12 and ex.saliency is not None
    page = ex._repr_html_()
    assert page.count("<span") == len(ex.tokens) and "data:image/png;base64," in page
    assert "rgba(" in page and "color:inherit" in page  # translucent colours on the theme's background
    fig = ex.plot()
    assert type(fig).__name__ == "Figure" and len(fig.axes) >= 2
    assert ex.png().startswith(b"\x89PNG")
