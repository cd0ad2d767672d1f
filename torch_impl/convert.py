"""ref parameter dicts <-> torch models. The dict's keys are the state_dict's keys."""

from __future__ import annotations

import numpy as np
import torch

from ref.config import ModelConfig
from ref.params import check_params

from .model import InTIModel


def from_ref_params(params: dict, cfg: ModelConfig, dtype: torch.dtype = torch.float64, **model_kwargs) -> InTIModel:
    """An `InTIModel` holding exactly `params` (checked against cfg first), in `dtype`.

    The model is built on the meta device, so no random init is drawn for weights about to
    be overwritten (seconds for a ViT-B), and cast before loading, so float64 stays exact."""
    check_params(params, cfg)
    with torch.device("meta"):
        model = InTIModel(cfg, **model_kwargs).to(dtype)
    model = model.to_empty(device="cpu")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in params.items()})
    return model


def to_ref_params(model: InTIModel) -> dict:
    """The model's parameters as a ref dict of float64 NumPy arrays."""
    return {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
