"""Classify a video with trained InTI weights: the views, the averaged softmax, the top k; what
`inti predict` runs, and what a script calls.

    >>> from inti.io.weights import load
    >>> from inti.predict import predict, top_k
    >>> from torch_impl import from_ref_params
    >>> w = load("run/best.safetensors")                                 # doctest: +SKIP
    >>> model = from_ref_params(w.params, w.cfg, "float32").eval()       # doctest: +SKIP
    >>> p = predict(model, "clip.mp4", frames=8, views=(4, 3))           # doctest: +SKIP
    >>> top_k(p.probabilities, 5)                                        # doctest: +SKIP

A view is one temporal clip and one spatial crop, as `inti eval` takes them [ours: the rule of
video papers' multi-view testing]: temporal view t of T samples each of the `frames` segments at
(t + 1/2) / T of its length (`inti.data.sampling.segment_indices`), and spatial crop s of S is the
s-th of S crops spread along the long side after resizing its short side to the model's size
(`inti.data.transforms.clip_transform`). With 1x1 this is the spec's preprocessing
(spec/00-method.md §7: segment centres, resize, centre crop, CLIP's normalization), exactly the
pixels `inti.io.clips.load_clip` gives. The views' softmax scores are averaged, as `inti eval`
averages them. Views run one at a time, so memory stays at one view's clip and forward.

Bounds [ours], so that nothing read from a command line or a file allocates without a limit:
`MAX_VIDEOS` videos a run (a folder's included), `MAX_FRAMES` frames a view, the views of
`inti.cli.common.MAX_VIEWS` per axis, a class-name file of at most `MAX_CLASSES_BYTES` bytes and
names of at most `MAX_CLASS_NAME` characters. Decoding bounds each clip's size itself
(`inti.io.decode`).

torch is imported inside the functions that run the model, so the CLI can read the bounds
without it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import ref
from ref.checks import check_frames
from ref.config import ModelConfig
from ref.preprocess import positive_int

MAX_VIDEOS = 10_000  # videos in one run, the files of a folder included
MAX_FRAMES = 128  # frames a view (a ViT-L/14 forward on 128 frames holds about 0.5 GB of activations)
MAX_CLASSES_BYTES = 4 * 2**20  # a class-name file (ImageNet-21k's 21,841 names take about 0.4 MB)
MAX_CLASS_NAME = 200  # characters in one class name
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv",
                  ".3gp", ".ts")  # what a folder's files are taken as videos by (case-insensitive)


# ---------------------------------------------------------------------------------------------
# what is asked: the videos, the model, the class names


def list_videos(paths, limit: int | None = None) -> list[Path]:
    """The videos to classify, in order: each path as given, a folder as its video files
    (`VIDEO_SUFFIXES`, not hidden, sorted by name, not recursive), and a bare name that is no
    file as the bundled clip of that name ("bikes.mp4" or "bikes", as `inti demo` takes it).

    A path that does not exist stays in the list (it fails on its own when it is read, and the
    other videos still run). Raises ValueError for a folder without videos and for more than
    `limit` (default `MAX_VIDEOS`) videos in all, counted while a folder is read, before anything
    is kept past it."""
    from .io.clips import bundled_clips

    limit = positive_int(MAX_VIDEOS if limit is None else limit, "limit")
    found: list[Path] = []
    for given in paths:
        path = Path(os.path.expanduser(os.fspath(given)))
        if path.is_dir():
            inside = []
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in VIDEO_SUFFIXES:
                        continue
                    if not entry.is_file():
                        continue
                    inside.append(path / entry.name)
                    if len(found) + len(inside) > limit:
                        raise ValueError(f"more than {limit:,} videos to classify (folder {str(path)!r} brings them "
                                         f"over); pass fewer videos or a smaller folder")
            if not inside:
                raise ValueError(f"folder {str(path)!r} holds no video files (looked for {', '.join(VIDEO_SUFFIXES)})")
            found += sorted(inside, key=lambda p: p.name)
            continue
        name = os.fspath(given)
        if not path.exists() and "/" not in name and os.sep not in name:
            clips = bundled_clips()
            path = next((clips[c] for c in (name, name + ".mp4") if c in clips), path)
        found.append(path)
        if len(found) > limit:
            raise ValueError(f"more than {limit:,} videos to classify; pass fewer")
    if not found:
        raise ValueError("no videos to classify")
    return found


def check_classifier(cfg: ModelConfig, frames: int, where: str = "the weights") -> None:
    """Raise ValueError, saying why, unless a model of `cfg` classifies clips of `frames` frames:
    it has a head (num_classes > 0), and the frame count fits its schedule."""
    if not cfg.num_classes:
        raise ValueError(f"{where} hold no classification head (num_classes 0: the model returns "
                         f"{cfg.out_dim}-wide features); predicting classes needs weights with a head, "
                         "such as a checkpoint of inti train")
    positive_int(frames, "frames")
    if frames > MAX_FRAMES:
        raise ValueError(f"frames must be at most {MAX_FRAMES}, got {frames}")
    try:
        check_frames(frames, cfg)
    except ValueError as e:
        raise ValueError(f"{frames} frames do not fit the schedule of {where}: {e}") from None


def read_class_names(path, num_classes: int) -> list[str]:
    """The class names of a class-name file (one per line, line k names class k; the format of
    `inti.data.lists.read_classes`), checked against the model's head: exactly `num_classes`
    names, each at most `MAX_CLASS_NAME` characters with no control character. The file's size
    is checked (at most `MAX_CLASSES_BYTES`) before it is read."""
    from .data.lists import read_classes
    from .io.files import check_regular_file

    check_regular_file(path, "class-name file", missing="no such class-name file")
    size = os.stat(path).st_size
    if size > MAX_CLASSES_BYTES:
        raise ValueError(f"class-name file {os.fspath(path)!r} is {size:,} bytes, over the limit of "
                         f"{MAX_CLASSES_BYTES:,}")
    names = read_classes(path)
    if len(names) != num_classes:
        raise ValueError(f"class-name file {os.fspath(path)!r} names {len(names)} classes, but the model's head has "
                         f"{num_classes}")
    for line, name in enumerate(names, 1):
        if len(name) > MAX_CLASS_NAME:
            raise ValueError(f"class-name file {os.fspath(path)!r}: name {line} is {len(name)} characters, over the "
                             f"limit of {MAX_CLASS_NAME}")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            raise ValueError(f"class-name file {os.fspath(path)!r}: name {line} holds a control character")
    return names


def macs_per_clip(cfg: ModelConfig, frames: int, views=(1, 1)) -> int:
    """The cost model's MACs for one video: `ref.count_macs` of one view, times the views."""
    return ref.count_macs(cfg, frames)["total"] * views[0] * views[1]


def central_view(views) -> tuple[int, int]:
    """The view nearest the clip's middle, (temporal, spatial) counted from 0: the one `--explain`
    draws. With 1x1 it is the only view; with an odd count on an axis, the centre one."""
    return views[0] // 2, views[1] // 2


# ---------------------------------------------------------------------------------------------
# the prediction


@dataclass(frozen=True)
class Prediction:
    """What `predict` found for one video.

    probabilities: (K,) float64, the softmax of each view's logits, averaged over the views.
    clip, contributions: with explain=True, the central view's clip (T, 3, H, W) as the model
    read it and its frame contributions (T, N) (spec/00-method.md §6, `ref.contributions`),
    None without merges; else None.
    """

    video: Path
    probabilities: np.ndarray = field(repr=False)
    frames: int
    views: tuple[int, int]
    seconds: float
    clip: np.ndarray | None = field(default=None, repr=False)
    contributions: np.ndarray | None = field(default=None, repr=False)


def view_clips(video, frames: int, size: int, views=(1, 1)):
    """Each view of a video file, in order ((t, s), clip (frames, 3, size, size) float32): the
    file decoded once per temporal view (only the sampled frames, `inti.io.clips.decode`), each
    spatial crop taken from those frames. Raises what decoding raises: FileNotFoundError, or a
    ValueError naming the file (unreadable, truncated, fewer frames than asked, too large)."""
    from .data.sampling import segment_indices
    from .data.transforms import clip_transform
    from .io.clips import decode

    temporal, spatial = (positive_int(v, "views") for v in views)
    for t in range(temporal):
        def pick(n, count, t=t):
            return segment_indices(n, count, False, view=t, views=temporal)

        decoded = decode(video, sample=frames, pick=pick)  # (frames, h, w, 3) uint8
        for s in range(spatial):
            yield (t, s), clip_transform(decoded, size, spatial=s, spatials=spatial)


def predict(model, video, *, frames: int = 8, views=(1, 1), explain: bool = False) -> Prediction:
    """Classify one video file with an `InTIModel` that has a head, in eval mode, on any device
    and in any dtype: every view's softmax (in float64), averaged. explain: also keep the
    central view's clip and its frame contributions."""
    import torch

    cfg = model.cfg
    check_classifier(cfg, frames, "the model")
    views = tuple(views)
    start = time.perf_counter()
    weight = next(model.parameters())  # the model's device and dtype
    total, clip, contrib = None, None, None
    chosen = central_view(views)
    for at, view in view_clips(video, frames, cfg.image_size, views):
        keep = explain and at == chosen
        batch = torch.from_numpy(view[None]).to(device=weight.device, dtype=weight.dtype)  # (1, T, 3, H, W)
        with torch.no_grad():
            out = model(batch, return_trace=keep)
        logits, trace = out if keep else (out, None)
        p = torch.softmax(logits.double(), dim=-1)[0].cpu().numpy()  # (K,)
        total = p if total is None else total + p
        if keep:
            clip = view
            if cfg.schedule:
                weights = [w.double().cpu().numpy() for w in ref.trace_weights(trace, cfg)]
                contrib = ref.contributions(weights)[0]  # (T, N)
    return Prediction(Path(video), total / (views[0] * views[1]), frames, views, time.perf_counter() - start,
                      clip, contrib)


def top_k(probabilities, k: int, names=None) -> list[dict]:
    """The k most probable classes, most probable first: [{"rank", "index", "class",
    "probability"}], the class named by `names` (index k -> names[k]) or by its index."""
    p = np.asarray(probabilities, dtype=np.float64)
    k = positive_int(k, "k")
    if k > p.shape[-1]:
        raise ValueError(f"top {k} asked of {p.shape[-1]} classes")
    order = np.argsort(-p, kind="stable")[:k]
    return [{"rank": r + 1, "index": int(i), "class": names[i] if names is not None else str(int(i)),
             "probability": float(p[i])} for r, i in enumerate(order)]
