"""Inference speed of the run's trained models: clips per second at batch 32, every arm in one
process on one thread, timed interleaved (each round times every arm once, in a fresh random
order), so that a slow moment of a shared machine hits every arm alike; the median over the
rounds is kept. It is its own step (`--timing-only`), so that it can be rerun on a quiet
machine; /proc/loadavg is recorded before and after.

Each arm runs whole, from pixels (the cached frozen parts included), on the first 32 test clips
of its first task. The probes are naive adaptation's backbone with a linear classifier: they
are timed as naive. RLT runs as built here: its dropped tokens are masked out of attention,
not removed, so its time does not fall with its MACs (a packed implementation would need
attention over sequences of different lengths).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from ...io.atomic import write_text
from .arms import arm as arm_named, arms, macs
from .cache import Clips, clips
from .driver import MODELS, QUICK, FULL, settings_for
from .run import build

BATCH = 32


def _load() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def whole(name: str, task: str, path: Path, pretrained: dict):
    """The trained arm as one model from pixels (its file holds every parameter it trained)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    a = arm_named(name)
    with safe_open(str(path), "pt") as f:
        threshold = (f.metadata() or {}).get("rlt_threshold") or None
    entry = "pixels" if a.entry in ("features", "block1") else a.entry
    model = build(dataclasses.replace(a, entry=entry), task, pretrained, 0,
                  None if threshold is None else float(threshold))
    if a.tome:
        from torch_impl import ToMeModel

        from .arms import tome_r

        tome = ToMeModel(a.config(task), tome_r(task))
        tome.load_state_dict(load_file(str(path)))
        return tome.eval()
    model.load_state_dict(load_file(str(path)))
    return model.eval()


@torch.no_grad()
def time_arms(out: Path, rounds: int = 30, quick: bool = False, say=print) -> dict:
    from .cache import pretrain

    out = Path(out)
    chosen = settings_for(out, quick)
    scale = QUICK if quick else FULL
    seed = chosen["plan"]["seeds"][0]
    folder = out / "cache" / MODELS
    found = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not found:
        raise ValueError(f"no trained models in {folder}: run the experiment first")
    torch.set_num_threads(1)
    pretrained = pretrain(seed, scale.pretrain_steps, out / "cache")
    models, inputs, names = {}, {}, [a.name for a in arms()]
    for path in found:
        name, task = path.stem.rsplit("-", 1)
        if name not in names or name in models:
            continue  # one task per arm: the architecture is the task's but for the head
        a = arm_named(name)
        test = clips(task, "test", chosen["plan"]["test_clips"], seed, out / "cache")
        data = Clips(test["clips"][:BATCH], test["labels"][:BATCH], a.frames, False, seed, a.shuffle)
        inputs[name] = torch.stack([data[i][0] for i in range(len(data))])
        models[name] = (whole(name, task, path, pretrained), task)
    before = _load()
    for name, (model, _) in models.items():  # warm-up
        for _ in range(3):
            model(inputs[name])
    seconds = {name: [] for name in models}
    order = list(models)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for name in rng.permutation(order):
            model = models[name][0]
            tick = time.perf_counter()
            model(inputs[name])
            seconds[name].append(time.perf_counter() - tick)
    after = _load()
    timed = {}
    for name, values in seconds.items():
        median = float(np.median(values))
        timed[name] = {"task": models[name][1], "median_ms": 1000 * median, "clips_per_s": BATCH / median,
                       "macs_per_clip": macs(arm_named(name), models[name][1]),
                       "spread_ms": [1000 * float(np.percentile(values, q)) for q in (10, 90)]}
    for probe in ("probe_mean", "probe_max"):
        if "naive" in timed:
            timed[probe] = timed["naive"] | {"as": "naive"}
    result = {"batch": BATCH, "rounds": rounds, "threads": 1, "load_before": before, "load_after": after,
              "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "by_arm": timed,
              "note": (f"measured by `--timing-only`: batch {BATCH}, one thread, {rounds} interleaved rounds, the median; "
                       f"load average before {before} and after {after} (1, 5, 15 min). The probes are timed as naive; "
                       "RLT masks its dropped tokens rather than removing them, so its time does not follow its MACs.")}
    write_text(out / "timing.json", json.dumps(result, indent=1) + "\n")
    say(f"timed {len(timed)} arms into {out}/timing.json (load {before} -> {after})")
    return result
