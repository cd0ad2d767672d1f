"""The `inti` command: what InTI costs, what it computes, and that both implementations agree.

    inti cost   [--preset P] [--frames T] [--schedule S] [--paper]   the MAC table, naive against InTI
    inti demo   [VIDEO] [--preset P] [--frames T] [--schedule S] ... a real clip through ref and torch, three figures
    inti parity [VIDEO] [...]                                         the parity check alone; exit 1 on a failure

One module per subcommand (cost.py, demo.py, parity.py), each with `add_parser(sub)` and
`run(args)`; common.py holds what they share. `python -m inti` is the same command. The speed
benchmarks are repository scripts: `make bench` (benchmarks/README.md).

Every subcommand has --help. Errors a user can cause (a missing file, an unreadable video, a
clip too short, a bad schedule, a mismatched parameter file) end with one line on stderr and
exit status 2; a parity failure exits 1. Set INTI_TRACEBACK=1 to see the traceback instead.
Nothing outside this package imports it.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import cost, demo, parity
from .common import EXIT_ERROR, EXIT_INTERRUPTED, CLIError

SUBCOMMANDS = (cost, demo, parity)


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
    except (CLIError, OSError, ValueError, ImportError) as e:
        if os.environ.get("INTI_TRACEBACK"):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"inti {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"inti {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
