"""The benchmark scripts' flags, checked when the command line is parsed.

Every numeric and choice flag of every script goes through one of these, so that a bad value
ends the script at once with argparse's usage line and one error line (exit 2), never with a
traceback after minutes of building models. Sizes are bounded before anything is allocated:

- whole numbers (`whole(lo, hi)`): rounds and repeats (`MAX_ROUNDS`), threads (`MAX_THREADS`),
  frames (`MAX_FRAMES`), batch (`MAX_BATCH`), seeds (0 to `MAX_SEED`, what both torch and
  NumPy take);
- `seconds`: a finite, non-negative time budget;
- `device` ("cpu", "cuda" or "cuda:N", and the CUDA device must exist) and `device_name` (the
  same spelling, for a script that skips cleanly without CUDA);
- `preset` and `subset(choices)` (comma-separated, known, none twice);
- after parsing: `check_case` (frames against the preset's schedule, and the input's size
  against `MAX_INPUT_BYTES`), `check_folder` and `check_file` (an output path of the right
  kind).

Raise a bound by editing its constant here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import ref
from ref.checks import check_frames

MAX_SEED = 2**63 - 1
MAX_THREADS = 1024
MAX_ROUNDS = 10_000
MAX_FRAMES = 1024
MAX_BATCH = 1024
MAX_INPUT_BYTES = 1 << 30  # what one case's input (or attention's q, k, v) may take


def whole(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {text!r}")
        return value

    parse.__name__ = "whole number"
    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, 0 or more, got {text!r}")
    return value


def _device(text: str, need_cuda: bool) -> str:
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or (index and not index.isdigit()):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            if need_cuda:
                build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
                raise argparse.ArgumentTypeError(f"{text}, but torch ({build}) sees no CUDA device; use cpu")
        elif index and int(index) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}, but torch sees {torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}")
    return text


def device(text: str) -> str:
    """An argparse type: cpu, cuda or cuda:N, and a CUDA device must be there."""
    return _device(text, need_cuda=True)


def device_name(text: str) -> str:
    """An argparse type: cpu, cuda or cuda:N, spelled right; a missing CUDA is the script's to handle."""
    return _device(text, need_cuda=False)


def preset(text: str) -> str:
    """An argparse type: a preset of `ref.config.PRESETS`."""
    if text not in ref.config.PRESETS:
        raise argparse.ArgumentTypeError(f"unknown preset {text!r}; choose one of {', '.join(sorted(ref.config.PRESETS))}")
    return text


def subset(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated, non-empty subset of `choices`, none twice."""

    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        unknown = [s for s in items if s not in choices]
        twice = sorted({s for s in items if items.count(s) > 1})
        if not items or unknown or twice:
            why = f"unknown {', '.join(map(repr, unknown))}" if unknown else \
                f"{', '.join(twice)} twice" if twice else "nothing"
            raise argparse.ArgumentTypeError(f"takes a comma-separated subset of {','.join(choices)}, got {text!r} ({why})")
        return items

    parse.__name__ = "subset"
    return parse


def check_case(parser: argparse.ArgumentParser, preset_name: str, frames: int, batch: int) -> None:
    """Refuse, with a usage error, frames that the preset's schedule cannot merge, and an input
    clip (batch, frames, 3, S, S) of float32 above MAX_INPUT_BYTES."""
    cfg = ref.preset(preset_name)
    try:
        check_frames(frames, cfg)
    except ValueError as e:
        parser.error(f"--frames {frames} does not fit {preset_name}: {e}")
    check_bytes(parser, f"--frames {frames} --batch {batch} of {preset_name}", "input clip",
                batch * frames * 3 * cfg.image_size**2 * 4)


def check_bytes(parser: argparse.ArgumentParser, flags: str, what: str, nbytes: int) -> None:
    if nbytes > MAX_INPUT_BYTES:
        parser.error(f"{flags} asks for a {nbytes / 2**30:.1f} GiB {what}, above the bound of "
                     f"{MAX_INPUT_BYTES / 2**30:g} GiB (MAX_INPUT_BYTES in benchmarks/flags.py)")


def check_folder(parser: argparse.ArgumentParser, path: Path, flag: str = "--out") -> None:
    """An output folder: absent (it is made) or a folder, never a file."""
    if path.exists() and not path.is_dir():
        parser.error(f"{flag} {path} is a file; expected a folder (absent, or one to write into)")


def check_file(parser: argparse.ArgumentParser, path: Path, flag: str) -> None:
    """An output file: absent or a file, never a folder, in a folder that is not a file."""
    if path.is_dir():
        parser.error(f"{flag} {path} is a folder; expected a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                parser.error(f"{flag} {path}: {parent} is a file, not a folder")
            break


def add_malloc_arg(parser: argparse.ArgumentParser) -> None:
    """The `--malloc` option of benchmarks.speed and benchmarks.train_speed (apply it with
    `benchmarks.machine.fixed_malloc()` when it is "fixed")."""
    parser.add_argument("--malloc", default="fixed", choices=("fixed", "default"),
                        help="fixed (default): glibc's mmap and trim thresholds fixed at 1 GiB for the run, so "
                             "that big temporaries do not page-fault by an amount that depends on the previous "
                             "contender; default: glibc's own (benchmarks/README.md, Methodology)")
