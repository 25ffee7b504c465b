"""Corpus BLEU (Papineni et al., 2002) on whitespace tokens, shipped inside llmnb for offline use.

BLEU = brevity penalty × geometric mean of the modified n-gram precisions, n = 1..4, counted over
the whole corpus (not averaged per sentence). Text is lower-cased and punctuation split off, so
"Hello, world" and "hello , world" score the same. Reported on a 0-100 scale like sacrebleu. With no
4-gram match at all the score is 0, as in the original definition; `smooth=True` adds 1 to every
count (Lin & Och, 2004) for short texts.
"""
import math
import re
from collections import Counter

import datasets
import evaluate


def _tokens(text):
    return re.findall(r"\w+|[^\w\s]", str(text).lower())


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class Bleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Papineni, Roukos, Ward, Zhu (2002). BLEU: a method for automatic evaluation of machine translation.",
            inputs_description="predictions: generated strings; references: one reference string each.",
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, max_order=4, smooth=False):
        matches, possible = [0] * max_order, [0] * max_order
        hyp_len = ref_len = 0
        for hyp, ref in zip(predictions, references):
            h, r = _tokens(hyp), _tokens(ref)
            hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
            for n in range(1, max_order + 1):
                h_grams, r_grams = _ngrams(h, n), _ngrams(r, n)
                matches[n - 1] += sum(min(c, r_grams[g]) for g, c in h_grams.items())
                possible[n - 1] += max(0, len(h) - n + 1)
        add = 1 if smooth else 0
        if hyp_len == 0 or (not smooth and min(matches) == 0):
            return {"bleu": 0.0}
        log_precision = sum(math.log((m + add) / (p + add)) for m, p in zip(matches, possible)) / max_order
        brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        return {"bleu": 100 * brevity * math.exp(log_precision)}
