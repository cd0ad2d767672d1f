"""The demo's wall times (`inti.walltime`): a warm-up that is not timed, the median of the
repeats, and the threads of NumPy and torch held to the bound and given back. No timing is
asserted: the clock is a fake one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ref
from inti import walltime


def test_the_warm_up_is_not_timed_and_the_median_is_reported(monkeypatch):
    durations = iter([100.0, 3.0, 1.0, 8.0])  # the warm-up is slow; then three runs, whose mean is not their median
    clock = {"now": 0.0}
    calls = []

    def run():
        calls.append(1)
        clock["now"] += next(durations)

    monkeypatch.setattr(walltime.time, "perf_counter", lambda: clock["now"])
    assert walltime.median_time(run, repeats=3) == 3.0
    assert len(calls) == 4


def test_threads_are_bounded_inside_and_given_back():
    """In a fresh process where NumPy's BLAS starts with more than one thread (the suite itself
    runs with one, tests/conftest.py), both pools are held to one inside, and given back."""
    pytest.importorskip("threadpoolctl")
    code = textwrap.dedent("""
        import json, torch, threadpoolctl
        from inti.walltime import bounded_threads
        def blas():
            return sorted({p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"})
        torch.set_num_threads(2)
        before = (torch.get_num_threads(), blas())
        with bounded_threads(1):
            inside = (torch.get_num_threads(), blas())
        print(json.dumps([before, inside, (torch.get_num_threads(), blas())]))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    before, inside, after = json.loads(result.stdout)
    if before[1] == [1]:
        pytest.skip("this machine's BLAS runs one thread to begin with: nothing to bound")
    assert inside == [1, [1]] and after == before


def test_forward_times_covers_every_path_of_both_models(monkeypatch):
    timed = []

    def fake(run, repeats):
        timed.append(repeats)
        run()  # the forward itself runs: its trace is kept, as in the demo
        return 0.5

    monkeypatch.setattr(walltime, "median_time", fake)
    cfg = ref.preset("nano")
    times = walltime.forward_times(np.zeros((1, 4, 3, 64, 64)), ref.init_params(cfg), cfg, ("float64", "float32"), repeats=7)
    assert times == {m: {"ref float64": 0.5, "torch float64": 0.5, "torch float32": 0.5} for m in ("naive", "inti")}
    assert timed == [7] * 6
