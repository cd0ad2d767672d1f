"""The pilots, on val only, before the run: the tuning grid, the convergence check, the
per-seed spread, and the power calculation that fixes the margins. Every pilot run is a line
of OUT/pilots.jsonl; `choose(pilots)` and `plan(pilots)` derive the settings and the plan from
those lines alone, and OUT/settings.json records them for the run.

The grid, the same for every arm (multipliers of the base lr, `run.BASE_LR`):

- the head (every arm): x1, x3, x10, x30 (and x100 where x30 is the best);
- θ, the hard selector's scorer, the temporal modules, the attention pool's query, RLT's length
  embedding (the arms that have one): x1, x3, x10;
- the backbone (full fine-tuning): x0.1, x0.3, x1.

Searched one axis at a time, in that order, on seed 0's val split; an arm's setting is the one
with the highest val top-1 (ties: the lower val loss). Convergence: the chosen setting runs
again at twice its steps; if that gains 1 point of val top-1 or more, the arm keeps the doubled
steps and is checked once more at four times (where that gains 1 point more, it keeps those). Spread: the deciding arms at their settings on the val splits of seeds 1 and 2 beside 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import stats
from .arms import ALL_FRAMES, ARROW, INFORMATIVE, MOTION, arm as arm_named, arms
from .rules import BEST_BRANCH, BEST_SELECTION, BRANCHES, DECIDING, MIN_EFFECT, SELECTION

GRID = {"lr_head": (1.0, 3.0, 10.0, 30.0), "lr_select": (1.0, 3.0, 10.0), "lr_backbone": (0.1, 0.3, 1.0)}
EDGE = 100.0  # the head lr tried next when x30 is the best
STEPS = {"features": 1000, "block1": 400, "rlt": 300, "pixels": 300}  # before the convergence check
CONVERGED = 1.0  # points of val top-1 that twice the steps may gain at most
DOUBLINGS = 2  # the steps double at most twice (4x)
SPREAD_SEEDS = (0, 1, 2)
# Set from the pilots' measured cost so that the full run fits its budget (README, "Power").
PLAN_SEEDS, PLAN_TEST_CLIPS = 5, 4096
MARGINS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)  # the margins a non-inferiority rule may declare, smallest first
POWER = 0.8
# Pairs whose setting is another pair's (tasks that decide nothing for that arm).
BORROW = {("inti", ARROW): ("inti", MOTION), ("naive_st", ARROW): ("naive_st", MOTION),
          ("inti_st", ARROW): ("inti_st", MOTION), ("rlt", ALL_FRAMES): ("rlt", INFORMATIVE),
          ("hard_select", ALL_FRAMES): ("hard_select", INFORMATIVE), ("tome", ALL_FRAMES): ("tome", INFORMATIVE)}


def tuned_pairs(selection_ft: str | None) -> list[tuple[str, str]]:
    """The (arm, task) pairs the grid tunes: every arm but the probes (regularized on val in the
    run), the rows with a parent, the borrowed pairs, and the fine-tuned selection baselines
    other than the one chosen (None: not chosen yet, so none)."""
    out = []
    for a in arms():
        if a.entry == "probe" or a.parent is not None:
            continue
        if a.setting == "finetune" and a.name not in ("naive_ft", "inti_ft", "drop_ft", f"{selection_ft}_ft"):
            continue
        out += [(a.name, t) for t in a.tasks if (a.name, t) not in BORROW]
    return out


def _key(setting: dict) -> str:
    return json.dumps(setting, sort_keys=True)


def _best(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: (round(r["val_top1"], 6), -r.get("val_loss", 0.0)))


def progress(name: str, task: str, done: dict) -> tuple[list[dict], dict | None, list[str]]:
    """(settings still to run, the final setting or None, the decisions so far) for one pair;
    done: {setting key: pilot row} of its grid and steps runs on seed 0."""
    a = arm_named(name)
    setting = {"lr_head": 1.0, "steps": STEPS[a.entry]}
    if a.selector:
        setting["lr_select"] = 1.0
    if a.setting == "finetune":
        setting["lr_backbone"] = GRID["lr_backbone"][0]
    notes = []
    axes = ["lr_head"] + (["lr_select"] if a.selector else []) + (["lr_backbone"] if a.setting == "finetune" else [])
    for axis in axes:
        tried = [setting | {axis: v} for v in GRID[axis]]
        missing = [s for s in tried if _key(s) not in done]
        if missing:
            return missing, None, notes
        best = _best([done[_key(s)] for s in tried])
        if axis == "lr_head" and best["setting"][axis] == GRID[axis][-1]:  # best at the edge: one step further
            tried.append(setting | {axis: EDGE})
            if _key(tried[-1]) not in done:
                return [tried[-1]], None, notes
            best = _best([done[_key(s)] for s in tried])
        setting = dict(best["setting"])
        notes.append(f"{axis} x{setting[axis]:g}: val top-1 {100 * best['val_top1']:.1f}")
    for _ in range(DOUBLINGS):  # twice the steps while that gains CONVERGED points or more
        longer = setting | {"steps": 2 * setting["steps"]}
        if _key(longer) not in done:
            return [longer], None, notes
        gain = 100 * (done[_key(longer)]["val_top1"] - done[_key(setting)]["val_top1"])
        notes.append(f"{longer['steps']} steps gain {gain:+.1f} points")
        if gain < CONVERGED:
            break
        setting = longer
    notes.append(f"{setting['steps']} steps")
    return [], setting, notes


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            raise ValueError(f"{path} line {n} is not a pilot run ({error}); delete the file or use --force") from None
    return rows


def _done(rows, stage, seed=0) -> dict:
    out = {}
    for r in rows:
        if r.get("stage") == stage and r["seed"] == seed:
            out.setdefault((r["arm"], r["task"]), {})[_key(r["setting"])] = r
    return out


def selection_choice(rows) -> str | None:
    """The selection baseline that full fine-tuning takes: of max pooling, attention pooling and
    hard selection, the best on informative frames' val (frozen, at its final setting)."""
    done = _done(rows, "grid")
    best = {}
    for name in ("max_pool", "attn_pool", "hard_select"):
        _, final, _ = progress(name, INFORMATIVE, done.get((name, INFORMATIVE), {}))
        if final is None:
            return None
        best[name] = done[(name, INFORMATIVE)][_key(final)]["val_top1"]
    return max(best, key=best.get)


def choose(rows) -> dict:
    """{"settings": {"arm/task": setting}, "selection_ft", "notes"} from the pilot rows; pairs not
    finished are missing."""
    done = _done(rows, "grid")
    selection_ft = selection_choice(rows)
    settings, notes = {}, {}
    for pair in tuned_pairs(selection_ft):
        _, final, said = progress(*pair, done.get(pair, {}))
        if final is not None:
            settings["/".join(pair)] = final
            notes["/".join(pair)] = said
    for pair, source in BORROW.items():
        if "/".join(source) in settings:
            settings["/".join(pair)] = settings["/".join(source)]
    for a in arms():
        for t in a.tasks:
            if a.parent is not None and f"{a.parent}/{t}" in settings:
                settings[f"{a.name}/{t}"] = settings[f"{a.parent}/{t}"]
            if a.entry == "probe":
                settings[f"{a.name}/{t}"] = {"lr_head": 1.0, "steps": 0}
    return {"settings": settings, "selection_ft": selection_ft, "notes": notes}


def spread_pairs(choice: dict, rows) -> list[tuple[str, str]]:
    """The deciding rules' arms on their tasks. The best single branch is resolved on seed 0's
    val (the branch with the highest val top-1 at its setting); the selection baselines, cheap
    to train, all run."""
    seed0 = {(r["arm"], r["task"]): r["val_top1"] for r in rows if r["seed"] == 0
             and r["setting"] == choice["settings"].get(f"{r['arm']}/{r['task']}")}
    out = set()
    for r in DECIDING:
        out.add((r.a, r.task))
        if r.b == BEST_BRANCH:
            have = [b for b in BRANCHES if (b, r.task) in seed0]
            out |= {(max(have, key=lambda b: seed0[(b, r.task)]), r.task)} if have else set()
        elif r.b == BEST_SELECTION:
            out |= {(b, r.task) for b in SELECTION}
        else:
            out.add((r.b, r.task))
    return sorted(p for p in out if "/".join(p) in choice["settings"])


def plan(rows, choice: dict, seeds: int = PLAN_SEEDS, test_clips: int = PLAN_TEST_CLIPS) -> dict:
    """For every deciding rule: the pilot's per-seed Δ on val (seeds 0-2), its training part
    (the binomial part of the val clips taken out), the training part of the sd's 80% upper
    bound (`stats.upper_sd`: three seeds may well underestimate it), the planned per-seed sd at
    `test_clips` test clips, the expected half-width with `seeds` seeds, the seeds
    a 1-point margin would need, and the margin declared: the smallest of `MARGINS` whose power
    at a true Δ of 0 is at least 80% (non-inferiority); for "beats", the power at a true Δ of
    twice the minimum effect."""
    from scipy.stats import t as student

    spread = {}
    for r in rows:
        if r.get("stage") in ("spread", "grid") and "/".join((r["arm"], r["task"])) in choice["settings"] \
                and r["setting"] == choice["settings"]["/".join((r["arm"], r["task"]))]:
            spread.setdefault((r["arm"], r["task"]), {})[r["seed"]] = r
    out = {"seeds": list(range(seeds)), "test_clips": test_clips, "margins": {}, "rules": {}}
    for rule in DECIDING:
        b = rule.b
        if b in (BEST_BRANCH, BEST_SELECTION):
            pool = BRANCHES if b == BEST_BRANCH else SELECTION
            have = [p for p in pool if 0 in spread.get((p, rule.task), {})]
            if not have:
                continue
            b = max(have, key=lambda p: spread[(p, rule.task)][0]["val_top1"])
        ra, rb = spread.get((rule.a, rule.task), {}), spread.get((b, rule.task), {})
        common = sorted(set(ra) & set(rb) & set(SPREAD_SEEDS))
        if len(common) < 2:
            continue
        d = stats.paired([ra[s]["val_top1"] for s in common], [rb[s]["val_top1"] for s in common],
                         [ra[s]["val_correct"] for s in common], [rb[s]["val_correct"] for s in common])
        clips = len(ra[common[0]]["val_correct"])
        disc = float(np.mean([(m["a_only"] + m["b_only"]) / clips for m in d["mcnemar"]]))
        train_sd = stats.split_spread(d["sd"], disc, clips)
        train_up = stats.split_spread(stats.upper_sd(d["sd"], len(common)), disc, clips)
        sd = stats.planned_sd(train_up, disc, test_clips)
        half = float(student.ppf(0.975, seeds - 1) * sd / math.sqrt(seeds))
        need = next((n for n in range(3, 200) if student.ppf(0.975, n - 1) * sd / math.sqrt(n) < 1.0), None)
        entry = {"a": rule.a, "b": b, "task": rule.task, "pilot_delta": d["mean"], "pilot_per_seed": d["per_seed"],
                 "pilot_sd": d["sd"], "discordant": disc, "train_sd": train_sd, "train_sd_upper80": train_up,
                 "planned_sd": sd, "expected_half_width": half, "seeds_for_1_point": need}
        if rule.kind == "non_inferior":
            margin = next((m for m in MARGINS if stats.power(sd, seeds, "non_inferior", m) >= POWER), MARGINS[-1])
            out["margins"][rule.key] = margin
            entry |= {"margin": margin, "power_at_0": stats.power(sd, seeds, "non_inferior", margin)}
        else:
            entry |= {"min_effect": MIN_EFFECT,
                      "power_at_2x_min_effect": stats.power(sd, seeds, "beats", MIN_EFFECT, 2 * MIN_EFFECT)}
        out["rules"][rule.key] = entry
    out["reported_margin"] = max(out["margins"].values(), default=2.0)
    return out


def pilot_job(name: str, task: str, seed: int, setting: dict, scale, cache: Path, stage: str) -> dict:
    from .run import run_arm, timed

    row = timed(run_arm, arm_named(name), task, seed, setting, scale, cache, measure="val")
    return row | {"stage": stage}


def pilot(out: Path, scale, jobs: int = 2, say=print, spread: bool = True) -> dict:
    """Run what the pilots still miss (resuming from OUT/pilots.jsonl), then write
    OUT/settings.json: the settings, the selection baseline for fine-tuning, the plan."""
    from ...io.atomic import write_text
    from .run import parallel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "pilots.jsonl"
    rows = read(log)

    def done(call, row):
        row.pop("model", None)
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)

    from .run import prepare

    prepare([(a, t, 0, "main") for a, t in tuned_pairs(None)], scale, out, say, jobs)

    def todo():  # the grid, one axis at a time: a pair's next runs as soon as its last ones are in
        grid = _done(rows, "grid")
        return [(*pair, 0, s, scale, out / "cache", "grid") for pair in tuned_pairs(selection_choice(rows))
                for s in progress(*pair, grid.get(pair, {}))[0]]

    dynamic(pilot_job, todo, jobs, done, say)
    choice = choose(rows)
    if spread:
        have = {(r["arm"], r["task"], r["seed"], _key(r["setting"])) for r in rows}
        calls = [(a, t, s, choice["settings"][f"{a}/{t}"], scale, out / "cache", "spread")
                 for a, t in spread_pairs(choice, rows) for s in SPREAD_SEEDS
                 if (a, t, s, _key(choice["settings"][f"{a}/{t}"])) not in have]
        prepare([(c[0], c[1], c[2], "main") for c in calls], scale, out, say, jobs)
        parallel(pilot_job, calls, jobs, done, say, desc="pilot spread")
    result = choice | {"plan": plan(rows, choice)}
    write_text(out / "settings.json", json.dumps(result, indent=1) + "\n")
    return result


def dynamic(fn, todo, jobs: int, done, say) -> None:
    """fn(*call) for the calls todo() names, in `jobs` worker processes, asking todo() again
    each time a call finishes (its result may open new calls), until it names none."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from .run import worker_init

    submitted, running = set(), {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        while True:
            for call in todo():
                key = (call[0], call[1], call[2], _key(call[3]))
                if key not in submitted:
                    submitted.add(key)
                    running[pool.submit(fn, *call)] = call
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                call = running.pop(future)
                done(call, future.result())
                say(f"pilot: {call[0]}/{call[1]} seed {call[2]} {call[3]}: val top-1 {future.result()['val_top1']:.3f}")
