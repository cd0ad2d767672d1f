"""Multi-head self-attention inside one frame (spec/00-method.md §2.3)."""

from __future__ import annotations

import math

import numpy as np
from einops import rearrange
from scipy.special import softmax

from .layers import linear


def attention(
    params: dict,
    x: np.ndarray,
    *,
    heads: int,
    size: np.ndarray | None = None,
    return_metric: bool = False,
):
    """Attn(x) = proj(softmax(q k^T / sqrt(C/heads)) v), heads concatenated.

    params: `qkv.weight` (3C, C), `qkv.bias` (3C,), `proj.weight` (C, C), `proj.bias` (C,);
    the qkv rows are ordered q, k, v, and the heads are contiguous inside each.
    x: (..., n, C) -> (..., n, C). Every leading axis (b, t) is independent, so tokens
    attend only within their own frame.

    Two options serve ToMe (spec/00-method.md §14) [ToMe]: `size` (..., n), the tokens each
    key stands for, adds log(size) to every logit of that key (proportional attention; None is
    size 1, which adds nothing); return_metric=True also returns the keys averaged over the
    heads, (..., n, C/heads), ToMe's similarity metric.
    """
    qkv = linear(x, params["qkv.weight"], params["qkv.bias"])  # (..., n, 3C)
    q, k, v = rearrange(
        qkv, "... n (three h e) -> three ... h n e", three=3, h=heads
    )  # (..., h, n, e)
    scale = 1.0 / math.sqrt(q.shape[-1])  # a Python float keeps float32 inputs float32
    scores = q @ np.swapaxes(k, -1, -2) * scale  # (..., h, n, n)
    if size is not None:
        scores = scores + np.log(size)[..., None, None, :]  # every query, every head
    probs = softmax(scores, axis=-1)  # scipy subtracts the max: stable
    out = rearrange(probs @ v, "... h n e -> ... n (h e)")  # (..., n, C)
    out = linear(out, params["proj.weight"], params["proj.bias"])
    return (out, k.mean(axis=-3)) if return_metric else out
