"""Speed benchmarks: repository scripts, run from the repository root (`make bench`), not installed.

The scripts (each `python -m benchmarks.NAME --help`):
    speed.py        naive against InTI against timm, the MAC ratio and the GEMM rate (make bench)
    train_speed.py  one training step, naive against InTI, and the loader (make bench)
    export_speed.py onnxruntime against torch
    attention.py    every attention kernel on the model's shapes
    gpu_check.py    everything that needs a CUDA device, in one script
Their pieces (imports point down this list; none imports another's private names):
    machine.py      the machine facts: describe(device), summary(info), fixed_malloc()
    timing.py       timed calls, peak memory, interleaved rounds, medians
    flags.py        the flags' checks at parse time
    grid.py         which rows run (cases, dtypes, modes)
    gemm.py         the GEMM rate on the model's shapes
    contenders.py   the models timed, on shared weights
    breakdown.py    where one call's time goes (torch.profiler, grouped)
    runner.py       one row: warm-up, checks, rounds, ratios
    report.py       the tables, the targets and the figure

Importing this package first fixes OpenMP's wait policy, before torch (and its OpenMP runtime,
libgomp) loads. `OMP_WAIT_POLICY` from the environment stands; unset, it becomes PASSIVE: idle
OpenMP threads then sleep at once instead of spinning, so that the NumPy contender's BLAS
threads and torch's do not take each other's cores. `OMP_WAIT_POLICY=default` asks for
libgomp's own policy (spin briefly, then sleep): the variable is removed before torch loads, as
libgomp knows no such value. The policy matters for compiled models: on a 2-core AVX-512 EPYC,
compiled bfloat16 InTI reached 88-93% of its MAC ratio under PASSIVE and 94.5-102% under libgomp's
default (benchmarks/results/omp-wait-2026-12-04.md). When torch is loaded already (imported by
a caller), setting anything would be too late for this process, so nothing is changed.
"""

import os
import sys

# Whether the policy below can have reached torch: set by the user, or set here before torch.
OMP_WAIT_POLICY_BEFORE_TORCH = "OMP_WAIT_POLICY" in os.environ or "torch" not in sys.modules
if "torch" not in sys.modules:
    if os.environ.get("OMP_WAIT_POLICY", "").strip().lower() == "default":
        del os.environ["OMP_WAIT_POLICY"]
        OMP_WAIT_POLICY = "default"
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        OMP_WAIT_POLICY = os.environ["OMP_WAIT_POLICY"]
else:
    OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY") or "default"
