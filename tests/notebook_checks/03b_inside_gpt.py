"""03b_inside_gpt: the hand-written pieces equal the libraries' and the measurements say what the text says.
The BPE merges are compared with merges this test trains itself with `tokenizers`; the power law is refitted
here from the sweep's own rows. Its "your turn" exercises pass with their solutions in place."""
import json
import math

import numpy as np

from notebook_checks import assert_exercises_correct, printed

VALUES = {
    "bpe": "{'chars': BPE_CHARS, 'seed': SEED, 'merges': [list(m) for m in hand_merges]}",
    "merges_matched": "merges_matched",
    "pre_tokenizer_same": "same",
    "logit_difference": "logit_difference",
    "kv": "{'speedup': kv_speedup, 'same': bool(torch.equal(cached_out, full_out)), 'tokens': GEN_TOKENS}",
    "saturation": "{f'{d}-{s}': float(saturation.loc[d, ('max weight', s)]) for d in saturation.index for s in (True, False)}",
    "entropy": "{f'{d}-{s}': float(saturation.loc[d, ('entropy (nats)', s)]) for d in saturation.index for s in (True, False)}",
    "real_saturation": "{'scaled': real[True], 'unscaled': real[False]}",
    "samples_same": "samples['same tokens'].tolist()",
    "lab": "lab.to_dict()",
    "sweep": "sweep.reset_index().to_dict('list')",
    "exponent": "float(exponent)",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('03b.'))",
}


def library_merges(chars, seed, n):
    """The first merges of `tokenizers`' BPE trainer (through llmnb.train_tokenizer) on the same stories."""
    from llmnb import build_corpus, train_tokenizer

    tokenizer = train_tokenizer(build_corpus(chars, seed=seed), vocab_size=257 + n)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    return [m.split(" ") if isinstance(m, str) else list(m) for m in merges]


def check(nb, workdir, values):
    v = values
    # BPE: the hand-written loop learned at least 200 merges, all equal, in order, to the library's.
    bpe = v["bpe"]
    assert v["pre_tokenizer_same"] is True
    assert len(bpe["merges"]) >= 200, len(bpe["merges"])
    assert bpe["merges"] == library_merges(bpe["chars"], bpe["seed"], len(bpe["merges"])), "hand merges differ from tokenizers'"
    assert v["merges_matched"] == len(bpe["merges"]), v["merges_matched"]

    # The plain-torch GPT gives GPT2LMHeadModel's logits (fp32, eval mode).
    assert v["logit_difference"] < 1e-5, v["logit_difference"]

    # The KV cache: the same greedy tokens, faster than recomputing.
    assert v["kv"]["same"] and v["kv"]["speedup"] > 1, v["kv"]

    # sqrt(d_k): without the scale the rows saturate more at every width above 1, and more as d_k grows;
    # with it the largest weight stays about the same at every width.
    s, e = v["saturation"], v["entropy"]
    widths = sorted({int(k.split("-")[0]) for k in s})
    for d in widths:
        assert s[f"{d}-False"] > s[f"{d}-True"] and e[f"{d}-False"] < e[f"{d}-True"], (d, s, e)
    unscaled = [s[f"{d}-False"] for d in widths]
    assert unscaled == sorted(unscaled) and unscaled[-1] > 0.9, unscaled
    scaled = [s[f"{d}-True"] for d in widths]
    assert max(scaled) - min(scaled) < 0.1, scaled
    assert v["real_saturation"]["unscaled"] > v["real_saturation"]["scaled"], v["real_saturation"]

    # Sampling by hand = transformers' generate, token for token, with the same seeds.
    assert all(v["samples_same"]), v["samples_same"]
    lab = v["lab"]
    diversity, likelihood = lab["diversity (distinct word pairs)"], lab["likelihood (mean log p per token)"]
    assert diversity["greedy"] < diversity["T=1.5"] and likelihood["greedy"] > likelihood["T=1.5"], lab

    # Scaling: loss falls with size; the exponent is the slope refitted here, and negative.
    sweep = v["sweep"]
    n, loss = sweep["non-embedding parameters"], sweep["validation loss"]
    slope = np.polyfit(np.log(n), np.log(loss), 1)[0]
    assert math.isclose(slope, v["exponent"], rel_tol=1e-6) and v["exponent"] < 0, (slope, v["exponent"])
    assert loss[-1] < loss[0], loss

    text = printed(nb)
    assert "6 exercises registered for chapter 03b" in text
    assert v["exercises"] == ["03b.1", "03b.2", "03b.3", "03b.4", "03b.5", "03b.6", "03b.e1", "03b.e2"], v["exercises"]
    assert_exercises_correct(nb, "03b.e1", "03b.e2")
