"""The plain-torch GPT (llmnb/pretraining/plain_gpt.py) computes what GPT2LMHeadModel computes: the same
logits on weights a real run trained, the same logits with a KV cache as without, and the same
top-k / top-p filtering as transformers' samplers."""
import pytest
import torch

import llmnb
from llmnb.errors import ConfigError
from llmnb.pretraining.plain_gpt import PlainGPT, causal_attention, filter_logits


@pytest.fixture(scope="module")
def trained():
    """A tiny GPT after 20 optimizer steps from `llmnb.pretrain`: its weights are no longer the seeded init."""
    gpt = llmnb.pretrain(corpus_chars=20_000, vocab_size=300, width=32, heads=4, layers=2, block_size=32,
                         max_steps=20, eval_every=20, quiet=True)
    gpt.model.eval()
    return gpt


def ids_of(gpt, text, n=None):
    ids = gpt.tokenizer(text)["input_ids"]
    return torch.tensor([ids[:n] if n else ids])


def test_logits_match_gpt2_on_trained_weights(trained):
    from llmnb.pretraining.model import build_model

    untrained = build_model(trained.tokenizer, trained.config)
    moved = max((a - b).abs().max().item() for a, b in zip(trained.model.state_dict().values(), untrained.state_dict().values()))
    assert moved > 1e-2  # training changed the weights: the check below is not one of a random init
    plain = PlainGPT.from_transformers(trained.model)
    x = torch.cat([ids_of(trained, "Once upon a time, there was a little cat named Tom. Tom liked to", 20)] * 2)
    x[1, 5:] = x[1, 5:].flip(0)  # a second, different row in the batch
    with torch.no_grad():
        want = trained.model(input_ids=x).logits
        got, _ = plain(x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-5


def test_the_cache_gives_the_logits_of_a_full_recompute(trained):
    plain = PlainGPT.from_transformers(trained.model)
    x = ids_of(trained, "One day, Tom went to the park and saw a big dog. The dog", 16)
    with torch.no_grad():
        full, _ = plain(x)
        logits, cache = plain(x[:, :6])
        steps = [logits]
        for t in range(6, x.shape[1]):
            logits, cache = plain(x[:, t:t + 1], cache)
            steps.append(logits)
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-5
    assert cache[0][0].shape[-2] == x.shape[1]  # one key per token seen
    with_cache = plain.generate(x[:, :4], 10, temperature=0)
    without = plain.generate(x[:, :4], 10, temperature=0, use_cache=False)
    assert torch.equal(with_cache, without) and with_cache.shape == (1, 14)


def test_greedy_generation_matches_transformers(trained):
    plain = PlainGPT.from_transformers(trained.model)
    x = ids_of(trained, "Once upon a time", 4)
    eos = trained.tokenizer.eos_token_id
    theirs = trained.model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=8,
                                    min_new_tokens=8, pad_token_id=eos)
    assert torch.equal(plain.generate(x, 8, temperature=0), theirs)


def test_causal_attention_sees_no_future_and_scales_by_sqrt_dk():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8).unbind(0)
    out = causal_attention(q, k, v)
    changed = v.clone()
    changed[..., 3:, :] += 1  # change the values of positions 3 and 4
    assert torch.equal(causal_attention(q, k, changed)[..., :3, :], out[..., :3, :])
    assert torch.allclose(out[..., 0, :], v[..., 0, :])  # the first position sees only itself
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(out, want, atol=1e-6)
    unscaled = causal_attention(q / 8 ** 0.5, k, v, scale=False)  # dividing q by sqrt(d_k) is the same
    assert torch.allclose(unscaled, out, atol=1e-5)
    # with a cache, the one query of the last position sees every key
    assert torch.allclose(causal_attention(q[..., -1:, :], k, v), out[..., -1:, :], atol=1e-6)


def test_filters_match_transformers_samplers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(1)
    logits = torch.randn(6, 50) * 3
    for temperature, k, p in [(1.0, 5, None), (0.7, None, 0.9), (1.3, 20, 0.5), (0.5, None, 0.99)]:
        theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if k:
            theirs = TopKLogitsWarper(k)(None, theirs)
        if p:
            theirs = TopPLogitsWarper(p)(None, theirs)
        mine = filter_logits(logits, temperature, k, p)
        assert torch.equal(mine == float("-inf"), theirs == float("-inf")), (temperature, k, p)
        kept = mine > float("-inf")
        assert torch.allclose(mine[kept], theirs[kept])


def test_bad_inputs_say_what_is_wrong(trained):
    with pytest.raises(ConfigError, match="multiple of heads"):
        PlainGPT(10, 8, 10, 1, 3)
    with pytest.raises(ConfigError, match="temperature"):
        filter_logits(torch.zeros(3), -1)
    plain = PlainGPT.from_transformers(trained.model)
    with pytest.raises(ConfigError, match="context"):
        plain(torch.zeros(1, plain.context + 1, dtype=torch.long))
