"""The report: results.json, the figures and the results section of the README.

Everything here is computed from the runs (runs.jsonl), the settings (settings.json) and the
timing (timing.json, when there), so `--report-only` rewrites the report without training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import ref

from ...io.atomic import write_text
from . import rules, stats
from .arms import INFORMATIVE, arm as arm_named, arms, macs
from .tasks import CLASSES, FRAMES, K_SHOWN, VIDEO_TASKS

START, END = "<!-- results:start -->", "<!-- results:end -->"
UNIFORM_SHARE = K_SHOWN / FRAMES
MAP_CLIPS = 3


def share_ceiling(digits: np.ndarray, merges: int = 1) -> float:
    """The largest digit-frame share any convex weights can give: with m merges each output
    frame stands for a group of 2^m neighbouring frames, so a clip's share is at most (groups
    holding a digit frame) / (groups). Uniform weights give k/8."""
    group = 2**merges
    return float(np.mean([len({int(f) // group for f in shown}) / (FRAMES // group) for shown in digits]))


def keep_checkpoint(model, arm, scale, out: Path, name: str, seed: int) -> None:
    """InTI trained on informative frames: its parameters as an inti parameter file (the one
    inti/assets ships), and its contribution maps on test clips beside the untrained model's."""
    import torch

    from ...figures import learned_figure
    from ...io.params import save_params
    from ...train.models import fit_params
    from torch_impl import from_ref_params

    from .cache import clips
    from .tasks import to_input

    params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    cfg = model.cfg
    save_params(out / name, params, cfg)
    made = clips(INFORMATIVE, "test", scale.test, seed, out / "cache")
    videos = np.stack([to_input(f) for f in made["clips"][:MAP_CLIPS]])

    def maps(p):
        net = from_ref_params(p, cfg, dtype=torch.float32).eval()
        with torch.no_grad():
            _, trace = net(torch.from_numpy(videos), return_trace=True)
        return ref.contributions([w.numpy() for w in ref.trace_weights(trace, cfg)])

    untrained = fit_params(params, cfg, cfg, seed, "the trained model", keep_new=False)
    learned_figure(videos, maps(params), maps(untrained), cfg, [list(d) for d in made["digits"][:MAP_CLIPS]],
                   out / "contribution_maps.png", "Contribution maps of InTI trained on informative frames (test clips)")


def aggregate(rows: list[dict], timing: dict | None = None) -> list[dict]:
    """One row per (task, arm) of the main recipe: test top-1 mean and 95% t half-width over
    seeds, per seed, val top-1, MACs (RLT: measured on its test clips), the tuned setting,
    train and CPU seconds, digit share, clips/s when timed."""
    by = {}
    for r in rows:
        if r.get("recipe", "main") == "main":
            by.setdefault((r["task"], r["arm"]), []).append(r)
    out = []
    for task in VIDEO_TASKS:
        for a in arms():
            runs = sorted(by.get((task, a.name), []), key=lambda r: r["seed"])
            if not runs:
                continue
            mean, half = stats.t_interval([r["test_top1"] for r in runs])
            cost = float(np.mean([r["macs_per_clip"] for r in runs])) if a.entry == "rlt" else macs(a, task)
            row = {"task": task, "arm": a.name, "variant": a.name, "label": a.label, "group": a.group,
                   "setting": a.setting, "macs_per_clip": int(round(cost)), "frames_read": a.frames,
                   "top1_mean": mean, "top1_ci95": half, "top1_per_seed": [r["test_top1"] for r in runs],
                   "seeds": [r["seed"] for r in runs], "val_top1_mean": float(np.mean([r["val_top1"] for r in runs])),
                   "tuned": runs[0]["setting"], "train_s_mean": float(np.mean([r.get("train_s", 0.0) for r in runs])),
                   "cpu_s_mean": float(np.mean([r.get("cpu_s", 0.0) for r in runs])), "chance": 1.0 / CLASSES[task]}
            for extra in ("probe_C", "rlt_threshold"):
                if extra in runs[0]:
                    row[extra] = [r[extra] for r in runs]
            shares = [r["digit_share"] for r in runs if "digit_share" in r]
            if shares:
                row["digit_share_mean"], row["digit_share_ci95"] = stats.t_interval(shares)
                row["digit_share_per_seed"] = shares
            if timing and a.name in timing.get("by_arm", {}):
                row["clips_per_s"] = timing["by_arm"][a.name]["clips_per_s"]
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    import io

    from ...io.atomic import write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _plt().close(fig)
    write_bytes(path, buffer.getvalue())


def _colour(name: str) -> str:
    family = {"inti": "C0", "naive": "k", "drop": "C3", "random_drop": "C4", "hard_select": "C1", "tome": "C2",
              "rlt": "C8", "max_pool": "C5", "attn_pool": "C6", "probe": "C7", "merge_after": "C0", "only": "C9"}
    return next((c for k, c in sorted(family.items(), key=lambda kv: -len(kv[0])) if name.startswith(k)), "C9")


def accuracy_macs_figure(table: list[dict], path: Path) -> None:
    """Top-1 (mean, 95% CI over seeds) against MACs per clip, one panel per task; hollow: full
    fine-tuning; squares: the curve rows."""
    plt = _plt()
    tasks = [t for t in VIDEO_TASKS if any(r["task"] == t for r in table)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.4 * len(tasks), 4.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in table if r["task"] == task and r["group"] not in ("ablation",)]
        for r in rows:
            x, y = r["macs_per_clip"] / 1e6, 100 * r["top1_mean"]
            err = 0 if math.isnan(r["top1_ci95"]) else 100 * r["top1_ci95"]
            colour, ft = _colour(r["arm"]), r["setting"] == "finetune"
            ax.errorbar(x, y, yerr=err, fmt="s" if r["group"] == "curve" else ("x" if "shuffled" in r["arm"] else "o"),
                        color=colour, mfc="white" if ft else colour, capsize=3, alpha=0.55 if r["group"] == "curve" else 1)
            if r["group"] != "curve":
                ax.annotate(r["arm"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6)
        ax.axhline(100 * rows[0]["chance"], color="grey", ls=":", lw=1)
        ax.set_title(f"{task} ({CLASSES[task]} classes; dotted: chance)", fontsize=10)
        ax.set_xlabel("MMACs per clip (cost model)")
        ax.set_ylabel("test top-1 (%), mean ± 95% CI over seeds")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def digit_share_figure(table: list[dict], ceiling: float | None, path: Path) -> None:
    """The share of the final contribution on the digit frames, per arm with merges or
    selection (informative frames), each seed a dot; dashed: uniform weights, red: the most
    convex weights can give with one merge."""
    plt = _plt()
    rows = [r for r in table if "digit_share_mean" in r and r["task"] == INFORMATIVE]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows) + 2), 4.2))
    for i, r in enumerate(rows):
        err = 0 if math.isnan(r["digit_share_ci95"]) else r["digit_share_ci95"]
        ax.bar(i, r["digit_share_mean"], yerr=err, color=_colour(r["arm"]), alpha=0.7, capsize=3)
        ax.plot([i] * len(r["digit_share_per_seed"]), r["digit_share_per_seed"], "k.", ms=4)
    ax.axhline(UNIFORM_SHARE, color="k", ls="--", lw=1, label=f"uniform weights: k/8 = {UNIFORM_SHARE:g}")
    if ceiling is not None:
        ax.axhline(ceiling, color="C3", lw=1.2, label=f"the most one merge can give: {ceiling:.3f}")
    ax.set_xticks(range(len(rows)), [r["arm"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("share of the contribution on the digit frames")
    ax.set_ylim(0, 1)
    ax.set_title("Where the trained merges put their weight (informative frames, test clips)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def convergence_figure(rows: list[dict], seed: int, path: Path) -> None:
    """Val loss against steps for every tuned arm of the first seed (main recipe): each should
    have flattened by its last point."""
    plt = _plt()
    tasks = [t for t in VIDEO_TASKS if any(r["task"] == t and r.get("curve") and "steps" in r for r in rows)]
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.4 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in sorted((r for r in rows if r["task"] == task and r["seed"] == seed and r.get("recipe") == "main"
                         and "steps" in r and arm_named(r["arm"]).parent is None), key=lambda r: r["arm"]):
            curve = np.asarray(r["curve"])
            ax.plot(curve[:, 0] / curve[-1, 0], curve[:, 1], marker=".", color=_colour(r["arm"]), lw=1,
                    ls="--" if r["arm"].endswith("_ft") else "-", label=r["arm"])
        ax.set_title(f"{task}: val loss (seed {seed})", fontsize=10)
        ax.set_xlabel("fraction of the arm's steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# the whole report


def machine() -> dict:
    """What ran it: the CPU's model, cores, torch's version and threads."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "python": platform.python_version()}


def _sha256(path: Path) -> str | None:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def write(out: Path, rows: list[dict], chosen: dict, scale, quick: bool, seconds: float, load: list, say) -> dict:
    """results.json, the figures and the README's results section (or results.md)."""
    import time

    from .cache import PRETRAIN
    from .markdown import results_markdown
    from .run import RECIPE

    out = Path(out)
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() else None
    fresh = any(r.get("wall_s") for r in rows) and seconds > 60 or not previous
    seeds = chosen["plan"]["seeds"]
    digits = None
    if any(r["task"] == INFORMATIVE for r in rows):
        from .cache import clips

        digits = clips(INFORMATIVE, "test", scale.test, seeds[0], out / "cache")["digits"]
    ceiling = share_ceiling(digits) if digits is not None else None
    table = aggregate(rows, timing)
    clean = [{k: v for k, v in r.items() if k != "key"} for r in rows]
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # each invocation that trained is a session; a resumed run adds its own to the earlier ones
    sessions = previous.get("sessions") or ([{"seconds": previous["seconds"], "finished": previous["finished"],
                                              "runs": previous["runs"], "load": previous.get("load", [])}]
                                            if "seconds" in previous else [])
    if fresh and previous and len(clean) > previous.get("runs", 0):
        sessions = [*sessions, {"seconds": seconds, "finished": now, "runs": len(clean) - previous["runs"], "load": load}]
    elif fresh:
        sessions = [{"seconds": seconds, "finished": now, "runs": len(clean), "load": load}]
    result = {
        "command": "python -m inti.experiments.evidence" + (" --quick" if quick else "") + f" --out {out}",
        "jobs": 2, "seconds": float(sum(s["seconds"] for s in sessions)), "sessions": sessions,
        "finished": sessions[-1]["finished"] if sessions else now,
        "load": [x for s in sessions for x in s["load"]], "machine": machine(),
        "cpu_s": float(sum(r.get("cpu_s", 0.0) for r in clean)), "scale": vars(scale),
        "recipe": {"pretrain": PRETRAIN.to_dict(), "video": RECIPE.to_dict()}, "plan": chosen["plan"],
        "selection_ft": chosen["selection_ft"], "reported_seeds": rules.REPORTED_SEEDS,
        "test_clips": {t: scale.test for t in VIDEO_TASKS if any(r["task"] == t for r in rows)},
        "checkpoint_sha256": _sha256(out / "inti_informative.safetensors") or previous.get("checkpoint_sha256"),
        "rows": table, "claims": rules.claims(clean, chosen["plan"], chosen["selection_ft"], ceiling),
        "runs": len(clean), "timing": timing,
    }
    write_text(out / "results.json", json.dumps(result, indent=1) + "\n")
    accuracy_macs_figure(table, out / "accuracy_macs.png")
    digit_share_figure(table, ceiling, out / "digit_share.png")
    convergence_figure(clean, seeds[0], out / "convergence.png")
    section = results_markdown(result)
    readme = out / "README.md"
    if readme.exists() and START in readme.read_text():
        write_readme(readme, section)
    else:
        write_text(out / "results.md", section + "\n")
    return result


def write_readme(path: Path, section: str) -> None:
    """Put `section` between the README's result markers (which must be there)."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} markers for the results")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(path, head + START + "\n" + section + "\n" + END + tail)
