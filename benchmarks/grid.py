"""The benchmark grid: which cases (preset, frames, batch), precisions and modes are timed.

A row id looks like ``vit_b16-T16-b1-f32-eager``; ``--only`` selects rows by it.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from .measure import native_bf16

CONTENDERS = ("naive", "inti", "timm", "merge", "ref")
DTYPES = ("f32", "bf16")
MODES = ("eager", "compile")


@dataclasses.dataclass(frozen=True)
class Case:
    """One model and input size: a preset at `frames` frames and `batch` clips."""

    preset: str
    frames: int
    batch: int

    @property
    def name(self) -> str:
        return f"{self.preset}-T{self.frames}-b{self.batch}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the result table: a case, a precision and an execution mode."""

    case: Case
    dtype: str  # "f32" or "bf16" (autocast)
    mode: str  # "eager" or "compile"

    @property
    def id(self) -> str:
        return f"{self.case.name}-{self.dtype}-{self.mode}"


# The grid: ViT-B/16 at batch 1 and 4, ViT-L/14 at batch 1, 16 frames each.
DEFAULT_CASES = (Case("vit_b16", 16, 1), Case("vit_b16", 16, 4), Case("vit_l14", 16, 1))


# --quick: one row at 8 frames (the MAC ratio of S = (3,) does not depend on T), ~2 minutes.
QUICK_CASES = (Case("vit_b16", 8, 1),)


def plan(args) -> list[Row]:
    if args.preset:
        cases = [Case(args.preset, args.frames or 8, b) for b in (args.batch or [1])]
    else:
        cases = list(QUICK_CASES if args.quick else DEFAULT_CASES)
        if args.frames or args.batch:
            cases = [Case(c.preset, args.frames or c.frames, b) for c in cases for b in (args.batch or [c.batch])]
            cases = list(dict.fromkeys(cases))
    dtypes = ("f32",) if args.quick else DTYPES
    modes = ("eager",) if args.quick else MODES
    slow_bf16 = not native_bf16(args.device)
    rows = []
    for mode in modes:
        for dtype in dtypes:
            for i, case in enumerate(cases):
                # Without hardware bfloat16 the matrix products are emulated (about 7x slower than
                # float32 on AVX2): unless asked (--all), only the first case runs in bfloat16.
                if dtype == "bf16" and slow_bf16 and i > 0 and not args.all and not args.only:
                    continue
                rows.append(Row(case, dtype, mode))
    if args.only:
        patterns = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in args.only.split(",") if p]
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r.id, p) for p in patterns)]
    # Grouped by case, so that each case's models are built once.
    order = {c: i for i, c in enumerate(dict.fromkeys(r.case for r in rows))}
    return sorted(rows, key=lambda r: (order[r.case], MODES.index(r.mode), DTYPES.index(r.dtype)))
