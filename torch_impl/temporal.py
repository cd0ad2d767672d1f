"""Mirror of ref/temporal.py: the temporal modules of spec/00-method.md §12 as nn.Modules.

`STAdapter` (§12.1) is ST-Adapter's module: fc1, a depthwise `nn.Conv3d` with kernel (3, 1, 1)
on the (t, h, w) grid of the patch tokens, fc2. `Bottleneck` is AIM's adapter without its skip
(§12.2); the blocks that use them are in block.py. `TemporalEmbedding` holds AIM's (T0, C)
embedding. Each starts at the init rule of §12.4, so an untrained module adds exactly nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ref.config import ModelConfig


class STAdapter(nn.Module):
    """x_p + fc2(conv_t(fc1(x_p))) on the patch tokens; the class token passes [ST-Adapter].
    (b, t, N, C) -> (b, t, N, C); zeros beyond the clip's ends at every stage [ours]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C, Ca = cfg.width, cfg.adapter_width
        self.grid = cfg.grid
        self.fc1 = nn.Linear(C, Ca)
        self.conv = nn.Conv3d(Ca, Ca, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=Ca)
        self.fc2 = nn.Linear(Ca, C)
        for zero in (self.conv.weight, self.conv.bias, self.fc1.bias, self.fc2.bias):
            nn.init.zeros_(zero)  # [ST-Adapter]: the module starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls, patches = x[:, :, :1], x[:, :, 1:]  # (b, t, 1, C), (b, t, L, C)
        z = rearrange(self.fc1(patches), "b t (h w) c -> b c t h w", h=self.grid)  # conv layout
        u = rearrange(self.conv(z), "b c t h w -> b t (h w) c")  # (b, t, L, C_a)
        return torch.cat([cls, patches + self.fc2(u)], dim=2)


class Bottleneck(nn.Module):
    """AIM's adapter without its skip: fc2(GELU(fc1(x))), exact GELU [AIM]. (..., C) -> (..., C).
    fc2 and fc1's bias start at zero [AIM], so it starts by returning zeros."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.width, cfg.adapter_width)
        self.fc2 = nn.Linear(cfg.adapter_width, cfg.width)
        for zero in (self.fc1.bias, self.fc2.weight, self.fc2.bias):
            nn.init.zeros_(zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def temporal_attention(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """AIM's temporal branch: T_Adapter(Attn(LN1(x over time))) with the block's own LN1 and
    attention, over the t frames at each token position [AIM]. (b, t, N, C) -> the update."""
    yt = block.attn(block.norm1(rearrange(x, "b t n c -> b n t c")))  # (b, N, t, C)
    return rearrange(block.temporal["t_adapter"](yt), "b n t c -> b t n c")


class TemporalEmbedding(nn.Module):
    """AIM's temporal embedding (T0, C), zeros at init [AIM]: row t added to every token of
    frame t. (b, T0, N, C) -> (b, T0, N, C)."""

    def __init__(self, frames: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(frames, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight.to(x.dtype)[:, None, :]
