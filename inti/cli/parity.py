"""`inti parity`: every trace entry of torch_impl against the NumPy spec, naive and InTI, on a
real clip; exit 1 on a failure. Also the parity report that `inti demo` prints."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ref
from ref.config import ModelConfig

from ..labels import describe, mac_unit, schedule_text
from ..tolerances import TOLERANCE, first_failure as first_row_failure
from .common import (EXIT_OK, EXIT_PARITY, CLIError, add_model_args, clip_label, model_from_args, progress,
                     separator, table)


def parse_tolerances(items) -> dict[str, float]:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or name not in TOLERANCE:
            raise CLIError(f"--tolerance must be DTYPE=VALUE with DTYPE one of {', '.join(TOLERANCE)}, got {item!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise CLIError(f"--tolerance {name}= needs a number, got {value!r}") from None
        if not out[name] > 0:
            raise CLIError(f"--tolerance {name}= must be positive, got {value!r}")
    return out


def parse_dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in TOLERANCE]
    if bad or not dtypes:
        raise CLIError(f"--dtypes must be a comma-separated list from {', '.join(TOLERANCE)}, got {text!r}")
    return dtypes


# ---------------------------------------------------------------------------------------------
# the report


def _err(row) -> str:
    text = "0" if row.rel_err == 0 else f"{row.rel_err:.1e}"
    return text + ("" if row.ok else " !")


MODEL_NAMES = {"naive": "naive", "inti": "InTI"}


def format_parity(results: dict) -> str:
    """The table of largest relative errors: one row per trace entry, a column per model and dtype."""
    models = list(results)
    dtypes = results[models[0]].dtypes
    names: list[str] = []
    for r in results.values():
        names += [n for n in r.table() if n not in names]
    order = list(results["inti"].table()) if "inti" in results else names
    order += [n for n in names if n not in order]
    body = []
    for name in order:
        cells = [name]
        for m in models:
            entries = results[m].table()
            cells += [_err(entries[name][d]) if name in entries else "" for d in dtypes]
        body.append(cells)
    tol = {d: results[models[0]].worst(d).tol for d in dtypes}
    body += [separator(), ["tolerance"] + [f"{tol[d]:.0e}" for _ in models for d in dtypes]]
    rows = [row for r in results.values() for row in r.rows]
    bad = [row for row in rows if not row.ok]
    return "\n".join([
        "parity: largest relative error of torch against the NumPy spec (float64), per trace entry",
        "        max|torch - ref| / max|ref|; '!' marks an entry over tolerance",
        table(body, ["entry"] + [f"{MODEL_NAMES.get(m, m)} {d}" for m in models for d in dtypes]),
        f"result: all {len(rows)} comparisons within tolerance" if not bad
        else f"result: {len(bad)} of {len(rows)} comparisons over tolerance",
    ])


def first_failure(results: dict) -> str | None:
    """The first row over tolerance, across the models, named with its model; or None."""
    for model, r in results.items():
        row = first_row_failure(r.rows)
        if row is not None:
            return (f"{MODEL_NAMES.get(model, model)} {row.name} in {row.dtype}: relative error "
                    f"{row.rel_err:.3g} > tolerance {row.tol:g}")
    return None


def format_times(results: dict) -> str:
    body = []
    for key in results["inti"].times:
        label = "ref (numpy) float64" if key == "ref float64" else key
        body.append([label] + [f"{results[m].times.get(key, float('nan')):.3f} s" for m in ("naive", "inti")])
    return "\n".join(["wall time of one forward (batch of 1 clip, trace kept)",
                      table(body, ["path", "naive", "InTI"], colalign=("left", "right", "right"))])


def format_macs_summary(cfg: ModelConfig, frames: int) -> str:
    cost = ref.compare(cfg, frames)
    naive, inti, red = cost["naive"]["total"], cost["inti"]["total"], cost["reduction"]
    div, prefix = mac_unit(naive)
    return "\n".join([
        "cost per clip (MACs: 1 multiply-accumulate = 1; FLOPs = 2 x MACs; `inti cost` for the table)",
        table([["MACs", f"{naive / div:.2f} {prefix}", f"{inti / div:.2f} {prefix}"],
               ["FLOPs", f"{2 * naive / div:.2f} {prefix}", f"{2 * inti / div:.2f} {prefix}"]],
              ["", "naive", "InTI"], colalign=("left", "right", "right")),
        f"reduction: {red['blocks']:.1%} of the block MACs; {red['total']:.1%} of the total, predictor included",
    ])


def header(args, cfg: ModelConfig, source: str, clip) -> list[str]:
    merges = (f": merges after block{'s' if len(cfg.schedule) > 1 else ''} {', '.join(map(str, cfg.schedule))}"
              if cfg.schedule else ": no merges (naive)")
    return [
        f"clip     {clip_label(args.video)}: {clip.shape[0]} frames sampled uniformly, "
        f"resized and center-cropped to {clip.shape[2]}x{clip.shape[3]} px",
        f"model    {describe(cfg)}; {schedule_text(cfg.schedule)}{merges}",
        f"weights  {source}",
    ]


# ---------------------------------------------------------------------------------------------
# shared by demo and parity


def run_checked(args, title: str, extra_steps: int, then=None):
    """Model, clip and both parity runs under one progress bar; `then(step, ...)` runs further
    steps (the demo's figures) under the same bar. Every check a user can fail (arguments,
    weights file, video) comes before the torch imports and any computation."""
    from inti.io.clips import load_clip

    cfg, params, source = model_from_args(args)
    dtypes = parse_dtypes(getattr(args, "dtypes", "float64,float32"))
    tols = parse_tolerances(getattr(args, "tolerance", None))
    with progress(title, total=1 + 2 * (1 + len(dtypes)) + extra_steps, mode=args.progress) as step:
        with step(f"decode and preprocess {Path(str(args.video)).name if args.video else 'the bundled clip'}"):
            clip = load_clip(args.video, frames=args.frames, size=cfg.image_size)  # (T0, 3, H, W)
        from inti.parity import run_both

        results = run_both(clip[None], params, cfg, dtypes, step=step, attn_path=args.attn, tols=tols)
        extra = then(step, cfg, clip, results) if then is not None else None
    return cfg, source, clip, results, extra


def run(args) -> int:
    start = time.perf_counter()
    cfg, source, clip, results, _ = run_checked(args, "inti parity", extra_steps=0)
    failure = first_failure(results)
    print("\n".join([
        "inti parity: every trace entry of torch_impl against the NumPy spec, naive and InTI",
        "",
        *header(args, cfg, source, clip),
        "",
        format_parity(results),
        "",
        format_times(results),
        "",
        (f"parity FAILED: {failure}" if failure else "parity OK") + f" ({time.perf_counter() - start:.1f} s)",
    ]))
    if failure:
        print(f"inti parity: FAILED: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "parity", help="the parity check alone; exit 1 if any trace entry breaks tolerance (for CI)",
        description="Compare every trace entry of torch_impl with the NumPy spec, for naive adaptation and "
                    "InTI, on a real clip. Exit status: 0 all within tolerance, 1 a failure, 2 an error.",
        epilog="example: inti parity --random-scores --dtypes float64,float32",
    )
    add_model_args(p)
    p.add_argument("--dtypes", default="float64,float32",
                   help=f"torch dtypes to check, comma-separated from {', '.join(TOLERANCE)} (default: float64,float32)")
    p.add_argument("--tolerance", action="append", metavar="DTYPE=VALUE",
                   help="override one entry of the tolerance table (repeatable), e.g. float32=1e-5")
    p.set_defaults(run=run)
    return p
