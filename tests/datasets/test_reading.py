"""llmnb.datasets.reading: the questions with answer spans bundled as 'reading' (extractive QA) and the baseline."""
import re

import pytest

import llmnb
from llmnb.datasets import reading as qa


def spans(row):
    return list(zip(row["answers"]["text"], row["answers"]["answer_start"]))


def test_build_is_deterministic_seeded_and_sized():
    a = qa.build_questions(120, seed=3)
    assert a == qa.build_questions(120, seed=3) and a != qa.build_questions(120, seed=4)
    assert len(a) == 120 and all(list(r) == ["id", "kind", "question", "context", "answers"] for r in a)
    assert len({r["id"] for r in a}) == 120
    with pytest.raises(llmnb.LlmnbError, match="n=-1"):
        qa.build_questions(-1)
    with pytest.raises(llmnb.LlmnbError, match="split='valid'"):
        qa.build_questions(5, split="valid")


def test_bundled_files_are_the_generator_output(tmp_path):
    for path in qa.write_bundled(tmp_path):
        assert path.read_bytes() == (llmnb.datasets.DATA / path.name).read_bytes(), path.name
    train, test = qa.bundled_splits()
    assert (len(train), len(test)) == (qa.TRAIN_SIZE, qa.TEST_SIZE) == (1500, 400)


def test_every_answer_is_its_span_of_the_context():
    train, test = qa.bundled_splits()
    for row in train + test:
        assert row["answers"]["text"] and len(row["answers"]["text"]) == len(row["answers"]["answer_start"])
        for text, start in spans(row):
            assert row["context"][start:start + len(text)] == text, row
            assert not re.match(r"\w", row["context"][start + len(text):][:1]), row  # whole words
        assert row["question"].endswith("?") and row["kind"] in qa.KINDS


def test_contexts_questions_and_kinds():
    train, test = qa.bundled_splits()
    for rows in (train, test):
        contexts = {r["context"] for r in rows}
        words = [len(c.split()) for c in contexts]
        short = [c for c in contexts if len(c.split()) <= qa.LONG_WORDS]
        assert all(2 <= len(re.split(r"(?<=\.) ", c)) <= 5 for c in short)
        assert 0.04 * len(contexts) < sum(w > 200 for w in words) < 0.15 * len(contexts)  # diaries for windows
        assert len(rows) / len(contexts) > 1.5  # 1 to 3 questions a context
        kinds = {k: sum(r["kind"] == k for r in rows) for k in qa.KINDS}
        assert min(kinds.values()) > 0.04 * len(rows), kinds
        assert len({(r["question"], r["context"]) for r in rows}) == len(rows)
    assert not {r["context"] for r in train} & {r["context"] for r in test}


def test_test_names_objects_and_wordings_are_held_out():
    train, test = qa.bundled_splits()
    train_words = {w.lower() for r in train for w in qa.words(r["context"] + " " + r["question"])}
    held_out = [qa.GIRLS, qa.BOYS, qa.OBJECTS, qa.UNITS, qa.VEHICLES]
    for lists in held_out:
        test_words = {w.lower() for item in lists["test"] for w in item.split()} - {"of", "set"}
        assert test_words and not test_words & train_words, test_words & train_words
    answers = {t for r in test for t in r["answers"]["text"]}
    assert not answers & {t for r in train for t in r["answers"]["text"] if not re.fullmatch(r"[\w ]*\d[\w ]*|\w+", t)
                          or t[0].isupper() and t not in qa.DAYS + qa.MONTHS}
    train_questions = {r["question"] for r in train}
    wordings = {(k, f): {w for w in v["train"]} for (k, f), v in qa.QUESTIONS.items()}
    new = sum(not any(re.fullmatch(re.sub(r"\\\{\w+\\\}", ".+", re.escape(w)), r["question"])
                      for ws in wordings.values() for w in ws) for r in test)
    assert 0.35 < new / len(test) < 0.65, new  # about half the test questions are worded as train never words them
    assert not train_questions & {r["question"] for r in test}


def test_load_keeps_the_answers_dicts():
    frame = llmnb.datasets.load("reading")
    assert list(frame.columns) == ["id", "kind", "question", "context", "answers"] and len(frame) == 1500
    assert isinstance(frame["answers"][0], dict) and isinstance(frame["answers"][0]["answer_start"][0], int)
    train, test = qa.bundled_splits()
    assert frame.to_dict("records") == train
    assert llmnb.datasets.load("reading_test").to_dict("records") == llmnb.datasets.load("reading", "test").to_dict("records") == test


def test_baseline_picks_a_capitalised_word_of_the_closest_sentence():
    context = "Mia Kovac left Carrow for Halden on Monday. Her friend Tomas stayed in Lorne."
    assert qa.overlap_baseline(["Where did Tomas stay?", "Who left Carrow?", "Why?"], [context] * 3) == ["Her", "Mia", "Mia"]
    assert qa.overlap_baseline(["Who?"], ["no capitals here."]) == [""]


@pytest.mark.slow  # importing `evaluate` (for the squad module) alone takes 10-15 s of CPU
def test_baseline_leaves_room_on_the_test_split():
    _, test = qa.bundled_splits()
    guesses = qa.overlap_baseline([r["question"] for r in test], [r["context"] for r in test])
    scores = llmnb.metrics.compute(["squad"], guesses, [r["answers"]["text"] for r in test])
    assert 0.05 < scores["exact_match"] <= scores["f1"] < 0.3, scores  # DATA_CARD.md: 0.12 and 0.12
    perfect = llmnb.metrics.compute(["squad"], [r["answers"]["text"][0] for r in test], [r["answers"]["text"] for r in test])
    assert perfect == {"exact_match": 1.0, "f1": 1.0}
