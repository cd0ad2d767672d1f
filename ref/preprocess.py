"""Video preprocessing: from decoded uint8 frames to the normalized clip the ViT reads.

This is the executable spec of the input pipeline, in NumPy only (no torch, no decoder).
Decoding a file lives in `inti.io.clips`; everything after decoding lives here, so both
implementations feed the model exactly the same pixels.

The steps, in order (`preprocess` chains them):

1. `sample_indices`     pick T frames spread uniformly over the clip      [ours: segment centres]
2. `resize_short_side`  bilinear resize so the short side is `size`     (CLIP's `Resize(size)`)
3. `center_crop`        keep the central `size x size` square          (CLIP's `CenterCrop(size)`)
4. `normalize`          subtract CLIP's mean, divide by its std, go channels-first

[ours] Crop before resizing. `preprocess` does steps 2 and 3 together, one frame at a time
(`resize_center_crop`): it places the crop window in the resized frame first and computes only
the `size x size` output samples inside it. Each output sample of the bilinear resize depends
only on its own two taps along each axis, so the result is bit for bit
`center_crop(resize_short_side(x, size), size)`, while the memory follows the crop, not the
frame: one 64 x 200000 pixel frame peaks at about 0.5 MB on its way to 64 x 64, not 1.5 GB.
`resize_short_side` and `center_crop` stay the definition of the two steps.

Frame counts and sizes are positive integers (`positive_int`): a Python or NumPy integer, at
least 1, never a bool or a float such as 2.7 or 3.0.

Axis names: `t` frames, `h w` pixel rows and columns, `c` colour channels (RGB).
Decoders give frames channels-last, (t, h, w, c); the model reads channels-first,
(t, c, h, w), and `normalize` is where the layout changes.

[ours] CLIP resizes with PIL's antialiased bicubic filter. We use plain bilinear
interpolation with half-pixel centres, which is short to write, easy to check, and equal to
`torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)`.
Pixels differ slightly from CLIP's own pipeline; the statistics the model sees do not.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange

# Per-channel RGB statistics of CLIP's training images (openai/CLIP `clip/clip.py`).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def positive_int(value, name: str, message: str = "{name} must be a positive integer, got {value}"):
    """`value` as a Python int, if it is a positive integer: a Python or NumPy integer, >= 1.

    A bool, a float (even 3.0), a string or any other non-integer raises TypeError; zero and
    negative integers raise ValueError. `message` is the error text, with `{name}` and `{value}`.

    >>> positive_int(np.int64(8), "frames")
    8
    >>> positive_int(2.7, "frames")
    Traceback (most recent call last):
    TypeError: frames must be a positive integer, got 2.7
    >>> positive_int(0, "size")
    Traceback (most recent call last):
    ValueError: size must be a positive integer, got 0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(message.format(name=name, value=repr(value)))
    if value < 1:
        raise ValueError(message.format(name=name, value=int(value)))
    return int(value)


def sample_indices(num_available: int, frames: int) -> np.ndarray:
    """Indices of `frames` frames spread uniformly over a clip of `num_available` frames.

    [ours] Cut the clip into `frames` equal segments and take the frame at the centre of
    each: index_i = floor((i + 1/2) * n / T). The result is sorted, strictly increasing
    (since n >= T), and lies in [0, n).

    num_available: n, frames in the decoded clip, a non-negative integer.
    frames: T, frames the model wants, a positive integer (`positive_int`).
    Returns: (T,) int64 indices.

    >>> sample_indices(10, 4).tolist()
    [1, 3, 6, 8]
    """
    rule = "{name} must be a positive integer, at least 1 frame, got {name}={value}"
    t = positive_int(frames, "frames", rule)
    if isinstance(num_available, (bool, np.bool_)) or not isinstance(
        num_available, (int, np.integer)
    ):
        raise TypeError(f"num_available must be an integer count of frames, got {num_available!r}")
    n = int(num_available)
    if n < t:
        raise ValueError(f"the clip has {n} frames, fewer than the {t} asked for")
    return ((np.arange(t) + 0.5) * n / t).astype(np.int64)


def _bilinear_taps(
    n_in: int, n_out: int, start: int = 0, count: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source taps for resizing one axis from n_in to n_out samples, half-pixel centres.

    Output sample j sits at x = (j + 1/2) * n_in / n_out - 1/2 in input coordinates
    (pixel centres at integers), clamped to [0, n_in - 1] so the edges repeat.
    start, count: compute the taps of output samples start .. start + count - 1 only (all
    n_out by default); each sample's taps depend on j alone, so they are the same numbers.
    Returns (i0, i1, w), each (count,): out[j] = (1 - w[j]) * in[i0[j]] + w[j] * in[i1[j]].
    """
    count = n_out - start if count is None else count
    x = (np.arange(start, start + count) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, x - i0


def _interpolate(x: np.ndarray, i0, i1, w, axis: int, scale: float | None = None) -> np.ndarray:
    """Along `axis`: out[.., j, ..] = (1 - w[j]) * x[.., i0[j], ..] + w[j] * x[.., i1[j], ..].

    scale: if given, each tap read is first converted, float64(x) * scale (uint8 to [0, 1]),
    the same numbers as converting all of `x` first, without a float copy of all of `x`.
    The products and the sum are done in place, in the same order: the same float64 result.
    """
    w = w.reshape([-1 if a == axis else 1 for a in range(x.ndim)])  # broadcast along `axis`
    lo, hi = np.take(x, i0, axis=axis), np.take(x, i1, axis=axis)
    lo, hi = lo.astype(np.float64, copy=False), hi.astype(np.float64, copy=False)  # fresh arrays
    if scale is not None:
        lo *= scale
        hi *= scale
    lo *= 1.0 - w
    hi *= w
    lo += hi
    return lo


def _resize_axis(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Bilinear resize of `x` along one axis to `n_out` samples (other axes unchanged)."""
    i0, i1, w = _bilinear_taps(x.shape[axis], n_out)
    return _interpolate(x, i0, i1, w, axis)


def _short_side_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h', w') of a frame resized so its short side is `size`: the long side is floored."""
    if h <= w:
        return size, int(w * size / h)
    return int(h * size / w), size


def resize_short_side(frames_uint8: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of every frame so its short side is `size` pixels, keeping aspect.

    The long side becomes floor(long * size / short), as in torchvision's `Resize(size)`.
    Bilinear is separable: resize rows (h), then columns (w). One frame at a time, so
    memory stays at one float frame however long the clip.

    frames_uint8: (t, h, w, 3) uint8 in [0, 255]; a float array is taken as already in [0, 1].
    size: target length of the short side.
    Returns: (t, h', w', 3) float64 in [0, 1], min(h', w') == size.
    """
    t, h, w, c = frames_uint8.shape
    size = positive_int(size, "size")
    new_h, new_w = _short_side_shape(h, w, size)
    scale = 1.0 / 255.0 if frames_uint8.dtype == np.uint8 else 1.0

    out = np.empty((t, new_h, new_w, c), dtype=np.float64)
    for i in range(t):  # a loop over frames only; each frame is fully vectorised
        frame = frames_uint8[i].astype(np.float64) * scale  # (h, w, c)
        frame = _resize_axis(frame, new_h, axis=0)  # (h', w, c)
        out[i] = _resize_axis(frame, new_w, axis=1)  # (h', w', c)
    return out


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """The central `size x size` square of every frame.

    The top-left corner is ((h - size) // 2, (w - size) // 2); when the margin is odd the
    extra pixel is dropped at the bottom or right.

    frames: (t, h, w, c), h >= size and w >= size.
    Returns: (t, size, size, c), a view of `frames`.
    """
    t, h, w, c = frames.shape
    size = positive_int(size, "size")
    if size > h or size > w:
        raise ValueError(
            f"center crop of {size}x{size} pixels needs frames at least that large, got {h}x{w}"
        )
    top, left = (h - size) // 2, (w - size) // 2
    return frames[:, top : top + size, left : left + size, :]


def resize_center_crop(frames_uint8: np.ndarray, size: int) -> np.ndarray:
    """`center_crop(resize_short_side(frames, size), size)`, computing only the kept samples.

    [ours] The crop window is placed in the resized frame first: output rows top .. top + size
    and columns left .. left + size, with top = (h' - size) // 2 and left = (w' - size) // 2
    as `center_crop` places them. Only the input pixels their taps read are gathered and
    converted, then the same bilinear arithmetic runs in the same order (rows, then columns),
    so the result is bit for bit the composition. Memory per frame is O(size^2), however
    large the frame.

    frames_uint8: (t, h, w, 3) uint8 in [0, 255]; a float array is taken as already in [0, 1].
    size: side of the square, in pixels.
    Returns: (t, size, size, 3) float64 in [0, 1].

    >>> x = np.random.default_rng(0).integers(0, 256, size=(2, 30, 70, 3), dtype=np.uint8)
    >>> y = resize_center_crop(x, 16)
    >>> y.shape, np.array_equal(y, center_crop(resize_short_side(x, 16), 16))
    ((2, 16, 16, 3), True)
    """
    t, h, w, c = frames_uint8.shape
    size = positive_int(size, "size")
    new_h, new_w = _short_side_shape(h, w, size)
    top, left = (new_h - size) // 2, (new_w - size) // 2  # as center_crop places the window
    r0, r1, wr = _bilinear_taps(h, new_h, top, size)  # (size,) taps of the kept output rows
    c0, c1, wc = _bilinear_taps(w, new_w, left, size)  # (size,) taps of the kept output columns
    rows, r_at = np.unique(np.concatenate([r0, r1]), return_inverse=True)  # input rows read
    cols, c_at = np.unique(np.concatenate([c0, c1]), return_inverse=True)  # input columns read
    scale = 1.0 / 255.0 if frames_uint8.dtype == np.uint8 else 1.0

    out = np.empty((t, size, size, c), dtype=np.float64)
    for i in range(t):
        frame = frames_uint8[i][np.ix_(rows, cols)]  # (rows, cols, c), the input pixels read
        frame = _interpolate(frame, r_at[:size], r_at[size:], wr, 0, scale)  # (size, cols, c)
        out[i] = _interpolate(frame, c_at[:size], c_at[size:], wc, axis=1)  # (size, size, c)
    return out


def normalize(frames: np.ndarray, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """Standardize each colour channel and move channels first.

    y[t, c, h, w] = (x[t, h, w, c] - mean[c]) / std[c]

    frames: (t, h, w, 3) float in [0, 1].
    mean, std: (3,) per-channel statistics, CLIP's by default.
    Returns: (t, 3, h, w), same float dtype as the input (float64 for integer input).
    """
    dtype = frames.dtype if np.issubdtype(frames.dtype, np.floating) else np.float64
    mean = np.asarray(mean, dtype=dtype)  # (c,) broadcasts over the last axis
    std = np.asarray(std, dtype=dtype)
    y = (frames.astype(dtype, copy=False) - mean) / std  # (t, h, w, c)
    return rearrange(y, "t h w c -> t c h w")


def check_frames_uint8(frames_uint8) -> None:
    """Raise unless `frames_uint8` is a uint8 NumPy array of shape (t, h, w, 3)."""
    if not isinstance(frames_uint8, np.ndarray):
        raise TypeError(
            "frames must be a numpy uint8 array of shape (T, H, W, 3), "
            f"got {type(frames_uint8).__name__}"
        )
    if frames_uint8.dtype != np.uint8:
        raise TypeError(
            "frames must be uint8 pixels in [0, 255] as a decoder returns them, "
            f"got {frames_uint8.dtype}"
        )
    shape = tuple(frames_uint8.shape)
    if len(shape) != 4:
        raise ValueError(
            f"frames must have shape (T, H, W, 3), 4 axes, got shape {shape} with {len(shape)} axes"
        )
    if shape[-1] != 3:
        hint = " (channels-first? decoders give (T, H, W, 3))" if shape[1] == 3 else ""
        raise ValueError(
            "frames must have 3 colour channels on the last axis of (T, H, W, 3), "
            f"got shape {shape}{hint}"
        )
    if min(shape[:3]) < 1:
        raise ValueError(
            f"frames must hold at least one frame of at least one pixel, got shape {shape}"
        )


def preprocess(
    frames_uint8: np.ndarray, size: int, frames: int | None = None, dtype=np.float32
) -> np.ndarray:
    """Decoded frames -> the normalized clip the model reads: sample, resize, crop, normalize.

    Resize and crop are `resize_center_crop` (crop before resizing, bit for bit the two steps).
    One frame at a time, so beyond the input and the result memory stays at one cropped frame.

    frames_uint8: (n, H, W, 3) uint8, the decoded clip.
    size: side of the square crop, the model's image size (224 for ViT-B/16); a positive integer.
    frames: T, how many frames to keep (`sample_indices`); None keeps all n.
    dtype: floating dtype of the result.
    Returns: (T, 3, size, size) of `dtype`, per-channel standardized with CLIP's statistics.
    """
    check_frames_uint8(frames_uint8)
    size = positive_int(size, "size")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"dtype must be a floating dtype, got {np.dtype(dtype)}")
    n = frames_uint8.shape[0]
    kept = range(n) if frames is None else sample_indices(n, frames)  # (T,) frame indices
    out = np.empty((len(kept), 3, size, size), dtype=dtype)
    for k, i in enumerate(kept):
        x = resize_center_crop(frames_uint8[i : i + 1], size)  # (1, size, size, 3) in [0, 1]
        out[k] = normalize(x)[0]  # (3, size, size), cast to `dtype`
    return out
