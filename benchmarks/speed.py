"""Does InTI's MAC saving turn into wall-clock speed? (issue 5; benchmarks/README.md)

    python -m benchmarks.speed --quick      # one row (ViT-B/16, 8 frames, float32, eager), ~2 min
    python -m benchmarks.speed              # the whole grid (long on a 2-core CPU: see README)
    inti bench --only 'vit_b16*f32*'        # the same, through the CLI

Contenders, all on the same weights and the same input clip, timed in one process:

- ``naive``: torch_impl with an empty schedule, every frame through every block;
- ``inti``:  torch_impl with the preset's schedule (the backbone shared with ``naive``);
- ``timm``:  timm's ``VisionTransformer`` with our weights loaded, frame by frame ((B*T) frames
  at once), the pooled class tokens averaged over T, then our projection and head: the naive
  adaptation a user would write (eager rows only);
- ``merge``: InTI's merges Φ alone (weight predictor and interpolation), on the tokens that
  reach them, to give the share of InTI's time they take;
- ``ref``:   the NumPy executable spec `ref.forward` (InTI, float32; float32 eager rows only).

Every row warms each contender up once (that run also measures peak memory and checks that the
contenders agree), then runs repeated rounds, each timing every contender once in a fresh
random order, so that drift of a shared machine hits all of them alike. Medians are reported.
"""

from __future__ import annotations

import os

# Set before torch (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of spinning,
# so that the NumPy contender's BLAS threads and torch's do not steal each other's cores.
# When torch is loaded already (imported by a caller), setting it would be too late for this
# process and would only leak into child processes, so it is then left alone.
_OMP_WAIT_POLICY_PRESET = "OMP_WAIT_POLICY" in os.environ
if "torch" not in __import__("sys").modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import fnmatch  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

_TORCH_WAS_LOADED = "torch" in sys.modules  # then OMP_WAIT_POLICY above came too late for it
import torch  # noqa: E402
from torch import nn  # noqa: E402

import ref  # noqa: E402
from ref.checkpoints import external_key  # noqa: E402
from ref.tolerances import rel_err, tolerance  # noqa: E402
from torch_impl import InTIModel  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
CONTENDERS = ("naive", "inti", "timm", "merge", "ref")
DTYPES = ("f32", "bf16")
MODES = ("eager", "compile")
TORCH_DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16}

# The issue's targets (benchmarks/README.md explains each).
TARGET_FRACTION_OF_IDEAL = 0.90  # measured speed-up / MAC-predicted ratio
TARGET_MERGE_SHARE = 0.03  # predictor + interpolation, of InTI's wall time
TARGET_NAIVE_VS_TIMM = 1.05  # our naive time / timm's time, same weights, same frames
TARGET_REF_VS_TORCH = 3.0  # NumPy ref InTI time / torch InTI float32 eager time


@dataclasses.dataclass(frozen=True)
class Case:
    """One model and input size: a preset at `frames` frames and `batch` clips."""

    preset: str
    frames: int
    batch: int

    @property
    def name(self) -> str:
        return f"{self.preset}-T{self.frames}-b{self.batch}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the result table: a case, a precision and an execution mode."""

    case: Case
    dtype: str  # "f32" or "bf16" (autocast)
    mode: str  # "eager" or "compile"

    @property
    def id(self) -> str:
        return f"{self.case.name}-{self.dtype}-{self.mode}"


# The issue's grid: ViT-B/16 at batch 1 and 4, ViT-L/14 at batch 1, 16 frames each.
DEFAULT_CASES = (Case("vit_b16", 16, 1), Case("vit_b16", 16, 4), Case("vit_l14", 16, 1))
# --quick: one row at 8 frames (the MAC ratio of S = (3,) does not depend on T), ~2 minutes.
QUICK_CASES = (Case("vit_b16", 8, 1),)


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


def native_bf16(device: str) -> bool:
    """Whether bfloat16 matrix products have hardware support (else CPUs emulate them, slowly)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info(device: str) -> dict:
    info = {
        "cpu": _cpu_model(),
        "cores": cores(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(device),
        "device": device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "timm": _timm_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        # False when torch was imported before this module (e.g. by a test): then the
        # OpenMP runtime may have read its settings before OMP_WAIT_POLICY was set.
        "omp_wait_policy_before_torch": _OMP_WAIT_POLICY_PRESET or not _TORCH_WAS_LOADED,
        "loadavg_start": _loadavg(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _timm_version() -> str | None:
    try:
        import timm

        return timm.__version__
    except ImportError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------------------------------
# the contenders


def build_models(cfg: ref.ModelConfig, device: str, seed: int = 0):
    """InTI and naive torch models sharing one backbone (the same tensors), float32, eval mode.

    The score layers get small random weights (they start at zero), so that the merges really
    weigh their frames; speed does not depend on the values."""
    torch.manual_seed(seed)
    inti = InTIModel(cfg).eval()
    for merge in inti.merges:
        if hasattr(merge, "score"):
            nn.init.normal_(merge.score.weight, std=0.02)
    inti = inti.to(device)
    with torch.device("meta"):  # no memory, no init: the weights come next
        naive = InTIModel(cfg.replace(schedule=())).eval()
    backbone = {k: v for k, v in inti.state_dict().items() if not k.startswith("merges.")}
    naive.load_state_dict(backbone, strict=True, assign=True)  # the same tensors: no second copy
    return inti, naive


def timm_state_dict(model: InTIModel) -> dict[str, torch.Tensor]:
    """Our backbone in timm's VisionTransformer names (ref.checkpoints' key map), as views
    of the same tensors. The projection and head stay ours: timm's ViT cannot hold a
    projection (torch_impl.pretrained.export_state_dict refuses it), so they run after
    timm's pooled output, see `TimmVideo`."""
    lead = {"cls_token": (1, 1, -1), "pos_embed": (1, *model.pos_embed.shape)}  # timm keeps leading 1s
    return {
        external_key(k, "timm"): v.reshape(lead[k]) if k in lead else v
        for k, v in model.state_dict().items()
        if not k.startswith(("merges.", "proj.", "head."))
    }


def build_timm(cfg: ref.ModelConfig, model: InTIModel, device: str) -> nn.Module:
    """timm's VisionTransformer configured like our backbone (CLIP-like: class token, norm_pre,
    QuickGELU, our LayerNorm eps, no fc_norm, no head), holding our weights."""
    from functools import partial

    from timm.layers import PatchEmbed, QuickGELU
    from timm.models.vision_transformer import VisionTransformer

    def embed_layer(**kw):  # timm ties the patch bias to pre_norm; ours is its own setting
        return PatchEmbed(**{**kw, "bias": cfg.patch_bias})

    with torch.device("meta"):  # no memory, no init: our weights are assigned next
        vit = VisionTransformer(
            img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.width, depth=cfg.depth,
            num_heads=cfg.heads, mlp_ratio=cfg.mlp_width / cfg.width, qkv_bias=True, class_token=True,
            pre_norm=cfg.ln_pre, fc_norm=False, num_classes=0, global_pool="token", embed_layer=embed_layer,
            act_layer=QuickGELU if cfg.activation == "quick_gelu" else partial(nn.GELU, approximate="none"),
            norm_layer=partial(nn.LayerNorm, eps=cfg.ln_eps), weight_init="skip",
        )
    vit.load_state_dict(timm_state_dict(model), strict=True, assign=True)  # shared, not copied
    left = [n for n, t in [*vit.named_parameters(), *vit.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"timm's ViT has tensors our weights do not cover: {left}")
    return vit.eval().to(device)


class TimmVideo(nn.Module):
    """The naive adaptation with timm: every frame through timm's ViT, the pooled class tokens
    averaged over time, then the same projection and head as our models (so both include them)."""

    def __init__(self, vit: nn.Module, ours: InTIModel):
        super().__init__()
        self.vit = vit
        self.proj = ours.proj if ours.cfg.embed_dim is not None else nn.Identity()
        self.head = ours.head if ours.cfg.num_classes else nn.Identity()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        pooled = self.vit(video.flatten(0, 1)).unflatten(0, (b, t)).mean(dim=1)  # (b, C)
        return self.head(self.proj(pooled))


class _Stop(Exception):
    pass


def merge_inputs(model: InTIModel, video: torch.Tensor) -> list[torch.Tensor]:
    """The tokens that reach each merge, from one eager forward stopped at the last merge."""
    seen: list[torch.Tensor] = []

    def grab(module, args):
        seen.append(args[0])
        if len(seen) == len(model.merges):
            raise _Stop

    handles = [m.register_forward_pre_hook(grab) for m in model.merges]
    try:
        model(video)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return seen


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
# one row


def run_row(row: Row, models: dict, video: torch.Tensor, args, log) -> dict:
    """Warm up, check, then time every contender of `row` in interleaved rounds."""
    case, device = row.case, args.device
    cfg = models["cfg"]
    inti, naive = models["inti"], models["naive"]
    wanted = set(args.contenders)
    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
        if row.dtype == "bf16" else contextlib.nullcontext()
    )
    result = {
        "id": row.id, "preset": case.preset, "frames": case.frames, "batch": case.batch,
        "schedule": list(cfg.schedule), "dtype": row.dtype, "mode": row.mode,
        "autocast": row.dtype == "bf16", "contenders": {}, "checks": {},
        "loadavg_start": _loadavg(),
    }
    with torch.inference_mode(), autocast, _quietly():
        merge_x = merge_inputs(inti, video) if "merge" in wanted and len(cfg.schedule) else []
        fns: dict[str, object] = {}
        if row.mode == "compile":
            torch._dynamo.reset()  # a fresh cache per row: no stale guards, no cache-size fallback
            compiled = {
                "naive": torch.compile(naive, dynamic=False),
                "inti": torch.compile(inti, dynamic=False),
                "merge": [torch.compile(m, dynamic=False) for m in inti.merges],
            }
        else:
            compiled = {"naive": naive, "inti": inti, "merge": list(inti.merges)}
        if "naive" in wanted:
            fns["naive"] = lambda m=compiled["naive"]: m(video)
        if "inti" in wanted:
            fns["inti"] = lambda m=compiled["inti"]: m(video)
        if "timm" in wanted and row.mode == "eager" and models.get("timm") is not None:
            fns["timm"] = lambda m=models["timm"]: m(video)
        if "merge" in wanted and merge_x:
            fns["merge"] = lambda ms=compiled["merge"]: [m(x)[0] for m, x in zip(ms, merge_x)]
        if "ref" in wanted and row.dtype == "f32" and row.mode == "eager":
            params, video_np = models["ref_params"], video.detach().cpu().numpy()
            fns["ref"] = lambda: ref.forward(params, video_np, cfg)

        # Warm-up: compile (timed as compile_s), then one run that also measures peak memory.
        outputs = {}
        for name, fn in fns.items():
            entry = result["contenders"].setdefault(name, {})
            if row.mode == "compile" and name in ("naive", "inti", "merge"):
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
        tol = tolerance("float32" if row.dtype == "f32" else "bfloat16")
        if "naive" in outputs and "timm" in outputs:
            err = rel_err(outputs["naive"].float(), outputs["timm"].float())
            result["checks"]["naive_vs_timm"] = {"rel_err": err, "tol": tol, "ok": err <= tol}
        if "inti" in outputs and "ref" in outputs:
            err = rel_err(outputs["inti"].float(), outputs["ref"])
            result["checks"]["inti_vs_ref"] = {"rel_err": err, "tol": tol, "ok": err <= tol}
        if row.mode == "compile" and "inti" in outputs:
            with contextlib.suppress(Exception):
                err = rel_err(outputs["inti"].float(), inti(video).float())
                result["checks"]["compiled_vs_eager"] = {"rel_err": err, "tol": tol, "ok": err <= tol}
        bad = [f"{k}: rel err {v['rel_err']:.3g} > {v['tol']:g}" for k, v in result["checks"].items() if not v["ok"]]
        if bad:
            raise RuntimeError(f"{row.id}: the contenders disagree, timing would be meaningless: " + "; ".join(bad))
        del outputs

        # Rounds: each contender once per round, in a fresh random order.
        round_s = sum(result["contenders"][n]["warmup_s"] for n in fns)
        repeats = args.repeats
        if args.budget and round_s > 0:
            repeats = min(args.repeats, max(args.min_repeats, int(args.budget // round_s)))
        log(f"  {len(fns)} contenders, ~{round_s:.1f} s a round, {repeats} rounds")
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

    for name, ts in times.items():
        entry = result["contenders"][name]
        entry["times_s"] = ts
        entry["median_s"] = _median(ts)
        entry["min_s"] = min(ts) if ts else None
        entry["clips_per_s"] = case.batch / entry["median_s"] if ts else None
    result["repeats"] = repeats
    result["loadavg_end"] = _loadavg()
    add_ratios(result, cfg, case)
    return result


def predicted_ratio(cfg: ref.ModelConfig, frames: int, batch: int) -> dict:
    naive = ref.count_macs(cfg.replace(schedule=()), frames, batch)
    inti = ref.count_macs(cfg, frames, batch)
    return {"naive_macs": naive["total"], "inti_macs": inti["total"],
            "predictor_macs": inti["predictor"], "interpolation_macs": inti["interpolation"],
            "ratio": naive["total"] / inti["total"]}


def _paired(result: dict, num: str, den: str):
    """Median over rounds of num/den measured in the same round: drift between rounds cancels."""
    a = result["contenders"].get(num, {}).get("times_s")
    b = result["contenders"].get(den, {}).get("times_s")
    return statistics.median(x / y for x, y in zip(a, b)) if a and b else None


def add_ratios(result: dict, cfg: ref.ModelConfig, case: Case) -> None:
    med = {n: c.get("median_s") for n, c in result["contenders"].items()}
    macs = predicted_ratio(cfg, case.frames, case.batch)
    result["macs"] = macs
    result["speedup"] = med["naive"] / med["inti"] if med.get("naive") and med.get("inti") else None
    result["predicted"] = macs["ratio"]
    result["fraction_of_ideal"] = result["speedup"] / macs["ratio"] if result["speedup"] else None
    result["merge_share"] = med["merge"] / med["inti"] if med.get("merge") and med.get("inti") else None
    result["naive_vs_timm"] = med["naive"] / med["timm"] if med.get("naive") and med.get("timm") else None
    result["ref_vs_torch"] = med["ref"] / med["inti"] if med.get("ref") and med.get("inti") else None
    result["paired"] = {
        "speedup": _paired(result, "naive", "inti"),
        "merge_share": _paired(result, "merge", "inti"),
        "naive_vs_timm": _paired(result, "naive", "timm"),
        "ref_vs_torch": _paired(result, "ref", "inti"),
    }


def add_compile_gain(rows: list[dict]) -> None:
    """For compile rows: eager InTI time / compiled InTI time of the same case and dtype (> 1: helps)."""
    eager = {(r["preset"], r["frames"], r["batch"], r["dtype"]): r for r in rows if r["mode"] == "eager"}
    for r in rows:
        r["compile_gain"] = None
        e = eager.get((r["preset"], r["frames"], r["batch"], r["dtype"]))
        if r["mode"] == "compile" and e:
            gains = {}
            for name in ("naive", "inti"):
                ce, cc = e["contenders"].get(name, {}), r["contenders"].get(name, {})
                if ce.get("median_s") and cc.get("median_s"):
                    gains[name] = ce["median_s"] / cc["median_s"]
            r["compile_gain"] = gains or None


# ---------------------------------------------------------------------------------------------
# the grid


def plan(args) -> list[Row]:
    if args.preset:
        cases = [Case(args.preset, args.frames or 8, b) for b in (args.batch or [1])]
    else:
        cases = list(QUICK_CASES if args.quick else DEFAULT_CASES)
        if args.frames or args.batch:
            cases = [Case(c.preset, args.frames or c.frames, b) for c in cases for b in (args.batch or [c.batch])]
            cases = list(dict.fromkeys(cases))
    dtypes = ("f32",) if args.quick else DTYPES
    modes = ("eager",) if args.quick else MODES
    slow_bf16 = not native_bf16(args.device)
    rows = []
    for mode in modes:
        for dtype in dtypes:
            for i, case in enumerate(cases):
                # Without hardware bfloat16 the matrix products are emulated (about 7x slower than
                # float32 on AVX2): unless asked (--all), only the first case runs in bfloat16.
                if dtype == "bf16" and slow_bf16 and i > 0 and not args.all and not args.only:
                    continue
                rows.append(Row(case, dtype, mode))
    if args.only:
        patterns = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in args.only.split(",") if p]
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r.id, p) for p in patterns)]
    # Grouped by case, so that each case's models are built once.
    order = {c: i for i, c in enumerate(dict.fromkeys(r.case for r in rows))}
    return sorted(rows, key=lambda r: (order[r.case], MODES.index(r.mode), DTYPES.index(r.dtype)))


def prepare_case(case: Case, args, log) -> dict:
    cfg = ref.preset(case.preset)
    ref.checks.check_frames(case.frames, cfg)
    inti, naive = build_models(cfg, args.device, seed=args.seed)
    models = {"cfg": cfg, "inti": inti, "naive": naive, "timm": None, "ref_params": None}
    if "timm" in args.contenders:
        try:
            models["timm"] = TimmVideo(build_timm(cfg, inti, args.device), inti).eval()
        except ImportError as e:
            log(f"  timm is not available ({e}); its column stays empty")
    if "ref" in args.contenders:
        # float32 NumPy views of the same tensors: ref.forward's cast to the video's dtype is free.
        models["ref_params"] = {k: v.detach().cpu().numpy() for k, v in inti.state_dict().items()}
    generator = torch.Generator().manual_seed(args.seed)
    video = torch.randn(case.batch, case.frames, 3, cfg.image_size, cfg.image_size, generator=generator)
    models["weights_mib"] = sum(p.numel() * p.element_size() for p in inti.parameters()) / 2**20
    return {"models": models, "video": video.to(args.device)}


# ---------------------------------------------------------------------------------------------
# reports


def _ms(s):
    return "–" if s is None else f"{s * 1e3:,.0f}" if s >= 0.1 else f"{s * 1e3:.1f}"


def _x(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}x"


def _pct(v):
    return "–" if v is None else f"{v * 100:.1f}%"


def _flag(ok):
    return "" if ok is None else (" ✓" if ok else " ✗")


def markdown(report: dict) -> str:
    m, rows = report["machine"], report["rows"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['cpu_capability']}"
        f"{', native bf16' if m['native_bf16'] else ', no native bf16'}), device {m['device']}"
        f"{' (' + m['gpu'] + ')' if m.get('gpu') else ''}; torch {m['torch']}, {m['torch_threads']} threads, "
        f"OMP_WAIT_POLICY={m['OMP_WAIT_POLICY']}; numpy {m['numpy']}; timm {m['timm']}; "
        f"load average {m['loadavg_start']} at the start.",
        f"Command: `{report['command']}` ({report['started']}, {report['duration_s'] / 60:.1f} min).",
        "",
        "| case | dtype | mode | rounds | speed-up | (paired) | MAC ratio | of ideal | merge share "
        "| naive / timm | ref / torch | compile gain |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t = r["targets"]
        gain = r.get("compile_gain") or {}
        gain = "–" if "inti" not in gain else f"{gain['inti']:.2f}x"
        lines.append(
            f"| {r['preset']} T{r['frames']} b{r['batch']} | {r['dtype']} | {r['mode']} | {r['repeats']} "
            f"| {_x(r['speedup'])} | {_x(r['paired']['speedup'])} | {_x(r['predicted'])} "
            f"| {_pct(r['fraction_of_ideal'])}{_flag(t.get('fraction_of_ideal'))} "
            f"| {_pct(r['merge_share'])}{_flag(t.get('merge_share'))} | {_x(r['naive_vs_timm'], 3)}{_flag(t.get('naive_vs_timm'))} "
            f"| {_x(r['ref_vs_torch'])}{_flag(t.get('ref_vs_torch'))} | {gain} |"
        )
    lines += [
        "",
        "| case | dtype | mode | contender | median ms | min ms | clips/s | peak MiB | compile s |",
        "|---|---|---|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        for name in CONTENDERS:
            c = r["contenders"].get(name)
            if not c or c.get("median_s") is None:
                continue
            clips = "–" if name == "merge" else f"{c['clips_per_s']:.3g}"
            comp = f"{c['compile_s']:.0f}" if c.get("compile_s") is not None else "–"
            lines.append(
                f"| {r['preset']} T{r['frames']} b{r['batch']} | {r['dtype']} | {r['mode']} | {name} "
                f"| {_ms(c['median_s'])} | {_ms(c['min_s'])} | {clips} | {c['peak_mib']:,.0f} | {comp} |"
            )
    lines += ["", "Targets (✓ met, ✗ missed): " + "; ".join(f"{k}: {v}" for k, v in report["targets"].items()), ""]
    return "\n".join(lines)


def evaluate_targets(report: dict) -> None:
    summary = {}
    for r in report["rows"]:
        t = r["targets"] = {}
        if r["fraction_of_ideal"] is not None:
            t["fraction_of_ideal"] = r["fraction_of_ideal"] >= TARGET_FRACTION_OF_IDEAL
        if r["merge_share"] is not None:
            t["merge_share"] = r["merge_share"] < TARGET_MERGE_SHARE
        if r["naive_vs_timm"] is not None:
            t["naive_vs_timm"] = r["naive_vs_timm"] <= TARGET_NAIVE_VS_TIMM
        if r["ref_vs_torch"] is not None:
            t["ref_vs_torch"] = r["ref_vs_torch"] <= TARGET_REF_VS_TORCH
        for k, ok in t.items():
            summary.setdefault(k, []).append(ok)
    names = {
        "fraction_of_ideal": f"speed-up >= {TARGET_FRACTION_OF_IDEAL:.0%} of the MAC ratio",
        "merge_share": f"merge share < {TARGET_MERGE_SHARE:.0%}",
        "naive_vs_timm": f"naive within {TARGET_NAIVE_VS_TIMM - 1:.0%} of timm",
        "ref_vs_torch": f"ref within {TARGET_REF_VS_TORCH:g}x of torch f32",
    }
    report["targets"] = {names[k]: f"{sum(v)}/{len(v)} rows" for k, v in summary.items()}


def update_readme(path: Path, table: str) -> None:
    """Put the table between <!-- speed:begin --> and <!-- speed:end --> (or at <!-- speed -->)."""
    text = path.read_text()
    block = f"<!-- speed:begin -->\n{table.strip()}\n<!-- speed:end -->"
    if "<!-- speed:begin -->" in text and "<!-- speed:end -->" in text:
        head, rest = text.split("<!-- speed:begin -->", 1)
        tail = rest.split("<!-- speed:end -->", 1)[1]
        text = head + block + tail
    elif "<!-- speed -->" in text:
        text = text.replace("<!-- speed -->", block, 1)
    else:
        raise ValueError(f"{path} has no <!-- speed --> or <!-- speed:begin -->/<!-- speed:end --> markers")
    path.write_text(text)


# ---------------------------------------------------------------------------------------------
# command line


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Time naive torch, InTI torch, timm (same weights) and the NumPy ref, interleaved, "
                    "and compare InTI's measured speed-up with its MAC-predicted ratio.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Row ids look like vit_b16-T16-b1-f32-eager; --only takes comma-separated globs or "
               "substrings of them (e.g. --only 'vit_b16-T16-b1*,bf16'). See benchmarks/README.md.",
    )
    p.add_argument("--quick", action="store_true",
                   help="one row (vit_b16, 8 frames, batch 1, float32, eager), 3 rounds: about 2 minutes")
    p.add_argument("--only", default=None, metavar="GLOBS", help="run only the rows whose id matches one of these")
    p.add_argument("--all", action="store_true",
                   help="also run bfloat16 at every case on CPUs without native bfloat16 (slow)")
    p.add_argument("--repeats", type=int, default=None, metavar="N",
                   help="timed rounds per row (default 5; 3 with --quick)")
    p.add_argument("--min-repeats", type=int, default=3, metavar="N",
                   help="rounds per row that --budget never cuts below (default 3)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="cut a row's rounds to fit this many seconds, down to --min-repeats "
                        "(default 120; 0: no cut)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where results.json and results.md go (default benchmarks/out/)")
    p.add_argument("--preset", default=None, help="run this ref preset instead of the default cases (e.g. nano)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default 16; 8 with --preset)")
    p.add_argument("--batch", type=int, action="append", default=None, metavar="B",
                   help="clips per batch; repeat for several (default: the grid's)")
    p.add_argument("--contenders", default=",".join(CONTENDERS),
                   help=f"comma-separated subset of {','.join(CONTENDERS)} (default all)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the core count)")
    p.add_argument("--seed", type=int, default=0, help="weights, input and round order (default 0)")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table into FILE at its <!-- speed --> markers")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.budget is None:
        args.budget = 0 if args.quick else 120
    args.contenders = [c for c in args.contenders.split(",") if c]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        p.error(f"unknown contenders {unknown}; choose from {CONTENDERS}")
    if args.repeats < 1 or args.min_repeats < 1:
        p.error("--repeats and --min-repeats must be at least 1")
    if args.preset is not None and args.preset not in ref.config.PRESETS:
        p.error(f"unknown preset {args.preset!r}; choose one of {sorted(ref.config.PRESETS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA device")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads or cores())
    started = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    rows = plan(args)
    if not rows:
        log("no row matches --only; nothing to do")
        return 2
    command = "python -m benchmarks.speed" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else list(argv)))
    report = {
        "command": command,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(args.device),
        "settings": {"repeats": args.repeats, "min_repeats": args.min_repeats, "budget_s": args.budget,
                     "contenders": args.contenders, "seed": args.seed, "all": args.all, "only": args.only},
        "rows": [],
    }
    try:
        current, prepared = None, None
        for i, row in enumerate(rows, 1):
            if row.case != current:
                current, prepared = row.case, None
                gc.collect()
                log(f"[{row.case.name}] building models ...")
                prepared = prepare_case(row.case, args, log)
            log(f"[{i}/{len(rows)}] {row.id}")
            result = run_row(row, prepared["models"], prepared["video"], args, log)
            result["weights_mib"] = prepared["models"]["weights_mib"]
            report["rows"].append(result)
            log(f"  speed-up {_x(result['speedup'])} of predicted {_x(result['predicted'])}, "
                f"({time.perf_counter() - started:.0f} s so far)")
    finally:
        torch.set_num_threads(threads_before)
    report["duration_s"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = _loadavg()
    add_compile_gain(report["rows"])
    evaluate_targets(report)
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "results.md").write_text(table)
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
