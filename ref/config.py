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
INT_FIELDS = ("image_size", "patch_size", "width", "depth", "heads", "reduction")
TEMPORALS = ("none", "st_adapter", "aim")  # the temporal modules of spec/00-method.md §12
PLACEMENTS = ("attn", "mlp")  # where an ST-Adapter sits: before attention, before the MLP


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of an InTI video model (spec/00-method.md §1-3).

    The first block of fields describes the image ViT (spec/00-method.md §2); the last block the
    compression layer Φ (§3). Symbols in brackets are the method chapter's notation (§1).
    """

    image_size: int = 224  # frame height and width in pixels [H = W]
    patch_size: int = 16  # [P]; the patch grid is image_size // patch_size on each side
    width: int = 768  # [C]
    depth: int = 12  # [D], the number of blocks
    heads: int = 12  # attention heads; must divide width
    mlp_ratio: float = 4.0  # the MLP's hidden width is mlp_ratio * C
    embed_dim: int | None = 512  # [E], projection after the pooled class token; None: none [ours]
    num_classes: int = 0  # [K], the head's classes; 0: no head, the model returns features [ours]
    activation: str = "quick_gelu"  # "quick_gelu" (CLIP) or "gelu" (exact erf; timm)
    ln_eps: float = 1e-5  # LayerNorm eps: 1e-5 in CLIP, 1e-6 in timm's ViTs; LN_θ uses it too
    ln_pre: bool = True  # LayerNorm after the positions (CLIP has one; timm's vit_* have none)
    patch_bias: bool = False  # a bias on the patch embedding (timm has one; CLIP has none)
    # --- the compression layer Φ and its weight predictor θ (spec/00-method.md §3) ---
    schedule: tuple[int, ...] = ()  # [S], blocks (counted from 1) after which to merge
    reduction: int = 4  # [r], the predictor width is d = C // r
    branches: tuple[str, ...] = BRANCHES  # any subset of ("token", "local", "frame", "clip")
    weight_fn: str = "softmax"  # "softmax" [paper]; "sigmoid" or "mean" for ablation [ours]
    weight_granularity: str = "token"  # "token": one weight per token [ours]; "channel": C weights
    # --- temporal modules beside the merges (§12) [ours, after ST-Adapter, AIM] ---
    temporal: str = "none"  # "none", "st_adapter" (§12.1) or "aim" (§12.2)
    temporal_width: int | None = None  # [C_a] bottleneck; None: C // 2 (ST-Adapter), C // 4 (AIM)
    temporal_blocks: tuple[int, ...] = ()  # blocks (counted from 1) with a module; (): every block
    temporal_placement: tuple[str, ...] = ("attn",)  # ST-Adapter: before "attn" and/or before "mlp"
    temporal_frames: int | None = None  # [T0] AIM: the length of its temporal embedding (required)
    temporal_scale: float = 0.5  # [s] AIM: the scale of the MLP-parallel adapter

    def __post_init__(self):
        # Normalise sequences so that configs built from lists or numpy integers compare equal
        # and hash; anything that is not an integer is left for validation to refuse.
        def as_int(k):
            return int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k

        for name in ("schedule", "branches", "temporal_blocks", "temporal_placement"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{name} must be a tuple, got {value!r}")
        object.__setattr__(self, "schedule", tuple(as_int(k) for k in self.schedule))
        object.__setattr__(self, "temporal_blocks", tuple(as_int(k) for k in self.temporal_blocks))
        for name in INT_FIELDS + ("num_classes", "embed_dim", "temporal_width", "temporal_frames"):
            object.__setattr__(self, name, as_int(getattr(self, name)))
        object.__setattr__(self, "branches", tuple(self.branches))
        object.__setattr__(self, "temporal_placement", tuple(self.temporal_placement))
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

    @property
    def module_blocks(self) -> tuple[int, ...]:
        """The blocks, counted from 1, that carry a temporal module (§12): none without a module,
        every block for temporal_blocks=() [ours], else temporal_blocks."""
        if self.temporal == "none":
            return ()
        return self.temporal_blocks or tuple(range(1, self.depth + 1))

    @property
    def adapter_width(self) -> int:
        """C_a, the bottleneck of the temporal modules (§12): temporal_width, or by default
        max(1, C // 2) for ST-Adapter (384 at ViT-B) and max(1, C // 4) for AIM (its ratio 0.25)
        [ours]."""
        if self.temporal_width is not None:
            return self.temporal_width
        return max(1, self.width // (4 if self.temporal == "aim" else 2))

    @property
    def fixed_frames(self) -> int | None:
        """T0 when the model takes one frame count only (AIM's temporal embedding, §12.2), else
        None."""
        return self.temporal_frames if self.temporal == "aim" else None

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


LN_EPS_MAX = 0.1  # [ours] a LayerNorm eps beyond this swamps the variance of normalized tokens
MLP_RATIO_MAX = 64.0  # [ours] a sanity bound: the widest public ViT MLPs use about 5.3
TEMPORAL_SCALE_MAX = 10.0  # [ours] a sanity bound on AIM's adapter scale (AIM uses 0.5)


def _positive_int(cfg, name):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounded(cfg, name, most):
    """A real number in (0, most]."""
    value = getattr(cfg, name)
    if not _real(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not value > 0:  # also NaN
        raise ValueError(f"{name} must be positive, got {value!r}")
    if not value <= most:
        raise ValueError(f"{name} must be at most {most:g}, got {value!r}")


def _choice(cfg, name, options):
    value = getattr(cfg, name)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def validate_config(cfg: ModelConfig) -> None:
    """Raise ValueError naming the first field that breaks a rule of spec/00-method.md.

    Every field is checked for its type and its range, so that no config computes a silently
    wrong answer (an eps that swamps LayerNorm, a ratio of zero, a schedule of strings)."""
    for name in INT_FIELDS:
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
    _bounded(cfg, "mlp_ratio", MLP_RATIO_MAX)
    if cfg.mlp_width < 1:
        raise ValueError(f"mlp_ratio must give an MLP width of at least 1, got {cfg.mlp_ratio!r}")
    if cfg.embed_dim is not None and (
        isinstance(cfg.embed_dim, bool) or not isinstance(cfg.embed_dim, int) or cfg.embed_dim < 1
    ):
        raise ValueError(f"embed_dim must be a positive integer or None, got {cfg.embed_dim!r}")
    n = cfg.num_classes
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"num_classes must be a non-negative integer (0: no head), got {n!r}")
    _choice(cfg, "activation", ACTIVATIONS)
    _bounded(cfg, "ln_eps", LN_EPS_MAX)
    for name in ("ln_pre", "patch_bias"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(cfg, name)!r}")
    _choice(cfg, "weight_fn", WEIGHT_FNS)
    _choice(cfg, "weight_granularity", GRANULARITIES)
    unknown = [b for b in cfg.branches if not isinstance(b, str) or b not in BRANCHES]
    if unknown or len(set(cfg.branches)) != len(cfg.branches):
        raise ValueError(f"branches must be distinct names from {BRANCHES}, got {cfg.branches!r}")
    validate_schedule(cfg.schedule, cfg.depth)
    validate_temporal(cfg)


def _optional_int(cfg, name, hint):
    value = getattr(cfg, name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(
            f"ModelConfig.{name} must be a positive integer or None ({hint}), got {value!r}"
        )


def validate_temporal(cfg: ModelConfig) -> None:
    """The temporal fields (spec/00-method.md §12) [ours]. Every field is checked for its type
    and range whichever module is chosen; a field that the module does not use is ignored."""
    _choice(cfg, "temporal", TEMPORALS)
    _optional_int(cfg, "temporal_width", "None: the module's default bottleneck")
    if cfg.temporal_width is not None and cfg.temporal_width > cfg.width:
        raise ValueError(
            f"ModelConfig.temporal_width, the bottleneck C_a, must be at most the width "
            f"{cfg.width}, got {cfg.temporal_width}"
        )
    blocks = cfg.temporal_blocks
    for k in blocks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= cfg.depth:
            raise ValueError(
                f"temporal_blocks entries must be block indices in 1..{cfg.depth} (counted from 1; "
                f"() means every block), got {k!r} in temporal_blocks {blocks}"
            )
    if any(a >= b for a, b in zip(blocks, blocks[1:])):
        raise ValueError(f"temporal_blocks must be strictly increasing, got {blocks}")
    placement = cfg.temporal_placement
    unknown = [p for p in placement if not isinstance(p, str) or p not in PLACEMENTS]
    if not placement or unknown or len(set(placement)) != len(placement):
        raise ValueError(
            f"temporal_placement must be distinct names from {PLACEMENTS}, at least one, "
            f"got {placement!r}"
        )
    _optional_int(cfg, "temporal_frames", "AIM's T0, the length of its temporal embedding")
    scale = cfg.temporal_scale
    if not _real(scale) or not 0 <= scale <= TEMPORAL_SCALE_MAX:  # also NaN
        raise ValueError(
            f"temporal_scale must be a number in [0, {TEMPORAL_SCALE_MAX:g}], got {scale!r}"
        )
    if cfg.temporal == "aim":
        if cfg.temporal_frames is None:
            raise ValueError(
                "temporal='aim' needs temporal_frames, the input frame count T0 that its "
                "temporal embedding (T0, C) covers"
            )
        if cfg.temporal_frames % cfg.min_frames:
            raise ValueError(
                f"temporal_frames must be a multiple of {cfg.min_frames} (schedule "
                f"{cfg.schedule} halves the frames {len(cfg.schedule)} time(s)), "
                f"got {cfg.temporal_frames}"
            )


def validate_schedule(schedule, depth: int) -> None:
    """A schedule is a strictly increasing tuple of block indices in 1..depth (§3)."""
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
        image_size=64, patch_size=8, width=64, depth=4, heads=4, embed_dim=32, num_classes=10,
        schedule=(1, 2),
    ),
    # CLIP's ViT-B/16 visual tower at 224 px, one merge after block 3 (the benchmark setting).
    "vit_b16": ModelConfig(
        image_size=224, patch_size=16, width=768, depth=12, heads=12, embed_dim=512,
        num_classes=400, schedule=(3,),
    ),
    # CLIP's ViT-L/14 at 224 px; S = (6,) removes 9/24 = 37.5% of the block MACs (§4).
    "vit_l14": ModelConfig(
        image_size=224, patch_size=14, width=1024, depth=24, heads=16, embed_dim=768,
        num_classes=400, schedule=(6,),
    ),
}


# Module settings for any backbone preset (spec/00-method.md §12): ``with_temporal(cfg, name)``.
# The two ST-Adapter settings are the released code's presets at ViT-B width: 12x384 puts one
# adapter (C_a = 384) before the MLP of each of the 12 blocks, 24x384 one before attention and one
# before the MLP. "aim" is AIM's block with its default bottleneck C / 4 in every block.
TEMPORAL_PRESETS: dict[str, dict] = {
    "st_adapter": {"temporal": "st_adapter"},
    "st_adapter_12x384": {"temporal": "st_adapter", "temporal_width": 384,
                          "temporal_placement": ("mlp",)},
    "st_adapter_24x384": {"temporal": "st_adapter", "temporal_width": 384,
                          "temporal_placement": ("attn", "mlp")},
    "aim": {"temporal": "aim"},
}


def with_temporal(cfg: ModelConfig, name: str, frames: int | None = None) -> ModelConfig:
    """`cfg` with the temporal module setting `name` of TEMPORAL_PRESETS; "none" removes it.
    AIM's embedding length comes from `frames` (T0), which it needs:
    ``with_temporal(preset("vit_b16"), "aim", frames=8)``."""
    if name == "none":
        return cfg.replace(temporal="none")
    if name not in TEMPORAL_PRESETS:
        raise ValueError(
            f"unknown temporal module setting {name!r}; choose one of "
            f"{['none', *TEMPORAL_PRESETS]}"
        )
    changes = dict(TEMPORAL_PRESETS[name])
    if changes["temporal"] == "aim":
        changes["temporal_frames"] = frames
    return require_config(cfg).replace(**changes)


def require_config(cfg) -> ModelConfig:
    """`cfg` itself if it is a ModelConfig; a clear TypeError for anything else (a dict, a name)."""
    if not isinstance(cfg, ModelConfig):
        hint = ""
        if isinstance(cfg, dict):
            hint = "; build one with ref.ModelConfig(**d) or ref.preset(name)"
        raise TypeError(f"cfg must be a ref.ModelConfig, got {type(cfg).__name__}{hint}")
    return cfg


def preset(name: str, **changes) -> ModelConfig:
    """A named preset, optionally with fields changed: ``preset("vit_b16", schedule=())``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
