"""Before learning from rewards: can the model earn any? `reward_probe` samples and counts.

    report = llmnb.reward_probe(sft, questions, "exact_match", num_generations=8, num_prompts=32)
    report.pass_rate            # share of sampled completions that earned a reward
    report.no_signal            # {G: expected share of groups with no signal} for G = 2, 4, 8, 16
    report.recommended_g

GRPO learns only from groups whose completions earn different rewards. For a prompt the model
solves with probability p, a group of G samples is all-right with probability p^G and all-wrong
with (1 - p)^G, so the share of groups with no signal is p^G + (1 - p)^G. With p = 0.18 and G = 2
that is 70 %: most steps learn nothing. The probe measures p per prompt (any reward: the chance
that G draws all land on the same value) and averages over prompts, because a set mixing easy and
impossible prompts has far more silent groups than its mean pass rate suggests. Taught in
chapter 11 (tutorials/11_rewards.ipynb).
"""
from __future__ import annotations

from dataclasses import dataclass, field

GROUP_SIZES = (2, 4, 8, 16)
ENOUGH_SIGNAL = 0.25  # the recommended G is the smallest whose expected no-signal share is at most this


def no_signal_share(rewards_per_prompt, group_size: int) -> float:
    """Expected share of groups of `group_size` completions whose rewards are all equal, from
    each prompt's sampled rewards: per prompt, the sum over its distinct values v of freq(v)^G
    (p^G + (1 - p)^G for a pass/fail reward); then the mean over prompts. Taught in chapter 11
    (tutorials/11_rewards.ipynb)."""
    from collections import Counter

    shares = []
    for values in rewards_per_prompt:
        counts = Counter(round(float(v), 9) for v in values)
        n = sum(counts.values())
        shares.append(sum((c / n) ** group_size for c in counts.values()))
    return sum(shares) / len(shares) if shares else float("nan")


@dataclass
class ProbeReport:
    """What a probe measured; printed as one line, shown as a small table in a notebook."""

    prompts: int
    completions: int
    num_generations: int
    binary: bool  # every reward was 0 or 1
    pass_rate: float  # share rewarded (binary) or mean reward
    per_prompt: list = field(default_factory=list)  # each prompt's pass rate / mean reward
    no_signal: dict = field(default_factory=dict)  # G -> expected share of groups with no signal
    recommended_g: int = 8
    never_rewarded: bool = False  # every completion earned the same reward: nothing to learn from
    samples: list = field(default_factory=list)  # a few (prompt, completion, reward)

    def line(self) -> str:
        what = "pass rate" if self.binary else "mean reward"
        shares = ", ".join(f"G={g}: {s:.0%}" for g, s in self.no_signal.items())
        return (f"probe: {what} {self.pass_rate:.2f} on {self.completions} sampled completions of {self.prompts} prompts; "
                f"groups with no signal {shares}; recommended G = {self.recommended_g}")

    def __repr__(self) -> str:
        return self.line()

    def _repr_html_(self) -> str:
        from html import escape

        cell = "padding:1px 8px;text-align:right"
        head = "".join(f'<th style="{cell}">G = {g}</th>' for g in self.no_signal)
        body = "".join(f'<td style="{cell}">{s:.0%}</td>' for s in self.no_signal.values())
        what = "pass rate" if self.binary else "mean reward"
        return (f"<div><b>reward probe</b>: {what} {self.pass_rate:.2f} on {self.completions} completions of {self.prompts} "
                f"prompts; recommended G = {self.recommended_g}"
                f'<table style="border-collapse:collapse;font-size:12px"><tr><th style="{cell}">groups with no signal</th>'
                f"{head}</tr><tr><td></td>{body}</tr></table>"
                + "".join(f"<div style='font-size:12px;opacity:.8'>{escape(str(s['completion'])[:80])!s} → {s['reward']:g}</div>"
                          for s in self.samples) + "</div>")


def summarise(rewards_per_prompt, num_generations: int, samples=()) -> ProbeReport:
    """The report of sampled rewards, one list per prompt."""
    values = [float(v) for group in rewards_per_prompt for v in group]
    binary = all(v in (0.0, 1.0) for v in values)
    per_prompt = [sum(g) / len(g) for g in rewards_per_prompt]
    no_signal = {g: no_signal_share(rewards_per_prompt, g) for g in GROUP_SIZES}
    recommended = next((g for g, s in no_signal.items() if s <= ENOUGH_SIGNAL), GROUP_SIZES[-1])
    return ProbeReport(
        prompts=len(rewards_per_prompt), completions=len(values), num_generations=num_generations, binary=binary,
        pass_rate=sum(values) / len(values) if values else float("nan"), per_prompt=per_prompt, no_signal=no_signal,
        recommended_g=recommended, never_rewarded=not values or max(values) == min(values),
        samples=list(samples),
    )


def probe(model, tokenizer, prompt_rows, prompts, columns, rewards, weights, num_generations: int, temperature: float,
          max_new_tokens: int, seed: int = 0) -> ProbeReport:
    """Sample `num_generations` completions of each prompt (token rows, as `--task grpo` encodes
    them; `prompts` and `columns` are what the rewards receive) and score them with `rewards`."""
    from llmnb.core.models import pad_id
    from llmnb.instruct.rewards import score
    from llmnb.instruct.sampling import left_padded, sample_completions

    g = num_generations
    groups, samples = [], []
    for start in range(0, len(prompt_rows), 8):
        rows = list(range(start, min(start + 8, len(prompt_rows))))
        ids, mask = left_padded([prompt_rows[i] for i in rows], pad_id(tokenizer))
        c = sample_completions(model, tokenizer, ids, mask, g, temperature, max_new_tokens, seed=seed + start)
        given = {name: [columns[i].get(name) for i in rows for _ in range(g)] for name in columns[rows[0]]}
        total, _ = score(rewards, weights, c.texts, [prompts[i] for i in rows for _ in range(g)], given)
        groups += [total[k * g : (k + 1) * g].tolist() for k in range(len(rows))]
        if not samples:
            samples = [{"completion": t, "reward": float(v)} for t, v in zip(c.texts[:3], total[:3])]
    return summarise(groups, g, samples)


def reward_probe(model, data, reward, num_generations: int = 8, num_prompts: int = 32, temperature: float = 1.0,
                 max_new_tokens: int = 32, reward_weights=None, max_length: int = 128, seed: int = 0) -> ProbeReport:
    """Can the model earn any reward? Sample `num_generations` completions for each of the first
    `num_prompts` prompts of `data` (the forms `--task grpo` reads), score them with `reward`, and
    report the pass rate, the expected share of groups with no signal for G = 2, 4, 8, 16, and a
    recommended G.

    `model`: a result of `finetune` or `pretrain`, or a LoadedModel; neither it nor its tokenizer is
    changed (a tokenizer without a chat template gets llmnb's on a copy). Taught in chapter 11
    (tutorials/11_rewards.ipynb).
    """
    import copy

    from llmnb.core.config import check_number
    from llmnb.core.models import context_limit
    from llmnb.errors import ConfigError
    from llmnb.finetuning.data import to_frame
    from llmnb.instruct import chat
    from llmnb.instruct.prompts import encode_prompts, read_prompts
    from llmnb.instruct.rewards import check_weights, resolve_rewards

    network, tokenizer = getattr(model, "model", None), getattr(model, "tokenizer", None)
    if network is None or tokenizer is None:
        raise ConfigError(f"reward_probe needs a model with its tokenizer (a finetune or pretrain result, or a "
                          f"LoadedModel), not a {type(model).__name__}.")
    check_number("num_generations", num_generations, minimum=2, integer=True)
    check_number("num_prompts", num_prompts, minimum=1, integer=True)
    check_number("temperature", temperature, minimum=0, exclusive=True)
    check_number("max_new_tokens", max_new_tokens, minimum=1, integer=True)
    rewards = resolve_rewards(reward)
    weights = check_weights(reward_weights, len(rewards))
    if not getattr(tokenizer, "chat_template", None):
        tokenizer = copy.deepcopy(tokenizer)
        chat.ensure_chat_template(tokenizer)
    examples = read_prompts(to_frame(data, "data"), "data")[:num_prompts]
    limit = min(max_length, context_limit(network) or max_length)
    if limit - max_new_tokens < 4:
        raise ConfigError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in {limit} tokens.")
    enc = encode_prompts(tokenizer, [e[0] for e in examples], [e[1] for e in examples], limit - max_new_tokens)
    return probe(network, tokenizer, enc.prompt_ids, enc.prompts, enc.columns, rewards, weights, num_generations,
                 temperature, max_new_tokens, seed)
