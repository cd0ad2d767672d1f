"""ref parameter dicts <-> torch models. The dict's keys are the state_dict's keys."""

from __future__ import annotations

import numpy as np
import torch

from ref.config import ModelConfig
from ref.params import check_params

from .model import InTIModel


def from_ref_params(params: dict, cfg: ModelConfig, dtype: torch.dtype = torch.float64, **model_kwargs) -> InTIModel:
    """An `InTIModel` holding exactly `params` (checked against cfg first), in `dtype`."""
    check_params(params, cfg)
    model = InTIModel(cfg, **model_kwargs).to(dtype)  # cast first, so that float64 values stay exact
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in params.items()})
    return model


def to_ref_params(model: InTIModel) -> dict:
    """The model's parameters as a ref dict of float64 NumPy arrays."""
    return {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
