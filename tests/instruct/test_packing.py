"""Packing: best-fit-decreasing bins, and a packed batch whose loss and gradients equal the same
examples unpacked, under each attention implementation, with weights whose attention mixes positions.

At random initialisation a tiny model's attention is nearly uniform and its loss barely depends on
which positions a token sees, so a wrong mask passes a loss comparison there. The weights here are
perturbed until it does depend (each test shows that a wrong mask moves the loss far past the
tolerance), and the comparison covers the gradients too.
"""
import pytest
import torch

import llmnb
from llmnb.instruct import chat
from llmnb.instruct.packing import best_fit_decreasing, block_causal_mask, packed_forward, padding_share
from llmnb.tasks.sft import SFT

TOLERANCE = 1e-5  # fp32: the two layouts sum the same terms in another order
QUESTIONS = ["Who had the ball?", "Mia had a red ball in the park. Her dog ran after it. What colour was it?",
             "Where?", "Tom played with a blue kite by the river. Who came too?", "Was it red?"]
ANSWERS = ["Mia.", "Red.", "In the park.", "Ben.", "No."]


def test_best_fit_decreasing_fills_bins_and_keeps_every_example_once():
    lengths = [30, 70, 20, 50, 90, 10, 60]
    bins = best_fit_decreasing(lengths, capacity=100)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 100 for b in bins)
    assert len(bins) == 4  # 330 tokens: 4 bins of 100 is the least possible
    assert best_fit_decreasing([120], capacity=100) == [[0]]  # longer than a row: a row of its own


def test_the_mask_is_additive_block_diagonal_and_causal():
    segments = torch.tensor([[1, 1, 2, 2, 2, 0]])
    mask = block_causal_mask(segments, torch.float32)[0, 0]
    allowed = mask == 0
    assert mask.dtype == torch.float32 and set(mask.unique().tolist()) == {0.0, torch.finfo(torch.float32).min}
    assert allowed[1, 0] and not allowed[0, 1]  # causal inside example 1
    assert not allowed[2, 1] and allowed[4, 2]  # example 2 does not see example 1
    assert allowed.any(-1).all()  # padding sees itself: no empty row, no NaN
    assert block_causal_mask(segments, torch.bfloat16).dtype == torch.bfloat16


def test_padding_share_falls_with_packing():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(8, 64) for _ in range(64)]
    batches = [list(range(64))]
    assert padding_share(lengths, batches, None) > 0.3
    assert padding_share(lengths, batches, 128) < 0.05  # only the last row is part empty


def sharp_model(alias, attention, device="cpu", dtype=torch.float32):
    """A tiny model whose attention mixes positions (weights perturbed), in eval mode (no dropout)."""
    loaded = llmnb.load_model(alias, task="sft", seed=0)
    model, tokenizer = loaded.model.to(device, dtype).eval(), loaded.tokenizer
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:  # matrices: sharper query-key products; norms and biases stay
                p.add_(0.5 * torch.randn(p.shape, generator=generator).to(device, dtype))
    model.set_attn_implementation(attention)
    chat.ensure_chat_template(tokenizer)
    return model, tokenizer


def loss_and_grads(model, task, batch):
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    loss = task.compute_loss(model, {k: v.to(device) for k, v in batch.items()})
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])


def compare_layouts(alias, attention, device="cpu", dtype=torch.float32):
    """(unpacked loss, packed loss, plain-causal packed loss, unpacked grads, packed grads)."""
    model, tokenizer = sharp_model(alias, attention, device, dtype)
    rows = [chat.to_conversation({"prompt": q, "completion": a}) for q, a in zip(QUESTIONS, ANSWERS)]
    task = SFT()
    enc = task.encode(tokenizer, rows, [{"row": i, "reference": "", "what": "data"} for i in range(5)], 128)
    order, pad = list(range(5)), tokenizer.pad_token_id
    unpacked, unpacked_grads = loss_and_grads(model, task, task.collate(enc, order, pad))
    packed_batch = task.collate(enc, order, pad, packed=True)
    assert len(packed_batch["input_ids"]) < 5  # several examples share a row
    packed, packed_grads = loss_and_grads(model, task, packed_batch)
    with torch.no_grad():  # the wrong mask: plain causal over the packed row, examples see their neighbours
        wrong = {k: v.to(device) for k, v in packed_batch.items() if k != "segment_ids"}
        plain_causal = float(model(**wrong).loss)
    return unpacked, packed, plain_causal, unpacked_grads, packed_grads


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("alias", ["tiny-gpt2", "tiny-llama"])
def test_packed_loss_and_gradients_equal_unpacked(alias, attention):
    unpacked, packed, plain_causal, unpacked_grads, packed_grads = compare_layouts(alias, attention)
    # The test has power: these weights attend across positions, so a wrong mask moves the loss far
    # past the tolerance (by 0.3 or more; the boolean mask under eager moved it by 0.24 and 0.41).
    assert abs(plain_causal - unpacked) > 1000 * TOLERANCE * abs(unpacked)
    assert packed == pytest.approx(unpacked, rel=TOLERANCE)
    torch.testing.assert_close(packed_grads, unpacked_grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("alias", ["tiny-gpt2", "tiny-llama"])
def test_packed_equals_unpacked_under_flash_attention_varlen(alias):
    pytest.importorskip("flash_attn", reason="flash-attn is not installed: its variable-length path cannot run here")
    if not torch.cuda.is_available():
        pytest.skip("flash attention needs a CUDA GPU")
    # bf16 (flash attention takes no fp32): the two layouts agree to bf16's precision, not fp32's.
    unpacked, packed, plain_causal, unpacked_grads, packed_grads = compare_layouts(alias, "flash_attention_2", "cuda", torch.bfloat16)
    assert abs(plain_causal - unpacked) > 0.05
    assert packed == pytest.approx(unpacked, rel=1e-2)
    torch.testing.assert_close(packed_grads, unpacked_grads, rtol=5e-2, atol=5e-3)


def test_packed_forward_gives_flash_attention_no_mask():
    class Config:
        _attn_implementation = "flash_attention_2"

    class Recorder(torch.nn.Module):
        config = Config()

        def forward(self, **inputs):
            return inputs

    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "position_ids": torch.tensor([[0, 1, 0, 1]]),
             "segment_ids": torch.tensor([[1, 1, 2, 2]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    assert set(packed_forward(Recorder(), batch)) == {"input_ids", "position_ids"}  # boundaries from the positions


class FakeModel:
    """Just what choose_packing reads: the attention implementation."""

    def __init__(self, attention):
        self.config = type("Config", (), {"_attn_implementation": attention})()


def test_choose_packing_follows_the_setting_and_packs_on_auto_only_where_it_pays():
    from llmnb.instruct.packing import choose_packing

    even = [40] * 64  # length-grouped batches of equal lengths: no padding to save
    mixed = [8, 120] * 32  # every batch padded to 120: most positions are padding
    batches = [list(range(s, s + 16)) for s in range(0, 64, 16)]
    assert choose_packing(True, FakeModel("sdpa"), even, batches, 128, "cpu")[0] is True
    assert choose_packing(False, FakeModel("flash_attention_2"), mixed, batches, 128, "cpu")[0] is False
    packed, why = choose_packing("auto", FakeModel("flash_attention_2"), even, batches, 128, "cpu")
    assert packed and "flash_attention_2" in why  # no mask to pay for
    for attention in ("sdpa", "eager"):
        packed, why = choose_packing("auto", FakeModel(attention), even, batches, 128, "cpu")
        assert not packed and "padding 0% of positions padded" in why and attention in why
        packed, why = choose_packing("auto", FakeModel(attention), mixed, batches, 128, "cpu")
        assert packed and "padding 47% of positions padded" in why


def test_packing_option_takes_auto_true_false_and_the_magics_words():
    from llmnb.errors import ConfigError
    from llmnb.finetuning.config import FineTuneConfig

    assert FineTuneConfig(task="sft").packing == "auto"
    assert FineTuneConfig(task="sft", packing="false").packing is False  # %finetune --packing false
    assert FineTuneConfig(task="sft", packing="On").packing is True
    assert FineTuneConfig(task="sft", packing=False).packing is False
    with pytest.raises(ConfigError, match="packing='sometimes' is not allowed; choose auto"):
        FineTuneConfig(task="sft", packing="sometimes")
    with pytest.raises(ConfigError, match="packing=1"):
        FineTuneConfig(task="sft", packing=1)
