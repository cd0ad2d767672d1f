"""The report: the Markdown tables, the targets, and the README's table between its markers."""

from __future__ import annotations

from pathlib import Path

from inti.io.atomic import write_text

from .grid import CONTENDERS

# The targets (benchmarks/README.md explains each).
TARGET_FRACTION_OF_IDEAL = 0.90  # measured speed-up / MAC-predicted ratio


TARGET_MERGE_SHARE = 0.03  # predictor + interpolation, of InTI's wall time


TARGET_NAIVE_VS_TIMM = 1.05  # our naive time / timm's time, same weights, same frames


TARGET_REF_VS_TORCH = 3.0  # NumPy ref InTI time / torch InTI float32 eager time


def _ms(s):
    return "–" if s is None else f"{s * 1e3:,.0f}" if s >= 0.1 else f"{s * 1e3:.1f}"


def _x(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}x"


def _pct(v):
    return "–" if v is None else f"{v * 100:.1f}%"


def _flag(ok):
    return "" if ok is None else (" ✓" if ok else " ✗")


def markdown(report: dict) -> str:
    m, rows = report["machine"], report["rows"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['cpu_capability']}"
        f"{', native bf16' if m['native_bf16'] else ', no native bf16'}), device {m['device']}"
        f"{' (' + m['gpu'] + ')' if m.get('gpu') else ''}; torch {m['torch']}, {m['torch_threads']} threads, "
        f"OMP_WAIT_POLICY={m['OMP_WAIT_POLICY']}; numpy {m['numpy']}; timm {m['timm']}; "
        f"load average {m['loadavg_start']} at the start.",
        f"Command: `{report['command']}` ({report['started']}, {report['duration_s'] / 60:.1f} min).",
        "",
        "| case | dtype | mode | rounds | speed-up | (paired) | MAC ratio | of ideal | merge share "
        "| naive / timm | ref / torch | compile gain |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t = r["targets"]
        gain = r.get("compile_gain") or {}
        gain = "–" if "inti" not in gain else f"{gain['inti']:.2f}x"
        lines.append(
            f"| {r['preset']} T{r['frames']} b{r['batch']} | {r['dtype']} | {r['mode']} | {r['repeats']} "
            f"| {_x(r['speedup'])} | {_x(r['paired']['speedup'])} | {_x(r['predicted'])} "
            f"| {_pct(r['fraction_of_ideal'])}{_flag(t.get('fraction_of_ideal'))} "
            f"| {_pct(r['merge_share'])}{_flag(t.get('merge_share'))} | {_x(r['naive_vs_timm'], 3)}{_flag(t.get('naive_vs_timm'))} "
            f"| {_x(r['ref_vs_torch'])}{_flag(t.get('ref_vs_torch'))} | {gain} |"
        )
    lines += [
        "",
        "| case | dtype | mode | contender | median ms | min ms | clips/s | peak MiB | compile s |",
        "|---|---|---|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        for name in CONTENDERS:
            c = r["contenders"].get(name)
            if not c or c.get("median_s") is None:
                continue
            clips = "–" if name == "merge" else f"{c['clips_per_s']:.3g}"
            comp = f"{c['compile_s']:.0f}" if c.get("compile_s") is not None else "–"
            lines.append(
                f"| {r['preset']} T{r['frames']} b{r['batch']} | {r['dtype']} | {r['mode']} | {name} "
                f"| {_ms(c['median_s'])} | {_ms(c['min_s'])} | {clips} | {c['peak_mib']:,.0f} | {comp} |"
            )
    lines += ["", "Targets (✓ met, ✗ missed): " + "; ".join(f"{k}: {v}" for k, v in report["targets"].items()), ""]
    return "\n".join(lines)


def evaluate_targets(report: dict) -> None:
    summary = {}
    for r in report["rows"]:
        t = r["targets"] = {}
        if r["fraction_of_ideal"] is not None:
            t["fraction_of_ideal"] = r["fraction_of_ideal"] >= TARGET_FRACTION_OF_IDEAL
        if r["merge_share"] is not None:
            t["merge_share"] = r["merge_share"] < TARGET_MERGE_SHARE
        if r["naive_vs_timm"] is not None:
            t["naive_vs_timm"] = r["naive_vs_timm"] <= TARGET_NAIVE_VS_TIMM
        if r["ref_vs_torch"] is not None:
            t["ref_vs_torch"] = r["ref_vs_torch"] <= TARGET_REF_VS_TORCH
        for k, ok in t.items():
            summary.setdefault(k, []).append(ok)
    names = {
        "fraction_of_ideal": f"speed-up >= {TARGET_FRACTION_OF_IDEAL:.0%} of the MAC ratio",
        "merge_share": f"merge share < {TARGET_MERGE_SHARE:.0%}",
        "naive_vs_timm": f"naive within {TARGET_NAIVE_VS_TIMM - 1:.0%} of timm",
        "ref_vs_torch": f"ref within {TARGET_REF_VS_TORCH:g}x of torch f32",
    }
    report["targets"] = {names[k]: f"{sum(v)}/{len(v)} rows" for k, v in summary.items()}


def update_readme(path: Path, table: str) -> None:
    """Put the table between <!-- speed:begin --> and <!-- speed:end --> (or at <!-- speed -->)."""
    text = path.read_text()
    block = f"<!-- speed:begin -->\n{table.strip()}\n<!-- speed:end -->"
    if "<!-- speed:begin -->" in text and "<!-- speed:end -->" in text:
        head, rest = text.split("<!-- speed:begin -->", 1)
        tail = rest.split("<!-- speed:end -->", 1)[1]
        text = head + block + tail
    elif "<!-- speed -->" in text:
        text = text.replace("<!-- speed -->", block, 1)
    else:
        raise ValueError(f"{path} has no <!-- speed --> or <!-- speed:begin -->/<!-- speed:end --> markers")
    write_text(path, text)
