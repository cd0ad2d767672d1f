"""The MLP and the pre-norm residual block (spec/00-method.md §2.3), with or without the block's
temporal module (§12): ST-Adapter before attention and/or the MLP, or AIM's block."""

from __future__ import annotations

import numpy as np

from .attention import attention
from .config import ModelConfig
from .layers import ACTIVATIONS, layer_norm, linear
from .params import scope
from .temporal import bottleneck, st_adapter, temporal_attention


def mlp(params: dict, x: np.ndarray, *, activation: str) -> np.ndarray:
    """C -> 4C -> C with biases: fc2(act(fc1(x))). x: (..., C) -> (..., C)."""
    hidden = ACTIVATIONS[activation](linear(x, params["fc1.weight"], params["fc1.bias"]))
    return linear(hidden, params["fc2.weight"], params["fc2.bias"])


def block(params: dict, x: np.ndarray, *, cfg: ModelConfig, temporal: bool = False) -> np.ndarray:
    """x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). x: (b, t, N, C) -> (b, t, N, C).

    `params` holds one block's keys without the ``blocks.{i}.`` prefix. temporal=True: the block
    carries cfg's temporal module (i + 1 in cfg.module_blocks, spec/00-method.md §12): AIM's
    block (`aim_block`), or an ST-Adapter before attention and/or before the MLP [ST-Adapter],
    which mixes the t frames of this stage. Without it, frames never mix.
    """
    if temporal and cfg.temporal == "aim":
        return aim_block(params, x, cfg=cfg)
    adapted = temporal and cfg.temporal == "st_adapter"
    if adapted and "attn" in cfg.temporal_placement:
        x = st_adapter(scope(params, "temporal.attn."), x, cfg=cfg)  # §12.1, before attention
    x = x + attention(
        scope(params, "attn."),
        layer_norm(x, params["norm1.weight"], params["norm1.bias"], cfg.ln_eps),
        heads=cfg.heads,
    )
    if adapted and "mlp" in cfg.temporal_placement:
        x = st_adapter(scope(params, "temporal.mlp."), x, cfg=cfg)  # §12.1, before the MLP
    x = x + mlp(
        scope(params, "mlp."),
        layer_norm(x, params["norm2.weight"], params["norm2.bias"], cfg.ln_eps),
        activation=cfg.activation,
    )
    return x


def aim_block(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """AIM's block (spec/00-method.md §12.2) [AIM], in its order, on the t frames left:

        x = x + T_Adapter(Attn(LN1(x over time)))       temporal, no skip in the adapter
        x = x + S_Adapter(Attn(LN1(x)))                  spatial; S_Adapter(y) = y + A_S(y)
        x = x + MLP(LN2(x)) + s * MLP_Adapter(LN2(x))    MLP-parallel, s = cfg.temporal_scale

    with one LN1 and one attention, the block's own, for both. x: (b, t, N, C) -> (b, t, N, C).
    """
    x = x + temporal_attention(params, x, cfg=cfg)  # (b, t, N, C): frames mix here
    y = attention(
        scope(params, "attn."),
        layer_norm(x, params["norm1.weight"], params["norm1.bias"], cfg.ln_eps),
        heads=cfg.heads,
    )  # spatial, inside each frame
    x = x + (y + bottleneck(scope(params, "temporal.s_adapter."), y))  # S-Adapter, with its skip
    h = layer_norm(x, params["norm2.weight"], params["norm2.bias"], cfg.ln_eps)
    x = x + mlp(scope(params, "mlp."), h, activation=cfg.activation) + cfg.temporal_scale * (
        bottleneck(scope(params, "temporal.mlp_adapter."), h)
    )
    return x
