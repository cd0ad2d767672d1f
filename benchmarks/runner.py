"""The row runner: one row of the speed grid, timed, checked and turned into ratios.

`run_row` warms each contender up once (that run also measures peak memory and checks that the
contenders agree), profiles one call of each model in eager rows (breakdown.py), then runs
interleaved rounds (timing.interleave), and compile rows end with a warm-cache compile.
`add_ratios` turns the medians into the measured speed-up against the MAC-predicted ratio of
the cost model (`ref.compare`), each model's MAC/s as a fraction of the `gemm` contender's
(gemm.py), and the paired ratios; `add_compile_gain` compares compiled rows with eager ones.
"""

from __future__ import annotations

import contextlib

import torch
import torch._inductor.config as inductor_config  # torch's documented switchboard for inductor

import ref
from inti.tolerances import rel_err, tolerance
from torch_impl import to_numpy

from .breakdown import profile_call
from .contenders import merge_inputs
from .gemm import BlockGemms, naive_tokens
from .grid import FEWER_REPEATS, TORCH_DTYPES, Case, Row
from .machine import loadavg, native_bf16
from .timing import interleave, median, numpy_peak, paired_median, quiet_compile, timed, torch_peak

COMPILED_MODES = ("compile", "freeze")


def _autocast(row: Row, device: str):
    if row.dtype == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rounds(row: Row, args, round_s: float) -> int:
    """--repeats, cut to fit --budget (never below --min-repeats), capped for the big presets."""
    repeats = args.repeats
    if args.budget and round_s > 0:
        repeats = min(args.repeats, max(args.min_repeats, int(args.budget // round_s)))
    cap = FEWER_REPEATS.get(row.case.preset)
    return min(repeats, max(cap, args.min_repeats)) if cap else repeats


def run_row(row: Row, models: dict, video: torch.Tensor, args, log) -> dict:
    """Warm up, check, profile, then time every contender of `row` in interleaved rounds."""
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
        "contenders": {}, "checks": {}, "loadavg_start": loadavg(),
        "weights_mib": sum(t.numel() * t.element_size() for t in inti.parameters()) / 2**20,
    }
    compiles = row.mode in COMPILED_MODES
    # "freeze" rows: inductor's freezing (inference only): the weights become constants of the
    # graph, folded and, on the CPU, prepacked into oneDNN's layout for the matrix products; the
    # models' own parameters are untouched. Other rows compile, if at all, unfrozen.
    with torch.inference_mode(), _autocast(row, device), quiet_compile(), \
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
                entry["compile_s"], _ = timed(fn, device)
            if name == "ref":
                seconds, out, peak = numpy_peak(fn)
            else:
                seconds, out, peak = torch_peak(fn, device)
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
        times = interleave(fns, repeats, device, seed=args.seed)

        # The warm-cache compile: dynamo's caches cleared, inductor's (in memory, on disk) kept.
        if compiles:
            torch.compiler.reset()
            for name in ("naive", "inti", "merge"):
                if name in fns:
                    result["contenders"][name]["compile_warm_s"], _ = timed(fns[name], device)

    for name, ts in times.items():
        entry = result["contenders"][name]
        entry["times_s"] = ts
        entry["median_s"] = median(ts)
        entry["min_s"] = min(ts) if ts else None
        entry["clips_per_s"] = case.batch / entry["median_s"] if ts and name not in ("merge", "gemm") else None
    result["repeats"] = repeats
    result["loadavg_end"] = loadavg()
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
    times = {name: c.get("times_s") for name, c in result["contenders"].items()}
    return paired_median(times.get(num), times.get(den))


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
