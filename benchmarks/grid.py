"""The benchmark grid: which cases (preset, frames, batch), precisions and modes are timed.

A row id looks like ``vit_b16-T16-b1-f32-eager`` (dtypes f32, bf16 for autocast, bf16pure for
the model in bfloat16); ``--only`` and ``--skip`` select rows by it.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from .machine import native_bf16

CONTENDERS = ("naive", "inti", "timm", "merge", "gemm", "ref")
# f32: float32. bf16: torch.autocast to bfloat16, the weights stay float32. bf16pure: the models
# cast to bfloat16 (model.to(torch.bfloat16)) and a bfloat16 input.
DTYPES = ("f32", "bf16", "bf16pure")
MODES = ("eager", "compile", "freeze")  # freeze: torch.compile with inductor's freezing (weights as constants)
TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "bf16pure": "bfloat16"}  # the operands' dtype
FEWER_REPEATS = {"vit_l14": 3}  # at most this many rounds for these presets: a ViT-L/14 round takes minutes


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
    dtype: str  # "f32", "bf16" (autocast) or "bf16pure" (the model in bfloat16)
    mode: str  # "eager", "compile" or "freeze" (compiled with inductor's freezing)

    @property
    def id(self) -> str:
        return f"{self.case.name}-{self.dtype}-{self.mode}"


# The grid: ViT-B/16 and ViT-L/14, 8 and 16 frames, batch 1 and 4. The first case is
# the one that runs bfloat16 on CPUs without bfloat16 hardware (see plan).
DEFAULT_CASES = tuple(
    Case(preset, frames, batch) for preset in ("vit_b16", "vit_l14") for batch in (1, 4) for frames in (8, 16)
)


# --quick: one case (the MAC ratio of S = (3,) does not depend on T) in every dtype, eager.
QUICK_CASES = (Case("vit_b16", 8, 1),)


def _matches(row_id: str, globs: str | None) -> bool:
    patterns = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in (globs or "").split(",") if p]
    return any(fnmatch.fnmatchcase(row_id, p) for p in patterns)


def plan(args) -> list[Row]:
    if args.preset:
        cases = [Case(args.preset, f, b) for f in (args.frames or [8]) for b in (args.batch or [1])]
    else:
        cases = list(QUICK_CASES if args.quick else DEFAULT_CASES)
        if args.frames or args.batch:
            cases = [Case(c.preset, f, b) for c in cases for f in (args.frames or [c.frames])
                     for b in (args.batch or [c.batch])]
            cases = list(dict.fromkeys(cases))
    dtypes = DTYPES if not getattr(args, "dtypes", None) else args.dtypes
    modes = ("eager",) if args.quick else MODES
    slow_bf16 = not native_bf16(args.device)
    rows = []
    for mode in modes:
        for dtype in dtypes:
            for i, case in enumerate(cases):
                # Without hardware bfloat16 the matrix products are emulated (about 7x slower than
                # float32 on AVX2): unless asked (--all), only the first case runs in bfloat16.
                if dtype != "f32" and slow_bf16 and i > 0 and not args.all and not args.only:
                    continue
                rows.append(Row(case, dtype, mode))
    if args.only:
        rows = [r for r in rows if _matches(r.id, args.only)]
    if getattr(args, "skip", None):
        rows = [r for r in rows if not _matches(r.id, args.skip)]
    # Grouped by case, so that each case's models are built once.
    order = {c: i for i, c in enumerate(dict.fromkeys(r.case for r in rows))}
    return sorted(rows, key=lambda r: (order[r.case], MODES.index(r.mode), DTYPES.index(r.dtype)))
