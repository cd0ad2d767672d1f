"""Mirror of ref/predictor.py: θ, the multi-scale weight predictor (structure [ours], spec/00-method.md §3.4).

One `Predictor` per merge; its children are the ``merges.{j}.*`` keys of spec/00-method.md §3.5. The
local branch is a depthwise `conv3d` over (t, h, w); nothing loops over frames or tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ref.config import ModelConfig

from .layers import LayerNorm


class Predictor(nn.Module):
    """θ: (b, t, N, C) -> scores (b, t, N), or (b, t, N, C) for channel granularity."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C, d = cfg.width, cfg.predictor_width
        self.cfg = cfg
        if cfg.weight_fn == "mean":  # the parameter-free baseline [ours]: no θ at all
            return
        self.norm = LayerNorm(C, eps=cfg.ln_eps)
        self.reduce = nn.Linear(C, d)
        if "token" in cfg.branches:
            self.token = nn.Linear(d, d, bias=False)
        if "local" in cfg.branches:
            self.local = nn.Conv3d(d, d, kernel_size=3, padding=1, groups=d)
        if "frame" in cfg.branches:
            self.frame = nn.Linear(d, d, bias=False)
        if "clip" in cfg.branches:
            self.clip = nn.Linear(d, d, bias=False)
        self.score = nn.Linear(d, C if cfg.weight_granularity == "channel" else 1)
        nn.init.zeros_(self.score.weight)  # [ours, spec/00-method.md §3.4]: an untrained merge averages
        nn.init.zeros_(self.score.bias)

    def reduce_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """z = LN_θ(X) @ W_r + b_r: (b, t, N, C) -> (b, t, N, d)."""
        return self.reduce(self.norm(x))

    def token_branch(self, z: torch.Tensor) -> torch.Tensor:
        return self.token(z)

    def local_branch(self, z: torch.Tensor) -> torch.Tensor:
        """Depthwise 3x3x3 conv3d over (t, h, w) of the patch tokens; class token gets zeros."""
        grid = self.cfg.grid
        patches = rearrange(z[:, :, 1:], "b t (h w) d -> b d t h w", h=grid)
        out = rearrange(self.local(patches), "b d t h w -> b t (h w) d")
        return F.pad(out, (0, 0, 1, 0))  # a zero row in front for the class token

    def frame_branch(self, z: torch.Tensor) -> torch.Tensor:
        return self.frame(z.mean(dim=2, keepdim=True)).expand_as(z)

    def clip_branch(self, z: torch.Tensor) -> torch.Tensor:
        return self.clip(z.mean(dim=(1, 2), keepdim=True)).expand_as(z)

    def predict_scores(self, x: torch.Tensor) -> torch.Tensor:
        """f = GELU(sum of the branches) (exact erf), s = f @ w_s + b_s."""
        z = self.reduce_tokens(x)  # (b, t, N, d)
        fused = torch.zeros_like(z)
        for name in self.cfg.branches:
            fused = fused + getattr(self, f"{name}_branch")(z)
        scores = self.score(F.gelu(fused))  # (b, t, N, 1 or C)
        return scores[..., 0] if self.cfg.weight_granularity == "token" else scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_scores(x)
