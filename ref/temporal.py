"""Temporal modules beside the merges (spec/00-method.md §12) [ours, after ST-Adapter and AIM].

The InTI paper combines its merges with "additional temporal modules" [paper] without naming
them in the available text; this file writes two published ones as their released code defines
them: ST-Adapter (Pan et al., NeurIPS 2022, §12.1) and the temporal attention and adapters of
AIM (Yang et al., ICLR 2023, §12.2). What each of them does not fix, and what fitting them
between InTI's merges needs, is tagged [ours] where it is applied.

Every module works on the frames that are left at its block: after a merge, on T/2. The
blocks that use these pieces are in `block.py`; the temporal embedding is added in `embed.py`.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange
from numpy.lib.stride_tricks import sliding_window_view

from .attention import attention
from .config import ModelConfig
from .layers import gelu, layer_norm, linear
from .params import scope


# ---- ST-Adapter (§12.1) -----------------------------------------------------------------------


def temporal_conv(params: dict, z: np.ndarray) -> np.ndarray:
    """ST-Adapter's depthwise conv3d with kernel (3, 1, 1), padding (1, 0, 0), groups C_a
    [ST-Adapter], on patch tokens z: (b, t, L, C_a) -> (b, t, L, C_a).

    A cross-correlation over time, as in torch: out[t] = w0 z[t-1] + w1 z[t] + w2 z[t+1] + bias,
    channel by channel, with zeros beyond the ends of the clip [ours: at every stage, also after
    a merge]. The kernel is 1 x 1 in space, so no token sees a spatial neighbour and the h x w grid
    need not be written out. Any t >= 1 works; at t = 1 only the centre tap meets a frame.
    `params`: ``conv.weight`` (C_a, 1, 3, 1, 1), ``conv.bias`` (C_a,)."""
    padded = np.pad(z, ((0, 0), (1, 1), (0, 0), (0, 0)))  # (b, t+2, L, C_a): a zero frame each end
    windows = sliding_window_view(padded, 3, axis=1)  # (b, t, L, C_a, 3): frames t-1, t, t+1
    kernel = params["conv.weight"][:, 0, :, 0, 0]  # (C_a, 3): one temporal filter per channel
    return np.einsum("btlck,ck->btlc", windows, kernel) + params["conv.bias"]


def st_adapter(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """ST-Adapter (spec/00-method.md §12.1): x_p + fc2(conv_t(fc1(x_p))) on the patch tokens x_p;
    the class token passes through unchanged [ST-Adapter]. No LayerNorm, no activation.

    x: (b, t, N, C) -> (b, t, N, C). `params`: one adapter's ``fc1.*``, ``conv.*``, ``fc2.*``
    (the keys under ``blocks.{i}.temporal.{attn|mlp}.``)."""
    cls, patches = x[:, :, :1], x[:, :, 1:]  # (b, t, 1, C), (b, t, L, C)
    z = linear(patches, params["fc1.weight"], params["fc1.bias"])  # (b, t, L, C_a): down
    u = temporal_conv(params, z)  # (b, t, L, C_a): mixed over t-1, t, t+1
    patches = patches + linear(u, params["fc2.weight"], params["fc2.bias"])  # (b, t, L, C): up
    return np.concatenate([cls, patches], axis=2)  # (b, t, N, C)


# ---- AIM (§12.2) ------------------------------------------------------------------------------


def bottleneck(params: dict, x: np.ndarray) -> np.ndarray:
    """AIM's adapter without its skip: fc2(GELU(fc1(x))), C -> C_a -> C, exact erf GELU
    whatever the backbone's activation [AIM]. x: (..., C) -> (..., C). `params`: ``fc1.*``,
    ``fc2.*``. The S-Adapter's skip is written where it is used (`block.aim_block`)."""
    return linear(gelu(linear(x, params["fc1.weight"], params["fc1.bias"])),
                  params["fc2.weight"], params["fc2.bias"])


def temporal_attention(params: dict, x: np.ndarray, *, cfg: ModelConfig) -> np.ndarray:
    """AIM's temporal branch (spec/00-method.md §12.2): T_Adapter(Attn(LN1(x over time))).

    The block's own LN1 and attention weights, applied to the sequence of the t frames at each
    token position n, the class token included (AIM's ``'n (b t) d -> t (b n) d'``) [AIM]; t is the
    number of frames left at the block [ours]. No mask: every frame sees every frame.
    x: (b, t, N, C) -> the update (b, t, N, C), which the block adds. `params`: one block's keys
    (``norm1.*``, ``attn.*``, ``temporal.t_adapter.*``)."""
    xt = rearrange(x, "b t n c -> b n t c")  # a sequence of t frames per position
    yt = attention(
        scope(params, "attn."),
        layer_norm(xt, params["norm1.weight"], params["norm1.bias"], cfg.ln_eps),
        heads=cfg.heads,
    )  # (b, N, t, C): attention over the t axis
    update = bottleneck(scope(params, "temporal.t_adapter."), yt)  # T-Adapter: no skip
    return rearrange(update, "b n t c -> b t n c")


def add_temporal_embed(params: dict, x: np.ndarray) -> np.ndarray:
    """AIM's temporal embedding (spec/00-method.md §12.2): row t of ``temporal_embed.weight``
    (T0, C) is added to every token of input frame t, the class token included [AIM]. x: (b, T0,
    N, C) -> (b, T0, N, C). It is added once, at the input [AIM]; the merges carry it on inside
    the tokens, mixing the rows of a pair with the pair's weights [ours]."""
    return x + params["temporal_embed.weight"][:, None, :]  # (T0, 1, C) over b and n
