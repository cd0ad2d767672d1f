"""The `inti` command: what InTI costs, what it computes, and that both implementations agree.

    inti cost   [--preset P] [--frames T] [--schedule S] [--paper]     the MAC table, naive against InTI
    inti demo   [VIDEO] [--weights F] [--out DIR] [--force] ...        a real clip through ref and torch, four figures
    inti parity [VIDEO] [--weights F] [--dtypes D] ...                 the parity check alone; exit 1 on a failure
    inti train  --out DIR (--synthetic TASK | --train-list F --val-list F --root D) [--weights F] [...]   train
    inti eval   --weights F (--synthetic TASK | --list F --root D) [--views TxS]   evaluate
    inti predict VIDEO... --weights F [--classes F] [--topk K] [--views TxS] [--json] [--explain OUT]   classify
    inti data   TASK --out DIR [--force]                               a synthetic task as videos and list files
    inti export --format onnx --output FILE [--weights F] [--frames T] [--trace]   an ONNX graph + JSON sidecar

One module per subcommand (cost, demo, parity, train, evaluate, predict, data, export), each with
`add_parser(sub)` and `run(args)`; no subcommand imports another. What they share lives in
two modules: `common` (exit codes, argument types, the shared flags and what they choose) and
`report` (tables, the progress bar, the parts of a report). `python -m inti` is the same
command. The speed benchmarks are repository scripts: `make bench` (benchmarks/README.md).

One flag reads weights everywhere: ``--weights FILE`` takes any weights file
(`inti.io.weights.load`); eval's ``--checkpoint`` and train's ``--pretrained`` are its old
names, kept for one release with a notice. Every command that writes a folder follows one
policy (`inti.io.outdir`): ``--out`` must be new or empty, and ``--force`` replaces only the
command's own files there.

Every subcommand has --help. Errors a user can cause (a missing file, an unreadable video, a
clip too short, a bad schedule, a mismatched weights file, a missing optional dependency,
which names its extra) end with one line on stderr and exit status 2; a parity failure exits
1; `inti predict` exits 3 when some of its videos failed (one line each) and the others ran. No traceback is ever shown, unless INTI_TRACEBACK=1. Nothing outside this package imports it.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..io.optional import extra_of
from . import cost, data, demo, evaluate, export, parity, predict, train
from .common import EXIT_ERROR, EXIT_INTERRUPTED, CLIError

SUBCOMMANDS = (cost, demo, parity, train, evaluate, predict, data, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inti",
        description="InTI (dynamic Inter-frame Token Interpolation, arXiv 2408.06840): its cost, "
                    "a real-clip demo, and the parity of the PyTorch implementation with the NumPy spec.",
        epilog="Errors exit with status 2 and one line; set INTI_TRACEBACK=1 for a traceback. "
               "Start with: inti demo",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the `inti` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already explained
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"inti {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # never a traceback for the user (INTI_TRACEBACK=1 shows it)
        if os.environ.get("INTI_TRACEBACK") == "1":
            raise
        print(f"inti {args.command}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_ERROR


# The errors the project raises for input a user can get wrong; anything else is unexpected,
# and its message says so.
EXPECTED = (CLIError, OSError, ValueError, TypeError, ImportError)


def one_line(e: BaseException) -> str:
    """The error in one line: its message for the errors a user can cause, and for a missing
    optional dependency the extra that brings it."""
    missing = extra_of(e)
    if missing:
        return missing
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, EXPECTED) and first:
        return first
    detail = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return f"{detail} (unexpected; set INTI_TRACEBACK=1 for the traceback, and please report it)"
