"""Parameter groups, AdamW, and the learning-rate schedule.

Groups by parameter name (spec/00-method.md §3.5): ``merges.*`` is θ; ``head.*`` the new
classifier; names holding ``temporal`` the temporal modules; everything else the image
backbone. Each group has its lr multiplier; weight decay applies to matrices only, never to
norms, biases, the position embedding or the class token (timm's and CLIP's rule).
"""

from __future__ import annotations

import math

import torch

from .config import TrainConfig

NO_DECAY_NAMES = ("pos_embed", "cls_token", "temporal_embed")


def group_of(name: str) -> str:
    if name.startswith("merges."):
        return "theta"
    if name.startswith("head."):
        return "head"
    if "temporal" in name:
        return "temporal"
    return "backbone"


def decays(name: str, param: torch.Tensor) -> bool:
    return param.ndim >= 2 and not any(n in name for n in NO_DECAY_NAMES)


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups, one per (group, decay) pair present; frozen parameters are left out and
    get requires_grad=False. Each group records its name and lr multiplier."""
    buckets: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        group = group_of(name)
        if cfg.freeze_backbone and group == "backbone":
            p.requires_grad_(False)
            continue
        p.requires_grad_(True)
        buckets.setdefault((group, decays(name, p)), []).append((name, p))
    return [
        {"name": f"{group}{'' if decay else ' (no decay)'}", "group": group,
         "params": [p for _, p in items], "param_names": [n for n, _ in items],
         "lr_mult": getattr(cfg, f"lr_{group}"), "weight_decay": cfg.weight_decay if decay else 0.0}
        for (group, decay), items in sorted(buckets.items())
    ]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The base lr at optimizer step `step` (0-based): linear warmup over warmup_steps, then a
    cosine from lr down to min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps - 1, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                             foreach=False)


def set_lr(optimizer: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> float:
    lr = lr_at(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    return lr
