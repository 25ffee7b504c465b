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

from dataclasses import dataclass, field

from llmnb.core.config import check_number
from llmnb.core.models import eval_mode, pad_id
from llmnb.core.task import PreparedData, Task, register, task_option
from llmnb.errors import ConfigError, DataError
from llmnb.finetuning.batches import Encoded, batch_order, collate
from llmnb.instruct import chat
from llmnb.instruct.packing import best_fit_decreasing, choose_packing, packed_batch, packed_forward
from llmnb.instruct.result import ChatResult
from llmnb.tasks.causal_lm import CausalLM

SHOWN_SAMPLES = 4  # answers shown beside their reference at each evaluation


@dataclass
class ChatEncoded(Encoded):
    """Tokenized conversations: ids, labels (IGNORE outside the answers), prompts and references."""

    prompts: list = field(default_factory=list)  # each conversation up to its last answer


@dataclass
class SFTOptions:
    train_on_prompt: bool = task_option(
        False, "train on the prompt's tokens too, not only the answers' (the default trains answers only).")
    packing: bool | str = task_option(
        "auto", "put several examples in one row up to max_length, each attending only to itself: the same loss "
        "as unpacked, with less padding. auto: only where it pays (flash attention, or padding that outweighs the "
        "block mask's cost; the plan says which and why); true: always; false: one example per row.")
    eval_generate: int = task_option(64, "validation prompts answered (greedy) at each evaluation for exact match; 0: none.")

    def __post_init__(self):
        check_number("eval_generate", self.eval_generate, minimum=0, integer=True)
        self.packing = packing_choice(self.packing)


def packing_choice(value) -> bool | str:
    """packing as "auto", True or False; the magics' words (true, off, ...) read as True or False."""
    words = {"auto": "auto", "true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ConfigError(f"packing={value!r} is not allowed; choose auto (pack only where it pays), True or False.")


@register
class SFT(CausalLM):
    """Instruction tuning: the model learns to answer, on answer tokens only."""

    name = "sft"
    Options = SFTOptions
    data_forms = ("messages", "prompt + completion", "instruction (+ input) + output")
    result_class = ChatResult
    export_template = "chat"  # tools/export.py's script for it
    metrics = ("exact_match",)
    headline = "loss"
    eval_at_start = True  # step 0 of the curve: how the model answers before any tuning
    chat = True
    continues_results = True  # a result passed as the model (the pretrained GPT) is copied, then tuned
    does = "answers a prompt in the format of its instruction data (a chat template)"
    tuned_as = "instruction-tuned"

    def __init__(self, config=None):
        super().__init__(config)
        self.train_on_prompt = bool(self.options.train_on_prompt)
        self.packing = self.options.packing  # "auto", True or False (SFTOptions checked it)
        self.packed: bool | None = None  # the layout chosen (before_training), and why
        self.packing_reason = ""
        self.max_length = getattr(config, "max_length", 128)
        self.eval_generate = self.options.eval_generate

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> PreparedData:
        from llmnb.finetuning.data import hold_out, to_frame

        frame = to_frame(data, "training data")
        form = self.data_form(frame.columns, "training data")
        examples = self.read(frame, form, "training data")
        if eval is not None:
            eval_examples = self.read(to_frame(eval, "eval data"), None, "eval data")
        else:
            examples, eval_examples = hold_out(examples, config.eval_fraction, config.seed, "examples")
        return PreparedData([e[0] for e in examples], [e[1] for e in examples],
                            [e[0] for e in eval_examples], [e[1] for e in eval_examples], text_column=form)

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
        for messages, target in zip(conversations, targets):
            try:
                row_ids, row_labels = chat.tokenize_conversation(tokenizer, messages, max_length, self.train_on_prompt)
            except DataError as e:  # e.g. the chat template refused it: name the row
                raise DataError(f"Row {target['row']} of the {target['what']}: {e}") from None
            ids.append(row_ids)
            labels.append(row_labels)
        empty = [t for t, row in zip(targets, labels) if all(x == chat.IGNORE for x in row)]
        if empty:
            # Measured in full on purpose: verbose=False keeps transformers' too-long warning out of the cell.
            longest = max(len(tokenizer(chat.render(tokenizer, m), add_special_tokens=False, verbose=False)["input_ids"])
                          for m in conversations)
            rows = ", ".join(str(t["row"]) for t in empty[:8]) + (", ..." if len(empty) > 8 else "")
            cut = (f"{len(empty)} of {len(conversations)} examples of the {empty[0]['what']} have no answer token left to "
                   f"train on (rows {rows}): truncating to max_length={max_length} tokens cut their answers away")
            if self.context and longest > self.context:  # max_length stops at the context: raising it cannot help
                block = -(-(longest + 16) // 64) * 64  # room for the longest, rounded up as block sizes usually are
                raise DataError(
                    f"{cut}, and the longest example ({longest} tokens) is longer than the model's whole context "
                    f"({self.context} tokens), which max_length cannot go beyond. Use a model with a longer context: for a "
                    f"GPT from llmnb.pretrain, pretrain it again with block_size={block} (%pretrain --block {block}); "
                    "or shorten those prompts."
                )
            raise DataError(
                f"{cut}. Raise max_length (--max-length; the longest example is {longest} tokens) or shorten those prompts."
            )
        return ChatEncoded(
            input_ids=ids, targets=[t["reference"] for t in targets], target_ids=labels,
            prompts=[chat.prompt_of(m) for m in conversations],
        )

    # ------------------------------------------------------------------ batches and loss
    def before_training(self, model, encs, batch_size: int, pad: int) -> None:
        self.choose_layout(model, encs[0])

    def choose_layout(self, model, enc) -> bool:
        """Decide packed or padded rows for training `model` on `enc` (once: the plan says why)."""
        from llmnb.core.models import resolve_device

        config = self.config
        batches = batch_order(enc.lengths, config.batch_size, True, config.seed, config.group_by_length)
        device = resolve_device(getattr(config, "device", "auto"))
        self.packed, self.packing_reason = choose_packing(self.packing, model, enc.lengths, batches, self.max_length, device)
        return self.packed

    def batches(self, enc, config, epoch, pad):
        if self.packed is None:
            raise RuntimeError("SFT.batches before choose_layout: packing='auto' is decided once the model is known.")
        for rows in batch_order(enc.lengths, config.batch_size, True, config.seed + epoch, config.group_by_length):
            yield self.collate(enc, rows, pad, packed=self.packed)

    def collate(self, enc, rows, pad, packed: bool = False) -> dict:
        import torch

        if packed:
            bins = best_fit_decreasing(enc.lengths[rows], self.max_length)
            return packed_batch(enc.input_ids, enc.target_ids, [[rows[i] for i in b] for b in bins], pad)
        batch = collate(enc, rows, pad, with_labels=False)
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
        scores = {"eval_loss": loss, "eval_perplexity": metrics.perplexity(loss), "eval_token_accuracy": accuracy}
        n = min(len(enc), self.eval_generate)
        if n:
            longest = max(len(tokenizer(r, add_special_tokens=False, verbose=False)["input_ids"]) for r in enc.targets[:n])
            answers = generate_answers(model, tokenizer, enc.prompts[:n], max_new_tokens=longest + 8, batch_size=batch_size)
            scores["eval_exact_match"] = metrics.compute(["exact_match"], answers, enc.targets[:n])["exact_match"]
            self.samples = [
                {"prompt": p[-1]["content"] if p else "", "answer": a, "reference": r}
                for p, a, r in zip(enc.prompts[:SHOWN_SAMPLES], answers, enc.targets)
            ]
        return scores

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 64, **options):
        from llmnb.instruct.generation import generate_answers

        conversations = [[{"role": "user", "content": t}] for t in texts]
        return generate_answers(result.model, result.tokenizer, conversations, max_new_tokens, batch_size), None

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        return plan_lines(enc, tokenizer, config, self.train_on_prompt, self.packing, self.packed, self.packing_reason)

    def encode_like(self, result, data, text=None, label=None):
        from llmnb.finetuning.data import to_frame

        examples = self.read(to_frame(data, "eval data"), None, "eval data")
        return self.encode(result.tokenizer, [e[0] for e in examples], [e[1] for e in examples], result.config.max_length)


def answer_loss(model, enc, pad, batch_size, task) -> tuple[float, float]:
    """(mean loss per answer token, share of answer tokens predicted exactly), unpacked batches."""
    import torch

    device = next(model.parameters()).device
    total, right, count = 0.0, 0, 0
    with torch.no_grad(), eval_mode(model):
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


def plan_lines(enc, tokenizer, config, train_on_prompt: bool, setting=None, packed=None, reason="") -> list[str]:
    """The plan's masking and packing lines for an instruction-tuning run (the packing line once
    the layout was chosen: which, as `setting` asked for, and why; none where rows are never packed,
    as in preference tuning)."""
    if len(enc) == 0:
        return []
    what = "every token (train_on_prompt)" if train_on_prompt else "the answers"
    lines = [f"loss on {trained_share(enc):.0%} of the tokens: {what}. Example (grey: not trained):"]
    example = chat.masked_example(tokenizer, enc.input_ids[0].tolist(), enc.target_ids[0].tolist())
    lines.append(example.replace("\n", " / "))
    if packed is not None:
        asked = "auto" if setting == "auto" else f"packing={setting}"
        lines.append(f"packing {'on' if packed else 'off'} ({asked}): {reason}")
    return lines
