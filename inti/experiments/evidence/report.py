"""The report: results.json, the figures and the results section of the README.

Everything here is computed from the runs (`run.experiment`'s rows), so `--report-only`
rewrites the report from `runs.jsonl` without training anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import ref

from ...io.atomic import write_text
from . import stats
from .tasks import CLASSES, FRAMES, K_SHOWN
from .variants import INTI_SCHEDULE, Variant

START, END = "<!-- results:start -->", "<!-- results:end -->"
UNIFORM_SHARE = K_SHOWN / FRAMES


def share_ceiling(infos: list[dict], merges: int) -> float:
    """The largest digit-frame share any weights can give: with m merges each output frame
    stands for a group of 2^m neighbouring frames and its contributions sum to 1 (softmax), so a
    clip's share is at most (groups holding a digit frame) / (groups), averaged over the clips.
    Uniform weights give k/8."""
    group = 2 ** merges
    groups = FRAMES // group
    return float(np.mean([len({f // group for f in info["digit_frames"]}) / groups for info in infos]))


def aggregate(rows: list[dict], chosen: list[Variant], infos: list[dict] | None = None) -> list[dict]:
    """One row per (task, variant): top-1 mean and 95% t half-width over seeds, per seed, MACs."""
    by = {}
    for r in rows:
        by.setdefault((r["task"], r["variant"]), []).append(r)
    out = []
    for task in ("informative", "motion", "arrow"):
        for v in chosen:
            runs = sorted(by.get((task, v.name), []), key=lambda r: r["seed"])
            if not runs:
                continue
            mean, half = stats.t_interval([r["test_top1"] for r in runs])
            row = {"task": task, "variant": v.name, "label": v.label, "group": v.group,
                   "macs_per_clip": int(v.macs(task)), "frames_read": v.frames,
                   "top1_mean": mean, "top1_ci95": half, "top1_per_seed": [r["test_top1"] for r in runs],
                   "seeds": [r["seed"] for r in runs],
                   "val_top1_mean": float(np.mean([r["val_top1"] for r in runs])),
                   "train_s_mean": float(np.mean([r["train_s"] for r in runs])),
                   "infer_ms_per_clip_mean": float(np.mean([r["infer_ms_per_clip"] for r in runs])),
                   "chance": 1.0 / CLASSES[task]}
            shares = [r["digit_share"] for r in runs if "digit_share" in r]
            if shares:
                row["digit_share_mean"], row["digit_share_ci95"] = stats.t_interval(shares)
                row["digit_share_per_seed"] = shares
                if infos is not None:
                    row["digit_share_ceiling"] = share_ceiling(infos, len(v.config(task).schedule))
            out.append(row)
    return out


def _runs(rows, task, variant):
    return sorted((r for r in rows if r["task"] == task and r["variant"] == variant), key=lambda r: r["seed"])


def compare(rows, task, a, b) -> dict | None:
    """Δ = a - b on `task`, paired by seed (stats.paired), over the seeds both have."""
    ra, rb = _runs(rows, task, a), _runs(rows, task, b)
    seeds = sorted({r["seed"] for r in ra} & {r["seed"] for r in rb})
    if not seeds:
        return None
    ra = [r for r in ra if r["seed"] in seeds]
    rb = [r for r in rb if r["seed"] in seeds]
    d = stats.paired([r["test_top1"] for r in ra], [r["test_top1"] for r in rb],
                     [r["test_correct"] for r in ra], [r["test_correct"] for r in rb])
    return d | {"task": task, "a": a, "b": b}


def best_single_branch(rows) -> str | None:
    """The single-branch θ with the best mean *val* top-1 on informative frames (never test)."""
    single = {}
    for r in rows:
        if r["task"] == "informative" and r["variant"].startswith("only_"):
            single.setdefault(r["variant"], []).append(r["val_top1"])
    return max(single, key=lambda k: np.mean(single[k])) if single else None


def claims(rows, infos: list[dict] | None = None) -> dict:
    """Each claim's comparisons and verdict, by the rules written in the README before the run."""
    def rule(name, d, judge, **kw):
        if d is None:
            return {"rule": name, "verdict": "not run"}
        return d | {"rule": name, "verdict": judge(d, **kw)}

    out = {}
    a1 = rule("InTI within 1 point of naive", compare(rows, "informative", "inti", "naive"), stats.non_inferior)
    a2 = rule("InTI beats frame dropping at equal MACs", compare(rows, "informative", "inti", "drop"), stats.beats)
    out["a"] = {"primary": "informative", "tests": [a1, a2],
                "verdict": stats.both(a1["verdict"], a2["verdict"]) if "not run" not in (a1["verdict"], a2["verdict"]) else "not run",
                "secondary": [rule("InTI beats ToMe at equal MACs", compare(rows, t, "inti", "tome"), stats.beats)
                              for t in ("informative", "motion", "arrow")]
                + [rule("InTI within 1 point of naive", compare(rows, t, "inti", "naive"), stats.non_inferior)
                   for t in ("motion", "arrow")]
                + [rule("InTI beats frame dropping", compare(rows, t, "inti", "drop"), stats.beats)
                   for t in ("motion", "arrow")]}
    b1 = rule("softmax beats sigmoid", compare(rows, "informative", "inti", "inti_sigmoid"), stats.beats)
    b2 = rule("softmax beats the fixed mean", compare(rows, "informative", "inti", "inti_mean"), stats.beats)
    out["b"] = {"primary": "informative", "tests": [b1, b2], "verdict": _joint(b1, b2),
                "secondary": [rule("softmax beats sigmoid", compare(rows, t, "inti", "inti_sigmoid"), stats.beats)
                              for t in ("motion", "arrow")]
                + [rule("softmax beats the fixed mean", compare(rows, t, "inti", "inti_mean"), stats.beats)
                   for t in ("motion", "arrow")]}
    best = best_single_branch(rows)
    c1 = rule(f"all four branches beat the best single branch on val ({best})",
              compare(rows, "informative", "inti", best) if best else None, stats.beats)
    out["c"] = {"primary": "informative", "best_single_branch_on_val": best, "tests": [c1], "verdict": c1["verdict"],
                "secondary": [rule(f"all four beat {v}", compare(rows, "informative", "inti", v), stats.beats)
                              for v in sorted({r["variant"] for r in rows if r["variant"].startswith(("only_", "without_"))})]}
    d1 = rule("InTI + ST-Adapter beats InTI", compare(rows, "motion", "inti_st", "inti"), stats.beats)
    out["d"] = {"primary": "motion", "tests": [d1], "verdict": d1["verdict"],
                "secondary": [rule("InTI + ST-Adapter beats InTI", compare(rows, t, "inti_st", "inti"), stats.beats)
                              for t in ("informative", "arrow")]
                + [rule("InTI + ST-Adapter within 1 point of naive + ST-Adapter",
                        compare(rows, t, "inti_st", "naive_st"), stats.non_inferior)
                   for t in ("informative", "motion", "arrow")]}
    out["order"] = {"tests": [rule("naive + ST-Adapter beats its frames-shuffled self (the task needs the order)",
                                   compare(rows, t, "naive_st", "naive_st_shuffled"), stats.beats)
                              for t in ("informative", "motion", "arrow")]
                    + [rule("InTI beats its frames-shuffled self", compare(rows, t, "inti", "inti_shuffled"), stats.beats)
                       for t in ("informative", "motion", "arrow")]}
    shares = [r["digit_share"] for r in _runs(rows, "informative", "inti")]
    if shares:
        mean, half = stats.t_interval(shares)
        lo = mean - half
        verdict = "inconclusive" if math.isnan(lo) else ("holds" if lo > UNIFORM_SHARE else
                                                          "does not hold" if mean + half <= UNIFORM_SHARE else "inconclusive")
        out["maps"] = {"rule": f"InTI's digit-frame share is above uniform ({UNIFORM_SHARE:g})", "mean": mean,
                       "lo": lo, "hi": mean + half, "per_seed": shares, "verdict": verdict}
        if infos is not None:
            out["maps"]["ceiling"] = share_ceiling(infos, len(INTI_SCHEDULE))
    return out


def _joint(*tests) -> str:
    verdicts = [t["verdict"] for t in tests]
    return "not run" if "not run" in verdicts else stats.both(*verdicts)


# ---------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from ...io.atomic import write_bytes
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _plt().close(fig)
    write_bytes(path, buffer.getvalue())


COLORS = {"inti": "C0", "inti_sigmoid": "C9", "inti_mean": "C7", "naive": "k", "drop": "C3", "tome": "C2",
          "naive_st": "C5", "inti_st": "C1", "inti_shuffled": "C0", "naive_st_shuffled": "C5"}


def accuracy_macs_figure(table: list[dict], path: Path) -> None:
    """Top-1 (mean, 95% CI over seeds) against MACs per clip: one panel per task; the curve
    (merges at other depths, frame dropping at other frame counts) on informative frames."""
    plt = _plt()
    tasks = [t for t in ("informative", "motion", "arrow") if any(r["task"] == t for r in table)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in table if r["task"] == task]
        for r in rows:
            if r["group"] == "ablation":
                continue
            x, y = r["macs_per_clip"] / 1e6, 100 * r["top1_mean"]
            err = 0 if math.isnan(r["top1_ci95"]) else 100 * r["top1_ci95"]
            curve = r["group"] == "curve"
            color = "C3" if r["variant"].startswith("drop") else COLORS.get(r["variant"], "C0")
            marker = "x" if "shuffled" in r["variant"] else ("s" if curve else "o")
            ax.errorbar(x, y, yerr=err, fmt=marker, color=color, capsize=3, alpha=0.6 if curve else 1.0)
            ax.annotate(r["variant"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.axhline(100 * rows[0]["chance"], color="grey", ls=":", lw=1)
        ax.set_title(f"{task} ({CLASSES[task]} classes; dotted: chance)", fontsize=10)
        ax.set_xlabel("MMACs per clip (cost model)")
        ax.set_ylabel("test top-1 (%), mean ± 95% CI over seeds")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def digit_share_figure(table: list[dict], path: Path) -> None:
    """The share of the final contribution on the digit frames, per variant with merges
    (informative frames), each seed a dot; the line is k/8, what uniform weights give."""
    plt = _plt()
    rows = [r for r in table if "digit_share_mean" in r]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows) + 2), 4.2))
    for i, r in enumerate(rows):
        err = 0 if math.isnan(r["digit_share_ci95"]) else r["digit_share_ci95"]
        ax.bar(i, r["digit_share_mean"], yerr=err, color=COLORS.get(r["variant"], "C0"), alpha=0.7, capsize=3)
        ax.plot([i] * len(r["digit_share_per_seed"]), r["digit_share_per_seed"], "k.", ms=4)
        if "digit_share_ceiling" in r:
            ax.plot([i - 0.4, i + 0.4], [r["digit_share_ceiling"]] * 2, color="C3", lw=1.5,
                    label="the most any weights can give" if i == 0 else None)
    ax.axhline(UNIFORM_SHARE, color="k", ls="--", lw=1, label=f"uniform weights: k/8 = {UNIFORM_SHARE:g}")
    ax.set_xticks(range(len(rows)), [r["variant"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("share of the contribution on the digit frames")
    ax.set_ylim(0, 1)
    ax.set_title("Where the trained merges put their weight (informative frames, test clips)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def maps_figure(videos: np.ndarray, infos: list[dict], trained: np.ndarray, untrained: np.ndarray,
                cfg, path: Path) -> None:
    """The paper's Figure 4 for test clips of informative frames (`inti.figures.learned_figure`)."""
    from ...figures import learned_figure

    learned_figure(videos, trained, untrained, cfg, [info["digit_frames"] for info in infos], path,
                   "Contribution maps of InTI trained on informative frames (test clips)")


# ---------------------------------------------------------------------------------------------
# the README's results section


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(mean: float, half: float) -> str:
    return f"{_pct(mean)} ± {'n/a' if math.isnan(half) else _pct(half)}"


def _delta(d: dict) -> str:
    if d.get("verdict") == "not run":
        return "not run"
    p = ", ".join(f"{m['p']:.2g}" for m in d.get("mcnemar", []))
    return (f"Δ = {d['mean']:+.1f} points, 95% CI [{d['lo']:+.1f}, {d['hi']:+.1f}] "
            f"(per seed {', '.join(f'{x:+.1f}' for x in d['per_seed'])}; McNemar p per seed {p})")


def results_markdown(result: dict) -> str:
    from tabulate import tabulate

    table = result["rows"]
    lines = [f"Produced by `{result['command']}` in {result['seconds'] / 60:.1f} min on {result['machine']['cpu']} "
             f"({result['machine']['cores']} cores; {result['jobs']} worker processes of one thread each; torch "
             f"{result['machine']['torch']}), finished {result['finished']}. "
             f"Seeds {', '.join(map(str, result['scale']['seeds']))}; test clips per task: "
             + ", ".join(f"{t} {n}" for t, n in result["test_clips"].items()) + ".", ""]
    for task in ("informative", "motion", "arrow"):
        rows = [r for r in table if r["task"] == task]
        if not rows:
            continue
        lines += [f"**{task}** (chance {_pct(rows[0]['chance'])}%)", ""]
        body = [[r["variant"], r["label"], r["group"], _ci(r["top1_mean"], r["top1_ci95"]),
                 " ".join(_pct(x) for x in r["top1_per_seed"]), f"{r['macs_per_clip'] / 1e6:.2f}",
                 f"{r['train_s_mean']:.1f}", f"{r['infer_ms_per_clip_mean']:.2f}",
                 "" if "digit_share_mean" not in r else f"{r['digit_share_mean']:.3f}"] for r in rows]
        lines.append(tabulate(body, headers=["variant", "what", "group", "test top-1 %, mean ± 95% CI",
                                             "per seed", "MMACs/clip", "train s", "infer ms/clip",
                                             "digit share"], tablefmt="github"))
        lines.append("")
    lines += ["![accuracy against MACs](accuracy_macs.png)", "",
              "![contribution maps](contribution_maps.png)", "",
              "![share of the contribution on the digit frames](digit_share.png)", ""]
    names = {"a": "(a) InTI keeps naive accuracy at 37.5% fewer block MACs",
             "b": "(b) softmax weights beat the alternatives",
             "c": "(c) multi-scale context matters",
             "d": "(d) InTI combines with a temporal module for more accuracy"}
    lines += ["### Verdicts, by the rules above", ""]
    c = result["claims"]
    for key, title in names.items():
        claim = c[key]
        lines.append(f"**{title}: {claim['verdict']}** (primary task: {claim['primary']}).")
        for t in claim["tests"]:
            lines.append(f"- {t['rule']}: **{t['verdict']}**; {_delta(t)}")
        if claim.get("secondary"):
            lines.append("- reported, not deciding: " + "; ".join(
                f"{t['rule']} on {t.get('task', '?')}: {t['verdict']} ({t['mean']:+.1f} [{t['lo']:+.1f}, {t['hi']:+.1f}])"
                if t["verdict"] != "not run" else f"{t['rule']}: not run" for t in claim["secondary"]))
        lines.append("")
    lines.append("**Order of frames** (the control):")
    for t in c["order"]["tests"]:
        if t["verdict"] != "not run":
            lines.append(f"- {t['rule']}, {t['task']}: {t['verdict']}; {_delta(t)}")
    if "maps" in c:
        m = c["maps"]
        lines += ["", f"**Maps**: {m['rule']}: **{m['verdict']}**; mean {m['mean']:.3f}, 95% CI "
                      f"[{m['lo']:.3f}, {m['hi']:.3f}], per seed {', '.join(f'{x:.3f}' for x in m['per_seed'])}"
                  + (f"; the most any weights can give on these clips is {m['ceiling']:.3f} (one merge: a digit "
                     "frame can take at most its pair's whole weight)." if "ceiling" in m else ".")]
    return "\n".join(lines)


def write_readme(path: Path, section: str) -> None:
    """Put `section` between the README's result markers (which must be there)."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} markers for the results")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(path, head + START + "\n" + section + "\n" + END + tail)


def write_results(out: Path, result: dict) -> None:
    write_text(out / "results.json", json.dumps(result, indent=1, sort_keys=False) + "\n")


def contributions(weights: list[np.ndarray]) -> np.ndarray:
    return ref.contributions(weights)
