"""Mirror of ref/tome.py: ToMe within each frame (spec/00-method.md §14), the peer baseline.

`ToMeModel(cfg, r)` is `InTIModel(cfg)` with every block patched into a `ToMeBlock`, as ToMe's
`apply_patch` patches a stock timm ViT: the same modules and parameters, so its `state_dict`
keys are InTIModel's for the same cfg (an empty schedule, no temporal module), and a ref
parameter dict or an InTIModel's weights load with `load_state_dict`. The merge is vectorised
over clips and frames, every frame merging the same r tokens (gather and scatter, as ToMe's
`merge.py`); the decision runs without gradient, the weighted average with it.
"""

from __future__ import annotations

import math

import torch

from ref.config import ModelConfig
from ref.tome import check_tome, tome_entries

from .block import Block
from .convert import from_ref_params
from .model import InTIModel


@torch.no_grad()
def bipartite_soft_matching(metric: torch.Tensor, r: int) -> dict:
    """ref.tome.bipartite_soft_matching: (..., n, e) keys averaged over heads -> ``similarity``
    (..., nA, nB), ``src`` and ``dst`` (..., r), ``unm`` (..., nA - r), ``slots`` (..., n).
    Class token protected; ties to the lower position (a stable sort) [ours]. 0 < r <= (n-1)//2."""
    unit = metric / metric.norm(dim=-1, keepdim=True)
    a, b = unit[..., ::2, :], unit[..., 1::2, :]  # (..., nA, e), (..., nB, e)
    similarity = a @ b.transpose(-1, -2)  # (..., nA, nB)
    scores = similarity.clone()
    scores[..., 0, :] = -math.inf  # the class token is protected
    best, match = scores.max(dim=-1)  # (..., nA)
    order = best.argsort(dim=-1, descending=True, stable=True)  # most similar match first
    src, unm = order[..., :r], order[..., r:].sort(dim=-1).values
    dst = match.gather(-1, src)  # (..., r)
    kept = a.shape[-2] - r
    slot_a = torch.empty_like(match).scatter_(-1, unm, torch.arange(kept, device=unm.device).expand_as(unm))
    slot_a.scatter_(-1, src, kept + dst)
    slots = torch.empty(metric.shape[:-1], dtype=torch.long, device=metric.device)  # (..., n)
    slots[..., ::2], slots[..., 1::2] = slot_a, kept + torch.arange(b.shape[-2], device=metric.device)
    return {"similarity": similarity, "src": src, "dst": dst, "unm": unm, "slots": slots}


def merge_wavg(x: torch.Tensor, size: torch.Tensor | None, slots: torch.Tensor, n_out: int):
    """ref.tome.merge_wavg with scatter_add in place of the 0/1 matrix: x (..., n, C), size
    (..., n) or None (all 1), slots (..., n) -> y (..., n_out, C), size (..., n_out)."""
    size = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device) if size is None else size.to(x.dtype)
    size_out = size.new_zeros(*size.shape[:-1], n_out).scatter_add(-1, slots, size)
    y = x.new_zeros(*x.shape[:-2], n_out, x.shape[-1])
    y = y.scatter_add(-2, slots[..., None].expand_as(x), x * size[..., None])
    return y / size_out[..., None], size_out


class ToMeBlock(Block):
    """ref.tome.tome_block. Modifications (of Block, as ToMe's ToMeBlock of timm's):
     - proportional attention: log(size) on each key's logits;
     - ToMe between the attention and the MLP: r tokens of every frame merged away;
     - forward(x, size, r) -> (x, size, decided), the sizes carried to the next block."""

    def forward(self, x: torch.Tensor, size: torch.Tensor | None = None, r: int = 0):
        y, metric = self.attn(self.norm1(x), size, return_metric=True)
        x, decided = x + y, {}
        if r:
            decided = bipartite_soft_matching(metric, r)
            x, size = merge_wavg(x, size, decided["slots"], x.shape[-2] - r)
            decided |= {"tokens": x, "size": size}
        return x + self.mlp(self.norm2(x)), size, decided


class ToMeModel(InTIModel):
    """ToMe within each frame: forward(video (b, T, 3, H, W), return_trace=False) -> logits (b, K),
    or (logits, trace) with ref.tome_forward's entries. r: one merge count per block (`check_tome`).

    Modifications (of InTIModel, as ToMe's apply_patch of a timm ViT):
     - every block is a ToMeBlock, merging r[i] tokens of every frame in block i (from 0);
     - block_step runs it, carrying the token sizes from block to block on the model (ToMe's
       ``_tome_info["size"]``), reset by forward_features; the loop and the readout are
       InTIModel's.
    """

    def __init__(self, cfg: ModelConfig, r, attn_path: str = "sdpa"):
        r = check_tome(cfg, r)
        super().__init__(cfg, attn_path)
        self.r = r
        self._size = None  # (b, T, n): how many input tokens each token stands for; None: all 1
        for blk in self.blocks:
            blk.__class__ = ToMeBlock  # every block is a plain Block: cfg has no temporal module

    def forward_features(self, video: torch.Tensor, *, trace: dict | None = None) -> torch.Tensor:
        self._size = None  # every token is one token before the first merge
        x = super().forward_features(video, trace=trace)  # InTIModel's loop, with block_step below
        self._size = None  # hold no tensor between calls
        return x

    def block_step(self, i: int, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        x, self._size, decided = self.blocks[i](x, self._size, self.r[i])  # (b, T, n - r[i], C)
        if decided and trace is not None:
            trace |= tome_entries(i, decided)
        return x


def tome_from_ref_params(
    params: dict, cfg: ModelConfig, r, dtype: torch.dtype = torch.float64, **model_kwargs
) -> ToMeModel:
    """A `ToMeModel(cfg, r)` holding exactly `params` (`torch_impl.from_ref_params`'s rules)."""
    return from_ref_params(params, cfg, dtype, build=ToMeModel, r=r, **model_kwargs)
