"""llmnb.tools.probes: the deletion test and the swap test on a tiny BERT trained on easy sentiment."""
import pytest
from easy_data import NEGATIVE_WORDS, POSITIVE_WORDS, TINY, make_easy_sentiment

import llmnb
from llmnb.errors import LlmnbError
from llmnb.tools.probes import ProbeError, deletion_test, swap_test


@pytest.fixture(scope="module")
def trained():
    """The label is decided by one opinion word, so a faithful ranking must find it."""
    return llmnb.finetune("tiny-bert", make_easy_sentiment(160, seed=0), eval=make_easy_sentiment(60, seed=1),
                          **{**TINY, "save_checkpoints": False})


def test_deleting_the_salient_word_hurts_more_than_chance(trained):
    texts = [r["text"] for r in make_easy_sentiment(30, seed=5)]
    table = deletion_test(trained, texts, k=1, seed=0)
    assert list(table.columns) == ["text", "label", "ranking", "removed", "p_before", "p_after", "drop"]
    assert len(table) == 3 * len(texts) and set(table["ranking"]) == {"saliency", "attention", "random"}
    assert table["removed"].str.split().str.len().eq(1).all()
    assert not table["removed"].isin(["[CLS]", "[SEP]"]).any()
    mean = table.groupby("ranking")["drop"].mean()
    assert mean["saliency"] > mean["random"] + 0.05, mean
    opinion = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)
    found = table[table["ranking"] == "saliency"]["removed"].isin(opinion).mean()
    assert found > 0.6, found  # saliency finds the one word the label rests on
    # p_before is the predicted class's probability, as predict() gives it
    label, scores = trained.predict(texts[0], return_scores=True)
    first = table.iloc[0]
    assert first["label"] == label and first["p_before"] == pytest.approx(scores[label], abs=1e-3)


def test_deletion_is_repeatable_and_checks_its_arguments(trained):
    text = "the room was lovely and the staff"
    a = deletion_test(trained, text, k=2, by="random", seed=3)
    assert a.equals(deletion_test(trained, [text], k=2, by=["random"], seed=3)) and len(a) == 1
    with pytest.raises(ProbeError, match="k="):
        deletion_test(trained, text, k=0)
    with pytest.raises(ProbeError, match="ranking"):
        deletion_test(trained, text, by="gradcam")
    with pytest.raises(ProbeError, match="at least one"):
        deletion_test(trained, [])


def test_swap_test_changes_only_the_phrase(trained):
    templates = ["the {} was lovely", "the {} was awful", "{} room and staff"]
    groups = {"things": ["phone", "film"], "same": ["room", "room"]}
    table = swap_test(trained, templates, groups)
    assert len(table) == 12 and list(table.columns) == ["group", "phrase", "template", "text", "p"]
    assert table.loc[0, "text"] == "the phone was lovely"
    same = table[table["group"] == "same"].groupby("template")["p"].agg(lambda s: s.max() - s.min())
    assert (same < 1e-6).all()  # the same phrase twice: no spread at all
    label, scores = trained.predict("the film was awful", return_scores=True)
    row = table[table["text"] == "the film was awful"].iloc[0]
    assert row["p"] == pytest.approx(scores["positive"], abs=1e-4)  # default: the last class
    negative = swap_test(trained, templates[:1], ["phone"], label="negative")
    assert negative.loc[0, "group"] == "all"
    assert negative.loc[0, "p"] == pytest.approx(1 - table.loc[0, "p"], abs=1e-4)


def test_swap_test_explains_bad_input(trained):
    with pytest.raises(ProbeError, match="one '\\{\\}'"):
        swap_test(trained, ["no slot here"], ["a"])
    with pytest.raises(ProbeError, match="list of phrases"):
        swap_test(trained, ["{} was here"], {"g": "a man"})
    with pytest.raises(LlmnbError, match="not one of the model's classes"):
        swap_test(trained, ["{} was here"], ["a"], label="neutral")
    assert llmnb.swap_test is swap_test and llmnb.deletion_test is deletion_test
