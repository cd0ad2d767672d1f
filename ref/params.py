"""Parameter names and shapes (§3.5, [ours]), seeded initialization, and checking a dict.

The flat dict with dotted keys is the one interface that `ref`, `torch_impl`, saved files
and the checkpoint converters share: its keys are the torch model's `state_dict` keys,
and linear weights are stored (out, in) as in `nn.Linear`, so ``y = x @ W.T + b``.
"""

from __future__ import annotations

import re

import numpy as np

from .config import ModelConfig, require_config

Params = dict  # dict[str, np.ndarray]


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter key of spec/00-method.md §3.5 with its shape, in a fixed order."""
    require_config(cfg)
    C, P, N, D = cfg.width, cfg.patch_size, cfg.num_tokens, cfg.depth
    H, d = cfg.mlp_width, cfg.predictor_width
    shapes: dict[str, tuple[int, ...]] = {"patch_embed.weight": (C, 3, P, P)}
    if cfg.patch_bias:
        shapes["patch_embed.bias"] = (C,)
    shapes["cls_token"] = (C,)
    shapes["pos_embed"] = (N, C)
    if cfg.temporal == "aim":  # AIM's temporal embedding, (1, T0, C) in AIM [§12.2]
        shapes["temporal_embed.weight"] = (cfg.temporal_frames, C)
    if cfg.ln_pre:
        shapes["ln_pre.weight"] = (C,)
        shapes["ln_pre.bias"] = (C,)
    for i in range(D):
        b = f"blocks.{i}."
        shapes |= {
            b + "norm1.weight": (C,),
            b + "norm1.bias": (C,),
            b + "attn.qkv.weight": (3 * C, C),
            b + "attn.qkv.bias": (3 * C,),
            b + "attn.proj.weight": (C, C),
            b + "attn.proj.bias": (C,),
            b + "norm2.weight": (C,),
            b + "norm2.bias": (C,),
            b + "mlp.fc1.weight": (H, C),
            b + "mlp.fc1.bias": (H,),
            b + "mlp.fc2.weight": (C, H),
            b + "mlp.fc2.bias": (C,),
        }
        if i + 1 in cfg.module_blocks:
            shapes |= temporal_shapes(cfg, b + "temporal.")
    shapes["ln_post.weight"] = (C,)
    shapes["ln_post.bias"] = (C,)
    if cfg.embed_dim is not None:
        shapes["proj.weight"] = (cfg.embed_dim, C)
    if cfg.num_classes:
        shapes["head.weight"] = (cfg.num_classes, cfg.feature_dim)
        shapes["head.bias"] = (cfg.num_classes,)
    score_out = C if cfg.weight_granularity == "channel" else 1
    predicted = cfg.weight_fn != "mean"  # the mean baseline is parameter-free [ours, §3.3]
    for j in range(len(cfg.schedule) if predicted else 0):
        m = f"merges.{j}."
        shapes |= {
            m + "norm.weight": (C,),
            m + "norm.bias": (C,),
            m + "reduce.weight": (d, C),
            m + "reduce.bias": (d,),
        }
        if "token" in cfg.branches:
            shapes[m + "token.weight"] = (d, d)
        if "local" in cfg.branches:
            shapes[m + "local.weight"] = (d, 1, 3, 3, 3)
            shapes[m + "local.bias"] = (d,)
        if "frame" in cfg.branches:
            shapes[m + "frame.weight"] = (d, d)
        if "clip" in cfg.branches:
            shapes[m + "clip.weight"] = (d, d)
        shapes[m + "score.weight"] = (score_out, d)
        shapes[m + "score.bias"] = (score_out,)
    return shapes


AIM_ADAPTERS = ("t_adapter", "s_adapter", "mlp_adapter")  # AIM's T_, S_ and MLP_Adapter


def temporal_shapes(cfg: ModelConfig, prefix: str) -> dict[str, tuple[int, ...]]:
    """One block's temporal module (spec/00-method.md §12.1, §12.2), keys under `prefix`.

    ST-Adapter: ``{p}.fc1`` (C_a, C), ``{p}.conv`` (C_a, 1, 3, 1, 1), ``{p}.fc2`` (C, C_a), each
    with a bias, for p in temporal_placement (ST-Adapter's ``adapter_pre_{p}``). AIM:
    ``{a}.fc1`` (C_a, C) and ``{a}.fc2`` (C, C_a) with biases, for its three adapters."""
    C, Ca = cfg.width, cfg.adapter_width
    if cfg.temporal == "st_adapter":
        parts = {"fc1.weight": (Ca, C), "fc1.bias": (Ca,), "conv.weight": (Ca, 1, 3, 1, 1),
                 "conv.bias": (Ca,), "fc2.weight": (C, Ca), "fc2.bias": (C,)}
        names = [p for p in ("attn", "mlp") if p in cfg.temporal_placement]
    else:  # "aim"
        parts = {"fc1.weight": (Ca, C), "fc1.bias": (Ca,), "fc2.weight": (C, Ca), "fc2.bias": (C,)}
        names = list(AIM_ADAPTERS)
    return {f"{prefix}{name}.{k}": shape for name in names for k, shape in parts.items()}


_TEMPORAL_KEY = re.compile(r"^(temporal_embed\.|blocks\.\d+\.temporal\.)")


def is_temporal_key(key: str) -> bool:
    """Whether `key` belongs to a temporal module (spec/00-method.md §12): ``temporal_embed.*``
    or ``blocks.{i}.temporal.*``."""
    return bool(_TEMPORAL_KEY.match(key))


def temporal_prefixes(cfg: ModelConfig) -> tuple[str, ...]:
    """The key prefixes of cfg's temporal modules, for ``init_params(..., prefix=...)``."""
    if cfg.temporal == "none":
        return ()
    return ("temporal_embed.", *(f"blocks.{k - 1}.temporal." for k in cfg.module_blocks))


def _zero_at_init(key: str) -> bool:
    """The temporal parameters that start at zero, so that an untrained module adds exactly
    nothing (spec/00-method.md §12.4): ST-Adapter's conv and both biases [ST-Adapter]; each AIM
    adapter's output layer and its input bias, and the temporal embedding [AIM]."""
    if key == "temporal_embed.weight":
        return True
    if ".temporal." not in key:
        return False
    return key.endswith(("conv.weight", "conv.bias", "fc1.bias", "fc2.bias")) or (
        key.endswith("fc2.weight") and key.split(".")[-3] in AIM_ADAPTERS
    )


def init_value(key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """The initial value of one parameter (float64).

    Linear and conv weights are N(0, 1/fan_in); biases and embeddings are N(0, 0.02^2);
    LayerNorm scales start near 1. The predictor's score layer is zero [ours, §3.4],
    so an untrained InTI model averages each pair of frames exactly; so are the temporal
    parameters of `_zero_at_init` (spec/00-method.md §12.4), so an untrained module adds nothing.
    """
    if key.endswith(("score.weight", "score.bias")) or _zero_at_init(key):
        return np.zeros(shape)
    if key.endswith(
        ("norm.weight", "norm1.weight", "norm2.weight", "ln_pre.weight", "ln_post.weight")
    ):
        return 1.0 + 0.1 * rng.standard_normal(shape)
    if len(shape) == 1 or key == "pos_embed":
        return 0.02 * rng.standard_normal(shape)
    return rng.standard_normal(shape) / np.sqrt(int(np.prod(shape[1:])))


def init_params(
    cfg: ModelConfig, seed: int = 0, dtype=np.float64, prefix: str | tuple = ""
) -> Params:
    """Seeded random parameters with exactly the keys and shapes of `param_shapes` (see
    `init_value`). With `prefix` (a string or a tuple of them), only the keys that start with
    it (e.g. ``"merges."`` for fresh predictors beside converted backbone weights, with
    `temporal_prefixes(cfg)` for fresh temporal modules); the draws then differ from the
    full dict's for the same seed. The temporal modules (spec/00-method.md §12) draw from a stream
    of their own, so every other key has the same values as for ``cfg.replace(temporal="none")``."""
    rng = np.random.default_rng(seed)
    temporal_rng = np.random.default_rng([int(seed), 5])  # its own: the rest is drawn as without
    return {
        key: init_value(key, shape, temporal_rng if is_temporal_key(key) else rng).astype(dtype)
        for key, shape in param_shapes(cfg).items()
        if key.startswith(prefix)
    }


def key_report(shapes: dict, expected: dict, limit: int = 8) -> list[str]:
    """What is wrong with `shapes` ({key: shape}) against `expected` ({key: shape}).

    One entry per kind of problem, each naming its keys (at most `limit` of each): missing
    keys, unexpected keys with their shapes, and keys of the wrong shape with both shapes.
    [] when they fit.
    `check_params` and the checkpoint converters (inti.io.layouts) both report with it.

    >>> key_report({"a": (2,), "c": (1,)}, {"a": (3,), "b": (1,)})  # doctest: +NORMALIZE_WHITESPACE
    ['missing 1 key(s): b', 'unexpected 1 key(s): c (1,)',
     'wrong shape: a: expected (3,), got (2,)']
    """

    def some(keys):
        return ", ".join(keys[:limit]) + (
            f" ... ({len(keys) - limit} more)" if len(keys) > limit else ""
        )

    missing = [k for k in expected if k not in shapes]
    extra = [f"{k} {tuple(shapes[k])}" for k in sorted(k for k in shapes if k not in expected)]
    wrong = [
        f"{k}: expected {tuple(expected[k])}, got {tuple(shapes[k])}"
        for k in expected
        if k in shapes and tuple(shapes[k]) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {some(missing)}")
    if extra:
        problems.append(f"unexpected {len(extra)} key(s): {some(extra)}")
    if wrong:
        problems.append(
            "wrong shape: " + "; ".join(wrong[:limit]) + (" ..." if len(wrong) > limit else "")
        )
    return problems


def check_params(params, cfg: ModelConfig) -> None:
    """Raise if `params` does not fit `cfg`, naming every key at fault: a missing, extra or
    mis-shaped key, a value that is not a real floating array (int, bool, complex, object), or
    one that holds NaN or infinity. Every loader and both forwards call it."""
    require_config(cfg)
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    arrays = {k: np.asarray(v) for k, v in params.items()}
    problems = key_report({k: a.shape for k, a in arrays.items()}, param_shapes(cfg))
    if problems:
        raise ValueError("parameters do not match the config: " + " | ".join(problems))
    wrong = [f"{k} ({a.dtype})" for k, a in arrays.items() if a.dtype.kind != "f"]
    if wrong:
        raise TypeError(
            f"parameters must be real floating arrays, got {len(wrong)} that are not: "
            + ", ".join(wrong[:8]) + (" ..." if len(wrong) > 8 else "")
        )
    nonfinite = [f"{k} ({a.size - np.count_nonzero(np.isfinite(a))} of {a.size})"
                 for k, a in arrays.items() if not np.isfinite(a).all()]
    if nonfinite:
        raise ValueError(
            f"parameters must be finite, got NaN or infinite values in {len(nonfinite)} key(s): "
            + ", ".join(nonfinite[:8]) + (" ..." if len(nonfinite) > 8 else "")
        )


def randomize_scores(params: Params, cfg: ModelConfig, seed: int = 0, scale: float = 2.0) -> Params:
    """A copy of `params` whose score layers ``merges.{j}.score.weight/bias`` (zero at init) are
    random, so that the merge weights differ from 1/2 [ours: a setting for tests and the demo,
    not training]. The demo's ``--random-scores`` and the tests draw the same values.

    weight ~ N(0, scale^2 / d), bias ~ N(0, scale^2 / 4), each in the dtype it had. With fused
    features of order 1 the scores are of order `scale`: softmax weights spread well inside
    (0, 1) without saturating in float64. A no-op for weight_fn="mean" (no such keys).
    """
    rng = np.random.default_rng([int(seed), 2])
    out = dict(params)
    for key, value in params.items():
        value = np.asarray(value)
        if key.startswith("merges.") and key.endswith(".score.weight"):
            out[key] = (
                scale * rng.standard_normal(value.shape) / np.sqrt(cfg.predictor_width)
            ).astype(value.dtype)
        elif key.startswith("merges.") and key.endswith(".score.bias"):
            out[key] = (0.5 * scale * rng.standard_normal(value.shape)).astype(value.dtype)
    return out


def randomize_temporal(
    params: Params, cfg: ModelConfig, seed: int = 0, scale: float = 1.0
) -> Params:
    """A copy of `params` whose temporal parameters that start at zero (`_zero_at_init`) are
    random, so that the modules of spec/00-method.md §12 do something [ours: a setting for
    tests, not training]. Weights ~ scale * N(0, 1/fan_in), biases and the temporal embedding ~
    0.1 * scale * N(0, 1), each in the dtype it had. A no-op without temporal modules."""
    rng = np.random.default_rng([int(seed), 3])
    out = dict(params)
    for key, value in params.items():
        if not _zero_at_init(key):
            continue
        value = np.asarray(value)
        if key.endswith(".weight") and key != "temporal_embed.weight":
            fan_in = int(np.prod(value.shape[1:]))
            new = scale * rng.standard_normal(value.shape) / np.sqrt(fan_in)
        else:
            new = 0.1 * scale * rng.standard_normal(value.shape)
        out[key] = new.astype(value.dtype)
    return out


def scope(params: Params, prefix: str) -> Params:
    """The sub-dict under ``prefix`` with the prefix stripped.

    scope(p, "blocks.0.")["norm1.weight"] is p["blocks.0.norm1.weight"]."""
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def backbone(params: Params) -> Params:
    """The image-ViT part of an InTI parameter dict: every key but ``merges.*``.

    With it, ``forward(backbone(p), video, cfg.replace(schedule=()))`` is the naive
    adaptation of the same weights (spec/00-method.md §5, invariant 5). Temporal modules
    (§12) stay, so that the naive model keeps them ("naive + module"); `without_temporal`
    removes them."""
    return {k: v for k, v in params.items() if not k.startswith("merges.")}


def without_temporal(params: Params) -> Params:
    """Every key but the temporal modules' (spec/00-method.md §12): the parameters of
    ``cfg.replace(temporal="none")``, the same model without its modules."""
    return {k: v for k, v in params.items() if not is_temporal_key(k)}
