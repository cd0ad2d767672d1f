"""The figures of `inti demo`: where the compute goes, frame contributions, parity, learned maps.

Each function draws one PNG with matplotlib's Agg canvas (no pyplot, no display, no global
state) and returns its path. matplotlib is imported inside the functions, so importing this
module is cheap and the `inti cost` command never pays for it.

1. `compute_figure`        MACs per block, naive against InTI, with the merge points marked.
2. `contributions_figure`  the sampled frames, and under each one a heat map of how much it
                           contributes, token by token, to the output frame it is merged into
                           (spec/00-method.md §6; the paper's Figure 4).
3. `parity_figure`         the largest relative error of torch against the spec for every
                           trace entry and dtype, on a log scale, against the tolerance.
4. `learned_figure`        a trained model's contribution maps next to the untrained model's
                           (`learned_maps`: the same model with θ at its initialization), for
                           the shipped model (`inti.assets`) or the demo's --weights.

Each figure's file name is fixed (`FIGURES`, `LEARNED`), so a command knows its own files.
"""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import numpy as np

import ref
from ref.config import ModelConfig
from ref.preprocess import CLIP_MEAN, CLIP_STD

from .io.atomic import atomic_write
from .io.optional import require
from .labels import config_name, describe, mac_unit, schedule_text

FIGURES = {
    "compute": "fig1_compute.png",
    "contributions": "fig2_contributions.png",
    "parity": "fig3_parity.png",
}
LEARNED = "fig4_learned.png"
DPI = 110
ZERO_FLOOR = 1e-18  # a relative error of exactly 0 is drawn here on the log scale

NAIVE_COLOR, INTI_COLOR, MERGE_COLOR = "#9e9e9e", "#1f77b4", "#d62728"
DTYPE_STYLE = {  # marker, colour
    "float64": ("o", "#1f77b4"),
    "float32": ("s", "#ff7f0e"),
    "float16": ("^", "#2ca02c"),
    "bfloat16": ("v", "#9467bd"),
}
GROUP_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#666666")


def canvas(figsize, dpi: int = DPI, what: str = "drawing figures"):
    """A matplotlib Figure on the Agg canvas, without pyplot's global state; `what` names the
    work in the error when matplotlib is missing."""
    require("matplotlib", what)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    """Render to PNG and replace `path` at once (inti.io.atomic): a failed draw leaves no
    truncated figure beside the others."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=DPI, facecolor="white")
    return path


# ---------------------------------------------------------------------------------------------
# 1. where the compute goes


def compute_figure(cfg: ModelConfig, frames: int, path) -> Path:
    """MACs per block, naive and InTI side by side; the merges Φ marked where they sit.

    Left: one pair of bars per block, and Φ's own cost (predictor + interpolation) as a red
    bar on the dashed line after each merging block. Right: the totals split by part.
    """
    cost = ref.compare(cfg, frames)
    inti, naive = cost["inti"], cost["naive"]
    depth = cfg.depth
    div, prefix = mac_unit(max(m for _, m in naive["per_block"]))
    unit = f"{prefix}MACs"

    fig = canvas((max(9.0, 4.5 + 0.45 * depth), 5.4))
    grid = fig.add_gridspec(1, 2, width_ratios=(max(3.0, depth / 3), 1.4), wspace=0.3)
    ax, tot = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])

    x = np.arange(1, depth + 1)
    naive_b = np.array([m for _, m in naive["per_block"]]) / div
    inti_b = np.array([m for _, m in inti["per_block"]]) / div
    ax.bar(x - 0.2, naive_b, width=0.4, color=NAIVE_COLOR, label=f"naive ({frames} frames throughout)")
    ax.bar(x + 0.2, inti_b, width=0.4, color=INTI_COLOR, label="InTI")
    # the frame count on the InTI bars, where a stage starts
    starts = [1] + [k + 1 for k in cfg.schedule if k < depth]
    for k in starts:
        t = inti["per_block"][k - 1][0]
        ax.text(k + 0.2, inti_b[k - 1], f"T={t}", ha="center", va="bottom", fontsize=8, color=INTI_COLOR)

    t = frames
    for j, k in enumerate(cfg.schedule):
        parts = ref.cost.merge_macs(cfg, t)
        phi = sum(parts.values()) / div
        ax.axvline(k + 0.5, color=MERGE_COLOR, linestyle="--", linewidth=1.2, zorder=0)
        ax.bar(k + 0.5, phi, width=0.18, color=MERGE_COLOR, label="Φ (predictor + interpolation)" if j == 0 else None)
        ax.text(k + 0.5, naive_b.max() * 1.04, f"merge {j + 1}\nT {t}→{t // 2}", ha="center", va="bottom",
                fontsize=8, color=MERGE_COLOR, bbox=dict(facecolor="white", edgecolor="none", pad=1.0))
        t //= 2
    ax.set_xticks(x)
    ax.set_xlim(0.3, depth + 0.7)
    ax.set_ylim(0, naive_b.max() * 1.5)
    ax.set_xlabel("block (counted from 1, as in the schedule)")
    ax.set_ylabel(f"{unit} per block (batch of 1 clip)")
    ax.legend(loc="upper center", ncol=3, fontsize=8, framealpha=0.95)
    ax.set_title("MACs per block", fontsize=11)

    parts = [
        ("patch embedding", "patch_embed", "#8c564b"),
        ("blocks", "blocks", INTI_COLOR),
        ("predictor θ", "predictor", MERGE_COLOR),
        ("interpolation", "interpolation", "#ff9896"),
        ("head", "head", "#7f7f7f"),
    ]
    tdiv, tprefix = mac_unit(naive["total"])
    for i, counts in enumerate((naive, inti)):
        bottom = 0.0
        for label, key, color in parts:
            value = counts[key] / tdiv
            tot.bar(i, value, bottom=bottom, color=color, width=0.6, label=label if i == 1 else None)
            bottom += value
        tot.text(i, bottom, f"{bottom:,.0f}" if bottom >= 100 else f"{bottom:.3g}", ha="center", va="bottom", fontsize=9)
    tot.set_xticks([0, 1], ["naive", "InTI"])
    tot.set_ylim(0, naive["total"] / tdiv * 1.65)
    tot.set_ylabel(f"total {tprefix}MACs")
    tot.legend(loc="upper right", ncol=1, fontsize=7, framealpha=0.95)
    tot.set_title("per clip, by part", fontsize=11)

    red = cost["reduction"]
    fig.suptitle(
        f"Where the compute goes: {describe(cfg)}, {frames} frames, {schedule_text(cfg.schedule)}",
        fontsize=12,
    )
    fig.text(
        0.5, 0.01,
        f"MACs (1 multiply-accumulate = 1); FLOPs = 2 × MACs.  InTI saves {red['blocks']:.1%} of the block MACs "
        f"and {red['total']:.1%} of the total, predictor included.",
        ha="center", va="bottom", fontsize=9,
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.14)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# 2. frame contributions (spec/00-method.md §6, the paper's Figure 4)


def to_image(frame: np.ndarray) -> np.ndarray:
    """A normalized frame (3, H, W) back to displayable RGB (H, W, 3) in [0, 1]."""
    mean = np.asarray(CLIP_MEAN).reshape(3, 1, 1)
    std = np.asarray(CLIP_STD).reshape(3, 1, 1)
    return np.clip(np.transpose(np.asarray(frame, np.float64) * std + mean, (1, 2, 0)), 0.0, 1.0)


def is_uniform(contrib: np.ndarray, atol: float = 1e-9) -> bool:
    """True when every token of every frame has the same contribution."""
    return bool(np.ptp(contrib) <= atol)


def contributions_caption(contrib: np.ndarray, cfg: ModelConfig, note: str | None = None) -> str:
    """What the maps show, said plainly (uniform maps are called uniform, and why)."""
    group = cfg.min_frames
    if not cfg.schedule:
        return "S=(): no merges, so every frame is its own output frame and contributes 1 everywhere."
    if is_uniform(contrib):
        value = float(contrib.flat[0])
        why = {
            "mean": "the 'mean' weight function gives every frame of a pair 1/2",
        }.get(cfg.weight_fn, "the predictor's score layer is zero (its initialization), so every merge averages its pair")
        text = (
            f"Every map is uniform ({value:.4g} = 1/{group} everywhere): {why}, "
            f"and no token is favoured. Non-uniform maps need trained weights (--weights FILE) "
            f"or --random-scores."
        )
    else:
        text = f"Each output frame stands for {group} input frames (outlined in one colour)."
        if cfg.weight_fn == "softmax":
            text += " With softmax weights their contributions sum to 1 at every token."
        else:
            text += f" With {cfg.weight_fn} weights the contributions of a group need not sum to 1."
    return text + (f" {note}" if note else "")


def contributions_figure(clip: np.ndarray, contrib: np.ndarray, cfg: ModelConfig, path, note: str | None = None) -> Path:
    """The sampled frames in a row; under each, the heat map of its contribution per patch token.

    clip: (T0, 3, H, W) normalized frames, as the model read them.
    contrib: (T0, N) contributions of one clip (class token first), e.g. ``ref.contributions(...)[0]``,
        or None without merges. The class token's value is printed under its map.
    note: appended to the caption (say where the weights came from).
    """
    clip = np.asarray(clip)
    t0 = clip.shape[0]
    grid = cfg.grid
    if contrib is None:
        contrib = np.ones((t0, cfg.num_tokens))
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.shape != (t0, cfg.num_tokens):
        raise ValueError(f"contributions must have shape (T0, N) = {(t0, cfg.num_tokens)}, got {contrib.shape}")
    group = max(cfg.min_frames, 1)

    col = 1.55
    fig = canvas((col * t0 + 1.4, 5.0))
    gs = fig.add_gridspec(2, t0 + 1, width_ratios=[1.0] * t0 + [0.08], hspace=0.28, wspace=0.08)
    image = None
    for f in range(t0):
        g = f // group
        color = GROUP_COLORS[g % len(GROUP_COLORS)]
        top = fig.add_subplot(gs[0, f])
        top.imshow(to_image(clip[f]), interpolation="bilinear")
        top.set_title(f"frame {f}", fontsize=9)
        top.set_xticks([]), top.set_yticks([])
        bottom = fig.add_subplot(gs[1, f])
        heat = contrib[f, 1:].reshape(grid, grid)  # patch tokens, row-major on the h x w grid
        image = bottom.imshow(heat, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        bottom.set_xticks([]), bottom.set_yticks([])
        bottom.set_xlabel(f"→ output {g}\ncls {contrib[f, 0]:.2f}", fontsize=8)
        for ax in (top, bottom):
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.5)
    cax = fig.add_subplot(gs[1, t0])
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("contribution", fontsize=8)
    bar.ax.tick_params(labelsize=7)

    fig.suptitle(
        f"Frame contributions: how much each token of each input frame reaches its output frame "
        f"({config_name(cfg)}, {schedule_text(cfg.schedule)}; product of the merge weights on its path)",
        fontsize=11,
    )
    width_chars = int((col * t0 + 1.4) * 12)
    fig.text(0.5, 0.01, textwrap.fill(contributions_caption(contrib, cfg, note), width_chars),
             ha="center", va="bottom", fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.95, top=0.86, bottom=0.2)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# 3. parity


def parity_figure(results: dict, path) -> Path:
    """One panel per model ({"naive": ParityResult, "inti": ParityResult}): for each trace
    entry the largest relative error of torch against the float64 spec, one marker per dtype,
    on a log scale, with each dtype's tolerance as a dashed line. Failures are circled red."""
    names = {"naive": "naive adaptation, S=()", "inti": "InTI"}
    sizes = [len(r.table()) for r in results.values()]
    fig = canvas((max(9.0, 1.6 + 0.42 * sum(sizes)), 5.6))
    gs = fig.add_gridspec(1, len(results), width_ratios=sizes, wspace=0.06)
    n_rows = n_bad = 0
    first = None
    legend: dict = {}
    for i, (model, result) in enumerate(results.items()):
        ax = fig.add_subplot(gs[i], sharey=first)
        first = first or ax
        table = result.table()
        x = np.arange(len(table))
        ax.axhspan(ZERO_FLOOR / 3, ZERO_FLOOR * 3, color="#eeeeee", zorder=0)
        ax.text(-0.5, ZERO_FLOOR * 1.5, "exactly 0", ha="left", va="center", fontsize=7, color="#666666")
        for d, dtype in enumerate(result.dtypes):
            marker, color = DTYPE_STYLE.get(dtype, ("D", "#333333"))
            dx = (d - (len(result.dtypes) - 1) / 2) * 0.22  # side by side, so equal values stay visible
            errs = np.array([table[name][dtype].rel_err for name in table])
            oks = np.array([table[name][dtype].ok for name in table])
            shown = np.where(np.isfinite(errs), np.maximum(errs, ZERO_FLOOR), 10.0)
            ax.scatter(x + dx, shown, marker=marker, color=color, s=28, zorder=3, label=f"{dtype}")
            if (~oks).any():
                ax.scatter(x[~oks] + dx, shown[~oks], marker="o", s=160, facecolors="none", edgecolors="red",
                           linewidths=2, zorder=4, label=f"{dtype} over tolerance")
            tol = result.rows[[r.dtype for r in result.rows].index(dtype)].tol
            ax.axhline(tol, color=color, linestyle="--", linewidth=1.2, label=f"{dtype} tolerance {tol:g}")
            n_rows += len(errs)
            n_bad += int((~oks).sum())
        ax.set_yscale("log")
        ax.set_ylim(ZERO_FLOOR / 3, 30.0)
        ax.set_xticks(x, list(table), rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(table) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(names.get(model, model), fontsize=10)
        if i == 0:
            ax.set_ylabel("max |torch − ref| / max |ref|  (log scale)")
        else:
            ax.tick_params(labelleft=False)
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles))
    verdict = "all within tolerance" if n_bad == 0 else f"{n_bad} over tolerance"
    fig.suptitle(
        f"Parity: torch against the NumPy spec (float64), per trace entry — {n_rows} comparisons, {verdict}",
        fontsize=11,
    )
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 6), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.035))
    fig.text(0.5, 0.01, "A marker in the grey band means the error is exactly 0. Tolerances: inti.tolerances.TOLERANCE "
             "(one table, keyed by dtype). Red circles: over tolerance.", ha="center", va="bottom", fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------


def write_figures(out_dir, *, clip: np.ndarray, cfg: ModelConfig, frames: int, results: dict,
                  note: str | None = None, step=None) -> dict[str, Path]:
    """Figures 1 to 3 into `out_dir`; returns {"compute"|"contributions"|"parity": path}.

    clip: (T0, 3, H, W) the clip the models read; results: `parity.run_both`'s output.
    step: optional `step(label)` context manager around each figure (a progress bar).
    """
    step = step or (lambda label: contextlib.nullcontext())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with step("figure 1: where the compute goes"):
        paths["compute"] = compute_figure(cfg, frames, out_dir / FIGURES["compute"])
    with step("figure 2: frame contributions"):
        contrib = results["inti"].contributions.get("ref")
        paths["contributions"] = contributions_figure(
            clip, None if contrib is None else contrib[0], cfg, out_dir / FIGURES["contributions"], note=note
        )
    with step("figure 3: parity"):
        paths["parity"] = parity_figure(results, out_dir / FIGURES["parity"])
    return paths


# ---------------------------------------------------------------------------------------------
# 4. what training changed: learned maps next to untrained ones


def has_predictor(params: dict) -> bool:
    """Whether a parameter dict has a learned predictor θ (a score layer) whose maps can differ
    from the plain mean."""
    return any(k.startswith("merges.") and k.endswith(".score.weight") for k in params)


def learned_maps(params: dict, cfg: ModelConfig, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trained, untrained, logits): the contributions (spec/00-method.md §6) of the model in
    `params` on `clips` (n, T0, 3, H, W), those of the same model with θ at its initialization
    (ref.init_params' rule: a zero score layer, so every merge averages its pair), each
    (n, T0, N), and the trained model's logits. Runs the NumPy spec, in float64."""
    clips = np.asarray(clips, np.float64)
    fresh = ref.init_params(cfg, seed=0, dtype=np.asarray(params["pos_embed"]).dtype, prefix="merges.")

    def maps(p):
        logits, trace = ref.forward(p, clips, cfg, return_trace=True)
        return ref.contributions(ref.trace_weights(trace, cfg)), logits

    trained, logits = maps(params)
    untrained, _ = maps({**params, **fresh})
    return trained, untrained, logits


def learned_figure(clips: np.ndarray, trained: np.ndarray, untrained: np.ndarray, cfg: ModelConfig,
                   marked: list, path, title: str, note: str | None = None,
                   marked_meaning: str | None = "the frames that show the digit") -> Path:
    """For each clip: its frames, then the trained model's contribution of each patch token,
    then the untrained model's, on one colour scale; the frames in `marked` (per clip: the
    frames that show what the label is about, `marked_meaning` in the caption) are outlined in red.

    clips: (n, T0, 3, H, W) normalized frames; trained, untrained: (n, T0, N) contributions
    (``ref.contributions``, `learned_maps`), class token first.
    """
    clips, trained, untrained = np.asarray(clips), np.asarray(trained, np.float64), np.asarray(untrained, np.float64)
    n, t0 = clips.shape[:2]
    for name, c in (("trained", trained), ("untrained", untrained)):
        if c.shape != (n, t0, cfg.num_tokens):
            raise ValueError(f"{name} contributions must have shape {(n, t0, cfg.num_tokens)}, got {c.shape}")
    fig = canvas((1.25 * t0 + 1.6, 1.3 * 3 * n + 1.4))
    gs = fig.add_gridspec(3 * n, t0 + 1, width_ratios=[1.0] * t0 + [0.08], hspace=0.12, wspace=0.06)
    image = None
    for i in range(n):
        for f in range(t0):
            shown = f in marked[i]
            axes = [fig.add_subplot(gs[3 * i + r, f]) for r in range(3)]
            axes[0].imshow(to_image(clips[i, f]), interpolation="nearest")
            for ax, c in ((axes[1], trained), (axes[2], untrained)):
                image = ax.imshow(c[i, f, 1:].reshape(cfg.grid, cfg.grid), vmin=0.0, vmax=1.0, cmap="viridis",
                                  interpolation="nearest")
            axes[1].set_title(f"{trained[i, f].mean():.2f}", fontsize=7, pad=1)
            for ax in axes:
                ax.set_xticks([]), ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor("red" if shown else "0.75")
                    spine.set_linewidth(2.2 if shown else 0.6)
            if f == 0:
                for ax, label in zip(axes, (f"clip {i}", "trained", "untrained")):
                    ax.set_ylabel(label, fontsize=8)
    bar = fig.colorbar(image, cax=fig.add_subplot(gs[1:3, t0]))
    bar.set_label("contribution", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    caption = ("Rows per clip: the frames" + (f" (red: {marked_meaning})" if marked_meaning else "") + "; the trained "
               "model's contribution of each patch token, with each frame's mean above it; the untrained model's (θ at "
               "its initialization averages every pair: 0.5 everywhere).") + (f" {note}" if note else "")
    fig.text(0.5, 0.005, textwrap.fill(caption, int((1.25 * t0 + 1.6) * 13)), ha="center", va="bottom", fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.93, top=1 - 0.5 / (1.3 * 3 * n + 1.4), bottom=0.9 / (1.3 * 3 * n + 1.4))
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# training curves (inti train)


def training_curves(history: list[dict], path) -> Path:
    """The loss and lr by step, and the validation top-1 and merge entropy at each evaluation,
    from a run's metrics (the records of metrics.jsonl)."""
    steps = [r for r in history if "loss" in r]
    evals = [r for r in history if "eval" in r]
    fig = canvas((10.0, 4.2))
    left, mid, right = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)
    left.plot([r["step"] for r in steps], [r["loss"] for r in steps], color=INTI_COLOR)
    left.set_xlabel("step")
    left.set_ylabel("training loss")
    left.set_title("loss", fontsize=10)
    mid.plot([r["step"] for r in steps], [r["lr"] for r in steps], color="#7f7f7f")
    mid.set_xlabel("step")
    mid.set_title("learning rate", fontsize=10)
    if evals:
        right.plot([r["step"] for r in evals], [r["eval"]["top1"] for r in evals], "o-", color=INTI_COLOR,
                   label="val top-1")
        merges = sorted(k for k in evals[-1]["eval"] if k.endswith("_entropy_bits"))
        for key in merges:
            right.plot([r["step"] for r in evals], [r["eval"][key] for r in evals], "s--", color=MERGE_COLOR,
                       label=key.replace("_entropy_bits", " weight entropy (bits)"))
        right.set_ylim(0, 1.05)
        right.legend(fontsize=7)
    right.set_xlabel("step")
    right.set_title("validation", fontsize=10)
    fig.suptitle("Training curves (metrics.jsonl)", fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.85, bottom=0.15, wspace=0.3)
    return _save(fig, path)

