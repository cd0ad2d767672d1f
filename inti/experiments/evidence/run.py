"""One run: an arm on a task with a seed and a setting (its lr multipliers and steps), trained
through the project's engine (`inti.train.fit`) and measured on val or test.

Every arm follows one base recipe (`RECIPE`): AdamW at a base lr of 1e-3 with per-group
multipliers (the tuning grid, `tuning.py`), a linear warmup over 5% of the steps, a cosine to 0,
weight decay 0.05 on matrices, gradient clipping at 1, batch 32. The val split is evaluated at
four points of every run (the convergence curve); the test split is read once, after
training, and never chooses anything. The probes are scikit-learn's logistic regression on the
cached features, their regularization chosen on val in the run.
"""

from __future__ import annotations

import time
from itertools import count, takewhile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import ref

from ...train import TrainConfig, fit
from ...train.models import fit_params
from . import cache as store
from .arms import Arm, arms as all_arms, image_config, rlt_macs
from .models import ArmModel, RunLengthModel, run_lengths
from .tasks import CLASSES, FRAMES

BASE_LR = 1e-3
RECIPE = TrainConfig(steps=400, batch_size=32, lr=BASE_LR, warmup_steps=20, weight_decay=0.05, clip_grad=1.0,
                     eval_every=100, log_every=100)
PROBE_C = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # logistic regression's inverse regularization, chosen on val
CURVE_POINTS = 4


@dataclass(frozen=True)
class Scale:
    """The sizes of a run: clips per split, the image model's pretraining steps (0: the shipped
    checkpoint's backbone), and a factor on every arm's steps (the quick mode's)."""

    train: int = 4096
    val: int = 1024
    test: int = 4096
    pretrain_steps: int = 1500
    step_factor: float = 1.0

    def sizes(self) -> dict:
        return {"train": self.train, "val": self.val, "test": self.test}


def build(arm: Arm, task: str, pretrained: dict, seed: int, threshold: float | None = None):
    """The arm's model: the pretrained backbone; θ, the head and temporal parts fresh (θ starts
    as the mean, spec/00-method.md §3.4; the pooling query and RLT's length embedding at zero)."""
    cfg = arm.config(task)
    params = fit_params(pretrained["params"], pretrained["cfg"], cfg, seed, "the pretrained image model",
                        keep_new=False)
    torch.manual_seed(seed)
    if arm.entry == "rlt":
        model = RunLengthModel(cfg, threshold, arm.frames)
    else:
        entry = "pixels" if arm.entry == "pixels" else arm.entry
        model = ArmModel(cfg, entry=entry, pool=arm.pool, reduce=arm.reduce, keep=arm.keep)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).float()
                                                 for k, v in params.items()}, strict=False)
    if unexpected or any(k not in ("temporal_pool", "run_length.temporal_embed") for k in missing):
        raise ValueError(f"the arm's parameters do not fit: missing {missing}, unexpected {unexpected}")
    return model


def rlt_threshold(videos: np.ndarray, cfg, target_macs: float) -> float:
    """RLT's threshold at which its mean MACs on `videos` (uint8 clips) are nearest target_macs
    (bisection on the mean absolute difference in the model's input units)."""
    x = torch.from_numpy(np.stack([store.to_input(v) for v in videos]))
    lo, hi = 0.0, 10.0
    for _ in range(40):
        mid = (lo + hi) / 2
        keep, _ = run_lengths(x, cfg.patch_size, mid)
        if rlt_macs(cfg, keep.sum(-1).numpy()) > target_macs:
            lo = mid
        else:
            hi = mid
    return hi


def arrays(arm: Arm, task: str, seed: int, scale: Scale, cache: Path) -> dict:
    """Per split: (the array the arm reads, labels, the informative digit frames or None)."""
    pretrained = store.pretrain(seed, scale.pretrain_steps, cache)
    kind = {"features": "tome" if arm.tome else "features", "probe": "features", "block1": "block1"}.get(arm.entry)
    out = {}
    for split, n in scale.sizes().items():
        made = store.clips(task, split, n, seed, cache)
        x = made["clips"] if kind is None else store.frozen(task, split, n, seed, pretrained, scale.pretrain_steps,
                                                             cache, kind)
        out[split] = (x, made["labels"], made["digits"])
    return out


@torch.no_grad()
def predict(model, data: store.Clips, batch: int = 256) -> dict:
    """Per-clip correctness on `data` (in order), the merges' weights (the first merge's, (n, T0,
    N), where there is one) and RLT's kept patches per frame."""
    model.eval()
    correct, weights, kept = [], [], []
    for lo in range(0, len(data), batch):
        items = [data[i] for i in range(lo, min(lo + batch, len(data)))]
        x = torch.stack([v for v, _, _ in items])
        labels = torch.tensor([y for _, y, _ in items])
        logits, trace = model(x, return_trace=True)
        correct.append((logits.argmax(-1) == labels).numpy())
        merges = list(takewhile(trace.__contains__, (ref.merge_key(j, "weights") for j in count())))
        if merges:
            weights.append([trace[k].numpy() for k in merges])
        if "kept" in trace:
            kept.append(trace["kept"].sum(-1).numpy())
    out = {"correct": np.concatenate(correct)}
    if weights:
        out["weights"] = [np.concatenate([w[j] for w in weights]) for j in range(len(weights[0]))]
    if kept:
        out["kept"] = np.concatenate(kept)
    return out


def digit_share(weights: list[np.ndarray], digit_frames) -> np.ndarray:
    """Per clip: the share of the final contribution (spec/00-method.md §6, patch tokens and the
    class token alike) that falls on the frames showing the digit; k / T0 for uniform weights."""
    c = ref.contributions(weights)  # (n, T0, N)
    per_frame = c.mean(axis=2)  # (n, T0)
    mask = np.zeros_like(per_frame, dtype=bool)
    for i, shown in enumerate(digit_frames):  # a list of frames, or a clip's info dict
        mask[i, list(shown["digit_frames"] if isinstance(shown, dict) else shown)] = True
    return (per_frame * mask).sum(1) / per_frame.sum(1)


def train_config(arm: Arm, setting: dict, seed: int, step_factor: float = 1.0) -> TrainConfig:
    steps = max(int(round(setting["steps"] * step_factor)), 8)
    every = max(steps // CURVE_POINTS, 1)
    return RECIPE.replace(steps=steps, warmup_steps=max(steps // 20, 1), seed=seed, eval_every=every, log_every=every,
                          freeze_backbone=arm.setting == "frozen", lr_head=setting["lr_head"],
                          lr_theta=setting.get("lr_select", 1.0), lr_temporal=setting.get("lr_select", 1.0),
                          lr_backbone=setting.get("lr_backbone", 1.0))


def run_probe(arm: Arm, data: dict) -> dict:
    """Logistic regression on the pooled frozen features, C chosen on val (lbfgs, to tol 1e-6)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    pool = (lambda f: np.asarray(f).max(axis=1)) if arm.pool == "max" else (lambda f: np.asarray(f).mean(axis=1))
    x = {s: pool(data[s][0]) for s in data}
    scaler = StandardScaler().fit(x["train"])
    fits = []
    for c in PROBE_C:
        clf = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(scaler.transform(x["train"]), data["train"][1])
        fits.append((clf.score(scaler.transform(x["val"]), data["val"][1]), c, clf))
    val_top1, c, clf = max(fits, key=lambda f: (f[0], -f[1]))
    return {"model": (scaler, clf), "val_top1": float(val_top1), "probe_C": c,
            "converged": bool(clf.n_iter_.max() < clf.max_iter), "curve": [[c2, float(v)] for v, c2, _ in fits],
            "correct": lambda split: clf.predict(scaler.transform(x[split])) == data[split][1]}


def run_arm(arm: Arm, task: str, seed: int, setting: dict, scale: Scale, cache: Path, measure: str = "test",
            step_factor: float = 1.0, keep_model: bool = False) -> dict:
    """Train `arm` on `task` with `seed` at `setting` ({"lr_head", "lr_select", "lr_backbone",
    "steps"}); measure on `measure` ("test", or "val" for the pilots). Returns the run's row."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = arrays(arm, task, seed, scale, cache)
    row = {"arm": arm.name, "task": task, "seed": seed, "setting": dict(setting), "measured_on": measure}
    if arm.entry == "probe":
        fitted = run_probe(arm, data)
        correct = fitted["correct"](measure)
        row |= {"val_top1": fitted["val_top1"], "probe_C": fitted["probe_C"], "converged": fitted["converged"],
                "curve": fitted["curve"], "train_s": time.perf_counter() - start}
    else:
        pretrained = store.pretrain(seed, scale.pretrain_steps, cache)
        threshold = None
        if arm.entry == "rlt":
            from .arms import inti_macs

            threshold = rlt_threshold(np.asarray(data["train"][0][:512]), arm.config(task), inti_macs(task))
            row["rlt_threshold"] = threshold
        model = build(arm, task, pretrained, seed, threshold)
        split = {s: store.Clips(data[s][0], data[s][1], arm.frames, s == "train", seed, arm.shuffle) for s in data}
        config = train_config(arm, setting, seed, step_factor * scale.step_factor)
        tick = time.perf_counter()
        history = fit(model, split["train"], split["val"], config, say=store.quiet)
        row["train_s"] = time.perf_counter() - tick
        curve = [[r["step"], r["eval"]["loss"], r["eval"]["top1"]] for r in history if "eval" in r]
        train_loss = [[r["step"], r["loss"]] for r in history if "loss" in r]
        row |= {"steps": config.steps, "val_top1": curve[-1][2], "val_loss": curve[-1][1], "curve": curve,
                "train_loss": train_loss}
        measured = predict(model, split[measure])
        correct = measured["correct"]
        if "weights" in measured and data[measure][2] is not None:
            share = digit_share(measured["weights"], data[measure][2])
            row["digit_share"] = float(share.mean())
            row["digit_share_per_clip_sd"] = float(share.std(ddof=1))
        if "kept" in measured:
            row["macs_per_clip"] = rlt_macs(arm.config(task), measured["kept"])
        if keep_model:
            row["model"] = model
    row |= {f"{measure}_top1": float(np.mean(correct)), f"{measure}_correct": "".join("1" if c else "0" for c in correct),
            "seconds": time.perf_counter() - start}
    return row


__all__ = ["Scale", "RECIPE", "run_arm", "predict", "digit_share", "build", "image_config", "CLASSES", "FRAMES"]


def worker_init() -> None:
    """A worker process of its own: one thread for torch and for NumPy's BLAS (the small model
    gains nothing from a second one, and two workers keep both cores busy)."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def timed(fn, *args, **kwargs) -> dict:
    """fn's row with the worker's wall and CPU seconds for it."""
    wall, cpu = time.perf_counter(), time.process_time()
    row = fn(*args, **kwargs)
    return row | {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def parallel(fn, calls: list[tuple], jobs: int, done, say=print, desc: str = "runs") -> None:
    """fn(*call) for every call, in `jobs` spawned worker processes; done(call, result) in this
    process as each finishes (the caller logs it at once, so an interrupted run resumes)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    if not calls:
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        futures = {pool.submit(fn, *call): call for call in calls}
        bar = tqdm(total=len(futures), desc=desc, unit="run", disable=say is store.quiet)
        for future in as_completed(futures):
            done(futures[future], future.result())
            bar.update()
        bar.close()


def prepare(missing: list[tuple], scale: Scale, out: Path, say, jobs: int) -> None:
    """The image model of every seed, then the clips and frozen outputs of every (task, seed),
    in parallel, before the runs that read them."""
    seeds = sorted({j[2] for j in missing})
    if not seeds:
        return
    parallel(pretrain_job, [(s, scale.pretrain_steps, out / "cache") for s in seeds], jobs,
             lambda call, info: say(f"image model of seed {call[0]}: {info}"), say, desc="image models")
    pairs = sorted({(j[1], j[2]) for j in missing})
    tome = {a.name for a in all_arms() if a.tome}
    calls = [(t, s, scale.sizes(), scale.pretrain_steps, out / "cache", any(j[0] in tome for j in missing if j[1] == t))
             for t, s in pairs]
    parallel(store.ensure, calls, jobs, lambda call, seconds: None, say, desc="clips and frozen outputs")


def pretrain_job(seed: int, steps: int, cache: Path) -> str:
    info = store.pretrain(seed, steps, cache)
    if info["val_top1"] is None:
        return "the shipped checkpoint's backbone (no pretraining)"
    return f"val top-1 {info['val_top1']:.3f}, trained in {info['seconds']:.0f} s" + (" (cached)" if info["cached"] else "")
