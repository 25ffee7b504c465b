"""llmnb.datasets.synthetic (tutorials/06_applications.ipynb): star-rated reviews, rated by construction."""
import pytest

from llmnb.datasets.synthetic import ASPECTS, rated_reviews
from llmnb.errors import DataError


def test_rated_reviews_are_rated_by_their_sentences():
    train, test = rated_reviews(120, "train"), rated_reviews(40, "test")
    assert set(train["rating"]) <= {1, 2, 3, 4, 5} and len(set(train["rating"])) == 5
    assert set(train["text"]).isdisjoint(test["text"]) and train["text"].is_unique
    polarity = {s: p for aspect in ASPECTS.values() for p, sentences in aspect.items() for s in sentences}
    for text, rating in zip(train["text"], train["rating"]):
        found = [p for s, p in polarity.items() if s in text]
        assert rating == max(1, min(5, 3 + sum(found))), text
    assert rated_reviews(120, "train").equals(train)
    with pytest.raises(DataError, match="split='dev'"):
        rated_reviews(5, "dev")
