"""The models the experiment trains, built from the public pieces of `torch_impl.InTIModel`
(`embed`, `blocks`, `merges`, `ln_post`, `head`), so that every one keeps InTIModel's
parameter names and the training engine's parameter groups (`inti.train.optim`) apply as they
are: ``merges.*`` is θ (and the hard selector's scorer), ``head.*`` the classifier, names holding
``temporal`` the temporal parts (ST-Adapter, the attention pool's query, RLT's length
embedding), everything else the frozen or fine-tuned backbone.

`ArmModel` reads one of three inputs, so that a frozen backbone is run once per clip and cached
(`cache.py`), never once per training step:

- ``pixels`` (b, T, 3, H, W): the whole model (full fine-tuning);
- ``block1`` (b, T, N, C): the first block's output, frozen (every arm whose first block is the
  image model's own: InTI, hard selection, random token dropping, the temporal modules after
  the merge);
- ``features`` (b, T, C): ln_post of every frame's class token after the last block, frozen
  (naive adaptation with any pooling, frame dropping, ToMe): only the pooling and the head
  train, exactly as if the frozen model ran at every step.

After block k (`after`): InTI's merge Φ where k is in the schedule (or hard selection, its
discrete twin), and random token dropping after `drop_after`. Pooling over frames: the mean
(the model's own readout), the max, or attention with a learned query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import ref
from torch_impl import InTIModel
from torch_impl.embed import patchify
from torch_impl.interpolation import interpolate, pair

ENTRIES = ("pixels", "block1", "features")
POOLS = ("mean", "max", "attn")
REDUCES = ("merge", "hard")


class ArmModel(InTIModel):
    """forward(x, return_trace=False) -> logits, or (logits, trace) with the merges' weights
    (``merges.{j}.weights``, (b, t, N)), the frames' features and the pooled feature.

    reduce: "merge" (InTI's Φ) or "hard" (per pair, the frame whose mean θ score is higher is
    kept and the other dropped; trained through the pair's softmax, straight through [ours]).
    keep: random token dropping after block `drop_after`: `keep` random patch tokens of every
    frame stay, the class token always (in evaluation a fixed generator, so the test is
    repeatable)."""

    def __init__(self, cfg, entry: str = "pixels", pool: str = "mean", reduce: str = "merge",
                 keep: int | None = None, drop_after: int = 1):
        super().__init__(cfg)
        if entry not in ENTRIES or pool not in POOLS or reduce not in REDUCES:
            raise ValueError(f"entry, pool, reduce must be in {ENTRIES}, {POOLS}, {REDUCES}; got {entry}, {pool}, {reduce}")
        if keep is not None and not 0 < keep < cfg.num_patches:
            raise ValueError(f"keep must be between 1 and {cfg.num_patches - 1} patch tokens, got {keep}")
        self.entry, self.pool, self.reduce, self.keep, self.drop_after = entry, pool, reduce, keep, drop_after
        if pool == "attn":  # one learned query over the frames' features; zeros: the mean at init
            self.temporal_pool = nn.Parameter(torch.zeros(cfg.width))

    def after(self, k: int, h: torch.Tensor, trace: dict) -> torch.Tensor:
        """What follows block k (counted from 1): a merge, hard selection, token dropping."""
        if k in self.cfg.schedule:
            j = self.cfg.schedule.index(k)
            if self.reduce == "hard":
                h, weights = self.select(j, h)
            else:
                h, decided = self.merges[j](h)
                weights = decided["weights"]
            trace[ref.merge_key(j, "weights")] = weights
        if self.keep is not None and k == self.drop_after:
            h = self.drop_tokens(h)
        return h

    def select(self, j: int, h: torch.Tensor):
        """Hard selection: θ's scores (the same inputs as InTI's), averaged over each frame's
        tokens; of each pair the better frame is kept whole. In training the forward is the
        hard choice and the gradient the pair softmax's (a straight-through estimator)."""
        frame = self.merges[j].predict_scores(h).mean(dim=-1)  # (b, t)
        soft = torch.softmax(pair(frame), dim=2)  # (b, t/2, 2)
        hard = F.one_hot(soft.argmax(dim=2), 2).to(soft.dtype)
        chosen = hard + soft - soft.detach() if self.training else hard
        weights = chosen.flatten(1, 2)[:, :, None].expand(h.shape[:-1])  # (b, t, N)
        return interpolate(h, weights), weights

    def drop_tokens(self, h: torch.Tensor) -> torch.Tensor:
        """`keep` random patch tokens of every frame, in their order, after the class token."""
        b, t, n, c = h.shape
        generator = None if self.training else torch.Generator().manual_seed(0)
        noise = torch.rand(b, t, n - 1, generator=generator)
        kept = noise.argsort(dim=-1)[..., : self.keep].sort(dim=-1).values + 1
        index = torch.cat([kept.new_zeros(b, t, 1), kept], dim=-1)
        return h.gather(2, index[..., None].expand(-1, -1, -1, c))

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """(b, t, C) frame features -> (b, C)."""
        if self.pool == "mean":
            return features.mean(dim=1)
        if self.pool == "max":
            return features.amax(dim=1)
        attention = torch.softmax(features @ self.temporal_pool / math.sqrt(features.shape[-1]), dim=1)
        return (attention[..., None] * features).sum(dim=1)

    def frames(self, x: torch.Tensor, trace: dict) -> torch.Tensor:
        """The input -> ln_post of every frame's class token after the last block, (b, t, C)."""
        if self.entry == "features":
            return x
        if self.entry == "pixels":
            h, first = self.embed(x), 0
        else:
            h, first = self.after(1, x, trace), 1
        for i in range(first, len(self.blocks)):
            h = self.after(i + 1, self.blocks[i](h), trace)
        return self.ln_post(h[:, :, 0])

    def forward(self, x: torch.Tensor, return_trace: bool = False, check: bool = True):
        trace: dict[str, torch.Tensor] = {}
        features = self.frames(x, trace)
        pooled = self.pooled(features)
        logits = self.head(self.proj(pooled))
        if check and not torch.isfinite(logits).all():
            raise ValueError("the model's output holds NaN or infinite values")
        if not return_trace:
            return logits
        return logits, trace | {"frames": features, "pooled": pooled, "logits": logits}


def run_lengths(video: torch.Tensor, patch: int, threshold: float):
    """Run-length tokenization's decision [RLT, Choudhury et al., NeurIPS 2024]: a patch whose
    mean absolute difference from the same patch of the previous frame is below `threshold`
    repeats it and is dropped; a kept patch's length is 1 + the frames it stands for.
    video (b, T, 3, H, W) -> keep (b, T, L) bool, length (b, T, L) long."""
    patches = patchify(video, patch)  # (b, T, L, 3 P P)
    static = (patches[:, 1:] - patches[:, :-1]).abs().mean(dim=-1) < threshold  # (b, T-1, L)
    keep = torch.cat([torch.ones_like(static[:, :1]), ~static], dim=1)
    length = torch.ones(keep.shape, dtype=torch.long)
    for t in range(keep.shape[1] - 2, -1, -1):  # a run continues through the dropped frames after t
        length[:, t] += torch.where(keep[:, t + 1], 0, length[:, t + 1])
    return keep, length


class RunLengthModel(InTIModel):
    """RLT on the frame-wise image model [ours: RLT packs one space-time sequence; here each
    frame attends within itself, as every arm does, over its kept tokens only]. The dropped
    tokens are masked out of attention (a key of size 0, ToMe's proportional attention with
    log 0 = -inf) and never reach the readout; the kept patch tokens get a learned length
    embedding (zeros at init, so the model starts as the image model on the kept tokens)."""

    def __init__(self, cfg, threshold: float, frames: int):
        super().__init__(cfg)
        self.threshold = float(threshold)
        self.run_length = nn.Module()
        # named temporal_embed: the temporal group's lr, and no weight decay (an embedding)
        self.run_length.temporal_embed = nn.Parameter(torch.zeros(frames + 1, cfg.width))

    def forward(self, video: torch.Tensor, return_trace: bool = False, check: bool = True):
        keep, length = run_lengths(video, self.cfg.patch_size, self.threshold)
        h = self.embed(video)  # (b, T, N, C)
        lengths = self.run_length.temporal_embed[length] * keep[..., None]
        h = torch.cat([h[:, :, :1], h[:, :, 1:] + lengths], dim=2)
        size = torch.cat([torch.ones_like(keep[..., :1]), keep], dim=-1).to(h.dtype)  # (b, T, N)
        for blk in self.blocks:
            h = h + blk.attn(blk.norm1(h), size)
            h = h + blk.mlp(blk.norm2(h))
        features = self.ln_post(h[:, :, 0])
        logits = self.head(self.proj(features.mean(dim=1)))
        if check and not torch.isfinite(logits).all():
            raise ValueError("the model's output holds NaN or infinite values")
        if not return_trace:
            return logits
        return logits, {"frames": features, "logits": logits, "kept": keep}
