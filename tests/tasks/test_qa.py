"""Extractive QA: answers found in their contexts, long contexts in windows mapped back to characters, errors."""
import random
from types import SimpleNamespace

import pytest
import torch

import llmnb
import llmnb.datasets as datasets
from llmnb.errors import DataError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.tasks.qa import QuestionAnswering, read_questions

FAST = dict(quiet=True, save_checkpoints=False, early_stopping=None, batch_size=16)


@pytest.fixture(scope="module")
def tokenizer():
    import transformers

    from llmnb.core.models import bundled_minilm_path

    return transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))


def easy_questions(n, seed):
    """'Where did X go?' about one-sentence journeys, as a plain `answer` column: learnable in seconds."""
    rng = random.Random(seed)
    people, towns = ["Mia", "Tomas", "Anika", "Leon", "Sofia"], ["Carrow", "Zell", "Halden", "Lorne", "Orvik"]
    rows = []
    for _ in range(n):
        person, town, other = rng.choice(people), *rng.sample(towns, 2)
        context = f"{person} left {other} and went to {town} by train."
        rows.append({"question": f"Where did {person} go?", "context": context, "answer": town})
    return rows


@pytest.fixture(scope="module")
def reader():
    return llmnb.finetune("tiny-bert", easy_questions(240, 0), eval=easy_questions(40, 1), task="qa", lr=3e-3,
                          max_steps=60, eval_every=20, **FAST)


def long_example():
    """A diary of the bundled data whose answer lies beyond the first 128-token window."""
    examples, _ = read_questions(datasets.load("reading"), "data")
    return next(e for e in examples if e["answers"]["answer_start"][0] > 700)


def test_windows_of_a_long_context_map_the_answer_back_to_its_characters(tokenizer):
    example = long_example()
    task = QuestionAnswering(FineTuneConfig(task="qa", doc_stride=64))
    enc = task.encode(tokenizer, [example], [example["answers"]], 128)
    assert len(enc) >= 3 and enc.example_of == [0] * len(enc) and max(enc.lengths) == 128
    text, start = example["answers"]["text"][0], example["answers"]["answer_start"][0]
    holding = [w for w in range(len(enc)) if enc.targets[w] != (0, 0)]
    assert holding, "some window holds the answer"
    for w in range(len(enc)):
        first, last = enc.targets[w]
        context = [span for span in enc.offsets[w] if span is not None]
        whole = context[0][0] <= start and start + len(text) <= context[-1][1]
        assert (w in holding) == whole  # a window without all of the answer points at [CLS]
        if w in holding:
            assert enc.offsets[w][first][0] == start and example["context"][start:enc.offsets[w][last][1]] == text
    assert enc.offsets[-1][-2][1] == len(example["context"].rstrip())  # the last window reaches the context's end
    for w in range(len(enc) - 1):  # neighbours share doc_stride context tokens
        here = [s for s in enc.offsets[w] if s is not None]
        there = [s for s in enc.offsets[w + 1] if s is not None]
        assert here[-64:] == there[:64]


class PointsAtTargets(torch.nn.Module):
    """A stand-in model whose logits peak at the positions it is told are the answer ([CLS] where none)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask, start_positions, end_positions, token_type_ids=None):
        rows = torch.arange(len(input_ids))
        start, end = torch.zeros(input_ids.shape), torch.zeros(input_ids.shape)
        start[rows, start_positions], end[rows, end_positions] = 10.0, 10.0
        return SimpleNamespace(loss=torch.tensor(0.0), start_logits=start, end_logits=end)


def test_answers_are_read_back_over_all_windows(tokenizer):
    examples, _ = read_questions(datasets.load("reading").head(60), "data")
    examples.append(long_example())
    task = QuestionAnswering(FineTuneConfig(task="qa", doc_stride=64))
    enc = task.encode(tokenizer, examples, [e["answers"] for e in examples], 128)
    assert len(enc) > len(examples)  # the long one is in windows
    assert task.evaluate(PointsAtTargets(), enc, tokenizer, 16)["eval_exact_match"] == 1.0


def test_a_tiny_model_learns_and_predict_gives_character_spans(reader):
    assert reader.task.name == "qa" and reader.state.metric_name == "eval_f1"
    assert {"eval_exact_match", "eval_f1", "eval_loss"} <= set(reader.metrics)
    assert reader.metrics["eval_exact_match"] > 0.8, reader.metrics
    context = "Sofia left Lorne and went to Orvik by train."
    found = reader.predict(question="Where did Sofia go?", context=context)
    assert set(found) == {"answer", "score", "start", "end"} and 0 < found["score"] <= 1
    assert context[found["start"]:found["end"]] == found["answer"] == "Orvik"
    many = reader.predict(question=["Where did Sofia go?", "Where did Mia go?"], context=[context, "Mia went to Zell by train."])
    assert [a["answer"] for a in many] == ["Orvik", "Zell"]
    assert len(reader.predict(question=["Where did Sofia go?"] * 3, context=context)) == 3  # one context, many questions
    with pytest.raises(DataError, match="question=.*context="):
        reader.predict("Where did Sofia go?")
    assert reader.evaluate(easy_questions(20, 2))["eval_exact_match"] > 0.8


def test_a_plain_answer_column_is_found_in_the_context():
    examples, column = read_questions([{"question": "Who?", "context": "Mia met Mia's aunt.", "answer": "Mia"}], "data")
    assert column == "answer" and examples[0]["answers"] == {"text": ["Mia"], "answer_start": [0]}  # the first occurrence


def test_doc_stride_is_an_option_of_the_run():
    rows = easy_questions(40, 0)
    ft = llmnb.finetune("tiny-bert", rows, task="qa", doc_stride=8, max_length=20, max_steps=1, **FAST)
    assert ft.task.options.doc_stride == 8 and ft.config.doc_stride == 8
    assert FineTuneConfig(task="question-answering").task == "qa"


@pytest.mark.parametrize("rows, options, message", [
    ([{"question": "Where?", "context": "Mia went to Zell.", "answer": "Carrow"}], {},
     r"Row 0 of the training data: the answer 'Carrow' is not in its context"),
    ([{"question": "Where?", "context": "Mia went to Zell.", "answers": {"text": ["Zell"], "answer_start": [3]}}], {},
     r"Row 0 of the training data: the answer 'Zell' is not in its context at answer_start=3"),
    ([{"question": "Where?", "context": "Mia went to Zell.", "answers": {"text": [], "answer_start": []}}], {},
     r"Row 0 of the training data has 0 answer texts"),
    ([{"text": "Mia went to Zell.", "label": "x"}], {}, r"reads 'question', 'context' and 'answers' .* columns are: text, label"),
    ([{"question": "Where did Mia go after all that?", "context": "Mia went to Zell. " * 5, "answer": "Zell"}],
     {"max_length": 24, "doc_stride": 16}, r"Row 0 of the training data: the question and special tokens take 11 of "
                                           r"max_length=24 tokens, leaving 13 for the context .* more than doc_stride=16"),
], ids=["plain answer not in context", "answer_start off", "unanswerable", "neither form", "question too long for doc_stride"])
def test_bad_data_is_one_clear_error(rows, options, message):
    with pytest.raises(DataError, match=message):
        llmnb.finetune("tiny-bert", rows * 4, task="qa", max_steps=1, **{**FAST, **options})


@pytest.mark.slow
def test_minilm_beats_the_overlap_baseline_on_held_out_questions():
    from llmnb.datasets.reading import overlap_baseline
    from llmnb.metrics import compute

    test = datasets.load("reading", "test").head(100)
    references = [a["text"] for a in test.answers]
    baseline = compute(["squad"], overlap_baseline(test.question.tolist(), test.context.tolist()), references)["exact_match"]
    # The fast profile's run: 100 steps at 3e-4 reached exact match 0.42 on the whole test split (overlap: 0.12).
    ft = llmnb.finetune("minilm", "reading", eval=test, task="qa", max_steps=100, lr=3e-4, **FAST)
    assert ft.metrics["eval_exact_match"] > baseline + 0.2, (ft.metrics, baseline)
