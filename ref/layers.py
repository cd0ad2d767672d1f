"""Elementwise and linear building blocks: LayerNorm, the activations, a linear map.

Shapes use `...` for any leading axes; the last axis is the feature axis.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis (§2): (x - mean) / sqrt(var + eps) * weight + bias.

    x: (..., C); weight, bias: (C,). The variance is the biased one, as in torch.
    """
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, exact erf form: x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)). timm's MLP and θ's fuse."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def quick_gelu(x: np.ndarray) -> np.ndarray:
    """CLIP's approximation: x * sigmoid(1.702 x)."""
    return x * expit(1.702 * x)


ACTIVATIONS = {"gelu": gelu, "quick_gelu": quick_gelu}


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x @ W.T + b, with W stored (out, in) as in nn.Linear. x: (..., in) -> (..., out)."""
    y = x @ weight.T
    return y if bias is None else y + bias
