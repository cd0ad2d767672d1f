"""The README's results section, written from results.json's content."""

from __future__ import annotations

import math

import numpy as np

from .tasks import VIDEO_TASKS


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(mean: float, half: float) -> str:
    return f"{_pct(mean)} ± {'n/a' if math.isnan(half) else _pct(half)}"


def _ps(values) -> str:
    return ", ".join(f"{p:.2g}" for p in values)


def delta(t: dict, unit: str = "points") -> str:
    """Δ, its interval, per seed and McNemar's p per seed."""
    if t.get("verdict") == "not run":
        return "not run"
    fmt = (lambda x: f"{x:+.3f}") if unit == "share" else (lambda x: f"{x:+.1f}")
    text = (f"Δ = {fmt(t['mean'])}{'' if unit == 'share' else ' points'}, 95% CI [{fmt(t['lo'])}, {fmt(t['hi'])}] "
            f"(per seed {', '.join(fmt(x) for x in t['per_seed'])}")
    if t.get("mcnemar"):
        text += f"; McNemar p per seed {_ps(m['p'] for m in t['mcnemar'])}"
    return text + ")"


def _bound(t: dict) -> str:
    for key, what in (("margin", "margin"), ("min_effect", "minimum effect")):
        if t.get(key) is not None:
            return f"{what} {t[key]:g} point{'' if t[key] == 1 else 's'}"
    return ""


def _short(t: dict) -> str:
    if t["verdict"] == "not run":
        return f"{t['rule']} ({t['task']}): not run"
    b = f", vs {t['b']}" if t.get("b") and t["b"] not in t["rule"] else ""
    if "mean" not in t:
        return f"{t['rule']} ({t['task']}{b}): {t['verdict']}"
    return f"{t['rule']} ({t['task']}{b}): {t['verdict']} ({t['mean']:+.1f} [{t['lo']:+.1f}, {t['hi']:+.1f}])"


def header(result: dict) -> list[str]:
    m, load = result["machine"], result.get("load") or []
    loads = np.asarray([x[1] for x in load]) if load else None
    sessions = result.get("sessions") or []
    took = f"{result['seconds'] / 60:.1f} min" + (
        " (" + " then ".join(f"{s['seconds'] / 60:.1f} min for {s['runs']} runs" for s in sessions) + ", resumed)"
        if len(sessions) > 1 else "")
    text = (f"Produced by `{result['command']}` in {took} of wall time on {m['cpu']} "
            f"({m['cores']} cores; {result['jobs']} worker processes of one thread each; torch {m['torch']}), finished "
            f"{result['finished']}. The runs used {result['cpu_s'] / 60:.1f} CPU-minutes in the workers")
    if loads is not None and loads.size:
        text += (f"; the machine was shared: its 1-minute load average was {loads.mean():.1f} on average "
                 f"(min {loads.min():.1f}, max {loads.max():.1f}) over {len(load)} samples, against 2 for this run alone")
    text += (f". Seeds {', '.join(map(str, result['plan']['seeds']))} for the deciding rows, the first "
             f"{result['reported_seeds']} elsewhere; {result['plan']['test_clips']} test clips per seed and task, each "
             "seed its own.")
    return [text, ""]


def table(result: dict, task: str) -> list[str]:
    from tabulate import tabulate

    rows = [r for r in result["rows"] if r["task"] == task]
    if not rows:
        return []
    body = [[r["arm"], r["label"], r["setting"], _ci(r["top1_mean"], r["top1_ci95"]),
             " ".join(_pct(x) for x in r["top1_per_seed"]), _pct(r["val_top1_mean"]), f"{r['macs_per_clip'] / 1e6:.2f}",
             "" if "clips_per_s" not in r else f"{r['clips_per_s']:.0f}",
             "" if "digit_share_mean" not in r else f"{r['digit_share_mean']:.3f}",
             _tuned(r), f"{r['cpu_s_mean']:.0f}"] for r in rows]
    return [f"**{task}** (chance {_pct(rows[0]['chance'])}%)", "",
            tabulate(body, headers=["arm", "what", "setting", "test top-1 %, mean ± 95% CI", "per seed", "val top-1 %",
                                    "MMACs/clip", "clips/s", "digit share", "tuned (lr x, steps)", "CPU s/run"],
                     tablefmt="github"), ""]


def _tuned(r: dict) -> str:
    s = r["tuned"]
    if "probe_C" in r:
        return "C " + "/".join(f"{c:g}" for c in r["probe_C"])
    parts = [f"head {s['lr_head']:g}"]
    if "lr_select" in s:
        parts.append(f"sel {s['lr_select']:g}")
    if "lr_backbone" in s:
        parts.append(f"bb {s['lr_backbone']:g}")
    return ", ".join(parts) + f"; {s['steps']}"


def verdicts(result: dict) -> list[str]:
    c = result["claims"]
    lines = ["### Verdicts, by the rules above", ""]
    for key in ("a", "s", "b", "c", "d"):
        claim = c[key]
        lines.append(f"**{claim['title']}: {claim['verdict']}**.")
        for t in claim["tests"]:
            versus = f", vs {t['b']}" if t.get("b") and t["b"] not in t["rule"] else ""
            bound = f"; {_bound(t)}" if _bound(t) else ""
            lines.append(f"- {t['rule']} ({t['task']}{versus}{bound}): **{t['verdict']}**; {delta(t)}")
        second = [t for t in claim["second_recipe"] if t["verdict"] != "not run"]
        if second:
            lines.append("- the second recipe (half the steps; " + f"{len(second[0]['per_seed'])} seeds): "
                         + "; ".join(f"{t['key']} {t['verdict']} ({t['mean']:+.1f} [{t['lo']:+.1f}, {t['hi']:+.1f}])"
                                     for t in second))
        if claim["reported"]:
            lines.append("- reported, not deciding: " + "; ".join(_short(t) for t in claim["reported"]))
        lines.append("")
    lines.append("**The order of frames** (the controls):")
    for t in c["order"]["tests"]:
        lines.append(f"- {t['rule']}, {t['task']}: {t['verdict']}; {delta(t)}")
    for s in c["order"].get("solved", []):
        lines.append(f"- naive + ST-Adapter solves {s['task']} ({s['min_effect']:g} points above chance "
                     f"{100 * s['chance']:g}%): **{s['verdict']}**; {delta(s)}")
    m = c["maps"]
    if m.get("verdict", "not run") != "not run":
        lines += ["", f"**Maps**: {m['tests'][0]['rule']}: **{m['verdict']}**; {delta(m['tests'][0], 'share')}."]
        for t in m["tests"][1:] + [m["uniform"]]:
            lines.append(f"- {t['rule']}: {t['verdict']}; {delta(t, 'share')}")
        if m.get("ceiling") is not None:
            lines.append(f"- the most any convex weights can give on these clips with one merge: {m['ceiling']:.3f}")
    return lines


def results_markdown(result: dict) -> str:
    lines = header(result)
    for task in VIDEO_TASKS:
        lines += table(result, task)
    lines += ["![accuracy against MACs](accuracy_macs.png)", "", "![val loss curves](convergence.png)", "",
              "![contribution maps](contribution_maps.png)", "",
              "![share of the contribution on the digit frames](digit_share.png)", ""]
    timing = result.get("timing")
    if timing:
        lines += [f"Clips/s: {timing['note']}", ""]
    lines += verdicts(result)
    return "\n".join(lines)
