"""Mirror of ref/interpolation.py: weights, pairing, the merge Φ, contributions.

The merge works on the whole batch at once: pairing is a reshape, the weighted sum one
broadcast multiply and a sum over the pair axis.
"""

from __future__ import annotations

import torch

from .predictor import Predictor


def pair(x: torch.Tensor) -> torch.Tensor:
    """Frames 2p and 2p+1 form pair p [ours]: (b, t, ...) -> (b, t/2, 2, ...)."""
    return x.unflatten(1, (x.shape[1] // 2, 2))


def merge_weights(scores: torch.Tensor, weight_fn: str) -> torch.Tensor:
    """softmax over each pair [paper]; sigmoid or mean [ours, ablation]. Same shape as scores.

    The softmax runs in float32 at least, so half-precision weights still sum to 1 closely."""
    if weight_fn == "mean":
        return torch.full_like(scores, 0.5)
    if weight_fn == "sigmoid":
        return torch.sigmoid(scores)
    work = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    weights = torch.softmax(pair(work), dim=2)  # stable: torch subtracts the max
    return weights.flatten(1, 2).to(scores.dtype)


def interpolate(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """y[b, p] = a[b, 2p] x[b, 2p] + a[b, 2p+1] x[b, 2p+1]: (b, t, N, C) -> (b, t/2, N, C).

    Per-token weights (b, t, N) [ours] broadcast over C; channel weights are (b, t, N, C).
    The class token is merged like every other token [ours]."""
    if weights.dim() == x.dim() - 1:
        weights = weights.unsqueeze(-1)
    return (pair(weights.to(x.dtype)) * pair(x)).sum(dim=2)


class Merge(Predictor):
    """Φ with its own θ: (b, t, N, C) -> ((b, t/2, N, C), {"scores", "weights"})."""

    def forward(self, x: torch.Tensor):
        if self.cfg.weight_fn == "mean":  # parameter-free [ours]: θ does not run
            scores = x.new_zeros(x.shape if self.cfg.weight_granularity == "channel" else x.shape[:-1])
        else:
            scores = self.predict_scores(x)
        weights = merge_weights(scores, self.cfg.weight_fn)
        return interpolate(x, weights), {"scores": scores, "weights": weights}


def contributions(weights: list[torch.Tensor]) -> torch.Tensor:
    """spec/00-method.md §6 [ours]: c[f, n] = a1[f, n] * a2[f // 2, n] * ...; (b, T0, N).

    Channel weights keep their C axis through the product and are averaged at the end."""
    if not weights:
        raise ValueError("contributions need the weights of at least one merge, got none")
    c = weights[0]
    for a in weights[1:]:
        c = c * a.repeat_interleave(c.shape[1] // a.shape[1], dim=1)
    return c.mean(dim=-1) if c.dim() == 4 else c
