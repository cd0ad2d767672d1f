"""Helpers for state dicts, whatever their layout: unwrapping a training script's nesting,
taking a whole CLIP model's image tower, arrays out of tensors, and the stored dtype.

NumPy only: a tensor goes through `torch_impl.to_numpy`, imported only when one is given.

    >>> import numpy as np
    >>> sd = unwrap_state_dict({"state_dict": {"module.w": np.zeros(2)}, "epoch": 3})
    >>> list(sd), stored_dtype(sd)
    (['w'], 'float64')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

VISUAL_PREFIX = "visual."
POSITION_KEYS = ("pos_embed", "visual.positional_embedding", "positional_embedding",  # inti, timm; CLIP
                 "vision_model.embeddings.position_embedding.weight", "embeddings.position_embedding.weight")  # HF


def as_array(value, name: str = "a parameter") -> np.ndarray:
    """A NumPy array of a parameter, keeping its dtype; a tensor goes through `torch_impl.to_numpy`
    (a bfloat16 tensor becomes float32, exactly). A tensor without data here (on the meta
    device) or not dense (sparse, quantized) is refused, naming `name`."""
    if not isinstance(value, np.ndarray) and type(value).__module__.startswith("torch"):
        from torch_impl.convert import to_numpy  # torch is loaded already: value is a tensor

        if getattr(value, "is_meta", False):
            raise ValueError(f"{name} is a tensor on the meta device, which holds no values (a model built under "
                             "torch.device('meta')?); load real weights first")
        if str(getattr(value, "layout", "torch.strided")) != "torch.strided" or getattr(value, "is_quantized", False):
            raise ValueError(f"{name} is a {'quantized' if value.is_quantized else str(value.layout).removeprefix('torch.')} "
                             "tensor; weights must be dense float tensors (convert it with .to_dense() or .dequantize())")
        value = to_numpy(value)
    return np.ascontiguousarray(np.asarray(value))


def unwrap_state_dict(obj) -> dict:
    """The flat {key: array} inside what a training script saved.

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
    names = [k for k in obj if not isinstance(k, str)]
    if names:
        raise TypeError(f"a state dict's keys are parameter names (strings), got {type(names[0]).__name__} {names[0]!r}"
                        + (f" and {len(names) - 1} more" if len(names) > 1 else ""))
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def select_visual(state_dict: dict) -> tuple[dict, str]:
    """(the image tower's entries, the prefix that was removed).

    A whole CLIP model keeps its image tower under ``visual.``; the text tower, its
    projection and ``logit_scale`` are not part of the image model and are left out."""
    if any(k.startswith(VISUAL_PREFIX) for k in state_dict):
        return {k[len(VISUAL_PREFIX):]: v for k, v in state_dict.items() if k.startswith(VISUAL_PREFIX)}, VISUAL_PREFIX
    return dict(state_dict), ""


def dtype_name(value) -> str:
    """"float32", "bfloat16", ...: a NumPy array's or a torch tensor's dtype, without "torch."."""
    return str(value.dtype).removeprefix("torch.")


def is_floating(value) -> bool:
    name = dtype_name(value)
    return name.startswith(("float", "bfloat"))


def stored_dtype(state_dict) -> str | None:
    """The dtype a state dict was stored in: its position embedding's (a whole CLIP model's text
    tower comes first in the file), else its first floating entry's; None if it has none."""
    state_dict = unwrap_state_dict(state_dict)
    keys = [k for k in POSITION_KEYS if k in state_dict]
    for key in keys + list(state_dict):
        value = state_dict[key]
        if hasattr(value, "dtype") and is_floating(value):
            return dtype_name(value)
    return None
