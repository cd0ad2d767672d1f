"""The training configuration: one frozen dataclass, validated when it is built, stored in every
checkpoint, compared field by field when a run resumes. A recipe file (`inti.train.recipe`)
resolves to one of these, with the model and data configs beside it.

The fine-tuning toolkit is off by default and each piece is one field [ours, spec/00-method.md
§13]: `layer_decay` (BEiT's layer-wise lr decay), `drop_path` (stochastic depth), `mixup` and
`cutmix` (one mask over all frames of a clip), `ema_decay` (an average of the weights,
evaluated and checkpointed beside them) and `grad_checkpoint` (activations recomputed per block
in the backward)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

MAX_SEED = 2**63 - 1  # the largest seed torch.manual_seed takes
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
    # the fine-tuning toolkit; every default is "off"
    layer_decay: float = 1.0  # backbone lr x layer_decay^(depth + 1 - layer); 1: off (inti.train.optim)
    drop_path: float = 0.0  # stochastic depth, the last block's rate; linear from 0 over the blocks
    mixup: float = 0.0  # mixup's Beta(alpha, alpha); 0: off (inti.train.mixup)
    cutmix: float = 0.0  # cutmix's Beta(alpha, alpha); 0: off; one box for all frames of a clip
    mix_prob: float = 1.0  # probability that a batch is mixed at all, when mixup or cutmix is on
    mix_switch_prob: float = 0.5  # probability of cutmix rather than mixup when both are on
    ema_decay: float = 0.0  # EMA of the weights, ema = d * ema + (1 - d) * w per step; 0: off
    grad_checkpoint: bool = False  # recompute each block's activations in the backward

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
        if self.seed > MAX_SEED:  # torch.manual_seed takes a signed 64-bit integer
            raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {self.seed}")
        real("lr", open_lo=True)
        real("min_lr")
        real("weight_decay")
        real("label_smoothing", hi=1.0)
        real("layer_decay", open_lo=True, hi=1.0)
        real("drop_path", hi=0.99)
        for name in ("mixup", "cutmix"):
            real(name, hi=100.0)
        for name in ("mix_prob", "mix_switch_prob"):
            real(name, hi=1.0)
        real("ema_decay", hi=1.0)
        if self.ema_decay == 1.0:
            raise ValueError("ema_decay must be below 1 (1 would never move the average); 0 turns EMA off")
        for group in GROUPS:
            real(f"lr_{group}")
        if self.clip_grad is not None:
            real("clip_grad", open_lo=True)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.batch_size % self.accum:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of accum {self.accum}")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1
                                      for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("bf16", "freeze_backbone", "grad_checkpoint"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (mixup or cutmix on, with a chance above 0)."""
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown training-config field(s): {', '.join(unknown)}")
        return cls(**{k: tuple(v) if k == "betas" else v for k, v in fields.items()})


def changed_fields(old: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """'field: old -> new' for every field that differs (resuming with a changed config).
    defaults: values for fields that `old` lacks (a checkpoint written before they existed)."""
    old = {**(defaults or {}), **old}
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
