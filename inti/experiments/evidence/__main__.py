"""python -m inti.experiments.evidence [--out DIR] [--quick] [--force] [--report-only]

Reruns the evidence experiment and writes its report into DIR (default
experiments/evidence): results.json, runs.jsonl (one line per finished run; a rerun resumes
from it), the figures, the trained checkpoint inti_informative.safetensors, and the results
section of DIR/README.md (between its markers; a README without them is left alone and the
section is written to DIR/results.md). The cache of pretrained image models is DIR/cache/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m inti.experiments.evidence", description=__doc__.split("\n\n")[1])
    p.add_argument("--out", type=Path, default=Path("experiments/evidence"), help="the report folder")
    p.add_argument("--quick", action="store_true",
                   help="the test suite's setting: one seed, fewer steps, informative frames only (about 2 min)")
    p.add_argument("--force", action="store_true", help="start over: ignore the runs in DIR/runs.jsonl")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from DIR/runs.jsonl, train nothing")
    p.add_argument("--only", nargs="*", default=None, metavar="VARIANT", help="run only these variants")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    try:
        from .driver import reproduce

        reproduce(args.out, quick=args.quick, force=args.force, report_only=args.report_only, only=args.only)
    except (ValueError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the finished runs are in runs.jsonl; rerun to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
