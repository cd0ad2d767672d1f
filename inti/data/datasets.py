"""Datasets, the sampler and the loader.

Reproducibility rule [ours]: everything random about a sample (its TSN offsets, its crop, its
flip) comes from a generator seeded by (seed, epoch, index), and the order of an epoch is a
permutation seeded by (seed, epoch). A run is then reproducible whatever the number of loader
workers, and a run resumed mid-epoch, or split over DDP ranks, sees exactly the samples of an
uninterrupted single-process run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ref.preprocess import CLIP_MEAN, CLIP_STD, positive_int

from ..io.bounds import check_clips
from ..io.clips import DECODERS, decode
from .lists import clip_path, read_classes, read_list
from .sampling import segment_indices
from .synthetic import make_clip, num_classes
from .transforms import clip_transform

log = logging.getLogger("inti.data")


class BadClip(NamedTuple):
    """A clip that could not be read: its index and the message naming the list file, the
    line, the path and the cause. Skipped (skip_bad) or, when fatal, raised by the loader in
    the main process, with the same message whatever the number of workers."""

    index: int
    message: str
    fatal: bool = False


class ClipDataset(torch.utils.data.Dataset):
    """What the two datasets share: views, the per-sample generator, the transform.

    Item i is (video, label, i): video (T, 3, size, size) float32 in training, and
    (V, T, 3, size, size) with V = temporal x spatial views in evaluation; a `BadClip` when the
    clip is bad and skip_bad is on (the collate function sets it apart, and the loop counts it)."""

    def __init__(self, frames: int, size: int, train: bool, resize: int | None = None, seed: int = 0,
                 flip: bool = True, views: tuple[int, int] = (1, 1), mean=CLIP_MEAN, std=CLIP_STD):
        self.frames, self.size = positive_int(frames, "frames"), positive_int(size, "size")
        self.resize = size if resize is None else positive_int(resize, "resize")
        if self.resize < self.size:  # it would fail every clip: refused before the first is read
            raise ValueError(f"resize ({self.resize}) must be at least the crop size ({self.size})")
        self.train, self.seed, self.flip = bool(train), int(seed), bool(flip)
        self.views = tuple(positive_int(v, "views") for v in views)
        if self.train and self.views != (1, 1):
            raise ValueError(f"multi-view sampling is for evaluation; training takes one view, got {views}")
        self.mean, self.std = mean, std
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index), stream])

    def transform(self, frames_uint8: np.ndarray, index: int, spatial: int = 0) -> np.ndarray:
        return clip_transform(frames_uint8, self.size, self.resize, train=self.train,
                              rng=self.rng(index, 1) if self.train else None, flip=self.flip,
                              spatial=spatial, spatials=self.views[1], mean=self.mean, std=self.std)


class VideoListDataset(ClipDataset):
    """A list file of ``relative/path label`` lines under `root`, decoded by
    `inti.io.clips.decode` (only the keyframe intervals that hold a sampled frame), sampled
    TSN-style and transformed (`inti.data.transforms`).

    classes: a file of class names (one per line), which also fixes the number of classes;
    without it, labels must lie in [0, num_classes) when num_classes is given.
    skip_bad: a clip that is missing, unreadable or too short is logged and skipped, never
    silently; without it, reading it raises ValueError naming the list file's line.
    decoder: "pyav" (the default) or "torchcodec" (`inti.io.clips.DECODERS`).
    decode_threads: FFmpeg's decoding threads per clip, 1 by default: each loader worker then
    takes one core, and the workers share the machine; None lets FFmpeg choose.
    separator: the list's column separator (`inti.data.lists.read_list`); None: whitespace.
    allow_outside_root: accept paths that leave `root` (absolute, through .. or a symlink)."""

    def __init__(self, list_file, root, frames: int, size: int, train: bool, classes=None,
                 num_classes: int | None = None, skip_bad: bool = False, decoder: str = "pyav",
                 decode_threads: int | None = 1, separator: str | None = None, allow_outside_root: bool = False,
                 **kwargs):
        super().__init__(frames, size, train, **kwargs)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if decode_threads is not None:
            decode_threads = positive_int(decode_threads, "decode_threads")
        self.decoder, self.decode_threads = decoder, decode_threads
        self.list_file, self.root = Path(list_file), Path(root)
        if not self.root.is_dir():
            raise ValueError(f"--root {str(self.root)!r} is not a folder")
        self.class_names = read_classes(classes) if classes is not None else None
        self.num_classes = len(self.class_names) if self.class_names else num_classes
        self.allow_outside_root = bool(allow_outside_root)
        self.entries = read_list(list_file, self.num_classes, separator=separator,
                                 allow_outside_root=self.allow_outside_root)
        if self.num_classes is None:
            self.num_classes = 1 + max(e.label for e in self.entries)
        self.skip_bad = bool(skip_bad)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.entries])

    def __getitems__(self, indices):
        """A batch for the DataLoader: a bad clip's error comes back as a fatal `BadClip`, raised
        by the loader in the main process (a worker's own re-raise keeps only the type)."""
        return [self._item(i, defer=True) for i in indices]

    def __getitem__(self, index: int):
        return self._item(index)

    def _item(self, index: int, defer: bool = False):
        entry = self.entries[index]
        try:
            views = []
            for t in range(self.views[0]):
                def pick(n, frames, t=t):
                    rng = self.rng(index, 0) if self.train else None
                    return segment_indices(n, frames, self.train, rng=rng, view=t, views=self.views[0])

                frames = decode(clip_path(self.root, entry, self.allow_outside_root), sample=self.frames, pick=pick,
                                decoder=self.decoder, threads=self.decode_threads)
                views += [self.transform(frames, index, spatial=s) for s in range(self.views[1])]
        except (ValueError, OSError) as e:
            message = f"{self.list_file}:{entry.line}: {entry.path}: {e}"
            if not self.skip_bad:
                if defer:
                    return BadClip(index, message, fatal=True)
                raise ValueError(message) from None
            log.warning("skipping a bad clip (--skip-bad): %s", message)
            return BadClip(index, message)
        except Exception as e:  # not a defect of the clip: never skipped, but named in the main process
            if not defer:
                raise
            return BadClip(index, f"{self.list_file}:{entry.line}: {entry.path}: {type(e).__name__}: {e}", fatal=True)
        video = np.stack(views) if not self.train else views[0]
        return torch.from_numpy(video), entry.label, index


class SyntheticVideos(ClipDataset):
    """`count` clips of a synthetic task (`inti.data.synthetic`), generated in memory and put
    through the same transform as a video file would be. split_seed separates splits."""

    def __init__(self, task: str, count: int, frames: int, size: int, train: bool, split_seed: int = 0,
                 classes: int | None = None, k: int = 2, **kwargs):
        kwargs.setdefault("flip", task != "motion")  # a flip turns "right" into "left"
        super().__init__(frames, size, train, **kwargs)
        self.task, self.count, self.split_seed, self.k = task, positive_int(count, "clips"), int(split_seed), k
        check_clips(self.count, f"the synthetic task {task!r}")
        self.num_classes = num_classes(task, classes)
        self.classes = classes
        self.class_names = None
        make_clip(task, 0, 0, 1, 4, classes)  # validates the task and classes now

    def __len__(self) -> int:
        return self.count

    def clip(self, index: int):
        return make_clip(self.task, self.split_seed, index, self.frames, self.size, self.classes, self.k)

    @property
    def labels(self) -> np.ndarray:
        return np.array([self.clip(i)[1] for i in range(self.count)])

    def __getitem__(self, index: int):
        frames, label = self.clip(index)
        views = [self.transform(frames, index, spatial=s) for s in range(self.views[1])]
        video = np.stack(views * self.views[0]) if not self.train else views[0]
        return torch.from_numpy(video), label, index


def collate(items):
    """(videos, labels, indices, bad): the good items stacked (None, None, None when there is
    none), and the list of `BadClip`s."""
    bad = [it for it in items if isinstance(it, BadClip)]
    good = [it for it in items if not isinstance(it, BadClip)]
    if not good:
        return None, None, None, bad
    videos, labels, indices = zip(*good)
    return torch.stack(videos), torch.tensor(labels), torch.tensor(indices), bad


class EpochSampler(torch.utils.data.Sampler):
    """Batches of indices: each epoch a permutation seeded by (seed, epoch) (or the natural
    order, shuffle=False), cut into global batches of `batch_size`; rank r of `world` takes
    its share of each global batch. `start` skips the first batches of the epoch (a resumed
    run). Training drops the last incomplete global batch (drop_last); evaluation shards the
    clips so that each is seen exactly once across ranks, with no padding."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world: int = 1, drop_last: bool = True):
        self.n, self.batch_size = positive_int(n, "clips"), positive_int(batch_size, "batch size")
        check_clips(self.n, "the sampler's dataset")
        self.seed, self.shuffle, self.rank, self.world, self.drop_last = seed, shuffle, rank, world, drop_last
        if drop_last and batch_size % world:
            raise ValueError(f"the batch size {batch_size} must be a multiple of the {world} processes")
        if drop_last and n < batch_size:
            raise ValueError(f"the training set has {n} clips, fewer than one batch of {batch_size}")
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n)

    def batches(self) -> list[np.ndarray]:
        order = self.order()
        if not self.drop_last:  # evaluation: shard, every clip once
            mine = order[self.rank::self.world]
            return [mine[i:i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        share = self.batch_size // self.world
        full = len(order) // self.batch_size
        return [order[b * self.batch_size + self.rank * share: b * self.batch_size + (self.rank + 1) * share]
                for b in range(full)]

    def __iter__(self):
        for batch in self.batches()[self.start:]:
            yield batch.tolist()

    def __len__(self) -> int:
        return max(len(self.batches()) - self.start, 0)


def _seed_worker(worker_id: int) -> None:
    """Each loader worker seeded from the loader's generator (torch, NumPy, Python); the
    samples themselves draw from (seed, epoch, index) generators, whatever the worker."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class Loader:
    """The DataLoader's batches, (videos, labels, indices, bad); a fatal `BadClip` (skip_bad
    off) is raised here, in the main process, with its message: the same with or without
    workers."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for videos, labels, indices, bad in self.loader:
            fatal = next((clip for clip in bad if clip.fatal), None)
            if fatal is not None:
                raise ValueError(fatal.message)
            yield videos, labels, indices, bad


# [ours] Loader workers start from a fork server, not as forks of this process: a process that
# holds threads (torch's pools, ONNX Runtime's, a lock taken mid-write) can hand a forked worker
# a lock that no thread will ever release, and the worker hangs. The server imports this module
# once, so each worker still starts in a fraction of a second. Where the platform has no fork
# server, DataLoader's default stands.
WORKER_START = "forkserver"


def _worker_context():
    import multiprocessing

    if WORKER_START not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context(WORKER_START)
    context.set_forkserver_preload([__name__])
    return context


def make_loader(dataset, sampler: EpochSampler, workers: int = 0, seed: int = 0) -> Loader:
    return Loader(torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        worker_init_fn=_seed_worker, generator=torch.Generator().manual_seed(seed),
        persistent_workers=False, pin_memory=False, multiprocessing_context=_worker_context() if workers else None,
    ))
