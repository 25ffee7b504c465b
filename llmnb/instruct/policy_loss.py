"""The objective of learning from rewards: group-relative advantages and the clipped policy loss.

    advantages = group_advantages(rewards, group_size=8)              # r - mean(group), / std(group)
    loss, stats = policy_loss(logps, old_logps, advantages, mask)     # dapo: mean over all tokens

As GRPO (Shao et al., 2024) defines them, with the three averages TRL names: `grpo` (per
completion, then over completions), `dr_grpo` (sum / (completions x max_new_tokens)) and `dapo`
(over every completion token of the batch). llmnb/tasks/grpo.py says which is the default and why.
Taught in chapter 11 (tutorials/11_rewards.ipynb).
"""
from __future__ import annotations

from llmnb.errors import ConfigError

LOSS_TYPES = ("dapo", "dr_grpo", "grpo")


def group_advantages(rewards, group_size: int, scale_rewards: str = "group"):
    """Each completion's reward relative to its group of `group_size` (consecutive values):
    r - mean(group), divided by the group's std when scale_rewards is "group". A group whose
    rewards are all equal gets 0 everywhere. Taught in chapter 11."""
    import torch

    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale_rewards == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + 1e-4)
    return centred.reshape(-1).masked_fill(~torch.isfinite(centred.reshape(-1)), 0.0)


def policy_loss(logps, old_logps, advantages, mask, loss_type: str = "dapo", epsilon: float = 0.2, beta: float = 0.0,
                ref_logps=None, max_new_tokens: int | None = None):
    """(loss, {"kl", "clip_ratio"}) of completion tokens (rows x tokens; mask 1 on scored tokens).

    The clipped surrogate of PPO with group advantages, a k3 estimate of the KL to the reference
    when beta > 0 (exp(ref - logp) - (ref - logp) - 1, never negative), and one of three
    averages (the module docstring says which and why). Taught in chapter 11."""
    import torch

    if loss_type not in LOSS_TYPES:
        raise ConfigError(f"loss_type={loss_type!r} is not one of {', '.join(LOSS_TYPES)}.")
    ratio = torch.exp(logps - old_logps)
    advantage = advantages.unsqueeze(1)
    per_token = -torch.minimum(ratio * advantage, ratio.clamp(1 - epsilon, 1 + epsilon) * advantage)
    mask = mask.to(per_token.dtype)
    tokens = mask.sum().clamp(min=1)
    stats = {}
    if beta:
        gap = ref_logps - logps
        kl = torch.exp(gap) - gap - 1
        per_token = per_token + beta * kl
        stats["kl"] = float((kl.detach() * mask).sum() / tokens)
    clipped = ((ratio < 1 - epsilon) & (advantage < 0)) | ((ratio > 1 + epsilon) & (advantage > 0))
    stats["clip_ratio"] = float((clipped.to(mask.dtype) * mask).sum() / tokens)  # share of tokens whose update the clip stopped
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (mask.shape[0] * (max_new_tokens or mask.shape[1]))
    else:
        loss = (per_token * mask).sum() / tokens
    return loss, stats
