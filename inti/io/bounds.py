"""The bounds on every size that comes from a file or a flag, checked before anything is allocated.

A video's header, a list file, a label or a flag can claim any size: a 2 kB GIF can declare
frames of 16000 x 16000 pixels, a typo can make a label 10^12, a flag can ask for clips of
100000 pixels a side. Each such size is checked here against a bound, at the point where it
is first known and before it sizes an allocation, and the error says which bound it broke and
how to raise it. The bounds are module constants; a run that truly needs more sets the
constant before it starts (every check reads it at call time):

    import inti.io.bounds
    inti.io.bounds.MAX_CLIP_BYTES = 4 * 2**30   # clips of up to 4 GiB of decoded frames

What each bound costs where it is reached is in its comment.
"""

from __future__ import annotations

# A video frame's width and height, in pixels: 8192 holds 8K UHD (7680 x 4320) and DCI 8K.
# One RGB frame at the bound is 201 MB.
MAX_VIDEO_SIDE = 8192
# A video's frame count, as its header states it or as decoding counts it: 2^20 frames is
# 9.7 hours at 30 frames/s. Decoding streams, so this bounds time more than memory.
MAX_VIDEO_FRAMES = 2**20
# The decoded RGB bytes one clip may hold (frames x height x width x 3): 1 GiB, e.g. 64 frames
# of 1080p (398 MB) or 16 of 4K UHD (398 MB) twice over. A clip's loader worker holds this
# much, plus its transform's float copy.
MAX_CLIP_BYTES = 2**30
# The number of classes: the labels of a list file without a class-name file (which sizes the
# head as 1 + the largest label), and the names of a class-name file. 65,536 holds
# ImageNet-21k (21,841) and every video benchmark (Kinetics-700: 700).
MAX_CLASSES = 2**16
# Clips in one dataset (a list file's lines, a synthetic task's count): 2^24 = 16.8 million,
# twice WebVid-10M. The epoch sampler holds one int64 per clip, 134 MB at the bound.
MAX_CLIPS = 2**24
# A list file's or class-name file's size in bytes, checked before it is read: 1 GiB.
MAX_LIST_FILE_BYTES = 2**30


class BoundError(ValueError):
    """A size over one of the bounds above; the message names the bound and how to raise it."""


def _raise_it(bound: str) -> str:
    return f"(inti.io.bounds.{bound}); if the input is right, raise it: import inti.io.bounds; inti.io.bounds.{bound} = ..."


def _over(what: str, value, bound: str, limit, unit: str = "", hint: str = "") -> BoundError:
    return BoundError(f"{what} is {value:,}{unit}, over the bound of {limit:,}{unit} {_raise_it(bound)}{hint}")


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return value.__index__()


def check_frame_size(width, height, what: str = "the frames") -> None:
    """Width and height in [1, MAX_VIDEO_SIDE]."""
    width, height = _int(width, "width"), _int(height, "height")
    if width < 1 or height < 1:
        raise BoundError(f"{what} are {width}x{height} pixels: a frame size must be positive")
    if max(width, height) > MAX_VIDEO_SIDE:
        raise BoundError(f"{what} are {width}x{height} pixels, over the bound of {MAX_VIDEO_SIDE} pixels a side "
                         f"{_raise_it('MAX_VIDEO_SIDE')}")


def check_frame_count(frames, what: str = "the video") -> None:
    """A frame count in [0, MAX_VIDEO_FRAMES] (0: a header that does not say)."""
    frames = _int(frames, "frames")
    if frames > MAX_VIDEO_FRAMES:
        raise _over(f"the frame count of {what}", frames, "MAX_VIDEO_FRAMES", MAX_VIDEO_FRAMES, " frames")


def check_clip_bytes(frames, height, width, what: str = "the clip") -> int:
    """The bytes of `frames` RGB uint8 frames of height x width; at most MAX_CLIP_BYTES."""
    frames = _int(frames, "frames")
    check_frame_size(width, height, f"the frames of {what}")
    size = frames * height * width * 3
    if size > MAX_CLIP_BYTES:
        raise BoundError(f"{what} would hold {frames} RGB frames of {width}x{height} pixels, {size:,} bytes, over "
                         f"the bound of {MAX_CLIP_BYTES:,} bytes {_raise_it('MAX_CLIP_BYTES')}")
    return size


def guard_stream(stream, held: int | None) -> None:
    """A PyAV video stream, before its first frame is decoded: the frame size its header
    states, its frame count, and the bytes of the `held` frames a decode will keep (None: all
    of them, checked as they come by `check_decoded`). Also sets FFmpeg's own `max_pixels`,
    so that a frame size that grows inside the stream is refused by the decoder before it
    allocates the frame."""
    codec = stream.codec_context
    width, height = int(codec.width or 0), int(codec.height or 0)
    if width or height:  # 0 x 0: the header does not say; each frame is checked as it comes
        check_frame_size(width, height, "the frames the header states")
        check_clip_bytes(held or 1, height, width, "one decoded clip")
    check_frame_count(max(int(stream.frames or 0), 0), "the video (as its header states it)")
    codec.options = {**codec.options, "max_pixels": str(MAX_VIDEO_SIDE * MAX_VIDEO_SIDE)}


def check_decoded(n: int, frame, held: int) -> None:
    """While decoding: `n` frames seen so far; `frame` the next one, of which `held` will be
    kept with it. Refuses a stream that runs past MAX_VIDEO_FRAMES or a frame whose size
    breaks the bounds, before it is converted to RGB."""
    if n >= MAX_VIDEO_FRAMES:
        raise _over("the frame count of the video (decoded so far)", n + 1, "MAX_VIDEO_FRAMES", MAX_VIDEO_FRAMES,
                    " frames")
    check_clip_bytes(held, frame.height, frame.width, "one decoded clip")


def check_class_count(count, what: str) -> None:
    """A class count (1 + the largest label, or a class-name file's names): at most MAX_CLASSES."""
    count = _int(count, "classes")
    if count > MAX_CLASSES:
        raise _over(f"the class count of {what}", count, "MAX_CLASSES", MAX_CLASSES,
                    hint="; or pass a class-name file (--classes), whose names fix the count")


def check_clips(count, what: str) -> None:
    """A dataset's clip count: at most MAX_CLIPS."""
    count = _int(count, "clips")
    if count > MAX_CLIPS:
        raise _over(f"the clip count of {what}", count, "MAX_CLIPS", MAX_CLIPS)


def check_text_file_size(path, size: int, what: str) -> None:
    """A list or class-name file's size in bytes, before it is read: at most MAX_LIST_FILE_BYTES."""
    if size > MAX_LIST_FILE_BYTES:
        raise _over(f"the {what} {str(path)!r}", size, "MAX_LIST_FILE_BYTES", MAX_LIST_FILE_BYTES, " bytes")
