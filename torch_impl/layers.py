"""Mirror of ref/layers.py: LayerNorm, the activations.

Half precision: LayerNorm normalizes in float32 and casts back, so its mean and variance
stay accurate in bfloat16 and float16 (as CLIP's LayerNorm subclass does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


NORM_PATHS = ("explicit", "native")


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that reduces in float32 for half-precision inputs, then casts back.

    Two paths, which differ only for half-precision inputs; `path` picks one (a class default,
    set per module by `InTIModel.set_norm_path`):
    - "explicit" (default) writes the float32 round trip out, as CLIP's LayerNorm does: copy
      to float32, normalize, copy back;
    - "native" hands the half tensor to `F.layer_norm`, whose CPU and CUDA kernels accumulate
      the mean and variance in float32 themselves and round once at the end: one pass, no
      copies (bfloat16: 1 ulp apart from "explicit" on about 1 value in 40,000, measured).
    """

    path = "explicit"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            if self.path == "native":  # .to: CUDA autocast returns float32 from layer_norm
                return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)
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
