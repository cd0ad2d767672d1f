"""inti.data: list files, TSN sampling, transforms, the datasets, the sampler, the loader."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import inti.io.bounds
from inti.data.datasets import EpochSampler, SyntheticVideos, VideoListDataset, collate, make_loader
from inti.data.lists import read_classes, read_list, write_list
from inti.data.sampling import segment_indices
from inti.data.synthetic import make_clip, write_task
from inti.data.transforms import clip_transform
from ref.preprocess import preprocess


UP = ".." + "/"  # a step up, spelled so that no path in the source leaves the repository


# ---- list files ------------------------------------------------------------------------------

def write(tmp_path, text, name="list.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_list_file(tmp_path):
    path = write(tmp_path, "a/x.mp4 0\n\nb/y.mp4 2\n")
    assert [(e.path, e.label, e.line) for e in read_list(path, num_classes=3)] == [("a/x.mp4", 0, 1), ("b/y.mp4", 2, 3)]


@pytest.mark.parametrize("text, fragment", [
    ("a.mp4 0\nb.mp4\n", ":2: expected 'relative/path.mp4 <label>' (two columns), got 1 column(s)"),
    ("a.mp4 zero\n", ":1: the label must be a non-negative integer, got 'zero'"),
    ("a.mp4 1.5\n", ":1: the label must be a non-negative integer, got '1.5'"),
    ("a.mp4 -1\n", ":1: the label must be a non-negative integer, got -1"),
    ("a.mp4 0\nb.mp4 3\n", ":2: label 3 is not below the number of classes, 3"),
    ("a.mp4 0 extra\n", ":1: expected 'relative/path.mp4 <label>' (two columns), got 3 column(s)"),
    ("/abs/a.mp4 0\n", ":1: the path must be relative to the root"),
    (".." + "/up.mp4 0\n", ":1: the path must be relative to the root"),  # (split: no outside path in the source)
    ("\n\n", "holds no clips"),
])
def test_malformed_list_files_name_the_file_and_line(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        read_list(path, num_classes=3)
    assert fragment in str(info.value) and "list.txt" in str(info.value)


def test_missing_and_non_text_list_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such list file"):
        read_list(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00a")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_list(tmp_path / "bin.txt")
    with pytest.raises(ValueError, match="is not a regular file: it is a directory"):
        read_list(tmp_path)


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_plain_lines(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("a/x.mp4 0\r\n\r\nb/y.mp4 1\r\n".encode("utf-8-sig"))
    assert [(e.path, e.label, e.line) for e in read_list(path)] == [("a/x.mp4", 0, 1), ("b/y.mp4", 1, 3)]
    (tmp_path / "c.txt").write_bytes("cat\r\ndog\r\n".encode("utf-8-sig"))
    assert read_classes(tmp_path / "c.txt") == ["cat", "dog"]


def test_a_clip_listed_twice(tmp_path, caplog):
    with pytest.raises(ValueError, match=r"list\.txt:3: '\./a//x\.mp4' is listed twice with two labels: 0 at line 1, 2 at line 3"):
        read_list(write(tmp_path, "a/x.mp4 0\nb.mp4 1\n./a//x.mp4 2\n"))
    with caplog.at_level(logging.WARNING, logger="inti.data"):
        entries = read_list(write(tmp_path, "a/x.mp4 0\nb.mp4 1\na/x.mp4 0\nb.mp4 1\n"))
    assert [e.path for e in entries] == ["a/x.mp4", "b.mp4", "a/x.mp4", "b.mp4"]  # kept as listed
    notes = [r.message for r in caplog.records if "listed more than once" in r.message]
    assert len(notes) == 1 and "2 clip(s)" in notes[0] and "lines 1 and 3" in notes[0]


def test_labels_without_a_class_file_are_bounded(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"list\.txt:2: label 1000000000000 would make 1,000,000,000,001 classes, "
                                         r"over the bound of 65,536 \(inti\.io\.bounds\.MAX_CLASSES\)"):
        read_list(write(tmp_path, "a.mp4 0\nb.mp4 1000000000000\n"))
    assert read_list(write(tmp_path, "a.mp4 65535\n"))[0].label == 65535
    with pytest.raises(ValueError, match="label 70000 is not below the number of classes, 3"):
        read_list(write(tmp_path, "a.mp4 70000\n"), num_classes=3)
    for text in ("٣", "+3", "3_0", "1e3", "-"):  # int() would take the first three
        with pytest.raises(ValueError, match="the label must be a non-negative integer"):
            read_list(write(tmp_path, f"a.mp4 {text}\n"))
    monkeypatch.setattr(inti.io.bounds, "MAX_CLASSES", 2)
    with pytest.raises(ValueError, match=r"the class count of the class-name file .* is 3, over the bound of 2"):
        read_classes(write(tmp_path, "a\nb\nc\n", "c.txt"))


def test_list_file_sizes_and_clip_counts_are_bounded_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path, "a.mp4 0\nb.mp4 0\nc.mp4 0\n")
    monkeypatch.setattr(inti.io.bounds, "MAX_CLIPS", 2)
    with pytest.raises(ValueError, match=r"the clip count of list file .* is 3, over the bound of 2 \(inti\.io\.bounds\.MAX_CLIPS\)"):
        read_list(path)
    with pytest.raises(ValueError, match="the clip count of the synthetic task 'motion' is 3, over the bound of 2"):
        SyntheticVideos("motion", 3, 4, 16, train=False)
    monkeypatch.setattr(inti.io.bounds, "MAX_LIST_FILE_BYTES", 10)
    with pytest.raises(ValueError, match=r"the list file .* is 24 bytes, over the bound of 10 bytes \(inti\.io\.bounds\.MAX_LIST_FILE_BYTES\)"):
        read_list(path)


@pytest.mark.parametrize("entries, fragment", [
    ([("a.mp4", -1)], "the label must be a non-negative integer, got -1"),
    ([("a.mp4", 2.7)], "the label must be a non-negative integer, got float 2.7"),
    ([("a.mp4", 2.0)], "got float 2.0"),
    ([("a.mp4", True)], "got bool True"),
    ([("a.mp4", "3")], "got str '3'"),
    ([("a.mp4", 3)], "label 3 is not below the number of classes, 3"),
    ([("a b.mp4", 0)], "cannot hold spaces"),
    ([("/abs.mp4", 0)], "must be relative to the root"),
    ([(f"x/{UP}{UP}up.mp4", 0)], "must be relative to the root"),
    ([("", 0)], "a non-empty string"),
    ([("a.mp4", 0), ("a.mp4", 1)], "'a.mp4' is listed twice with two labels: 0 at clip 1, 1 at clip 2"),
    ([], "no clips to write"),
    ([("a.mp4",)], "expected a (relative path, label) pair"),
])
def test_write_list_refuses_what_read_list_would_refuse(tmp_path, entries, fragment):
    with pytest.raises(ValueError) as info:
        write_list(tmp_path / "out.txt", entries, num_classes=3)
    assert fragment in str(info.value) and not (tmp_path / "out.txt").exists()


def test_write_list_writes_what_read_list_reads(tmp_path):
    entries = [("a/x.mp4", 0), ("b.mp4", np.int64(2)), (f"a/{UP}c.mp4", 1)]
    write_list(tmp_path / "l.txt", entries)
    assert [(e.path, e.label) for e in read_list(tmp_path / "l.txt")] == [(p, int(k)) for p, k in entries]


def test_class_names(tmp_path):
    assert read_classes(write(tmp_path, "cat\ndog\n", "c.txt")) == ["cat", "dog"]
    with pytest.raises(ValueError, match="names a class twice"):
        read_classes(write(tmp_path, "cat\ncat\n", "c.txt"))


# ---- sampling and transforms -----------------------------------------------------------------

@pytest.mark.parametrize("n", [8, 9, 13, 40, 301])
def test_tsn_sampling_takes_one_frame_per_segment(n):
    bounds = (np.arange(9) * n) // 8
    for seed in range(20):
        idx = segment_indices(n, 8, train=True, rng=np.random.default_rng(seed))
        assert np.all((bounds[:-1] <= idx) & (idx < bounds[1:]))
    centres = segment_indices(n, 8, train=False)
    assert np.array_equal(centres, ((np.arange(8) + 0.5) * n / 8).astype(int))
    for views in (2, 3):
        shifted = [segment_indices(n, 8, train=False, view=v, views=views) for v in range(views)]
        assert all(np.all(np.diff(s) > 0) and s[-1] < n for s in shifted)


def test_sampling_refuses_a_clip_too_short():
    with pytest.raises(ValueError, match="has 5 frames, fewer than the 8 asked for"):
        segment_indices(5, 8, train=False)
    with pytest.raises(ValueError, match="need a random generator"):
        segment_indices(10, 4, train=True)


def test_the_evaluation_transform_is_the_spec():
    frames = np.random.default_rng(0).integers(0, 256, (4, 45, 61, 3), dtype=np.uint8)
    assert np.array_equal(clip_transform(frames, 32), preprocess(frames, 32))


def test_the_training_transform_crops_and_flips_from_its_generator():
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 60, 3), dtype=np.uint8)
    a = clip_transform(frames, 32, resize=40, train=True, rng=np.random.default_rng(5))
    b = clip_transform(frames, 32, resize=40, train=True, rng=np.random.default_rng(5))
    c = clip_transform(frames, 32, resize=40, train=True, rng=np.random.default_rng(6))
    assert a.shape == (2, 3, 32, 32) and np.array_equal(a, b) and not np.array_equal(a, c)
    square = frames[:, :, :40]  # a whole-frame crop: the only randomness left is the flip
    plain = clip_transform(square, 40)
    outs = [clip_transform(square, 40, train=True, rng=np.random.default_rng(s)) for s in range(12)]
    kinds = {"same" if np.array_equal(o, plain) else "flipped" if np.array_equal(o, plain[..., ::-1]) else "?"
             for o in outs}
    assert kinds == {"same", "flipped"}
    assert all(np.array_equal(clip_transform(square, 40, train=True, flip=False, rng=np.random.default_rng(s)), plain)
               for s in range(12))
    with pytest.raises(ValueError, match="must be at least the crop size"):
        clip_transform(frames, 32, resize=16)


# ---- synthetic tasks and the datasets ------------------------------------------------------------

def test_synthetic_clips_are_deterministic_and_splits_differ():
    a, la = make_clip("informative", 1, 7, 8, 32)
    b, lb = make_clip("informative", 1, 7, 8, 32)
    c, _ = make_clip("informative", 2, 7, 8, 32)
    assert np.array_equal(a, b) and la == lb and not np.array_equal(a, c)
    train = SyntheticVideos("informative", 16, 8, 32, train=False, split_seed=1)
    val = SyntheticVideos("informative", 16, 8, 32, train=False, split_seed=2)
    assert not any(np.array_equal(train[i][0], val[j][0]) for i in range(16) for j in range(16))


def test_motion_has_four_directions_and_no_flip():
    labels = {make_clip("motion", 0, i, 8, 32)[1] for i in range(40)}
    assert labels == {0, 1, 2, 3}
    assert SyntheticVideos("motion", 4, 8, 32, train=True).flip is False


def test_a_task_on_disk_reads_back_bit_for_bit(tmp_path):
    """write_task's lossless FFV1 files, read by VideoListDataset, give what the in-memory
    generator gives (the same transform, the same frames)."""
    lists = write_task(tmp_path / "task", "informative", {"train": 4, "val": 3}, seed=0, frames=8, size=32)
    disk = VideoListDataset(lists["val"], tmp_path / "task", frames=8, size=32, train=False,
                            classes=tmp_path / "task" / "classes.txt")
    memory = SyntheticVideos("informative", 3, 8, 32, train=False, split_seed=1)
    for i in range(3):
        (v1, l1, _), (v2, l2, _) = disk[i], memory[i]
        assert l1 == l2 and torch.equal(v1, v2)
    with pytest.raises(ValueError, match="already holds files"):
        write_task(tmp_path / "task", "informative", {"train": 1})


def test_bad_videos_stop_the_run_or_are_skipped_loudly(tmp_path, caplog):
    lists = write_task(tmp_path / "t", "motion", {"train": 2}, frames=8, size=16)
    (tmp_path / "t" / "train" / "000001.mkv").write_text("not a video")
    with open(lists["train"], "a") as f:
        f.write("train/missing.mkv 1\n")
    strict = VideoListDataset(lists["train"], tmp_path / "t", frames=8, size=16, train=False)
    with pytest.raises(ValueError, match=r"train\.txt:2: train/000001\.mkv: could not decode"):
        strict[1]
    with pytest.raises(ValueError, match=r"train\.txt:3: train/missing\.mkv: no such video file"):
        strict[2]
    short = VideoListDataset(lists["train"], tmp_path / "t", frames=16, size=16, train=False)
    with pytest.raises(ValueError, match=r"train\.txt:1: .*8 frames, fewer than the 16"):
        short[0]
    lenient = VideoListDataset(lists["train"], tmp_path / "t", frames=8, size=16, train=False, skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="inti.data"):
        videos, labels, _, bad = collate([lenient[i] for i in range(3)])
    assert [b.index for b in bad] == [1, 2] and len(labels) == 1 and not any(b.fatal for b in bad)
    assert "train.txt:3: train/missing.mkv: no such video file" in bad[1].message
    assert sum("skipping a bad clip" in r.message for r in caplog.records) == 2


def test_a_path_that_leaves_the_root_is_refused_unless_allowed(tmp_path, caplog):
    lists = write_task(tmp_path / "t", "motion", {"train": 2}, frames=4, size=16)
    root = tmp_path / "t"
    outside = tmp_path / "secret.mkv"
    outside.write_bytes((root / "train" / "000000.mkv").read_bytes())
    (root / "train" / "link.mkv").symlink_to(outside)
    (root / "inside.mkv").symlink_to(root / "train" / "000001.mkv")  # a link that stays inside is fine
    lines = f"train/link.mkv 0\n{UP}secret.mkv 0\ninside.mkv 1\nx/{UP}train/000000.mkv 0\n"
    with pytest.raises(ValueError, match=r"list\.txt:2: the path must be relative to the root, inside it, got '\.\./secret\.mkv'"):
        VideoListDataset(write(tmp_path, lines), root, frames=4, size=16, train=False)
    data = VideoListDataset(write(tmp_path, lines.replace(f"{UP}secret.mkv 0\n", "")), root, frames=4, size=16, train=False)
    with pytest.raises(ValueError, match=r"list\.txt:1: train/link\.mkv: the path leaves the root .* it resolves to "
                                         r".*secret\.mkv.*--allow-outside-root accepts it"):
        data[0]
    assert data[1][1] == 1 and data[2][1] == 0
    lenient = VideoListDataset(write(tmp_path, lines), root, frames=4, size=16, train=False, skip_bad=True,
                               allow_outside_root=True)
    assert all(lenient[i][0].shape == (1, 4, 3, 16, 16) for i in range(4))
    del lists


def test_a_flag_that_fails_every_clip_is_refused_before_any_clip_is_read(tmp_path):
    for make in (lambda: SyntheticVideos("motion", 4, 4, 32, train=True, resize=16),
                 lambda: VideoListDataset(write(tmp_path, "missing.mp4 0\n"), tmp_path, frames=4, size=32, train=True,
                                          resize=16, skip_bad=True)):
        with pytest.raises(ValueError, match=r"resize \(16\) must be at least the crop size \(32\)"):
            make()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_worker_error_names_the_list_file_line_path_and_cause(tmp_path, workers):
    """The same message with or without loader workers: the worker returns the failure, and
    the loader raises it in the main process (torch's own re-raise keeps only its type)."""
    lists = write_task(tmp_path / "t", "motion", {"train": 4}, frames=4, size=16)
    (tmp_path / "t" / "train" / "000002.mkv").write_text("not a video")
    data = VideoListDataset(lists["train"], tmp_path / "t", frames=4, size=16, train=False)
    with pytest.raises(ValueError) as info:
        list(make_loader(data, EpochSampler(4, 2, shuffle=False, drop_last=False), workers))
    assert str(info.value).startswith(f"{lists['train']}:3: train/000002.mkv: could not decode video ")
    assert "Invalid data found" in str(info.value) and "DataLoader worker" not in str(info.value)


def test_the_root_must_be_a_folder(tmp_path):
    path = write(tmp_path, "a.mp4 0\n")
    with pytest.raises(ValueError, match="is not a folder"):
        VideoListDataset(path, tmp_path / "nope", frames=8, size=16, train=False)


# ---- the sampler and the loader ---------------------------------------------------------------------

def test_ranks_split_each_global_batch_and_evaluation_sees_each_clip_once():
    one = EpochSampler(37, 8, seed=3)
    two = [EpochSampler(37, 8, seed=3, rank=r, world=2) for r in range(2)]
    for e in range(2):
        for s in (one, *two):
            s.set_epoch(e)
        for full, a, b in zip(one, *two):
            assert full == a + b
    shards = [list(EpochSampler(37, 5, shuffle=False, rank=r, world=3, drop_last=False)) for r in range(3)]
    seen = sorted(i for shard in shards for batch in shard for i in batch)
    assert seen == list(range(37))  # every clip once: no padding, no drop


def test_a_resumed_epoch_starts_where_it_stopped():
    s = EpochSampler(40, 4, seed=1)
    s.set_epoch(2)
    everything = list(s)
    s.set_epoch(2, start=3)
    assert list(s) == everything[3:]


def test_the_loader_gives_the_same_batches_with_or_without_workers():
    data = SyntheticVideos("informative", 12, 4, 16, train=True, split_seed=1, resize=20)

    def batches(workers):
        sampler = EpochSampler(12, 4, seed=0)
        sampler.set_epoch(1)
        data.set_epoch(1)
        return [(v, y) for v, y, _, _ in make_loader(data, sampler, workers)]

    for (v0, y0), (v2, y2) in zip(batches(0), batches(2)):
        assert torch.equal(v0, v2) and torch.equal(y0, y2)


def test_loader_workers_do_not_inherit_a_lock_another_thread_holds():
    """A worker forked from a process whose other thread holds a lock inherits it held, and
    waits for it forever; make_loader's workers start from a fork server, with their own."""
    import threading

    from held_lock import LOCK, NeedsTheLock

    from inti.data.datasets import EpochSampler, make_loader

    taken, release = threading.Event(), threading.Event()

    def hold():
        with LOCK:
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait(10)
    try:
        loader = make_loader(NeedsTheLock(), EpochSampler(4, 2, seed=0), workers=2)
        got = [int(label) for _, labels, _, _ in loader for label in labels]
    finally:
        release.set()
        holder.join(10)
    assert got == [1] * 4
