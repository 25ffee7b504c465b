"""llmnb.datasets.instructions and .preferences: the story questions (bundled as 'instructions') and
the preference pairs about them (bundled as 'preferences')."""
import re

import pandas as pd
import pytest

import llmnb
from llmnb.datasets import instructions as ins
from llmnb.datasets import preferences as prefs
from llmnb.datasets.stories import ANIMALS, BOYS, COLORS, GIRLS, PLACES


def story_of(prompt: str) -> str:
    return prompt.split("\n\n")[0]


def rejection_kind(row: dict) -> str:
    """Which of the four kinds a pair's rejected answer is, from the pair alone (see the data card)."""
    if row["chosen"] == prefs.NOT_SAID:
        return "unanswerable"
    if not row["rejected"][0].isupper():
        return "off_format"
    return "rambling" if len(row["rejected"].split()) >= 20 else "wrong"


def test_builders_are_deterministic_and_seeded():
    assert ins.build_instructions(100, seed=3) == ins.build_instructions(100, seed=3)
    assert ins.build_instructions(100, seed=3) != ins.build_instructions(100, seed=4)
    assert prefs.build_preferences(60, seed=3, split="test") == prefs.build_preferences(60, seed=3, split="test")
    assert prefs.build_preferences(60, seed=3) != prefs.build_preferences(60, seed=4)
    rows = ins.build_instructions(300, seed=1)
    assert len(rows) == 300 and all(list(r) == ["instruction", "input", "output"] for r in rows)
    stories = [r["input"] for r in rows if r["input"]]
    assert len(set(stories)) == len(stories)  # one question per story
    assert 0 < len(stories) < 300  # and a few instructions with no story


def test_bad_arguments_are_llmnb_errors_that_name_the_culprit():
    mistakes = [
        (lambda: ins.build_instructions(0), "n=0"), (lambda: ins.build_instructions(5, split="dev"), "split='dev'"),
        (lambda: prefs.build_preferences(5, seed=1.5), "seed=1.5"), (lambda: ins.answer("how", {}), "'how'"),
    ]
    for call, culprit in mistakes:
        with pytest.raises(llmnb.LlmnbError) as error:
            call()
        assert culprit in str(error.value)


def test_stories_are_short_and_in_the_world_of_the_corpus():
    words = set(GIRLS + BOYS + COLORS + [p for p, _, _ in PLACES] + [a for a, _, _ in ANIMALS])
    for row in ins.build_instructions(400, seed=0):
        text = " ".join(row.values())
        assert len(text.split()) <= 55, text
        if row["input"]:
            assert 2 <= row["input"].count(". ") + 1 <= 3 and 10 <= len(row["input"].split()) <= 40, row["input"]
            assert words & set(re.findall(r"\w+", row["input"]))


def test_answers_come_from_the_story():
    names, colours, places = set(GIRLS + BOYS), {c.capitalize() for c in ins.STORY_COLORS}, {p for p, _, _ in PLACES}
    checked = 0
    for row in ins.build_instructions(600, seed=0) + ins.build_instructions(200, seed=0, split="test"):
        out, story = row["output"].rstrip("."), row["input"]
        if not story or out in ("Yes", "No") or len(out.split()) > 3:
            continue
        key = out.split()[-1]  # "Mia", "Red", "In the park" -> "park", "A dog" -> "dog"
        assert key in names | colours | places or key in {a for a, _, _ in ANIMALS}, row
        assert key.lower() in story.lower().split() or f"{key.lower()}." in story.lower().split(), row
        checked += 1
    assert checked > 400


def test_yes_no_questions_are_balanced():
    for rows in (ins.build_instructions(1200, seed=0), ins.build_instructions(200, seed=0, split="test")):
        answers = [r["output"] for r in rows if r["output"] in ("Yes.", "No.")]
        assert len(answers) > 30 and 0.4 <= answers.count("Yes.") / len(answers) <= 0.6
    chosen = [r["chosen"] for r in prefs.build_preferences(600, seed=0) if r["chosen"] in ("Yes.", "No.")]
    assert 0.4 <= chosen.count("Yes.") / len(chosen) <= 0.6


def test_every_kind_is_asked():
    rows = ins.build_instructions(1200, seed=0)
    outputs, questions = [r["output"] for r in rows], [r["instruction"] for r in rows]
    assert any(q.startswith("Who had") for q in questions) and any(q.startswith("Who came") for q in questions)
    assert any(q.startswith("What colour") for q in questions) and any(q.startswith("Where did") for q in questions)
    assert any("title" in q for q in questions) and any(q.startswith("Retell") for q in questions)
    assert any(o.startswith("In the ") for o in outputs) and any(" and the " in o for o in outputs)
    assert any(r["input"] == "" and "likes to" in r["output"] for r in rows)


def test_test_split_has_other_stories_and_other_phrasings():
    for kind, phrasings in ins.QUESTIONS.items():
        assert phrasings["train"] and phrasings["test"], kind
        assert not set(phrasings["train"]) & set(phrasings["test"]), kind
    for topic, phrasings in prefs.UNANSWERABLE.items():
        assert phrasings["train"] and phrasings["test"] and not set(phrasings["train"]) & set(phrasings["test"]), topic
    train, test = ins.build_instructions(1200, seed=0), ins.build_instructions(200, seed=0, split="test")
    assert not {r["input"] for r in train if r["input"]} & {r["input"] for r in test if r["input"]}
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in test}
    p_train, p_test = prefs.build_preferences(600, seed=0), prefs.build_preferences(150, seed=0, split="test")
    test_stories = {story_of(r["prompt"]) for r in p_test} | {r["input"] for r in test if r["input"]}
    assert not test_stories & ({story_of(r["prompt"]) for r in p_train} | {r["input"] for r in train})
    assert {ins.split_of(facts) for _, facts, _ in ins.stories(50, 0, "test", stream=0)} == {"test"}
    assert not {r["prompt"].split("\n\n")[1] for r in p_train} & {r["prompt"].split("\n\n")[1] for r in p_test}


def test_preference_pairs_reject_in_four_kinds():
    for split, rows in (("train", prefs.build_preferences(600, seed=0)), ("test", prefs.build_preferences(150, seed=0, split="test"))):
        assert all(list(r) == ["prompt", "chosen", "rejected"] for r in rows)
        assert all(r["rejected"] != r["chosen"] and r["prompt"].count("\n\n") == 1 for r in rows)
        kinds = [rejection_kind(r) for r in rows]
        for kind in prefs.REJECTIONS:
            assert 0.2 <= kinds.count(kind) / len(rows) <= 0.3, (kind, kinds.count(kind))
        for row, kind in zip(rows, kinds):
            assert row["chosen"][0].isupper() and row["chosen"].endswith("."), row
            if kind == "wrong":
                assert len(row["rejected"].split()) <= len(row["chosen"].split()) + 2, row
            if kind == "rambling":
                assert len(row["rejected"].split()) >= 20 and len(row["rejected"]) > len(row["chosen"]), row
            if kind == "unanswerable":  # a question of this split's wording, answered by a short made-up fact
                story, question = row["prompt"].split("\n\n")
                wordings = [w for topic in prefs.UNANSWERABLE.values() for w in topic[split]]
                assert any(question.split()[:2] == w.split()[:2] for w in wordings), question
                assert len(row["rejected"].split()) <= 2 and row["rejected"] not in story, row


def test_preference_answers_match_the_instruction_form():
    outputs = {r["output"] for r in ins.build_instructions(1200, seed=0)}
    chosen = [r["chosen"] for r in prefs.build_preferences(600, seed=0)]
    def forms(text):
        return "yes/no" if text in ("Yes.", "No.") else len(text.split()) <= 3

    assert {forms(c) for c in chosen} == {forms(o) for o in outputs}


def test_bundled_files_are_the_generator_output():
    for module, name, sizes in ((ins, "instructions", (1200, 200)), (prefs, "preferences", (600, 150))):
        train, test = module.bundled_splits()
        pd.testing.assert_frame_equal(llmnb.datasets.load(name), train)
        pd.testing.assert_frame_equal(llmnb.datasets.load(name, "test"), test)
        pd.testing.assert_frame_equal(llmnb.datasets.load(f"{name}_test"), test)
        assert (len(train), len(test)) == sizes == (module.TRAIN_SIZE, module.TEST_SIZE)
        assert f"{name}_test" in llmnb.datasets.names()


def test_loading_by_name_keeps_empty_inputs_as_empty_strings():
    columns_of = {"instructions": ["instruction", "input", "output"], "preferences": ["prompt", "chosen", "rejected"]}
    for name, columns in columns_of.items():
        for split in ("train", "test"):
            frame = llmnb.datasets.load(name, split)
            assert list(frame.columns) == columns and not frame.isna().any().any()
            assert all(isinstance(v, str) for v in frame.to_numpy().ravel())
    frame = llmnb.datasets.load("instructions")
    assert (frame["input"] == "").sum() > 10


def test_write_bundled_writes_the_same_bytes(tmp_path):
    for module in (ins, prefs):
        for written in module.write_bundled(tmp_path):
            assert written.read_bytes() == (llmnb.datasets.DATA / written.name).read_bytes()
