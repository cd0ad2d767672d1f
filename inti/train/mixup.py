"""Mixup and cutmix for video clips, with soft targets [ours: timm's `Mixup` in its "batch"
mode, as VideoMAE and UniFormerV2 use it, with the box of cutmix shared by every frame].

A batch of clips (B, T, 3, H, W) is mixed with itself reversed along the batch, clip b with
clip B-1-b, by one λ drawn for the batch:

- mixup, λ ~ Beta(α_mixup, α_mixup): x = λ x + (1 - λ) x_reversed, every pixel of every frame;
- cutmix, λ0 ~ Beta(α_cutmix, α_cutmix): one box of area (1 - λ0) H W, placed at random and
  clipped to the frame, is pasted from x_reversed into **all T frames at the same place**, so
  that the pasted region is a tube through the clip and never flickers between frames; λ is
  then the share of the frame outside the box after clipping.

The targets are (B, K) probabilities: λ y + (1 - λ) y_reversed, each one-hot label smoothed by
`label_smoothing` first (ε/K on every class, 1 - ε + ε/K on the true one), so each row sums
to 1. A batch is mixed with probability `mix_prob`; with both on, cutmix is chosen with
probability `mix_switch_prob`. Every draw comes from the `torch.Generator` passed in, so a
run seeded by its step resumes exactly.

    >>> import torch
    >>> mix = VideoMixup(mixup=0.8, cutmix=1.0, num_classes=3)
    >>> x, y = mix(torch.zeros(4, 2, 3, 8, 8), torch.tensor([0, 1, 2, 0]), torch.Generator().manual_seed(0))
    >>> y.shape, bool(torch.allclose(y.sum(1), torch.ones(4)))
    (torch.Size([4, 3]), True)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


MIXUP_STREAM = 11  # separates these draws from the data's (seed, epoch, index) streams


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B,) class indices -> (B, K) smoothed one-hot rows, each summing to 1."""
    off = smoothing / num_classes
    return F.one_hot(labels, num_classes).float() * (1.0 - smoothing) + off


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of -sum_k targets_k log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def cutmix_box(h: int, w: int, lam: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) h w pixels, centred uniformly
    at random and clipped to the frame (timm's `rand_bbox`)."""
    ratio = math.sqrt(1.0 - lam)
    bh, bw = int(h * ratio), int(w * ratio)
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    top, bottom = max(cy - bh // 2, 0), min(cy + bh // 2, h)
    left, right = max(cx - bw // 2, 0), min(cx + bw // 2, w)
    return top, bottom, left, right


class VideoMixup:
    """mixup / cutmix for (B, T, 3, H, W) clips; the module docstring states the rule."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, num_classes: int = 0, mix_prob: float = 1.0,
                 switch_prob: float = 0.5, label_smoothing: float = 0.0):
        if mixup < 0 or cutmix < 0 or not (mixup > 0 or cutmix > 0):
            raise ValueError(f"mixup and cutmix are Beta(alpha, alpha) parameters, at least one above 0; "
                             f"got mixup={mixup}, cutmix={cutmix}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"mixing labels needs at least 2 classes, got num_classes={num_classes!r}")
        self.mixup, self.cutmix, self.num_classes = float(mixup), float(cutmix), num_classes
        self.mix_prob, self.switch_prob, self.smoothing = float(mix_prob), float(switch_prob), float(label_smoothing)

    def _beta(self, alpha: float, generator: torch.Generator) -> float:
        # Beta(a, a) as X / (X + Y) with X, Y ~ Gamma(a, 1), drawn from the run's generator
        g = torch._standard_gamma(torch.full((2,), alpha, dtype=torch.float64), generator=generator)
        return float(g[0] / g.sum())

    def __call__(self, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """(videos (B, T, 3, H, W), labels (B,)) -> (mixed videos, targets (B, K))."""
        if videos.dim() != 5:
            raise ValueError(f"video mixup takes clips (B, T, 3, H, W), got shape {tuple(videos.shape)}")
        targets = soft_targets(labels, self.num_classes, self.smoothing).to(videos.device)
        if float(torch.rand((), generator=generator)) >= self.mix_prob:
            return videos, targets
        use_cutmix = self.cutmix > 0 and (self.mixup == 0 or float(torch.rand((), generator=generator)) < self.switch_prob)
        lam = self._beta(self.cutmix if use_cutmix else self.mixup, generator)
        other = videos.flip(0)
        if use_cutmix:
            h, w = videos.shape[-2:]
            top, bottom, left, right = cutmix_box(h, w, lam, generator)
            videos = videos.clone()
            videos[..., top:bottom, left:right] = other[..., top:bottom, left:right]  # every frame alike
            lam = 1.0 - (bottom - top) * (right - left) / (h * w)
        else:
            videos = videos * lam + other * (1.0 - lam)
        return videos, targets * lam + targets.flip(0) * (1.0 - lam)


def step_generator(seed: int, step: int, rank: int = 0, micro: int = 0) -> torch.Generator:
    """The generator of one micro-batch's mixing: a pure function of (seed, step, rank,
    micro-batch), so a resumed run mixes exactly as the uninterrupted one."""
    state = np.random.SeedSequence([int(seed), int(step), int(rank), int(micro), MIXUP_STREAM]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0]) % 2**63)
