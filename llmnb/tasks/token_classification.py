"""`--task token-classification` (alias `ner`): one tag per word, such as the names in a sentence.

    ft = llmnb.finetune("minilm", "entities", eval="entities_test", task="ner")
    ft.predict("Kate flew to Lisbon")
    # [{"entity": "PER", "text": "Kate", "start": 0, "end": 4, "score": 0.97}, {"entity": "LOC", ...}]

Data: a `tokens` column (a list of words) and a `tags` column (one tag per word: strings such as
"B-PER", or integers with `label_names`, as Hugging Face datasets hold CoNLL-2003), or a CoNLL text
file (one `word ... tag` a line, the tag last, a blank line between sentences). The tokenizer may
split a word into pieces: the first piece carries the word's tag and the others get no loss (-100),
as in the Hugging Face token-classification recipe. Evaluation: entity-level precision, recall and
F1 (the seqeval convention) and token accuracy, through the shipped llmnb/metrics/seqeval.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.core.models import pad_id
from llmnb.core.task import PreparedData, register, task_option
from llmnb.errors import ConfigError, DataError
from llmnb.finetuning.batches import Encoded, batch_order, collate
from llmnb.finetuning.data import LabelMap
from llmnb.tasks.classification import Classification

IGNORE = -100  # label of the pieces that get no loss: special tokens and a word's later pieces
WORD_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("tags", "ner_tags", "labels", "label")
CONLL_SUFFIXES = (".conll", ".iob", ".bio", ".txt")
# Plain text -> words the way the bundled data (and CoNLL) splits them: runs of letters and digits
# (hyphenated ones whole), "'s" on its own, and every other mark a word of its own.
WORD = re.compile(r"\w+(?:-\w+)*|['’]s\b|[^\w\s]")


@dataclass
class TokenClassificationOptions:
    label_names: str | None = task_option(
        None, "the names of integer tags, in id order, comma-separated (e.g. O,B-PER,I-PER); a datasets.Dataset's "
        "ClassLabel names are read by themselves.")

    def __post_init__(self):
        names = self.label_names
        if isinstance(names, str):  # from the magic: O,B-PER,I-PER
            names = [n.strip() for n in names.split(",") if n.strip()]
        self.label_names = list(names) if names else None


@dataclass
class TagEncoded(Encoded):
    """Tokenized sentences: `target_ids` holds each piece's tag id (IGNORE where no loss), `words`
    the sentences' words, `word_of_piece` the word number of each piece that carries a tag."""

    words: list = field(default_factory=list)
    word_of_piece: list = field(default_factory=list)


@register
class TokenClassification(Classification):
    """A tag for every word: names of people, places and organisations (chapter 6)."""

    name = "token-classification"
    aliases = ("ner",)
    Options = TokenClassificationOptions
    data_forms = ("tokens (a list of words) + tags (one per word)", "a CoNLL text file")
    auto_class = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    export_template = None
    metrics = ("precision", "recall", "f1", "accuracy")
    headline = "f1"
    pipeline_tag = "token-classification"
    does = "tags each word of a text, e.g. the names of people, places and organisations"
    tuned_as = "fine-tuned for token classification"

    def __init__(self, config=None):
        super().__init__(config)
        self.labels: LabelMap | None = None  # the run's tags; set by prepare (or from a result)

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> PreparedData:
        from llmnb.finetuning.data import stratified_split

        words, tags, columns = self.read(data, config.text, config.label, "training data")
        given = self.options.label_names or _class_label_names(data, columns[1])
        self.labels = LabelMap([str(n) for n in given]) if given else LabelMap.from_values(sorted({t for s in tags for t in s}))
        check_tags(tags, self.labels, "training data", words)
        if eval is not None:
            eval_words, eval_tags, _ = self.read(eval, config.text, config.label, "eval data")
            check_tags(eval_tags, self.labels, "eval data", eval_words)
        elif config.eval_fraction > 0:
            keep, held = stratified_split([0] * len(words), config.eval_fraction, config.seed)
            if not keep or not held:
                raise DataError(f"Only {len(words)} sentences: too few to hold some out for validation. Add data or pass eval=...")
            eval_words, eval_tags = [words[i] for i in held], [tags[i] for i in held]
            words, tags = [words[i] for i in keep], [tags[i] for i in keep]
        else:
            eval_words, eval_tags = [], []
        return PreparedData(words, tags, eval_words, eval_tags, self.labels, columns[0], columns[1])

    def read(self, data, text=None, label=None, what="data") -> tuple[list, list, tuple]:
        """(sentences as word lists, their tags as names, (word column, tag column)) from a table or a CoNLL file."""
        if isinstance(data, (str, Path)) and Path(data).expanduser().suffix.lower() in CONLL_SUFFIXES and Path(data).expanduser().is_file():
            words, tags = read_conll(Path(data).expanduser())
            return words, tags, ("tokens", "tags")
        from llmnb.finetuning.data import to_frame

        names = self.options.label_names or _class_label_names(data, label or _first(getattr(data, "column_names", ()), TAG_COLUMNS))
        frame = to_frame(data, what)
        word_col = text or _first(frame.columns, WORD_COLUMNS)
        tag_col = label or _first(frame.columns, TAG_COLUMNS)
        if word_col not in frame.columns or tag_col not in frame.columns:
            raise DataError(
                f"task='token-classification' reads a 'tokens' column (each row a list of words) and a 'tags' column "
                f"(one tag per word, such as 'B-PER' or 'O'), or a CoNLL text file ({', '.join(CONLL_SUFFIXES)}: one "
                f"'word tag' a line, a blank line between sentences). The {what}'s columns are: {', '.join(frame.columns)}; "
                "name others with --text WORDS --label TAGS."
            )
        words, tags = [], []
        for row, (sentence, sentence_tags) in enumerate(zip(frame[word_col], frame[tag_col])):
            sentence, sentence_tags = _as_list(sentence, row, word_col, what), _as_list(sentence_tags, row, tag_col, what)
            if not sentence:
                raise DataError(f"Row {row} of the {what} is an empty sentence: its '{word_col}' has no words. Remove the row.")
            if len(sentence) != len(sentence_tags):
                raise DataError(f"Row {row} of the {what} has {len(sentence)} words but {len(sentence_tags)} tags: "
                                "each word needs exactly one tag.")
            words.append([str(w) for w in sentence])
            tags.append(_tag_names(sentence_tags, names, row, what))
        return words, tags, (word_col, tag_col)

    # ------------------------------------------------------------------ tokens
    def encode(self, tokenizer, sentences, tags, max_length) -> TagEncoded:
        """Each word's tag on its first piece, IGNORE on its other pieces and on [CLS]/[SEP]."""
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("task='token-classification' needs a fast tokenizer (it maps pieces back to words); "
                              f"{type(tokenizer).__name__} is not one. Use a model that ships a tokenizer.json.")
        index = {name: i for i, name in enumerate(self.labels.names)} if self.labels else {}
        ids, labels, word_of_piece = [], [], []
        for start in range(0, len(sentences), 1000):
            chunk = [list(s) for s in sentences[start:start + 1000]]
            out = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length,
                            return_attention_mask=False, return_token_type_ids=False)
            for i, row_ids in enumerate(out["input_ids"]):
                row_tags = tags[start + i] if tags is not None else ["O"] * len(chunk[i])  # predict: no tags
                piece_labels = first_piece_labels(out.word_ids(i), [index.get(t, 0) for t in row_tags])
                ids.append(row_ids)
                labels.append(piece_labels)
                word_of_piece.append([w for w, label in zip(out.word_ids(i), piece_labels) if label != IGNORE])
        return TagEncoded(input_ids=ids, targets=list(tags) if tags is not None else [None] * len(ids), target_ids=labels,
                          words=list(sentences), word_of_piece=word_of_piece)

    def collate(self, enc, rows, pad):
        import torch

        batch = collate(enc, rows, pad, with_labels=False)
        batch["labels"] = torch.from_numpy(enc.target_ids.padded(rows, IGNORE)[0])
        return batch

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        trained = float((enc.target_ids.flat != IGNORE).sum()) / max(enc.num_tokens, 1)
        return [f"{len(self.labels.names)} tags ({', '.join(self.labels.names)}); loss on the first piece of each word "
                f"({trained:.0%} of the tokens)"]

    # ------------------------------------------------------------------ evaluation and prediction
    def evaluate(self, model, enc, tokenizer, batch_size) -> dict[str, float]:
        import llmnb.metrics as metrics

        per_word, loss = word_predictions(self, model, enc, pad_id(tokenizer), batch_size)
        predicted = [[self.labels.names[label] for label, _ in row] for row in per_word]
        scores = metrics.compute(["seqeval"], predicted, enc.targets)
        return {"eval_loss": loss, **{f"eval_{k}": v for k, v in scores.items()}}

    def encode_like(self, result, data, text=None, label=None) -> TagEncoded:
        self.labels = result.labels
        words, tags, _ = self.read(data, text or result.text_column, label or result.label_column, "eval data")
        check_tags(tags, self.labels, "eval data", words)
        return self.encode(result.tokenizer, words, tags, result.config.max_length)

    def predict(self, result, texts, batch_size, return_scores, **options):
        """The entities of each text with their character spans; with return_scores, every word's tag and probability."""
        self.labels = result.labels
        spans = [[(m.group(), m.start(), m.end()) for m in WORD.finditer(text)] for text in texts]
        filled = [i for i, s in enumerate(spans) if s]  # a text with no word has no entity
        per_word = [[] for _ in texts]
        if filled:
            enc = self.encode(result.tokenizer, [[w for w, _, _ in spans[i]] for i in filled], None, result.config.max_length)
            for i, row in zip(filled, word_predictions(self, result.model, enc, pad_id(result.tokenizer), batch_size)[0]):
                per_word[i] = row
        values, scores = [], []
        for text, words, row in zip(texts, spans, per_word):
            tagged = [{"word": w, "label": self.labels.names[label], "score": p, "start": s, "end": e}
                      for (w, s, e), (label, p) in zip(words, row)]
            values.append(group_entities(text, tagged))
            scores.append(tagged)
        return values, (scores if return_scores else None)


# ---------------------------------------------------------------------- the steps, one function each
def first_piece_labels(word_ids, word_tags) -> list[int]:
    """A word's tag id on its first piece; IGNORE on its later pieces and on special tokens (word id None)."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE if word is None or word == previous else word_tags[word])
        previous = word
    return labels


def word_predictions(task, model, enc, pad, batch_size) -> tuple[list, float]:
    """(per sentence, (tag id, probability) of every word, and the loss per tagged piece); words that
    truncation cut away are tagged O with probability 1, so each sentence keeps its length."""
    import torch

    device = next(model.parameters()).device
    outside = task.labels.names.index("O") if "O" in task.labels.names else 0
    was_training = model.training
    model.eval()
    per_word, total, count = [None] * len(enc), 0.0, 0
    try:
        with torch.no_grad():
            for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
                batch = {k: v.to(device) for k, v in task.collate(enc, rows, pad).items()}
                out = model(**batch)
                tagged = batch["labels"] != IGNORE
                total, count = total + float(out.loss) * int(tagged.sum()), count + int(tagged.sum())
                best_p, best = torch.softmax(out.logits.float(), -1).max(-1)
                for k, r in enumerate(rows):
                    found = dict(zip(enc.word_of_piece[r], zip(best[k][tagged[k]].tolist(), best_p[k][tagged[k]].tolist())))
                    per_word[r] = [found.get(w, (outside, 1.0)) for w in range(len(enc.words[r]))]
    finally:
        model.train(was_training)
    return per_word, total / max(count, 1)


def group_entities(text: str, tagged: list[dict]) -> list[dict]:
    """Words tagged B-X / I-X -> entities {"entity", "text", "start", "end", "score"}, as seqeval counts
    them: B- starts one, I- of the same type continues it, an I- after anything else starts one."""
    found, open_kind, word_scores = [], None, []
    for word in tagged:
        prefix, _, kind = word["label"].rpartition("-")
        if word["label"] == "O" or not kind:
            open_kind = None
            continue
        if prefix == "I" and kind == open_kind:
            found[-1]["end"] = word["end"]
            word_scores[-1].append(word["score"])
        else:
            found.append({"entity": kind, "start": word["start"], "end": word["end"]})
            word_scores.append([word["score"]])
        open_kind = kind
    return [{"entity": e["entity"], "text": text[e["start"]:e["end"]], "start": e["start"], "end": e["end"],
             "score": sum(s) / len(s)} for e, s in zip(found, word_scores)]


def read_conll(path: Path) -> tuple[list, list]:
    """Sentences from a CoNLL file: `word ... tag` a line (the tag is the last column), a blank line
    between sentences, -DOCSTART- lines skipped."""
    words, tags, sentence, sentence_tags = [], [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines() + [""], start=1):
        parts = line.split()
        if parts and parts[0] == "-DOCSTART-":
            continue
        if not parts:
            if sentence:
                words.append(sentence)
                tags.append(sentence_tags)
            sentence, sentence_tags = [], []
            continue
        if len(parts) < 2:
            raise DataError(f"Line {number} of '{path.name}' has one column ({line.strip()!r}); a CoNLL line is "
                            "'word tag' (the tag last), with a blank line between sentences.")
        sentence.append(parts[0])
        sentence_tags.append(parts[-1])
    if not words:
        raise DataError(f"'{path.name}' holds no sentence: a CoNLL file has one 'word tag' a line.")
    return words, tags


def check_tags(tags, labels: LabelMap, what: str, words) -> None:
    """Every tag must be one the model has an output for."""
    known = set(labels.names)
    for row, sentence_tags in enumerate(tags):
        for position, tag in enumerate(sentence_tags):
            if tag not in known:
                raise DataError(
                    f"Row {row} of the {what} has the tag {tag!r} (on word {position}, {words[row][position]!r}), which is not "
                    f"among the known tags: {', '.join(labels.names)}. Fix the tag, or give every tag in label_names."
                )


def _tag_names(tags, names, row, what) -> list[str]:
    """Integer tags -> their names (label_names); string tags as they are."""
    out = []
    for tag in tags:
        tag = tag.item() if hasattr(tag, "item") else tag
        if isinstance(tag, int) and not isinstance(tag, bool):
            if not names:
                raise DataError(f"Row {row} of the {what} has integer tags ({tag}, ...) but no names for them: pass "
                                "label_names=['O', 'B-PER', ...] in id order, or a datasets.Dataset whose tags are ClassLabels.")
            if not 0 <= tag < len(names):
                raise DataError(f"Row {row} of the {what} has the tag {tag}, which is not among the known tags: "
                                f"label_names has {len(names)} ({', '.join(map(str, names))}), so ids run from 0 to {len(names) - 1}.")
            tag = names[tag]
        out.append(str(tag))
    return out


def _class_label_names(data, column) -> list | None:
    """The tag names a datasets.Dataset keeps in its features (Sequence(ClassLabel)), as CoNLL-2003 does."""
    feature = getattr(data, "features", {}).get(column) if column and hasattr(data, "features") else None
    inner = getattr(feature, "feature", None)
    return list(inner.names) if hasattr(inner, "names") else None


def _as_list(value, row, column, what) -> list:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return list(value)
    raise DataError(f"Row {row} of the {what}: '{column}' holds a {type(value).__name__} ({str(value)[:40]!r}), not a list "
                    "(one entry per word). Split the sentence into a list of words first.")


def _first(columns, names):
    return next((c for c in names if c in list(columns)), None)
