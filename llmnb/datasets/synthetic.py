"""A small labelled data set that llmnb generates on the spot, for tutorials/06_applications.ipynb.

    from llmnb.datasets.synthetic import rated_reviews
    ratings = rated_reviews(240, split="train")       # restaurant reviews + a 1-5 star rating

Labelled by construction: the generator chooses the answer first and then writes the text
around it, so every label is right by definition. Same `n`, `split` and `seed` give the
same rows on every machine (only `random.Random` with an integer seed is used).

Data card: `rated_reviews`
--------------------------
* **What it is.** Restaurant reviews of two to four sentences, each sentence about one aspect
  (food, service, price, atmosphere, waiting time) with a polarity of +1 (good), 0 (so-so) or
  -1 (bad), and a `rating` column: ``3 + sum of the polarities``, clipped to 1..5 stars. A
  rating is therefore a graded quantity: three good aspects beat one.
* **Splits.** Train and test reviews are new combinations of the same hand-written sentences
  (four phrasings per aspect and polarity). A review's split is fixed by a hash of its
  text, so no review is in both; a model must still add up sentences it has seen in other
  company.
* **Made by.** Written by the llmnb developers, phrasing by phrasing; no real reviews, no real
  restaurants. Licence: the same as llmnb.
* **Limits.** The rating is a deterministic function of the sentences, which real ratings are
  not; aspects never contradict themselves inside one sentence; British English.
"""
from __future__ import annotations

import random

from llmnb.errors import DataError

# aspect -> polarity -> phrasings
ASPECTS = {
    "food": {
        1: ["The food was delicious.", "Every dish was cooked perfectly.", "The pasta was the best I've had in years.",
            "Each plate came out full of flavour."],
        0: ["The food was fine, nothing special.", "The dishes were decent enough.", "The menu was ordinary.",
            "My main course was alright."],
        -1: ["The food was cold and bland.", "My steak was badly overcooked.", "The soup tasted of nothing.",
             "The fish smelled off and we left it."],
    },
    "service": {
        1: ["The staff were warm and attentive.", "Our waiter was friendly and quick.", "Service was excellent from start to finish.",
            "The waitress remembered every detail of our order."],
        0: ["Service was okay.", "The staff did their job.", "The waiter was polite but distant.",
            "Nobody was rude, nobody went out of their way."],
        -1: ["The waiter was rude to us.", "Staff ignored us for most of the evening.", "Our order was wrong twice.",
             "The manager shrugged when we complained."],
    },
    "price": {
        1: ["Great value for the money.", "Prices were very fair.", "It was surprisingly cheap for the quality.",
            "The set menu is a bargain."],
        0: ["Prices were about average.", "It costs what you'd expect.", "Not cheap, not expensive.",
            "The bill was roughly what we had guessed."],
        -1: ["Far too expensive for what you get.", "The bill was a shock.", "They charge a fortune for tiny portions.",
             "We paid double what the place is worth."],
    },
    "atmosphere": {
        1: ["The room was cosy and calm.", "Lovely music and soft lighting.", "A beautiful, relaxed dining room.",
            "The terrace has a wonderful view."],
        0: ["The room was plain.", "The decor was unremarkable.", "It looks like any other restaurant.",
            "The dining room was neither pleasant nor unpleasant."],
        -1: ["It was so loud we could not talk.", "The tables were sticky and cramped.", "The place felt dirty and gloomy.",
             "A cold draught blew through the room all night."],
    },
    "waiting": {
        1: ["Our food arrived in minutes.", "We were seated straight away.", "No waiting at all, even on a Saturday.",
            "Dessert was on the table before we had finished talking."],
        0: ["We waited a normal amount of time.", "The wait was reasonable.", "Food took the usual twenty minutes.",
            "There was a short queue at the door."],
        -1: ["We waited an hour for our mains.", "The wait was endless.", "We were left standing at the door for ages.",
             "It took forty minutes just to get the bill."],
    },
}


def rated_reviews(n: int = 240, split: str = "train", seed: int = 0):
    """`n` restaurant reviews with a 1-5 `rating` made from their sentences (see the data card).

    Columns: text, rating (an int). A review belongs to the test split when the sha256 of its
    text, read as a number, is divisible by 4 (about a quarter of all possible reviews), so the two
    splits never share a review, whatever `n` and `seed` are. Used by
    tutorials/06_applications.ipynb (rating prediction with task="regression").
    """
    import hashlib

    import pandas as pd

    if split not in ("train", "test"):
        raise DataError(f"split={split!r} is not known; choose 'train' or 'test'.")
    rng = random.Random(f"ratings-{seed}")
    rows, seen = [], set()
    while len(rows) < n:
        aspects = rng.sample(sorted(ASPECTS), rng.randint(2, 4))
        polarities = [rng.choice((1, 0, -1)) for _ in aspects]
        text = " ".join(rng.choice(ASPECTS[a][p]) for a, p in zip(aspects, polarities))
        in_test = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 4 == 0
        if in_test == (split == "test") and text not in seen:
            seen.add(text)
            rows.append({"text": text, "rating": max(1, min(5, 3 + sum(polarities)))})
    return pd.DataFrame(rows)
