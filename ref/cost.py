"""The analytic cost model (spec/00-method.md §4): MACs per part, and what a matmul counter sees.

Convention [ours, §4]: one multiply-accumulate = 1 MAC (what fvcore and video papers
call "FLOPs"); torch's FlopCounterMode reports 2 x MACs. Every matrix product, einsum,
convolution and the interpolation's multiplies count; normalization, softmax, activations,
means and additions do not; biases are ignored.
"""

from __future__ import annotations

from .checks import check_frames
from .config import ModelConfig


def attention_macs(cfg: ModelConfig, n: int) -> int:
    """The attention sublayer on n tokens of one frame: n*C*3C (qkv) + 2*n*n*C (scores,
    weights x values) + n*C*C (proj)."""
    C = cfg.width
    return n * C * 3 * C + 2 * n * n * C + n * C * C


def mlp_macs(cfg: ModelConfig, n: int) -> int:
    """The MLP on n tokens of one frame: 2*n*C*4C, with the MLP width in place of 4C."""
    return 2 * n * cfg.width * cfg.mlp_width


def block_macs(cfg: ModelConfig) -> int:
    """One block on one frame: N*C*3C (qkv) + 2*N*N*C (scores, weights x values) + N*C*C (proj)
    + 2*N*C*4C (MLP, with the MLP width in place of 4C)."""
    return attention_macs(cfg, cfg.num_tokens) + mlp_macs(cfg, cfg.num_tokens)


def patch_embed_macs(cfg: ModelConfig) -> int:
    """One frame: L * 3P^2 * C."""
    return cfg.num_patches * 3 * cfg.patch_size**2 * cfg.width


def merge_macs(cfg: ModelConfig, frames: int) -> dict[str, int]:
    """Φ at a stage with T = frames, for one clip: θ's parts and the interpolation.

    T*N*C*d (reduce) + T*N*d*d (token) + T*L*d*27 (local) + T*d*d (frame) + d*d (clip)
    + T*N*d (score; times C for channel granularity) + T*N*C (interpolation).
    """
    T, N, L, C, d = frames, cfg.num_tokens, cfg.num_patches, cfg.width, cfg.predictor_width
    parts = {"reduce": T * N * C * d}
    if "token" in cfg.branches:
        parts["token"] = T * N * d * d
    if "local" in cfg.branches:
        parts["local"] = T * L * d * 27
    if "frame" in cfg.branches:
        parts["frame"] = T * d * d
    if "clip" in cfg.branches:
        parts["clip"] = d * d
    parts["score"] = T * N * d * (C if cfg.weight_granularity == "channel" else 1)
    if cfg.weight_fn == "mean":  # no scores are needed: the predictor is never run
        parts = {k: 0 for k in parts}
    parts["interpolation"] = T * N * C
    return parts


def temporal_macs(cfg: ModelConfig, frames: int) -> dict[str, int]:
    """One block's temporal module (spec/00-method.md §12.3) at a stage with T = frames, for one
    clip, by part; {} without a module.

    ST-Adapter, per placement p ("attn", "mlp"): T*L*C*C_a (fc1) + T*L*C_a*3 (the (3, 1, 1)
    conv, the padded taps counted as torch counts them) + T*L*C_a*C (fc2), patch tokens only.
    AIM: ``temporal_attention`` N*T*C*3C (qkv) + 2*N*T*T*C (scores, weights x values over time)
    + N*T*C*C (proj), and each of ``t_adapter``, ``s_adapter``, ``mlp_adapter`` 2*T*N*C*C_a.
    The temporal embedding is an addition and costs nothing.
    """
    T, N, L, C, Ca = frames, cfg.num_tokens, cfg.num_patches, cfg.width, cfg.adapter_width
    if cfg.temporal == "st_adapter":
        one = T * L * C * Ca + T * L * Ca * 3 + T * L * Ca * C
        return {p: one for p in ("attn", "mlp") if p in cfg.temporal_placement}
    if cfg.temporal == "aim":
        adapter = 2 * T * N * C * Ca
        return {
            "temporal_attention": N * T * C * 3 * C + 2 * N * T * T * C + N * T * C * C,
            "t_adapter": adapter,
            "s_adapter": adapter,
            "mlp_adapter": adapter,
        }
    return {}


def head_macs(cfg: ModelConfig) -> int:
    """One clip: C*E (projection) + E*K (head), each only where the model has it."""
    proj = cfg.width * cfg.embed_dim if cfg.embed_dim is not None else 0
    return proj + cfg.feature_dim * cfg.num_classes


def count_macs(cfg: ModelConfig, frames: int, batch: int = 1) -> dict:
    """MACs of InTI on `batch` clips of `frames` frames (spec/00-method.md §4).

    Returns a dict of ints: ``patch_embed``, ``blocks``, ``temporal`` (only with a temporal
    module: the modules of spec/00-method.md §12.3, each at the frames left at its block),
    ``predictor``, ``interpolation``, ``head``, ``total``; ``matmul``, the part a matrix-product
    counter such as FlopCounterMode sees (everything but the elementwise interpolation); and
    ``per_block``, a list of (frames, MACs) for each block in order, the image block alone
    (a module's share is ``temporal_macs(cfg, frames)``).
    """
    check_frames(frames, cfg)  # a positive integer that the schedule can halve
    frames = int(frames)
    t, per_block, predictor, interpolation, temporal = frames, [], 0, 0, 0
    modules = set(cfg.module_blocks)
    for i in range(1, cfg.depth + 1):
        per_block.append((t, batch * t * block_macs(cfg)))
        if i in modules:
            temporal += batch * sum(temporal_macs(cfg, t).values())
        if i in cfg.schedule:
            parts = merge_macs(cfg, t)
            interpolation += batch * parts.pop("interpolation")
            predictor += batch * sum(parts.values())
            t //= 2
    out = {
        "patch_embed": batch * frames * patch_embed_macs(cfg),
        "blocks": sum(m for _, m in per_block),
        **({"temporal": temporal} if cfg.temporal != "none" else {}),
        "predictor": predictor,
        "interpolation": interpolation,
        "head": batch * head_macs(cfg),
    }
    out["total"] = sum(out.values())
    out["matmul"] = out["total"] - out["interpolation"]
    out["per_block"] = per_block
    return out


def compare(cfg: ModelConfig, frames: int, batch: int = 1) -> dict:
    """Naive adaptation against InTI: the project's one naive-versus-InTI cost comparison.

    Naive is the same config with an empty schedule (spec/00-method.md §5, invariant 5). Returns
    ``{"naive": count_macs(naive), "inti": count_macs(cfg), "reduction": {part: 1 - InTI/naive}}``
    with the reduction for the blocks alone and for the total (predictor included); with
    temporal modules (spec/00-method.md §12.3), both sides keep them ("naive + module" against
    "InTI + module"), and the reduction of the modules alone is ``temporal``.

    >>> from ref.config import preset
    >>> round(compare(preset("vit_l14", schedule=(6,)), frames=8)["reduction"]["blocks"], 4)
    0.375
    """
    inti, naive = (
        count_macs(cfg, frames, batch),
        count_macs(cfg.replace(schedule=()), frames, batch),
    )
    return {
        "naive": naive,
        "inti": inti,
        "reduction": {
            part: 1 - inti[part] / naive[part]
            for part in ("blocks", "total") + (("temporal",) if naive.get("temporal") else ())
        },
    }


def reduction(cfg: ModelConfig, frames: int) -> dict[str, float]:
    """1 - InTI / naive, for the blocks alone and for the total (predictor included): compare's."""
    return compare(cfg, frames)["reduction"]
