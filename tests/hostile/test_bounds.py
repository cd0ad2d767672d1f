"""inti.io.bounds: every size read from a file or a flag is checked before it sizes an allocation.

The case that matters most: a 2 kB GIF whose header claims frames of 16000 x 16000 pixels. FFmpeg
decodes it faithfully, 768 MB of RGB a frame (4.7 GB of RSS for 4 frames without the bound); with
the bound it is refused from the header, before the first frame, in a process whose address
space is capped, so that a missing check fails the test at once instead of eating the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import inti.io.bounds as bounds
from inti.cli import main
from inti.data.datasets import BadClip, VideoListDataset
from inti.data.synthetic import make_clip
from inti.io import clips
from media import mpeg4_stream, write_clip

REPO = Path(__file__).resolve().parents[2]


def lying_gif(path: Path, side: int = 16000, frames: int = 4) -> Path:
    """A GIF of `frames` 16 x 16 frames whose logical screen (the frame size FFmpeg decodes to)
    is patched to side x side: a valid file of about 2 kB."""
    import av

    pixels = np.random.default_rng(0).integers(0, 256, (frames, 16, 16, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=8)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb8"
        for frame in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(path.read_bytes())
    data[6:10] = side.to_bytes(2, "little") * 2  # the logical screen descriptor: width, height
    path.write_bytes(bytes(data))
    return path


# The decode runs in a fresh process whose address space is capped at what it holds after the
# imports plus CAP_MB: a 16000 x 16000 frame (768 MB of RGB, 384 MB inside FFmpeg) cannot fit.
CAP_MB = 400
_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, av
    import inti.io.bounds as bounds
    from inti.io import clips

    if sys.argv[2] == "no-header-check":  # only FFmpeg's own max_pixels is left
        bounds.check_frame_size = bounds.check_clip_bytes = lambda *a, **k: 0
    size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + {cap} * 2**20, resource.RLIM_INFINITY))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        frames = clips.decode(sys.argv[1], sample=4)
        result = {{"decoded": list(frames.shape)}}
    except Exception as e:
        result = {{"error": type(e).__name__, "message": str(e)}}
    result["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps(result))
    """
).format(cap=CAP_MB)


def decode_capped(path: Path, mode: str = "") -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(path), mode], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_video_whose_header_claims_16000_pixels_a_side_is_refused_before_any_frame(tmp_path):
    path = lying_gif(tmp_path / "bomb.gif")
    assert path.stat().st_size < 4096
    result = decode_capped(path)
    assert result.get("error") == "BoundError", result
    assert result["message"] == (
        f"could not decode video {str(path)!r}: the frames the header states are 16000x16000 pixels, over the bound "
        "of 8192 pixels a side (inti.io.bounds.MAX_VIDEO_SIDE); if the input is right, raise it: import inti.io.bounds; "
        "inti.io.bounds.MAX_VIDEO_SIDE = ...")
    assert result["rss_growth_mb"] < 32, result


def test_without_the_header_check_ffmpeg_refuses_the_frame_before_allocating_it(tmp_path):
    """The second line: FFmpeg's max_pixels, set from the bound, refuses the frame in the
    decoder (a frame size that grows inside a stream is caught the same way)."""
    result = decode_capped(lying_gif(tmp_path / "bomb.gif"), "no-header-check")
    assert result.get("error") == "ValueError", result
    assert result["message"].endswith(": Invalid argument"), result  # refused when the codec opens; not out of memory
    assert result["rss_growth_mb"] < 32, result


def test_skip_bad_catches_an_oversized_video_as_a_bad_clip(tmp_path):
    lying_gif(tmp_path / "bomb.gif")
    write_clip(tmp_path / "good.mp4", frames=6, size=32)
    (tmp_path / "list.txt").write_text("good.mp4 0\nbomb.gif 1\n")
    data = VideoListDataset(tmp_path / "list.txt", tmp_path, frames=4, size=32, train=False, skip_bad=True)
    assert data[0][0].shape == (1, 4, 3, 32, 32)
    bad = data[1]
    assert isinstance(bad, BadClip) and bad.message.startswith(f"{tmp_path / 'list.txt'}:2: bomb.gif: could not decode")
    assert "MAX_VIDEO_SIDE" in bad.message


def test_the_bytes_of_a_clip_and_the_frame_count_are_bounded(tmp_path, monkeypatch):
    mp4 = write_clip(tmp_path / "six.mp4", frames=6, size=32)  # its header states 6 frames of 32 x 32
    raw = tmp_path / "six.m4v"
    raw.write_bytes(mpeg4_stream(32, 6))  # a raw stream: no frame count in any header
    assert clips.decode(mp4, sample=3).shape == (3, 32, 32, 3)
    monkeypatch.setattr(bounds, "MAX_CLIP_BYTES", 3 * 32 * 32 * 3 - 1)
    with pytest.raises(bounds.BoundError, match=r"one decoded clip would hold 3 RGB frames of 32x32 pixels, 9,216 bytes, "
                                                r"over the bound of 9,215 bytes \(inti\.io\.bounds\.MAX_CLIP_BYTES\)"):
        clips.decode(mp4, sample=3)
    with pytest.raises(bounds.BoundError, match="one decoded clip would hold 3 RGB frames"):  # all frames: counted as they come
        clips.decode(raw)
    monkeypatch.setattr(bounds, "MAX_CLIP_BYTES", 2**30)
    monkeypatch.setattr(bounds, "MAX_VIDEO_FRAMES", 5)
    with pytest.raises(bounds.BoundError, match=r"the frame count of the video \(as its header states it\) is 6 frames, "
                                                r"over the bound of 5 frames \(inti\.io\.bounds\.MAX_VIDEO_FRAMES\)"):
        clips.decode(mp4, sample=3)
    with pytest.raises(bounds.BoundError, match=r"the frame count of the video \(decoded so far\) is 6 frames"):
        clips.decode(raw, sample=3, plan=False)
    with pytest.raises(bounds.BoundError, match=r"the frame count of the video \(as its index counts it\) is 6 frames"):
        clips.decode(raw, sample=3)  # the planned decode counts the packets of the index


def test_synthetic_clips_are_bounded_before_they_are_generated():
    with pytest.raises(bounds.BoundError, match="100000x100000 pixels, over the bound of 8192 pixels a side"):
        make_clip("motion", 0, 0, 16, 100_000)
    with pytest.raises(bounds.BoundError, match=r"would hold 64 RGB frames of 4096x4096 pixels, 3,221,225,472 bytes"):
        make_clip("informative", 0, 0, 64, 4096)
    with pytest.raises(bounds.BoundError, match="the frame count of a synthetic clip is 2,000,000 frames"):
        make_clip("motion", 0, 0, 2_000_000, 1)


def test_a_synthetic_clip_holds_one_frame_of_noise_in_int64_not_the_clip():
    """The background is drawn a frame at a time: the peak is the clip plus about two frames
    of int64, where one draw of the whole clip held it 8 + 8 + 1 times over."""
    import tracemalloc

    frames, size = 64, 128
    clip_bytes = frames * size * size * 3
    tracemalloc.start()
    try:
        clip, _ = make_clip("informative", 0, 0, frames, size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.nbytes == clip_bytes
    assert peak < clip_bytes + 3 * size * size * 8, f"peak {peak / 2**20:.1f} MiB for a {clip_bytes / 2**20:.1f} MiB clip"


@pytest.mark.parametrize("argv, fragment", [
    (["data", "motion", "--size", "100000"], "over the bound of 8192 pixels a side (inti.io.bounds.MAX_VIDEO_SIDE)"),
    (["data", "motion", "--train", str(10**9)], "over the bound of 16,777,216 (inti.io.bounds.MAX_CLIPS)"),
    (["data", "motion", "--frames", str(10**8)], "(inti.io.bounds.MAX_VIDEO_FRAMES)"),
    (["data", "informative", "--size", "8000", "--frames", "64", "--train", "1", "--val", "1"],
     "(inti.io.bounds.MAX_CLIP_BYTES)"),
    (["train", "--synthetic", "motion", "--synthetic-train", str(10**9), "--quiet"], "(inti.io.bounds.MAX_CLIPS)"),
])
def test_sizes_from_flags_are_refused_with_the_bound_and_nothing_is_written(tmp_path, capsys, argv, fragment):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "raise it" in err[0], err
    assert not out.exists() or not any(out.iterdir())


def test_a_task_that_would_fill_the_disk_is_refused_before_its_first_file(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from inti.data.synthetic import write_task

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(ValueError, match=r"the task's videos take up to 1,572,864 bytes .* has 1,000,000 bytes free"):
        write_task(tmp_path / "task", "motion", {"train": 8, "val": 8}, frames=32, size=32)
    assert not (tmp_path / "task").exists()


def test_a_typo_label_does_not_size_the_head(tmp_path, capsys):
    write_clip(tmp_path / "a.mp4", frames=8, size=32, step=30)
    (tmp_path / "train.txt").write_text("a.mp4 0\na.mp4 0\nb.mp4 1000000000000\n")
    (tmp_path / "val.txt").write_text("a.mp4 0\n")
    assert main(["train", "--train-list", str(tmp_path / "train.txt"), "--val-list", str(tmp_path / "val.txt"),
                 "--root", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.txt:3: label 1000000000000 would make 1,000,000,000,001 classes, over the bound of 65,536" in err
