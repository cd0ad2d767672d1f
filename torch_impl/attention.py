"""Mirror of ref/attention.py: multi-head self-attention inside one frame.

Two paths compute the same thing: ``explicit`` (scores, softmax, weighted sum, as in ref)
and ``sdpa``, the fused `F.scaled_dot_product_attention`, which is the default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

PATHS = ("sdpa", "explicit")


class Attention(nn.Module):
    """qkv (C -> 3C, bias), softmax(q k^T / sqrt(C/heads)) v per head, proj (C -> C, bias)."""

    def __init__(self, width: int, heads: int, path: str = "sdpa"):
        super().__init__()
        if path not in PATHS:
            raise ValueError(f"attention path must be one of {PATHS}, got {path!r}")
        self.heads, self.path = heads, path
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, size: torch.Tensor | None = None, return_metric: bool = False):
        """x: (..., n, C) -> (..., n, C); leading axes (b, t) never mix. As in ref, for ToMe
        (spec/00-method.md §14): `size` (..., n) adds log(size) to each key's logits, and
        return_metric=True also returns the keys averaged over heads, (..., n, C/heads)."""
        lead = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:])  # (B, n, C) with B = b*t
        qkv = self.qkv(x)  # (B, n, 3C)
        q, k, v = rearrange(qkv, "B n (three h e) -> three B h n e", three=3, h=self.heads)
        bias = None if size is None else size.log().reshape(-1, 1, 1, size.shape[-1]).to(q.dtype)  # (B, 1, 1, n)
        if self.path == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, h, n, e)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, n, n)
            scores = scores if bias is None else scores + bias
            work = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores  # half: float32
            out = torch.softmax(work, dim=-1).to(v.dtype) @ v
        out = self.proj(rearrange(out, "B h n e -> B n (h e)")).reshape(*lead, *x.shape[-2:])
        return (out, k.mean(dim=1).reshape(*lead, *k.shape[-2:])) if return_metric else out
