"""`--task grpo`: learning from rewards (group relative policy optimisation, Shao et al., 2024).

    ft = llmnb.finetune(sft_model, questions, eval=held_out, task="grpo",
                        reward=["exact_match", "regex:^[A-Z]"], num_generations=8)

Each step takes `batch_size` prompts, samples `num_generations` (G) completions for each, scores
them with the rewards, and makes each completion's advantage its reward relative to its own
group: A = (r - mean of the group) / (std of the group), or without the division
(`scale_rewards="none"`). A group whose completions all earn the same reward has A = 0 for all:
no signal, however good or bad they were (the reward panel shows that share). The loss raises
the log-probability of the tokens of completions with A > 0 and lowers it for A < 0:

    ratio = pi(token) / pi_old(token)         (1 unless a batch of completions is reused)
    loss  = -min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon) * A)   (+ beta * KL to the start)

averaged over completion tokens as `loss_type` says. The default, `dapo`, averages over every
completion token of the batch: a long completion's tokens count as much as a short one's (plain
`grpo` averages each completion first, which favours short right answers and long wrong ones,
the bias Dr. GRPO points out), and unlike `dr_grpo` (a fixed divisor, batch x max_new_tokens) the
step size does not change with max_new_tokens. It is also TRL's default.

The loss hovers around 0 by construction (advantages average to 0 in every group), so the live
chart draws the reward; the per-step statistics (reward by function, groups with no signal,
completion length, truncation, KL, clipping) go into the history and the panel. Chapter 11.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from llmnb.core.config import check_number
from llmnb.core.events import Callback
from llmnb.core.task import PreparedData, Task, register, task_option
from llmnb.errors import ConfigError, DataError
from llmnb.instruct import chat
from llmnb.instruct.policy_loss import LOSS_TYPES, group_advantages, policy_loss
from llmnb.instruct.prompts import PromptsEncoded, encode_prompts, prompt_form, read_prompts
from llmnb.instruct.rewards import check_columns, check_weights, resolve_rewards, score
from llmnb.instruct.sampling import completion_logps, dropout_off, greedy_completions, left_padded, sample_completions
from llmnb.tasks.sft import SFT

log = logging.getLogger("llmnb")

PROBE_PROMPTS = 16  # prompts the probe before training samples (x num_generations completions)
NO_SIGNAL_WARNING = 0.5  # share of groups with no signal, over the last logged steps, that earns a warning
SHOWN_SAMPLES = 4


@dataclass
class GRPOOptions:
    reward: str | None = task_option(
        None, "what earns reward: a built-in (exact_match, contains, contains:WORD, regex:PATTERN, length:N; several joined "
        "by ';'), a function reward(completions, **columns) -> list of numbers, or a list of them (in the magic: a "
        "notebook variable's name).")
    reward_weights: str | None = task_option(None, "one weight per reward, e.g. '1,0.2' (default: 1 each).")
    num_generations: int = task_option(8, "completions sampled per prompt (G): the group each one is compared with.")
    temperature: float = task_option(1.0, "sampling temperature of the completions (lower: less varied groups).")
    max_new_tokens: int = task_option(32, "longest completion in tokens; longer ones are cut (counted as truncated).")
    scale_rewards: str = task_option("group", "group: advantages divided by their group's std; none: only centred (Dr. GRPO).")
    loss_type: str = task_option(
        "dapo", "dapo: mean over all completion tokens of the batch; dr_grpo: sum / (completions x max_new_tokens); "
        "grpo: mean per completion, then over completions.")
    epsilon: float = task_option(0.2, "clipping of the probability ratio when a batch of completions is reused.")
    num_iterations: int = task_option(1, "optimizer steps on each batch of completions (> 1: reused, with clipping).")
    beta: float = task_option(
        0.0, "weight of the KL penalty to the starting model (0: none, and no reference model in memory; "
        "with lora the reference is the adapters switched off).")
    mask_truncated: bool = task_option(False, "leave completions cut at max_new_tokens out of the loss.")
    probe: bool = task_option(True, "sample completions before training and report the pass rate (stops when none earns a reward).")
    eval_reward: str | None = task_option(
        None, "the reward measured on validation prompts (default: the training rewards); exact match is measured too "
        "when the validation data has an answer column.")

    def __post_init__(self):
        check_number("num_generations", self.num_generations, minimum=2, integer=True)
        check_number("temperature", self.temperature, minimum=0, exclusive=True)
        check_number("max_new_tokens", self.max_new_tokens, minimum=1, integer=True)
        check_number("epsilon", self.epsilon, minimum=0, exclusive=True)
        check_number("num_iterations", self.num_iterations, minimum=1, integer=True)
        check_number("beta", self.beta, minimum=0)
        if self.scale_rewards not in ("group", "none"):
            raise ConfigError(f"scale_rewards={self.scale_rewards!r} must be group or none.")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type={self.loss_type!r} must be one of {', '.join(LOSS_TYPES)} (default dapo).")
        if isinstance(self.reward_weights, str):
            try:
                self.reward_weights = [float(w) for w in self.reward_weights.replace(";", ",").split(",") if w.strip()]
            except ValueError:
                raise ConfigError(f"reward_weights={self.reward_weights!r} must be numbers separated by commas, e.g. '1,0.2'.") from None


@dataclass
class Generation:
    """One batch of sampled completions, scored; kept while `num_iterations` steps reuse it."""

    completions: object  # sampling.Completions
    advantages: object
    old_logps: object = None
    ref_logps: object = None
    stats: dict = None  # its rewards, lengths...: logged at every step that trains on it


class RewardStats(Callback):
    """Puts the task's per-step statistics into each log row (the history, the panel, TensorBoard),
    and notes once when most groups carry no signal."""

    def __init__(self, task):
        self.task = task
        self.warned = False

    def on_log(self, state, row):
        row.update(self.task.take_stats())
        recent = [r["zero_std_share"] for r in state.history[-5:] if "zero_std_share" in r]
        if not self.warned and len(recent) >= 3 and min(recent) > NO_SIGNAL_WARNING:
            self.warned = True
            note = (f"{sum(recent) / len(recent):.0%} of the groups have no signal (every completion of a prompt earns the same "
                    "reward, so its advantage is 0): raise num_generations, use a reward with partial credit, or train with "
                    "SFT first (llmnb.reward_probe shows the pass rate).")
            state.notes.append(note)
            log.warning(note)


@register
class GRPO(SFT):
    """Learning from rewards: completions better than their group's average become likelier."""

    name = "grpo"
    Options = GRPOOptions
    data_forms = ("prompt (+ the columns the rewards read)", "instruction (+ input) + output (the output is the answer)")
    metrics = ("reward", "exact_match")
    headline = "reward"
    greater_is_better = True
    eval_at_start = True
    export_template = None  # no standalone script: export_script refuses with a clear error
    does = "answers a prompt, tuned by reinforcement learning on verifiable rewards (GRPO)"
    tuned_as = "reward-tuned (GRPO)"
    panel_keys = ("reward_mean", "reward_std", "zero_std_share", "completion_length", "truncated_share", "kl",
                  "clip_ratio", "completion_tokens_per_second")

    def __init__(self, config=None):
        Task.__init__(self, config)  # not SFT's: none of its options apply
        o = self.options
        self.train_on_prompt, self.packing, self.packed = False, False, False
        self.eval_generate = 0  # SFT's greedy answers: evaluate() below measures its own
        self.max_length = getattr(config, "max_length", 128)
        self._rewards = None  # resolved on first use: a run loaded to predict needs none of them
        self.reference = None  # the starting model, when beta > 0 without LoRA
        self.probe_report = None
        self._train_enc = None
        self._cache: dict = {}
        self._stats: dict = {}
        self._batches_per_epoch = 1

    @property
    def rewards(self) -> list:
        """(name, function) of each training reward, checked (a clear error before any model loads)."""
        if self._rewards is None:
            self._rewards = resolve_rewards(self.options.reward)
        return self._rewards

    @property
    def weights(self) -> list[float]:
        return check_weights(self.options.reward_weights, len(self.rewards))

    @property
    def eval_rewards(self) -> list:
        return self.rewards if self.options.eval_reward is None else resolve_rewards(self.options.eval_reward)

    @property
    def eval_weights(self) -> list[float]:
        return self.weights if self.options.eval_reward is None else [1.0] * len(self.eval_rewards)

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> PreparedData:
        from llmnb.finetuning.data import hold_out, to_frame

        self.weights, self.eval_rewards  # noqa: B018  (checked now: a mistake costs seconds, not a model load)

        examples = self.read(to_frame(data, "training data"), None, "training data")
        if eval is not None:
            eval_examples = self.read(to_frame(eval, "eval data"), None, "eval data")
        else:
            examples, eval_examples = hold_out(examples, config.eval_fraction, config.seed, "prompts")
        if not examples:
            raise DataError("The training data has no prompts.")
        check_columns(self.rewards, examples[0][1]["columns"], "training data")
        if eval_examples and all("answer" in e[1]["columns"] for e in eval_examples) and not config.metric \
                and self.options.eval_reward is None:
            self.headline = "exact_match"  # the task itself, measured apart from the reward that trains it
        return PreparedData([e[0] for e in examples], [e[1] for e in examples],
                            [e[0] for e in eval_examples], [e[1] for e in eval_examples], text_column="prompt")

    def data_form(self, columns, what: str) -> str:
        return prompt_form(columns, what)

    def read(self, frame, form, what) -> list[tuple]:
        return read_prompts(frame, what)

    def encode(self, tokenizer, prompts, targets, max_length) -> PromptsEncoded:
        return encode_prompts(tokenizer, prompts, targets, prompt_room(max_length, self.context, self.options.max_new_tokens))

    def encode_like(self, result, data, text=None, label=None):
        from llmnb.finetuning.data import to_frame

        examples = self.read(to_frame(data, "eval data"), None, "eval data")
        return self.encode(result.tokenizer, [e[0] for e in examples], [e[1] for e in examples], result.config.max_length)

    # ------------------------------------------------------------------ before training
    def before_training(self, model, encs, batch_size: int, pad: int) -> None:
        import copy

        dropout_off(model)
        if self.options.beta and not hasattr(model, "disable_adapter"):
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        if self.options.probe and len(encs[0]):
            self.probe_report = self.probe(model, self._tokenizer, encs[0], PROBE_PROMPTS, self.config.seed)
            if self.probe_report.never_rewarded:
                raise DataError(
                    f"No sampled completion earned more reward than another ({self.probe_report.completions} completions of "
                    f"{self.probe_report.prompts} training prompts, all rewarded {self.probe_report.pass_rate:g}): train with "
                    "SFT first; the model never solves a prompt, so every group's advantage would be 0 and nothing would be "
                    "learned. (probe=False, --no-probe, skips this check.)"
                )

    def probe(self, model, tokenizer, enc, num_prompts: int, seed: int = 0):
        from llmnb.instruct.reward_probe import probe

        n = min(num_prompts, len(enc))
        o = self.options
        return probe(model, tokenizer, enc.prompt_ids[:n], enc.prompts[:n], enc.columns[:n], self.rewards, self.weights,
                     o.num_generations, o.temperature, o.max_new_tokens, seed)

    def prepare_tokenizer(self, tokenizer) -> None:
        chat.ensure_chat_template(tokenizer)
        self._tokenizer = tokenizer

    def restore_resume_state(self, saved: dict, encs) -> None:
        if self.options.beta and not self.config.lora:
            raise ConfigError(
                "A GRPO run with beta > 0 measures its KL against the starting model, whose weights a checkpoint does not "
                "keep: it cannot be resumed exactly. Train with lora=True (the reference is the adapters switched off), "
                "or with beta=0."
            )

    def steps_per_epoch(self, rows: int, batch_size: int) -> int:
        self._batches_per_epoch = -(-rows // batch_size)
        return self._batches_per_epoch * self.options.num_iterations

    def listeners(self) -> list:
        return [RewardStats(self)]

    # ------------------------------------------------------------------ batches and loss
    def batches(self, enc, config, epoch, pad):
        import numpy as np
        import torch

        self._train_enc = enc
        order = np.random.default_rng(config.seed + epoch).permutation(len(enc))
        for number, start in enumerate(range(0, len(enc), config.batch_size)):
            rows = order[start : start + config.batch_size]
            ids, mask = left_padded([enc.prompt_ids[i] for i in rows], pad)
            batch = {"input_ids": ids, "attention_mask": mask, "prompt_index": torch.from_numpy(rows.astype(np.int64)),
                     "round": torch.full((len(rows),), epoch * self._batches_per_epoch + number, dtype=torch.long)}
            for _ in range(self.options.num_iterations):  # the same completions, reused with clipping
                yield batch

    def compute_loss(self, model, batch):
        o = self.options
        dropout_off(model)  # also on a resumed run, which skips before_training
        rows = batch["prompt_index"].tolist()
        key = (int(batch["round"][0]), tuple(rows))
        generation = self._cache.get(key)
        if generation is None:
            generation = self._generate(model, batch, rows, key[0])
            self._cache = {k: v for k, v in self._cache.items() if k[0] == key[0]} if o.num_iterations > 1 else {}
            if o.num_iterations > 1:
                self._cache[key] = generation
        for name, value in generation.stats.items():
            self._add(name, value)
        c = generation.completions
        logps = completion_logps(model, c, o.temperature)
        old = generation.old_logps if generation.old_logps is not None else logps.detach()
        ref = generation.ref_logps
        if o.beta and ref is None:
            ref = self._reference_logps(model, c)
        loss, stats = policy_loss(logps, old, generation.advantages.to(logps.device), c.scored_mask(o.mask_truncated),
                                  o.loss_type, o.epsilon, o.beta, ref, o.max_new_tokens)
        for name, value in stats.items():
            self._add(name, value)
        return loss

    def _generate(self, model, batch, rows, round_number: int) -> Generation:
        import torch

        o, enc = self.options, self._train_enc
        started = time.perf_counter()
        c = sample_completions(model, self._tokenizer, batch["input_ids"], batch["attention_mask"], o.num_generations,
                               o.temperature, o.max_new_tokens, seed=self.config.seed * 1_000_003 + round_number * 1009 + rows[0])
        seconds = time.perf_counter() - started
        columns = {name: [enc.columns[i].get(name) for i in rows for _ in range(o.num_generations)]
                   for name in enc.columns[rows[0]]}
        prompts = [enc.prompts[i] for i in rows for _ in range(o.num_generations)]
        total, per_function = score(self.rewards, self.weights, c.texts, prompts, columns)
        rewards = torch.tensor(total, dtype=torch.float32)
        advantages = group_advantages(rewards, o.num_generations, o.scale_rewards)
        grouped = rewards.view(-1, o.num_generations)
        lengths = c.completion_mask.sum(1).float()
        stats = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
                 **{f"reward/{name}": float(values.mean()) for name, values in per_function.items()},
                 "zero_std_share": float(((grouped.max(1).values - grouped.min(1).values) < 1e-9).float().mean()),
                 "completion_length": float(lengths.mean()), "truncated_share": float(c.truncated.float().mean())}
        self._count("generated_tokens", float(lengths.sum()))
        self._count("generation_seconds", seconds)
        generation = Generation(c, advantages, stats=stats)
        with torch.no_grad():
            if o.num_iterations > 1:
                generation.old_logps = completion_logps(model, c, o.temperature)
            if o.beta:
                generation.ref_logps = self._reference_logps(model, c)
        return generation

    def _reference_logps(self, model, completions):
        import contextlib

        import torch

        with torch.no_grad():
            if self.reference is not None:
                return completion_logps(self.reference, completions, self.options.temperature)
            switch = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
            with switch:  # LoRA: the starting model is the base without its adapters, no second copy
                return completion_logps(model, completions, self.options.temperature)

    # ------------------------------------------------------------------ statistics for the log rows
    def _add(self, name: str, value: float) -> None:
        total, count = self._stats.get(name, (0.0, 0))
        self._stats[name] = (total + value, count + 1)

    def _count(self, name: str, value: float) -> None:
        total, _ = self._stats.get(name, (0.0, 0))
        self._stats[name] = (total + value, 0)

    def take_stats(self) -> dict:
        """The means since the last log row (the reward by function as reward/<name>), then reset."""
        stats, self._stats = self._stats, {}
        row = {name: total / count for name, (total, count) in stats.items() if count}
        tokens, seconds = stats.get("generated_tokens", (0, 0))[0], stats.get("generation_seconds", (0, 0))[0]
        if seconds:
            row["completion_tokens_per_second"] = round(tokens / seconds, 1)
        return row

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, model, enc, tokenizer, batch_size):
        """Greedy completions of up to 64 validation prompts: their mean reward (the eval rewards),
        exact match where the data has answers, and their mean length."""
        import llmnb.metrics as metrics

        n = min(len(enc), 64)
        texts = greedy_completions(model, tokenizer, enc.prompt_ids[:n], self.options.max_new_tokens, batch_size)
        columns = {name: [enc.columns[i].get(name) for i in range(n)] for name in enc.columns[0]} if n else {}
        total, _ = score(self.eval_rewards, self.eval_weights, texts, enc.prompts[:n], columns)
        scores = {"eval_reward": float(total.mean()) if n else float("nan"),
                  "eval_completion_length": sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts) / max(n, 1)}
        if n and all(t is not None for t in enc.targets[:n]):
            scores["eval_exact_match"] = metrics.compute(["exact_match"], texts, [str(t) for t in enc.targets[:n]])["exact_match"]
        self.samples = [
            {"prompt": p[-1]["content"] if p else "", "answer": a, "reference": r if r is not None else "", "reward": round(float(v), 3)}
            for p, a, r, v in zip(enc.prompts[:SHOWN_SAMPLES], texts, enc.targets, total)
        ]
        return scores

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        o = self.options
        names = ", ".join(name if w == 1 else f"{w:g} x {name}" for (name, _), w in zip(self.rewards, self.weights))
        lines = [
            f"GRPO: {o.num_generations} completions per prompt ({config.batch_size} prompts a step: "
            f"{config.batch_size * o.num_generations} completions), up to {o.max_new_tokens} tokens at temperature "
            f"{o.temperature:g}; loss {o.loss_type}, advantages scaled by {o.scale_rewards}, "
            + (f"KL to the start x {o.beta:g}" if o.beta else "no KL term (beta 0)") + "; dropout off",
            f"rewards: {names}; the best weights by eval_{self.headline}",
        ]
        if self.probe_report is not None:
            lines.append(self.probe_report.line())
        return lines


def prompt_room(max_length: int, context: int | None, max_new_tokens: int) -> int:
    """Tokens left for a prompt when its completion may take max_new_tokens."""
    limit = min(max_length, context or max_length)
    if limit - max_new_tokens < 4:
        raise ConfigError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in {limit} tokens (max_length and the "
            "model's context): lower max_new_tokens or raise max_length.")
    return limit - max_new_tokens
