"""The one command behind the report: train what is missing, then write every output.

`reproduce(out)` is `python -m inti.experiments.evidence --out OUT`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path


from . import report
from .run import FULL, QUICK, TensorClips, build_model, experiment, machine, predict, quiet
from .tasks import make_clip
from .variants import variants

CHECKPOINT = "inti_informative.safetensors"  # the trained InTI that inti/assets ships a copy of
QUICK_VARIANTS = ("naive", "inti", "inti_mean", "drop")
MAP_CLIPS = 3
JOBS = 2  # worker processes, one thread each: the 2-core machine the experiment is sized for


def chosen_variants(quick: bool, only) -> list:
    every = variants()
    names = [v.name for v in every]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown variant {', '.join(unknown)}; the variants are {', '.join(names)}")
        every = [v for v in every if v.name in only]
    if quick:
        every = [dataclasses.replace(v, tasks=("informative",)) for v in every if v.name in QUICK_VARIANTS]
    return every


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Keeper:
    """What the report needs from one trained model (InTI, informative frames, the first seed)
    before it is dropped: the checkpoint and the contribution maps of a few test clips."""

    def __init__(self, out: Path, seed: int):
        self.out, self.seed = out, seed

    def wants(self, variant: str, task: str, seed: int) -> bool:
        return (variant, task, seed) == ("inti", "informative", self.seed) and not (self.out / CHECKPOINT).exists()

    def __call__(self, row: dict, model, data: dict) -> None:
        from ...io.params import save_params
        from .variants import variants as every

        if (row["variant"], row["task"], row["seed"]) != ("inti", "informative", self.seed):
            return
        videos, labels, infos = data["test"]
        clips = TensorClips(videos[:MAP_CLIPS], labels[:MAP_CLIPS], videos.shape[1], False)
        trained = report.contributions(predict(model, clips)["weights"])
        inti = next(v for v in every() if v.name == "inti")
        fresh = build_model(inti, "informative", {"params": {k: v.detach().numpy() for k, v in model.state_dict().items()},
                                                  "cfg": model.cfg}, self.seed)
        untrained = report.contributions(predict(fresh, clips)["weights"])
        report.maps_figure(videos[:MAP_CLIPS], infos[:MAP_CLIPS], trained, untrained, model.cfg,
                           self.out / "contribution_maps.png")
        params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        save_params(self.out / CHECKPOINT, params, model.cfg)


def reproduce(out: Path, quick: bool = False, force: bool = False, report_only: bool = False, only=None,
              say=print) -> dict:
    out = Path(out)
    scale = QUICK if quick else FULL
    chosen = chosen_variants(quick, only)
    command = "python -m inti.experiments.evidence" + (" --quick" if quick else "") + f" --out {out}"
    if force:
        for name in ("runs.jsonl", CHECKPOINT):
            (out / name).unlink(missing_ok=True)
    start = time.perf_counter()
    if report_only:
        log = out / "runs.jsonl"
        if not log.exists():
            raise ValueError(f"--report-only needs the runs of an earlier run in {log}; there is no such file")
        wanted = {v.name for v in chosen}
        rows = [r for r in map(json.loads, log.read_text().splitlines()) if r["variant"] in wanted]
        previous = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
        seconds, finished = previous.get("seconds", 0.0), previous.get("finished", "unknown")
    else:
        rows = experiment(out, scale, chosen, say=say, keep=Keeper(out, scale.seeds[0]), jobs=JOBS)
        seconds, finished = time.perf_counter() - start, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    infos = None
    if any(r["task"] == "informative" for r in rows):
        n = len(next(r for r in rows if r["task"] == "informative")["test_correct"])
        infos = [make_clip("informative", "test", i, 0)[2] for i in range(n)]  # the test clips' digit frames
    table = report.aggregate(rows, chosen, infos)
    pretrain = [json.loads(p.read_text()) for p in sorted((out / "cache").glob(f"pretrained-seed*-{scale.pretrain_steps}.json"))
                if json.loads(p.read_text())["seed"] in scale.seeds]
    result = {
        "command": command, "jobs": JOBS, "seconds": seconds, "finished": finished, "machine": machine(),
        "scale": dataclasses.asdict(scale), "recipe": _recipe(),
        "test_clips": {t: len(next(r for r in rows if r["task"] == t)["test_correct"])
                       for t in ("informative", "motion", "arrow") if any(r["task"] == t for r in rows)},
        "pretrain": pretrain,
        "checkpoint_sha256": _sha256(out / CHECKPOINT) if (out / CHECKPOINT).exists() else None,
        "rows": table, "claims": report.claims(rows, infos), "runs": len(rows),  # the runs themselves: runs.jsonl
    }
    report.write_results(out, result)
    report.accuracy_macs_figure(table, out / "accuracy_macs.png")
    if any("digit_share_mean" in r for r in table):
        report.digit_share_figure(table, out / "digit_share.png")
    section = report.results_markdown(result)
    readme = out / "README.md"
    if readme.exists() and report.START in readme.read_text():
        report.write_readme(readme, section)
    else:
        from ...io.atomic import write_text

        write_text(out / "results.md", section + "\n")
    say(f"wrote {out}/results.json and the report in {time.perf_counter() - start:.0f} s")
    return result


def _recipe() -> dict:
    from .run import PRETRAIN, RECIPE

    return {"pretrain": PRETRAIN.to_dict(), "video": RECIPE.to_dict()}
