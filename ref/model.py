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

READOUT = ("pooled", "features", "logits")  # the readout's entries, last in every trace
MERGE_ENTRIES = ("scores", "weights", "tokens")  # what merge j adds: its decision, then its output


# ---- the trace's keys: spelled here once, for ref, torch_impl, inti and the tests -------------

def block_key(i: int) -> str:
    """The tokens after block i, counted from 0 like the parameter names: ``blocks.{i}``."""
    return f"blocks.{i}"


def merge_key(j: int, entry: str) -> str:
    """Entry ``scores``, ``weights`` or ``tokens`` (the merged tokens) of merge j, counted from 0
    in schedule order: ``merges.{j}.{entry}``."""
    if entry not in MERGE_ENTRIES:
        raise ValueError(f"a merge's trace entries are {MERGE_ENTRIES}, got {entry!r}")
    return f"merges.{j}.{entry}"


def merge_entries(j: int, decided: dict, tokens) -> dict:
    """What merge j adds to a trace: its decision (``scores``, ``weights``), then the merged
    tokens, under `merge_key`'s names. Works on any arrays (NumPy, torch)."""
    return {merge_key(j, "scores"): decided["scores"], merge_key(j, "weights"): decided["weights"],
            merge_key(j, "tokens"): tokens}


def merge_after(cfg: ModelConfig) -> dict[int, int]:
    """{block i (from 0): merge j} for the schedule: S = (k,) merges after block k - 1."""
    return {k - 1: j for j, k in enumerate(cfg.schedule)}


def trace_keys(cfg: ModelConfig) -> list[str]:
    """Every key of `forward`'s trace for cfg, in its order: ``embed``; ``block_key(i)`` for each
    block, each followed, where the schedule merges, by that merge's `MERGE_ENTRIES`; `READOUT`.

    >>> from ref.config import preset
    >>> trace_keys(preset("nano").replace(depth=2, schedule=(1,)))  # doctest: +NORMALIZE_WHITESPACE
    ['embed', 'blocks.0', 'merges.0.scores', 'merges.0.weights', 'merges.0.tokens', 'blocks.1',
     'pooled', 'features', 'logits']
    """
    require_config(cfg)
    keys, merges = ["embed"], merge_after(cfg)
    for i in range(cfg.depth):
        keys.append(block_key(i))
        if i in merges:
            keys += [merge_key(merges[i], entry) for entry in MERGE_ENTRIES]
    return keys + list(READOUT)


def trace_weights(trace: dict, cfg: ModelConfig) -> list:
    """The weights of every merge in schedule order, read from a trace: what `contributions`
    takes. [] for an empty schedule."""
    return [trace[merge_key(j, "weights")] for j in range(len(cfg.schedule))]


# ---- the forward ------------------------------------------------------------------------------


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
    With return_trace=True, returns (logits, trace) where trace holds, in order
    (`trace_keys(cfg)`): ``embed`` (b, T0, N, C); ``blocks.{i}`` the tokens after block i
    (0-based, like the parameter names); at merge j, ``merges.{j}.scores``,
    ``merges.{j}.weights`` and ``merges.{j}.tokens`` (the merged tokens); then ``pooled``,
    ``features``, ``logits``. The schedule counts blocks from 1: S = (k,) merges after
    ``blocks.{k-1}``. Temporal modules (spec/00-method.md §12) live inside their blocks and add
    no trace entries.
    """
    params = prepare(params, video, cfg)
    trace: dict[str, np.ndarray] = {}
    x = trace["embed"] = embed(params, video, cfg=cfg)  # (b, T0, N, C)
    merges = merge_after(cfg)  # {block i: merge j}
    modules = set(cfg.module_blocks)  # blocks (from 1) with a temporal module, §12
    for i in range(cfg.depth):
        # (b, t, N, C): frames stay apart, unless the block carries a temporal module
        x = block(scope(params, f"blocks.{i}."), x, cfg=cfg, temporal=i + 1 in modules)
        trace[block_key(i)] = x
        if i in merges:
            j = merges[i]
            x, decided = merge(scope(params, f"merges.{j}."), x, cfg=cfg)  # (b, t/2, N, C)
            trace |= merge_entries(j, decided, x)
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
