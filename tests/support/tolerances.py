"""Assertion helpers on top of `inti.tolerances`, the one tolerance table keyed by dtype.

- ``assert_close(actual, expected, dtype, name="")``: shape first, then values; the message
  names the quantity, its shape, the largest relative error (inti.tolerances.rel_err), the
  tolerance for `dtype`, and where the largest absolute difference is.
- ``assert_trace_close(actual_trace, expected_trace, dtype)``: every entry of the expected
  trace, in order; a failure names the FIRST entry that differs (inti.tolerances.first_failure)
  and prints the error of every entry.

`dtype` is the dtype that ran (a name, a numpy or a torch dtype); the comparison is always
done in float64 against `expected`, which is normally the float64 ref output.
"""

from __future__ import annotations

import numpy as np

from inti.tolerances import compare_traces, first_failure, rel_err, tolerance
from torch_impl.convert import to_numpy as _to_numpy


def to_numpy(x) -> np.ndarray:
    return _to_numpy(x, np.float64)

__all__ = ["assert_close", "assert_trace_close", "tolerance"]


def _label(name: str) -> str:
    return f"{name}: " if name else ""


def assert_close(actual, expected, dtype, name: str = "") -> None:
    """Assert ``rel_err(actual, expected) <= tolerance(dtype)``, shapes checked first."""
    tol = tolerance(dtype)
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{_label(name)}shape {a.shape} differs from the expected {e.shape}")
    err = rel_err(a, e)
    if err <= tol:
        return
    detail = ""
    if a.size:
        diff = np.where(np.isfinite(a), np.abs(a - e), np.inf)
        where = np.unravel_index(int(np.argmax(diff)), a.shape)
        detail = (
            f"; largest |difference| {float(diff[where]):.3g} at index {tuple(int(i) for i in where)} "
            f"(actual {float(a[where]):.6g}, expected {float(e[where]):.6g}), max |expected| {float(np.max(np.abs(e))):.3g}"
        )
        if not np.all(np.isfinite(a)):
            detail += f"; {int(np.size(a) - np.count_nonzero(np.isfinite(a)))} non-finite value(s) in actual"
    raise AssertionError(
        f"{_label(name)}largest relative error {err:.3g} exceeds the {dtype} tolerance {tol:g} "
        f"(shape {a.shape}){detail}"
    )


def assert_trace_close(actual_trace: dict, expected_trace: dict, dtype) -> None:
    """Assert every entry of `expected_trace` is matched within tolerance, naming the first that is not."""
    rows = compare_traces({k: to_numpy(v) for k, v in actual_trace.items()},
                          {k: to_numpy(v) for k, v in expected_trace.items()}, dtype)
    bad = first_failure(rows)
    if bad is None:
        return
    name = bad.name
    message = f"first trace entry over tolerance: {name!r}, relative error {bad.rel_err:.3g}"
    if name in actual_trace:
        shapes = f"actual shape {to_numpy(actual_trace[name]).shape}, expected {to_numpy(expected_trace[name]).shape}"
    else:
        shapes = f"missing from the actual trace (which has {list(actual_trace)})"
    table = "\n".join(f"  {'ok ' if r.ok else 'BAD'} {r.name}: {r.rel_err:.3g}" for r in rows)
    raise AssertionError(f"{message} ({shapes}; tolerance {tolerance(dtype):g} for {dtype})\n{table}")
