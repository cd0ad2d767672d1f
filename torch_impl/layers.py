"""Mirror of ref/layers.py: LayerNorm, the activations.

Half precision: LayerNorm normalizes in float32 and casts back, so its mean and variance
stay accurate in bfloat16 and float16 (as CLIP's LayerNorm subclass does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that reduces in float32 for half-precision inputs, then casts back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            weight = self.weight.float() if self.weight is not None else None
            bias = self.bias.float() if self.bias is not None else None
            return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)
        return super().forward(x)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact erf GELU, as ref.layers.gelu."""
    return F.gelu(x)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's x * sigmoid(1.702 x), as ref.layers.quick_gelu."""
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"gelu": gelu, "quick_gelu": quick_gelu}
