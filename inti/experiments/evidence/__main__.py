"""python -m inti.experiments.evidence [--out DIR] [--quick] [--pilot] [--timing-only] [--force] [--report-only]

Reruns the evidence experiment and writes its report into DIR (default experiments/evidence):
results.json, runs.jsonl (one line per finished run; a rerun resumes from it), the figures, the
trained checkpoint inti_informative.safetensors, and the results section of DIR/README.md
(between its markers; a README without them is left alone and the section is written to
DIR/results.md). The run reads DIR/settings.json, which --pilot writes from the pilot runs on
val (DIR/pilots.jsonl, resumed too). --timing-only times the trained models of the run
(inference clips/s, interleaved, batch 32) into DIR/timing.json and rewrites the report. The
cache (image models, clips, frozen outputs, the first seed's models) is DIR/cache/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m inti.experiments.evidence", description=__doc__.split("\n\n")[1])
    p.add_argument("--out", type=Path, default=Path("experiments/evidence"), help="the report folder")
    p.add_argument("--quick", action="store_true",
                   help="the test suite's setting: one seed, the shipped backbone, six arms on informative frames")
    p.add_argument("--pilot", action="store_true", help="run the pilots on val and write DIR/settings.json, then stop")
    p.add_argument("--timing-only", action="store_true",
                   help="time the run's trained models (clips/s at batch 32) and rewrite the report; train nothing")
    p.add_argument("--rounds", type=int, default=30, help="timing rounds per arm (--timing-only; default 30)")
    p.add_argument("--force", action="store_true", help="start over: ignore the runs in DIR/runs.jsonl")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from DIR/runs.jsonl, train nothing")
    p.add_argument("--only", nargs="*", default=None, metavar="ARM", help="run only these arms")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 10_000:
        p.error(f"--rounds must be between 1 and 10000, got {args.rounds}")
    if sum([args.pilot, args.timing_only, args.report_only]) > 1:
        p.error("--pilot, --timing-only and --report-only exclude one another")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    try:
        from . import driver

        if args.pilot:
            driver.run_pilot(args.out)
        elif args.timing_only:
            from .timing import time_arms

            time_arms(args.out, rounds=args.rounds, quick=args.quick)
            driver.reproduce(args.out, quick=args.quick, report_only=True)
        else:
            driver.reproduce(args.out, quick=args.quick, force=args.force, report_only=args.report_only,
                             only=args.only)
    except (ValueError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the finished runs are in runs.jsonl (pilots.jsonl); rerun to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
