"""The layouts: how timm, OpenAI CLIP and open_clip name and shape the image ViT's tensors
(spec/07-pretrained-layouts.md). One entry per key family in `FAMILIES` and one per layout in
`TABLE`: adding a layout is adding an entry.

- ``"timm"``: timm's ``VisionTransformer`` (``vit_*_patch*_*``, and ``vit_*_clip_*``, which add
  ``norm_pre``); exact GELU.
- ``"clip"``: OpenAI CLIP's visual tower (``conv1``, ``class_embedding``,
  ``transformer.resblocks.N.attn.in_proj_weight``, ``ln_post``, ``proj``), with or without
  the ``visual.`` prefix of a whole CLIP model; QuickGELU.
- ``"open_clip"``: the same keys, as open_clip writes them; open_clip's ViTs use exact GELU
  unless the model name ends in ``-quickgelu``.

Everything here is a table or a pure function of one: our key (spec/00-method.md §3.5) ->
theirs, the shapes a layout expects, the family a state dict's keys belong to. Reading the
config off the shapes is `inti.io.layout_config`; converting whole state dicts, `inti.io.layouts`.

    >>> external_key("blocks.3.norm1.weight", "clip")
    'transformer.resblocks.3.ln_1.weight'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ref.config import ModelConfig
from ref.params import is_temporal_key, param_shapes

# The optional parts of an image ViT, and the config field that says whether a model has one.
PARTS = {"head": "num_classes", "proj": "embed_dim", "patch_bias": "patch_bias", "ln_pre": "ln_pre"}


@dataclass(frozen=True)
class Family:
    """One way of naming the image ViT's tensors; several layouts may share it."""

    name: str
    top: MappingProxyType  # ours -> theirs, outside the blocks; a key not listed keeps its name
    block_prefix: str  # their prefix of block i, with "{i}"
    block: MappingProxyType  # ours -> theirs, inside one block; a key not listed keeps its name
    reshaped: MappingProxyType  # ours -> "lead" (theirs has leading axes of size 1) or "T" (theirs is the transpose)
    lacks: MappingProxyType  # part (PARTS) the family's model cannot hold -> why, in words
    description: str  # in words, for messages


@dataclass(frozen=True)
class Layout:
    """A family with the values its shapes cannot tell (activation, LayerNorm eps), and the
    config values a model must have to be written in it (`fixed`: field -> (value, why[, hint]))."""

    name: str
    family: Family
    activation: str
    ln_eps: float
    ln_eps_with_ln_pre: float | None = None  # the eps when the state dict has ln_pre (timm's vit_*_clip_*)
    fixed: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


def _frozen(**entries) -> MappingProxyType:
    return MappingProxyType(dict(entries))


TIMM = Family(
    name="timm",
    top=MappingProxyType({
        "patch_embed.weight": "patch_embed.proj.weight",
        "patch_embed.bias": "patch_embed.proj.bias",
        "ln_pre.weight": "norm_pre.weight",
        "ln_pre.bias": "norm_pre.bias",
        "ln_post.weight": "norm.weight",  # timm's final norm; per token, so on the class token it is ln_post
        "ln_post.bias": "norm.bias",
    }),
    block_prefix="blocks.{i}.",
    block=MappingProxyType({}),
    reshaped=_frozen(cls_token="lead", pos_embed="lead"),  # (1, 1, C) class token, (1, N, C) positions
    lacks=_frozen(proj="timm's ViT has no projection"),
    description="timm",
)
CLIP = Family(
    name="clip",
    top=MappingProxyType({
        "patch_embed.weight": "conv1.weight",
        "cls_token": "class_embedding",
        "pos_embed": "positional_embedding",
        "proj.weight": "proj",  # stored (C, E) and applied as x @ proj: ours is its transpose
    }),
    block_prefix="transformer.resblocks.{i}.",
    block=MappingProxyType({
        "norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
        "attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
        "attn.proj.weight": "attn.out_proj.weight", "attn.proj.bias": "attn.out_proj.bias",
        "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
        "mlp.fc1.weight": "mlp.c_fc.weight", "mlp.fc1.bias": "mlp.c_fc.bias",
        "mlp.fc2.weight": "mlp.c_proj.weight", "mlp.fc2.bias": "mlp.c_proj.bias",
    }),
    reshaped=MappingProxyType({"proj.weight": "T"}),
    lacks=_frozen(patch_bias="CLIP's conv1 has no bias", head="CLIP's image tower has no classifier head"),
    description="OpenAI CLIP / open_clip",
)
FAMILIES = {f.name: f for f in (TIMM, CLIP)}

_CLIP_EPS = (1e-5, "CLIP's LayerNorms use eps 1e-5")
TABLE = {
    # timm: eps 1e-6 for vit_*, but 1e-5 for the vit_*_clip_* models, which are the ones with norm_pre
    "timm": Layout("timm", TIMM, activation="gelu", ln_eps=1e-6, ln_eps_with_ln_pre=1e-5),
    "clip": Layout("clip", CLIP, activation="quick_gelu", ln_eps=1e-5, fixed=MappingProxyType({
        "ln_eps": _CLIP_EPS, "activation": ("quick_gelu", "OpenAI CLIP uses QuickGELU", "use layout='open_clip'")})),
    "open_clip": Layout("open_clip", CLIP, activation="gelu", ln_eps=1e-5, fixed=MappingProxyType({"ln_eps": _CLIP_EPS})),
}
LAYOUTS = tuple(TABLE)
FAMILY = {name: layout.family.name for name, layout in TABLE.items()}
DEFAULT_ACTIVATION = {name: layout.activation for name, layout in TABLE.items()}
DEFAULT_LN_EPS = {name: layout.ln_eps for name, layout in TABLE.items()}

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def layout_of(name: str) -> Layout:
    """The table's entry for a layout name (a family's name is its first layout's); ValueError otherwise."""
    if name not in TABLE:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {name!r}")
    return TABLE[name]


def family_of(name: str) -> Family:
    return layout_of(name).family


def default_layout(family: str) -> str:
    """The layout a state dict of `family` is read as when none is asked for: the family's first
    in TABLE ("clip" for the CLIP family: OpenAI's QuickGELU)."""
    return next(name for name, entry in TABLE.items() if entry.family.name == family)


def block_pattern(family: Family) -> re.Pattern:
    """Their key of any block: group 1 is the block index."""
    prefix = re.escape(family.block_prefix).replace(r"\{i\}", r"(\d+)")
    return re.compile("^" + prefix)


def external_key(key: str, layout: str) -> str:
    """The name that `layout` gives our key: external_key("blocks.3.norm1.weight", "clip") ->
    "transformer.resblocks.3.ln_1.weight". Keys with no counterpart (merges.*, and the temporal
    modules of spec/00-method.md §12) raise KeyError."""
    return family_key(key, family_of(layout), layout)


def family_key(key: str, family: Family, layout: str | None = None) -> str:
    """`external_key` for a family (`layout` names it in the messages)."""
    layout = layout or family.name
    if key.startswith("merges."):
        raise KeyError(f"{key!r} is InTI's predictor θ; the {layout} layout has no counterpart")
    if is_temporal_key(key):
        raise KeyError(f"{key!r} is a temporal module (spec/00-method.md §12); the {layout} layout of an image ViT has no counterpart")
    match = _BLOCK_KEY.match(key)
    if match:
        return family.block_prefix.format(i=match[1]) + family.block.get(match[2], match[2])
    return family.top.get(key, key)


def key_map(cfg: ModelConfig, layout: str) -> dict[str, str]:
    """Our key -> the layout's key, for every backbone parameter of `cfg` (spec/00-method.md §3.5 order).

    The predictor θ (``merges.*``) is InTI's own and has no counterpart in an image model, nor do
    the temporal modules (spec/00-method.md §12)."""
    return {k: external_key(k, layout) for k in param_shapes(cfg) if not (k.startswith("merges.") or is_temporal_key(k))}


def their_shape(key: str, shape: tuple, family: Family) -> tuple:
    how = family.reshaped.get(key)
    if how == "lead":
        return (1,) * (3 - len(shape)) + tuple(shape)
    if how == "T":
        return tuple(shape)[::-1]
    return tuple(shape)


def external_shapes(cfg: ModelConfig, layout: str) -> dict[str, tuple[int, ...]]:
    """The layout's key -> the shape it must have, for the image ViT that `cfg` describes."""
    family = family_of(layout)
    shapes = param_shapes(cfg)
    return {theirs: their_shape(ours, shapes[ours], family) for ours, theirs in key_map(cfg, layout).items()}


def to_ours(key: str, value: np.ndarray, family: Family) -> np.ndarray:
    """Their tensor for our `key`, in our shape (a view where the layout allows)."""
    how = family.reshaped.get(key)
    if how == "lead":
        return value.reshape(value.shape[-2:] if key == "pos_embed" else value.shape[-1:])
    if how == "T":
        return value.T
    return value


def to_theirs(key: str, value: np.ndarray, family: Family) -> np.ndarray:
    """Our tensor for `key`, in the family's shape."""
    how = family.reshaped.get(key)
    if how == "lead":
        return value.reshape(their_shape(key, value.shape, family))
    if how == "T":
        return np.ascontiguousarray(value.T)
    return value


def _pattern(family: Family) -> re.Pattern:
    """Every key a family can hold, block index generalised: one regular expression."""
    full = ModelConfig(
        image_size=32, patch_size=16, width=64, depth=1, heads=1, ln_pre=True,
        embed_dim=None if "proj" in family.lacks else 8, num_classes=0 if "head" in family.lacks else 2,
        patch_bias="patch_bias" not in family.lacks,
    )
    block = re.escape(family.block_prefix.format(i=0))
    ours = [k for k in param_shapes(full) if not k.startswith("merges.")]
    keys = [re.escape(family_key(k, family)).replace(block, block.replace("0", r"\d+"), 1) for k in ours]
    return re.compile("^(?:" + "|".join(keys) + ")$")


PATTERNS = {name: _pattern(family) for name, family in FAMILIES.items()}


def describe_keys(keys, state_dict, limit=12) -> str:
    keys = list(keys)
    shown = ", ".join(f"{k} {tuple(np.shape(state_dict[k]))}" if k in state_dict else k for k in keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def detect_layout(state_dict: dict) -> str:
    """The key family of a state dict ("timm", or "clip", which OpenAI CLIP and open_clip share).

    The family whose key patterns fit the most keys wins; if none fits any key, ValueError
    lists the keys. `state_dict` has its ``visual.`` prefix removed already."""
    fits = {name: sum(bool(p.match(k)) for k in state_dict) for name, p in PATTERNS.items()}
    best = max(fits, key=fits.get)
    if fits[best] == 0:
        raise ValueError(
            "the state dict matches no known layout (timm: patch_embed.proj.weight, cls_token, pos_embed, "
            "blocks.N.*; OpenAI CLIP / open_clip: conv1.weight, class_embedding, positional_embedding, "
            f"transformer.resblocks.N.*, optionally under 'visual.'). Keys that did not fit: "
            f"{describe_keys(sorted(state_dict), state_dict) if state_dict else '(the state dict is empty)'}"
        )
    return best
