"""Φ, the inter-frame interpolation (spec/00-method.md §3.1-3.3, §6).

Weights, pairing, the merge, and the frame contributions.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange
from scipy.special import expit

from .config import ModelConfig
from .predictor import predict_scores


def pair(x: np.ndarray) -> np.ndarray:
    """Frames 2p and 2p+1 form pair p [ours: disjoint neighbouring pairs, spec/00-method.md §3.1].

    (b, t, ...) -> (b, t/2, 2, ...). t must be even.
    """
    return rearrange(x, "b (p two) ... -> b p two ...", two=2)


def merge_weights(scores: np.ndarray, weight_fn: str) -> np.ndarray:
    """Scores to weights a, same shape as scores: (b, t, N) or (b, t, N, C). §3.3.

    - softmax [paper]: over the two frames of each pair, max subtracted first, so the
      weights are in (0, 1) and sum to 1 within a pair.
    - sigmoid [ours, ablation]: a = sigmoid(s), each frame gated on its own.
    - mean [ours, ablation]: a = 1/2 everywhere, whatever the scores.
    """
    if weight_fn == "mean":
        return np.full_like(scores, 0.5)
    if weight_fn == "sigmoid":
        return expit(scores)
    pairs = pair(scores)  # (b, p, 2, ...)
    exp = np.exp(pairs - pairs.max(axis=2, keepdims=True))
    return rearrange(exp / exp.sum(axis=2, keepdims=True), "b p two ... -> b (p two) ...")


def interpolate(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """y[b, p, n] = a[b, 2p, n] x[b, 2p, n] + a[b, 2p+1, n] x[b, 2p+1, n]  (§3.2).

    x: (b, t, N, C); weights: (b, t, N) per token [ours], broadcast over C, or (b, t, N, C)
    per channel. Tokens are matched by index n, and the class token (n = 0) is merged like
    every other token [ours, spec/00-method.md §3.1]. Returns (b, t/2, N, C).
    """
    if weights.ndim == x.ndim - 1:
        weights = weights[..., None]
    return (pair(weights) * pair(x)).sum(axis=2)


def merge(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> tuple[np.ndarray, dict]:
    """Φ: (b, t, N, C) -> (b, t/2, N, C). Returns the merged tokens and what it decided:
    ``{"scores": s, "weights": a}``, each (b, t, N) or (b, t, N, C).

    The `mean` baseline is parameter-free [ours]: θ does not run and the scores are zeros."""
    if cfg.weight_fn == "mean":
        scores = np.zeros(
            x.shape if cfg.weight_granularity == "channel" else x.shape[:-1], dtype=x.dtype
        )
    else:
        scores = predict_scores(params, x, cfg=cfg)
    weights = merge_weights(scores, cfg.weight_fn)
    return interpolate(x, weights), {"scores": scores, "weights": weights}


def contributions(weights: list[np.ndarray]) -> np.ndarray:
    """§6 [ours]: how much input frame f, token n, reaches the output frame it ends in.

    weights: the weights of each merge in order, shapes (b, T0, N), (b, T0/2, N), ...
    or with a trailing C axis for channel granularity. Returns c of shape (b, T0, N) with
    c[f, n] = a1[f, n] * a2[f // 2, n] * ...; with softmax weights the 2^|S| frames of a
    group sum to 1 at every token. Channel contributions are averaged over C at the end,
    which keeps that sum.
    """
    if not weights:
        raise ValueError("contributions need the weights of at least one merge, got none")
    c = weights[0]
    for a in weights[1:]:
        c = c * np.repeat(a, c.shape[1] // a.shape[1], axis=1)  # frame f takes pair f // 2's weight
    return c.mean(axis=-1) if c.ndim == 4 else c
