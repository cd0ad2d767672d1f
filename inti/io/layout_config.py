"""The config of a pretrained image ViT, read off its tensor shapes, as CLIP's ``build_model``
does (spec/07-pretrained-layouts.md).

The shapes determine the patch size, width, depth, image size, MLP width, projection, head,
ln_pre and patch bias. Three values they cannot tell come from the layout's entry
(`inti.io.keymaps.TABLE`) or from the caller: ``heads`` (``width // 64`` [ours], as CLIP's
build_model, except `KNOWN_HEADS`), ``activation`` and ``ln_eps``.

    >>> default_heads(768), default_heads(1280)
    (12, 16)
"""

from __future__ import annotations

import math

import numpy as np

from ref.config import ModelConfig
from ref.params import key_report

from .keymaps import PARTS, PATTERNS, block_pattern, describe_keys, external_key, external_shapes, layout_of, our_shape

# Widths whose public models do not have 64-wide heads [ours]: ViT-H/14 (1280), ViT-g/14 (1408)
# and ViT-bigG/14 (1664) all use 16 heads, in timm and in open_clip alike.
KNOWN_HEADS = {1280: 16, 1408: 16, 1664: 16}
# Config fields that the shapes fix; an override may repeat them but not change them.
SHAPE_FIELDS = ("patch_size", "width", "depth", "mlp_ratio", "embed_dim", "num_classes", "ln_pre", "patch_bias")


def default_heads(width: int) -> int:
    """Attention heads for a width, which no tensor shape records [ours]: ``width // 64``, as
    CLIP's build_model, except the widths in KNOWN_HEADS. Pass ``heads=`` to override."""
    return KNOWN_HEADS.get(width, max(width // 64, 1))


def infer_config(state_dict: dict, layout: str, **overrides) -> ModelConfig:
    """The ModelConfig of the image ViT in `state_dict` (already in `layout`'s family, prefix removed:
    `inti.io.keymaps.select_tower`).

    Shapes give: patch_size and width (patch weight (C, 3, P, P)), image_size (positions: N = (H/P)^2 + 1),
    depth (the block indices), mlp_ratio (fc1), embed_dim (CLIP's proj), num_classes (timm's head),
    ln_pre and patch_bias (whether their keys exist). heads, activation and ln_eps come from
    `overrides` or the layout's defaults. Every key of the state dict must fit, every expected key
    must be there with its shape; otherwise one ValueError lists what is missing, unexpected or
    mis-shaped, by the layout's own key names (a "split" key by each of its parts)."""
    entry = layout_of(layout)
    family = entry.family
    unknown = sorted(set(overrides) - set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown ModelConfig field(s) {unknown}; known: {sorted(ModelConfig.__dataclass_fields__)}")
    if "schedule" in overrides or "image_size" in overrides:
        raise TypeError("pass schedule= and image_size= as their own arguments, not as config overrides")
    name = {k: external_key(k, layout) for k in ("patch_embed.weight", "pos_embed", "cls_token")}
    name["fc1"] = external_key("blocks.0.mlp.fc1.weight", layout)
    missing = [v for v in name.values() if v not in state_dict]
    if missing:
        stray = [k for k in state_dict if not PATTERNS[family.name].match(k)]
        raise ValueError(
            f"the state dict looks like the {layout} layout but lacks the keys that fix its shape: "
            f"{', '.join(missing)}" + (f"; keys that fit no {layout} key: {describe_keys(stray, state_dict)}" if stray else "")
        )
    patch = np.shape(state_dict[name["patch_embed.weight"]])
    pos = np.shape(state_dict[name["pos_embed"]])
    if len(patch) != 4 or patch[1] != 3 or patch[2] != patch[3]:
        raise ValueError(f"{name['patch_embed.weight']} must have shape (C, 3, P, P), got {patch}")
    width, patch_size = patch[0], patch[2]
    grid = math.isqrt(max(pos[-2] - 1, 0)) if len(pos) >= 2 else 0
    if len(pos) < 2 or grid < 1 or grid * grid + 1 != pos[-2]:
        raise ValueError(
            f"{name['pos_embed']} must hold a class-token row and a square grid, (h*h + 1, C), got {pos}; "
            "position embeddings without a class-token row (timm's no_embed_class) or for non-square images "
            "are not supported"
        )
    blocks = block_pattern(family)
    depth = 1 + max(int(m[1]) for m in map(blocks.match, state_dict) if m)

    def has(ours: str, part: str | None = None) -> bool:
        return (part is None or part not in family.lacks) and external_key(ours, layout) in state_dict

    def ours(key: str) -> tuple:  # our shape of `key`, from theirs
        return our_shape(key, [np.shape(state_dict[external_key(key, layout)])], family)

    inferred = dict(
        image_size=grid * patch_size, patch_size=patch_size, width=width, depth=depth,
        mlp_ratio=np.shape(state_dict[name["fc1"]])[0] / width,
        embed_dim=int(ours("proj.weight")[0]) if has("proj.weight", "proj") else None,
        num_classes=int(ours("head.weight")[0]) if has("head.weight", "head") else 0,
        ln_pre=has("ln_pre.weight", "ln_pre"), patch_bias=has("patch_embed.bias", "patch_bias"),
    )
    for field in SHAPE_FIELDS:
        if field in overrides and overrides[field] != inferred[field]:
            raise ValueError(
                f"{field}={overrides[field]!r} contradicts the state dict, whose shapes give {field}={inferred[field]!r}"
            )
    heads = overrides.get("heads", default_heads(width))
    if width % heads:
        raise ValueError(f"cannot split width {width} into {heads} heads; the shapes do not record heads, pass heads=")
    eps = entry.ln_eps_with_ln_pre if entry.ln_eps_with_ln_pre is not None and inferred["ln_pre"] else entry.ln_eps
    cfg = ModelConfig(**(inferred | {"heads": heads, "activation": entry.activation, "ln_eps": eps} | overrides))
    check_keys(state_dict, cfg, layout)
    return cfg


def check_keys(state_dict: dict, cfg: ModelConfig, layout: str) -> None:
    """Raise ValueError naming every missing, unexpected and mis-shaped key, by the layout's names."""
    problems = key_report({k: np.shape(v) for k, v in state_dict.items()}, external_shapes(cfg, layout), limit=12)
    if problems:
        raise ValueError(
            f"the state dict does not fit the {layout} layout of a ViT with width {cfg.width}, depth {cfg.depth}, "
            f"patch {cfg.patch_size}: " + " | ".join(problems)
        )


def check_layout_fits(cfg: ModelConfig, layout: str) -> None:
    """Raise ValueError if the layout cannot hold the model that `cfg` describes: a part its
    family lacks (a projection, a patch bias, a head), or a value its layout fixes."""
    entry = layout_of(layout)
    problems = []
    for part, why in entry.family.lacks.items():
        value = getattr(cfg, PARTS[part])
        if value not in (None, 0, False):
            problems.append(f"{why}, but {PARTS[part]}={value}")
    for field, (value, why, *hint) in entry.fixed.items():
        have = getattr(cfg, field)
        if have != value:
            problems.append(f"{why}, but {field}={have!r}" + (f" ({hint[0]})" if hint else ""))
    if problems:
        raise ValueError(f"cannot export to the {layout} layout: " + "; ".join(problems))
