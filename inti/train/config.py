"""The training recipe: one frozen dataclass, validated when it is built, stored in every
checkpoint, compared field by field when a run resumes."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

GROUPS = ("backbone", "theta", "head", "temporal")  # the parameter groups (inti.train.optim)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200  # optimizer steps; the schedule spans them (also under --stop-after)
    batch_size: int = 8  # clips per optimizer step, over all processes and accumulation steps
    accum: int = 1  # gradient accumulation: micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate, reached after the warmup
    min_lr: float = 0.0  # the cosine decays to this
    warmup_steps: int = 20  # linear warmup from 0, by step
    weight_decay: float = 0.05  # AdamW's; never on norms, biases, positions or the class token
    betas: tuple = (0.9, 0.999)
    clip_grad: float | None = 1.0  # max global gradient norm; None: no clipping
    label_smoothing: float = 0.0
    bf16: bool = False  # bfloat16 autocast for the forward (CPU and CUDA); the weights stay float32
    freeze_backbone: bool = False  # train only θ, the head and the temporal modules
    # lr multipliers per group [ours: θ trains at the base rate; see spec/00-method.md §13]
    lr_backbone: float = 1.0
    lr_theta: float = 1.0
    lr_head: float = 1.0
    lr_temporal: float = 1.0
    seed: int = 0
    eval_every: int = 50  # steps between evaluations (and checkpoints); 0: only at the end
    log_every: int = 10  # steps between metric lines
    keep: int = 2  # step checkpoints kept besides last and best

    def __post_init__(self):
        def positive_int(name, zero=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < (0 if zero else 1):
                raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} integer, got {v!r}")

        def real(name, lo=0.0, hi=math.inf, open_lo=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) \
                    or v < lo or v > hi or (open_lo and v == lo):
                raise ValueError(f"{name} must be a finite number in {'(' if open_lo else '['}{lo:g}, {hi:g}], got {v!r}")

        for name in ("steps", "batch_size", "accum", "keep"):
            positive_int(name)
        for name in ("warmup_steps", "eval_every", "log_every", "seed"):
            positive_int(name, zero=True)
        real("lr", open_lo=True)
        real("min_lr")
        real("weight_decay")
        real("label_smoothing", hi=1.0)
        for group in GROUPS:
            real(f"lr_{group}")
        if self.clip_grad is not None:
            real("clip_grad", open_lo=True)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.batch_size % self.accum:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of accum {self.accum}")
        if len(tuple(self.betas)) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("bf16", "freeze_backbone"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown training-config field(s): {', '.join(unknown)}")
        return cls(**{k: tuple(v) if k == "betas" else v for k, v in fields.items()})


def changed_fields(old: dict, new: dict) -> list[str]:
    """'field: old -> new' for every field that differs (resuming with a changed config)."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
