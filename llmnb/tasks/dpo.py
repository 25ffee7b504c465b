"""`--task dpo`: direct preference optimisation (Rafailov et al., 2023) on (prompt, chosen, rejected).

    ft = llmnb.finetune(sft_model, "preferences", eval="preferences_test", task="dpo", beta=0.1)

The loss, as chapter 10 states it: with log pi(y|x) the summed log-probability of answer y,

    margin = beta * ([log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)])
    loss   = -log sigmoid(margin)

pi_ref is the starting model. Its log-probabilities do not change, so they are computed once,
before the first step, for every pair: no second copy of the model in memory (full fine-tuning)
and no second forward pass per step (LoRA would otherwise run the model again with its
adapters switched off). Logged at each evaluation: the loss, the reward margin (beta times the
bracket above), preference accuracy (share of pairs whose chosen answer the model finds likelier
than the rejected one: the model's own choice, comparable before and after), reward accuracy
(share whose chosen answer gained more than the rejected one since the start: TRL's
"rewards/accuracies", 0 at step 0) and the mean log-probabilities of chosen and rejected answers,
which should not collapse.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmnb.core.config import check_number
from llmnb.core.models import eval_mode, pad_id
from llmnb.core.task import Task, register, task_option
from llmnb.errors import DataError
from llmnb.finetuning.batches import TokenRows, batch_order
from llmnb.instruct import chat
from llmnb.tasks.sft import SFT, ChatEncoded, plan_lines


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """(loss per pair, chosen reward, rejected reward) from summed answer log-probabilities.

    Taught in chapter 10 (tutorials/10_assistant.ipynb).
    """
    import torch.nn.functional as F

    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    return -F.logsigmoid(chosen_reward - rejected_reward), chosen_reward, rejected_reward


def answer_logps(model, ids, mask, labels):
    """Summed log-probability of each row's labelled tokens (the answer), one number per row."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    trained = targets != chat.IGNORE
    picked = torch.gather(logits.log_softmax(-1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * trained).sum(-1)


@dataclass
class PairEncoded(ChatEncoded):
    """Chosen answers in input_ids/target_ids, rejected ones beside them, and pi_ref's log-probs."""

    rejected_ids: TokenRows | None = None
    rejected_labels: TokenRows | None = None
    reference: object = None  # numpy (pairs, 2): log pi_ref of chosen, rejected

    @property
    def lengths(self):
        import numpy as np

        return np.maximum(self.input_ids.lengths, self.rejected_ids.lengths)


@dataclass
class DPOOptions:
    beta: float = task_option(0.1, "how far the model may move from the starting (reference) model; larger keeps it closer.")
    rpo_alpha: float = task_option(
        0.0, "weight of the chosen answers' own loss (per token) added to DPO's, so their likelihood rises, not "
        "only the gap (TRL's rpo_alpha; 0: plain DPO).")

    def __post_init__(self):
        check_number("beta", self.beta, minimum=0, exclusive=True)
        check_number("rpo_alpha", self.rpo_alpha, minimum=0)


@register
class DPO(SFT):
    """Preference tuning: raise the chosen answer's likelihood relative to the rejected one's."""

    name = "dpo"
    Options = DPOOptions
    data_forms = ("prompt + chosen + rejected",)
    metrics = ("preference_accuracy", "reward_margin")
    headline = "loss"
    does = "answers a prompt, tuned to prefer the chosen over the rejected answers of its pairs"
    tuned_as = "preference-tuned (DPO)"

    def __init__(self, config=None):
        Task.__init__(self, config)  # not SFT's: none of its options apply to pairs
        self.beta = self.options.beta
        self.rpo_alpha = self.options.rpo_alpha
        self.precision = getattr(config, "precision", "auto")
        self.max_length = getattr(config, "max_length", 128)
        self.packing = self.packed = False  # a pair's two answers are compared row by row
        self.train_on_prompt = False
        self.eval_generate = 0

    def data_form(self, columns, what: str) -> str:
        missing = [c for c in ("prompt", "chosen", "rejected") if c not in columns]
        if missing:
            raise DataError(
                f"Preference tuning needs the columns prompt, chosen and rejected; the {what} lacks "
                f"{', '.join(missing)} (its columns: {', '.join(columns)})."
            )
        return "preference"

    def read(self, frame, form, what) -> list[tuple]:
        self.data_form(frame.columns, what)
        examples = []
        for row, record in enumerate(frame.to_dict("records")):
            try:
                prompt = chat.as_messages(record["prompt"], "user")
                chosen, rejected = (chat.as_messages(record[k], "assistant") for k in ("chosen", "rejected"))
            except DataError as e:
                raise DataError(f"Row {row} of the {what}: {e}") from None
            pair = (prompt + chosen, prompt + rejected)
            examples.append((pair, {"row": row, "reference": chat.reference_of(pair[0]), "what": what}))
        return examples

    def encode(self, tokenizer, pairs, targets, max_length) -> PairEncoded:
        chosen = super().encode(tokenizer, [p[0] for p in pairs], targets, max_length)
        rejected = super().encode(tokenizer, [p[1] for p in pairs], targets, max_length)
        return PairEncoded(
            input_ids=chosen.input_ids, targets=chosen.targets, target_ids=chosen.target_ids, prompts=chosen.prompts,
            rejected_ids=rejected.input_ids, rejected_labels=rejected.target_ids,
        )

    def before_training(self, model, encs, batch_size: int, pad: int) -> None:
        """pi_ref's log-probabilities, from the starting weights, for every pair of `encs`.

        Computed under the autocast the engine will train and evaluate in: a reference taken in
        fp32 while the policy runs in bf16 differs from the policy before any step (margin -0.001
        and a reward accuracy of 0.17 at step 0 on a CPU that picks bf16; on every GPU)."""
        import numpy as np
        import torch

        from llmnb.core.engine import autocast, choose_precision

        device = next(model.parameters()).device
        with torch.no_grad(), eval_mode(model), autocast(choose_precision(self.precision, device), device):
            for enc in encs:
                reference = np.zeros((len(enc), 2), np.float32)
                for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
                    batch = {k: v.to(device) for k, v in self.collate(enc, rows, pad).items()}
                    reference[rows] = self._logps(model, batch).cpu().numpy()
                enc.reference = reference

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        return plan_lines(enc, tokenizer, config, train_on_prompt=False)  # pairs are never packed: no packing line

    def resume_state(self, encs) -> dict:
        # The starting weights are gone once training began, so a resumed run must get its
        # reference from the checkpoint: 2 floats per pair, small enough for JSON.
        return {"reference_logps": [enc.reference.tolist() for enc in encs]}

    def restore_resume_state(self, saved: dict, encs) -> None:
        import numpy as np

        from llmnb.errors import DataError

        kept = saved.get("reference_logps") or []
        if [len(rows) for rows in kept] != [len(enc) for enc in encs]:
            raise DataError(
                f"The checkpoint holds reference log-probabilities for {[len(r) for r in kept]} (train, eval) pairs, but "
                f"the data gives {[len(enc) for enc in encs]}: resume with the same data and eval data."
            )
        for enc, rows in zip(encs, kept):
            enc.reference = np.asarray(rows, np.float32).reshape(len(enc), 2)

    def collate(self, enc, rows, pad, packed: bool = False) -> dict:
        """input_ids, attention_mask, labels of shape (pairs, 2, length): chosen then rejected."""
        import numpy as np
        import torch

        chosen, chosen_len = enc.input_ids.padded(rows, pad)
        rejected, rejected_len = enc.rejected_ids.padded(rows, pad)
        width = max(chosen.shape[1], rejected.shape[1])
        ids = np.full((len(rows), 2, width), pad, np.int64)
        labels = np.full((len(rows), 2, width), chat.IGNORE, np.int64)
        ids[:, 0, : chosen.shape[1]], ids[:, 1, : rejected.shape[1]] = chosen, rejected
        labels[:, 0, : chosen.shape[1]] = enc.target_ids.padded(rows, chat.IGNORE)[0]
        labels[:, 1, : rejected.shape[1]] = enc.rejected_labels.padded(rows, chat.IGNORE)[0]
        lengths = np.stack([chosen_len, rejected_len], 1)
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy((np.arange(width) < lengths[..., None]).astype(np.int64)),
            "labels": torch.from_numpy(labels),
        }
        if enc.reference is not None:
            batch["reference_logps"] = torch.from_numpy(enc.reference[rows])
        return batch

    def _logps(self, model, batch):
        pairs, _, width = batch["input_ids"].shape
        flat = {k: batch[k].reshape(pairs * 2, width) for k in ("input_ids", "attention_mask", "labels")}
        return answer_logps(model, flat["input_ids"], flat["attention_mask"], flat["labels"]).view(pairs, 2)

    def compute_loss(self, model, batch):
        logps, reference = self._logps(model, batch), batch["reference_logps"].to(batch["input_ids"].device)
        losses, _, _ = dpo_loss(logps[:, 0], logps[:, 1], reference[:, 0], reference[:, 1], self.beta)
        if not self.rpo_alpha:
            return losses.mean()
        # DPO alone may lower both answers and only widen the gap; the chosen answers' own loss
        # (negative log-likelihood per answer token) makes the model write them, not just rank them.
        chosen_tokens = (batch["labels"][:, 0, 1:] != chat.IGNORE).sum(-1).clamp(min=1)
        return losses.mean() + self.rpo_alpha * (-logps[:, 0] / chosen_tokens).mean()

    def evaluate(self, model, enc, tokenizer, batch_size):
        """The DPO metrics on `enc`. New data given to `result.evaluate` after training has no
        reference log-probabilities (the starting model is gone): then only what needs none, the
        model's own preference and the log-probabilities, is reported."""
        import torch

        totals = {"loss": 0.0, "margin": 0.0, "prefers": 0.0, "rewarded": 0.0, "chosen": 0.0, "rejected": 0.0}
        device = next(model.parameters()).device
        with torch.no_grad():
            for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
                batch = {k: v.to(device) for k, v in self.collate(enc, rows, pad_id(tokenizer)).items()}
                logps = self._logps(model, batch)
                reference = batch.get("reference_logps", logps)  # none: rewards are 0 and not reported
                losses, chosen_reward, rejected_reward = dpo_loss(logps[:, 0], logps[:, 1], reference[:, 0], reference[:, 1], self.beta)
                totals["loss"] += float(losses.sum())
                totals["margin"] += float((chosen_reward - rejected_reward).sum())
                totals["prefers"] += float((logps[:, 0] > logps[:, 1]).sum())
                totals["rewarded"] += float((chosen_reward > rejected_reward).sum())
                totals["chosen"] += float(logps[:, 0].sum())
                totals["rejected"] += float(logps[:, 1].sum())
        n = max(len(enc), 1)
        own = {
            "eval_preference_accuracy": totals["prefers"] / n,
            "eval_logp_chosen": totals["chosen"] / n,
            "eval_logp_rejected": totals["rejected"] / n,
        }
        if enc.reference is None:
            return own
        return {"eval_loss": totals["loss"] / n, "eval_reward_margin": totals["margin"] / n,
                "eval_reward_accuracy": totals["rewarded"] / n, **own}


def preference_accuracy(result, pairs) -> float:
    """Share of (prompt, chosen, rejected) pairs whose chosen answer the model of `result` finds
    likelier than the rejected one (summed log-probabilities of the answers' tokens). Works for any
    chat result (after SFT or DPO), so a preference set can score the model before and after DPO.

    Taught in chapter 10 (tutorials/10_assistant.ipynb).
    """
    task = DPO(result.config)
    enc = task.encode_like(result, pairs)
    return task.evaluate(result.model, enc, result.tokenizer, result.config.batch_size)["eval_preference_accuracy"]
