"""ToMe inside each frame (spec/00-method.md §14): the peer baseline [ToMe, except where tagged].

Token Merging (Bolya et al., ICLR 2023, `facebookresearch/ToMe`, its `tome/merge.py` and
`tome/patch/timm.py`) runs the image ViT with r tokens of every frame merged away in each block:
between the attention and the MLP, bipartite soft matching on the block's keys pairs similar
tokens, and each pair becomes its size-weighted average. The frames never mix [ours]: a video is
a stack of images, as in the naive adaptation (§2), each image with fewer tokens.

The decision (`bipartite_soft_matching`) is apart from its use (`merge_wavg`), as in ToMe's
`merge.py`, and its limit is enforced (`check_tome`): r_i <= (n_i - 1) // 2 at block i, n_i the
tokens entering it, since set A holds ceil(n_i / 2) tokens and one of them is the class token.
The cost model (`tome_macs`, §14.3) sits below, with `tome_schedule`, the r at a MAC budget.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .attention import attention
from .block import mlp
from .checks import check_frames
from .config import ModelConfig, require_config
from .cost import attention_macs, head_macs, mlp_macs, patch_embed_macs
from .embed import embed
from .layers import layer_norm
from .model import READOUT, block_key, finish, prepare
from .params import scope

TRACED = ("similarity", "src", "dst", "tokens", "size")  # what a merge adds to the trace


def tome_key(i: int, entry: str) -> str:
    """Entry `entry` (one of `TRACED`) of ToMe's merge in block i, from 0: ``tome.{i}.{entry}``."""
    if entry not in TRACED:
        raise ValueError(f"a ToMe merge's trace entries are {TRACED}, got {entry!r}")
    return f"tome.{i}.{entry}"


def tome_entries(i: int, decided: dict) -> dict:
    """What ToMe's merge in block i adds to a trace (`tome_block`'s decided), under `tome_key`'s names."""
    return {tome_key(i, entry): decided[entry] for entry in TRACED}


def tome_trace_keys(cfg: ModelConfig, r) -> list[str]:
    """Every key of `tome_forward`'s trace, in its order: ``embed``; for each block i, where
    r[i] > 0, its merge's `TRACED` entries, then ``block_key(i)``; `READOUT`.

    >>> from ref.config import preset
    >>> tome_trace_keys(preset("nano").replace(depth=2, schedule=()), (0, 3))  # doctest: +NORMALIZE_WHITESPACE
    ['embed', 'blocks.0', 'tome.1.similarity', 'tome.1.src', 'tome.1.dst', 'tome.1.tokens',
     'tome.1.size', 'blocks.1', 'pooled', 'features', 'logits']
    """
    keys = ["embed"]
    for i, k in enumerate(check_tome(cfg, r)):
        keys += [tome_key(i, entry) for entry in TRACED if k] + [block_key(i)]
    return keys + list(READOUT)


# ---- the rules on r ----------------------------------------------------------------------------

def most_merges(n: int) -> int:
    """The most tokens ToMe can merge away from n: set A's ceil(n/2) tokens but the class token,
    (n - 1) // 2 [ToMe: the bound its bipartite_soft_matching clamps r to]."""
    return (n - 1) // 2


def check_tome(cfg: ModelConfig, r) -> tuple[int, ...]:
    """Validate ToMe's config and per-block r (§14.1); returns r as a tuple of ints.

    ToMe runs the image ViT [ours]: the config has no InTI schedule and no temporal module, so
    the parameters are ``ref.backbone``'s. r has one entry per block (block i + 1 merges r[i]
    tokens of every frame), each a non-negative integer no larger than `most_merges` of the
    tokens entering that block; ToMe clamps a larger r silently, this project refuses it [ours].
    """
    require_config(cfg)
    if cfg.schedule or cfg.temporal != "none":
        raise ValueError(
            "ToMe runs the image ViT alone: it needs a config with schedule=() and "
            f"temporal='none', got schedule={cfg.schedule}, temporal={cfg.temporal!r}; "
            "use cfg.replace(schedule=(), temporal='none') and ref.backbone(params)"
        )
    if isinstance(r, (str, bytes)) or not hasattr(r, "__len__"):
        raise ValueError(
            f"r must be a tuple of {cfg.depth} integers, one per block, got {r!r} "
            f"(a constant r is ({r!r},) * {cfg.depth})"
        )
    r = tuple(r)
    if len(r) != cfg.depth:
        raise ValueError(f"r must have one entry per block, {cfg.depth}, got {len(r)}: {r}")
    n = cfg.num_tokens
    for i, k in enumerate(r):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
            raise ValueError(f"r entries must be non-negative integers, got {k!r} at block {i + 1}")
        if k > most_merges(n):
            raise ValueError(
                f"ToMe can merge at most {most_merges(n)} tokens at block {i + 1}, where {n} "
                f"tokens enter (set A holds {(n + 1) // 2}, one of them the protected class "
                f"token), got r = {int(k)} in r = {r}"
            )
        n -= int(k)
    return tuple(int(k) for k in r)


def constant_r(cfg: ModelConfig, r: int) -> tuple[int, ...]:
    """ToMe's constant r with its clamp written out: r_i = min(r, (n_i - 1) // 2) at block i,
    n_i the tokens entering it [ToMe]. For an r that every block can give, (r,) * depth.

    >>> from ref.config import ModelConfig
    >>> cfg = ModelConfig(image_size=32, patch_size=8, width=64, depth=4, heads=4)  # N = 17
    >>> constant_r(cfg, 3), constant_r(cfg, 8)
    ((3, 3, 3, 3), (8, 4, 2, 1))
    """
    require_config(cfg)
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
        raise ValueError(f"a constant r must be a non-negative integer, got {r!r}")
    out, n = [], cfg.num_tokens
    for _ in range(cfg.depth):
        out.append(min(int(r), most_merges(n)))
        n -= out[-1]
    return tuple(out)


# ---- the decision: bipartite soft matching (§14.1) --------------------------------------------

def bipartite_soft_matching(metric: np.ndarray, r: int) -> dict:
    """Which r tokens of each frame merge into which [ToMe's bipartite_soft_matching].

    metric: (..., n, e), the block's keys averaged over heads. Tokens alternate into set A
    (even positions 0, 2, ...) and set B (odd positions); the similarity of every A token to every
    B token is their cosine. The class token (position 0, in A) is protected: its scores are
    -inf, so it never merges. Each A token keeps its best match in B, and the r A tokens whose
    best match is most similar merge into it; ties go to the lower position [ours: a stable
    sort]. Several A tokens may merge into one B token. Requires 0 < r <= (n - 1) // 2.

    Returns, for each frame: ``similarity`` (..., nA, nB), the cosines (the class row unmasked);
    ``src`` (..., r) the A indices that merge, most similar first; ``dst`` (..., r) the B index
    each merges into; ``unm`` (..., nA - r) the A indices kept, in order; ``slots`` (..., n)
    the output position of every input token: the kept A tokens first, in order, then the B
    tokens, in order (ToMe's concatenation [unm, dst]).
    """
    unit = metric / np.linalg.norm(metric, axis=-1, keepdims=True)
    a, b = unit[..., ::2, :], unit[..., 1::2, :]  # (..., nA, e), (..., nB, e)
    similarity = a @ np.swapaxes(b, -1, -2)  # (..., nA, nB)
    scores = similarity.copy()
    scores[..., 0, :] = -np.inf  # the class token is protected
    best, match = scores.max(axis=-1), scores.argmax(axis=-1)  # (..., nA)
    order = np.argsort(-best, axis=-1, kind="stable")  # A tokens, most similar match first
    src, unm = order[..., :r], np.sort(order[..., r:], axis=-1)
    dst = np.take_along_axis(match, src, axis=-1)  # (..., r)
    kept = a.shape[-2] - r
    slot_a = np.empty(best.shape, dtype=np.int64)  # (..., nA)
    np.put_along_axis(slot_a, unm, np.broadcast_to(np.arange(kept), unm.shape), axis=-1)
    np.put_along_axis(slot_a, src, kept + dst, axis=-1)
    slots = np.empty(metric.shape[:-1], dtype=np.int64)  # (..., n)
    slots[..., ::2], slots[..., 1::2] = slot_a, kept + np.arange(b.shape[-2])
    return {"similarity": similarity, "src": src, "dst": dst, "unm": unm, "slots": slots}


# ---- its use: the size-weighted average ---------------------------------------------------------

def merge_wavg(x: np.ndarray, size: np.ndarray | None, slots: np.ndarray, n_out: int):
    """Each output token is the size-weighted average of the input tokens sent to its slot
    [ToMe's merge_wavg]: y_j = sum_{slot(i) = j} s_i x_i / sum_{slot(i) = j} s_i, and the sizes
    add, s'_j = sum_{slot(i) = j} s_i. Sizes start at 1 (size None).

    x: (..., n, C); size: (..., n) or None; slots: (..., n) ints in 0 .. n_out - 1.
    Returns y (..., n_out, C), size (..., n_out). The sum is written as a product with the 0/1
    matrix M[j, i] = [slot(i) = j], which is only notation: it costs no MACs (§14.3).
    """
    if size is None:
        size = np.ones(x.shape[:-1], dtype=x.dtype)
    onehot = (slots[..., None, :] == np.arange(n_out)[:, None]).astype(x.dtype)  # (..., n_out, n)
    size_out = np.einsum("...jn,...n->...j", onehot, size)
    y = np.einsum("...jn,...nc->...jc", onehot, x * size[..., None]) / size_out[..., None]
    return y, size_out


# ---- the block and the model -------------------------------------------------------------------

def tome_block(params: dict, x: np.ndarray, size, *, r: int, cfg: ModelConfig):
    """ToMe's block [ToMe's ToMeBlock], on every frame apart:

        x = x + Attn(LN1(x))       with proportional attention: + log(size) on each key's logits
        x, size = merge r tokens   bipartite soft matching on the keys, size-weighted average
        x = x + MLP(LN2(x))        on the n - r tokens left

    x: (b, t, n, C); size: (b, t, n), or None before the first merge (every size 1). Returns x
    (b, t, n - r, C), size (b, t, n - r) (None while nothing has merged), and what the merge
    decided: `bipartite_soft_matching`'s dict with ``tokens`` (the merged tokens, before the
    MLP) and ``size``; {} for r = 0, which is the image block exactly.
    """
    h = layer_norm(x, params["norm1.weight"], params["norm1.bias"], cfg.ln_eps)
    y, metric = attention(scope(params, "attn."), h, heads=cfg.heads, size=size, return_metric=True)
    x, decided = x + y, {}
    if r:
        decided = bipartite_soft_matching(metric, r)
        x, size = merge_wavg(x, size, decided["slots"], x.shape[-2] - r)
        decided |= {"tokens": x, "size": size}
    h = layer_norm(x, params["norm2.weight"], params["norm2.bias"], cfg.ln_eps)
    return x + mlp(scope(params, "mlp."), h, activation=cfg.activation), size, decided


def tome_forward(params: dict, video: np.ndarray, cfg: ModelConfig, r, return_trace: bool = False):
    """ToMe within each frame on a batch of clips (§14). video: (b, T, 3, H, W).

    params are those of `ref.forward` for cfg (schedule () and no temporal module, `check_tome`);
    r is a tuple of one non-negative integer per block. Every frame runs the image ViT with ToMe's
    blocks, and the readout is the naive model's (§2.4-2.5): ln_post on each frame's class token
    (never merged, so still at position 0), the mean over frames, projection and head. With r = 0
    everywhere this is `ref.forward` exactly.

    Returns logits (b, K) in the video's dtype; with return_trace=True, (logits, trace), the trace
    holding in order (`tome_trace_keys`): ``embed``; for each block i (from 0) with r[i] > 0,
    ``tome.{i}.similarity``, ``.src``, ``.dst``, ``.tokens``, ``.size``; ``blocks.{i}`` the
    tokens after block i (b, T, n, C), n the tokens left; then ``pooled``, ``features``, ``logits``.
    """
    r = check_tome(cfg, r)
    params = prepare(params, video, cfg)
    trace: dict[str, np.ndarray] = {}
    x = trace["embed"] = embed(params, video, cfg=cfg)  # (b, T, N, C)
    size = None
    for i in range(cfg.depth):
        x, size, decided = tome_block(scope(params, f"blocks.{i}."), x, size, r=r[i], cfg=cfg)
        if decided:
            trace |= tome_entries(i, decided)
        trace[block_key(i)] = x  # (b, T, n - r[i], C)
    return finish(params, x, trace, cfg=cfg, return_trace=return_trace)


# ---- the cost (§14.3) --------------------------------------------------------------------------

def matching_macs(cfg: ModelConfig, n: int) -> int:
    """ToMe's similarity on n tokens of one frame: the product A B^T, ceil(n/2) x floor(n/2) cosines
    of C/heads channels each (the class row included: it is computed, then masked)."""
    return ((n + 1) // 2) * (n // 2) * cfg.head_dim


def tome_macs(cfg: ModelConfig, frames: int, r, batch: int = 1) -> dict:
    """MACs of ToMe within each frame on `batch` clips of `frames` frames (§14.3), by §4's rules.

    Per frame, block i with n_i tokens in and r_i merged: attention at n_i, the MLP at n_i - r_i,
    and where r_i > 0 the matching `matching_macs(cfg, n_i)` and the weighted average's n_i*C
    multiplies [ours: as Φ's interpolation counts its weights'; the division, norms, the mean of
    the keys and log(size) are normalizations, means and additions, and cost nothing].

    Returns ints: ``patch_embed``, ``blocks`` (attention and MLP), ``matching``, ``merge``
    (the weighted average), ``head``, ``total``; ``matmul`` = total - merge, what a matrix-product
    counter sees; ``per_block``, (frames, MACs) for each block as in `ref.count_macs`, its
    attention, matching and MLP; ``tokens``, the tokens entering each block. With r = 0 in every
    block the shared entries equal ``ref.count_macs(cfg, frames, batch)``'s.
    """
    r = check_tome(cfg, r)
    check_frames(frames, cfg)
    bt, n = batch * int(frames), cfg.num_tokens
    per_block, tokens, matching, merge = [], [], 0, 0
    for k in r:
        tokens.append(n)
        match = matching_macs(cfg, n) if k else 0
        per_block.append((int(frames), bt * (attention_macs(cfg, n) + match + mlp_macs(cfg, n - k))))
        matching += bt * match
        merge += bt * n * cfg.width if k else 0
        n -= k
    out = {
        "patch_embed": bt * patch_embed_macs(cfg),
        "blocks": sum(m for _, m in per_block) - matching,
        "matching": matching,
        "merge": merge,
        "head": batch * head_macs(cfg),
    }
    out["total"] = sum(out.values())
    out["matmul"] = out["total"] - out["merge"]
    out["per_block"], out["tokens"] = per_block, tuple(tokens)
    return out


def tome_schedule(cfg: ModelConfig, frames: int, target_macs) -> tuple[int, ...]:
    """ToMe's r per block whose total MACs (`tome_macs`, one clip) is nearest to target_macs.

    The candidates are ToMe's constant r = 0, 1, ..., (N - 1) // 2, each with ToMe's clamp
    written out (`constant_r`), so a constant r where every block can give it, and ToMe's
    clamped schedule where the budget needs more [ours]; of two equally near, the smaller r
    [ours]. E.g. at InTI's MACs for S = (1,) on 8 frames of a 17-token ViT:

    >>> from ref.config import ModelConfig
    >>> from ref.cost import count_macs
    >>> cfg = ModelConfig(image_size=32, patch_size=8, width=64, depth=4, heads=4,
    ...                   embed_dim=None, num_classes=10, activation="gelu", ln_eps=1e-6)
    >>> tome_schedule(cfg, 8, count_macs(cfg.replace(schedule=(1,)), 8)["total"])
    (3, 3, 3, 3)
    """
    check_tome(cfg, (0,) * cfg.depth)
    if not isinstance(target_macs, numbers.Real) or isinstance(target_macs, bool) or not (
        math.isfinite(target_macs) and target_macs > 0
    ):
        raise ValueError(f"target_macs must be a positive finite number of MACs, got {target_macs!r}")
    candidates = [constant_r(cfg, k) for k in range(most_merges(cfg.num_tokens) + 1)]
    return min(candidates, key=lambda s: abs(tome_macs(cfg, frames, s)["total"] - target_macs))
