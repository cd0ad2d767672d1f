"""Train and measure: pretrain the image model per seed, then every variant on every task.

All training goes through the project's engine (`inti.train.fit`) with one recipe (`RECIPE`):
the backbone frozen, θ, the head and the temporal modules trained (parameter-efficient
adaptation, the setting where the merge itself has to do the work; `README` says why). The
val split is evaluated at the end of each run; the test split is read once per run, after
training, and never chooses anything.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import ref

from ...data.sampling import segment_indices
from ...train import TrainConfig, fit
from ...train.models import fit_params
from torch_impl import from_ref_params
from .tasks import CLASSES, FRAMES, make_split
from .variants import Variant, image_config, tome_r


@dataclass(frozen=True)
class Scale:
    """The sizes of a run: the full experiment, or the quick mode the tests run."""

    seeds: tuple = (0, 1, 2)
    pretrain_steps: int = 1500
    pretrain_images: int = 12000
    steps: int = 300
    train_clips: int = 2048
    val_clips: int = 512
    test_clips: int = 1024
    batch: int = 32


FULL = Scale()
# The quick mode (the tests): one seed, no pretraining (the backbone of the shipped checkpoint,
# which is seed 0's image model: the backbone stays frozen), fewer steps and clips.
QUICK = Scale(seeds=(0,), pretrain_steps=0, pretrain_images=0, steps=150, train_clips=1024, val_clips=128,
              test_clips=256)

# From pilot runs on the val split: 1,500 steps reach about 77% val top-1 (3,000: 79%).
PRETRAIN = TrainConfig(steps=FULL.pretrain_steps, batch_size=128, lr=2e-3, warmup_steps=50, weight_decay=0.05,
                       eval_every=0, log_every=100)
RECIPE = TrainConfig(steps=FULL.steps, batch_size=32, lr=1e-3, warmup_steps=30, weight_decay=0.05,
                     freeze_backbone=True, eval_every=0, log_every=50)


class TensorClips(torch.utils.data.Dataset):
    """Clips held in memory, as the engine's datasets give them: (video, label, index).

    frames < the clips' own: TSN sampling (`inti.data.sampling`), random offsets in training
    (seeded by (seed, epoch, index)), segment centres otherwise. shuffle: each clip's frames in
    a fixed random order of its own (the order-blind control)."""

    def __init__(self, videos: np.ndarray, labels: np.ndarray, frames: int, train: bool, seed: int = 0,
                 shuffle: bool = False):
        self.videos, self.labels = torch.from_numpy(videos), torch.from_numpy(labels)
        self.frames, self.train, self.seed, self.shuffle = frames, train, seed, shuffle
        self.views, self.epoch = (1, 1), 0
        self.num_classes = int(labels.max()) + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def order(self, index: int) -> np.ndarray:
        n = self.videos.shape[1]
        idx = np.arange(n)
        if self.shuffle:
            idx = np.random.default_rng([self.seed, 99, index]).permutation(n)
        if self.frames < n:
            rng = np.random.default_rng([self.seed, self.epoch, index, 5]) if self.train else None
            idx = idx[segment_indices(n, self.frames, self.train, rng=rng)]
        return idx

    def __getitem__(self, index: int):
        return self.videos[index, self.order(index)], int(self.labels[index]), index


def quiet(*_args, **_kwargs) -> None:
    pass


def pretrain(seed: int, scale: Scale, cache: Path | None) -> dict:
    """The image model of `seed`, trained on single digit-on-clutter frames; cached as
    `cache/pretrained-seed{seed}-{steps}.safetensors` with its val top-1 and time in a .json
    beside it (and read from there when present). pretrain_steps 0: the shipped checkpoint."""
    from ...io.params import load_params, save_params

    import json

    if scale.pretrain_steps == 0:  # the quick mode: the shipped model's backbone, frozen in its training
        from ...assets import trained_checkpoint

        params, cfg = load_params(trained_checkpoint())
        return {"params": params, "cfg": cfg, "cached": True, "seconds": 0.0, "val_top1": None}
    path = None if cache is None else Path(cache) / f"pretrained-seed{seed}-{scale.pretrain_steps}.safetensors"
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        params, cfg = load_params(path)
        info = json.loads(path.with_suffix(".json").read_text())
        return {"params": params, "cfg": cfg, "cached": True, "seconds": info["seconds"], "val_top1": info["val_top1"]}
    cfg = image_config(CLASSES["image"])
    torch.manual_seed(seed)
    model = from_ref_params(ref.init_params(cfg, seed=seed), cfg, dtype=torch.float32)
    train = TensorClips(*make_split("image", "train", scale.pretrain_images, seed)[:2], frames=1, train=True, seed=seed)
    val = TensorClips(*make_split("image", "val", scale.val_clips, 0)[:2], frames=1, train=False, seed=seed)
    start = time.perf_counter()
    history = fit(model, train, val, PRETRAIN.replace(steps=scale.pretrain_steps, seed=seed), say=quiet)
    seconds = time.perf_counter() - start
    params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    val_top1 = history[-1]["eval"]["top1"]
    if path is not None:
        from ...io.atomic import write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        save_params(path, params, cfg)
        write_text(path.with_suffix(".json"), json.dumps({"seed": seed, "val_top1": val_top1, "seconds": seconds,
                                                          "steps": scale.pretrain_steps}) + "\n")
    return {"params": params, "cfg": cfg, "cached": False, "seconds": seconds, "val_top1": val_top1}


def build_model(variant: Variant, task: str, pretrained: dict, seed: int):
    """The variant's model: the pretrained backbone; θ, the head and temporal modules fresh
    (spec/00-method.md §3.4's init: θ starts as the mean)."""
    cfg = variant.config(task)
    params = fit_params(pretrained["params"], pretrained["cfg"], cfg, seed, "the pretrained image model",
                        keep_new=False)
    if variant.tome:
        from torch_impl.tome import ToMeModel

        model = ToMeModel(cfg, tome_r(task))
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in params.items()})
        return model
    return from_ref_params(params, cfg, dtype=torch.float32)


@torch.no_grad()
def predict(model, data: TensorClips, batch: int = 128) -> dict:
    """Per-clip correctness on `data` (in order), the inference time per clip, and each merge's
    weights (the first merge's, (n, T0, N)) where the model has merges."""
    model.eval()
    correct, weights, seconds = [], [], 0.0
    for lo in range(0, len(data), batch):
        items = [data[i] for i in range(lo, min(lo + batch, len(data)))]
        videos = torch.stack([v for v, _, _ in items])
        labels = torch.tensor([y for _, y, _ in items])
        start = time.perf_counter()
        logits, trace = model(videos, return_trace=True)
        seconds += time.perf_counter() - start
        correct.append((logits.argmax(-1) == labels).numpy())
        merges = sorted(k for k in trace if k.startswith("merges.") and k.endswith(".weights"))
        if merges:
            weights.append([trace[k].numpy() for k in merges])
    out = {"correct": np.concatenate(correct), "ms_per_clip": 1000 * seconds / len(data)}
    if weights:
        out["weights"] = [np.concatenate([w[j] for w in weights]) for j in range(len(weights[0]))]
    return out


def digit_share(weights: list[np.ndarray], infos: list[dict]) -> np.ndarray:
    """Per clip: the share of the final contribution (spec/00-method.md §6, patch tokens and the
    class token alike) that falls on the frames showing the digit; k / T0 for uniform weights."""
    c = ref.contributions(weights)  # (n, T0, N)
    per_frame = c.mean(axis=2)  # (n, T0)
    mask = np.zeros_like(per_frame, dtype=bool)
    for i, info in enumerate(infos):
        mask[i, info["digit_frames"]] = True
    return (per_frame * mask).sum(1) / per_frame.sum(1)


def run_variant(variant: Variant, task: str, seed: int, pretrained: dict, data: dict, scale: Scale) -> dict:
    """Train one variant on one task with one seed; measure it on val and test."""
    (tr_v, tr_y, _), (va_v, va_y, _), (te_v, te_y, te_info) = data["train"], data["val"], data["test"]
    train = TensorClips(tr_v, tr_y, variant.frames, True, seed, variant.shuffle)
    val = TensorClips(va_v, va_y, variant.frames, False, seed, variant.shuffle)
    test = TensorClips(te_v, te_y, variant.frames, False, seed, variant.shuffle)
    torch.manual_seed(seed)
    model = build_model(variant, task, pretrained, seed)
    start = time.perf_counter()
    history = fit(model, train, val, RECIPE.replace(steps=scale.steps, batch_size=scale.batch, seed=seed), say=quiet)
    train_s = time.perf_counter() - start
    measured = predict(model, test)
    row = {
        "variant": variant.name, "task": task, "seed": seed,
        "val_top1": history[-1]["eval"]["top1"], "test_top1": float(measured["correct"].mean()),
        "test_correct": "".join("1" if c else "0" for c in measured["correct"]),
        "train_s": train_s, "infer_ms_per_clip": measured["ms_per_clip"],
        "final_loss": next(r["loss"] for r in reversed(history) if "loss" in r),
    }
    if "weights" in measured and task == "informative" and not variant.shuffle:
        share = digit_share(measured["weights"], te_info)
        row["digit_share"] = float(share.mean())
        row["model"] = model  # the caller keeps what it needs (a checkpoint, the maps) and drops it
    return row


# ---------------------------------------------------------------------------------------------
# the whole experiment


def machine() -> dict:
    """What ran it: the CPU's model, cores and bf16 flags, torch's threads and version."""
    import os
    import platform

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return {"cpu": cpu, "cores": cores, "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": platform.python_version()}


@functools.lru_cache(maxsize=3)
def task_data(task: str, seed: int, scale: Scale) -> dict:
    """The seed's own training clips; val and test the same for every seed (data seed 0), so
    that every variant and seed is tested on the same clips."""
    return {"train": make_split(task, "train", scale.train_clips, seed),
            "val": make_split(task, "val", scale.val_clips, 0),
            "test": make_split(task, "test", scale.test_clips, 0)}


def _pretrain_job(seed: int, scale: Scale, cache: Path) -> dict:
    torch.set_num_threads(1)
    pre = pretrain(seed, scale, cache)
    return {"seed": seed, "cached": pre["cached"], "val_top1": pre["val_top1"], "seconds": pre["seconds"],
            "steps": scale.pretrain_steps}


def _run_job(variant: Variant, task: str, seed: int, scale: Scale, cache: Path, keep) -> dict:
    """One run in a worker process of its own, on one thread (the small model gains nothing
    from a second one; two workers keep both cores busy)."""
    torch.set_num_threads(1)
    pre = pretrain(seed, scale, cache)  # from the cache, written by the first phase
    data = task_data(task, seed, scale)
    row = run_variant(variant, task, seed, pre, data, scale)
    model = row.pop("model", None)
    if keep is not None and model is not None:
        keep(row, model, data)
    return row


def experiment(out: Path, scale: Scale, chosen: list[Variant], say=print, keep=None, jobs: int = 2) -> list[dict]:
    """Every (variant, task, seed) of `chosen`, in `jobs` worker processes of one thread each.

    First the image model of every seed (cached in out/cache), then the runs. Each finished
    run is appended to `out/runs.jsonl` at once, and a rerun skips the runs found there (delete
    the file, or run with --force, to start over); every run is seeded, so the order in which
    the workers finish changes nothing. keep(row, model, data): called in the worker with each
    row that has a model (informative frames, with merges) before the model is dropped; a
    finished run is trained again where keep.wants(variant, task, seed) (its model is needed)."""
    import json
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    done = {}
    if log.exists():
        for n, line in enumerate(log.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
                done[(row["variant"], row["task"], row["seed"])] = row
            except (ValueError, KeyError) as error:
                raise ValueError(f"{log} line {n} is not a finished run ({error}); delete the file or use --force") from None
    todo = [(v, task, seed) for seed in scale.seeds for task in ("informative", "motion", "arrow")
            for v in chosen if task in v.tasks]
    rows = [done[(v.name, t, s)] for v, t, s in todo if (v.name, t, s) in done and not (keep and keep.wants(v.name, t, s))]
    todo = [(v, t, s) for v, t, s in todo if (v.name, t, s) not in done or (keep and keep.wants(v.name, t, s))]
    if not todo:
        return rows
    cache = out / "cache"
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        seeds = sorted({s for _, _, s in todo})
        for info in pool.map(_pretrain_job, seeds, [scale] * len(seeds), [cache] * len(seeds)):
            if info["val_top1"] is None:
                say(f"seed {info['seed']}: the backbone of the shipped checkpoint (no pretraining)")
            else:
                say(f"the image model of seed {info['seed']}: val top-1 {info['val_top1']:.3f}, trained in "
                    f"{info['seconds']:.0f} s" + (" (cached)" if info["cached"] else ""))
        futures = {pool.submit(_run_job, v, t, s, scale, cache, keep): (v.name, t, s) for v, t, s in todo}
        bar = tqdm(total=len(futures), desc="runs", unit="run", disable=say is quiet)
        for future in as_completed(futures):
            row = future.result()
            key = futures[future]
            if key not in done:
                with open(log, "a") as f:
                    f.write(json.dumps(row) + "\n")
            rows.append(row)
            bar.update()
            bar.set_postfix_str(f"{key[0]}/{key[1]}/{key[2]}: {row['test_top1']:.3f}")
        bar.close()
    return rows
