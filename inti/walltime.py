"""Wall time of one forward, for the demo's table: every path is warmed up once, then run
`repeats` times, and the median is reported, with NumPy's BLAS and torch held to the same
number of threads (`bounded_threads`).

A first run pays for lazy initialisation (allocators, kernels picked, pages touched), and on a
shared machine unbounded threads contend, so a single cold run can make the cheaper path look
slower. This is still a demo's figure on a tiny model, where fixed overheads weigh: speed is
measured by the benchmarks (`make bench`, benchmarks/README.md), never here.

    >>> import numpy as np, ref
    >>> cfg = ref.preset("nano")
    >>> video = np.zeros((1, 4, 3, 64, 64))
    >>> times = forward_times(video, ref.init_params(cfg), cfg, ("float32",), repeats=1)
    >>> sorted(times), sorted(times["inti"])
    (['inti', 'naive'], ['ref float64', 'torch float32'])
"""

from __future__ import annotations

import contextlib
import statistics
import time

import numpy as np

import ref
from ref.config import ModelConfig

from .io.optional import require

DTYPES = ("float64", "float32")


@contextlib.contextmanager
def bounded_threads(threads: int):
    """NumPy's BLAS (through threadpoolctl) and torch's intra-op pool held to `threads`, then restored."""
    threadpoolctl = require("threadpoolctl", "bounding NumPy's threads for the wall times")
    torch = require("torch", "the wall times")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpoolctl.threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def median_time(run, repeats: int) -> float:
    """Seconds of one call of `run`: one warm-up call, then the median of `repeats` calls."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_times(video: np.ndarray, params: dict, cfg: ModelConfig, dtypes=DTYPES, *, repeats: int = 5,
                  threads: int = 1, attn_path: str = "sdpa") -> dict[str, dict[str, float]]:
    """{"naive" | "inti": {"ref float64" | "torch <dtype>": seconds}}: the median wall time of one
    forward with its trace, of the naive adaptation (the backbone, S = ()) and of InTI, in the
    NumPy spec (float64) and in torch (each dtype), under `bounded_threads(threads)`.

    video: (b, T0, 3, H, W) normalized pixels; params: a parameter dict for `cfg`."""
    torch = require("torch", "the wall times")
    from torch_impl import from_ref_params
    from torch_impl.checks import torch_dtype

    models = {"naive": (ref.backbone(params), cfg.replace(schedule=())), "inti": (params, cfg)}
    out: dict[str, dict[str, float]] = {}
    with bounded_threads(threads), torch.no_grad():
        for name, (p, c) in models.items():
            spec_input = np.asarray(video, np.float64)
            out[name] = {"ref float64": median_time(lambda: ref.forward(p, spec_input, c, return_trace=True), repeats)}
            for dtype in dtypes:
                model = from_ref_params(p, c, dtype=torch_dtype(dtype), attn_path=attn_path).eval()
                x = torch.from_numpy(np.ascontiguousarray(video)).to(torch_dtype(dtype))
                out[name][f"torch {dtype}"] = median_time(lambda: model(x, return_trace=True), repeats)
    return out
