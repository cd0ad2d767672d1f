"""Synthetic video tasks: deterministic generators of (frames, label), for tests, experiments
and teaching, and a writer that puts any of them on disk as real video files plus a list file,
so that the same loader (`VideoListDataset`) reads them end to end.

Each clip is a pure function of (task, seed, index): uint8 frames (T, size, size, 3) on a
grey noise background. The tasks:

- ``informative``: the class's pattern (a square of the class's colour at a random place) is
  visible in only `k` random frames; the others hold background alone. A frame-wise model
  can tell the class from the informative frames; a learned merge should keep their tokens.
- ``motion``: a white square crosses the frame in one of four directions (right, left, down,
  up); the label is the direction. Telling a clip from its reversal needs the order of frames,
  which frame-wise mean pooling cannot see; merges of neighbouring frames can.

Videos are written losslessly with FFV1 in Matroska (`.mkv`, pixel format bgr0), an encoder
that the PyAV wheel carries, so that decoding gives back the generated frames bit for bit.

    >>> frames, label = make_clip("motion", seed=0, index=3, frames=4, size=16)
    >>> frames.shape, frames.dtype, label
    ((4, 16, 16, 3), dtype('uint8'), 3)
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from ref.preprocess import positive_int

from ..io.bounds import check_clip_bytes, check_clips, check_frame_count

TASKS = ("informative", "motion")
DIRECTIONS = ("right", "left", "down", "up")
CODEC, CONTAINER, PIXEL_FORMAT = "ffv1", ".mkv", "bgr0"


def _background(rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """Grey noise, (T, size, size, 3) uint8: the clutter every task draws on. Drawn a frame at
    a time (the same numbers as one draw of the whole clip), so that the int64 draw takes one
    frame's memory, not the clip's eight times over."""
    clip = np.empty((frames, size, size, 3), dtype=np.uint8)
    for f in range(frames):
        clip[f] = 96 + rng.integers(-24, 25, size=(size, size, 1))
    return clip


def _colour(label: int, classes: int) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(label / classes, 1.0, 1.0)
    return (np.array([r, g, b]) * 255).astype(np.uint8)


def informative_clip(rng, frames: int, size: int, classes: int, k: int = 2):
    label = int(rng.integers(classes))
    clip = _background(rng, frames, size)
    side = max(size // 3, 1)
    shown = np.sort(rng.choice(frames, size=min(k, frames), replace=False))
    for f in shown:
        top, left = rng.integers(0, size - side + 1, size=2)
        clip[f, top:top + side, left:left + side] = _colour(label, classes)
    return clip, label


def motion_clip(rng, frames: int, size: int, classes: int = 4):
    label = int(rng.integers(len(DIRECTIONS)))
    clip = _background(rng, frames, size)
    side = max(size // 4, 1)
    across = np.linspace(0, size - side, frames).round().astype(int)  # the moving coordinate
    other = int(rng.integers(0, size - side + 1))  # the fixed one
    for f, pos in enumerate(across if label in (0, 2) else across[::-1]):
        top, left = (other, pos) if label < 2 else (pos, other)
        clip[f, top:top + side, left:left + side] = 255
    return clip, label


def num_classes(task: str, classes: int | None = None) -> int:
    if task == "motion":
        return len(DIRECTIONS)
    return 10 if classes is None else positive_int(classes, "classes")


def make_clip(task: str, seed: int, index: int, frames: int, size: int, classes: int | None = None,
              k: int = 2) -> tuple[np.ndarray, int]:
    """Clip `index` of a task: ((T, size, size, 3) uint8 frames, label), the same every call."""
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; choose from {', '.join(TASKS)}")
    frames, size = positive_int(frames, "frames"), positive_int(size, "size")
    check_frame_count(frames, "a synthetic clip")
    check_clip_bytes(frames, size, size, f"a synthetic clip of {frames} frames of {size} px")
    rng = np.random.default_rng([int(seed), int(index), TASKS.index(task)])
    if task == "motion":
        return motion_clip(rng, frames, size)
    return informative_clip(rng, frames, size, num_classes(task, classes), k=k)


def write_video(path, frames: np.ndarray, rate: int = 8) -> None:
    """(T, H, W, 3) uint8 frames -> a lossless FFV1 Matroska file, written atomically."""
    import av

    from ..io.atomic import atomic_write

    with atomic_write(path) as f, av.open(f, "w", format="matroska") as container:
        stream = container.add_stream(CODEC, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = PIXEL_FORMAT
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _check_disk_space(out: Path, most: int) -> None:
    """Refuse to start writing up to `most` bytes of videos where the disk has less free."""
    import shutil

    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if most > free:
        raise ValueError(f"the task's videos take up to {most:,} bytes (lossless FFV1 of noisy frames barely "
                         f"compresses), and the disk of {str(existing)!r} has {free:,} bytes free; write fewer "
                         "or smaller clips")


def write_task(out, task: str, splits: dict[str, int], seed: int = 0, frames: int = 8, size: int = 32,
               classes: int | None = None, k: int = 2, force: bool = False) -> dict[str, Path]:
    """Write a task to disk: `out/<split>/<index>.mkv`, a list file `out/<split>.txt` per split
    and `out/classes.txt`. splits: {"train": 64, "val": 32}; each split draws its clips from its
    own seed stream, so splits never share a clip. Returns {split: list file}.

    A folder that already holds files is refused unless `force` (which replaces only the files
    this writes)."""
    from .lists import write_list

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"{str(out)!r} already holds files; pass force=True (--force) to replace the task's files in it")
    counts = {split: positive_int(count, f"{split} clips") for split, count in splits.items()}
    check_clips(sum(counts.values()), f"the task's splits ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    make_clip(task, 0, 0, 1, 1, classes, k)  # the task and its classes, before any file
    check_frame_count(positive_int(frames, "frames"), "a synthetic clip")
    _check_disk_space(out, sum(counts.values()) * check_clip_bytes(frames, size, size))
    names = DIRECTIONS if task == "motion" else [f"class {c}" for c in range(num_classes(task, classes))]
    lists = {}
    for s, (split, count) in enumerate(counts.items()):
        (out / split).mkdir(parents=True, exist_ok=True)
        entries = []
        for i in range(count):
            clip, label = make_clip(task, seed * 1000 + s, i, frames, size, classes, k)
            relative = f"{split}/{i:06d}{CONTAINER}"
            write_video(out / relative, clip)
            entries.append((relative, label))
        write_list(out / f"{split}.txt", entries)
        lists[split] = out / f"{split}.txt"
    from ..io.atomic import write_text

    write_text(out / "classes.txt", "\n".join(names) + "\n")
    return lists
