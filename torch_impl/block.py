"""Mirror of ref/block.py: the MLP and the pre-norm residual block."""

from __future__ import annotations

import torch
from torch import nn

from ref.config import ModelConfig

from .attention import Attention
from .layers import ACTIVATIONS, LayerNorm


class Mlp(nn.Module):
    """fc2(act(fc1(x))), C -> hidden -> C with biases."""

    def __init__(self, width: int, hidden: int, activation: str):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). (b, t, N, C) -> (b, t, N, C)."""

    def __init__(self, cfg: ModelConfig, attn_path: str = "sdpa"):
        super().__init__()
        self.norm1 = LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.attn = Attention(cfg.width, cfg.heads, attn_path)
        self.norm2 = LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.mlp = Mlp(cfg.width, cfg.mlp_width, cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
