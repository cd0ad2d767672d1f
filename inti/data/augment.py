"""Training augmentation for video: every random parameter is drawn once per clip and applied
to every frame alike [ours: the rule of mmaction2's and PySlowFast's video pipelines], from
torchvision's v2 transforms, which draw their parameters once per call and apply them over
the leading (frame) axis.

`VideoAugment` is the setting. Its default is the training transform of `inti.data.transforms`
exactly (resize the short side, a random crop, a flip with probability 1/2), so nothing
changes unless a recipe asks. The options, in the order they apply:

- ``crop="resized"``: RandomResizedCrop to the model's size after the short side is resized,
  with `scale` (the share of the frame's area) and `ratio` (aspect) [ours: AIM's and
  UniFormerV2's K400 pipelines]; ``crop="random"``: the plain random crop;
- ``flip``: a horizontal flip with probability 1/2 (off for SSv2, whose labels name left and right);
- ``auto_augment``: ``"rand-m{M}-n{N}"`` (RandAugment, N ops of magnitude M; VideoMAE's and
  UniFormerV2's ``rand-m7-n4``) or ``"trivial"`` (TrivialAugmentWide), or ``"none"``;
- ``erase``: the probability of random erasing, one box for the whole clip, filled with the
  mean (zero after normalization) [ours: VideoMAE's 0.25, with a constant fill].

Reproducibility: the draws come from torch's generator, seeded inside a `torch.random.fork_rng`
from the sample's (seed, epoch, index) generator, so a sample is the same whatever the worker
and the global generator is untouched.

`AugmentedVideoList` and `AugmentedSynthetic` are the two datasets of `inti.data.datasets`
with this training transform; evaluation is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ref.preprocess import CLIP_MEAN, CLIP_STD, check_frames_uint8, positive_int

from .datasets import SyntheticVideos, VideoListDataset
from .transforms import clip_transform

CROPS = ("random", "resized")
RAND = re.compile(r"^rand-m(\d+)-n(\d+)$")


@dataclass(frozen=True)
class VideoAugment:
    """The training augmentation of a clip; the module docstring states each field."""

    crop: str = "random"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    auto_augment: str = "none"
    erase: float = 0.0

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        for name, lo, hi in (("scale", 0.0, 1.0), ("ratio", 0.0, 100.0)):
            v = tuple(getattr(self, name))
            if len(v) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) \
                    or not lo < v[0] <= v[1] <= hi:
                raise ValueError(f"{name} must be two numbers lo <= hi in ({lo:g}, {hi:g}], got {getattr(self, name)!r}")
            object.__setattr__(self, name, (float(v[0]), float(v[1])))
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be True or False, got {self.flip!r}")
        if self.auto_augment not in ("none", "trivial") and not RAND.match(str(self.auto_augment)):
            raise ValueError(f"auto_augment must be 'none', 'trivial' or 'rand-m<M>-n<N>' (such as rand-m7-n4), "
                             f"got {self.auto_augment!r}")
        m = RAND.match(str(self.auto_augment))
        if m and not (0 <= int(m.group(1)) <= 30 and 1 <= int(m.group(2)) <= 16):
            raise ValueError(f"RandAugment's magnitude must lie in 0..30 and its op count in 1..16, got {self.auto_augment!r}")
        if isinstance(self.erase, bool) or not isinstance(self.erase, (int, float)) or not 0.0 <= self.erase <= 1.0:
            raise ValueError(f"erase must be a probability in [0, 1], got {self.erase!r}")

    @property
    def plain(self) -> bool:
        """True when this is the default transform of inti.data.transforms (crop and flip only)."""
        return self.crop == "random" and self.auto_augment == "none" and self.erase == 0


def _pipeline(augment: VideoAugment, size: int, resize: int):
    from torchvision.transforms import v2

    steps = [v2.Resize(resize, antialias=True)]
    if augment.crop == "resized":
        steps.append(v2.RandomResizedCrop(size, scale=augment.scale, ratio=augment.ratio, antialias=True))
    else:
        steps.append(v2.RandomCrop(size))
    if augment.flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    m = RAND.match(augment.auto_augment)
    if m:
        steps.append(v2.RandAugment(num_ops=int(m.group(2)), magnitude=int(m.group(1))))
    elif augment.auto_augment == "trivial":
        steps.append(v2.TrivialAugmentWide())
    return v2.Compose(steps)


def augment_clip(frames_uint8: np.ndarray, size: int, resize: int | None, rng: np.random.Generator,
                 augment: VideoAugment = VideoAugment(), mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """(t, h, w, 3) uint8 -> (t, 3, size, size) float32, normalized, every frame transformed
    with the same random parameters, drawn from `rng`."""
    if augment.plain:
        return clip_transform(frames_uint8, size, resize, train=True, rng=rng, flip=augment.flip, mean=mean, std=std)
    import torch
    from torchvision.transforms import v2

    check_frames_uint8(frames_uint8)
    size = positive_int(size, "size")
    resize = size if resize is None else positive_int(resize, "resize")
    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least the crop size ({size})")
    seed = int(rng.integers(2**63))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        video = torch.from_numpy(np.ascontiguousarray(frames_uint8)).permute(0, 3, 1, 2)  # (t, 3, h, w)
        video = _pipeline(augment, size, resize)(video)
        x = video.float().div_(255.0)
        x = (x - torch.tensor(mean, dtype=torch.float32)[:, None, None]) / torch.tensor(std, dtype=torch.float32)[:, None, None]
        if augment.erase > 0:
            x = v2.RandomErasing(p=augment.erase, value=0.0)(x)
    return x.numpy().astype(np.float32, copy=False)


class AugmentedClips:
    """The training transform of a `ClipDataset` replaced by `augment_clip` (a mixin)."""

    def __init__(self, *args, augment: VideoAugment = VideoAugment(), **kwargs):
        if not isinstance(augment, VideoAugment):
            raise TypeError(f"augment must be a VideoAugment, got {type(augment).__name__}")
        if not augment.flip:
            kwargs["flip"] = False
        super().__init__(*args, **kwargs)  # the dataset may turn the flip off itself (the motion task)
        self.augment = augment if self.flip == augment.flip else VideoAugment(**{**augment.__dict__, "flip": self.flip})

    def transform(self, frames_uint8: np.ndarray, index: int, spatial: int = 0) -> np.ndarray:
        if not self.train:
            return super().transform(frames_uint8, index, spatial)
        return augment_clip(frames_uint8, self.size, self.resize, self.rng(index, 1), self.augment, self.mean, self.std)


class AugmentedVideoList(AugmentedClips, VideoListDataset):
    """`VideoListDataset` with a `VideoAugment` training transform (augment=...)."""


class AugmentedSynthetic(AugmentedClips, SyntheticVideos):
    """`SyntheticVideos` with a `VideoAugment` training transform (augment=...)."""
