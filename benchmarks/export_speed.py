"""Is the exported graph fast? onnxruntime against torch, naive against InTI.

    python -m benchmarks.export_speed                  # nano and vit_b16, 8 frames, batch 1 (~5 min on 2 cores)
    python -m benchmarks.export_speed --presets nano   # a minute
    python -m benchmarks.export_speed --compile        # also torch.compile (slow to compile on a CPU)

For each preset, naive (schedule ()) and InTI (the preset's schedule), from the same random
weights (random score layer, so the merges are not averages): torch eager float32 (the fused
attention path, as people run it), optionally torch.compile, onnxruntime float32 (CPU execution
provider, the graph of `inti export`) and onnxruntime int8 (`onnxruntime.quantization.quantize_dynamic`,
weights int8, activations quantized on the fly). Each contender is warmed up, checked against
torch float32 (relative error of the logits, `inti.tolerances.rel_err`), then timed in interleaved
rounds (benchmarks.timing.interleave: a fresh random order each round); the table gives the median. Results go to --out (default benchmarks/out/) as
export_speed.json and export_speed.md, written atomically; an earlier run is replaced only with --force.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import ref
import torch_impl
from inti import export
from inti.io.atomic import write_text

from . import flags
from .machine import cores, describe, loadavg
from .timing import interleave

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
NAMES = ("export_speed.json", "export_speed.md")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.export_speed",
                                description="onnxruntime against torch, naive against InTI, float32 and int8.")
    p.add_argument("--presets", default="nano,vit_b16", type=flags.subset(tuple(ref.config.PRESETS)),
                   help="comma-separated presets (default nano,vit_b16)")
    p.add_argument("--frames", type=flags.whole(1, flags.MAX_FRAMES), default=8,
                   help="frames per clip, a count every preset's schedule can merge (default 8)")
    p.add_argument("--batch", type=flags.whole(1, flags.MAX_BATCH), default=1, help="clips per batch (default 1)")
    p.add_argument("--repeats", type=flags.whole(1, flags.MAX_ROUNDS), default=5,
                   help=f"timed rounds, 1 to {flags.MAX_ROUNDS} (default 5)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (default off: minutes to compile)")
    p.add_argument("--no-int8", action="store_true", help="skip onnxruntime int8 dynamic quantization")
    p.add_argument("--threads", type=flags.whole(1, flags.MAX_THREADS), default=None,
                   help="threads for torch and onnxruntime (default: the core count)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="where the results go (default benchmarks/out/)")
    p.add_argument("--force", action="store_true", help="replace the results of an earlier run in --out")
    args = p.parse_args(argv)
    flags.check_folder(p, args.out)
    earlier = [n for n in NAMES if (args.out / n).exists()]
    if earlier and not args.force:
        p.error(f"{args.out} already holds {', '.join(earlier)} of an earlier run; pass --force to replace them")
    for name in args.presets:
        flags.check_case(p, name, args.frames, args.batch)
    return args


def contenders(cfg, params, args, folder: Path, log) -> dict:
    """{name: callable(video ndarray) -> logits ndarray} for one model."""
    model = torch_impl.from_ref_params(params, cfg, dtype=torch.float32).eval()
    out = {}

    def eager(v):
        with torch.no_grad():
            return model(torch.from_numpy(v)).numpy()

    out["torch eager"] = eager
    if args.compile:
        compiled = torch.compile(model)

        def comp(v):
            with torch.no_grad():
                return compiled(torch.from_numpy(v)).numpy()

        out["torch compiled"] = comp
    t = time.perf_counter()
    path = folder / f"{cfg.depth}-{len(cfg.schedule)}.onnx"
    export.export_onnx(path, params, cfg, args.frames, force=True)
    log(f"    exported in {time.perf_counter() - t:.0f} s")
    sess = export.session(path, args.threads)
    out["onnxruntime f32"] = lambda v: export.run_onnx(sess, v)["logits"]
    if not args.no_int8:
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            q = folder / f"{path.stem}-int8.onnx"
            quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
            qsess = export.session(q, args.threads)
            out["onnxruntime int8"] = lambda v: export.run_onnx(qsess, v)["logits"]
        except Exception as e:  # report, do not stop: int8 is optional
            log(f"    int8 dynamic quantization failed: {type(e).__name__}: {e}")
    return out


def measure(fns: dict, video: np.ndarray, repeats: int, log) -> dict:
    from inti.tolerances import rel_err

    base = fns["torch eager"](video)
    results = {}
    for name, fn in fns.items():
        t = time.perf_counter()
        got = fn(video)  # warm-up (and compilation)
        first = time.perf_counter() - t
        fn(video)
        results[name] = {"first_s": first, "rel_err": rel_err(got, base)}
    times = interleave({name: lambda fn=fn: fn(video) for name, fn in fns.items()}, repeats)
    for name, r in results.items():
        r["times_s"] = times[name]
        r["median_s"] = float(np.median(r["times_s"]))
    return results


def markdown(report) -> str:
    lines = ["| model | schedule | GMACs | contender | median | vs torch eager | logits rel. err. vs torch |",
             "|---|---|---:|---|---:|---:|---:|"]
    for row in report["rows"]:
        eager = row["results"]["torch eager"]["median_s"]
        for name, r in row["results"].items():
            lines.append(f"| {row['preset']} | {row['schedule']} | {row['gmacs']:.1f} | {name} | "
                         f"{r['median_s'] * 1e3:,.1f} ms | {eager / r['median_s']:.2f}x | {r['rel_err']:.1e} |")
    lines.append("")
    lines.append(f"{report['frames']} frames, batch {report['batch']}, {report['threads']} threads, median of "
                 f"{report['repeats']} interleaved rounds; load average at start {report['machine'].get('loadavg_start')}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    threads = args.threads or cores()
    args.threads = threads
    torch.set_num_threads(threads)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    report = {"command": "python -m benchmarks.export_speed " + " ".join(sys.argv[1:] if argv is None else argv),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": describe("cpu"),
              "frames": args.frames, "batch": args.batch, "repeats": args.repeats, "threads": threads, "rows": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            cfg = ref.preset(name)
            params = ref.params.randomize_scores(ref.init_params(cfg, dtype=np.float32), cfg)
            video = np.random.default_rng(0).standard_normal(
                (args.batch, args.frames, 3, cfg.image_size, cfg.image_size)).astype(np.float32)
            for label, c, p in (("naive", cfg.replace(schedule=()), ref.backbone(params)), ("InTI", cfg, params)):
                log(f"[{name} {label}] building ...")
                fns = contenders(c, p, args, Path(tmp), log)
                results = measure(fns, video, args.repeats, log)
                report["rows"].append({"preset": name, "schedule": f"{label} {c.schedule}", "gmacs":
                                       ref.count_macs(c, args.frames, args.batch)["total"] / 1e9, "results": results})
                log("    " + ", ".join(f"{k} {r['median_s'] * 1e3:.1f} ms" for k, r in results.items()))
    report["duration_s"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = loadavg()
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / NAMES[0], json.dumps(report, indent=2) + "\n")
    write_text(args.out / NAMES[1], table)
    print(table)
    log(f"wrote {args.out / NAMES[0]} and {args.out / NAMES[1]} in {report['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
