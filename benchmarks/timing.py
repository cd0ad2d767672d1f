"""How the benchmarks time: one call, its peak memory, and interleaved rounds of several.

- `timed(fn, device)`: one call's wall time, the device synchronized before and after;
- `torch_peak(fn, device)` and `numpy_peak(fn)`: one call that also measures the peak of bytes
  allocated above the level before it (torch's CPU profiler, CUDA's allocator, tracemalloc);
- `interleave(fns, rounds, device, seed)`: rounds in which every contender runs once, in a fresh
  random order (seeded), with the garbage collector off, so that slow drift of a shared machine
  hits every contender alike and no contender always runs right after the same other one;
- `median` and `paired_median` (the median over rounds of a ratio taken within each round,
  which cancels drift between rounds);
- `quiet_stderr()` and `quiet_compile()`: keep the profiler's and torch.compile's chatter out
  of the tables.

benchmarks/README.md, Methodology, says why each choice.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on the CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(fn: Callable, device: str = "cpu") -> tuple[float, object]:
    """(seconds, output) of one call of fn()."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def torch_peak(fn: Callable, device: str = "cpu") -> tuple[float, object, int]:
    """Run fn once; return (seconds, output, peak bytes allocated above the level before it)."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        seconds, out = timed(fn, device)
        return seconds, out, torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        seconds, out = timed(fn, device)
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return seconds, out, peak


def numpy_peak(fn: Callable) -> tuple[float, object, int]:
    """Run fn once; return (seconds, output, peak bytes that Python's allocators traced)."""
    tracemalloc.start()
    try:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, out, peak


def interleave(fns: dict[str, Callable], rounds: int, device: str = "cpu", seed: int = 0) -> dict[str, list[float]]:
    """{name: seconds of each round}: every callable once per round, in a fresh random order."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    rng = np.random.default_rng(seed)
    gc.collect()
    gc.disable()  # a collection inside one contender's call would charge it for everyone's garbage
    try:
        for _ in range(rounds):
            for name in rng.permutation(list(fns)):
                seconds, out = timed(fns[name], device)
                del out
                times[str(name)].append(seconds)
    finally:
        gc.enable()
    return times


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def paired_median(num: Sequence[float] | None, den: Sequence[float] | None) -> float | None:
    """Median over rounds of num/den measured in the same round: drift between rounds cancels."""
    return statistics.median(x / y for x, y in zip(num, den)) if num and den else None


@contextlib.contextmanager
def quiet_stderr():
    """The profiler's C++ side logs every start and stop on file descriptor 2; hide that."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_compile() -> contextlib.ExitStack:
    """torch.compile's one-off warnings (no CUDA toolkit, etc.) would clutter the table."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch._inductor", "torch._dynamo", "torch.utils.cpp_extension"):
        logger = logging.getLogger(name)
        stack.callback(logger.setLevel, logger.level)
        logger.setLevel(logging.ERROR)
    return stack
