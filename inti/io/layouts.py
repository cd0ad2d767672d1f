"""Pretrained image ViTs -> InTI parameter dicts, and back (spec/07-pretrained-layouts.md).

Three checkpoint layouts hold the image ViT of spec/00-method.md §2 under other names:

- ``"timm"``: timm's ``VisionTransformer`` (``vit_*_patch*_*``, and ``vit_*_clip_*``, which add
  ``norm_pre``); exact GELU.
- ``"clip"``: OpenAI CLIP's visual tower (``conv1``, ``class_embedding``,
  ``transformer.resblocks.N.attn.in_proj_weight``, ``ln_post``, ``proj``), with or without
  the ``visual.`` prefix of a whole CLIP model; QuickGELU.
- ``"open_clip"``: the same keys, as open_clip writes them; open_clip's ViTs use exact GELU
  unless the model name ends in ``-quickgelu``.
- ``"hf"``: Hugging Face transformers' CLIP vision towers (``vision_model.embeddings.*``,
  ``encoder.layers.N.self_attn.{q,k,v}_proj``, ``visual_projection``); its key map, the
  stacking of q, k and v, and its config.json live in `inti.io.hf`.

Like CLIP's ``build_model``, the converter reads every hyperparameter that the tensor shapes
determine (patch size, width, depth, image size, MLP width, projection, head, ln_pre, patch
bias). Three cannot be read from shapes and come from the layout or from the caller:
``heads`` (``width // 64`` [ours], as CLIP's build_model), ``activation`` and ``ln_eps``.

Everything here is NumPy on mappings of arrays. Reading a checkpoint file is
`inti.io.checkpoints.load_checkpoint`'s job (it needs torch); `convert_state_dict` calls it
when it is given a path.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import numpy as np

from ref.config import ModelConfig
from ref.params import check_params, init_params, is_temporal_key, key_report, param_shapes, temporal_prefixes

from . import hf
from .params import as_array

LAYOUTS = ("timm", "clip", "open_clip", "hf")
# "clip" and "open_clip" share one key layout (the "clip" family); they differ only in defaults.
FAMILY = {"timm": "timm", "clip": "clip", "open_clip": "clip", "hf": "hf"}
# What the shapes cannot tell, per layout. timm: exact GELU; eps 1e-6 for vit_*, but 1e-5 for the
# vit_*_clip_* models, which are the ones with norm_pre (resolved in `infer_config`).
DEFAULT_ACTIVATION = {"timm": "gelu", "clip": "quick_gelu", "open_clip": "gelu", "hf": hf.DEFAULT_ACTIVATION}
DEFAULT_LN_EPS = {"timm": 1e-6, "clip": 1e-5, "open_clip": 1e-5, "hf": hf.DEFAULT_LN_EPS}
# Widths whose public models do not have 64-wide heads [ours]: ViT-H/14 (1280), ViT-g/14 (1408)
# and ViT-bigG/14 (1664) all use 16 heads, in timm and in open_clip alike.
KNOWN_HEADS = {1280: 16, 1408: 16, 1664: 16}
# Config fields that the shapes fix; an override may repeat them but not change them.
SHAPE_FIELDS = ("patch_size", "width", "depth", "mlp_ratio", "embed_dim", "num_classes", "ln_pre", "patch_bias")
VISUAL_PREFIX = "visual."

# ---- key maps: our key (spec/00-method.md §3.5) -> theirs. Keys not listed keep their name. -------------

_TIMM_TOP = {
    "patch_embed.weight": "patch_embed.proj.weight",
    "patch_embed.bias": "patch_embed.proj.bias",
    "ln_pre.weight": "norm_pre.weight",
    "ln_pre.bias": "norm_pre.bias",
    "ln_post.weight": "norm.weight",  # timm's final norm; per token, so on the class token it is ln_post
    "ln_post.bias": "norm.bias",
}
_CLIP_TOP = {
    "patch_embed.weight": "conv1.weight",
    "cls_token": "class_embedding",
    "pos_embed": "positional_embedding",
    "proj.weight": "proj",  # stored (C, E) and applied as x @ proj: ours is its transpose
}
_CLIP_BLOCK = {  # inside one block: ours -> theirs
    "norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
    "attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
    "attn.proj.weight": "attn.out_proj.weight", "attn.proj.bias": "attn.out_proj.bias",
    "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight", "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight", "mlp.fc2.bias": "mlp.c_proj.bias",
}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
# Tensors whose layout differs, not just their name: family -> our key -> how.
#   "lead": theirs has extra leading axes of size 1 (timm's (1, 1, C) class token, (1, N, C) positions)
#   "T": theirs is the transpose of ours (CLIP's proj, applied as x @ proj)
_RESHAPED = {"timm": {"cls_token": "lead", "pos_embed": "lead"}, "clip": {"proj.weight": "T"}}


def external_key(key: str, layout: str) -> str:
    """The name that `layout` gives our key: external_key("blocks.3.norm1.weight", "clip") ->
    "transformer.resblocks.3.ln_1.weight". Keys with no counterpart (merges.*, and the temporal
    modules of spec/00-method.md §12) raise KeyError."""
    family = _one_to_one(layout)
    if key.startswith("merges."):
        raise KeyError(f"{key!r} is InTI's predictor θ; the {layout} layout has no counterpart")
    if is_temporal_key(key):
        raise KeyError(f"{key!r} is a temporal module (spec/00-method.md §12); the {layout} layout of an image ViT has no counterpart")
    if family == "timm":
        return _TIMM_TOP.get(key, key)
    match = _BLOCK_KEY.match(key)
    if match:
        return f"transformer.resblocks.{match[1]}.{_CLIP_BLOCK[match[2]]}"
    return _CLIP_TOP.get(key, key)


def key_map(cfg: ModelConfig, layout: str) -> dict[str, str]:
    """Our key -> the layout's key, for every backbone parameter of `cfg` (spec/00-method.md §3.5 order).

    The predictor θ (``merges.*``) is InTI's own and has no counterpart in an image model, nor do
    the temporal modules (spec/00-method.md §12)."""
    return {k: external_key(k, layout) for k in param_shapes(cfg) if not (k.startswith("merges.") or is_temporal_key(k))}


def _one_to_one(layout: str) -> str:
    """The family of a layout whose keys map one to one onto ours (all but "hf")."""
    family = _family(layout)
    if family == "hf":
        raise ValueError("the hf layout stores each qkv as three keys (q_proj, k_proj, v_proj): "
                         "its key map is inti.io.hf.key_map, its shapes inti.io.hf.external_shapes")
    return family


def _their_shape(key: str, shape: tuple, family: str) -> tuple:
    how = _RESHAPED[family].get(key)
    if how == "lead":
        return (1,) * (3 - len(shape)) + shape
    if how == "T":
        return shape[::-1]
    return shape


def external_shapes(cfg: ModelConfig, layout: str) -> dict[str, tuple[int, ...]]:
    """The layout's key -> the shape it must have, for the image ViT that `cfg` describes."""
    if _family(layout) == "hf":
        return hf.external_shapes(cfg)
    family = _family(layout)
    shapes = param_shapes(cfg)
    return {theirs: _their_shape(ours, shapes[ours], family) for ours, theirs in key_map(cfg, layout).items()}


def _to_ours(key: str, value: np.ndarray, family: str) -> np.ndarray:
    how = _RESHAPED[family].get(key)
    if how == "lead":
        return value.reshape(value.shape[-2:] if key == "pos_embed" else value.shape[-1:])
    if how == "T":
        return value.T
    return value


def _to_theirs(key: str, value: np.ndarray, family: str) -> np.ndarray:
    how = _RESHAPED[family].get(key)
    if how == "lead":
        return value.reshape(_their_shape(key, value.shape, family))
    if how == "T":
        return np.ascontiguousarray(value.T)
    return value


def _family(layout: str) -> str:
    if layout not in FAMILY:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return FAMILY[layout]


# ---- reading state dicts ---------------------------------------------------------------------


def unwrap_state_dict(obj) -> dict:
    """The flat {key: array} inside a training checkpoint.

    Unwraps ``{"state_dict": ...}`` and ``{"model": ...}`` (any depth), and strips a
    ``module.`` prefix (DistributedDataParallel) that every key carries."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"a state dict must be a mapping from names to arrays, got {type(obj).__name__}")
    while True:
        nested = [k for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    obj = dict(obj)
    if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def select_visual(state_dict: dict) -> tuple[dict, str]:
    """(the image tower's entries, the prefix that was removed).

    A whole CLIP model keeps its image tower under ``visual.``; the text tower, its
    projection and ``logit_scale`` are not part of the image model and are left out."""
    if any(k.startswith(VISUAL_PREFIX) for k in state_dict):
        return {k[len(VISUAL_PREFIX):]: v for k, v in state_dict.items() if k.startswith(VISUAL_PREFIX)}, VISUAL_PREFIX
    return dict(state_dict), ""


def _pattern(family: str) -> re.Pattern:
    """Every key a layout can hold, block index generalised: one regular expression."""
    full = ModelConfig(
        image_size=32, patch_size=16, width=64, depth=1, heads=1, embed_dim=8 if family == "clip" else None,
        num_classes=2 if family == "timm" else 0, ln_pre=True, patch_bias=family == "timm",
    )
    keys = [re.escape(k).replace(r"blocks\.0\.", r"blocks\.\d+\.").replace(r"resblocks\.0\.", r"resblocks\.\d+\.")
            for k in key_map(full, family).values()]
    return re.compile("^(?:" + "|".join(keys) + ")$")


_PATTERNS = {"timm": _pattern("timm"), "clip": _pattern("clip")}


def _describe(keys, state_dict, limit=12) -> str:
    keys = list(keys)
    shown = ", ".join(f"{k} {tuple(np.shape(state_dict[k]))}" if k in state_dict else k for k in keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def detect_layout(state_dict: dict) -> str:
    """"timm", "clip" (the key family that OpenAI CLIP and open_clip share) or "hf" (transformers'
    CLIP vision towers, with or without ``vision_model.``), from the keys.

    The family whose key patterns fit the most keys wins; if none fits any key, ValueError
    lists the keys. `state_dict` has its ``visual.`` prefix removed already."""
    fits = {family: sum(bool(p.match(k)) for k in state_dict) for family, p in _PATTERNS.items()}
    fits["hf"] = hf.count_keys(state_dict)
    best = max(fits, key=fits.get)
    if fits[best] == 0:
        raise ValueError(
            "the state dict matches no known layout (timm: patch_embed.proj.weight, cls_token, pos_embed, "
            "blocks.N.*; OpenAI CLIP / open_clip: conv1.weight, class_embedding, positional_embedding, "
            f"transformer.resblocks.N.*, optionally under 'visual.'; Hugging Face: embeddings.patch_embedding.weight, "
            f"encoder.layers.N.*, optionally under 'vision_model.'). Keys that did not fit: "
            f"{_describe(sorted(state_dict), state_dict) if state_dict else '(the state dict is empty)'}"
        )
    return best


# ---- inferring the config ------------------------------------------------------------------


def default_heads(width: int) -> int:
    """Attention heads for a width, which no tensor shape records [ours]: ``width // 64``, as
    CLIP's build_model, except the widths in KNOWN_HEADS. Pass ``heads=`` to override."""
    return KNOWN_HEADS.get(width, max(width // 64, 1))


def infer_config(state_dict: dict, layout: str, **overrides) -> ModelConfig:
    """The ModelConfig of the image ViT in `state_dict` (already in `layout`'s family, prefix removed).

    Shapes give: patch_size and width (patch weight (C, 3, P, P)), image_size (positions: N = (H/P)^2 + 1),
    depth (the block indices), mlp_ratio (fc1), embed_dim (CLIP's proj), num_classes (timm's head),
    ln_pre and patch_bias (whether their keys exist). heads, activation and ln_eps come from
    `overrides` or the layout's defaults. Every key of the state dict must fit, every expected key
    must be there with its shape; otherwise one ValueError lists what is missing, unexpected or
    mis-shaped, by the layout's own key names."""
    family = _family(layout)
    if family == "hf":
        return hf.infer_config(hf.select_tower(state_dict), default_heads, **overrides)
    unknown = sorted(set(overrides) - set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown ModelConfig field(s) {unknown}; known: {sorted(ModelConfig.__dataclass_fields__)}")
    if "schedule" in overrides or "image_size" in overrides:
        raise TypeError("pass schedule= and image_size= as their own arguments, not as config overrides")
    name = {k: external_key(k, family) for k in ("patch_embed.weight", "pos_embed", "cls_token")}
    name["qkv"] = external_key("blocks.0.attn.qkv.weight", family)
    name["fc1"] = external_key("blocks.0.mlp.fc1.weight", family)
    missing = [v for v in name.values() if v not in state_dict]
    if missing:
        stray = [k for k in state_dict if not _PATTERNS[family].match(k)]
        raise ValueError(
            f"the state dict looks like the {layout} layout but lacks the keys that fix its shape: "
            f"{', '.join(missing)}" + (f"; keys that fit no {layout} key: {_describe(stray, state_dict)}" if stray else "")
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
    block_key = re.compile(r"^blocks\.(\d+)\." if family == "timm" else r"^transformer\.resblocks\.(\d+)\.")
    depth = 1 + max(int(m[1]) for m in map(block_key.match, state_dict) if m)

    def has(ours: str) -> bool:
        return external_key(ours, family) in state_dict

    inferred = dict(
        image_size=grid * patch_size, patch_size=patch_size, width=width, depth=depth,
        mlp_ratio=np.shape(state_dict[name["fc1"]])[0] / width,
        embed_dim=int(np.shape(state_dict["proj"])[-1]) if family == "clip" and has("proj.weight") else None,
        num_classes=int(np.shape(state_dict["head.weight"])[0]) if family == "timm" and has("head.weight") else 0,
        ln_pre=has("ln_pre.weight"), patch_bias=family == "timm" and has("patch_embed.bias"),
    )
    for field in SHAPE_FIELDS:
        if field in overrides and overrides[field] != inferred[field]:
            raise ValueError(
                f"{field}={overrides[field]!r} contradicts the checkpoint, whose shapes give {field}={inferred[field]!r}"
            )
    heads = overrides.get("heads", default_heads(width))
    if width % heads:
        raise ValueError(f"cannot split width {width} into {heads} heads; the shapes do not record heads, pass heads=")
    eps = DEFAULT_LN_EPS[layout]
    if layout == "timm" and inferred["ln_pre"]:
        eps = 1e-5  # timm's vit_*_clip_* models: norm_pre and CLIP's eps
    cfg = ModelConfig(**(inferred | {"heads": heads, "activation": DEFAULT_ACTIVATION[layout], "ln_eps": eps} | overrides))
    _check_keys(state_dict, cfg, layout)
    return cfg


def _check_keys(state_dict: dict, cfg: ModelConfig, layout: str) -> None:
    """Raise ValueError naming every missing, unexpected and mis-shaped key, by the layout's names."""
    problems = key_report({k: np.shape(v) for k, v in state_dict.items()}, external_shapes(cfg, layout), limit=12)
    if problems:
        raise ValueError(
            f"the state dict does not fit the {layout} layout of a ViT with width {cfg.width}, depth {cfg.depth}, "
            f"patch {cfg.patch_size}: " + " | ".join(problems)
        )


# ---- position embeddings at another image size ---------------------------------------------


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel W(x) with parameter a (torch: a = -0.75; antialias: -0.5)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1  # |x| <= 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # 1 < |x| < 2
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(in_size: int, out_size: int, antialias: bool = False) -> np.ndarray:
    """The (out_size, in_size) matrix M of 1-D bicubic resampling, exactly as torch's
    ``F.interpolate(mode="bicubic", align_corners=False)`` computes it: y = M @ x.

    Without antialias: output i samples the input at s = (i + 1/2) * in/out - 1/2 with the
    four taps floor(s)-1 ... floor(s)+2, kernel a = -0.75, indices clamped to the edge.
    With antialias (torch's and PIL's filter): the kernel (a = -0.5) is stretched by in/out when
    shrinking, truncated at the edges, and each row renormalised to sum 1."""
    scale = in_size / out_size
    out = np.arange(out_size)[:, None]  # (out, 1)
    if not antialias:
        src = scale * (out + 0.5) - 0.5
        first = np.floor(src).astype(int)
        m = np.zeros((out_size, in_size))
        for tap in range(-1, 3):  # four taps; edge indices repeat, so accumulate
            np.add.at(m, (np.broadcast_to(out, first.shape), np.clip(first + tap, 0, in_size - 1)),
                      _cubic(first + tap - src, -0.75))
        return m
    support, stretch = (2.0 * scale, 1.0 / scale) if scale >= 1 else (2.0, 1.0)
    centre = scale * (out + 0.5)
    lo = np.maximum(np.trunc(centre - support + 0.5), 0)  # torch truncates toward zero, as int64_t(...)
    hi = np.minimum(np.trunc(centre + support + 0.5), in_size)
    j = np.arange(in_size)[None, :]  # (1, in)
    m = np.where((j >= lo) & (j < hi), _cubic((j - centre + 0.5) * stretch, -0.5), 0.0)
    return m / m.sum(axis=1, keepdims=True)


def resample_pos_embed(pos: np.ndarray, old_grid: int, new_grid: int, antialias: bool = False) -> np.ndarray:
    """Position embeddings for another patch grid: (old_grid^2 + 1, C) -> (new_grid^2 + 1, C).

    The class token's row is kept; the grid rows, laid out (h w) row-major, are resampled
    bicubically along h and along w (separable, `bicubic_matrix`), as torch's F.interpolate
    and timm's resample_abs_pos_embed do. Computed in float64, returned in pos's dtype. At the
    native size (new_grid == old_grid) the matrix is the identity and pos comes back unchanged."""
    pos = np.asarray(pos)
    if pos.ndim != 2 or pos.shape[0] != old_grid**2 + 1:
        raise ValueError(f"pos must have shape (old_grid^2 + 1, C) = ({old_grid**2 + 1}, C), got {pos.shape}")
    if new_grid == old_grid:
        return pos.copy()
    m = bicubic_matrix(old_grid, new_grid, antialias)  # (new, old)
    grid = pos[1:].astype(np.float64).reshape(old_grid, old_grid, -1)  # (h, w, C)
    grid = np.einsum("ih,jw,hwc->ijc", m, m, grid).reshape(new_grid**2, -1)  # (h' w', C)
    return np.concatenate([pos[:1], grid.astype(pos.dtype)], axis=0)


# ---- the predictor θ, new in every converted model -------------------------------------------


def init_predictor(cfg: ModelConfig, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Fresh ``merges.*`` parameters for `cfg`, by ref.params.init_params' rule: the score
    layer is zero [ours, spec/00-method.md §3.4], so a converted model merges each pair by its plain mean
    until it is trained. Nothing is drawn for the backbone, whose values come from the checkpoint."""
    return init_params(cfg, seed, dtype, prefix="merges.")


def init_new_parts(cfg: ModelConfig, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Everything an image checkpoint does not hold, drawn fresh by ref.params.init_params' rule:
    the predictors ``merges.*`` (the very values of `init_predictor`) and the temporal modules of
    spec/00-method.md §12 (from their own seeded stream), whose zero-init
    parts (§12.4) make the converted model, before training, exactly InTI on the image model."""
    return init_params(cfg, seed, dtype, prefix=("merges.", *temporal_prefixes(cfg)))


# ---- the two directions -----------------------------------------------------------------------


def convert_state_dict(state_dict, schedule=(), image_size: int | None = None, *, layout: str | None = None,
                       antialias: bool = True, seed: int = 0, **overrides) -> tuple[dict, ModelConfig]:
    """A pretrained image ViT -> (InTI parameter dict, ModelConfig).

    state_dict: a mapping of arrays (torch tensors work too) in the timm, OpenAI CLIP, open_clip
    or Hugging Face layout, the path of a checkpoint file (`inti.io.checkpoints.load_checkpoint`),
    or a Hugging Face model folder (its model.safetensors, and its config.json's heads,
    activation and eps, `inti.io.hf.read_folder`). Nested
    ``state_dict``/``model`` entries, a ``module.`` prefix and CLIP's ``visual.`` prefix are
    handled; the text tower of a whole CLIP model is left out.
    layout: None detects the key family; a CLIP-family state dict is then read as "clip"
    (OpenAI: QuickGELU). open_clip ViTs with exact GELU need ``layout="open_clip"``.
    image_size: None keeps the checkpoint's; another multiple of the patch size resamples the
    position grid bicubically (`resample_pos_embed`; antialias=True by default [ours], as
    timm's and open_clip's own loaders do).
    schedule: where InTI merges (spec/00-method.md §3). Its predictors are new, and so are the
    temporal modules that `overrides` may ask for: `init_new_parts(cfg, seed)`.
    overrides: ModelConfig fields the shapes cannot tell (heads, activation, ln_eps), the
    predictor's options (reduction, branches, weight_fn, weight_granularity) and the temporal
    modules' (temporal, temporal_width, temporal_blocks, ..., spec/00-method.md §12).

    The backbone arrays keep their dtype (views where the layout allows); the predictor's
    take the dtype of the position embedding."""
    if isinstance(state_dict, (str, os.PathLike)):
        from .checkpoints import load_checkpoint  # needs torch: checkpoints are torch's formats

        if os.path.isdir(state_dict):  # a Hugging Face model folder
            state_dict, hints = hf.read_folder(state_dict, load_checkpoint)
            overrides = hints | overrides
        else:
            state_dict = load_checkpoint(state_dict)
    sd = {k: as_array(v) for k, v in unwrap_state_dict(state_dict).items()}
    sd, _ = select_visual(sd)
    family = detect_layout(sd)
    if layout is None:
        layout = "clip" if family == "clip" else family
    if _family(layout) != family:
        names = {"timm": "timm", "clip": "OpenAI CLIP / open_clip", "hf": "Hugging Face"}
        raise ValueError(
            f"layout={layout!r} was asked for, but the keys are in the {family} layout "
            f"({names[family]}); pass layout=None to detect it"
        )
    if family == "hf":
        sd = hf.select_tower(sd)
        native = hf.infer_config(sd, default_heads, **overrides)
        params = hf.to_ours(sd, native)
    else:
        native = infer_config(sd, layout, **overrides)
        params = {ours: _to_ours(ours, sd[theirs], family) for ours, theirs in key_map(native, layout).items()}
    cfg = native.replace(schedule=tuple(schedule))
    if image_size is not None and image_size != native.image_size:
        cfg = cfg.replace(image_size=image_size)  # validated: a multiple of the patch size
        params["pos_embed"] = resample_pos_embed(params["pos_embed"], native.grid, cfg.grid, antialias=antialias)
    params |= init_new_parts(cfg, seed, dtype=params["pos_embed"].dtype)
    check_params(params, cfg)
    return params, cfg


def check_exportable(cfg: ModelConfig, layout: str) -> None:
    """Raise ValueError if the layout cannot hold the model that `cfg` describes."""
    family = _family(layout)
    if family == "hf":
        return hf.check_exportable(cfg)
    problems = []
    if family == "timm" and cfg.embed_dim is not None:
        problems.append(f"timm's ViT has no projection, but embed_dim={cfg.embed_dim}")
    if family == "clip":
        if cfg.patch_bias:
            problems.append("CLIP's conv1 has no bias, but patch_bias=True")
        if cfg.num_classes:
            problems.append(f"CLIP's image tower has no classifier head, but num_classes={cfg.num_classes}")
        if cfg.ln_eps != 1e-5:
            problems.append(f"CLIP's LayerNorms use eps 1e-5, but ln_eps={cfg.ln_eps}")
    if layout == "clip" and cfg.activation != "quick_gelu":
        problems.append(f"OpenAI CLIP uses QuickGELU, but activation={cfg.activation!r} (use layout='open_clip')")
    if problems:
        raise ValueError(f"cannot export to the {layout} layout: " + "; ".join(problems))


def export_state_dict(params: dict, cfg: ModelConfig, layout: str, *, prefix: str = "") -> dict[str, np.ndarray]:
    """An InTI parameter dict -> the image ViT's state dict in `layout`, keys prefixed by `prefix`
    (``"visual."`` for a whole CLIP model's layout; for "hf", ``"vision_model."`` prefixes the
    tower's keys, as CLIPVisionModelWithProjection, CLIPModel and the Hub's files hold them, and
    ``visual_projection.weight`` stays beside it).

    The inverse of `convert_state_dict`: converting and exporting gives back the same arrays.
    The predictor θ (``merges.*``) and the temporal modules (spec/00-method.md §12) have no place
    in an image model and are left out. Raises
    ValueError when the layout cannot hold the model (`check_exportable`)."""
    check_params(params, cfg)
    check_exportable(cfg, layout)
    family = _family(layout)
    if family == "hf":
        return hf.from_ours(params, cfg, prefix)
    return {prefix + theirs: _to_theirs(ours, np.asarray(params[ours]), family) for ours, theirs in key_map(cfg, layout).items()}
