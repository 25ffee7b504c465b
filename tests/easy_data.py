"""Data, settings and a listener the tests share, made here: labelled by construction, tiny, offline.

(A plain module, not conftest.py: tests/browser has its own conftest, and `from conftest import`
would be ambiguous.)"""
import random

POSITIVE_WORDS = ["wonderful", "great", "lovely", "excellent", "superb", "delightful"]
NEGATIVE_WORDS = ["awful", "terrible", "broken", "rude", "dreadful", "useless"]
FILLER = ["the", "room", "was", "service", "food", "phone", "really", "and", "staff", "film", "quite", "very"]


def make_easy_sentiment(n: int, seed: int = 0) -> list[dict]:
    """Labelled by construction: the label is the polarity of the one opinion word inserted."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS))
        rows.append({"text": " ".join(words), "label": label})
    return rows


# Fast settings for a tiny BERT that learns the easy task in a few seconds.
TINY = dict(epochs=4, lr=2e-3, batch_size=16, quiet=True, warmup=0.1, early_stopping=None)


def interrupt_at(step: int):
    """A listener that presses Ctrl-C (raises KeyboardInterrupt) when the run logs `step`."""
    from llmnb.core.events import Callback

    class InterruptAt(Callback):
        def on_log(self, state, row):
            if state.step == step:
                raise KeyboardInterrupt

    return InterruptAt()
