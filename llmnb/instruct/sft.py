"""`--task sft`: instruction tuning of a causal language model on conversations.

    ft = llmnb.finetune(gpt, "instructions", eval="instructions_test", task="sft")
    ft.chat("Mia had a red ball. ... What colour was the ball?")

Data: a `messages` column, or `prompt` + `completion`, or `instruction` (+ `input`) + `output`.
The loss covers the assistant's tokens only (`train_on_prompt=True`: every token); an example
whose answer truncation cut away is an error before training, never a silent skip. Batches are
packed (`packing.py`) where it pays (`packing="auto"`, decided once the model is known), or as
`packing=True` / `False` says. Each evaluation reports the loss and perplexity on
answer tokens, token accuracy, and exact match of greedy answers against the references, with a
few of them shown beside their reference (chapter 10).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmnb.errors import DataError
from llmnb.finetuning.batches import Encoded, batch_order, collate
from llmnb.finetuning.tasks import CausalLM
from llmnb.instruct import chat
from llmnb.instruct.packing import best_fit_decreasing, choose_packing, packed_batch, packed_forward

SHOWN_SAMPLES = 4  # answers shown beside their reference at each evaluation


@dataclass
class ChatEncoded(Encoded):
    """Tokenized conversations: ids, labels (IGNORE outside the answers), prompts and references."""

    prompts: list = field(default_factory=list)  # each conversation up to its last answer


class SFT(CausalLM):
    """Instruction tuning: the model learns to answer, on answer tokens only."""

    name = "sft"
    metrics = ("exact_match",)
    headline = "loss"
    result_kind = "chat"
    eval_at_start = True  # step 0 of the curve: how the model answers before any tuning

    def __init__(self, config=None):
        self.train_on_prompt = bool(getattr(config, "train_on_prompt", False))
        self.packing = getattr(config, "packing", "auto")  # "auto", True or False (the config checked it)
        self.packed: bool | None = None  # the layout chosen (before_training), and why
        self.packing_reason = ""
        self.config = config
        self.max_length = getattr(config, "max_length", 128)
        self.eval_generate = getattr(config, "eval_generate", 64)
        self.samples: list[dict] = []  # the last evaluation's shown answers

    def for_config(self, config):
        return type(self)(config)

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> dict:
        from llmnb.finetuning.data import stratified_split, to_frame

        frame = to_frame(data, "training data")
        form = self.data_form(frame.columns, "training data")
        examples = self.read(frame, form, "training data")
        if eval is not None:
            eval_examples = self.read(to_frame(eval, "eval data"), None, "eval data")
        elif config.eval_fraction > 0:
            keep, held = stratified_split([0] * len(examples), config.eval_fraction, config.seed)
            if not keep or not held:
                raise DataError(f"Only {len(examples)} examples: too few to hold some out for validation. Add data or pass eval=...")
            eval_examples, examples = [examples[i] for i in held], [examples[i] for i in keep]
        else:
            eval_examples = []
        return {
            "train_texts": [e[0] for e in examples], "train_targets": [e[1] for e in examples],
            "eval_texts": [e[0] for e in eval_examples], "eval_targets": [e[1] for e in eval_examples],
            "labels": None, "text_column": form, "label_column": None,
        }

    def data_form(self, columns, what: str) -> str:
        return chat.find_form(columns)

    def read(self, frame, form, what) -> list[tuple]:
        """(conversation, {"row", "reference"}) per row of `frame`."""
        form = form or self.data_form(frame.columns, what)
        examples = []
        for row, record in enumerate(frame.to_dict("records")):
            try:
                messages = chat.to_conversation(record, form)
            except DataError as e:
                raise DataError(f"Row {row} of the {what}: {e}") from None
            if chat.reference_of(messages) is None and not self.train_on_prompt:
                raise DataError(f"Row {row} of the {what} has no assistant message, so there is nothing to learn from it.")
            examples.append((messages, {"row": row, "reference": chat.reference_of(messages), "what": what}))
        return examples

    def prepare_tokenizer(self, tokenizer) -> None:
        chat.ensure_chat_template(tokenizer)

    def encode(self, tokenizer, conversations, targets, max_length) -> ChatEncoded:
        ids, labels = [], []
        for messages in conversations:
            row_ids, row_labels = chat.tokenize_conversation(tokenizer, messages, max_length, self.train_on_prompt)
            ids.append(row_ids)
            labels.append(row_labels)
        empty = [t for t, row in zip(targets, labels) if all(x == chat.IGNORE for x in row)]
        if empty:
            longest = max(len(tokenizer(chat.render(tokenizer, m), add_special_tokens=False)["input_ids"]) for m in conversations)
            rows = ", ".join(str(t["row"]) for t in empty[:8]) + (", ..." if len(empty) > 8 else "")
            raise DataError(
                f"{len(empty)} of {len(conversations)} examples of the {empty[0]['what']} have no answer token left to "
                f"train on (rows {rows}): truncating to max_length={max_length} tokens cut their answers away. Raise "
                f"max_length (--max-length; the longest example is {longest} tokens) or shorten those prompts."
            )
        return ChatEncoded(
            input_ids=ids, targets=[t["reference"] for t in targets], target_ids=labels,
            prompts=[chat.prompt_of(m) for m in conversations],
        )

    # ------------------------------------------------------------------ batches and loss
    def before_training(self, model, encs, batch_size: int, pad_id: int) -> None:
        self.choose_layout(model, encs[0])

    def choose_layout(self, model, enc) -> bool:
        """Decide packed or padded rows for training `model` on `enc` (once: the plan says why)."""
        from llmnb.core.models import resolve_device

        config = self.config
        batches = batch_order(enc.lengths, config.batch_size, True, config.seed, config.group_by_length)
        device = resolve_device(getattr(config, "device", "auto"))
        self.packed, self.packing_reason = choose_packing(self.packing, model, enc.lengths, batches, self.max_length, device)
        return self.packed

    def batches(self, enc, config, epoch, pad_id):
        if self.packed is None:
            raise RuntimeError("SFT.batches before choose_layout: packing='auto' is decided once the model is known.")
        for rows in batch_order(enc.lengths, config.batch_size, True, config.seed + epoch, config.group_by_length):
            yield self.collate(enc, rows, pad_id, packed=self.packed)

    def collate(self, enc, rows, pad_id, packed: bool = False) -> dict:
        import torch

        if packed:
            bins = best_fit_decreasing(enc.lengths[rows], self.max_length)
            return packed_batch(enc.input_ids, enc.target_ids, [[rows[i] for i in b] for b in bins], pad_id)
        batch = collate(enc, rows, pad_id, with_labels=False)
        batch["labels"] = torch.from_numpy(enc.target_ids.padded(rows, chat.IGNORE)[0])
        return batch

    def compute_loss(self, model, batch):
        if "segment_ids" in batch:
            return packed_forward(model, batch).loss
        return model(**batch).loss

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model, enc, tokenizer, batch_size):
        import llmnb.metrics as metrics
        from llmnb.instruct.generation import generate_answers

        loss, accuracy = answer_loss(model, enc, pad_id(tokenizer), batch_size, self)
        scores = {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0)), "eval_token_accuracy": accuracy}
        n = min(len(enc), self.eval_generate)
        if n:
            longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in enc.targets[:n])
            answers = generate_answers(model, tokenizer, enc.prompts[:n], max_new_tokens=longest + 8, batch_size=batch_size)
            scores["eval_exact_match"] = metrics.compute(["exact_match"], answers, enc.targets[:n])["exact_match"]
            self.samples = [
                {"prompt": p[-1]["content"] if p else "", "answer": a, "reference": r}
                for p, a, r in zip(enc.prompts[:SHOWN_SAMPLES], answers, enc.targets)
            ]
        return scores

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 64):
        from llmnb.instruct.generation import generate_answers

        conversations = [[{"role": "user", "content": t}] for t in texts]
        return generate_answers(result.model, result.tokenizer, conversations, max_new_tokens, batch_size), None

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        return plan_lines(enc, tokenizer, config, self.packing, self.packed, self.packing_reason)

    def encode_like(self, result, data, text=None, label=None):
        from llmnb.finetuning.data import to_frame

        examples = self.read(to_frame(data, "eval data"), None, "eval data")
        return self.encode(result.tokenizer, [e[0] for e in examples], [e[1] for e in examples], result.config.max_length)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def answer_loss(model, enc, pad, batch_size, task) -> tuple[float, float]:
    """(mean loss per answer token, share of answer tokens predicted exactly), unpacked batches."""
    import torch

    device = next(model.parameters()).device
    total, right, count = 0.0, 0, 0
    with torch.no_grad():
        for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
            batch = {k: v.to(device) for k, v in task.collate(enc, rows, pad).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
            labels = batch["labels"][:, 1:]
            trained = labels != chat.IGNORE
            total += float(torch.nn.functional.cross_entropy(logits[trained], labels[trained], reduction="sum"))
            right += int((logits.argmax(-1)[trained] == labels[trained]).sum())
            count += int(trained.sum())
    return total / max(count, 1), right / max(count, 1)


def trained_share(enc) -> float:
    """Share of the tokens that the loss covers."""
    labels = enc.target_ids.flat
    return float((labels != chat.IGNORE).sum()) / max(len(labels), 1)


def plan_lines(enc, tokenizer, config, setting=None, packed=None, reason="") -> list[str]:
    """The plan's masking and packing lines for an instruction-tuning run (the packing line once
    the layout was chosen: which, as `setting` asked for, and why)."""
    if len(enc) == 0:
        return []
    what = "every token (train_on_prompt)" if config.train_on_prompt else "the answers"
    lines = [f"loss on {trained_share(enc):.0%} of the tokens: {what}. Example (grey: not trained):"]
    example = chat.masked_example(tokenizer, enc.input_ids[0].tolist(), enc.target_ids[0].tolist())
    lines.append(example.replace("\n", " / "))
    if config.task == "sft" and packed is not None:
        asked = "auto" if setting == "auto" else f"packing={setting}"
        lines.append(f"packing {'on' if packed else 'off'} ({asked}): {reason}")
    return lines
