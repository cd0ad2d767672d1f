"""The machine's GEMM rate on the model's own matrix shapes, measured in the same run as the models.

One call of `BlockGemms` runs the four matrix products of one block over the B*T*N tokens of
the naive path: qkv (C -> 3C), proj (C -> C), fc1 (C -> mlp width) and fc2 (mlp width -> C),
each as `F.linear` with a bias, the call the models make. It is timed as a contender among the
others, in the same interleaved rounds, so its rate sees the same machine state; the models'
MAC/s divided by it is their "fraction of peak". float32 rows use float32 operands; both
bfloat16 rows (autocast and pure) use bfloat16 operands, which is what autocast hands the
matrix products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import ref


def gemm_shapes(cfg: ref.ModelConfig, tokens: int) -> dict[str, tuple[int, int, int]]:
    """{name: (M, K, N)}: x (M, K) @ W.T (K, N) for the four GEMMs of one block, M = tokens."""
    C, H = cfg.width, cfg.mlp_width
    return {"qkv": (tokens, C, 3 * C), "proj": (tokens, C, C), "fc1": (tokens, C, H), "fc2": (tokens, H, C)}


class BlockGemms:
    """One block's four GEMMs on random operands: calling it runs them once; `macs` is their sum."""

    def __init__(self, cfg: ref.ModelConfig, tokens: int, dtype: torch.dtype, device: str, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.shapes = gemm_shapes(cfg, tokens)
        self.macs = sum(m * k * n for m, k, n in self.shapes.values())
        inputs = {k: torch.randn(tokens, k, generator=g) for k in {k for _, k, _ in self.shapes.values()}}
        self.operands = [
            (inputs[k], torch.randn(n, k, generator=g) * k**-0.5, torch.randn(n, generator=g))
            for _, k, n in self.shapes.values()
        ]
        self.operands = [tuple(t.to(device, dtype) for t in ops) for ops in self.operands]

    def __call__(self) -> list[torch.Tensor]:
        return [F.linear(x, w, b) for x, w, b in self.operands]


def naive_tokens(cfg: ref.ModelConfig, frames: int, batch: int) -> int:
    """B*T*N: the rows of every GEMM of the naive path (and of InTI's blocks before a merge)."""
    return batch * frames * cfg.num_tokens
