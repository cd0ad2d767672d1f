"""The whole forward (§2-3): embed, blocks with Φ at the schedule, readout, head."""

from __future__ import annotations

import numpy as np

from .block import block
from .checks import check_video, first_nonfinite, nonfinite_output_error
from .config import ModelConfig, require_config
from .embed import embed
from .interpolation import merge
from .layers import layer_norm, linear
from .params import check_params, scope


def readout(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> dict:
    """spec/00-method.md §2.4-2.5: ln_post on each remaining frame's class token, mean over frames,
    then the projection (after the mean [ours]; it is linear, so the order does not matter)
    and the head. x: (b, t, N, C) -> {"pooled": (b, C), "features": (b, E), "logits": (b, K)};
    without a projection features = pooled, without a head logits = features."""
    pooled = layer_norm(
        x[:, :, 0], params["ln_post.weight"], params["ln_post.bias"], cfg.ln_eps
    ).mean(axis=1)
    features = linear(pooled, params["proj.weight"]) if cfg.embed_dim is not None else pooled
    logits = (
        linear(features, params["head.weight"], params["head.bias"])
        if cfg.num_classes
        else features
    )
    return {"pooled": pooled, "features": features, "logits": logits}


def forward(params: dict, video: np.ndarray, cfg: ModelConfig, return_trace: bool = False):
    """InTI on a batch of clips. video: (b, T0, 3, H, W), float32 or float64.

    Returns logits (b, K) (features (b, E) when num_classes = 0) in the video's dtype.
    With return_trace=True, returns (logits, trace) where trace holds, in order:
    ``embed`` (b, T0, N, C); ``blocks.{i}`` the tokens after block i (0-based, like the
    parameter names); at merge j, ``merges.{j}.scores``, ``merges.{j}.weights`` and
    ``merges.{j}.tokens`` (the merged tokens); then ``pooled``, ``features``, ``logits``.
    The schedule counts blocks from 1: S = (k,) merges after ``blocks.{k-1}``. Temporal
    modules (spec/00-method.md §12) live inside their blocks and add no trace entries.
    """
    params = prepare(params, video, cfg)
    trace: dict[str, np.ndarray] = {}
    x = embed(params, video, cfg=cfg)  # (b, T0, N, C)
    trace["embed"] = x
    merges = {k: j for j, k in enumerate(cfg.schedule)}
    modules = set(cfg.module_blocks)  # blocks (from 1) with a temporal module, §12
    for i in range(cfg.depth):
        # (b, t, N, C): frames stay apart, unless the block carries a temporal module
        x = block(scope(params, f"blocks.{i}."), x, cfg=cfg, temporal=i + 1 in modules)
        trace[f"blocks.{i}"] = x
        if i + 1 in merges:
            j = merges[i + 1]
            x, decided = merge(scope(params, f"merges.{j}."), x, cfg=cfg)  # (b, t/2, N, C)
            trace[f"merges.{j}.scores"] = decided["scores"]
            trace[f"merges.{j}.weights"] = decided["weights"]
            trace[f"merges.{j}.tokens"] = x
    return finish(params, x, trace, cfg=cfg, return_trace=return_trace)


def prepare(params: dict, video: np.ndarray, cfg: ModelConfig) -> dict:
    """What every forward checks before it computes (spec/00-method.md §9): the config, the
    video, the parameters; returns the parameters cast to the video's dtype."""
    require_config(cfg)
    check_video(video, cfg)
    check_params(params, cfg)
    return {k: np.asarray(v, dtype=video.dtype) for k, v in params.items()}


def finish(params: dict, x: np.ndarray, trace: dict, *, cfg: ModelConfig, return_trace: bool):
    """The readout on the tokens x (b, t, n, C) after the last block, added to the trace, and
    the output check: finite inputs must give finite outputs; otherwise name the first trace
    entry that is not [ours]. Returns logits, or (logits, trace)."""
    out = readout(params, x, cfg=cfg)
    trace |= out
    bad = first_nonfinite(trace, lambda v: v.size - np.count_nonzero(np.isfinite(v)))
    if bad:
        raise nonfinite_output_error(*bad)
    return (out["logits"], trace) if return_trace else out["logits"]
