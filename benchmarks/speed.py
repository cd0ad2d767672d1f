"""Does InTI's MAC saving turn into wall-clock speed? (benchmarks/README.md)

    python -m benchmarks.speed --quick      # ViT-B/16, 8 frames, batch 1, three dtypes, eager
    python -m benchmarks.speed              # the whole grid (long on a 2-core CPU: see README)
    make bench                              # the same as the line above

The pieces: grid.py (which rows), contenders.py (what is timed), gemm.py (the GEMM rate that
MAC/s is a fraction of), runner.py (one row: warm-up, checks, rounds, ratios), timing.py (how a
call is timed), machine.py (the machine facts), breakdown.py (the per-op profile), report.py
(the tables and the figure), flags.py (the flags' checks). Run from the repository root; the
benchmarks are scripts, not installed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from inti.io.atomic import write_text
from torch_impl.layers import NORM_PATHS

from . import flags
from .contenders import prepare_case
from .grid import CONTENDERS, DTYPES, plan
from .machine import cores, describe, fixed_malloc, loadavg
from .report import as_x, evaluate_targets, figure, markdown, update_readme
from .runner import add_compile_gain, run_row

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
RESULTS = ("results.json", "results.md")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Time naive torch, InTI torch, timm (same weights), the NumPy ref and the machine's GEMM rate "
                    "on the model's shapes, interleaved; compare InTI's measured speed-up with its MAC-predicted "
                    "ratio, each model's MAC/s with the GEMM rate, and profile where the time goes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Row ids look like vit_b16-T16-b1-f32-eager; --only takes comma-separated globs or "
               "substrings of them (e.g. --only 'vit_b16-T16-b1*,bf16'). See benchmarks/README.md.",
    )
    rounds = flags.whole(1, flags.MAX_ROUNDS)
    p.add_argument("--quick", action="store_true",
                   help="vit_b16, 8 frames, batch 1, eager, in f32, bf16 and bf16pure, 3 rounds (2 for emulated "
                        "bfloat16): about 8 minutes on a 2-core CPU without bfloat16 hardware")
    p.add_argument("--only", default=None, metavar="GLOBS", help="run only the rows whose id matches one of these")
    p.add_argument("--skip", default=None, metavar="GLOBS", help="leave out the rows whose id matches one of these")
    p.add_argument("--dtypes", default=",".join(DTYPES), type=flags.subset(DTYPES),
                   help=f"comma-separated subset of {','.join(DTYPES)} (default all; bf16 is autocast, "
                        "bf16pure the model cast to bfloat16)")
    p.add_argument("--all", action="store_true",
                   help="also run bfloat16 at every case on CPUs without native bfloat16 (slow)")
    p.add_argument("--repeats", type=rounds, default=None, metavar="N",
                   help=f"timed rounds per row, 1 to {flags.MAX_ROUNDS} (default 5; 3 with --quick)")
    p.add_argument("--min-repeats", type=rounds, default=None, metavar="N",
                   help="rounds per row that --budget never cuts below, at most --repeats (default 3; 2 with "
                        "--quick; never above --repeats)")
    p.add_argument("--budget", type=flags.seconds, default=None, metavar="SECONDS",
                   help="cut a row's rounds to fit this many seconds, down to --min-repeats "
                        "(default 120; 0: no cut)")
    p.add_argument("--force", action="store_true",
                   help="replace results.json and results.md of an earlier run in --out (make bench passes it)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where results.json, results.md and fraction_of_peak.png go (default benchmarks/out/)")
    p.add_argument("--preset", type=flags.preset, default=None,
                   help="run this ref preset instead of the default cases (e.g. nano)")
    p.add_argument("--frames", type=flags.whole(1, flags.MAX_FRAMES), action="append", default=None, metavar="T",
                   help="frames per clip, a count the schedule can merge; repeat for several (default: the grid's, "
                        "8 and 16; 8 with --preset)")
    p.add_argument("--batch", type=flags.whole(1, flags.MAX_BATCH), action="append", default=None, metavar="B",
                   help="clips per batch; repeat for several (default: the grid's)")
    p.add_argument("--contenders", default=",".join(CONTENDERS), type=flags.subset(CONTENDERS),
                   help=f"comma-separated subset of {','.join(CONTENDERS)} (default all)")
    p.add_argument("--device", type=flags.device, default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--threads", type=flags.whole(1, flags.MAX_THREADS), default=None,
                   help="torch threads (default: the core count)")
    p.add_argument("--seed", type=flags.whole(0, flags.MAX_SEED), default=0,
                   help="weights, input and round order (default 0)")
    flags.add_malloc_arg(p)
    p.add_argument("--norm-path", default="native", choices=NORM_PATHS,
                   help="LayerNorm path of our models for half-precision inputs (default native: torch's "
                        "kernel, no float32 copies; explicit: the readable float32 round trip)")
    p.add_argument("--no-layout-optimization", dest="layout_optimization", action="store_false",
                   help="compile with inductor's layout_optimization off (compile and freeze rows; with θ's conv3d "
                        "in the graph it lays InTI's token stream out frames-innermost)")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the per-op profile (one extra call per model in eager rows)")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table into FILE at its <!-- speed --> markers")
    args = p.parse_args(argv)
    flags.check_folder(p, args.out)
    earlier = [n for n in RESULTS if (args.out / n).exists()]
    if earlier and not args.force:
        p.error(f"{args.out} already holds {', '.join(earlier)} of an earlier run; pass --force to replace "
                "them, or choose another --out")
    if args.readme is not None:
        check_readme(p, args.readme)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.budget is None:
        args.budget = 60 if args.quick else 120
    if args.min_repeats is None:
        args.min_repeats = min(2 if args.quick else 3, args.repeats)
    elif args.min_repeats > args.repeats:
        p.error(f"--min-repeats {args.min_repeats} is above --repeats {args.repeats}")
    rows = plan(args)
    if not rows:
        p.error("no row matches --only, --skip and --dtypes; nothing to do")
    for case in dict.fromkeys(r.case for r in rows):
        flags.check_case(p, case.preset, case.frames, case.batch)
    return args


def check_readme(parser, path: Path) -> None:
    """--readme: a file that holds the markers, checked before the run rather than after it."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"--readme {path}: cannot read it ({e.strerror or e})")
    if "<!-- speed -->" not in text and not ("<!-- speed:begin -->" in text and "<!-- speed:end -->" in text):
        parser.error(f"--readme {path} has no <!-- speed --> or <!-- speed:begin -->/<!-- speed:end --> markers")


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    threads_before = torch.get_num_threads()
    if args.malloc == "fixed":
        fixed_malloc()
    torch.set_num_threads(args.threads or cores())
    started = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    rows = plan(args)
    # Compile times are cold when inductor's on-disk cache starts empty: a fresh one per run
    # (unless TORCHINDUCTOR_CACHE_DIR is set); the warm-cache figure reuses it within the run.
    cache = None
    if any(r.mode != "eager" for r in rows) and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        cache = tempfile.TemporaryDirectory(prefix="inti-bench-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
    command = "python -m benchmarks.speed" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else list(argv)))
    report = {
        "command": command,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(args.device),
        "settings": {"repeats": args.repeats, "min_repeats": args.min_repeats, "budget_s": args.budget,
                     "contenders": args.contenders, "seed": args.seed, "all": args.all, "only": args.only,
                     "skip": args.skip, "dtypes": args.dtypes, "norm_path": args.norm_path,
                     "profile": args.profile, "inductor_cache": "fresh per run" if cache else
                     os.environ.get("TORCHINDUCTOR_CACHE_DIR")},
        "rows": [],
    }
    try:
        current, prepared = None, None
        for i, row in enumerate(rows, 1):
            if row.case != current:
                current, prepared = row.case, None
                gc.collect()
                log(f"[{row.case.name}] building models ...")
                prepared = prepare_case(row.case, args, log, dtypes={r.dtype for r in rows if r.case == row.case})
            log(f"[{i}/{len(rows)}] {row.id}")
            result = run_row(row, prepared["models"], prepared["video"], args, log)
            report["rows"].append(result)
            log(f"  speed-up {as_x(result['speedup'])} of predicted {as_x(result['predicted'])}, "
                f"({time.perf_counter() - started:.0f} s so far)")
    finally:
        torch.set_num_threads(threads_before)
        if cache is not None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            cache.cleanup()
    report["duration_s"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = loadavg()
    add_compile_gain(report["rows"])
    evaluate_targets(report)
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "results.json", json.dumps(report, indent=2) + "\n")
    write_text(args.out / "results.md", table)
    drawn = figure(report, args.out / "fraction_of_peak.png")
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    log(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'}" + (f" and {drawn}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
