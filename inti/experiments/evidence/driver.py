"""The one command behind the report: pilots (once), then the runs that are missing, then
every output; and the timing step, on its own.

`reproduce(out)` is `python -m inti.experiments.evidence --out OUT`. It reads the settings and
the plan from OUT/settings.json (written by `--pilot` from OUT/pilots.jsonl); the quick mode
(the tests) has its own small ones. Each finished run is appended to OUT/runs.jsonl at once,
and a rerun skips the runs found there.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

from . import rules
from .arms import INFORMATIVE, arm as arm_named, arms
from .run import Scale, parallel, prepare, run_arm, timed
from .tasks import VIDEO_TASKS

CHECKPOINT = "inti_informative.safetensors"  # the trained InTI that inti/assets ships a copy of
JOBS = 2  # worker processes, one thread each: the 2-core machine the experiment is sized for
FULL = Scale()
QUICK = Scale(train=1024, val=256, test=512, pretrain_steps=0, step_factor=0.5)
QUICK_ARMS = ("naive", "inti", "inti_mean", "drop", "hard_select", "max_pool")
QUICK_SETTINGS = {"naive": {"lr_head": 30.0, "steps": 600}, "inti": {"lr_head": 10.0, "lr_select": 10.0, "steps": 300},
                  "inti_mean": {"lr_head": 10.0, "steps": 300}, "drop": {"lr_head": 30.0, "steps": 600},
                  "hard_select": {"lr_head": 10.0, "lr_select": 10.0, "steps": 300},
                  "max_pool": {"lr_head": 30.0, "steps": 600}}
MODELS = "models"  # OUT/cache/models: the first seed's trained models, which the timing step reads


def settings_for(out: Path, quick: bool) -> dict:
    if quick:
        return {"settings": {f"{a}/{INFORMATIVE}": s for a, s in QUICK_SETTINGS.items()}, "selection_ft": "max_pool",
                "plan": {"seeds": [0], "test_clips": QUICK.test, "margins": {}, "reported_margin": 2.0}}
    path = out / "settings.json"
    if not path.exists():
        raise ValueError(f"{path} is missing: run the pilots first (python -m inti.experiments.evidence --pilot "
                         f"--out {out}), or copy the committed experiments/evidence/settings.json there")
    return json.loads(path.read_text())


def planned_jobs(chosen: dict, quick: bool, only) -> list[tuple]:
    if quick:
        return [(a, INFORMATIVE, 0, "main") for a in QUICK_ARMS]
    todo = rules.jobs(chosen["plan"], chosen["selection_ft"])
    if only:
        names = {a.name for a in arms()}
        unknown = sorted(set(only) - names)
        if unknown:
            raise ValueError(f"unknown arm {', '.join(unknown)}; the arms are {', '.join(sorted(names))}")
        todo = [j for j in todo if j[0] in only]
    return todo


def read_runs(log: Path) -> list[dict]:
    rows = []
    if log.exists():
        for n, line in enumerate(log.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
                rows.append(row | {"key": (row["arm"], row["task"], row["seed"], row["recipe"])})
            except (ValueError, KeyError) as error:
                raise ValueError(f"{log} line {n} is not a finished run ({error}); delete the file or use --force") from None
    return rows


def run_job(name: str, task: str, seed: int, recipe: str, setting: dict, scale: Scale, out: Path, keep: bool) -> dict:
    """One run in a worker: train, test, and for the first seed keep the model (and for InTI on
    informative frames the checkpoint that ships and the contribution maps)."""
    factor = rules.SECOND_RECIPE if recipe == "second" else 1.0
    a = arm_named(name)
    row = timed(run_arm, a, task, seed, setting, scale, out / "cache", "test", factor, keep_model=keep)
    model = row.pop("model", None)
    if model is not None:
        from safetensors.torch import save_file

        folder = out / "cache" / MODELS
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}-{task}.safetensors"),
                  metadata={"rlt_threshold": str(row.get("rlt_threshold", ""))})
        if (name, task) == ("inti", INFORMATIVE):
            from . import report

            report.keep_checkpoint(model, a, scale, out, CHECKPOINT, seed)
    return row | {"recipe": recipe}


def sample_load(samples: list, stop: threading.Event, every: float = 30.0) -> None:
    """/proc/loadavg every `every` seconds while the run lasts (the machine is shared)."""
    start = time.time()
    while not stop.is_set():
        try:
            samples.append([round(time.time() - start), *map(float, Path("/proc/loadavg").read_text().split()[:3])])
        except OSError:
            return
        stop.wait(every)


def reproduce(out: Path, quick: bool = False, force: bool = False, report_only: bool = False, only=None,
              say=print) -> dict:
    out = Path(out)
    scale = QUICK if quick else FULL
    chosen = settings_for(out, quick)
    if not quick:
        scale = dataclasses.replace(scale, test=chosen["plan"]["test_clips"])
    log = out / "runs.jsonl"
    if force:
        for path in (log, out / CHECKPOINT):
            path.unlink(missing_ok=True)
    todo = planned_jobs(chosen, quick, only)
    rows = [r for r in read_runs(log) if r["key"] in set(todo)]
    load, stop = [], threading.Event()
    start = time.perf_counter()
    if not report_only:
        out.mkdir(parents=True, exist_ok=True)
        sampler = threading.Thread(target=sample_load, args=(load, stop), daemon=True)
        sampler.start()
        try:
            missing = [j for j in todo if j not in {r["key"] for r in rows}]
            prepare(missing, scale, out, say, JOBS)
            # the second recipe last: it runs only as far as the budget goes (rules.LEFT_OUT)
            order = sorted(missing, key=lambda j: (j[3] == "second", arm_named(j[0]).entry not in ("pixels", "rlt"),
                                                   j[2], j[1], j[0]))
            calls = [(*j, chosen["settings"][f"{j[0]}/{j[1]}"], scale, out,
                      j[2] == chosen["plan"]["seeds"][0] and j[3] == "main") for j in order]

            def done(call, row):
                with open(log, "a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row | {"key": tuple(call[:4])})

            parallel(run_job, calls, JOBS, done, say)
        finally:
            stop.set()
    seconds = time.perf_counter() - start
    from . import report

    result = report.write(out, rows, chosen, scale, quick, seconds, load, say)
    say(f"wrote {out}/results.json and the report in {seconds:.0f} s")
    return result


def run_pilot(out: Path, say=print) -> dict:
    from .tuning import pilot

    return pilot(Path(out), FULL, JOBS, say)


__all__ = ["reproduce", "run_pilot", "CHECKPOINT", "VIDEO_TASKS"]
