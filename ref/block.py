"""The MLP and the pre-norm residual block (spec/00-method.md §2.3)."""

from __future__ import annotations

import numpy as np

from .attention import attention
from .config import ModelConfig
from .layers import ACTIVATIONS, layer_norm, linear
from .params import scope


def mlp(params: dict, x: np.ndarray, *, activation: str) -> np.ndarray:
    """C -> 4C -> C with biases: fc2(act(fc1(x))). x: (..., C) -> (..., C)."""
    hidden = ACTIVATIONS[activation](linear(x, params["fc1.weight"], params["fc1.bias"]))
    return linear(hidden, params["fc2.weight"], params["fc2.bias"])


def block(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). x: (b, t, N, C) -> (b, t, N, C).

    `params` holds one block's keys without the ``blocks.{i}.`` prefix.
    """
    x = x + attention(
        scope(params, "attn."),
        layer_norm(x, params["norm1.weight"], params["norm1.bias"], cfg.ln_eps),
        heads=cfg.heads,
    )
    x = x + mlp(
        scope(params, "mlp."),
        layer_norm(x, params["norm2.weight"], params["norm2.bias"], cfg.ln_eps),
        activation=cfg.activation,
    )
    return x
