"""ref parameter dicts <-> torch models, and tensors <-> NumPy arrays.

The dict's keys are the state_dict's keys (spec/00-method.md §3.5). `to_numpy` is the project's one
conversion from a tensor to an array: every tool that reads a tensor into NumPy calls it.
"""

from __future__ import annotations

import numpy as np
import torch

from ref.config import ModelConfig
from ref.params import check_params

from .checks import torch_dtype
from .model import InTIModel


def to_numpy(x, dtype=None) -> np.ndarray:
    """A NumPy array of a tensor (detached, on the CPU) or of anything np.asarray takes.

    NumPy has no bfloat16, so a bfloat16 tensor becomes float32 (exactly: every bfloat16 is a
    float32). dtype: cast to it (e.g. np.float64 to compare against the spec); None keeps it."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x, dtype=dtype)


def from_ref_params(
    params: dict, cfg: ModelConfig, dtype: torch.dtype = torch.float64, build=InTIModel, **model_kwargs
) -> InTIModel:
    """An `InTIModel` holding exactly `params` (checked against cfg first), in `dtype`.

    The model is built on the meta device, so no random init is drawn for weights about to
    be overwritten (seconds for a ViT-B), and cast before loading, so float64 stays exact.
    dtype: a floating torch.dtype or its name ("float32"). build: the model class, called as
    ``build(cfg, **model_kwargs)``; another class with InTIModel's state_dict keys (ToMeModel)."""
    check_params(params, cfg)
    if isinstance(dtype, str):
        dtype = torch_dtype(dtype)  # "float32" -> torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype or its name, such as torch.float32, got {dtype!r}")
    with torch.device("meta"):
        model = build(cfg, **model_kwargs).to(dtype)
    model = model.to_empty(device="cpu")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in params.items()})
    return model


def to_ref_params(model: InTIModel) -> dict:
    """The model's parameters as a ref dict of float64 NumPy arrays."""
    return {k: to_numpy(v, np.float64) for k, v in model.state_dict().items()}
