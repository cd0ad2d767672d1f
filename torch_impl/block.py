"""Mirror of ref/block.py: the MLP and the pre-norm residual block, and the blocks that carry a
temporal module (spec/00-method.md §12): `STAdapterBlock` and `AIMBlock`. `make_block` picks one.

One training-only switch, which ref does not need (spec/00-method.md §13) and which adds no
parameter: `DropPath` on each residual branch (stochastic depth, the identity in evaluation and
at rate 0), set by `InTIModel.set_drop_path`. (Activation checkpointing is the model's
`block_step`.)
"""

from __future__ import annotations

import torch
from torch import nn

from ref.config import ModelConfig

from .attention import Attention
from .layers import ACTIVATIONS, LayerNorm
from .temporal import Bottleneck, STAdapter, temporal_attention


class Mlp(nn.Module):
    """fc2(act(fc1(x))), C -> hidden -> C with biases."""

    def __init__(self, width: int, hidden: int, activation: str):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth [timm's DropPath]: in training, the branch's update is zeroed for a whole
    clip with probability p and scaled by 1 / (1 - p) otherwise; the identity in evaluation.
    (b, ...) -> (b, ...), one draw per clip."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class Block(nn.Module):
    """x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). (b, t, N, C) -> (b, t, N, C)."""

    def __init__(self, cfg: ModelConfig, attn_path: str = "sdpa"):
        super().__init__()
        self.norm1 = LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.attn = Attention(cfg.width, cfg.heads, attn_path)
        self.norm2 = LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.mlp = Mlp(cfg.width, cfg.mlp_width, cfg.activation)
        self.drop_path = DropPath(0.0)  # training only; no parameters (spec/00-method.md §13)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class STAdapterBlock(Block):
    """The block with ST-Adapters (§12.1) before attention and/or the MLP; a placement that is
    not chosen is nn.Identity(). Keys ``temporal.attn.*``, ``temporal.mlp.*``."""

    def __init__(self, cfg: ModelConfig, attn_path: str = "sdpa"):
        super().__init__(cfg, attn_path)
        self.temporal = nn.ModuleDict(
            {p: STAdapter(cfg) if p in cfg.temporal_placement else nn.Identity() for p in ("attn", "mlp")}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.temporal["attn"](x)  # the adapter's own update is never dropped [ours]
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = self.temporal["mlp"](x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class AIMBlock(Block):
    """AIM's block (§12.2): temporal attention with the T-Adapter, spatial attention with the
    S-Adapter (with its skip), MLP plus s * MLP-Adapter. Keys ``temporal.{t,s,mlp}_adapter.*``."""

    def __init__(self, cfg: ModelConfig, attn_path: str = "sdpa"):
        super().__init__(cfg, attn_path)
        self.temporal = nn.ModuleDict({name: Bottleneck(cfg) for name in ("t_adapter", "s_adapter", "mlp_adapter")})
        self.scale = cfg.temporal_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(temporal_attention(self, x))  # frames mix here
        y = self.attn(self.norm1(x))
        x = x + self.drop_path(y + self.temporal["s_adapter"](y))
        h = self.norm2(x)
        return x + self.drop_path(self.mlp(h) + self.scale * self.temporal["mlp_adapter"](h))


def make_block(cfg: ModelConfig, index: int, attn_path: str = "sdpa") -> Block:
    """Block `index` (counted from 1): with cfg's temporal module if index is in cfg.module_blocks."""
    if index not in cfg.module_blocks:
        return Block(cfg, attn_path)
    return {"st_adapter": STAdapterBlock, "aim": AIMBlock}[cfg.temporal](cfg, attn_path)
