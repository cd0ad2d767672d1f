"""Model configuration: every hyperparameter of spec/00-method.md, and the named presets.

A `ModelConfig` is frozen and validated when it is built, so a bad schedule or a width
that the heads do not divide is refused at once, with a message that names the field.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

BRANCHES = ("token", "local", "frame", "clip")
WEIGHT_FNS = ("softmax", "sigmoid", "mean")
GRANULARITIES = ("token", "channel")
ACTIVATIONS = ("quick_gelu", "gelu")


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of an InTI video model (spec/00-method.md §1-3).

    The first block of fields describes the image ViT (spec/00-method.md §2); the last block the
    compression layer Φ (spec/00-method.md §3). Symbols in brackets are the method chapter's notation (§1).
    """

    image_size: int = 224  # frame height and width in pixels [H = W]
    patch_size: int = 16  # [P]; the patch grid is image_size // patch_size on each side
    width: int = 768  # [C]
    depth: int = 12  # [D], the number of blocks
    heads: int = 12  # attention heads; must divide width
    mlp_ratio: float = 4.0  # the MLP's hidden width is mlp_ratio * C
    embed_dim: int | None = (
        512  # [E], the projection after the pooled class token; None: no projection [ours]
    )
    num_classes: int = 0  # [K], the head's classes; 0: no head, the model returns features [ours]
    activation: str = "quick_gelu"  # "quick_gelu" (CLIP) or "gelu" (exact erf; timm)
    ln_eps: float = 1e-5  # LayerNorm eps: 1e-5 in CLIP, 1e-6 in timm's ViTs; LN_θ uses it too
    ln_pre: bool = (
        True  # LayerNorm after the position embedding (CLIP has one; timm's vit_* have none)
    )
    patch_bias: bool = False  # a bias on the patch embedding (timm has one; CLIP has none)
    # --- the compression layer Φ and its weight predictor θ (spec/00-method.md §3) ---
    schedule: tuple[int, ...] = ()  # [S], blocks (counted from 1) after which to merge
    reduction: int = 4  # [r], the predictor width is d = C // r
    branches: tuple[str, ...] = BRANCHES  # any subset of ("token", "local", "frame", "clip")
    weight_fn: str = "softmax"  # "softmax" [paper]; "sigmoid" or "mean" for ablation [ours]
    weight_granularity: str = "token"  # "token": one weight per token [ours]; "channel": C weights

    def __post_init__(self):
        # Normalise sequences so that configs built from lists or numpy integers compare equal
        # and hash; anything that is not an integer is left for validation to refuse.
        as_int = lambda k: (
            int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k
        )  # noqa: E731
        object.__setattr__(self, "schedule", tuple(as_int(k) for k in self.schedule))
        for name in (
            "image_size",
            "patch_size",
            "width",
            "depth",
            "heads",
            "reduction",
            "num_classes",
            "embed_dim",
        ):
            object.__setattr__(self, name, as_int(getattr(self, name)))
        object.__setattr__(self, "branches", tuple(self.branches))
        validate_config(self)

    # ---- derived sizes (spec/00-method.md §1) ----
    @property
    def grid(self) -> int:
        """h = w = H / P, the patch grid's side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """L = h * w."""
        return self.grid**2

    @property
    def num_tokens(self) -> int:
        """N = L + 1; the class token comes first."""
        return self.num_patches + 1

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def mlp_width(self) -> int:
        return int(round(self.width * self.mlp_ratio))

    @property
    def predictor_width(self) -> int:
        """d = C / r."""
        return self.width // self.reduction

    @property
    def feature_dim(self) -> int:
        """Width of the pooled feature that enters the head: E, or C without a projection."""
        return self.embed_dim if self.embed_dim is not None else self.width

    @property
    def out_dim(self) -> int:
        """Last axis of the model's output: K with a head, else the feature width."""
        return self.num_classes if self.num_classes else self.feature_dim

    @property
    def min_frames(self) -> int:
        """Each merge halves T, so T0 must be a multiple of 2^|S| [ours]."""
        return 2 ** len(self.schedule)

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _positive_int(cfg, name):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


def validate_config(cfg: ModelConfig) -> None:
    """Raise ValueError naming the first field that breaks a rule of spec/00-method.md."""
    for name in ("image_size", "patch_size", "width", "depth", "heads", "reduction"):
        _positive_int(cfg, name)
    if cfg.image_size % cfg.patch_size:
        raise ValueError(
            f"image_size must be a multiple of patch_size, got image_size={cfg.image_size}, "
            f"patch_size={cfg.patch_size}"
        )
    if cfg.width % cfg.heads:
        raise ValueError(f"heads must divide width, got width={cfg.width}, heads={cfg.heads}")
    if cfg.width % cfg.reduction:
        raise ValueError(
            f"reduction must divide width, got width={cfg.width}, reduction={cfg.reduction}"
        )
    if not cfg.mlp_ratio > 0 or cfg.mlp_width < 1:
        raise ValueError(f"mlp_ratio must be positive, got {cfg.mlp_ratio!r}")
    if cfg.embed_dim is not None and (
        isinstance(cfg.embed_dim, bool) or not isinstance(cfg.embed_dim, int) or cfg.embed_dim < 1
    ):
        raise ValueError(f"embed_dim must be a positive integer or None, got {cfg.embed_dim!r}")
    if (
        isinstance(cfg.num_classes, bool)
        or not isinstance(cfg.num_classes, int)
        or cfg.num_classes < 0
    ):
        raise ValueError(
            f"num_classes must be a non-negative integer (0: no head), got {cfg.num_classes!r}"
        )
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {cfg.activation!r}")
    if not cfg.ln_eps > 0:
        raise ValueError(f"ln_eps must be positive, got {cfg.ln_eps!r}")
    if cfg.weight_fn not in WEIGHT_FNS:
        raise ValueError(f"weight_fn must be one of {WEIGHT_FNS}, got {cfg.weight_fn!r}")
    if cfg.weight_granularity not in GRANULARITIES:
        raise ValueError(
            f"weight_granularity must be one of {GRANULARITIES}, got {cfg.weight_granularity!r}"
        )
    unknown = [b for b in cfg.branches if b not in BRANCHES]
    if unknown or len(set(cfg.branches)) != len(cfg.branches):
        raise ValueError(f"branches must be distinct names from {BRANCHES}, got {cfg.branches!r}")
    validate_schedule(cfg.schedule, cfg.depth)


def validate_schedule(schedule, depth: int) -> None:
    """A schedule is a strictly increasing tuple of block indices in 1..depth (spec/00-method.md §3)."""
    schedule = tuple(schedule)
    for k in schedule:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= depth:
            raise ValueError(
                f"schedule entries must be block indices in 1..{depth} (counted from 1), "
                f"got {k!r} in schedule {schedule}"
            )
    if any(a >= b for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"schedule must be strictly increasing, got {schedule}")


PRESETS: dict[str, ModelConfig] = {
    # A few blocks, small width, small frames: fast enough for hypothesis and a laptop demo.
    "nano": ModelConfig(
        image_size=64,
        patch_size=8,
        width=64,
        depth=4,
        heads=4,
        embed_dim=32,
        num_classes=10,
        schedule=(1, 2),
    ),
    # CLIP's ViT-B/16 visual tower at 224 px, one merge after block 3 (the benchmark setting).
    "vit_b16": ModelConfig(
        image_size=224,
        patch_size=16,
        width=768,
        depth=12,
        heads=12,
        embed_dim=512,
        num_classes=400,
        schedule=(3,),
    ),
    # CLIP's ViT-L/14 at 224 px; S = (6,) removes 9/24 = 37.5% of the block MACs (spec/00-method.md §4).
    "vit_l14": ModelConfig(
        image_size=224,
        patch_size=14,
        width=1024,
        depth=24,
        heads=16,
        embed_dim=768,
        num_classes=400,
        schedule=(6,),
    ),
}


def preset(name: str, **changes) -> ModelConfig:
    """A named preset, optionally with fields changed: ``preset("vit_b16", schedule=())``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
