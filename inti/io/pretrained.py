"""Pretrained timm, OpenAI CLIP, open_clip and Hugging Face CLIP ViTs as InTI models, and back.

One line each (spec/07-pretrained-layouts.md has the key maps)::

    model = from_timm(timm.create_model("vit_base_patch16_224", pretrained=True), schedule=(3,))
    model = from_clip("ViT-B-16.pt", schedule=(3,))                        # OpenAI CLIP file
    model = from_clip(open_clip_model, schedule=(3,))                      # open_clip model
    model = from_hf("clip-vit-base-patch16/", schedule=(3,))               # a Hugging Face folder
    model = from_checkpoint("model.safetensors", schedule=(3,), image_size=160)

The key mapping, the config inferred from the shapes, the position-grid resampling and the
new predictors all come from `inti.io.layouts` (NumPy), so the spec and the torch model read a
checkpoint the same way; files are read by `inti.io.checkpoints.load_checkpoint`. A model object tells more than its state dict: its heads, activation and LayerNorm
eps are read from its modules; a state dict or a file gets the layout's defaults, which
keyword overrides (``heads=``, ``activation=``, ``ln_eps=``) replace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from torch_impl import InTIModel, from_ref_params, to_numpy

from . import hf
from .checkpoints import load_checkpoint
from .layouts import FAMILY, LAYOUTS, convert_state_dict, key_map, unwrap_state_dict
from .layouts import export_state_dict as _export_arrays

__all__ = ["from_timm", "from_clip", "from_hf", "from_checkpoint", "export_state_dict"]


# ---- what a model object tells beyond its shapes ----------------------------------------------


def _activation_name(module: nn.Module) -> str:
    if type(module).__name__ == "QuickGELU":  # timm's, open_clip's and OpenAI's class share the name
        return "quick_gelu"
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return "gelu"
    raise ValueError(f"the MLP's activation {module!r} is not supported; InTI has exact GELU and QuickGELU")


def _timm_hints(model: nn.Module) -> dict:
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


def _clip_hints(visual: nn.Module) -> dict:
    if getattr(visual, "pool_type", "tok") != "tok":
        raise ValueError(
            f"this open_clip ViT pools with pool_type={visual.pool_type!r}; InTI reads the class token (spec/00-method.md §2.4)"
        )
    block = visual.transformer.resblocks[0]
    return {"heads": block.attn.num_heads, "activation": _activation_name(block.mlp.gelu), "ln_eps": block.ln_1.eps}


def _hf_hints(model: nn.Module) -> dict:
    """heads, activation and eps of a transformers CLIP model, from its config."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise TypeError(f"{type(model).__name__} is not a transformers CLIP model (it has no config)")
    hints = hf.hints_from_config(config.to_dict(), f"{type(model).__name__}.config")
    return {k: hints[k] for k in ("heads", "activation", "ln_eps")}


def _source(obj, family: str):
    """(state dict of tensors or arrays, hints from a module or a folder's config.json) for a
    module, a mapping, a file or a Hugging Face folder."""
    if isinstance(obj, (str, os.PathLike)):
        if os.path.isdir(obj):
            return hf.read_folder(obj, load_checkpoint)
        return load_checkpoint(obj), {}
    if isinstance(obj, nn.Module):
        if family == "hf":
            return obj.state_dict(), _hf_hints(obj)
        if family == "timm":
            return obj.state_dict(), _timm_hints(obj)
        visual = _clip_visual(obj)
        return visual.state_dict(), _clip_hints(visual)
    if isinstance(obj, Mapping):
        return obj, {}
    raise TypeError(f"expected a model, a state dict or a checkpoint path, got {type(obj).__name__}")


def _dtype_of(state_dict) -> torch.dtype:
    """The checkpoint's dtype: its position embedding's (a whole CLIP model's text tower comes first)."""
    state_dict = unwrap_state_dict(state_dict)
    keys = [k for k in ("pos_embed", "visual.positional_embedding", "positional_embedding",
                        hf.PREFIX + hf.POSITIONS, hf.POSITIONS) if k in state_dict]
    for key in keys + list(state_dict):
        value = state_dict[key]
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if value.is_floating_point():
            return value.dtype
    return torch.get_default_dtype()


def _build(state_dict, hints: dict, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides):
    params, cfg = convert_state_dict(
        state_dict, schedule, image_size, layout=layout, antialias=antialias, seed=seed, **(hints | overrides)
    )
    dtype = dtype if dtype is not None else _dtype_of(state_dict)
    return from_ref_params(params, cfg, dtype, attn_path=attn_path, frames=frames)


def from_timm(model_or_state_dict_or_path, schedule=(), image_size: int | None = None, *, dtype: torch.dtype | None = None,
              antialias: bool = True, seed: int = 0, attn_path: str = "sdpa", frames: int | None = None,
              **overrides) -> InTIModel:
    """An InTI model from a timm ViT (``vit_*_patch*_*``, ``vit_*_clip_*``): a timm model, its
    state dict, or a checkpoint file.

    schedule: where to merge (spec/00-method.md §3); the predictors are new, with a zero score layer, so
    the model first merges each pair by its plain mean. With ``schedule=()`` the model is the
    naive adaptation: on one frame it returns what timm returns (logits, or pre-logits when the
    timm model has no head); on T frames, the mean of timm's per-frame outputs.
    image_size: resample the position grid for another frame size (bicubic, antialias=True as
    timm's loader). dtype: the model's; by default the checkpoint's. overrides: heads,
    activation, ln_eps (for a state dict: exact GELU, eps 1e-6, or 1e-5 when it has norm_pre;
    ``*_clip_quickgelu_*`` state dicts need ``activation="quick_gelu"``), and predictor options."""
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
    state_dict, hints = _source(model_or_state_dict_or_path, "clip")
    if layout is None:
        layout = "open_clip" if hints.get("activation") == "gelu" else "clip"
    return _build(state_dict, hints, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def from_hf(model_or_state_dict_or_path, schedule=(), image_size: int | None = None, *, dtype: torch.dtype | None = None,
            antialias: bool = True, seed: int = 0, attn_path: str = "sdpa", frames: int | None = None,
            **overrides) -> InTIModel:
    """An InTI model from a Hugging Face transformers CLIP image tower: a ``CLIPVisionModel``,
    ``CLIPVisionModelWithProjection`` or ``CLIPModel`` (its ``vision_model`` and
    ``visual_projection``), its state dict, a ``model.safetensors`` file, or a model folder holding
    one with its ``config.json``.

    A model object or a folder tells the heads, activation (``hidden_act``) and LayerNorm eps; a
    bare state dict or file gets transformers' CLIPVisionConfig defaults (QuickGELU, eps 1e-5)
    and ``width // 64`` heads, which keyword overrides replace. With ``schedule=()`` the model is
    the naive adaptation: on one frame it returns the tower's ``pooler_output`` (CLIPVisionModel)
    or ``image_embeds`` (with the projection); on T frames, their mean. Other arguments as in
    `from_timm`."""
    state_dict, hints = _source(model_or_state_dict_or_path, "hf")
    return _build(state_dict, hints, "hf", schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def from_checkpoint(path_or_state_dict, schedule=(), layout: str | None = None, image_size: int | None = None, *,
                    dtype: torch.dtype | None = None, antialias: bool = True, seed: int = 0, attn_path: str = "sdpa",
                    frames: int | None = None, **overrides) -> InTIModel:
    """An InTI model from a checkpoint file, a Hugging Face model folder or a state dict in any
    known layout, detected from its keys (a CLIP-family one is read as "clip" unless
    ``layout="open_clip"``). Other arguments as in `from_timm`. For a model object, use
    `from_timm`, `from_clip` or `from_hf`, which read its modules."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
    if isinstance(path_or_state_dict, nn.Module):
        raise TypeError("from_checkpoint takes a file or a state dict; for a model use from_timm, from_clip or from_hf")
    state_dict, hints = _source(path_or_state_dict, "any")
    return _build(state_dict, hints, layout, schedule, image_size, dtype, antialias, seed, attn_path, frames, overrides)


def export_state_dict(model: InTIModel, layout: str, *, prefix: str = "") -> dict[str, torch.Tensor]:
    """The image ViT inside an InTI model as a state dict in `layout` ("timm", "clip",
    "open_clip" or "hf"), on the model's device and in its dtype, ready for that library's
    ``load_state_dict`` (with ``prefix="visual."`` for a whole CLIP model's ``visual`` part,
    loaded with strict=False; for "hf", ``prefix="vision_model."`` for
    CLIPVisionModelWithProjection). The predictors θ are left out; see
    inti.io.layouts.export_state_dict."""
    if not isinstance(model, InTIModel):
        raise TypeError(f"expected an InTIModel, got {type(model).__name__}")
    state = model.state_dict()
    arrays = {k: to_numpy(v) for k, v in state.items()}
    exported = _export_arrays(arrays, model.cfg, layout, prefix=prefix)
    device, dtype = model.pos_embed.device, model.pos_embed.dtype
    if FAMILY.get(layout) == "hf":  # q, k and v come from one qkv: every tensor has the model's dtype
        return {k: torch.from_numpy(v.copy()).to(device=device, dtype=dtype) for k, v in exported.items()}
    dtypes = {prefix + theirs: state[ours].dtype for ours, theirs in key_map(model.cfg, layout).items()}
    return {k: torch.from_numpy(v.copy()).to(device=device, dtype=dtypes[k]) for k, v in exported.items()}
