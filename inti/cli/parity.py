"""`inti parity`: every trace entry of torch_impl against the NumPy spec, naive and InTI, on a
real clip; exit 1 on a failure (for CI)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..tolerances import TOLERANCE
from .common import (EXIT_OK, EXIT_PARITY, add_model_args, clip_label, dtypes_text, model_from_args, parse_dtypes,
                     tolerance_item)
from .report import format_parity, header, parity_failure, progress


def parse_tolerances(items) -> dict[str, float]:
    """{dtype: tolerance} of the --tolerance entries (checked at parse time, `tolerance_item`)."""
    return dict(items or ())


def run(args) -> int:
    start = time.perf_counter()
    cfg, params, source = model_from_args(args)  # every check a user can fail comes before torch
    dtypes = parse_dtypes(args.dtypes)
    tols = parse_tolerances(args.tolerance)
    from inti.io.clips import load_clip
    from inti.parity import run_both, steps_per_run

    with progress("inti parity", total=1 + 2 * steps_per_run(dtypes), mode=args.progress) as step:
        with step(f"decode and preprocess {Path(str(args.video)).name if args.video else 'the bundled clip'}"):
            clip = load_clip(args.video, frames=args.frames, size=cfg.image_size)  # (T0, 3, H, W)
        results = run_both(clip[None], params, cfg, dtypes, step=step, attn_path=args.attn, tols=tols)
    failure = parity_failure(results)
    print("\n".join([
        "inti parity: every trace entry of torch_impl against the NumPy spec, naive and InTI",
        "",
        *header(clip_label(args.video), cfg, source, clip),
        "",
        format_parity(results),
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
    p.add_argument("--dtypes", type=dtypes_text, default="float64,float32",
                   help=f"torch dtypes to check, comma-separated from {', '.join(TOLERANCE)} (default: float64,float32)")
    p.add_argument("--tolerance", action="append", type=tolerance_item, metavar="DTYPE=VALUE",
                   help="override one entry of the tolerance table (repeatable), e.g. float32=1e-5")
    p.set_defaults(run=run)
    return p
