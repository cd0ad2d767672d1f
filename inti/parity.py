"""Parity of the PyTorch implementation against the NumPy spec, entry by entry of the trace.

One function, `run_parity`, serves `inti demo`, `inti parity` and the parity figure: it runs
`ref.forward` in float64 (the spec) and the torch model in each requested dtype on the same
clip and parameters, and compares every trace entry with `inti.tolerances` (one table, keyed
by dtype). With merges, the frame contributions (spec/00-method.md §6) of both sides are compared too.

    >>> import numpy as np, ref
    >>> from inti.parity import run_parity
    >>> cfg = ref.preset("nano")
    >>> video = np.random.default_rng(0).standard_normal((1, 4, 3, 64, 64)).astype(np.float32)
    >>> result = run_parity(video, ref.init_params(cfg), cfg)
    >>> result.ok, [r.name for r in result.rows][:3]
    (True, ['embed', 'blocks.0', 'merges.0.scores'])
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

import ref
from ref.config import ModelConfig
from torch_impl import from_ref_params, to_numpy
from torch_impl.checks import torch_dtype
from torch_impl.interpolation import contributions as torch_contributions

from .tolerances import Row, compare_traces, rel_err, tolerance

DTYPES = ("float64", "float32")
CONTRIBUTIONS = "contributions"  # the derived row after the trace entries, when there are merges


@dataclass
class ParityResult:
    """What `run_parity` measured for one model config.

    rows: one `Row` per trace entry and dtype (dtype-major, trace order within).
    times: wall seconds of each forward, keyed "ref float64", "torch float64", ...
    reference: the spec's float64 trace (NumPy). traces: {dtype: torch trace as float64 NumPy}.
    contributions: {"ref": (b, T0, N), dtype: (b, T0, N)}; empty without merges.
    """

    cfg: ModelConfig
    dtypes: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    traces: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    contributions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def worst(self, dtype: str) -> Row:
        """The row with the largest relative error for one dtype."""
        return max((r for r in self.rows if r.dtype == dtype), key=lambda r: r.rel_err)

    def table(self) -> dict[str, dict[str, Row]]:
        """{entry name: {dtype: row}}, entries in trace order."""
        out: dict[str, dict[str, Row]] = {}
        for r in self.rows:
            out.setdefault(r.name, {})[r.dtype] = r
        return out


def _no_step(label: str):
    return contextlib.nullcontext()


def steps_per_run(dtypes=DTYPES) -> int:
    """How many forwards `run_parity` makes (one `step` each): the spec, then one per dtype."""
    return 1 + len(tuple(dtypes))


def run_parity(
    video: np.ndarray,
    params: dict,
    cfg: ModelConfig,
    dtypes=DTYPES,
    *,
    attn_path: str = "sdpa",
    norm_path: str = "explicit",
    device: str = "cpu",
    step: Callable[[str], contextlib.AbstractContextManager] | None = None,
    label: str = "",
    tols: dict[str, float] | None = None,
) -> ParityResult:
    """Run the spec (float64) and torch (each dtype) on `video`, compare every trace entry.

    video: (b, T0, 3, H, W) float NumPy array of normalized pixels.
    params: a parameter dict for `cfg` (spec/00-method.md §3.5).
    dtypes: the dtypes torch runs in; each is compared with its `inti.tolerances` entry.
    attn_path, norm_path: torch_impl's attention and LayerNorm paths. device: where torch runs
        ("cuda" for the GPU check); the spec always runs in NumPy.
    step: optional `step(label)` context manager wrapped around each forward (a progress bar).
    label: prefix of the step labels ("naive", "InTI").
    tols: optional {dtype: tolerance} overriding `inti.tolerances` (a stricter CI bar).
    Returns a `ParityResult`; it never raises on a parity failure (check `.ok`).
    """
    dtypes = tuple(str(d) for d in dtypes)
    tols = {d: tolerance(d) for d in dtypes} | {d: float(t) for d, t in (tols or {}).items() if d in dtypes}
    torch_dtypes = {d: torch_dtype(d) for d in dtypes}
    step = step or _no_step
    prefix = f"{label} " if label else ""
    video = np.asarray(video)
    ref.check_video(video, cfg)  # the spec's messages, before any computation
    result = ParityResult(cfg=cfg, dtypes=dtypes)
    merges = len(cfg.schedule) > 0

    with step(f"{prefix}ref forward (numpy float64)"):
        t0 = time.perf_counter()
        _, expected = ref.forward(params, video.astype(np.float64), cfg, return_trace=True)
        result.times["ref float64"] = time.perf_counter() - t0
    result.reference = expected
    if merges:
        result.contributions["ref"] = ref.contributions(ref.trace_weights(expected, cfg))

    for name in dtypes:
        with step(f"{prefix}torch forward ({name})"):
            dtype = torch_dtypes[name]
            model = from_ref_params(params, cfg, dtype=dtype, attn_path=attn_path).eval()
            model = model.set_norm_path(norm_path).to(device)
            x = torch.from_numpy(np.ascontiguousarray(video)).to(device, dtype)
            t0 = time.perf_counter()
            with torch.no_grad():
                _, trace = model(x, return_trace=True)
            result.times[f"torch {name}"] = time.perf_counter() - t0
        actual = {k: to_numpy(v, np.float64) for k, v in trace.items()}
        result.traces[name] = actual
        result.rows += compare_traces(actual, expected, name, tols[name])
        if merges:
            contrib = to_numpy(torch_contributions(ref.trace_weights(trace, cfg)), np.float64)
            result.contributions[name] = contrib
            err = rel_err(contrib, result.contributions["ref"])
            result.rows.append(Row(CONTRIBUTIONS, name, err, tols[name], err <= tols[name]))
    return result


def run_both(video, params, cfg, dtypes=DTYPES, **kwargs) -> dict[str, ParityResult]:
    """Parity of the naive adaptation (the backbone, S = ()) and of InTI, on the same clip.

    Returns {"naive": ParityResult, "inti": ParityResult}; 2 * steps_per_run(dtypes) steps.
    kwargs go to `run_parity` (step, attn_path, norm_path, device, tols)."""
    naive_cfg = cfg.replace(schedule=())
    return {
        "naive": run_parity(video, ref.backbone(params), naive_cfg, dtypes, label="naive", **kwargs),
        "inti": run_parity(video, params, cfg, dtypes, label="InTI", **kwargs),
    }
