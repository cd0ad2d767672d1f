"""Pixels to tokens (§2, steps 1-2): patch embedding, class token, positions, ln_pre."""

from __future__ import annotations

import numpy as np
from einops import rearrange

from .config import ModelConfig
from .layers import layer_norm
from .temporal import add_temporal_embed


def patchify(video: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut every frame into P x P patches, row-major over the grid, each flattened as (3, P, P).

    video: (b, t, 3, H, W) -> (b, t, L, 3*P*P), L = (H/P) * (W/P).
    """
    return rearrange(video, "b t c (h p) (w q) -> b t (h w) (c p q)", p=patch_size, q=patch_size)


def patch_embed(params: dict, video: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """spec/00-method.md §2.1: patches @ W_patch, with W_patch stored in conv layout (C, 3, P, P).

    (b, t, 3, H, W) -> (b, t, L, C). No bias in CLIP; `patch_bias=True` adds timm's bias.
    """
    weight = rearrange(params["patch_embed.weight"], "c k p q -> c (k p q)")
    x = patchify(video, cfg.patch_size) @ weight.T
    if cfg.patch_bias:
        x = x + params["patch_embed.bias"]
    return x


def embed(params: dict, video: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """spec/00-method.md §2.1-2.2: patch embedding, prepend the class token, add positions, ln_pre.

    (b, t, 3, H, W) -> (b, t, N, C) with N = L + 1 and the class token at n = 0.
    `ln_pre` is skipped when cfg.ln_pre is False (timm's vit_* family has none). With AIM
    (spec/00-method.md §12.2), its temporal embedding is added after the positions and before
    ln_pre, as AIM's code does.
    """
    patches = patch_embed(params, video, cfg=cfg)  # (b, t, L, C)
    b, t, _, c = patches.shape
    cls = np.broadcast_to(params["cls_token"], (b, t, 1, c))
    x = np.concatenate([cls, patches], axis=2) + params["pos_embed"]  # (b, t, N, C)
    if cfg.temporal == "aim":
        x = add_temporal_embed(params, x)  # + row t of (T0, C) on frame t [AIM]
    if cfg.ln_pre:
        x = layer_norm(x, params["ln_pre.weight"], params["ln_pre.bias"], cfg.ln_eps)
    return x
