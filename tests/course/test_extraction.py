"""llmnb.datasets.synthetic and llmnb.course.extraction (tutorials/06_applications.ipynb): data made by
construction, candidates, the rule baseline, and extraction through a (tiny) trained classifier."""
import pandas as pd
import pytest

from llmnb.course.extraction import (
    NO,
    YES,
    candidate_pairs,
    candidates,
    exact_match,
    extract,
    mark,
    rule_extract,
)
from llmnb.datasets.synthetic import (
    ASPECTS,
    FIELDS,
    QUESTIONS,
    booking_requests,
    rated_reviews,
)


def test_bookings_hold_their_answers_and_splits_differ():
    train, test = booking_requests(40, "train"), booking_requests(20, "test")
    assert list(train.columns) == ["text", *FIELDS] and len(train) == 40 and len(test) == 20
    for frame in (train, test):
        for _, row in frame.iterrows():
            for field in FIELDS:
                assert row[field] in candidates(row["text"], field), (field, row["text"])
    assert set(train["name"]).isdisjoint(test["name"])  # unseen surnames in the test split
    assert booking_requests(40, "train").equals(train)  # seeded: the same rows every time
    assert not booking_requests(40, "train", seed=1).equals(train)
    with pytest.raises(ValueError, match="split"):
        booking_requests(5, "dev")


def test_rated_reviews_are_rated_by_their_sentences():
    train, test = rated_reviews(120, "train"), rated_reviews(40, "test")
    assert set(train["rating"]) <= {1, 2, 3, 4, 5} and len(set(train["rating"])) == 5
    assert set(train["text"]).isdisjoint(test["text"]) and train["text"].is_unique
    polarity = {s: p for aspect in ASPECTS.values() for p, sentences in aspect.items() for s in sentences}
    for text, rating in zip(train["text"], train["rating"]):
        found = [p for s, p in polarity.items() if s in text]
        assert rating == max(1, min(5, 3 + sum(found))), text
    assert rated_reviews(120, "train").equals(train)


def test_candidates_marking_and_the_rule():
    text = "Not Monday but Friday, please: 4 of us, 7pm. Ivanova"
    assert candidates(text, "day") == ["Monday", "Friday"]
    assert candidates(text, "time") == ["7pm"] and candidates(text, "people") == ["4"]
    assert candidates(text, "name") == ["Not", "Ivanova"]  # capitalised words that are not weekdays
    assert mark("Move 8pm to 18:30 at 8", "8") == "Move 8pm to 18:30 at [[8]]"  # whole words only
    assert {f: rule_extract(text, f) for f in FIELDS} == {"name": "", "day": "Monday", "time": "7pm", "people": "4"}
    assert rule_extract("Hello, this is Chen. Table for 2 on Friday.", "name") == "Chen"
    with pytest.raises(ValueError, match="field"):
        candidates(text, "colour")


def test_candidate_pairs_give_one_yes_per_question():
    frame = booking_requests(10, "train")
    pairs = candidate_pairs(frame, QUESTIONS)
    assert list(pairs.columns) == ["text", "label"] and (pairs["label"] == YES).sum() == 10 * len(QUESTIONS)
    assert set(pairs["label"]) == {YES, NO} and pairs["text"].str.contains(r"\[\[").all()
    bad = frame.assign(day="Someday")
    with pytest.raises(ValueError, match="not a candidate"):
        candidate_pairs(bad, {"day": "Which day?"})


class FakeResult:
    """Stands in for a FineTuneResult: says "yes" to whichever candidate is marked after 'to'."""

    def predict(self, texts, batch_size=64, return_scores=False):
        scores = [{YES: 0.9 if " to [[" in t else 0.1, NO: 0.1 if " to [[" in t else 0.9} for t in texts]
        return [max(s, key=s.get) for s in scores], scores


def test_extract_picks_the_highest_yes_and_handles_no_candidates():
    texts = ["Move us from 6pm to 8pm please.", "No time given here."]
    assert extract(FakeResult(), texts, "time", "What time?") == ["8pm", ""]
    assert exact_match(["8pm", " friday "], ["8PM", "Friday"]) == 1.0
    assert exact_match(["a", "b"], ["a", "c"]) == 0.5
    with pytest.raises(ValueError):
        exact_match(["a"], ["a", "b"])


@pytest.mark.slow
def test_extract_with_a_trained_tiny_model():
    import llmnb

    pairs = candidate_pairs(booking_requests(24, "train"), {"day": QUESTIONS["day"]})
    ft = llmnb.finetune("tiny-bert", pairs, max_steps=4, batch_size=16, lr=1e-3, quiet=True, save_checkpoints=False)
    test = booking_requests(6, "test")
    answers = extract(ft, test["text"], "day", QUESTIONS["day"])
    assert len(answers) == 6 and all(a in candidates(t, "day") for a, t in zip(answers, test["text"]))
    assert isinstance(pd.Series(answers).iloc[0], str)
