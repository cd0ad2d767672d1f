"""The report: the Markdown tables, the targets, the figure (fraction of peak, the profile), and
the README's table between its markers."""

from __future__ import annotations

from pathlib import Path

from inti.io.atomic import atomic_write, write_text

from .grid import CONTENDERS
from .machine import summary

# The targets (benchmarks/README.md, "The tables", explains each). The bfloat16 targets and the
# fractions of peak are judged only where bfloat16 has hardware: a row on a CPU that emulates
# bfloat16 is "not judged".
TARGET_FRACTION_OF_IDEAL = {"f32": 0.90, "bf16": 0.95}  # measured speed-up / MAC-predicted ratio
TARGET_MERGE_SHARE = 0.03  # predictor + interpolation, of InTI's wall time
TARGET_NAIVE_VS_TIMM = {"f32": 1.05, "bf16": 1.0}  # our naive time / timm's time, same weights, same frames
TARGET_REF_VS_TORCH = 3.0  # NumPy ref InTI time / torch InTI float32 eager time
TARGET_NAIVE_OF_PEAK = {"f32": 0.80, "bf16": 0.65}  # naive's MAC/s / the GEMM rate of its own shapes

DTYPE_LABEL = {"f32": "f32", "bf16": "bf16 autocast", "bf16pure": "bf16 pure"}
BREAKDOWN_COLUMNS = (("gemm", "GEMM"), ("attention", "attention"), ("elementwise", "elementwise"),
                     ("copies", "copies"), ("theta", "θ"), ("phi", "Φ"), ("other", "other"), ("host", "host"))


def _ms(s):
    return "–" if s is None else f"{s * 1e3:,.0f}" if s >= 0.1 else f"{s * 1e3:.1f}"


def as_x(v, digits=2) -> str:
    """A ratio as the tables print it: 1.59x, or – when there is none."""
    return "–" if v is None else f"{v:.{digits}f}x"


def _pct(v):
    return "–" if v is None else f"{v * 100:.1f}%"


def _s(v):
    return "–" if v is None else f"{v:.0f}"


def _flag(ok):
    return "" if ok is None else (" ✓" if ok else " ✗")


def _kind(dtype: str) -> str:
    return "f32" if dtype == "f32" else "bf16"


def _case(r) -> str:
    return f"{r['preset']} T{r['frames']} b{r['batch']}"


def _dtype(r) -> str:
    return DTYPE_LABEL.get(r["dtype"], r["dtype"]) + (" *" if r.get("emulated_bf16") else "")


def _peak(c: dict | None) -> str:
    if not c or c.get("gmac_per_s") is None:
        return "–"
    frac = c.get("fraction_of_peak")
    return f"{c['gmac_per_s']:,.1f}" + ("" if frac is None else f" ({frac:.0%})")


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [
        summary(report["machine"]),
        f"Command: `{report['command']}` ({report['started']}, {report['duration_s'] / 60:.1f} min).",
        "",
        "| case | dtype | mode | rounds | speed-up | (paired) | MAC ratio | of ideal | merge share "
        "| naive / timm | InTI / timm | ref / torch | compile gain |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t = r["targets"]
        gain = r.get("compile_gain") or {}
        gain = "–" if "inti" not in gain else f"{gain['inti']:.2f}x"
        lines.append(
            f"| {_case(r)} | {_dtype(r)} | {r['mode']} | {r['repeats']} "
            f"| {as_x(r['speedup'])} | {as_x(r['paired']['speedup'])} | {as_x(r['predicted'])} "
            f"| {_pct(r['fraction_of_ideal'])}{_flag(t.get('fraction_of_ideal'))} "
            f"| {_pct(r['merge_share'])}{_flag(t.get('merge_share'))} | {as_x(r['naive_vs_timm'], 3)}{_flag(t.get('naive_vs_timm'))} "
            f"| {as_x(r.get('inti_vs_timm'), 3)} | {as_x(r['ref_vs_torch'])}{_flag(t.get('ref_vs_torch'))} | {gain} |"
        )
    lines += [
        "",
        "Achieved GMAC/s (MACs from `ref.count_macs` / median time) and, in brackets, the fraction of the GEMM rate "
        "of the model's own shapes (qkv, proj, fc1, fc2 over B·T·N tokens) measured in the same rounds:",
        "",
        "| case | dtype | mode | GEMM GMAC/s | naive | InTI | timm |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        c, t = r["contenders"], r["targets"]
        peak = r.get("gemm_gmac_per_s")
        lines.append(
            f"| {_case(r)} | {_dtype(r)} | {r['mode']} | {'–' if peak is None else f'{peak:,.1f}'} "
            f"| {_peak(c.get('naive'))}{_flag(t.get('naive_of_peak'))} | {_peak(c.get('inti'))} | {_peak(c.get('timm'))} |"
        )
    profiled = [(r, n, r["contenders"][n]["breakdown"]) for r in rows for n in ("naive", "inti", "timm")
                if "breakdown" in r["contenders"].get(n, {})]
    if profiled:
        lines += [
            "",
            "Where the time goes (eager rows, one call under `torch.profiler`, shares of its wall time; "
            "benchmarks/breakdown.py): GEMM, attention (SDPA), elementwise (adds, activations, layer norms), "
            "copies (copies, casts, cat, pad), θ (the weight predictor), Φ (merge weights, interpolation), "
            "other (views, allocation), host (outside any op):",
            "",
            "| case | dtype | contender | ms | " + " | ".join(h for _, h in BREAKDOWN_COLUMNS) + " | copy calls |",
            "|---|---|---|--:|" + "--:|" * len(BREAKDOWN_COLUMNS) + "--:|",
        ]
        for r, name, b in profiled:
            shares = " | ".join(f"{b['shares'].get(g, 0) * 100:.1f}%" for g, _ in BREAKDOWN_COLUMNS)
            lines.append(f"| {_case(r)} | {_dtype(r)} | {name} | {_ms(b['wall_s'])} | {shares} | {b['copy_calls']} |")
    lines += [
        "",
        "| case | dtype | mode | contender | median ms | min ms | clips/s | peak MiB | compile s | warm compile s |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        for name in CONTENDERS:
            c = r["contenders"].get(name)
            if not c or c.get("median_s") is None:
                continue
            clips = "–" if c.get("clips_per_s") is None else f"{c['clips_per_s']:.3g}"
            lines.append(
                f"| {_case(r)} | {_dtype(r)} | {r['mode']} | {name} "
                f"| {_ms(c['median_s'])} | {_ms(c['min_s'])} | {clips} | {c['peak_mib']:,.0f} "
                f"| {_s(c.get('compile_s'))} | {_s(c.get('compile_warm_s'))} |"
            )
    if any(r.get("emulated_bf16") for r in rows):
        lines += ["", "\\* emulated: this CPU has no bfloat16 matrix units (neither amx_bf16 nor avx512_bf16), so "
                      "torch emulates bfloat16 products far below float32's speed; the bfloat16 goals are not judged here."]
    lines += ["", "Targets (✓ met, ✗ missed): " + "; ".join(f"{k}: {v}" for k, v in report["targets"].items()), ""]
    return "\n".join(lines)


def evaluate_targets(report: dict) -> None:
    summary = {}
    for r in report["rows"]:
        t = r["targets"] = {}
        kind = _kind(r["dtype"])
        judged = not r.get("emulated_bf16")
        naive_peak = r["contenders"].get("naive", {}).get("fraction_of_peak")
        if r["fraction_of_ideal"] is not None and judged:
            t["fraction_of_ideal"] = r["fraction_of_ideal"] >= TARGET_FRACTION_OF_IDEAL[kind]
        if r["merge_share"] is not None and judged:
            t["merge_share"] = r["merge_share"] < TARGET_MERGE_SHARE
        if r["naive_vs_timm"] is not None and judged:
            t["naive_vs_timm"] = r["naive_vs_timm"] <= TARGET_NAIVE_VS_TIMM[kind]
        if r["ref_vs_torch"] is not None:
            t["ref_vs_torch"] = r["ref_vs_torch"] <= TARGET_REF_VS_TORCH
        if naive_peak is not None and judged and r["mode"] == "eager":
            t["naive_of_peak"] = naive_peak >= TARGET_NAIVE_OF_PEAK[kind]
        for k, ok in t.items():
            summary.setdefault((k, kind if k != "merge_share" and k != "ref_vs_torch" else None), []).append(ok)
        if not judged:
            summary.setdefault(("emulated", None), []).append(True)

    def name(k, kind):
        return {
            "fraction_of_ideal": lambda: f"{kind} speed-up >= {TARGET_FRACTION_OF_IDEAL[kind]:.0%} of the MAC ratio",
            "merge_share": lambda: f"merge share < {TARGET_MERGE_SHARE:.0%}",
            "naive_vs_timm": lambda: f"{kind} naive <= {TARGET_NAIVE_VS_TIMM[kind]:.2f}x timm",
            "ref_vs_torch": lambda: f"ref within {TARGET_REF_VS_TORCH:g}x of torch f32",
            "naive_of_peak": lambda: f"{kind} eager naive >= {TARGET_NAIVE_OF_PEAK[kind]:.0%} of GEMM peak",
            "emulated": lambda: "not judged (emulated bf16)",
        }[k]()

    report["targets"] = {
        name(k, kind): (f"{len(v)} rows" if k == "emulated" else f"{sum(v)}/{len(v)} rows")
        for (k, kind), v in summary.items()
    }


def figure(report: dict, path: Path) -> Path | None:
    """fraction_of_peak.png: each row's naive, InTI and timm MAC/s as a fraction of its GEMM rate
    (top), and where naive's and InTI's time goes in the eager rows (bottom). None without
    matplotlib or without a GEMM rate to divide by. Written atomically (inti.io.atomic)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import numpy as np

    from inti.figures import DPI, GROUP_COLORS  # the project's figures' resolution and group colours

    rows = [r for r in report["rows"] if r.get("gemm_gmac_per_s")]
    profiled = [(r, n) for r in report["rows"] for n in ("naive", "inti") if "breakdown" in r["contenders"].get(n, {})]
    if not rows:
        return None
    fig = Figure(figsize=(max(7.0, 0.9 * len(rows) + 2), 4.0 + (0.3 * len(profiled) + 1.5 if profiled else 0)), dpi=DPI)
    FigureCanvasAgg(fig)

    top = fig.add_subplot(2 if profiled else 1, 1, 1)
    names, colors = ("naive", "inti", "timm"), ("#9e9e9e", "#1f77b4", "#ff7f0e")
    x = np.arange(len(rows))
    for i, (name, color) in enumerate(zip(names, colors)):
        values = [r["contenders"].get(name, {}).get("fraction_of_peak") or 0.0 for r in rows]
        top.bar(x + (i - 1) * 0.27, values, width=0.27, color=color, label={"inti": "InTI"}.get(name, name))
    for kind, goal in TARGET_NAIVE_OF_PEAK.items():
        top.axhline(goal, color="#444", lw=0.8, ls=":" if kind == "f32" else "--")
    top.set_xticks(x, [f"{_case(r)}\n{_dtype(r)}\n{r['mode']}" for r in rows], fontsize=7)
    top.set_ylabel("MAC/s / GEMM MAC/s")
    top.set_title("MAC/s as a fraction of the GEMM rate of the model's shapes\n(lines: naive's goals, f32 0.8, bf16 0.65)",
                  fontsize=9)
    top.legend(fontsize=8)
    if profiled:
        bottom = fig.add_subplot(2, 1, 2)
        left = np.zeros(len(profiled))
        for (group, label), color in zip(BREAKDOWN_COLUMNS, GROUP_COLORS):
            share = np.array([r["contenders"][n]["breakdown"]["shares"].get(group, 0.0) for r, n in profiled])
            bottom.barh(np.arange(len(profiled)), share, left=left, color=color, label=label)
            left += share
        bottom.set_yticks(np.arange(len(profiled)),
                          [f"{_case(r)} {_dtype(r)} {'InTI' if n == 'inti' else n}" for r, n in profiled], fontsize=7)
        bottom.invert_yaxis()
        bottom.set_xlabel("share of one eager call's wall time")
        bottom.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:  # a failed draw leaves no truncated figure
        fig.savefig(f, format="png", dpi=DPI, facecolor="white")
    return path


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
