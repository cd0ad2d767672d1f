"""Decoded frames -> the normalized clip the model reads, for training and for evaluation.

Evaluation is the spec's pipeline (`ref.preprocess`): resize the short side to `resize`,
take the centre `size` x `size` crop, normalize. With resize == size it is exactly
`ref.preprocess.preprocess`, what `inti demo` feeds the model. Training resizes the same way,
then takes a uniformly random `size` x `size` crop and flips it horizontally with
probability 1/2 [ours: the common recipe of mmaction2 and PySlowFast, without scale jitter].
`spatial` picks one of S evenly spaced crops along the long side for multi-view testing.

Mean and std default to CLIP's (`ref.preprocess.CLIP_MEAN`, `CLIP_STD`).
"""

from __future__ import annotations

import numpy as np

from ref.preprocess import CLIP_MEAN, CLIP_STD, check_frames_uint8, normalize, positive_int, resize_short_side


def crop_offsets(h: int, w: int, size: int, rng: np.random.Generator | None = None,
                 spatial: int = 0, spatials: int = 1) -> tuple[int, int]:
    """Top-left corner of a size x size crop: random (rng), centred (spatials == 1), or the
    spatial-th of `spatials` crops spread from one end of the long side to the other."""
    if rng is not None:
        return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    if spatials == 1:
        return (h - size) // 2, (w - size) // 2
    step = lambda extent: (extent - size) * spatial // (spatials - 1)  # noqa: E731
    return (step(h), (w - size) // 2) if h > w else ((h - size) // 2, step(w))


def clip_transform(frames_uint8: np.ndarray, size: int, resize: int | None = None, train: bool = False,
                   rng: np.random.Generator | None = None, flip: bool = True, spatial: int = 0, spatials: int = 1,
                   mean=CLIP_MEAN, std=CLIP_STD, dtype=np.float32) -> np.ndarray:
    """(t, h, w, 3) uint8 -> (t, 3, size, size) normalized, in `dtype`. flip=False turns the
    training flip off (for tasks where left and right differ, such as motion direction)."""
    check_frames_uint8(frames_uint8)
    size = positive_int(size, "size")
    resize = size if resize is None else positive_int(resize, "resize")
    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least the crop size ({size})")
    if train and rng is None:
        raise ValueError("training transforms need a random generator (rng=)")
    frames = resize_short_side(frames_uint8, resize)  # (t, h', w', 3), short side = resize
    top, left = crop_offsets(frames.shape[1], frames.shape[2], size, rng if train else None, spatial, spatials)
    frames = frames[:, top:top + size, left:left + size]
    if train and flip and rng.random() < 0.5:
        frames = frames[:, :, ::-1]
    return normalize(frames, mean, std).astype(dtype)  # resize_short_side gave floats in [0, 1]
