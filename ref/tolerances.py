"""The one tolerance table, keyed by dtype, and the error measure every comparison uses.

Relative error of `actual` against `expected`:  max|actual - expected| / max(max|expected|, FLOOR).
Dividing by the largest magnitude of the whole tensor, not elementwise, keeps tiny entries
from blowing the ratio up. The table is the house rule for parity between implementations
(tests, `inti parity`, the figures); it lives in ref so that all of them read the same one.
"""

from __future__ import annotations

import numpy as np

FLOOR = 1e-6  # magnitudes below this count as this, so an all-zero tensor compares absolutely

# Largest allowed relative error against the float64 NumPy spec, by the dtype that ran.
TOLERANCE = {
    "float64": 1e-10,  # the bar for float64 parity
    "float32": 2e-4,  # measured worst ~1e-6 on real clips; headroom for deep random configs
    "float16": 5e-2,  # 10-bit mantissa; large random scores amplify it in the merge weights
    "bfloat16": 1e-1,  # 7-bit mantissa: about 2 significant digits
}


def to_numpy(x) -> np.ndarray:
    """A NumPy float64 copy of an array or tensor (torch tensors are detached and moved to CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def rel_err(actual, expected) -> float:
    """max|actual - expected| / max(max|expected|, FLOOR); inf if the shapes differ or actual is not finite."""
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if not np.all(np.isfinite(a)):
        return float("inf")
    return float(np.max(np.abs(a - e)) / max(float(np.max(np.abs(e))), FLOOR))


def tolerance(dtype) -> float:
    """The table entry for a dtype given as a name, a numpy dtype or a torch dtype."""
    if isinstance(dtype, type) and issubclass(dtype, np.generic):  # np.float64 and friends
        dtype = np.dtype(dtype)
    name = dtype.name if isinstance(dtype, np.dtype) else str(dtype).replace("torch.", "")
    if name not in TOLERANCE:
        raise ValueError(f"no tolerance for dtype {name!r}; known: {sorted(TOLERANCE)}")
    return TOLERANCE[name]


def compare_traces(actual: dict, expected: dict, dtype) -> list[tuple[str, float, bool]]:
    """(name, relative error, within tolerance) for every entry of `expected`, in order.

    An entry missing from `actual` counts as an infinite error."""
    tol = tolerance(dtype)
    rows = []
    for name, value in expected.items():
        err = rel_err(actual[name], value) if name in actual else float("inf")
        rows.append((name, err, err <= tol))
    return rows


def first_failure(rows) -> str | None:
    """A message naming the first entry that breaks tolerance, or None."""
    for name, err, ok in rows:
        if not ok:
            return f"first trace entry over tolerance: {name!r}, relative error {err:.3g}"
    return None
