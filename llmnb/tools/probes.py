"""Measured checks of a trained classifier: is an explanation faithful, does a word change the answer?

Used by tutorials/09_faq.ipynb ("how do I make a model interpretable?") and
tutorials/08_trends_challenges.ipynb (interpretability and fairness, measured):

    llmnb.deletion_test(ft, texts, k=2)   # delete the k tokens saliency / attention / chance picks
    llmnb.swap_test(ft, templates, {"group": ["a man", "a woman"], ...})   # change one phrase only

`deletion_test` asks whether a way of ranking tokens points at what the model actually uses:
delete the k tokens it ranks highest and see how far the probability of the predicted class
falls. A ranking that finds the words the decision rests on makes it fall further than deleting
k tokens at random. Tokens are removed from the token ids, so the rest of the text is unchanged.

`swap_test` is a counterfactual probe: the same sentence with only one phrase changed (a name,
a group word). Any change in the predicted probability comes from that phrase alone.
"""
from __future__ import annotations

import random

from llmnb.core.models import eval_mode, pad_id
from llmnb.errors import ProbeError

RANKINGS = ("saliency", "attention", "random")


def deletion_test(model, texts, k: int = 2, by=RANKINGS, layer: int = -1, seed: int = 0):
    """For each text, the drop in the predicted class's probability after deleting k tokens.

    model: a classification `FineTuneResult`, `LoadedModel` or (model, tokenizer) pair.
    by:    rankings to compare: "saliency" (gradient x input towards the predicted class,
           largest first), "attention" (how much [CLS] attends to each token in `layer`, mean of
           heads) and "random" (a seeded shuffle). Special tokens ([CLS], [SEP]) are never deleted.
    Returns a DataFrame, one row per text and ranking: text, label (predicted before),
    ranking, removed (the tokens), p_before, p_after, drop (= p_before - p_after).

    Taught in chapter 8 (tutorials/08_trends_challenges.ipynb).
    """
    import pandas as pd
    import torch

    from llmnb.tools.interpret import _unpack, explain

    if isinstance(texts, str):
        texts = [texts]
    texts = [str(t) for t in texts]
    if not texts:
        raise ProbeError("deletion_test() needs at least one text.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ProbeError(f"k={k!r} must be a whole number >= 1 (tokens to delete).")
    unknown = [b for b in ([by] if isinstance(by, str) else by) if b not in RANKINGS]
    if unknown:
        raise ProbeError(f"Unknown ranking {unknown[0]!r}; choose from {', '.join(RANKINGS)}.")
    by = [by] if isinstance(by, str) else list(by)
    net, tokenizer, _, max_length = _unpack(model)
    device = next(net.parameters()).device
    rng = random.Random(seed)
    rows = []
    for text in texts:
        ex = explain(model, text, layer=layer)
        if ex.saliency is None or len(ex.scores) < 2:
            raise ProbeError("deletion_test() needs a classifier (a model with two or more classes).")
        ids = tokenizer([text], truncation=True, max_length=max_length)["input_ids"][0]
        words = [i for i, special in enumerate(ex.special) if not special]
        order = {
            "saliency": sorted(words, key=lambda i: -float(ex.saliency[i])),
            "attention": sorted(words, key=lambda i: -float(ex.attention[0][i])),
            "random": rng.sample(words, len(words)),
        }
        variants = []
        for ranking in by:
            gone = set(order[ranking][:k]) if len(words) > k else set(words[:-1])  # keep one word
            variants.append((ranking, gone, [t for i, t in enumerate(ids) if i not in gone]))
        width = max(len(v[2]) for v in variants)
        pad = pad_id(tokenizer)
        input_ids = torch.tensor([v[2] + [pad] * (width - len(v[2])) for v in variants], device=device)
        mask = torch.tensor([[1] * len(v[2]) + [0] * (width - len(v[2])) for v in variants], device=device)
        with eval_mode(net):
            with torch.no_grad():
                probs = torch.softmax(net(input_ids=input_ids, attention_mask=mask).logits.float(), -1)
        index = list(ex.scores).index(ex.label)
        before = float(ex.scores[ex.label])
        for (ranking, gone, _), p in zip(variants, probs):
            after = float(p[index])
            rows.append({"text": text, "label": ex.label, "ranking": ranking,
                         "removed": " ".join(ex.tokens[i] for i in sorted(gone)),
                         "p_before": before, "p_after": after, "drop": before - after})
    return pd.DataFrame(rows)


def swap_test(model, templates, groups, label=None, batch_size: int = 64):
    """The probability of `label` for every template filled with every phrase of every group.

    templates: sentences with one "{}" where the phrase goes, e.g. "{} served our table.".
    groups:    {"group name": ["phrase", ...]} or a plain list of phrases (one group, "all").
    label:     the class whose probability is reported (default: the model's last class,
               "positive" for the bundled reviews).
    Returns a DataFrame: group, phrase, template, text, p. Within one template only the
    phrase differs, so any spread of p across phrases is caused by the phrase.

    Taught in chapter 8 (tutorials/08_trends_challenges.ipynb).
    """
    import pandas as pd
    import torch

    from llmnb.tools.interpret import _target_index, _unpack

    if isinstance(templates, str):
        templates = [templates]
    bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
    if not templates or bad:
        raise ProbeError(f"Each template needs exactly one '{{}}' where the phrase goes; got {bad[0] if bad else 'none'!r}.")
    if not isinstance(groups, dict):
        groups = {"all": list(groups)}
    if not groups or any(isinstance(p, str) or len(p) < 1 for p in groups.values()):
        raise ProbeError("groups must map a group name to a list of phrases, e.g. {'first name': ['Emily', 'Jamal']}.")
    net, tokenizer, names, max_length = _unpack(model)
    rows = [{"group": g, "phrase": p, "template": t, "text": t.format(p)} for g, phrases in groups.items() for p in phrases for t in templates]
    device = next(net.parameters()).device
    probs = []
    with eval_mode(net):
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = tokenizer([r["text"] for r in rows[start : start + batch_size]], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt").to(device)
                probs.append(torch.softmax(net(**batch).logits.float(), -1).cpu())
    probs = torch.cat(probs)
    if probs.shape[1] < 2:
        raise ProbeError("swap_test() needs a classifier (a model with two or more classes).")
    index = probs.shape[1] - 1 if label is None else _target_index(label, names, probs[0])
    for row, p in zip(rows, probs[:, index].tolist()):
        row["p"] = p
    return pd.DataFrame(rows)
