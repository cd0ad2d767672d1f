"""θ, the multi-scale weight predictor (§3.4): reduce, four context branches, fuse, score.

The paper says "multi-scale context-aware network" with four lightweight networks; the
structure written here is [ours] (spec/00-method.md §3.4). `params` holds one merge's keys without
the ``merges.{j}.`` prefix.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange
from numpy.lib.stride_tricks import sliding_window_view

from .config import ModelConfig
from .layers import gelu, layer_norm, linear


def reduce_tokens(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """Step 1: z = LN_θ(X) @ W_r + b_r. (b, t, N, C) -> (b, t, N, d), d = C / r."""
    return linear(
        layer_norm(x, params["norm.weight"], params["norm.bias"], cfg.ln_eps),
        params["reduce.weight"],
        params["reduce.bias"],
    )


def token_branch(params: dict, z: np.ndarray) -> np.ndarray:
    """Scale of one token: z @ W_tok. (b, t, N, d) -> (b, t, N, d)."""
    return linear(z, params["token.weight"])


def local_branch(params: dict, z: np.ndarray, *, grid: int) -> np.ndarray:
    """Scale of a 3x3x3 neighbourhood: depthwise conv3d over (t, h, w) of the patch tokens.

    Cross-correlation as in torch, kernel 3x3x3, zero padding 1, stride 1, with a bias
    [ours]. The class token gets zeros from this branch. (b, t, N, d) -> (b, t, N, d).
    """
    patches = rearrange(z[:, :, 1:], "b t (h w) d -> b t h w d", h=grid)
    padded = np.pad(patches, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))  # zeros around t, h, w
    windows = sliding_window_view(padded, (3, 3, 3), axis=(1, 2, 3))  # (b, t, h, w, d, 3, 3, 3)
    kernel = params["local.weight"][:, 0]  # (d, 3, 3, 3): one filter per channel (depthwise)
    out = np.einsum("bthwdijk,dijk->bthwd", windows, kernel) + params["local.bias"]
    out = rearrange(out, "b t h w d -> b t (h w) d")
    return np.concatenate([np.zeros_like(z[:, :, :1]), out], axis=2)  # class token: zeros


def frame_branch(params: dict, z: np.ndarray) -> np.ndarray:
    """Scale of one frame: mean over the frame's N tokens (class token included), @ W_frm,
    broadcast to its N tokens. (b, t, N, d) -> (b, t, N, d)."""
    context = linear(z.mean(axis=2, keepdims=True), params["frame.weight"])  # (b, t, 1, d)
    return np.broadcast_to(context, z.shape)


def clip_branch(params: dict, z: np.ndarray) -> np.ndarray:
    """Scale of the whole clip: mean over all T*N tokens, @ W_clip, broadcast to every token.
    (b, t, N, d) -> (b, t, N, d)."""
    context = linear(z.mean(axis=(1, 2), keepdims=True), params["clip.weight"])  # (b, 1, 1, d)
    return np.broadcast_to(context, z.shape)


def predict_scores(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """θ(X): scores s of shape (b, t, N) for token granularity, (b, t, N, C) for channel.

    f = GELU(sum of the switched-on branches) (exact erf GELU), s = f @ w_s + b_s.
    """
    z = reduce_tokens(params, x, cfg=cfg)  # (b, t, N, d)
    branches = {
        "token": lambda: token_branch(params, z),
        "local": lambda: local_branch(params, z, grid=cfg.grid),
        "frame": lambda: frame_branch(params, z),
        "clip": lambda: clip_branch(params, z),
    }
    fused = gelu(
        sum(branches[name]() for name in cfg.branches) if cfg.branches else np.zeros_like(z)
    )
    scores = linear(fused, params["score.weight"], params["score.bias"])  # (b, t, N, 1 or C)
    return scores[..., 0] if cfg.weight_granularity == "token" else scores
