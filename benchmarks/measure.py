"""Measurement: the machine, timing and peak memory, one row's interleaved rounds, and the
ratios (measured speed-up against the MAC-predicted ratio of the cost model).

Every row warms each contender up once (that run also measures peak memory and checks that the
contenders agree), profiles one call of each model in eager rows (breakdown.py), then runs
repeated rounds, each timing every contender once in a fresh random order, so that drift of a
shared machine hits all of them alike. Medians are reported, with each model's MAC/s as a
fraction of the `gemm` contender's (gemm.py), and compile rows end with a warm-cache compile.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch._inductor.config as inductor_config

import ref
from inti.tolerances import rel_err, tolerance
from torch_impl import to_numpy

from . import OMP_WAIT_POLICY, OMP_WAIT_POLICY_BEFORE_TORCH
from .contenders import merge_inputs

if TYPE_CHECKING:
    from .grid import Case, Row


# ---------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of bfloat16 matrix hardware


def native_bf16(device: str) -> bool:
    """Whether bfloat16 matrix products have hardware support (else CPUs emulate them, slowly)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(_cpu_flags() & set(BF16_FLAGS))


# glibc's malloc hands big blocks (above a threshold that it raises and lowers as blocks are
# freed) to fresh mmap'ed pages, and gives freed memory back to the kernel: then a contender's
# big temporaries page-fault on every call, by an amount that depends on what ran before it.
# Measured here (float32 ViT-B/16, 8 frames, 5 rounds): naive 1.96-3.52 s per call with the
# defaults, 2.01-2.22 s with both thresholds fixed at 1 GiB. `fixed_malloc` sets them for the
# process (mallopt, as the MALLOC_*_ environment variables would), for every contender alike.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MALLOC_FIXED: dict = {}
MALLOC_THRESHOLD = 1 << 30


def fixed_malloc() -> dict:
    """Fix glibc's mmap and trim thresholds at 1 GiB; returns what was set (empty off glibc, or
    when the environment sets them already: then the user's values stand)."""
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")):
        return {}
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = [libc.mallopt(opt, MALLOC_THRESHOLD) == 1 for opt in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)]
    except (OSError, AttributeError):  # not glibc
        return {}
    if all(ok):
        MALLOC_FIXED.update(mmap_threshold=MALLOC_THRESHOLD, trim_threshold=MALLOC_THRESHOLD)
    return dict(MALLOC_FIXED)


def add_malloc_arg(parser) -> None:
    """The `--malloc` option of benchmarks.speed and benchmarks.train_speed (apply it with
    `fixed_malloc()` when it is "fixed")."""
    parser.add_argument("--malloc", default="fixed", choices=("fixed", "default"),
                        help="fixed (default): glibc's mmap and trim thresholds fixed at 1 GiB for the run, so "
                             "that big temporaries do not page-fault by an amount that depends on the previous "
                             "contender; default: glibc's own (benchmarks/README.md, Methodology)")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info(device: str) -> dict:
    flags = _cpu_flags()
    info = {
        "cpu": _cpu_model(),
        "cores": cores(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(device),
        # the CPU's bfloat16 matrix units; without either, bfloat16 rows are emulated on the CPU
        "cpu_flags": {f: f in flags for f in BF16_FLAGS + ("avx512f", "avx2")},
        "device": device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "timm": _timm_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        # OpenMP's wait policy for the run: "PASSIVE" (the benchmarks' default), "ACTIVE", or
        # "default" (libgomp's own: spin about GOMP_SPINCOUNT times, then sleep); see benchmarks/__init__.py.
        "OMP_WAIT_POLICY": OMP_WAIT_POLICY,
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
        # False when torch was imported before the benchmarks package (e.g. by a test): then the
        # OpenMP runtime read its settings before the package could set them.
        "omp_wait_policy_before_torch": OMP_WAIT_POLICY_BEFORE_TORCH,
        "loadavg_start": _loadavg(),
        # glibc's allocator settings: they decide whether big temporaries are fresh pages
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k == "LD_PRELOAD"},
        "malloc_fixed": MALLOC_FIXED,  # what fixed_malloc() set, if the script called it
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _timm_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("timm")  # without importing timm (seconds)
    except importlib.metadata.PackageNotFoundError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# timing and memory


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _timed(fn, device: str) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _torch_peak(fn, device: str) -> tuple[float, object, int]:
    """Run fn once; return (seconds, output, peak bytes allocated above the level before it)."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        seconds, out = _timed(fn, device)
        return seconds, out, torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with _stderr_to_devnull(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        seconds, out = _timed(fn, device)
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return seconds, out, peak


@contextlib.contextmanager
def _stderr_to_devnull():
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


def _numpy_peak(fn) -> tuple[float, object, int]:
    tracemalloc.start()
    try:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, out, peak


def _median(values):
    return statistics.median(values) if values else None


def _quietly():
    """torch.compile's one-off warnings (no CUDA toolkit, etc.) would clutter the table."""
    import logging
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch._inductor", "torch._dynamo", "torch.utils.cpp_extension"):
        logger = logging.getLogger(name)
        level = logger.level
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, level)
    return stack


# ---------------------------------------------------------------------------------------------
# one row and its ratios


def _autocast(row: Row, device: str):
    if row.dtype == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rounds(row: Row, args, round_s: float) -> int:
    """--repeats, cut to fit --budget (never below --min-repeats), capped for the big presets."""
    from .grid import FEWER_REPEATS  # grid imports this module

    repeats = args.repeats
    if args.budget and round_s > 0:
        repeats = min(args.repeats, max(args.min_repeats, int(args.budget // round_s)))
    cap = FEWER_REPEATS.get(row.case.preset)
    return min(repeats, max(cap, args.min_repeats)) if cap else repeats


COMPILED_MODES = ("compile", "freeze")


def run_row(row: Row, models: dict, video: torch.Tensor, args, log) -> dict:
    """Warm up, check, profile, then time every contender of `row` in interleaved rounds."""
    from .breakdown import profile_call
    from .gemm import BlockGemms, naive_tokens
    from .grid import TORCH_DTYPES  # grid imports this module

    case, device = row.case, args.device
    cfg = models["cfg"]
    models_f32 = models["f32"]
    chosen = models["bf16pure"] if row.dtype == "bf16pure" else models_f32
    inti, naive = chosen["inti"], chosen["naive"]
    x = video.to(torch.bfloat16) if row.dtype == "bf16pure" else video
    wanted = set(args.contenders)
    result = {
        "id": row.id, "preset": case.preset, "frames": case.frames, "batch": case.batch,
        "schedule": list(cfg.schedule), "dtype": row.dtype, "mode": row.mode,
        "autocast": row.dtype == "bf16", "pure_bf16": row.dtype == "bf16pure",
        # bfloat16 without matrix units (AVX2): torch emulates it, far slower than float32
        "emulated_bf16": row.dtype != "f32" and not native_bf16(device),
        "norm_path": inti.norm_path, "attn_path": inti.attn_path,
        "contenders": {}, "checks": {}, "loadavg_start": _loadavg(),
        "weights_mib": sum(t.numel() * t.element_size() for t in inti.parameters()) / 2**20,
    }
    compiles = row.mode in COMPILED_MODES
    # "freeze" rows: inductor's freezing (inference only): the weights become constants of the
    # graph, folded and, on the CPU, prepacked into oneDNN's layout for the matrix products; the
    # models' own parameters are untouched. Other rows compile, if at all, unfrozen.
    with torch.inference_mode(), _autocast(row, device), _quietly(), \
            inductor_config.patch(freezing=row.mode == "freeze",
                                  layout_optimization=args.layout_optimization):
        result["inductor_freezing"] = inductor_config.freezing
        # inductor's layout optimization (on by default; on the CPU it is on whenever the graph
        # holds a convolution): with θ's conv3d in the graph it lays InTI's token stream out
        # frames-innermost (benchmarks/results/omp-wait-2026-12-04.md); --no-layout-optimization
        # turns it off
        result["inductor_layout_optimization"] = inductor_config.layout_optimization
        merge_x = merge_inputs(inti, x) if "merge" in wanted and len(cfg.schedule) else []
        fns: dict[str, object] = {}
        if compiles:
            torch.compiler.reset()  # a fresh cache per row: no stale guards, no cache-size fallback
            compiled = {
                "naive": torch.compile(naive, dynamic=False),
                "inti": torch.compile(inti, dynamic=False),
                "merge": [torch.compile(m, dynamic=False) for m in inti.merges],
            }
        else:
            compiled = {"naive": naive, "inti": inti, "merge": list(inti.merges)}
        if "naive" in wanted:
            fns["naive"] = lambda m=compiled["naive"]: m(x)
        if "inti" in wanted:
            fns["inti"] = lambda m=compiled["inti"]: m(x)
        if "timm" in wanted and row.mode == "eager" and chosen.get("timm") is not None:
            fns["timm"] = lambda m=chosen["timm"]: m(x)
        if "merge" in wanted and merge_x:
            fns["merge"] = lambda ms=compiled["merge"]: [m(y)[0] for m, y in zip(ms, merge_x)]
        if "gemm" in wanted:
            dtype = TORCH_DTYPES[row.dtype]
            if dtype not in models["gemm"]:  # one set of operands per case and dtype
                models["gemm"][dtype] = BlockGemms(cfg, naive_tokens(cfg, case.frames, case.batch),
                                                   getattr(torch, dtype), device, seed=args.seed)
            fns["gemm"] = models["gemm"][dtype]
            result["gemm_shapes"] = models["gemm"][dtype].shapes
        if "ref" in wanted and row.dtype == "f32" and row.mode == "eager":
            params, video_np = models["ref_params"], to_numpy(video)
            fns["ref"] = lambda: ref.forward(params, video_np, cfg)

        # Warm-up: compile (timed as compile_s), then one run that also measures peak memory.
        outputs = {}
        for name, fn in fns.items():
            entry = result["contenders"].setdefault(name, {})
            if compiles and name in ("naive", "inti", "merge"):
                log(f"  compiling {name} ...")
                entry["compile_s"], _ = _timed(fn, device)
            if name == "ref":
                seconds, out, peak = _numpy_peak(fn)
            else:
                seconds, out, peak = _torch_peak(fn, device)
            entry["warmup_s"] = seconds
            entry["peak_mib"] = peak / 2**20
            outputs[name] = out

        # The contenders must agree before their times mean anything.
        tol = tolerance(TORCH_DTYPES[row.dtype])
        checks = result["checks"]
        if "naive" in outputs and "timm" in outputs:
            checks["naive_vs_timm"] = _check(outputs["naive"], outputs["timm"], tol)
        if "inti" in outputs and "ref" in outputs:
            checks["inti_vs_ref"] = _check(outputs["inti"], outputs["ref"], tol)
        if compiles and "inti" in outputs:
            with contextlib.suppress(Exception):
                checks["compiled_vs_eager"] = _check(outputs["inti"], inti(x), tol)
        if row.dtype != "f32" and row.mode == "eager" and "inti" in outputs:
            with torch.autocast(torch.device(device).type, enabled=False):
                checks["bf16_vs_f32"] = _check(outputs["inti"], models_f32["inti"](video), tol)
        bad = [f"{k}: rel err {v['rel_err']:.3g} > {v['tol']:g}" for k, v in checks.items() if not v["ok"]]
        if bad:
            raise RuntimeError(f"{row.id}: the contenders disagree, timing would be meaningless: " + "; ".join(bad))
        del outputs

        # Where the time goes: one profiled call of each model (eager rows; breakdown.py).
        if row.mode == "eager" and args.profile:
            owners = {"naive": naive, "inti": inti, "timm": chosen.get("timm")}
            for name in [n for n in ("naive", "inti", "timm") if n in fns]:
                result["contenders"][name]["breakdown"] = profile_call(fns[name], owners[name], device)

        # Rounds: each contender once per round, in a fresh random order.
        repeats = _rounds(row, args, sum(result["contenders"][n]["warmup_s"] for n in fns))
        log(f"  {len(fns)} contenders, {repeats} rounds")
        times: dict[str, list[float]] = {n: [] for n in fns}
        rng = np.random.default_rng(args.seed)
        gc.collect()
        gc.disable()
        try:
            for _ in range(repeats):
                for name in rng.permutation(list(fns)):
                    seconds, out = _timed(fns[name], device)
                    del out
                    times[name].append(seconds)
        finally:
            gc.enable()

        # The warm-cache compile: dynamo's caches cleared, inductor's (in memory, on disk) kept.
        if compiles:
            torch.compiler.reset()
            for name in ("naive", "inti", "merge"):
                if name in fns:
                    result["contenders"][name]["compile_warm_s"], _ = _timed(fns[name], device)

    for name, ts in times.items():
        entry = result["contenders"][name]
        entry["times_s"] = ts
        entry["median_s"] = _median(ts)
        entry["min_s"] = min(ts) if ts else None
        entry["clips_per_s"] = case.batch / entry["median_s"] if ts and name not in ("merge", "gemm") else None
    result["repeats"] = repeats
    result["loadavg_end"] = _loadavg()
    add_ratios(result, cfg, case)
    return result


def _check(actual, expected, tol: float) -> dict:
    """rel_err of two outputs (tensors or arrays) against the dtype's tolerance."""
    err = rel_err(to_numpy(actual), to_numpy(expected))
    return {"rel_err": err, "tol": tol, "ok": err <= tol}


def predicted_ratio(cfg: ref.ModelConfig, frames: int, batch: int) -> dict:
    cost = ref.compare(cfg, frames, batch)
    naive, inti = cost["naive"], cost["inti"]
    return {"naive_macs": naive["total"], "inti_macs": inti["total"],
            "predictor_macs": inti["predictor"], "interpolation_macs": inti["interpolation"],
            "ratio": naive["total"] / inti["total"]}


def _paired(result: dict, num: str, den: str):
    """Median over rounds of num/den measured in the same round: drift between rounds cancels."""
    a = result["contenders"].get(num, {}).get("times_s")
    b = result["contenders"].get(den, {}).get("times_s")
    return statistics.median(x / y for x, y in zip(a, b)) if a and b else None


def contender_macs(name: str, macs: dict, gemm_macs: int | None) -> int | None:
    """The MACs of one call of a contender (ref.count_macs; gemm: its four GEMMs)."""
    return {
        "naive": macs["naive_macs"], "timm": macs["naive_macs"], "inti": macs["inti_macs"],
        "ref": macs["inti_macs"], "merge": macs["predictor_macs"] + macs["interpolation_macs"],
        "gemm": gemm_macs,
    }.get(name)


def add_ratios(result: dict, cfg: ref.ModelConfig, case: Case) -> None:
    med = {n: c.get("median_s") for n, c in result["contenders"].items()}
    macs = predicted_ratio(cfg, case.frames, case.batch)
    result["macs"] = macs
    result["speedup"] = med["naive"] / med["inti"] if med.get("naive") and med.get("inti") else None
    result["predicted"] = macs["ratio"]
    result["fraction_of_ideal"] = result["speedup"] / macs["ratio"] if result["speedup"] else None
    result["merge_share"] = med["merge"] / med["inti"] if med.get("merge") and med.get("inti") else None
    result["naive_vs_timm"] = med["naive"] / med["timm"] if med.get("naive") and med.get("timm") else None
    result["inti_vs_timm"] = med["inti"] / med["timm"] if med.get("inti") and med.get("timm") else None
    result["ref_vs_torch"] = med["ref"] / med["inti"] if med.get("ref") and med.get("inti") else None
    result["paired"] = {
        "speedup": _paired(result, "naive", "inti"),
        "merge_share": _paired(result, "merge", "inti"),
        "naive_vs_timm": _paired(result, "naive", "timm"),
        "inti_vs_timm": _paired(result, "inti", "timm"),
        "ref_vs_torch": _paired(result, "ref", "inti"),
    }
    # Achieved MAC/s and its fraction of the GEMM rate measured in the same rounds.
    gemm_macs = sum(m * k * n for m, k, n in result["gemm_shapes"].values()) if "gemm_shapes" in result else None
    for name, entry in result["contenders"].items():
        n = contender_macs(name, macs, gemm_macs)
        entry["macs"] = n
        entry["gmac_per_s"] = n / med[name] / 1e9 if n and med.get(name) else None
    peak = result["contenders"].get("gemm", {}).get("gmac_per_s")
    result["gemm_gmac_per_s"] = peak
    for entry in result["contenders"].values():
        entry["fraction_of_peak"] = entry["gmac_per_s"] / peak if peak and entry.get("gmac_per_s") else None


def add_compile_gain(rows: list[dict]) -> None:
    """For compile and freeze rows: eager InTI time / compiled InTI time of the same case and dtype (> 1: helps)."""
    eager = {(r["preset"], r["frames"], r["batch"], r["dtype"]): r for r in rows if r["mode"] == "eager"}
    for r in rows:
        r["compile_gain"] = None
        e = eager.get((r["preset"], r["frames"], r["batch"], r["dtype"]))
        if r["mode"] in COMPILED_MODES and e:
            gains = {}
            for name in ("naive", "inti"):
                ce, cc = e["contenders"].get(name, {}), r["contenders"].get(name, {})
                if ce.get("median_s") and cc.get("median_s"):
                    gains[name] = ce["median_s"] / cc["median_s"]
            r["compile_gain"] = gains or None
