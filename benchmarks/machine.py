"""The machine a benchmark ran on: the facts that decide its figures, recorded with every result.

    from benchmarks import machine
    info = machine.describe("cpu")   # a dict for the result's JSON, under "machine"
    print(machine.summary(info))     # one line for the result's Markdown

`describe(device)` records the CPU model and its bfloat16 matrix flags (`amx_bf16`,
`avx512_bf16`; without either, torch emulates bfloat16 matrix products far below float32's
speed), the cores this process may use, torch's CPU capability and threads, the versions (torch,
NumPy, timm, Python), OpenMP's wait policy (set by `benchmarks/__init__.py` before torch loads),
glibc's allocator settings (`fixed_malloc`), the load average, and the GPU where there is one.

`fixed_malloc()` fixes glibc's mmap and trim thresholds for the process: the benchmarks'
`--malloc fixed` (benchmarks/README.md, Methodology).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

import numpy as np
import torch

from . import OMP_WAIT_POLICY, OMP_WAIT_POLICY_BEFORE_TORCH

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of bfloat16 matrix hardware
RECORDED_FLAGS = BF16_FLAGS + ("avx512f", "avx2")


def _cpuinfo(field: str) -> str | None:
    """The first `field : value` of /proc/cpuinfo (None off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or "").split())


def native_bf16(device: str) -> bool:
    """Whether bfloat16 matrix products have hardware support (else CPUs emulate them, slowly)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & set(BF16_FLAGS))


def cores() -> int:
    """The cores this process may run on (its affinity), the benchmarks' default thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: how shared the machine was (None where unknown)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def timm_version() -> str | None:
    try:
        return importlib.metadata.version("timm")  # without importing timm (seconds)
    except importlib.metadata.PackageNotFoundError:
        return None


# glibc's malloc hands big blocks (above a threshold that it raises and lowers as blocks are
# freed) to fresh mmap'ed pages, and gives freed memory back to the kernel: then a contender's
# big temporaries page-fault on every call, by an amount that depends on what ran before it.
# Measured (float32 ViT-B/16, 8 frames, 5 rounds): naive 1.96-3.52 s per call with the
# defaults, 2.01-2.22 s with both thresholds fixed at 1 GiB. `fixed_malloc` sets them for the
# process (mallopt, as the MALLOC_*_ environment variables would), for every contender alike.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MALLOC_THRESHOLD = 1 << 30
_malloc_fixed: dict = {}  # what fixed_malloc() set in this process


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
        _malloc_fixed.update(mmap_threshold=MALLOC_THRESHOLD, trim_threshold=MALLOC_THRESHOLD)
    return dict(_malloc_fixed)


def describe(device: str = "cpu") -> dict:
    """The machine facts of a run on `device` ("cpu", "cuda" or "cuda:N"), as a JSON-ready dict."""
    flags = cpu_flags()
    info = {
        "cpu": cpu_model(),
        "cores": cores(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(device),
        # the CPU's bfloat16 matrix units; without either, bfloat16 rows are emulated on the CPU
        "cpu_flags": {f: f in flags for f in RECORDED_FLAGS},
        "device": device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "timm": timm_version(),
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
        "loadavg_start": loadavg(),
        # glibc's allocator settings: they decide whether big temporaries are fresh pages
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k == "LD_PRELOAD"},
        "malloc_fixed": dict(_malloc_fixed),  # what fixed_malloc() set, if the script called it
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def summary(info: dict) -> str:
    """One Markdown line for a result table: the CPU, its bfloat16 hardware, torch's threads and
    the wait policy, the versions and the load average at the start."""
    have = [f for f in BF16_FLAGS if info.get("cpu_flags", {}).get(f)]
    bf16 = f"bf16 matrix units: {', '.join(have)}" if have else "no amx_bf16 or avx512_bf16: bf16 is emulated"
    spin = info.get("GOMP_SPINCOUNT")
    return (f"Machine: {info['cpu']}, {info['cores']} cores ({info['cpu_capability']}; {bf16}), device {info['device']}"
            f"{' (' + info['gpu'] + ')' if info.get('gpu') else ''}; torch {info['torch']}, {info['torch_threads']} threads, "
            f"OMP_WAIT_POLICY={info['OMP_WAIT_POLICY']}{', GOMP_SPINCOUNT=' + spin if spin else ''}; "
            f"numpy {info['numpy']}; timm {info['timm']}; load average {info['loadavg_start']} at the start.")
