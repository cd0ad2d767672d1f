"""The layouts: how timm, OpenAI CLIP, open_clip and Hugging Face name and shape the image ViT's
tensors (spec/07-pretrained-layouts.md). One entry per key family in `FAMILIES` and one per layout
in `TABLE`: adding a layout is adding an entry.

- ``"timm"``: timm's ``VisionTransformer`` (``vit_*_patch*_*``, and ``vit_*_clip_*``, which add
  ``norm_pre``); exact GELU.
- ``"clip"``: OpenAI CLIP's visual tower (``conv1``, ``class_embedding``,
  ``transformer.resblocks.N.attn.in_proj_weight``, ``ln_post``, ``proj``), with or without
  the ``visual.`` prefix of a whole CLIP model; QuickGELU.
- ``"open_clip"``: the same keys, as open_clip writes them; open_clip's ViTs use exact GELU
  unless the model name ends in ``-quickgelu``.
- ``"hf"``: Hugging Face transformers' CLIP towers (``CLIPVisionModel``,
  ``CLIPVisionModelWithProjection``, a ``CLIPModel``'s ``vision_model``): ``embeddings.*``,
  ``pre_layrnorm`` (sic), ``encoder.layers.N.self_attn.{q,k,v}_proj``, ``post_layernorm``, with or
  without the ``vision_model.`` prefix, and ``visual_projection`` beside the tower; QuickGELU
  unless its config.json says otherwise (`inti.io.hf`).

Most tensors keep their shape or change it by a reshape kind (`Family.reshaped`): ``"lead"``
(theirs has leading axes of size 1), ``"T"`` (theirs is the transpose), or ``"split"``: one tensor
of ours is several of theirs, cut along its first axis in order (our fused ``qkv`` is HF's
``q_proj``, ``k_proj`` and ``v_proj``). So a key of ours names one key of theirs or a group
(`key_groups`); the one-to-one `key_map` serves the layouts without groups.

Everything here is a table or a pure function of one: our key (spec/00-method.md §3.5) ->
theirs, the shapes a layout expects, the family a state dict's keys belong to. Reading the
config off the shapes is `inti.io.layout_config`; converting whole state dicts, `inti.io.layouts`.

    >>> external_key("blocks.3.norm1.weight", "clip")
    'transformer.resblocks.3.ln_1.weight'
    >>> external_keys("blocks.3.attn.qkv.bias", "hf")  # doctest: +NORMALIZE_WHITESPACE
    ('encoder.layers.3.self_attn.q_proj.bias', 'encoder.layers.3.self_attn.k_proj.bias',
     'encoder.layers.3.self_attn.v_proj.bias')
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
RESHAPES = ("lead", "T", "split")  # how their tensor's shape relates to ours (see the module's docstring)


@dataclass(frozen=True)
class Family:
    """One way of naming the image ViT's tensors; several layouts may share it."""

    name: str
    top: MappingProxyType  # ours -> theirs, outside the blocks; a key not listed keeps its name
    block_prefix: str  # their prefix of block i, with "{i}"
    block: MappingProxyType  # ours -> theirs (a name, or a tuple of names for "split"), inside one block
    reshaped: MappingProxyType  # ours (in a block: its name inside the block) -> one of RESHAPES
    lacks: MappingProxyType  # part (PARTS) the family's model cannot hold -> why, in words
    description: str  # in words, for messages
    prefix: str = ""  # where a whole model holds the tower, stripped by `select_tower` (CLIP's
    # "visual." is stripped before detection, for every family, by inti.io.state_dicts.select_visual)
    beside: frozenset = frozenset()  # their keys that sit beside the tower, never under `prefix`
    constants: tuple = ()  # their keys of constant buffers, not parameters: dropped on reading

    def __post_init__(self):
        names = {**self.top, **self.block}
        for key, how in self.reshaped.items():
            if how not in RESHAPES:
                raise ValueError(f"{self.name}: {key} has reshape kind {how!r}, not one of {RESHAPES}")
            if (how == "split") != isinstance(names.get(key), tuple):
                raise ValueError(f"{self.name}: {key} must map to a tuple of names exactly when it is 'split'")


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
HF = Family(
    name="hf",
    top=MappingProxyType({
        "patch_embed.weight": "embeddings.patch_embedding.weight",
        "cls_token": "embeddings.class_embedding",
        "pos_embed": "embeddings.position_embedding.weight",  # an nn.Embedding's (N, C): our array
        "ln_pre.weight": "pre_layrnorm.weight", "ln_pre.bias": "pre_layrnorm.bias",  # sic
        "ln_post.weight": "post_layernorm.weight", "ln_post.bias": "post_layernorm.bias",
        "proj.weight": "visual_projection.weight",  # (E, C), as ours
    }),
    block_prefix="encoder.layers.{i}.",
    block=MappingProxyType({
        "norm1.weight": "layer_norm1.weight", "norm1.bias": "layer_norm1.bias",
        "attn.qkv.weight": ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
        "attn.qkv.bias": ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"),
        "attn.proj.weight": "self_attn.out_proj.weight", "attn.proj.bias": "self_attn.out_proj.bias",
        "norm2.weight": "layer_norm2.weight", "norm2.bias": "layer_norm2.bias",
    }),
    # our qkv is their q, k and v stacked in that order; within each, heads are contiguous in both
    reshaped=_frozen(**{"attn.qkv.weight": "split", "attn.qkv.bias": "split"}),
    lacks=_frozen(patch_bias="CLIPVisionModel's patch embedding has no bias",
                  head="a CLIP vision tower has no classifier head"),
    description="Hugging Face transformers' CLIP",
    prefix="vision_model.",
    beside=frozenset({"visual_projection.weight"}),
    constants=("embeddings.position_ids",),  # arange(N), which older files hold
)
FAMILIES = {f.name: f for f in (TIMM, CLIP, HF)}

_CLIP_EPS = (1e-5, "CLIP's LayerNorms use eps 1e-5")
TABLE = {
    # timm: eps 1e-6 for vit_*, but 1e-5 for the vit_*_clip_* models, which are the ones with norm_pre
    "timm": Layout("timm", TIMM, activation="gelu", ln_eps=1e-6, ln_eps_with_ln_pre=1e-5),
    "clip": Layout("clip", CLIP, activation="quick_gelu", ln_eps=1e-5, fixed=MappingProxyType({
        "ln_eps": _CLIP_EPS, "activation": ("quick_gelu", "OpenAI CLIP uses QuickGELU", "use layout='open_clip'")})),
    "open_clip": Layout("open_clip", CLIP, activation="gelu", ln_eps=1e-5, fixed=MappingProxyType({"ln_eps": _CLIP_EPS})),
    # transformers' CLIPVisionConfig defaults; a model folder's config.json tells its own (inti.io.hf)
    "hf": Layout("hf", HF, activation="quick_gelu", ln_eps=1e-5, fixed=MappingProxyType({
        "ln_pre": (True, "CLIPVisionModel always has pre_layrnorm")})),
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


def external_keys(key: str, layout: str) -> tuple[str, ...]:
    """The names that `layout` gives our key: one, or a group for a "split" key. Keys with no
    counterpart (merges.*, and the temporal modules of spec/00-method.md §12) raise KeyError."""
    return family_keys(key, family_of(layout), layout)


def external_key(key: str, layout: str) -> str:
    """The one name that `layout` gives our key: external_key("blocks.3.norm1.weight", "clip") ->
    "transformer.resblocks.3.ln_1.weight". KeyError for keys with no counterpart, and for a key
    the layout stores as several (`external_keys`)."""
    names = external_keys(key, layout)
    if len(names) != 1:
        raise KeyError(f"{key!r} is {len(names)} keys in the {layout} layout ({', '.join(names)}); external_keys gives them")
    return names[0]


def family_keys(key: str, family: Family, layout: str | None = None) -> tuple[str, ...]:
    """`external_keys` for a family (`layout` names it in the messages)."""
    layout = layout or family.name
    if key.startswith("merges."):
        raise KeyError(f"{key!r} is InTI's predictor θ; the {layout} layout has no counterpart")
    if is_temporal_key(key):
        raise KeyError(f"{key!r} is a temporal module (spec/00-method.md §12); the {layout} layout of an image ViT has no counterpart")
    match = _BLOCK_KEY.match(key)
    if match:
        names = family.block.get(match[2], match[2])
        prefix = family.block_prefix.format(i=match[1])
    else:
        names, prefix = family.top.get(key, key), ""
    return tuple(prefix + n for n in names) if isinstance(names, tuple) else (prefix + names,)


def reshape_kind(key: str, family: Family) -> str | None:
    """How their tensor(s) for our `key` relate to ours: one of RESHAPES, or None (the same)."""
    match = _BLOCK_KEY.match(key)
    return family.reshaped.get(match[2] if match else key)


def _image_model_keys(cfg: ModelConfig) -> list[str]:
    """Our keys that an image model holds, in spec/00-method.md §3.5 order: all but the predictor
    θ (``merges.*``), InTI's own, and the temporal modules (spec/00-method.md §12)."""
    return [k for k in param_shapes(cfg) if not (k.startswith("merges.") or is_temporal_key(k))]


def key_groups(cfg: ModelConfig, layout: str) -> dict[str, tuple[str, ...]]:
    """Our key -> the layout's key(s), for every backbone parameter of `cfg`: one name, or the
    group that a "split" key is stored as (HF's q, k and v for our qkv)."""
    return {k: external_keys(k, layout) for k in _image_model_keys(cfg)}


def key_map(cfg: ModelConfig, layout: str) -> dict[str, str]:
    """Our key -> the layout's key, for every backbone parameter of `cfg` (spec/00-method.md §3.5
    order), in a layout that stores each of ours as one of its own. A layout that splits a key
    (``"hf"``) raises ValueError: its map is `key_groups`."""
    split = [k for k, how in family_of(layout).reshaped.items() if how == "split"]
    if split:
        raise ValueError(f"the {layout} layout stores {', '.join(split)} as several keys each; its key map is "
                         "inti.io.keymaps.key_groups")
    return {k: names[0] for k, names in key_groups(cfg, layout).items()}


def with_prefix(key: str, prefix: str, family: Family) -> str:
    """Their `key` in a whole model that holds the tower under `prefix`; keys `beside` the tower keep theirs."""
    return key if key in family.beside else prefix + key


def their_shapes(key: str, shape: tuple, family: Family, parts: int = 1) -> tuple[tuple, ...]:
    """The shape of each of their tensors for our `key` of `shape` (`parts` of them for a "split" key)."""
    how = reshape_kind(key, family)
    if how == "lead":
        return ((1,) * (3 - len(shape)) + tuple(shape),)
    if how == "T":
        return (tuple(shape)[::-1],)
    if how == "split":
        return ((shape[0] // parts, *shape[1:]),) * parts
    return (tuple(shape),)


def our_shape(key: str, shapes, family: Family) -> tuple:
    """The shape of our `key` from the shapes of their tensor(s) for it (`their_shapes`' inverse)."""
    how, shapes = reshape_kind(key, family), [tuple(s) for s in shapes]
    if how == "lead":
        return shapes[0][-2:] if key == "pos_embed" else shapes[0][-1:]
    if how == "T":
        return shapes[0][::-1]
    if how == "split":
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    return shapes[0]


def external_shapes(cfg: ModelConfig, layout: str, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """The layout's key -> the shape it must have, for the image ViT that `cfg` describes (tower
    keys under `prefix`, as `inti.io.layouts.to_layout` writes them)."""
    family = family_of(layout)
    shapes = param_shapes(cfg)
    out = {}
    for ours, theirs in key_groups(cfg, layout).items():
        for name, shape in zip(theirs, their_shapes(ours, shapes[ours], family, len(theirs))):
            out[with_prefix(name, prefix, family)] = shape
    return out


def to_ours(key: str, values, family: Family) -> np.ndarray:
    """Their tensor(s) for our `key` (a sequence, in `family_keys`' order), as ours in our shape
    (a view where the layout allows; a "split" key's parts are stacked)."""
    how, value = reshape_kind(key, family), values[0]
    if how == "lead":
        return value.reshape(our_shape(key, (value.shape,), family))
    if how == "T":
        return value.T
    if how == "split":
        return np.concatenate([np.asarray(v) for v in values], axis=0)
    return value


def to_theirs(key: str, value: np.ndarray, family: Family, parts: int = 1) -> tuple[np.ndarray, ...]:
    """Our tensor for `key`, as the family's tensor(s) in their shape (`parts` for a "split" key)."""
    how = reshape_kind(key, family)
    if how == "lead":
        return (value.reshape(their_shapes(key, value.shape, family)[0]),)
    if how == "T":
        return (np.ascontiguousarray(value.T),)
    if how == "split":
        return tuple(np.ascontiguousarray(p) for p in np.split(value, parts, axis=0))
    return (value,)


def select_tower(state_dict: dict, family: Family) -> dict:
    """The tower's entries of a state dict in `family`'s layout: without the family's `prefix`
    (where the keys carry it, whatever else sits beside the tower, such as a whole CLIPModel's
    text tower and ``logit_scale``, is left out, except the family's `beside` keys) and without
    its constant buffers. Other keys stay, for `inti.io.layout_config` to name."""
    prefixed = bool(family.prefix) and any(k.startswith(family.prefix) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if prefixed:
            if key.startswith(family.prefix):
                key = key[len(family.prefix):]
            elif key not in family.beside:
                continue
        if key not in family.constants:
            out[key] = value
    return out


def _pattern(family: Family) -> re.Pattern:
    """Every key a family can hold, block index generalised, tower keys with or without the
    family's prefix: one regular expression."""
    full = ModelConfig(
        image_size=32, patch_size=16, width=64, depth=1, heads=1, ln_pre=True,
        embed_dim=None if "proj" in family.lacks else 8, num_classes=0 if "head" in family.lacks else 2,
        patch_bias="patch_bias" not in family.lacks,
    )
    block = re.escape(family.block_prefix.format(i=0))
    names = [n for k in param_shapes(full) if not k.startswith("merges.") for n in family_keys(k, family)]
    keys = [re.escape(n).replace(block, block.replace("0", r"\d+"), 1) for n in names if n not in family.beside]
    tower = (f"(?:{re.escape(family.prefix)})?" if family.prefix else "") + "(?:" + "|".join(keys) + ")"
    beside = [re.escape(n) for n in names if n in family.beside]
    return re.compile("^(?:" + "|".join([tower, *beside]) + ")$")


PATTERNS = {name: _pattern(family) for name, family in FAMILIES.items()}


def describe_keys(keys, state_dict, limit=12) -> str:
    keys = list(keys)
    shown = ", ".join(f"{k} {tuple(np.shape(state_dict[k]))}" if k in state_dict else k for k in keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def detect_layout(state_dict: dict) -> str:
    """The key family of a state dict ("timm"; "clip", which OpenAI CLIP and open_clip share; or
    "hf", transformers' CLIP towers, with or without their ``vision_model.`` prefix).

    The family whose key patterns fit the most keys wins; if none fits any key, ValueError
    lists the keys. `state_dict` has its ``visual.`` prefix removed already."""
    fits = {name: sum(bool(p.match(k)) for k in state_dict) for name, p in PATTERNS.items()}
    best = max(fits, key=fits.get)
    if fits[best] == 0:
        raise ValueError(
            "the state dict matches no known layout (timm: patch_embed.proj.weight, cls_token, pos_embed, "
            "blocks.N.*; OpenAI CLIP / open_clip: conv1.weight, class_embedding, positional_embedding, "
            "transformer.resblocks.N.*, optionally under 'visual.'; Hugging Face: embeddings.patch_embedding.weight, "
            f"encoder.layers.N.*, optionally under 'vision_model.'). Keys that did not fit: "
            f"{describe_keys(sorted(state_dict), state_dict) if state_dict else '(the state dict is empty)'}"
        )
    return best
