"""What every run of a seed shares, computed once and kept in OUT/cache: the image model, the
clips, and the frozen image model's outputs on them. All are deterministic by seed, so a
cached file is what a rerun would compute, and a rerun of the experiment reads them.

- ``pretrained-seed{s}-{steps}.safetensors`` (+ .json: its val top-1 and time): the image model;
- ``{task}-s{s}-{split}-{n}.clips.npy`` uint8 (n, T, 32, 32, 3), with ``.labels.npy`` and
  ``.digits.npy`` (informative: the digit frames of each clip);
- ``...-p{steps}.block1.npy`` float32 (n, T, N, C): the frozen first block's output;
- ``...-p{steps}.features.npy`` float32 (n, T, C): ln_post of each frame's class token after the
  last block (naive adaptation's frame features);
- ``...-p{steps}.tome.npy`` float32 (n, T, C): the same through ToMe at InTI's MACs.

Arrays are memory-mapped when read, so the worker processes share one copy in the page cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

import ref
from torch_impl import ToMeModel, from_ref_params

from ...data.sampling import segment_indices
from ...io.atomic import atomic_write, write_text
from ...train import TrainConfig, fit
from .tasks import CLASSES, FRAMES, make_split, task_clip, to_input
from .arms import image_config, tome_r

# From pilot runs on the val split: 1,500 steps reach about 77% val top-1 (3,000: 79%).
PRETRAIN = TrainConfig(steps=1500, batch_size=128, lr=2e-3, warmup_steps=50, weight_decay=0.05,
                       eval_every=0, log_every=100)
PRETRAIN_IMAGES, PRETRAIN_VAL = 12000, 512


def quiet(*_args, **_kwargs) -> None:
    pass


class Clips(torch.utils.data.Dataset):
    """Clips held in an array (memory-mapped or not), as the engine's datasets give them:
    (x, label, index), x the clip's frames along axis 0 of `array[index]`.

    array: uint8 frames (n, T, H, W, 3), converted here to the model's input, or any float
    array (n, T, ...) of cached frozen outputs. frames < T: TSN sampling
    (`inti.data.sampling`), random offsets in training (seeded by (seed, epoch, index)), segment
    centres otherwise. shuffle: each clip's frames in a fixed random order of its own."""

    def __init__(self, array: np.ndarray, labels: np.ndarray, frames: int, train: bool, seed: int = 0,
                 shuffle: bool = False):
        self.array, self.labels = array, np.asarray(labels, dtype=np.int64)
        self.frames, self.train, self.seed, self.shuffle = frames, train, seed, shuffle
        self.views, self.epoch = (1, 1), 0
        self.num_classes = int(self.labels.max()) + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def order(self, index: int) -> np.ndarray:
        n = self.array.shape[1]
        idx = np.arange(n)
        if self.shuffle:
            idx = np.random.default_rng([self.seed, 99, index]).permutation(n)
        if self.frames < n:
            rng = np.random.default_rng([self.seed, self.epoch, index, 5]) if self.train else None
            idx = idx[segment_indices(n, self.frames, self.train, rng=rng)]
        return idx

    def __getitem__(self, index: int):
        x = np.asarray(self.array[index])[self.order(index)]
        x = to_input(x) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
        return torch.from_numpy(np.ascontiguousarray(x)), int(self.labels[index]), index


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array))


def _load(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def pretrain(seed: int, steps: int, cache: Path | None) -> dict:
    """The image model of `seed`, trained on single digit-on-clutter frames (`PRETRAIN`), read
    from the cache when there. steps 0: the shipped checkpoint's backbone (the quick mode)."""
    from ...io.params import load_params, save_params

    if steps == 0:
        from ...assets import trained_weights

        params, cfg = load_params(trained_weights())
        return {"params": params, "cfg": cfg, "cached": True, "seconds": 0.0, "val_top1": None}
    path = None if cache is None else Path(cache) / f"pretrained-seed{seed}-{steps}.safetensors"
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        params, cfg = load_params(path)
        info = json.loads(path.with_suffix(".json").read_text())
        return {"params": params, "cfg": cfg, "cached": True, "seconds": info["seconds"], "val_top1": info["val_top1"]}
    cfg = image_config(CLASSES["image"])
    torch.manual_seed(seed)
    model = from_ref_params(ref.init_params(cfg, seed=seed), cfg, dtype=torch.float32)
    videos, labels, _ = make_split("image", "train", PRETRAIN_IMAGES, seed)
    train = Clips(videos, labels, 1, True, seed)
    val = Clips(*make_split("image", "val", PRETRAIN_VAL, 0)[:2], 1, False, seed)
    start = time.perf_counter()
    history = fit(model, train, val, PRETRAIN.replace(steps=steps, seed=seed), say=quiet)
    seconds = time.perf_counter() - start
    params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    val_top1 = history[-1]["eval"]["top1"]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_params(path, params, cfg)
        write_text(path.with_suffix(".json"), json.dumps({"seed": seed, "val_top1": val_top1, "seconds": seconds,
                                                          "steps": steps}) + "\n")
    return {"params": params, "cfg": cfg, "cached": False, "seconds": seconds, "val_top1": val_top1}


def _stem(cache: Path, task: str, seed: int, split: str, n: int) -> Path:
    return Path(cache) / f"{task}-s{seed}-{split}-{n}"


def clips(task: str, split: str, n: int, seed: int, cache: Path) -> dict:
    """The first n clips of (task, split, seed): {"clips" uint8, "labels", "digits" or None}."""
    stem = _stem(cache, task, seed, split, n)
    files = {k: stem.with_suffix(f".{k}.npy") for k in ("clips", "labels", "digits")}
    if not (files["clips"].exists() and files["labels"].exists()):
        made = [task_clip(task, split, i, seed) for i in range(n)]
        files["clips"].parent.mkdir(parents=True, exist_ok=True)
        if task == "informative":
            _save(files["digits"], np.array([m[2]["digit_frames"] for m in made], dtype=np.int64))
        _save(files["labels"], np.array([m[1] for m in made], dtype=np.int64))
        _save(files["clips"], np.stack([m[0] for m in made]))
    return {"clips": _load(files["clips"]), "labels": np.load(files["labels"]),
            "digits": np.load(files["digits"]) if files["digits"].exists() else None}


@torch.no_grad()
def frozen_outputs(pretrained: dict, frames_uint8: np.ndarray, batch: int = 128) -> dict:
    """The frozen image model on clips: {"block1": (n, T, N, C), "features": (n, T, C)}."""
    cfg = pretrained["cfg"].replace(schedule=(), num_classes=0)
    params = {k: v for k, v in pretrained["params"].items() if not k.startswith(("head.", "merges."))}
    model = from_ref_params(params, cfg, dtype=torch.float32).eval()
    block1, features = [], []
    for lo in range(0, len(frames_uint8), batch):
        x = torch.from_numpy(np.stack([to_input(f) for f in frames_uint8[lo:lo + batch]]))
        trace = {}
        h = model.forward_features(x, trace=trace)  # the one loop: no merges, so every frame's tokens
        block1.append(trace[ref.block_key(0)].numpy().copy())
        features.append(model.ln_post(h[:, :, 0]).numpy().copy())
    return {"block1": np.concatenate(block1), "features": np.concatenate(features)}


@torch.no_grad()
def tome_features(pretrained: dict, frames_uint8: np.ndarray, task: str, batch: int = 128) -> np.ndarray:
    """ln_post of each frame's class token through ToMe at InTI's MACs (`arms.tome_r`), (n, T, C)."""
    cfg = pretrained["cfg"].replace(schedule=(), num_classes=0)
    params = {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in pretrained["params"].items()
              if not k.startswith(("head.", "merges."))}
    model = ToMeModel(cfg, tome_r(task))
    model.load_state_dict(params)
    model.eval()
    out = []
    for lo in range(0, len(frames_uint8), batch):
        x = torch.from_numpy(np.stack([to_input(f) for f in frames_uint8[lo:lo + batch]]))
        _, trace = model(x, return_trace=True)
        out.append(model.ln_post(trace[f"blocks.{cfg.depth - 1}"][:, :, 0]).numpy().copy())
    return np.concatenate(out)


def frozen(task: str, split: str, n: int, seed: int, pretrained: dict, steps: int, cache: Path, kind: str) -> np.ndarray:
    """A cached frozen output of (task, split, seed)'s first n clips: kind "block1", "features"
    or "tome"; computed (and the clips made) when missing."""
    stem = _stem(cache, task, seed, split, n)
    path = stem.with_suffix(f".p{steps}.{kind}.npy")
    if not path.exists():
        made = clips(task, split, n, seed, cache)["clips"]
        if kind == "tome":
            _save(path, tome_features(pretrained, made, task))
        else:
            for name, array in frozen_outputs(pretrained, made).items():
                _save(stem.with_suffix(f".p{steps}.{name}.npy"), array)
    return _load(path)


def ensure(task: str, seed: int, sizes: dict, steps: int, cache: Path, tome: bool) -> float:
    """Make every cached file of (task, seed) that is missing; returns the seconds it took."""
    start = time.perf_counter()
    pretrained = pretrain(seed, steps, cache)
    for split, n in sizes.items():
        frozen(task, split, n, seed, pretrained, steps, cache, "block1")
        if tome:
            frozen(task, split, n, seed, pretrained, steps, cache, "tome")
    return time.perf_counter() - start


__all__ = ["Clips", "PRETRAIN", "pretrain", "clips", "frozen", "ensure", "FRAMES"]
