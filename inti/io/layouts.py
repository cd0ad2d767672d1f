"""Pretrained image ViTs -> InTI parameter dicts, and back (spec/07-pretrained-layouts.md).

The two directions, NumPy on mappings of arrays (torch tensors work too):

- `convert_state_dict`: a timm, OpenAI CLIP, open_clip or Hugging Face state dict -> (InTI
  parameters, config);
- `to_layout`: InTI parameters -> the image ViT's state dict in a layout (its inverse).

What they stand on, one module each: the key maps, one entry per layout (`inti.io.keymaps`);
a Hugging Face model folder's config.json (`inti.io.hf`);
the config read off the shapes (`inti.io.layout_config`); the position grid resampled for
another image size (`inti.io.pos_embed`); unwrapping a script's nesting (`inti.io.state_dicts`).
Reading a file is `inti.io.weights.load`'s job (it needs torch for .pt files); given a path,
`convert_state_dict` reads it with `inti.io.state_dict_files.read_state_dict`.

The names that lived here before that split (``infer_config``, ``resample_pos_embed``,
``unwrap_state_dict``, ...) are still importable from this module for one release; the
numpy export is now `to_layout` (``export_state_dict`` is the torch model's, in
`inti.io.pretrained`), and the layout check `check_layout_fits` (``check_exportable`` is the
ONNX exporter's, in `inti.export`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ref.config import ModelConfig
from ref.params import check_params, init_params, temporal_prefixes

from . import hf, keymaps
from .keymaps import (
    DEFAULT_ACTIVATION, DEFAULT_LN_EPS, FAMILY, LAYOUTS, detect_layout, external_key, external_shapes, key_groups, key_map,
)
from .layout_config import check_layout_fits, default_heads, infer_config
from .pos_embed import bicubic_matrix, resample_pos_embed
from .state_dicts import VISUAL_PREFIX, as_array, select_visual, unwrap_state_dict

__all__ = ["convert_state_dict", "to_layout", "check_layout_fits", "init_predictor", "init_new_parts",
           "LAYOUTS", "FAMILY", "DEFAULT_ACTIVATION", "DEFAULT_LN_EPS", "VISUAL_PREFIX", "detect_layout", "external_key",
           "external_shapes", "key_map", "key_groups", "infer_config", "default_heads", "bicubic_matrix", "resample_pos_embed",
           "unwrap_state_dict", "select_visual"]


# ---- the predictor θ and the temporal modules, new in every converted model --------------------


def init_predictor(cfg: ModelConfig, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Fresh ``merges.*`` parameters for `cfg`, by ref.params.init_params' rule: the score
    layer is zero [ours, spec/00-method.md §3.4], so a converted model merges each pair by its plain mean
    until it is trained. Nothing is drawn for the backbone, whose values come from the state dict."""
    return init_params(cfg, seed, dtype, prefix="merges.")


def init_new_parts(cfg: ModelConfig, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """Everything an image model's state dict does not hold, drawn fresh by ref.params.init_params' rule:
    the predictors ``merges.*`` (the very values of `init_predictor`) and the temporal modules of
    spec/00-method.md §12 (from their own seeded stream), whose zero-init
    parts (§12.4) make the converted model, before training, exactly InTI on the image model."""
    return init_params(cfg, seed, dtype, prefix=("merges.", *temporal_prefixes(cfg)))


# ---- the two directions -----------------------------------------------------------------------


def convert_state_dict(state_dict, schedule=(), image_size: int | None = None, *, layout: str | None = None,
                       antialias: bool = True, seed: int = 0, **overrides) -> tuple[dict, ModelConfig]:
    """A pretrained image ViT -> (InTI parameter dict, ModelConfig).

    state_dict: a mapping of arrays (torch tensors work too) in the timm, OpenAI CLIP, open_clip
    or Hugging Face layout, the path of another library's weights file
    (`inti.io.state_dict_files.read_state_dict`), or a Hugging Face model folder (its weights,
    and the heads, activation and eps of its config.json: `inti.io.hf.read_folder`). Nested
    ``state_dict``/``model`` entries, a ``module.`` prefix, CLIP's ``visual.`` and HF's
    ``vision_model.`` prefixes are handled; the text tower of a whole CLIP model is left out.
    layout: None detects the key family; a CLIP-family state dict is then read as "clip"
    (OpenAI: QuickGELU). open_clip ViTs with exact GELU need ``layout="open_clip"``.
    image_size: None keeps the state dict's; another multiple of the patch size resamples the
    position grid bicubically (`resample_pos_embed`; antialias=True by default [ours], as
    timm's and open_clip's own loaders do).
    schedule: where InTI merges (spec/00-method.md §3). Its predictors are new, and so are the
    temporal modules that `overrides` may ask for: `init_new_parts(cfg, seed)`.
    overrides: ModelConfig fields the shapes cannot tell (heads, activation, ln_eps), the
    predictor's options (reduction, branches, weight_fn, weight_granularity) and the temporal
    modules' (temporal, temporal_width, temporal_blocks, ..., spec/00-method.md §12).

    The backbone arrays keep their dtype (views where the layout allows); the predictor's
    take the dtype of the position embedding."""
    if isinstance(state_dict, (str, os.PathLike)) and os.path.isdir(state_dict):
        state_dict, told = hf.read_folder(state_dict)
        overrides = told | overrides
    elif isinstance(state_dict, (str, os.PathLike)):
        from .state_dict_files import read_state_dict  # torch's formats need torch: imported only for a path

        state_dict = read_state_dict(state_dict)
    schedule = schedule_tuple(schedule)
    sd = {k: as_array(v, k) for k, v in unwrap_state_dict(state_dict).items()}
    sd, _ = select_visual(sd)
    family = detect_layout(sd)
    if layout is None:
        layout = keymaps.default_layout(family)
    entry = keymaps.layout_of(layout)
    if entry.family.name != family:
        raise ValueError(
            f"layout={layout!r} was asked for, but the keys are in the {family} layout "
            f"({keymaps.FAMILIES[family].description}); pass layout=None to detect it"
        )
    sd = keymaps.select_tower(sd, entry.family)
    native = infer_config(sd, layout, **overrides)
    params = {ours: keymaps.to_ours(ours, [sd[t] for t in theirs], entry.family)
              for ours, theirs in key_groups(native, layout).items()}
    cfg = native.replace(schedule=tuple(schedule))
    if image_size is not None and image_size != native.image_size:
        cfg = cfg.replace(image_size=image_size)  # validated: a multiple of the patch size
        params["pos_embed"] = resample_pos_embed(params["pos_embed"], native.grid, cfg.grid, antialias=antialias)
    params |= init_new_parts(cfg, seed, dtype=params["pos_embed"].dtype)
    check_params(params, cfg)
    return params, cfg


def schedule_tuple(schedule) -> tuple:
    """A schedule as the API takes it, a tuple or list of block indices ((6,), (8, 20), () for no
    merges), as a tuple; TypeError for anything else (a bare 6, a string)."""
    if not isinstance(schedule, (tuple, list)):
        raise TypeError(f"schedule must be a tuple of block indices counted from 1, such as (6,) or (8, 20), or () for "
                        f"no merges; got {type(schedule).__name__} {schedule!r}")
    return tuple(schedule)


def to_layout(params: dict, cfg: ModelConfig, layout: str, *, prefix: str = "") -> dict[str, np.ndarray]:
    """An InTI parameter dict -> the image ViT's state dict in `layout`, keys prefixed by `prefix`
    (``"visual."`` for a whole CLIP model's layout; ``"vision_model."`` for the "hf" layout of
    CLIPVisionModelWithProjection, CLIPModel and the Hub's files, whose ``visual_projection``
    stays beside the prefix).

    The inverse of `convert_state_dict`: converting and writing back gives the same arrays.
    The predictor θ (``merges.*``) and the temporal modules (spec/00-method.md §12) have no place
    in an image model and are left out. Raises ValueError when the layout cannot hold the
    model (`check_layout_fits`)."""
    check_params(params, cfg)
    check_layout_fits(cfg, layout)
    family = keymaps.family_of(layout)
    out = {}
    for ours, theirs in key_groups(cfg, layout).items():
        values = keymaps.to_theirs(ours, np.asarray(params[ours]), family, len(theirs))
        out |= {keymaps.with_prefix(name, prefix, family): value for name, value in zip(theirs, values)}
    return out


# ---- the names of before, for one release -------------------------------------------------------

_RENAMED = {"export_state_dict": to_layout, "check_exportable": check_layout_fits}


def __getattr__(name: str):
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(f"inti.io.layouts.{name} is now inti.io.layouts.{new.__name__}; the old name goes in the next "
                      "release", DeprecationWarning, stacklevel=2)
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
