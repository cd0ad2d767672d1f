"""Parameter groups, AdamW, and the learning-rate schedule.

Groups by parameter name (spec/00-method.md §3.5): ``merges.*`` is θ; ``head.*`` the new
classifier; names holding ``temporal`` the temporal modules; everything else the image
backbone. Each group has its lr multiplier; weight decay applies to matrices only, never to
norms, biases, the position embedding or the class token (timm's and CLIP's rule).

Layer-wise lr decay [ours: BEiT's rule, as VideoMAE's `run_class_finetuning.py` applies it]:
with `layer_decay` = λ < 1 and D blocks, a backbone parameter at layer l trains at
λ^(D + 1 - l) times its group's lr, where l = 0 for the embedding (patch embedding, class
token, positions, ln_pre), l = i + 1 for block i (from 0), and l = D + 1 for the readout
(ln_post, the projection). The first block thus trains slowest of the blocks and the last at
λ; θ, the head and the temporal modules, new for video, keep their group's rate [ours].
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


EMBEDDING = ("patch_embed.", "cls_token", "pos_embed", "ln_pre.")


def layer_of(name: str, depth: int) -> int:
    """The layer of a backbone parameter for layer-wise decay: 0 for the embedding, i + 1 for
    block i, depth + 1 for the readout (ln_post, proj)."""
    if name.startswith(EMBEDDING):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def layer_scale(name: str, depth: int, layer_decay: float) -> float:
    """The lr factor of parameter `name`: layer_decay^(depth + 1 - layer) in the backbone, 1
    elsewhere (θ, the head, the temporal modules) and everywhere when layer_decay is 1."""
    if layer_decay == 1.0 or group_of(name) != "backbone":
        return 1.0
    return float(layer_decay) ** (depth + 1 - layer_of(name, depth))


def decays(name: str, param: torch.Tensor) -> bool:
    return param.ndim >= 2 and not any(n in name for n in NO_DECAY_NAMES)


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups, one per (group, decay, layer scale) present; frozen parameters are left
    out and get requires_grad=False. Each group records its name and lr multiplier (the
    group's multiplier times its layer-decay scale)."""
    depth = len(getattr(model, "blocks", ()))
    buckets: dict[tuple[str, bool, float], list] = {}
    for name, p in model.named_parameters():
        group = group_of(name)
        if cfg.freeze_backbone and group == "backbone":
            p.requires_grad_(False)
            continue
        p.requires_grad_(True)
        scale = layer_scale(name, depth, cfg.layer_decay)
        buckets.setdefault((group, decays(name, p), scale), []).append((name, p))
    return [
        {"name": f"{group}{'' if decay else ' (no decay)'}{'' if scale == 1.0 else f' x{scale:.4g}'}",
         "group": group, "params": [p for _, p in items], "param_names": [n for n, _ in items],
         "lr_mult": getattr(cfg, f"lr_{group}") * scale, "weight_decay": cfg.weight_decay if decay else 0.0}
        for (group, decay, scale), items in sorted(buckets.items())
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
