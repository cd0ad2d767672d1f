"""Which frames a clip contributes: TSN's segment sampling (Wang et al., ECCV 2016).

The clip's n frames are cut into T segments of integer bounds b_i = floor(i * n / T). Training
takes one frame at a uniformly random offset inside each segment; evaluation takes each
segment's centre, the rule of `ref.preprocess.sample_indices` [ours], so that evaluating a clip
reads the frames `inti demo` reads. Both are strictly increasing, in [0, n), and need n >= T.
Multi-view testing (`views`) shifts the centres by a fraction of a segment.

    >>> segment_indices(10, 4, train=False).tolist()
    [1, 3, 6, 8]
    >>> import numpy as np
    >>> segment_indices(10, 4, train=True, rng=np.random.default_rng(0)).tolist()
    [1, 3, 6, 7]
"""

from __future__ import annotations

import numpy as np

from ref.preprocess import positive_int, sample_indices


def segment_bounds(n: int, frames: int) -> np.ndarray:
    """(T + 1,) integer segment bounds b_i = floor(i * n / T); every segment holds >= 1 frame."""
    n, t = positive_int(n, "num_frames"), positive_int(frames, "frames")
    if n < t:
        raise ValueError(f"the clip has {n} frames, fewer than the {t} asked for")
    return (np.arange(t + 1) * n) // t


def segment_indices(n: int, frames: int, train: bool, rng: np.random.Generator | None = None,
                    view: int = 0, views: int = 1) -> np.ndarray:
    """T frame indices of a clip of n frames: a random offset per segment (train, with `rng`),
    else the centres; view v of `views` temporal views shifts the sampling point to
    (v + 1/2) / views of each segment [ours: the multi-view rule of video papers]."""
    bounds = segment_bounds(n, frames)
    if train:
        if rng is None:
            raise ValueError("training samples need a random generator (rng=)")
        return bounds[:-1] + rng.integers(0, np.diff(bounds))
    if views == 1:
        return sample_indices(n, frames)
    lengths = np.diff(bounds)
    return bounds[:-1] + np.minimum((lengths * (view + 0.5) / views).astype(np.int64), lengths - 1)
