"""Planned decoding: decode only the keyframe intervals that hold a sampled frame.

A 10-second clip holds about 300 frames, of which training keeps 8. Decoding every frame and
converting the kept ones spends most of the loader's time on frames nobody looks at; seeking
to each kept frame is no better with long keyframe intervals (x264 puts a keyframe every 250
frames by default), since every seek decodes again from the same keyframe. The planned decoder
[ours] reads the container's index first and decodes each keyframe interval (GOP) at most
once, only as far as its last kept frame:

1. **Index** (`read_index`): every packet of the first video stream is read without decoding:
   its presentation timestamp (pts) and its keyframe flag. Frame i is the i-th packet in
   presentation order (sorted by pts), which is the i-th frame a sequential decode gives.
   A keyframe is a *seek point* when decoding from it gives exactly the frames from it on:
   every packet before it in decode order shows earlier, every packet from it on shows at
   the same time or later (a closed GOP, as x264 writes by default).
2. **Plan** (`plan`, a pure function): the kept indices are grouped by the seek point before
   them; each group becomes one decode range, from its seek point to its last kept frame. A GOP
   with nothing kept gets no range: the decoder seeks over it.
3. **Decode** (`decode_planned`): for each range, seek to its keyframe, send the packets in
   decode order up to the last one a kept frame needs, and drain the decoder. Only the kept
   frames are converted to RGB. Every packet and every decoded frame is checked against the
   index on the way.
4. **Fallback**: where the index cannot be trusted (a packet without a timestamp, two frames
   with one timestamp, no keyframe at the start, a decoded frame the index does not hold, a
   seek that lands elsewhere), `Unreliable` says why and the caller decodes in one sequential
   pass instead (`inti.io.clips`), which gives the same frames.

A damaged stretch of the file that no kept frame needs is never decoded, so it cannot fail the
clip; a sequential pass would have stopped there.

The bound on what one clip may hold, `check_clip_size` (the bounds of `inti.io.bounds`), is
applied where the frame size and the number of kept frames are first known, before anything
is allocated.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from . import bounds

# The longest index held, in packets (39 hours at 30 frames/s); a longer stream is decoded in
# one sequential pass, which holds no index.
MAX_INDEX_PACKETS = 2**22
# H.264 and HEVC reorder at most 16 frames; the reorder depth is counted up to this many.
MAX_REORDER = 16


def check_clip_size(width: int, height: int, frames: int) -> None:
    """Refuse a clip whose `frames` RGB frames of width x height would pass the bounds of
    `inti.io.bounds` (MAX_VIDEO_SIDE, MAX_CLIP_BYTES): a `BoundError` naming the bound.

    Called where a decoder first learns the frame size (from the stream's header, before any
    frame is decoded) and the number of frames it will hold.
    """
    bounds.check_clip_bytes(frames, height, width, "one decoded clip")


class Refused(ValueError):
    """A reason, found while decoding, to refuse the file (the caller names the file)."""


def check_packet(packet, position: int) -> None:
    """Refuse a packet the demuxer flags as corrupt: cut short at the end of a truncated file,
    or damaged. (With frame threads, FFmpeg's decoder does not report such a packet; decoding
    it would give a clip that silently ends early.)"""
    if packet.is_corrupt:
        raise Refused(f"packet {position} of the video stream is incomplete or damaged (a truncated file?)")


class Unreliable(Exception):
    """The container's index cannot be trusted for a planned decode; the message says why."""


@dataclass
class DecodeStats:
    """What one decode did, filled in by `inti.io.clips.decode(..., stats=DecodeStats())`.

    frames: n, the frames of the clip the indices refer to (after max_frames).
    frames_decoded: frames the decoder gave back; packets_decoded: packets sent to it.
    frames_converted: frames converted to RGB.
    minimum: the frames the kept indices need, summed over the GOPs that hold one: from the
        GOP's keyframe to its last kept frame, in presentation order (None without an index).
    seeks: seeks made. planned: whether the planned decode gave the frames.
    fallback: why a planned decode gave way to the sequential pass (None when it did not).
    """

    decoder: str = ""
    planned: bool = False
    frames: int = 0
    frames_decoded: int = 0
    packets_decoded: int = 0
    frames_converted: int = 0
    minimum: int | None = None
    seeks: int = 0
    fallback: str | None = None
    ranges: list = field(default_factory=list)

    def reset_counts(self) -> None:
        self.frames_decoded = self.packets_decoded = self.frames_converted = self.seeks = 0


@dataclass(frozen=True)
class Index:
    """A video stream's packets, read without decoding.

    dts_order_pts: (p,) the pts of every packet in decode order.
    rank: (p,) the presentation index of each packet in decode order; -1 for a packet the
        decoder decodes but never shows (FFmpeg's discard flag, from an edit list).
    pts: (n,) the pts of the frames in presentation order (strictly increasing).
    position: (n,) the decode position of each frame.
    seek_points: the presentation indices where decoding may start, increasing, from 0.
    """

    dts_order_pts: np.ndarray
    rank: np.ndarray
    pts: np.ndarray
    position: np.ndarray
    seek_points: np.ndarray

    def __len__(self) -> int:
        return len(self.pts)


def read_index(container, stream) -> Index:
    """The index of `stream`, read by demuxing every packet (no decoding). Raises Unreliable."""
    pts, key, shown = array("q"), bytearray(), bytearray()  # 10 bytes a packet
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the empty packet that ends the stream
        check_packet(packet, len(pts))
        if packet.pts is None:
            raise Unreliable("a packet has no presentation timestamp")
        pts.append(packet.pts)
        key.append(packet.is_keyframe)
        shown.append(not packet.is_discard)
        if len(pts) > MAX_INDEX_PACKETS:
            raise Unreliable(f"the stream holds over {MAX_INDEX_PACKETS:,} packets")
    return index_from_packets(np.frombuffer(pts, dtype=np.int64).copy(), np.frombuffer(key, dtype=bool).copy(),
                              np.frombuffer(shown, dtype=bool).copy())


def index_from_packets(pts: np.ndarray, key: np.ndarray, shown: np.ndarray) -> Index:
    """The `Index` of packets given in decode order: pts, keyframe flags, shown (not discarded)."""
    if not shown.any():
        raise Unreliable("the stream has no packets to show")
    if not key[0]:
        raise Unreliable("the first packet is not a keyframe")
    shown_pts = pts[shown]
    order = np.argsort(shown_pts, kind="stable")
    sorted_pts = shown_pts[order]
    if np.any(np.diff(sorted_pts) <= 0):
        raise Unreliable("two frames share a presentation timestamp")
    rank = np.full(len(pts), -1, dtype=np.int64)
    rank_shown = np.empty(len(shown_pts), dtype=np.int64)
    rank_shown[order] = np.arange(len(shown_pts))
    rank[shown] = rank_shown
    position = np.flatnonzero(shown)[order]
    # A keyframe at decode position d is a seek point when the shown packets before d all show
    # earlier and those from d on show no earlier: then decoding from d gives ranks rank[d]...
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    shown_or = lambda fill: np.where(shown, pts, fill)  # noqa: E731
    before = np.concatenate([[small], np.maximum.accumulate(shown_or(small))[:-1]])
    after = np.minimum.accumulate(shown_or(big)[::-1])[::-1]
    safe = key & shown & (before < pts) & (after == pts)
    safe[0] = True  # the start of the stream: a fresh decoder, as a sequential pass begins
    seek_points = np.unique(np.maximum(rank[safe], 0))
    if shown[0] and rank[0] != 0:
        raise Unreliable("the first packet is not the first frame shown")
    return Index(pts, rank, sorted_pts, position, seek_points)


def plan(seek_points, wanted) -> list[tuple[int, int]]:
    """Decode ranges [start, stop) of presentation indices for the frames `wanted`.

    seek_points: increasing presentation indices where decoding may start (the keyframes),
        starting with 0. wanted: increasing frame indices to keep.
    Returns one range per GOP that holds a wanted frame, in order: from the GOP's seek point to
    its last wanted frame (inclusive, so stop = that frame + 1). A GOP with nothing wanted has
    no range; no frame lies in two ranges.

    >>> plan([0, 30, 60, 90], [5, 12, 70])
    [(0, 13), (60, 71)]
    >>> plan([0, 250], [18, 56, 243, 281])
    [(0, 244), (250, 282)]
    """
    seek_points = np.asarray(seek_points, dtype=np.int64)
    wanted = np.asarray(wanted, dtype=np.int64)
    if len(seek_points) == 0 or seek_points[0] != 0 or np.any(np.diff(seek_points) <= 0):
        raise ValueError(f"seek points must increase from 0, got {seek_points.tolist()}")
    if len(wanted) and (wanted[0] < 0 or np.any(np.diff(wanted) <= 0)):
        raise ValueError(f"wanted frames must be increasing and non-negative, got {wanted.tolist()}")
    gop = np.searchsorted(seek_points, wanted, side="right") - 1  # the seek point at or before each
    ranges = []
    for g in np.unique(gop):
        last = wanted[gop == g][-1]
        ranges.append((int(seek_points[g]), int(last) + 1))
    return ranges


def minimum_frames(ranges) -> int:
    """Frames the planned ranges span: the least a decoder starting at keyframes must give."""
    return sum(stop - start for start, stop in ranges)


def runs(ranges) -> list[tuple[int, int]]:
    """Ranges joined where one ends where the next begins: decoded in one go, without a seek."""
    joined = []
    for start, stop in ranges:
        if joined and joined[-1][1] == start:
            joined[-1] = (joined[-1][0], stop)
        else:
            joined.append((start, stop))
    return joined


def size_changed(first, now, index) -> str:
    """The message for a frame whose (h, w, 3) size `now` differs from the clip's `first`."""
    return (
        f"the frame size changes inside the clip, from {first[1]}x{first[0]} to "
        f"{now[1]}x{now[0]} pixels at frame {index}"
    )


def keep_frame(frame, out, slot: int, count: int, stats: DecodeStats, index: int):
    """A decoded frame to RGB, into out[slot] of the clip's (count, h, w, 3) uint8 array, which
    the first kept frame allocates once its size is checked against the bounds; a later frame of
    another size is refused (`index`: its place in the stream, for the message). Returns out."""
    rgb = frame.to_ndarray(format="rgb24")  # (h, w, 3) uint8
    stats.frames_converted += 1
    if out is None:
        check_clip_size(rgb.shape[1], rgb.shape[0], count)
        out = np.empty((count, *rgb.shape), dtype=np.uint8)
    elif rgb.shape != out.shape[1:]:
        raise Refused(size_changed(out.shape[1:], rgb.shape, index))
    out[slot] = rgb
    return out


def decode_planned(container, stream, index: Index, wanted: np.ndarray, stats: DecodeStats):
    """The frames `wanted` (presentation indices) as (T, h, w, 3) uint8, decoding each range of
    `plan` once. Raises Unreliable where the stream disagrees with its index."""
    ranges = plan(index.seek_points, wanted)
    stats.ranges, stats.minimum = ranges, minimum_frames(ranges)
    codec = stream.codec_context
    if codec.width and codec.height:  # the header's size (0 when it does not say): before decoding
        check_clip_size(codec.width, codec.height, len(wanted))
    want = {int(r): i for i, r in enumerate(wanted)}
    out, depth = None, None
    for start, stop in runs(ranges):
        # the keyframe's decode position; frame 0 is decoded from the start of the stream, with the
        # packets before it that an edit list hides (decoded as references, never shown)
        first = 0 if start == 0 else int(index.position[start])
        last = max(int(index.position[r]) for r in wanted if start <= r < stop)
        _seek_to(container, stream, index, first, stats)
        if depth is not None:
            codec.reorder_depth = depth  # FFmpeg's guess of it restarts after a seek
        seen = None
        for frame in _frames(container, stream, index, first, last, stats):
            rank = _rank_of(index, frame)
            if seen is None and (rank != start or (start > 0 and not frame.key_frame)):
                raise Unreliable(f"decoding from the keyframe of frame {start} began with frame {rank}, "
                                 f"{'a keyframe' if frame.key_frame else 'not a keyframe'}")
            if seen is not None and rank <= seen:
                raise Unreliable(f"the decoder gave frame {rank} after frame {seen}")
            seen = rank
            if rank in want:
                out = keep_frame(frame, out, want.pop(rank), len(wanted), stats, rank)
            del frame
        depth = codec.reorder_depth
        missing = [r for r in want if start <= r < stop]
        if missing:
            raise Unreliable(f"decoding from the keyframe at frame {start} did not give frame {missing[0]}")
    return out


def _seek_to(container, stream, index: Index, position: int, stats: DecodeStats) -> None:
    """Seek so that the next packet demuxed is the one at decode `position` (a keyframe)."""
    container.seek(int(index.dts_order_pts[position]), stream=stream, backward=True)
    stats.seeks += 1


def _frames(container, stream, index: Index, first: int, last: int, stats: DecodeStats):
    """Frames decoded from the packets at decode positions first..last, then the decoder drained.

    The seek lands at a keyframe at or before `first`: the packets before it are read and
    dropped, undecoded. Every packet's pts is checked against the index."""
    codec = stream.codec_context
    expected = index.dts_order_pts
    position = None
    for packet in container.demux(stream):
        if packet.size == 0:
            break
        if position is None:  # where did the seek land?
            earlier = np.flatnonzero(expected[:first + 1] == packet.pts)
            if len(earlier) == 0:
                raise Unreliable(f"a seek to frame {int(index.rank[first])} landed on a packet the index lacks")
            position = int(earlier[-1])
        elif packet.pts != expected[position]:
            raise Unreliable(f"packet {position} has pts {packet.pts}, the index says {expected[position]}")
        check_packet(packet, position)
        if position >= first:
            stats.packets_decoded += 1
            for frame in codec.decode(packet):
                stats.frames_decoded += 1
                yield frame
        if position == last:
            break
        position += 1
    if position != last:
        raise Unreliable("the stream ended before the packets its index lists")
    for frame in codec.decode(None):  # drain: the frames the decoder still holds
        stats.frames_decoded += 1
        yield frame


def _rank_of(index: Index, frame) -> int:
    """The presentation index of a decoded frame, from its pts; Unreliable if the index lacks it."""
    pts = frame.pts
    if pts is None:
        raise Unreliable("a decoded frame has no timestamp")
    rank = int(np.searchsorted(index.pts, pts))
    if rank >= len(index.pts) or index.pts[rank] != pts:
        raise Unreliable(f"a decoded frame has pts {pts}, which the index does not hold")
    return rank
