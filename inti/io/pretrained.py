"""Pretrained timm, OpenAI CLIP, open_clip and Hugging Face CLIP ViTs as InTI models, and back.

One line each (spec/07-pretrained-layouts.md has the key maps)::

    model = from_timm(timm.create_model("vit_base_patch16_224", pretrained=True), schedule=(3,))
    model = from_clip("ViT-B-16.pt", schedule=(3,))                        # OpenAI CLIP file
    model = from_clip(open_clip_model, schedule=(3,))                      # open_clip model
    model = from_hf("clip-vit-base-patch16/", schedule=(3,))               # a Hugging Face folder
    model = from_weights("model.safetensors", schedule=(3,), image_size=160)
    model = from_weights("run/best.safetensors")                          # inti's own weights

The key mapping, the config inferred from the shapes, the position-grid resampling and the
new predictors all come from `inti.io.layouts` (NumPy), so the spec and the torch model read a
pretrained model the same way; every file is read by the one front door, `inti.io.weights.load`.
A model object tells more than its state dict: its heads, activation and LayerNorm eps are
read from its modules (`timm_hints`, `clip_hints`) or its config (`hf_hints`), a Hugging Face
model folder's from its config.json (`inti.io.hf`); a state dict or a file gets the layout's
defaults, which keyword overrides (``heads=``, ``activation=``, ``ln_eps=``) replace.

``from_checkpoint`` is the old name of `from_weights`, kept for one release.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from torch_impl import InTIModel, from_ref_params, to_numpy

from . import hf, weights
from .keymaps import FAMILY, LAYOUTS, family_of, key_groups, with_prefix
from .layouts import convert_state_dict, to_layout
from .state_dicts import stored_dtype

__all__ = ["from_timm", "from_clip", "from_hf", "from_weights", "export_state_dict", "timm_hints", "clip_hints",
           "hf_hints"]


# ---- what a model object tells beyond its shapes ----------------------------------------------


def _activation_name(module: nn.Module) -> str:
    if type(module).__name__ == "QuickGELU":  # timm's, open_clip's and OpenAI's class share the name
        return "quick_gelu"
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return "gelu"
    raise ValueError(f"the MLP's activation {module!r} is not supported; InTI has exact GELU and QuickGELU")


def timm_hints(model: nn.Module) -> dict:
    """heads, activation and eps of a timm VisionTransformer; refuse what the layout cannot say."""
    if getattr(model, "global_pool", "token") != "token":
        raise ValueError(
            f"this timm model pools with global_pool={model.global_pool!r}; InTI reads the class token "
            "(spec/00-method.md §2.4), so only global_pool='token' converts exactly"
        )
    if getattr(model, "no_embed_class", False) or getattr(model, "num_prefix_tokens", 1) != 1:
        raise ValueError("InTI needs exactly one class token with its own position embedding "
                         "(timm's no_embed_class, register tokens and class_token=False are not supported)")
    block = model.blocks[0]
    return {"heads": block.attn.num_heads, "activation": _activation_name(block.mlp.act), "ln_eps": block.norm1.eps}


def _clip_visual(model: nn.Module) -> nn.Module:
    visual = getattr(model, "visual", model)  # a whole CLIP model, or its image tower
    if not hasattr(visual, "transformer") or not hasattr(visual, "conv1"):
        raise TypeError(f"{type(model).__name__} is not a CLIP / open_clip ViT (no conv1 and transformer)")
    return visual


def clip_hints(visual: nn.Module) -> dict:
    """heads, activation and eps of an open_clip or OpenAI CLIP image tower; refuse what the layout cannot say."""
    if getattr(visual, "pool_type", "tok") != "tok":
        raise ValueError(
            f"this open_clip ViT pools with pool_type={visual.pool_type!r}; InTI reads the class token (spec/00-method.md §2.4)"
        )
    block = visual.transformer.resblocks[0]
    return {"heads": block.attn.num_heads, "activation": _activation_name(block.mlp.gelu), "ln_eps": block.ln_1.eps}


def hf_hints(model: nn.Module) -> dict:
    """heads, activation and eps of a transformers CLIP model (CLIPVisionModel,
    CLIPVisionModelWithProjection, CLIPModel), from its config."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise TypeError(f"{type(model).__name__} is not a transformers CLIP model (it has no config)")
    hints = hf.hints_from_config(config.to_dict(), f"{type(model).__name__}.config")
    return {k: hints[k] for k in hf.UNTOLD}


def _source(obj, family: str):
    """(state dict of tensors or arrays, hints from a module) for a module or a mapping."""
    if isinstance(obj, nn.Module):
        if family == "hf":
            return obj.state_dict(), hf_hints(obj)
        if family == "timm":
            return obj.state_dict(), timm_hints(obj)
        visual = _clip_visual(obj)
        return visual.state_dict(), clip_hints(visual)
    if isinstance(obj, Mapping):
        return obj, {}
    raise TypeError(f"expected a model, a state dict or the path of a weights file, got {type(obj).__name__}")


def _torch_dtype(name: str | None) -> torch.dtype:
    """The torch dtype of a stored dtype's name; the default dtype where none was stored."""
    return getattr(torch, name) if name else torch.get_default_dtype()


def _build(state_dict, hints: dict, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides):
    params, cfg = convert_state_dict(
        state_dict, schedule, image_size, layout=layout, antialias=antialias, seed=seed, **(hints | overrides)
    )
    dtype = dtype if dtype is not None else _torch_dtype(stored_dtype(state_dict))
    return from_ref_params(params, cfg, dtype, attn_path=attn_path, frames=frames)


def _from_file(path, accept, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides):
    """A model from a weights file, read by the front door (`inti.io.weights.load`)."""
    loaded = weights.load(path, accept=accept, layout=layout, schedule=schedule, image_size=image_size,
                          antialias=antialias, seed=seed, **overrides)
    dtype = dtype if dtype is not None else _torch_dtype(loaded.dtype)
    return from_ref_params(loaded.params, loaded.cfg, dtype, attn_path=attn_path, frames=frames)


def _is_path(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def from_timm(model_or_state_dict_or_path, schedule=(), image_size: int | None = None, *, dtype: torch.dtype | None = None,
              antialias: bool = True, seed: int = 0, attn_path: str = "sdpa", frames: int | None = None,
              **overrides) -> InTIModel:
    """An InTI model from a timm ViT (``vit_*_patch*_*``, ``vit_*_clip_*``): a timm model, its
    state dict, or a weights file holding it.

    schedule: where to merge (spec/00-method.md §3); the predictors are new, with a zero score layer, so
    the model first merges each pair by its plain mean. With ``schedule=()`` the model is the
    naive adaptation: on one frame it returns what timm returns (logits, or pre-logits when the
    timm model has no head); on T frames, the mean of timm's per-frame outputs.
    image_size: resample the position grid for another frame size (bicubic, antialias=True as
    timm's loader). dtype: the model's; by default the weights'. overrides: heads,
    activation, ln_eps (for a state dict: exact GELU, eps 1e-6, or 1e-5 when it has norm_pre;
    ``*_clip_quickgelu_*`` state dicts need ``activation="quick_gelu"``), and predictor options.
    An inti parameter file or training checkpoint is refused with a hint: `from_weights` reads it."""
    if _is_path(model_or_state_dict_or_path):
        return _from_file(model_or_state_dict_or_path, weights.OTHERS, "timm", schedule, image_size, dtype, antialias,
                          seed, attn_path, frames, overrides)
    state_dict, hints = _source(model_or_state_dict_or_path, "timm")
    return _build(state_dict, hints, "timm", schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def from_clip(model_or_state_dict_or_path, schedule=(), layout: str | None = None, image_size: int | None = None, *,
              dtype: torch.dtype | None = None, antialias: bool = True, seed: int = 0, attn_path: str = "sdpa",
              frames: int | None = None, **overrides) -> InTIModel:
    """An InTI model from CLIP's image tower: an open_clip or OpenAI CLIP model (whole or
    ``.visual``), a state dict with or without the ``visual.`` prefix, or a file (OpenAI's
    TorchScript ``.pt`` included).

    layout: "clip" (OpenAI: QuickGELU) or "open_clip" (exact GELU, as open_clip's ViTs without
    ``-quickgelu``). None: a model object tells its own activation; a state dict or file is read
    as "clip". Other arguments as in `from_timm`; the output is the image embedding (after proj)."""
    if layout is not None and FAMILY.get(layout) != "clip":
        raise ValueError(f"from_clip takes layout 'clip', 'open_clip' or None, got {layout!r}; timm models: from_timm")
    if _is_path(model_or_state_dict_or_path):
        return _from_file(model_or_state_dict_or_path, weights.OTHERS, layout or "clip", schedule, image_size, dtype,
                          antialias, seed, attn_path, frames, overrides)
    state_dict, hints = _source(model_or_state_dict_or_path, "clip")
    if layout is None:
        layout = "open_clip" if hints.get("activation") == "gelu" else "clip"
    return _build(state_dict, hints, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def from_hf(model_or_state_dict_or_path, schedule=(), image_size: int | None = None, *, dtype: torch.dtype | None = None,
            antialias: bool = True, seed: int = 0, attn_path: str = "sdpa", frames: int | None = None,
            **overrides) -> InTIModel:
    """An InTI model from a Hugging Face transformers CLIP image tower: a ``CLIPVisionModel``,
    ``CLIPVisionModelWithProjection`` or ``CLIPModel`` (its ``vision_model`` and
    ``visual_projection``), its state dict, a ``model.safetensors`` file, or a model folder
    holding one with its ``config.json`` (the "hf" layout; `from_weights` reads the same files
    and folders, with the layout detected).

    A model object or a folder tells the heads, activation (``hidden_act``) and LayerNorm eps; a
    bare state dict or file gets transformers' CLIPVisionConfig defaults (QuickGELU, eps 1e-5)
    and ``width // 64`` heads, which keyword overrides replace. With ``schedule=()`` the model is
    the naive adaptation: on one frame it returns the tower's ``pooler_output`` (CLIPVisionModel)
    or ``image_embeds`` (with the projection); on T frames, their mean. Other arguments as in
    `from_timm`."""
    if _is_path(model_or_state_dict_or_path):
        return _from_file(model_or_state_dict_or_path, weights.OTHERS, "hf", schedule, image_size, dtype, antialias,
                          seed, attn_path, frames, overrides)
    state_dict, hints = _source(model_or_state_dict_or_path, "hf")
    return _build(state_dict, hints, "hf", schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def from_weights(path_or_state_dict, schedule=None, layout: str | None = None, image_size: int | None = None, *,
                 dtype: torch.dtype | None = None, antialias: bool = True, seed: int = 0, attn_path: str = "sdpa",
                 frames: int | None = None, **overrides) -> InTIModel:
    """An InTI model from any weights file (`inti.io.weights.load`: an inti parameter file or
    training checkpoint, another library's state dict in any known layout, a TorchScript archive,
    or a Hugging Face model folder) or a state dict.

    A state dict's layout is detected from its keys (a CLIP-family one is read as "clip" unless
    ``layout="open_clip"``), and ``schedule=None`` means no merges. inti's own files keep their
    stored config and trained θ: schedule None keeps their schedule, and the conversion options
    (layout, image_size, overrides) are refused. dtype: by default the file's. Other arguments
    as in `from_timm`. For a model object, use `from_timm`, `from_clip` or `from_hf`, which read
    its modules."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
    if isinstance(path_or_state_dict, nn.Module):
        raise TypeError("from_weights takes a file, a folder or a state dict; for a model use from_timm, from_clip "
                        "or from_hf")
    if _is_path(path_or_state_dict):
        return _from_file(path_or_state_dict, weights.ALL, layout, schedule, image_size, dtype, antialias, seed,
                          attn_path, frames, overrides)
    state_dict, _ = _source(path_or_state_dict, "any")
    return _build(state_dict, {}, layout, () if schedule is None else schedule, image_size, dtype, antialias, seed,
                  attn_path, frames, overrides)


def export_state_dict(model: InTIModel, layout: str, *, prefix: str = "") -> dict[str, torch.Tensor]:
    """The image ViT inside an InTI model as a state dict in `layout` ("timm", "clip",
    "open_clip" or "hf"), on the model's device and in its dtype, ready for that library's
    ``load_state_dict`` (with ``prefix="visual."`` for a whole CLIP model's ``visual`` part,
    loaded with strict=False; for "hf", ``prefix="vision_model."`` for
    CLIPVisionModelWithProjection and the Hub's files). The predictors θ are left out; the
    NumPy version is `inti.io.layouts.to_layout`."""
    if not isinstance(model, InTIModel):
        raise TypeError(f"expected an InTIModel, got {type(model).__name__}")
    state = model.state_dict()
    arrays = {k: to_numpy(v) for k, v in state.items()}
    exported = to_layout(arrays, model.cfg, layout, prefix=prefix)
    family = family_of(layout)
    dtypes = {with_prefix(name, prefix, family): state[ours].dtype
              for ours, theirs in key_groups(model.cfg, layout).items() for name in theirs}
    device = model.pos_embed.device
    return {k: torch.from_numpy(v.copy()).to(device=device, dtype=dtypes[k]) for k, v in exported.items()}


def __getattr__(name: str):
    if name == "from_checkpoint":  # the old name, for one release: "checkpoint" now means a training checkpoint
        warnings.warn("inti.io.pretrained.from_checkpoint is now from_weights (it reads every kind of weights "
                      "file); the old name goes in the next release", DeprecationWarning, stacklevel=2)
        return from_weights
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
