"""llmnb/metrics/seqeval and llmnb/metrics/squad: the scores of token classification and extractive QA,
loaded by path through `evaluate`, checked on examples worked out by hand."""
import warnings

import pytest

import llmnb

pytestmark = pytest.mark.slow  # importing `evaluate` alone takes 10-15 s of CPU


def ner(predictions, references):
    return llmnb.metrics.compute(["seqeval"], predictions, references)


def squad(predictions, references):
    return llmnb.metrics.compute(["squad"], predictions, references)


def test_both_are_shipped_and_load_by_name():
    assert {"seqeval", "squad"} <= set(llmnb.metrics.available())
    assert llmnb.metrics.load_metric("seqeval") is llmnb.metrics.load_metric("seqeval")
    assert llmnb.metrics.load_metric("squad").name == "squad"


def test_seqeval_a_partial_span_is_a_miss_and_a_false_alarm():
    references = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
    predictions = [["B-PER", "O", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"]]
    scores = ner(predictions, references)
    # 3 entities in the references, 3 predicted, 2 of them right ("Mia" for "Mia Kovac" is wrong); 8 of 9 tags right.
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "accuracy": 8 / 9,
                                    "f1_PER": 0.0, "f1_LOC": 1.0, "f1_ORG": 1.0})


def test_seqeval_a_missed_entity_lowers_recall_only():
    scores = ner([["B-PER", "O", "O"]], [["B-PER", "O", "B-LOC"]])
    assert (scores["precision"], scores["recall"], scores["f1"], scores["accuracy"]) == pytest.approx((1, 0.5, 2 / 3, 2 / 3))


def test_seqeval_wrong_type_perfect_and_default_mode():
    assert ner([["B-LOC", "O"]], [["B-PER", "O"]])["f1"] == 0.0  # right words, wrong type
    assert ner([["B-PER", "I-PER"], ["O"]], [["B-PER", "I-PER"], ["O"]])["f1"] == 1.0
    # Default (CoNLL) mode: an I- with no B- before it starts an entity, so this prediction is right.
    assert ner([["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])["f1"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no entity predicted: precision is 0, without an undefined-metric warning
        assert ner([["O", "O"]], [["B-PER", "O"]])["precision"] == 0.0


def test_seqeval_rejects_sentences_of_different_lengths():
    with pytest.raises(ValueError, match="Sentence 1 has 1 predicted tags but 2"):
        ner([["O"], ["O"]], [["O"], ["O", "B-PER"]])


def test_squad_normalises_case_punctuation_articles_and_spaces():
    same = [("The  Blue Suitcase!", "blue suitcase"), ("an apple.", "Apple"), ("Mia's", "mias"), ("  on   Monday ", "on monday")]
    for prediction, reference in same:
        assert squad([prediction], [[reference]]) == {"exact_match": 1.0, "f1": 1.0}, prediction
    assert squad(["theory"], [["ory"]])["exact_match"] == 0.0  # only whole words are articles
    assert squad(["3"], [["three"]]) == {"exact_match": 0.0, "f1": 0.0}  # numbers are not spelled out


def test_squad_exact_match_and_f1_are_fractions_averaged_over_questions():
    predictions = ["the blue suitcase.", "Mia", "blue bag", "", "Port of Ellis"]
    references = [["blue suitcase"], ["Mia Kovac", "Mia"], ["blue suitcase"], ["Carrow"], ["Port Ellis"]]
    # EM: 1, 1 (best of two references), 0, 0, 0. F1: 1, 1, 1/2 (one of two words each way), 0, 4/5 (p 2/3, r 1).
    assert squad(predictions, references) == pytest.approx({"exact_match": 2 / 5, "f1": (1 + 1 + 0.5 + 0 + 0.8) / 5})
    assert squad(["Mia"], [["Mia Kovac"]]) == pytest.approx({"exact_match": 0.0, "f1": 2 / 3})
    with pytest.raises(ValueError, match="Question 0 has no reference answer"):
        squad(["Mia"], [[]])
