"""`--task qa` (alias `question-answering`): extractive question answering, the answer a span of the context.

    ft = llmnb.finetune("minilm", "reading", eval="reading_test", task="qa")
    ft.predict(question="Where did Mia go?", context="On Monday, Mia took the train to Carrow.")
    # {"answer": "Carrow", "score": 0.91, "start": 33, "end": 39}

Data: `question`, `context` and `answers` = {"text": [...], "answer_start": [...]} (the SQuAD form),
or a plain `answer` column whose first occurrence in the context is the span. The model learns two
token positions, the answer's first and last. A context longer than max_length is cut into
overlapping windows (`doc_stride` tokens shared by neighbours), as in the Hugging Face QA recipe;
a window that does not hold the whole answer is trained to point at [CLS] (position 0). The
answer to a question is the most probable span of at most MAX_ANSWER_TOKENS context tokens over all
of its windows, read back to characters through the fast tokenizer's offsets. Metrics: SQuAD exact
match and F1 through the shipped llmnb/metrics/squad (chapter 6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llmnb.core.config import check_number
from llmnb.core.models import eval_mode, pad_id
from llmnb.core.task import PreparedData, register, task_option
from llmnb.errors import ConfigError, DataError
from llmnb.finetuning.batches import Encoded, TokenRows, batch_order, collate
from llmnb.tasks.classification import Classification

MAX_ANSWER_TOKENS = 30  # longest answer looked for, as in the Hugging Face recipe
N_BEST = 20  # start and end positions tried per window (the most likely of each)
ENCODE_CHUNK = 1000


@dataclass
class QAOptions:
    doc_stride: int = task_option(
        64, "tokens that neighbouring windows share when a context is longer than max_length, so an answer cut by "
        "one window is whole in the next.")

    def __post_init__(self):
        check_number("doc_stride", self.doc_stride, minimum=0, integer=True)


@dataclass
class QAEncoded(Encoded):
    """One row per window. `targets`: (start, end) token of the answer, (0, 0) when the window lacks it;
    `offsets`: each token's character span in the context, None outside it; `example_of`: the question
    a window belongs to; `contexts` and `references` (answer texts) per question."""

    type_ids: TokenRows | None = None
    offsets: list = field(default_factory=list)
    example_of: list = field(default_factory=list)
    contexts: list = field(default_factory=list)
    references: list = field(default_factory=list)


@register
class QuestionAnswering(Classification):
    """The answer to a question, copied out of the context it is asked about (chapter 6)."""

    name = "qa"
    aliases = ("question-answering",)
    Options = QAOptions
    data_forms = ("question + context + answers (SQuAD form)", "question + context + answer")
    auto_class = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"
    export_template = None
    metrics = ("exact_match", "f1")
    headline = "f1"  # smoother than exact match on a small validation set, so it picks the best weights
    uses_labels = False
    pipeline_tag = "question-answering"
    does = "finds the answer to a question as a span of the text it is asked about"
    tuned_as = "fine-tuned for extractive question answering"

    @classmethod
    def model_kwargs(cls, num_labels, id2label) -> dict:
        return {}

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> PreparedData:
        from llmnb.finetuning.data import hold_out

        examples, answer_column = read_questions(data, "training data")
        if eval is not None:
            eval_examples, _ = read_questions(eval, "eval data")
        else:
            examples, eval_examples = hold_out(examples, config.eval_fraction, config.seed, "questions")

        def split(rows):
            return [{k: r[k] for k in ("question", "context", "where")} for r in rows], [r["answers"] for r in rows]

        (texts, targets), (eval_texts, eval_targets) = split(examples), split(eval_examples)
        return PreparedData(texts, targets, eval_texts, eval_targets, None, "question", answer_column)

    # ------------------------------------------------------------------ tokens
    def encode(self, tokenizer, examples, answers, max_length) -> QAEncoded:
        """Question + context windows; each window's answer as token positions, or (0, 0) for [CLS]."""
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("task='qa' needs a fast tokenizer (its character offsets map answers to tokens); "
                              f"{type(tokenizer).__name__} is not one. Use a model that ships a tokenizer.json.")
        questions = [e["question"].strip() for e in examples]  # leading spaces only waste window room
        enc = QAEncoded(input_ids=[], targets=[], contexts=[e["context"] for e in examples],
                        references=[a["text"] for a in answers] if answers is not None else [])
        ids, type_ids = [], []
        for start in range(0, len(examples), ENCODE_CHUNK):
            # Whole pairs, untruncated (verbose=False: a pair longer than the model is expected here);
            # the windows are cut below.
            out = tokenizer(questions[start:start + ENCODE_CHUNK], enc.contexts[start:start + ENCODE_CHUNK],
                            return_offsets_mapping=True, return_attention_mask=False, verbose=False)
            for i in range(len(out["input_ids"])):
                where = examples[start + i].get("where", f"Question {start + i}")
                answer = answers[start + i] if answers is not None else None
                parts = out.sequence_ids(i)  # None: special token, 0: question, 1: context
                for window in self.windows(parts, max_length, where):
                    ids.append([out["input_ids"][i][k] for k in window])
                    if "token_type_ids" in out:  # BERT tells question from context by segment
                        type_ids.append([out["token_type_ids"][i][k] for k in window])
                    # Character spans of the context's tokens only: the question's and the special tokens' are None.
                    offsets = [tuple(out["offset_mapping"][i][k]) if parts[k] == 1 else None for k in window]
                    enc.offsets.append(offsets)
                    enc.example_of.append(start + i)
                    enc.targets.append(answer_tokens(offsets, answer["answer_start"][0], len(answer["text"][0])) if answer else (0, 0))
        enc.input_ids = TokenRows.from_lists(ids)
        enc.type_ids = TokenRows.from_lists(type_ids) if type_ids else None
        return enc

    def windows(self, parts, max_length, where) -> list[list[int]]:
        """Token positions of each window of a pair (`parts`: its sequence ids): the question with its special tokens, a stretch of
        the context, the closing special tokens; neighbouring stretches share doc_stride tokens.

        This is what the tokenizer's own `return_overflowing_tokens` does, done here because tokenizers
        0.23.1-0.23.2 return too few windows for long inputs (huggingface/tokenizers#2091).
        """
        context = [k for k, part in enumerate(parts) if part == 1]
        length = len(parts)
        if length <= max_length or not context:
            return [list(range(length))[:max_length]]
        first, end = context[0], context[-1] + 1
        room = max_length - first - (length - end)  # context tokens per window
        if room <= self.options.doc_stride:
            raise DataError(
                f"{where}: the question and special tokens take {first + length - end} of max_length={max_length} tokens, "
                f"leaving {max(room, 0)} for the context in each window, which must be more than doc_stride="
                f"{self.options.doc_stride} (the tokens windows share). Raise max_length, lower doc_stride, or shorten the question."
            )
        found = []
        for a in range(first, end, room - self.options.doc_stride):
            b = min(a + room, end)
            found.append([*range(first), *range(a, b), *range(end, length)])
            if b == end:
                break
        return found

    def collate(self, enc, rows, pad):
        import torch

        batch = collate(enc, rows, pad, with_labels=False)
        if enc.type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(enc.type_ids.padded(rows, 0)[0])
        batch["start_positions"] = torch.tensor([enc.targets[r][0] for r in rows])
        batch["end_positions"] = torch.tensor([enc.targets[r][1] for r in rows])
        return batch

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        questions, windows = len(enc.contexts), len(enc)
        empty = sum(1 for t in enc.targets if t == (0, 0)) / max(windows, 1)
        return [f"{questions} questions in {windows} windows of up to {config.max_length} tokens (doc_stride "
                f"{self.options.doc_stride}); {empty:.0%} of the windows lack the answer and point at [CLS]"]

    # ------------------------------------------------------------------ evaluation and prediction
    def evaluate(self, model, enc, tokenizer, batch_size) -> dict[str, float]:
        import llmnb.metrics as metrics

        found, loss = best_answers(self, model, enc, pad_id(tokenizer), batch_size)
        scores = metrics.compute(["squad"], [a["answer"] for a in found], enc.references)
        return {"eval_loss": loss, **{f"eval_{k}": v for k, v in scores.items()}}

    def encode_like(self, result, data, text=None, label=None) -> QAEncoded:
        examples, _ = read_questions(data, "eval data")
        return self.encode(result.tokenizer, examples, [e["answers"] for e in examples], result.config.max_length)

    def predict(self, result, texts, batch_size, return_scores, **options):
        raise DataError("task='qa' answers a question about a context: ft.predict(question='Where did Mia go?', "
                        "context='Mia took the train to Carrow.'), or lists of both.")

    def predict_parts(self, result, batch_size=64, return_scores=False, question=None, context=None):
        """{"answer", "score", "start", "end"} (a character span of the context) for one question, or a list
        for lists; one context with many questions is asked each of them."""
        if question is None or context is None:
            raise DataError("task='qa' needs both question=... and context=...")
        single = isinstance(question, str) and isinstance(context, str)
        questions = [question] if isinstance(question, str) else list(question)
        contexts = [context] * len(questions) if isinstance(context, str) else list(context)
        if len(questions) != len(contexts):
            raise DataError(f"{len(questions)} questions but {len(contexts)} contexts: give one context per question, or one for all.")
        examples = [{"question": str(q), "context": str(c)} for q, c in zip(questions, contexts)]
        enc = self.encode(result.tokenizer, examples, None, result.config.max_length)
        found, _ = best_answers(self, result.model, enc, pad_id(result.tokenizer), batch_size)
        return found[0] if single else found


# ---------------------------------------------------------------------- the steps, one function each
def read_questions(data, what: str) -> tuple[list[dict], str]:
    """({"question", "context", "answers": {"text", "answer_start"}} per row, the answer column's name)."""
    from llmnb.finetuning.data import to_frame

    frame = to_frame(data, what)
    answer_column = next((c for c in ("answers", "answer") if c in frame.columns), None)
    if not {"question", "context"} <= set(frame.columns) or answer_column is None:
        raise DataError(
            "task='qa' reads 'question', 'context' and 'answers' columns (SQuAD form: answers = {'text': [...], "
            "'answer_start': [...]}, character offsets into the context), or 'question', 'context' and a plain "
            f"'answer' found in the context. The {what}'s columns are: {', '.join(frame.columns)}."
        )
    examples = []
    for row, record in enumerate(frame.to_dict("records")):
        question, context = str(record["question"]), str(record["context"])
        if answer_column == "answers":
            answers = squad_answers(record["answers"], context, row, what)
        else:
            answer = str(record["answer"])
            start = context.find(answer) if answer.strip() else -1
            if start < 0:
                raise DataError(f"Row {row} of the {what}: the answer {answer[:60]!r} is not in its context "
                                f"({context[:60]!r}...). An extractive answer is a span copied from the context.")
            answers = {"text": [answer], "answer_start": [start]}
        examples.append({"question": question, "context": context, "answers": answers, "where": f"Row {row} of the {what}"})
    return examples, answer_column


def squad_answers(value, context: str, row: int, what: str) -> dict:
    """A SQuAD `answers` value checked against its context: every answer_start must point at its text."""
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        raise DataError(f"Row {row} of the {what}: 'answers' must be {{'text': [...], 'answer_start': [...]}}, not {str(value)[:80]!r}.")
    texts, starts = [str(t) for t in value["text"]], [int(s) for s in value["answer_start"]]
    if not texts or len(texts) != len(starts):
        raise DataError(f"Row {row} of the {what} has {len(texts)} answer texts and {len(starts)} answer_starts; each "
                        "answer needs one of each (questions with no answer, SQuAD v2's, are not supported).")
    for text, start in zip(texts, starts):
        if context[start:start + len(text)] != text:
            raise DataError(f"Row {row} of the {what}: the answer {text[:60]!r} is not in its context at answer_start={start} "
                            f"(there: {context[start:start + len(text)][:60]!r}). answer_start counts characters from 0.")
    return {"text": texts, "answer_start": starts}


def answer_tokens(offsets, start_char: int, length: int) -> tuple[int, int]:
    """The first and last context token of the answer's characters in this window, or (0, 0) ([CLS])
    when the window does not hold all of it."""
    end_char = start_char + length
    context = [i for i, span in enumerate(offsets) if span is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    first = max(i for i in context if offsets[i][0] <= start_char)
    last = min(i for i in context if offsets[i][1] >= end_char)
    return first, last


def best_answers(task, model, enc, pad, batch_size) -> tuple[list[dict], float]:
    """(the most probable span of each question over all of its windows, mean loss per window)."""
    import torch

    device = next(model.parameters()).device
    found = [{"answer": "", "score": 0.0, "start": 0, "end": 0} for _ in enc.contexts]
    total = 0.0
    with torch.no_grad(), eval_mode(model):
        for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
            batch = {k: v.to(device) for k, v in task.collate(enc, rows, pad).items()}
            out = model(**batch)
            total += float(out.loss) * len(rows)
            for k, r in enumerate(rows):
                n = int(enc.lengths[r])
                # Probabilities over the window's real tokens, [CLS] included: a window that says
                # "not here" spreads little probability over its spans.
                start_p = torch.softmax(out.start_logits[k, :n].float(), -1)
                end_p = torch.softmax(out.end_logits[k, :n].float(), -1)
                span = best_span(start_p, end_p, enc.offsets[r])
                question = enc.example_of[r]
                if span and span[0] > found[question]["score"]:
                    score, (s, e) = span
                    context = enc.contexts[question]
                    found[question] = {"answer": context[s:e], "score": score, "start": s, "end": e}
    return found, total / max(len(enc), 1)


def best_span(start_p, end_p, offsets) -> tuple[float, tuple[int, int]] | None:
    """(probability, character span) of the likeliest answer in one window: start and end among the
    N_BEST likeliest of each, both inside the context, end not before start, at most MAX_ANSWER_TOKENS."""
    best = None
    starts = start_p.topk(min(N_BEST, len(start_p))).indices.tolist()
    ends = end_p.topk(min(N_BEST, len(end_p))).indices.tolist()
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                continue
            score = float(start_p[s] * end_p[e])
            if best is None or score > best[0]:
                best = (score, (offsets[s][0], offsets[e][1]))
    return best
