"""Token classification (NER): tags aligned to word pieces, data forms and their errors, entities with spans."""
import random

import pytest

import llmnb
import llmnb.datasets as datasets
from llmnb.errors import DataError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.finetuning.data import LabelMap
from llmnb.tasks.token_classification import (
    IGNORE,
    TokenClassification,
    group_entities,
)

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
FAST = dict(quiet=True, save_checkpoints=False, early_stopping=None, batch_size=16)


@pytest.fixture(scope="module")
def tokenizer():
    import transformers

    from llmnb.core.models import bundled_minilm_path

    return transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))


def easy_sentences(n, seed):
    """People and places from short lists in a few shapes: learnable by a tiny model in seconds."""
    rng = random.Random(seed)
    people, places = ["Mia", "Tomas Brandt", "Anika", "Leon Okafor"], ["Carrow", "Port Ellis", "Zell"]
    rows = []
    for _ in range(n):
        person, place = rng.choice(people).split(), rng.choice(places).split()
        shape = rng.choice(["{p} went to {l} .", "Yesterday {p} visited {l} .", "{l} welcomed {p} ."])
        tokens, tags = [], []
        for slot in shape.split():
            words, kind = (person, "PER") if slot == "{p}" else (place, "LOC") if slot == "{l}" else ([slot], None)
            tokens += words
            tags += ["O"] * len(words) if kind is None else [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        rows.append({"tokens": tokens, "tags": tags})
    return rows


@pytest.fixture(scope="module")
def tagger():
    return llmnb.finetune("tiny-bert", easy_sentences(240, 0), eval=easy_sentences(40, 1), task="ner", lr=3e-3,
                          max_steps=45, eval_every=15, **FAST)


def test_each_word_is_trained_on_its_first_piece_only(tokenizer):
    task = TokenClassification(FineTuneConfig(task="ner", label_names=",".join(TAGS)))
    task.labels = LabelMap(TAGS)
    words = ["Luca", "Lindqvist", "visited", "Zell", "'s", "port", "."]
    enc = task.encode(tokenizer, [words], [["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]], 64)
    pieces = tokenizer.convert_ids_to_tokens(enc.input_ids[0].tolist())
    assert pieces == ["[CLS]", "luca", "lin", "##d", "##qvist", "visited", "ze", "##ll", "'", "s", "port", ".", "[SEP]"]
    assert enc.target_ids[0].tolist() == [IGNORE, 1, 2, IGNORE, IGNORE, 0, 3, IGNORE, 0, IGNORE, 0, 0, IGNORE]
    assert enc.word_of_piece[0] == [0, 1, 2, 3, 4, 5, 6]


def test_truncated_words_are_predicted_outside_and_keep_the_sentence_length(tagger):
    long_sentence = ["Mia"] + ["went"] * 200 + ["Carrow"]
    enc = tagger.task.encode(tagger.tokenizer, [long_sentence], [["B-PER"] + ["O"] * 201], 32)
    assert enc.word_of_piece[0] == list(range(30))  # [CLS] + 30 words + [SEP]
    scores = tagger.task.evaluate(tagger.model, enc, tagger.tokenizer, 8)
    assert 0 <= scores["eval_accuracy"] <= 1 and scores["eval_recall"] in (0.0, 1.0)


def test_a_tiny_model_learns_the_tags_and_reports_entity_scores(tagger):
    assert tagger.task.name == "token-classification" and tagger.state.metric_name == "eval_f1"
    assert tagger.labels.names == ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert tagger.model.config.id2label[0] == "B-LOC" and tagger.model.config.num_labels == 5
    evals = tagger.history.dropna(subset=["eval_f1"])
    assert {"eval_precision", "eval_recall", "eval_accuracy", "eval_f1_PER", "eval_f1_LOC"} <= set(evals.columns)
    assert evals.eval_f1.iloc[-1] > 0.9, evals.eval_f1.tolist()


def test_predict_gives_entities_with_character_spans(tagger):
    text = "Yesterday Leon Okafor visited Port Ellis."
    found = tagger.predict(text)
    assert [(e["entity"], e["text"]) for e in found] == [("PER", "Leon Okafor"), ("LOC", "Port Ellis")]
    for entity in found:
        assert text[entity["start"]:entity["end"]] == entity["text"] and 0 < entity["score"] <= 1
    found, words = tagger.predict(text, return_scores=True)
    assert [w["word"] for w in words] == ["Yesterday", "Leon", "Okafor", "visited", "Port", "Ellis", "."]
    assert [w["label"] for w in words] == ["O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]
    assert all(text[w["start"]:w["end"]] == w["word"] for w in words)
    many = tagger.predict([text, "", "Mia went to Zell"])
    assert len(many) == 3 and many[1] == [] and [e["text"] for e in many[2]] == ["Mia", "Zell"]
    assert tagger.evaluate(easy_sentences(20, 2))["eval_f1"] > 0.9


def test_entities_are_grouped_as_seqeval_counts_them():
    text = "Ana Ruiz met Bo in Rome"
    spans = [(0, 3), (4, 8), (9, 12), (13, 15), (16, 18), (19, 23)]
    labels = ["B-PER", "I-PER", "O", "I-PER", "O", "B-LOC"]  # an I- with no B- before it starts an entity
    tagged = [{"word": text[s:e], "label": t, "score": 0.5, "start": s, "end": e} for (s, e), t in zip(spans, labels)]
    assert [(e["entity"], e["text"]) for e in group_entities(text, tagged)] == [("PER", "Ana Ruiz"), ("PER", "Bo"), ("LOC", "Rome")]


def test_conll_files_are_read_last_column_as_the_tag(tmp_path):
    conll = tmp_path / "train.conll"
    conll.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nBrandt NNP B-NP B-PER\n\n\n"
                     "Mia NNP B-NP B-PER\nwent VBD B-VP O\n. . O O\n")
    words, tags, _ = TokenClassification().read(str(conll))
    assert words == [["EU", "rejects", "Brandt"], ["Mia", "went", "."]]
    assert tags == [["B-ORG", "O", "B-PER"], ["B-PER", "O", "O"]]
    broken = tmp_path / "broken.conll"
    broken.write_text("Mia B-PER\nwent\n")
    with pytest.raises(DataError, match="Line 2 of 'broken.conll' has one column"):
        TokenClassification().read(str(broken))


def test_integer_tags_take_their_names_from_label_names_or_the_dataset():
    import datasets as hf

    rows = {"tokens": [["Mia", "went", "home"], ["Zell", "is", "far"]], "ner_tags": [[1, 0, 0], [3, 0, 0]]}
    config = FineTuneConfig(task="ner", label_names="O,B-PER,I-PER,B-LOC,I-LOC", eval_fraction=0)
    prepared = TokenClassification(config).prepare(rows, None, config)
    assert prepared.train_targets == [["B-PER", "O", "O"], ["B-LOC", "O", "O"]] and prepared.labels.names == TAGS
    features = hf.Features({"tokens": hf.Sequence(hf.Value("string")), "ner_tags": hf.Sequence(hf.ClassLabel(names=TAGS))})
    config = FineTuneConfig(task="ner", eval_fraction=0)
    prepared = TokenClassification(config).prepare(hf.Dataset.from_dict(rows, features=features), None, config)
    assert prepared.train_targets[1] == ["B-LOC", "O", "O"] and prepared.label_column == "ner_tags"
    with pytest.raises(DataError, match="integer tags .* but no names for them"):
        TokenClassification().prepare(rows, None, config)


@pytest.mark.parametrize("rows, eval_rows, message", [
    ([{"tokens": ["Mia", "went"], "tags": ["B-PER"]}], None, r"Row 0 of the training data has 2 words but 1 tags"),
    ([{"tokens": ["Mia"], "tags": ["B-PER"]}, {"tokens": [], "tags": []}], None, r"Row 1 of the training data is an empty sentence"),
    ([{"tokens": ["Mia"], "tags": ["B-PER"]}, {"tokens": ["x"], "tags": ["O"]}], [{"tokens": ["a", "Rome"], "tags": ["O", "B-LOC"]}],
     r"Row 0 of the eval data has the tag 'B-LOC' \(on word 1, 'Rome'\), which is not among the known tags: B-PER, O"),
    ([{"text": "Mia went home", "label": "x"}], None, r"reads a 'tokens' column .* columns are: text, label"),
    ([{"tokens": "Mia went", "tags": ["B-PER", "O"]}], None, r"Row 0 of the training data: 'tokens' holds a str"),
], ids=["lengths differ", "empty sentence", "unknown tag", "neither form", "a string, not a list"])
def test_bad_data_is_one_clear_error(rows, eval_rows, message):
    with pytest.raises(DataError, match=message):
        llmnb.finetune("tiny-bert", rows, eval=eval_rows, task="ner", max_steps=1, **FAST)


def test_ner_is_an_alias():
    assert FineTuneConfig(task="ner").task == "token-classification"


@pytest.mark.slow
def test_minilm_beats_the_capitals_baseline_on_held_out_names():
    from llmnb.datasets.entities import capitals_baseline
    from llmnb.metrics import compute

    train, test = datasets.load("entities"), datasets.load("entities", "test").head(200)
    baseline = compute(["seqeval"], capitals_baseline(train.to_dict("records"), test.tokens.tolist()), test.tags.tolist())["f1"]
    # The fast profile's run: 60 steps at 3e-4 reached F1 0.93 on the whole test split (capitals: 0.23).
    ft = llmnb.finetune("minilm", train, eval=test, task="ner", max_steps=60, lr=3e-4, **FAST)
    assert ft.metrics["eval_f1"] > baseline + 0.3, (ft.metrics, baseline)
