"""llmnb.datasets.entities: the tagged sentences bundled as 'entities' (token classification) and their baselines."""
import pandas as pd
import pytest

import llmnb
from llmnb.datasets import entities as ner

GENERIC = {w for form in ner.LOC_FORMS + ner.ORG_FORMS for w in form.split() if "{" not in w} | set(ner.PARTICLES)


def all_entities(rows):
    return [e for row in rows for e in ner.entities(row["tokens"], row["tags"])]


def shape(row) -> tuple:
    """The sentence with each entity replaced by its type and each filler word by its list's name."""
    plain = {w: slot for slot, values in ner.PLAIN.items() for w in values}
    out = []
    for token, tag in zip(row["tokens"], row["tags"]):
        if tag.startswith("B-"):
            out.append(tag[2:])
        elif tag == "O":
            out.append(plain.get(token.lower(), plain.get(token, token.lower().rstrip("s"))))
    return tuple(out)


def test_label_names_fixed_order():
    assert ner.label_names() == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def test_build_is_deterministic_seeded_and_distinct():
    a = ner.build_sentences(200, seed=3)
    assert a == ner.build_sentences(200, seed=3) and a != ner.build_sentences(200, seed=4)
    assert len({" ".join(r["tokens"]) for r in a}) == 200
    assert all(list(r) == ["tokens", "tags"] for r in a)
    with pytest.raises(llmnb.LlmnbError, match="n=0"):
        ner.build_sentences(0)
    with pytest.raises(llmnb.LlmnbError, match="split='dev'"):
        ner.build_sentences(5, split="dev")
    other = ner.build_sentences(200, seed=3, exclude=a[:50])
    assert not {" ".join(r["tokens"]) for r in a[:50]} & {" ".join(r["tokens"]) for r in other}


def test_bundled_files_are_the_generator_output(tmp_path):
    for path in ner.write_bundled(tmp_path):
        assert path.read_bytes() == (llmnb.datasets.DATA / path.name).read_bytes(), path.name
    train, test = ner.bundled_splits()
    assert (len(train), len(test)) == (ner.TRAIN_SIZE, ner.TEST_SIZE) == (1500, 400)
    assert not {" ".join(r["tokens"]) for r in train} & {" ".join(r["tokens"]) for r in test}


def test_tags_are_valid_bio_with_0_to_3_entities_of_1_to_3_words():
    train, test = ner.bundled_splits()
    labels = set(ner.label_names())
    for row in train + test:
        tokens, tags = row["tokens"], row["tags"]
        assert len(tokens) == len(tags) and set(tags) <= labels and all(t.strip() == t and t for t in tokens), row
        for before, tag in zip(["O"] + tags, tags):
            assert not tag.startswith("I-") or before[2:] == tag[2:], row  # I-X only after B-X or I-X
        found = ner.entities(tokens, tags)
        assert len(found) <= 3 and all(1 <= len(text.split()) <= 3 for _, text in found), row
    for rows in (train, test):
        counts = pd.Series([k for k, _ in all_entities(rows)]).value_counts()
        assert set(counts.index) == {"PER", "LOC", "ORG"} and counts.min() > 0.15 * counts.sum()
        assert sum(not ner.entities(r["tokens"], r["tags"]) for r in rows) > 0.05 * len(rows)  # sentences with none


def test_not_every_capitalised_word_is_an_entity():
    train, test = ner.bundled_splits()
    for rows in (train, test):
        capital_o = {t for r in rows for i, (t, g) in enumerate(zip(r["tokens"], r["tags"])) if i and g == "O" and t[0].isupper()}
        assert {"I", "Monday", "May", "French", "Dr"} <= capital_o | set(ner.DAYS)
        assert len(capital_o & set(ner.DAYS + ner.MONTHS + ner.TITLES + ner.LANGS)) > 20
        lower_inside = {t for r in rows for t, g in zip(r["tokens"], r["tags"]) if g != "O" and t.islower()}
        assert lower_inside <= {"of", "van", "de", "da"} and "of" in lower_inside
        assert sum(r["tags"][0] != "O" for r in rows) > 0.2 * len(rows)  # entities that start a sentence
        lower_o = {t for r in rows for t, g in zip(r["tokens"], r["tags"]) if g == "O"}
        assert {"bank", "lake", "port"} <= lower_o  # lower-case words that are also parts of names
    # "Carrow" alone is a place, in "Carrow Rovers" part of a club:
    kinds = {}
    for kind, text in all_entities(train):
        for word in text.split():
            kinds.setdefault(word, set()).add(kind)
    assert sum(len(k) > 1 for w, k in kinds.items() if w not in GENERIC) > 20


def test_test_names_places_and_organisations_are_held_out():
    train, test = ner.bundled_splits()
    assert not {t for _, t in all_entities(train)} & {t for _, t in all_entities(test)}
    train_words = {t.lower() for r in train for t in r["tokens"]}
    test_name_words = {t for _, text in all_entities(test) for t in text.split()} - GENERIC
    assert len(test_name_words) >= 35
    assert not {w.lower() for w in test_name_words} & train_words  # nowhere in train, not even lower-cased
    for lists in (ner.FIRST, ner.LAST, ner.TOWNS, ner.COUNTRIES, ner.COMPANIES):
        assert not set(lists["train"]) & set(lists["test"])
    unseen = sum(shape(r) not in {shape(t) for t in train} for r in test) / len(test)
    assert 0.25 < unseen < 0.5, unseen  # about a third of the test sentences have a shape train never uses


def test_load_gives_lists_per_row():
    frame = llmnb.datasets.load("entities")
    assert list(frame.columns) == ["tokens", "tags"] and len(frame) == 1500
    assert isinstance(frame["tokens"][0], list) and isinstance(frame["tags"][0], list)
    train, test = ner.bundled_splits()
    assert frame.to_dict("records") == train
    assert llmnb.datasets.load("entities_test").to_dict("records") == llmnb.datasets.load("entities", "test").to_dict("records") == test
    assert {"entities", "entities_test"} <= set(llmnb.datasets.names())


def test_baselines_tag_in_the_expected_places():
    train = [{"tokens": ["Mia", "Kovac", "lives", "in", "Carrow", "."], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]},
             {"tokens": ["Mia", "met", "Dr", "Hale", "."], "tags": ["B-PER", "O", "O", "B-PER", "O"]}]
    sentences = [["On", "Monday", "Mia", "Kovac", "saw", "Carrow", "Rovers", "."]]
    assert ner.dictionary_baseline(train, sentences) == [["O", "O", "B-PER", "I-PER", "O", "B-LOC", "O", "O"]]
    assert ner.capitals_baseline(train, sentences) == [["O", "B-PER", "I-PER", "I-PER", "O", "B-PER", "I-PER", "O"]]


@pytest.mark.slow  # importing `evaluate` (for the seqeval module) alone takes 10-15 s of CPU
def test_baselines_leave_room_on_the_test_split():
    train, test = ner.bundled_splits()
    refs, sentences = [r["tags"] for r in test], [r["tokens"] for r in test]
    memory = llmnb.metrics.compute(["seqeval"], ner.dictionary_baseline(train, sentences), refs)
    capitals = llmnb.metrics.compute(["seqeval"], ner.capitals_baseline(train, sentences), refs)
    assert memory["f1"] == 0.0 and memory["accuracy"] > 0.7  # every test name is new; most words are "O"
    assert 0.1 < capitals["f1"] < 0.35 and capitals["f1_PER"] > capitals["f1"]  # DATA_CARD.md: 0.23
    on_train = llmnb.metrics.compute(["seqeval"], ner.dictionary_baseline(train, [r["tokens"] for r in train]),
                                     [r["tags"] for r in train])
    assert on_train["f1"] > 0.99  # memorising does perfectly on the names it memorised
