"""The evidence experiment's data: digits on clutter, and four video tasks built from them.

Everything is a pure function of (task, split, index, seed), so a clip is the same on every
call and on every machine, and the splits never share a source:

- the digits are scikit-learn's 1,797 8x8 images (`load_digits`), cut by a fixed permutation
  into train (60%), val (20%) and test (20%) images;
- the clutter is cropped from scikit-image's bundled sample photographs, downscaled; each
  photograph's rows are cut into train (top 60%), val (next 20%) and test (bottom 20%), so no
  crop of one split overlaps a crop of another.

A digit is upscaled to 12-18 px, given a bright colour and pasted with its ink as alpha on a
32 x 32 clutter crop (dimmed to `CLUTTER_GAIN` of its brightness). The tasks (`TASKS`):

- ``image``: one frame, label the digit; the image model is pretrained on it (10 classes).
- ``informative``: 8 frames of one clutter crop (a camera shake of up to 2 px between frames);
  the digit shows in only `K_SHOWN` = 2 random frames, at a random place in each; label the
  digit (10 classes). A learned merge should put its weight on the digit frames.
- ``all_frames``: the digit shows in every frame, each time degraded on its own: jittered by up
  to 2 px, faded to 30-80% of its ink, partly hidden behind a patch of clutter, with pixel
  noise (10 classes). Every frame carries evidence and none carries all of it, so more frames
  help: the case of Kinetics-like video, where a reduction must not lose what it merges.
- ``motion``: the digit crosses a still clutter crop in one of four directions (right, left,
  down, up) over 8 frames; label the direction (4 classes). Right and left visit the same
  places in reverse order (so do down and up): a frame-wise model with mean pooling sees the
  same set of frames for both and can tell only the axis.
- ``arrow``: the arrow of time on a real photograph: a drop of dye diffuses over a clutter
  crop (a Gaussian spot whose variance grows linearly in time at constant mass, composited by
  its optical density), played forward (label 0) or reversed (label 1, ink gathering into a
  drop, which diffusion never does). Clips 2i and 2i + 1 are one scene played both ways, so
  every split holds each scene both ways and a model blind to the order of frames gives both
  the same answer: 50% exactly.

    >>> frames, label, info = task_clip("informative", "test", index=0)
    >>> frames.shape, frames.dtype, len(info["digit_frames"])
    ((8, 32, 32, 3), dtype('uint8'), 2)
    >>> to_input(frames).shape
    (8, 3, 32, 32)
"""

from __future__ import annotations

import functools

import numpy as np

from ref.preprocess import normalize, positive_int

SIZE, FRAMES, K_SHOWN = 32, 8, 2
SPLITS = ("train", "val", "test")
# Each task's stream of random numbers; the first four are those of the experiment's first
# version, so its clips (and the shipped checkpoint's test clips) are unchanged.
STREAMS = {"image": 0, "informative": 1, "motion": 2, "arrow": 3, "all_frames": 4}
TASKS = tuple(STREAMS)
VIDEO_TASKS = ("informative", "all_frames", "motion", "arrow")
CLASSES = {"image": 10, "informative": 10, "all_frames": 10, "motion": 4, "arrow": 2}
DIRECTIONS = ("right", "left", "down", "up")
CLUTTER_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                   "camera", "coins", "grass", "gravel", "brick", "moon")
SHARES = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}  # of digits and of rows
# The clutter at half its brightness: at full contrast the image model of this size overfit its
# 1,078 training digits (pilot, val split: 23% val top-1 against 78% at half brightness).
CLUTTER_GAIN = 0.5
# all_frames: how each frame degrades the digit (calibrated on val so that one frame alone is
# far from enough and eight are clearly better than two; experiments/evidence/pilots.jsonl).
JITTER, INK, HIDDEN, NOISE = 2, (0.6, 1.0), (0.2, 0.45), 0.03
# arrow: the spot's standard deviation in px at the first and last frame, and its mass
DYE_SIGMA0, DYE_SIGMA1, DYE_MASS = (1.0, 2.0), (8.0, 12.0), (120.0, 240.0)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def _needs(module: str):
    raise ImportError(f"the evidence experiment needs {module}: pip install 'inti[experiments]'") from None


@functools.cache
def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        _needs("scikit-learn")
    return load_digits()


def digit_indices(split: str) -> np.ndarray:
    """The indices into scikit-learn's digits that belong to `split` (a fixed permutation, cut
    60/20/20)."""
    order = np.random.default_rng(20240813).permutation(len(_load_digits().target))
    lo, hi = (round(s * len(order)) for s in SHARES[_check_split(split)])
    return order[lo:hi]


@functools.cache
def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 8, 8) float in [0, 1], labels (n,)) of one split of scikit-learn's digits."""
    data, mine = _load_digits(), digit_indices(split)
    return data.images[mine] / 16.0, data.target[mine].astype(np.int64)


@functools.cache
def clutter(split: str) -> tuple[np.ndarray, ...]:
    """The split's rows of each sample photograph, RGB float in [0, 1], downscaled so that a
    32 px crop holds a patch of texture, not a flat colour (the short side to 200 px, so that
    even a 20% share of the rows holds a 36 px crop)."""
    try:
        import skimage.data
        from skimage.transform import rescale
    except ImportError:
        _needs("scikit-image")
    lo, hi = SHARES[_check_split(split)]
    out = []
    for name in CLUTTER_SOURCES:
        image = np.asarray(getattr(skimage.data, name)(), dtype=np.float64)
        image = image / (255.0 if image.max() > 1 else 1.0)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = rescale(image[..., :3], 200 / min(image.shape[:2]), channel_axis=-1, anti_aliasing=True)
        rows = image[round(lo * image.shape[0]):round(hi * image.shape[0])]
        if rows.shape[0] >= SIZE + 4:
            out.append(rows)
    return tuple(out)


def _clutter_crop(rng: np.random.Generator, split: str, side: int = SIZE + 4) -> np.ndarray:
    """A (side, side, 3) crop of one clutter photograph of `split`, at CLUTTER_GAIN of its
    brightness."""
    sources = clutter(split)
    image = sources[rng.integers(len(sources))]
    top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
    return CLUTTER_GAIN * image[top:top + side, left:left + side]


def _ink_colour(rng: np.random.Generator) -> np.ndarray:
    """A bright saturated colour, so that the ink stands out from most clutter."""
    hue = rng.random()
    colour = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    return 0.35 + 0.65 * colour


def _glyph(rng: np.random.Generator, split: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(alpha (s, s) in [0, 1], colour (3,), label): a digit of `split`, upscaled to 12-18 px."""
    from scipy.ndimage import zoom

    images, labels = digits(split)
    i = rng.integers(len(labels))
    side = int(rng.integers(12, 19))
    alpha = np.clip(zoom(images[i], side / 8, order=1), 0, 1)
    return alpha, _ink_colour(rng), int(labels[i])


def _paste(frame: np.ndarray, alpha: np.ndarray, colour: np.ndarray, top: int, left: int) -> None:
    s = alpha.shape[0]
    region = frame[top:top + s, left:left + s]
    region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]


def _uint8(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)


def _shaken(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """FRAMES crops of a (SIZE + 4)-px background, each shifted by up to 2 px: a camera shake."""
    shifts = rng.integers(0, 5, size=(FRAMES, 2))
    return np.stack([background[dy:dy + SIZE, dx:dx + SIZE] for dy, dx in shifts]).copy()


def digit_frame(rng, split):
    """The image task: one frame, a digit on clutter."""
    background = _clutter_crop(rng, split, SIZE).copy()
    alpha, colour, label = _glyph(rng, split)
    top, left = rng.integers(0, SIZE - alpha.shape[0] + 1, size=2)
    _paste(background, alpha, colour, top, left)
    return _uint8(background[None]), label, {}


def sparse_digit_clip(rng, split, k: int = K_SHOWN):
    """informative: the digit in k random frames of 8 only."""
    background = _clutter_crop(rng, split)
    alpha, colour, label = _glyph(rng, split)
    frames = _shaken(rng, background)
    shown = np.sort(rng.choice(FRAMES, size=k, replace=False))
    for f in shown:
        top, left = rng.integers(0, SIZE - alpha.shape[0] + 1, size=2)
        _paste(frames[f], alpha, colour, top, left)
    return _uint8(frames), label, {"digit_frames": [int(f) for f in shown]}


def degraded_digit_clip(rng, split):
    """all_frames: the digit in every frame, each frame degraded on its own (jitter, fading, a
    clutter patch over part of it, noise)."""
    background = _clutter_crop(rng, split)
    alpha, colour, label = _glyph(rng, split)
    frames = _shaken(rng, background)
    s = alpha.shape[0]
    top, left = rng.integers(JITTER, SIZE - s - JITTER + 1, size=2)
    for f in range(FRAMES):
        dy, dx = rng.integers(-JITTER, JITTER + 1, size=2)
        ink = alpha * rng.uniform(*INK)
        h, w = (np.round(rng.uniform(*HIDDEN, size=2) * s)).astype(int)
        y, x = rng.integers(0, s - h + 1), rng.integers(0, s - w + 1)
        ink[y:y + h, x:x + w] = 0  # the clutter shows through where the occluder sits
        _paste(frames[f], ink, colour, top + dy, left + dx)
    frames = frames + rng.normal(0.0, NOISE, size=frames.shape)
    return _uint8(frames), label, {}


def crossing_digit_clip(rng, split):
    """motion: the digit crosses a still crop right, left, down or up."""
    background = _clutter_crop(rng, split, SIZE)
    alpha, colour, digit = _glyph(rng, split)
    label = int(rng.integers(len(DIRECTIONS)))
    s = alpha.shape[0]
    along = np.linspace(0, SIZE - s, FRAMES).round().astype(int)  # right and down; reversed: left and up
    if label in (1, 3):
        along = along[::-1]
    across = int(rng.integers(0, SIZE - s + 1))
    frames = np.repeat(background[None], FRAMES, axis=0)
    for f, pos in enumerate(along):
        top, left = (across, pos) if label < 2 else (pos, across)
        _paste(frames[f], alpha, colour, top, left)
    return _uint8(frames), label, {"digit": digit}


def diffusing_dye_clip(rng, split, label: int):
    """arrow: a drop of dye diffusing over a photograph, forward (label 0) or reversed (1).

    The spot's concentration is Gaussian with variance s0^2 + (s1^2 - s0^2) t / 7 (diffusion:
    linear in time) and a constant mass, and it dims the photograph by its optical density:
    alpha = 1 - exp(-c). Pixel noise is drawn per frame, so reversing a clip reverses it too."""
    background = _clutter_crop(rng, split, SIZE)
    colour = _ink_colour(rng)
    cy, cx = rng.uniform(8, SIZE - 8, size=2)
    s0, s1, mass = rng.uniform(*DYE_SIGMA0), rng.uniform(*DYE_SIGMA1), rng.uniform(*DYE_MASS)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    frames = []
    for t in range(FRAMES):
        var = s0**2 + (s1**2 - s0**2) * t / (FRAMES - 1)
        alpha = 1 - np.exp(-mass / (2 * np.pi * var) * np.exp(-r2 / (2 * var)))
        frames.append(background * (1 - alpha[..., None]) + colour * alpha[..., None])
    frames = np.stack(frames) + rng.normal(0.0, NOISE / 2, size=(FRAMES, SIZE, SIZE, 3))
    return _uint8(frames[::-1] if label else frames), label, {}


GENERATORS = {"image": digit_frame, "informative": sparse_digit_clip, "all_frames": degraded_digit_clip,
              "motion": crossing_digit_clip, "arrow": diffusing_dye_clip}


def task_clip(task: str, split: str, index: int, seed: int = 0):
    """Clip `index` of `task`'s `split`: (frames (T, 32, 32, 3) uint8, label, info), the same on
    every call. info: "digit_frames" (informative), "digit" (motion)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    _check_split(split)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    if task == "arrow":  # one scene per pair of clips, played forward then reversed
        rng = np.random.default_rng([int(seed), STREAMS[task], SPLITS.index(split), int(index) // 2])
        return GENERATORS[task](rng, split, int(index) % 2)
    rng = np.random.default_rng([int(seed), STREAMS[task], SPLITS.index(split), int(index)])
    return GENERATORS[task](rng, split)


def to_input(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> the model's float32 input (T, 3, H, W), CLIP's statistics."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return normalize(frames.astype(np.float32) / 255.0).astype(np.float32)


def make_split(task: str, split: str, count: int, seed: int = 0):
    """(videos (n, T, 3, 32, 32) float32, labels (n,) int64, infos) for the first `count` clips."""
    clips = [task_clip(task, split, i, seed) for i in range(positive_int(count, "count"))]
    videos = np.stack([to_input(c[0]) for c in clips])
    return videos, np.array([c[1] for c in clips], dtype=np.int64), [c[2] for c in clips]
