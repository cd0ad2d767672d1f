"""The loop: `fit(model, train_data, val_data, config) -> history` and `evaluate(model, data)`.

One `while` over optimizer steps: the lr is a function of the step (`optim.lr_at`); each step
takes `accum` micro-batches from the epoch sampler, clips the gradient norm and steps AdamW;
every `eval_every` steps it evaluates and checkpoints. DDP is on when torchrun's environment
says so (`distributed.setup`): each rank takes its share of every global batch, gradients are
averaged by DistributedDataParallel, and only rank 0 logs and writes.

The toolkit (spec/00-method.md §13) comes from the config: the model's stochastic depth and
activation checkpointing are set from it; a mixed batch (`mixup`, `cutmix`) trains on soft
targets, its draws a function of (seed, step, rank, micro-batch); the EMA of the weights
(`ema_decay`) is updated after every step, evaluated beside the raw weights (the ``eval_ema``
records) and saved in every checkpoint, so a resumed run restores it bitwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import ref

from ..data.datasets import EpochSampler, make_loader
from . import checkpoint as ckpt
from .config import TrainConfig, changed_fields
from .distributed import World, gather
from .ema import EMA
from .mixup import VideoMixup, soft_cross_entropy, step_generator
from .optim import build_optimizer, set_lr


class TrainingStopped(RuntimeError):
    """The run cannot go on (a non-finite loss); the last good checkpoint is kept."""


def _autocast(device: str, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class Log:
    """metrics.jsonl (one JSON line per log step and per evaluation), written by rank 0."""

    def __init__(self, out, world: World, echo=None):
        self.path = Path(out) / "metrics.jsonl" if out is not None and world.main else None
        self.echo = echo if world.main else None
        self.history: list[dict] = []

    def __call__(self, record: dict) -> None:
        self.history.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:  # appended whole, line by line: a reader never sees half a line
                f.write(json.dumps(record) + "\n")
                f.flush()


def fit(model, train_data, val_data, config: TrainConfig, out=None, *, world: World = World(), workers: int = 0,
        resume: bool = False, stop_after: int | None = None, data_config: dict | None = None,
        progress=None, say=print) -> list[dict]:
    """Train `model` (an InTIModel, float32) on `train_data`, evaluating on `val_data`.

    out: the run folder (checkpoints, metrics.jsonl, curves.png); None writes nothing.
    resume: continue from the newest loadable checkpoint in `out`, mid-epoch, with the same
    data order and lr at every step as an uninterrupted run. stop_after: end after that many
    steps, with a checkpoint, as a preempted job does; the schedule still spans config.steps.
    progress: a callable(step, loss, lr, clips_per_s) shown by the CLI's progress bar.
    Returns the history: the records written to metrics.jsonl."""
    cfg, device = config, world.device
    if out is not None and world.main:
        Path(out).mkdir(parents=True, exist_ok=True)
    raw = model.to(device)
    raw.set_drop_path(cfg.drop_path).set_grad_checkpointing(cfg.grad_checkpoint)
    optimizer = build_optimizer(raw, cfg)
    ema = EMA(raw, cfg.ema_decay) if cfg.ema_decay > 0 else None
    mixer = VideoMixup(cfg.mixup, cfg.cutmix, raw.cfg.num_classes, cfg.mix_prob, cfg.mix_switch_prob,
                       cfg.label_smoothing) if cfg.mixes else None
    frozen = {n: p.detach().clone() for n, p in raw.named_parameters() if not p.requires_grad}
    log = Log(out, world)
    data_config = dict(data_config or {})
    step, epoch, batch, best = 0, 0, 0, -math.inf
    if resume:
        found = ckpt.latest(out, log=say) if out is not None else None
        if found is None:
            raise ValueError(f"--resume: no checkpoint in {str(out)!r} to resume from")
        path, tensors, state = found
        as_stored = lambda d: json.loads(json.dumps(d))  # noqa: E731 - tuples come back as lists
        problems = (changed_fields(state["train_config"], as_stored(cfg.to_dict()), as_stored(TrainConfig().to_dict()))
                    + changed_fields(state["data"], as_stored(data_config)))
        if state["model_config"] != raw.cfg:
            problems.append(f"model config: {state['model_config']} -> {raw.cfg}")
        if problems:
            raise ckpt.CheckpointMismatch(f"cannot resume from {str(path)!r} with a changed config: " + "; ".join(problems))
        ckpt.load_model(raw, tensors, path)
        ckpt.load_optimizer(optimizer, tensors, path)
        if ema is not None:
            ema.load(tensors, repr(str(path)))
        ckpt.restore_rng(tensors, state)
        step, epoch, batch, best = state["step"], state["epoch"], state["batch"], state["best"]
        log.history = state["history"]
        say(f"resumed from {path} at step {step} (epoch {epoch}, batch {batch})")
    net = torch.nn.parallel.DistributedDataParallel(raw) if world.size > 1 else raw

    micro = cfg.batch_size // cfg.accum  # clips per micro-batch, over all ranks
    sampler = EpochSampler(len(train_data), micro, seed=cfg.seed, rank=world.rank, world=world.size)
    end = cfg.steps if stop_after is None else min(stop_after, cfg.steps)

    def batches():
        nonlocal epoch, batch
        while True:
            sampler.set_epoch(epoch, start=batch)
            train_data.set_epoch(epoch)
            for item in make_loader(train_data, sampler, workers, seed=cfg.seed + epoch):
                batch += 1
                yield item
            epoch, batch = epoch + 1, 0

    def save_state(path):
        ckpt.save(path, raw, optimizer, {"step": step, "epoch": epoch, "batch": batch, "best": best,
                                         "history": log.history, "train_config": cfg.to_dict(), "data": data_config},
                  extra=ema.tensors() if ema is not None else None)

    def checkpoint(metrics=None):
        nonlocal best
        if out is None or not world.main:
            return
        if metrics is not None and metrics["top1"] > best:
            best = metrics["top1"]
            save_state(Path(out) / ckpt.BEST)
        (Path(out) / ckpt.FOLDER).mkdir(parents=True, exist_ok=True)
        save_state(ckpt.step_path(out, step))
        save_state(Path(out) / ckpt.LAST)
        ckpt.prune(out, cfg.keep)

    source, net_loss, seen, tick = batches(), 0.0, 0, time.perf_counter()
    raw.train()
    while step < end:
        lr = set_lr(optimizer, step, cfg)
        loss_sum, skipped = 0.0, 0
        for k in range(cfg.accum):
            videos, labels, _, bad = next(source)
            skipped += bad
            if videos is None:
                continue
            sync = contextlib.nullcontext() if k == cfg.accum - 1 or world.size == 1 else net.no_sync()
            videos, labels = videos.to(device), labels.to(device)
            if mixer is not None:  # soft targets; the draws replay on resume
                videos, targets = mixer(videos, labels, step_generator(cfg.seed, step, world.rank, k))
            with sync, _autocast(device, cfg.bf16):
                try:
                    logits = net(videos)
                except ValueError as e:  # the model's own check: non-finite values from finite inputs
                    if "NaN or infinite" not in str(e):
                        raise
                    loss_sum = math.nan
                    say(f"step {step + 1}: {e}")
                    break
                loss = soft_cross_entropy(logits, targets) if mixer is not None else \
                    F.cross_entropy(logits.float(), labels, label_smoothing=cfg.label_smoothing)
            (loss / cfg.accum).backward()
            loss_sum += float(loss.detach()) / cfg.accum
            seen += len(labels) * world.size
        if not math.isfinite(loss_sum):
            last = Path(out) / ckpt.LAST if out is not None and (Path(out) / ckpt.LAST).exists() else None
            raise TrainingStopped(
                f"the loss is {loss_sum} at step {step + 1}; training stopped before the optimizer step, "
                + (f"the last good checkpoint is {last}" if last else "and no checkpoint was written yet")
            )
        if cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.clip_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(raw)
        step += 1
        net_loss = loss_sum
        if progress is not None:
            progress(step, loss_sum, lr, seen / max(time.perf_counter() - tick, 1e-9))
        if step % max(cfg.log_every, 1) == 0 or step == end:
            log({"step": step, "epoch": epoch, "loss": net_loss, "lr": lr,
                 "clips_per_s": seen / max(time.perf_counter() - tick, 1e-9), "skipped": skipped})
            seen, tick = 0, time.perf_counter()
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == end:
            metrics = evaluate(raw, val_data, batch_size=micro, world=world, workers=workers, bf16=cfg.bf16) \
                if val_data is not None else None
            if metrics is not None:
                log({"step": step, "eval": metrics})
                if ema is not None:  # the average, beside the raw weights; "best" follows the raw ones [ours]
                    log({"step": step, "eval_ema": evaluate(ema.model(raw), val_data, batch_size=micro, world=world,
                                                            workers=workers, bf16=cfg.bf16)})
            checkpoint(metrics)
            raw.train()
    for name, p in raw.named_parameters():  # a frozen backbone stays bitwise unchanged
        if name in frozen and not torch.equal(frozen[name], p.detach()):
            raise AssertionError(f"the frozen parameter {name} changed during training")
    if out is not None and world.main and stop_after is None:
        from ..figures import training_curves

        training_curves(log.history, Path(out) / "curves.png")
    return log.history


def _entropy_bits(a: torch.Tensor) -> torch.Tensor:
    a = a.double().clamp(1e-12, 1 - 1e-12)  # in float64: 1 - 1e-12 is 1.0 in float32, and 0 * log2(0) NaN
    return -(a * torch.log2(a) + (1 - a) * torch.log2(1 - a))


@torch.no_grad()
def evaluate(model, data, *, batch_size: int = 8, world: World = World(), workers: int = 0,
             bf16: bool = False) -> dict:
    """Top-1, top-5, mean class accuracy, loss, clips per second, MACs per clip, and the merge
    weights' statistics (mean entropy per merge, in bits; share of pairs whose larger weight
    is above 0.9), over every clip of `data` exactly once (ranks shard it, no padding).

    A multi-view dataset (views T x S) gives (B, V, T, 3, H, W): the softmax scores of the
    V views are averaged, and the MACs are given per view and in total."""
    raw = _unwrap(model)
    raw.eval()
    device, cfg = world.device, raw.cfg
    sampler = EpochSampler(len(data), batch_size, shuffle=False, rank=world.rank, world=world.size, drop_last=False)
    probs, labels, merges, skipped, start = [], [], [[] for _ in cfg.schedule], 0, time.perf_counter()
    for videos, y, _, bad in make_loader(data, sampler, workers):
        skipped += bad
        if videos is None:
            continue
        views = videos.shape[1] if videos.dim() == 6 else 1
        flat = videos.flatten(0, 1) if videos.dim() == 6 else videos  # (B V, T, 3, H, W)
        with _autocast(device, bf16):
            logits, trace = raw(flat.to(device), return_trace=True)
        p = logits.float().softmax(-1).unflatten(0, (len(y), views)).mean(1)  # (B, K)
        probs.append(p.cpu())
        labels.append(y)
        for j, a in enumerate(ref.trace_weights(trace, cfg)):
            a = a.float()  # (b, t, N) or (b, t, N, C)
            pair = a.unflatten(1, (a.shape[1] // 2, 2))  # (b, t/2, 2, ...)
            share = pair / pair.sum(2, keepdim=True).clamp_min(1e-12)  # normalized for sigmoid, as is for softmax
            merges[j].append((float(_entropy_bits(share[:, :, 0]).sum()), float((pair.amax(2) > 0.9).sum()),
                              share[:, :, 0].numel()))
    seconds = time.perf_counter() - start
    parts = gather(world, (torch.cat(probs) if probs else torch.zeros(0, cfg.out_dim), torch.cat(labels) if labels
                           else torch.zeros(0, dtype=torch.long), merges, skipped, seconds))
    probs = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    if len(labels) == 0:
        raise ValueError("evaluation saw no clip (every clip was bad and skipped)")
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1).indices
    correct1 = top[:, 0] == labels
    per_class = [float(correct1[labels == c].float().mean()) for c in labels.unique()]
    frames = data.frames
    macs = ref.count_macs(cfg, frames)["total"]
    views = data.views[0] * data.views[1]
    out = {
        "clips": int(len(labels)), "skipped": int(sum(p[3] for p in parts)),
        "top1": float(correct1.float().mean()), f"top{k}": float((top == labels[:, None]).any(1).float().mean()),
        "mean_class_accuracy": float(np.mean(per_class)),
        "loss": float(F.nll_loss(probs.clamp_min(1e-12).log(), labels)),
        "clips_per_s": float(len(labels) / max(max(p[4] for p in parts), 1e-9)),
        "macs_per_view": int(macs), "views": int(views), "macs_per_clip": int(macs * views),
    }
    for j in range(len(cfg.schedule)):
        stats = [s for p in parts for s in p[2][j]]
        n = sum(s[2] for s in stats)
        out[f"merge{j}_entropy_bits"] = sum(s[0] for s in stats) / max(n, 1)
        out[f"merge{j}_share_above_0.9"] = sum(s[1] for s in stats) / max(n, 1)
    return out
