"""`inti demo`: a real clip through naive adaptation and InTI, in the NumPy spec and in PyTorch;
the parity, the MACs, the wall times, and three figures."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import EXIT_OK, EXIT_PARITY, CLIError, add_model_args
from .parity import first_failure, format_macs_summary, format_parity, format_times, header, run_checked

DEFAULT_OUT = "inti-demo"


def _uniform(results) -> bool:
    from inti.figures import is_uniform

    contrib = results["inti"].contributions.get("ref")
    return contrib is not None and is_uniform(contrib)


def run(args) -> int:
    from inti.figures import FIGURES, write_figures

    start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not args.force:
        shown = ", ".join(held[:4]) + (" ..." if len(held) > 4 else "")
        raise CLIError(
            f"--out {str(out)!r} already holds {len(held)} file(s) ({shown}); pass --force to replace "
            f"the demo's three figures in it (nothing else there is touched), or choose another --out"
        )
    if args.weights is not None:
        note = f"Weights from {Path(args.weights).name}."
    elif args.random_scores:
        note = "The score weights are random (--random-scores), not trained: the maps show the mechanism, not learned behaviour."
    else:
        note = None

    def figures(step, cfg, clip, results):
        return write_figures(out, clip=clip, cfg=cfg, frames=args.frames, results=results, note=note, step=step)

    cfg, source, clip, results, paths = run_checked(args, "inti demo", extra_steps=len(FIGURES), then=figures)
    failure = first_failure(results)
    captions = {
        "compute": "where the compute goes: MACs per block, naive and InTI, merges marked",
        "contributions": "frame contributions, token by token (spec/00-method.md §6, the paper's Figure 4)"
        + (" -- uniform: the score layer is zero at init" if _uniform(results) else ""),
        "parity": "parity: relative error per trace entry, float64 and float32, against the tolerance",
    }
    print("\n".join([
        "inti demo: InTI on a real clip, the NumPy spec (ref) against PyTorch (torch_impl)",
        "",
        *header(args, cfg, source, clip),
        "",
        format_macs_summary(cfg, args.frames),
        "",
        format_times(results),
        "",
        format_parity(results),
        "",
        f"figures in {out}/",
        *[f"  {paths[k].name:<24}{captions[k]}" for k in paths],
        "",
        f"done in {time.perf_counter() - start:.1f} s, not counting Python and torch start-up"
        + (f"; parity FAILED: {failure}" if failure else ""),
    ]))
    if failure:
        print(f"inti demo: parity failed: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo", help="run naive and InTI through ref and torch on a real clip; write three figures",
        description="Decode and preprocess a clip, run naive adaptation and InTI through the NumPy spec "
                    "(float64) and PyTorch (float64, float32), print the parity, the MAC reduction and the "
                    "wall time of each path, and write three PNG figures.",
        epilog="examples: inti demo ; inti demo my_clip.mp4 --frames 16 ; inti demo --random-scores --out figs",
    )
    add_model_args(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the figures (default: {DEFAULT_OUT}/); it must be new or empty, unless --force")
    p.add_argument("--force", action="store_true",
                   help="replace the three figures in an --out folder that already holds files; "
                        "nothing else in it is touched")
    p.set_defaults(run=run)
    return p
