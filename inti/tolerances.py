"""The one tolerance table, keyed by dtype, the error measure, and the one trace comparison.

Relative error of `actual` against `expected`:  max|actual - expected| / max(max|expected|, FLOOR).
Dividing by the largest magnitude of the whole tensor, not elementwise, keeps tiny entries
from blowing the ratio up. The table is the house rule for parity between implementations
(the tests, `inti parity`, the figures and the benchmarks all read this one).

Everything here takes NumPy arrays; a tensor is converted first with `torch_impl.to_numpy`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FLOOR = 1e-6  # magnitudes below this count as this, so an all-zero tensor compares absolutely

# Largest allowed relative error against the float64 NumPy spec, by the dtype that ran.
TOLERANCE = {
    "float64": 1e-10,  # the bar for float64 parity
    "float32": 2e-4,  # measured worst ~1e-6 on real clips; headroom for deep random configs
    "float16": 5e-2,  # 10-bit mantissa; large random scores amplify it in the merge weights
    "bfloat16": 1e-1,  # 7-bit mantissa: about 2 significant digits
}


class Row(NamedTuple):
    """One comparison: trace entry `name`, computed in `dtype`, against the float64 spec."""

    name: str
    dtype: str
    rel_err: float
    tol: float
    ok: bool


def rel_err(actual, expected) -> float:
    """max|actual - expected| / max(max|expected|, FLOOR); inf if the shapes differ or actual is not finite."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if not np.all(np.isfinite(a)):
        return float("inf")
    return float(np.max(np.abs(a - e)) / max(float(np.max(np.abs(e))), FLOOR))


def dtype_key(dtype) -> str:
    """The table's key for a dtype given as a name, a NumPy dtype or a torch dtype."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return np.dtype(dtype).name
    from torch_impl.checks import dtype_name  # a torch dtype: torch is loaded already

    return dtype_name(dtype)


def tolerance(dtype) -> float:
    """The table entry for a dtype given as a name, a NumPy dtype or a torch dtype."""
    name = dtype_key(dtype)
    if name not in TOLERANCE:
        raise ValueError(f"no tolerance for dtype {name!r}; known: {sorted(TOLERANCE)}")
    return TOLERANCE[name]


def compare_traces(actual: dict, expected: dict, dtype, tol: float | None = None) -> list[Row]:
    """One `Row` for every entry of `expected`, in order; `tol` overrides the table's entry.

    An entry missing from `actual` counts as an infinite error."""
    name, tol = dtype_key(dtype), tolerance(dtype) if tol is None else float(tol)
    rows = []
    for key, value in expected.items():
        err = rel_err(actual[key], value) if key in actual else float("inf")
        rows.append(Row(key, name, err, tol, err <= tol))
    return rows


def first_failure(rows) -> Row | None:
    """The first row that breaks tolerance, or None."""
    return next((row for row in rows if not row.ok), None)
