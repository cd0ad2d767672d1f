"""Which attention kernel: every path the model can take, timed on the model's own shapes.

    python -m benchmarks.attention                       # vit_b16, 8 frames, f32 and bf16, CPU
    python -m benchmarks.attention --preset vit_l14 --device cuda

One frame's attention per (clip, frame): q, k, v of shape (B*T, heads, N, C/heads), the shape
`torch_impl.attention.Attention` hands the kernel. Contenders, interleaved round by round in a
fresh random order (the median over rounds is reported, the minimum beside it):

- ``explicit``: the readable path of torch_impl (scores, float32 softmax for half inputs, @ v);
- ``sdpa``: `F.scaled_dot_product_attention` with torch's own choice of kernel (the default
  path of torch_impl);
- ``sdpa:<backend>``: SDPA held to one backend (`torch.nn.attention.sdpa_kernel`): math, flash,
  efficient, cudnn; a backend that cannot run these inputs on this device is listed as such.

Each contender's output is checked against float64 attention first (`inti.tolerances.rel_err`
against the parity bar of the dtype), so a fast wrong kernel cannot win. The MACs are the
score and weighted-sum products, 2 * B*T * heads * N^2 * C/heads; GMAC/s is them over the median
time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import ref
from inti.tolerances import rel_err, tolerance
from torch_impl.checks import torch_dtype

from . import flags
from .machine import describe, summary
from .timing import interleave, median

BACKENDS = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


def explicit(q, k, v):
    """torch_impl.attention's explicit path, as written there."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    work = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    return torch.softmax(work, dim=-1).to(v.dtype) @ v


def contenders() -> dict:
    out = {"explicit": explicit, "sdpa": F.scaled_dot_product_attention}
    for name, backend in BACKENDS.items():
        def held(q, k, v, backend=backend):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)
        out[f"sdpa:{name}"] = held
    return out


def measure(cfg: ref.ModelConfig, frames: int, batch: int, dtype: str, device: str, rounds: int,
            seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (batch * frames, cfg.heads, cfg.num_tokens, cfg.width // cfg.heads)
    q64, k64, v64 = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))
    expected = explicit(q64, k64, v64)
    q, k, v = (t.to(device, torch_dtype(dtype)) for t in (q64, k64, v64))
    macs = 2 * shape[0] * shape[1] * shape[2] ** 2 * shape[3]
    bar = tolerance(dtype)
    runnable, result = {}, {"dtype": dtype, "shape": list(shape), "macs": macs, "contenders": {}}
    with torch.inference_mode():
        for name, fn in contenders().items():
            try:
                with warnings.catch_warnings():  # SDPA warns before it raises for a missing kernel
                    warnings.simplefilter("ignore")
                    out = fn(q, k, v)
            except RuntimeError as e:  # no kernel of this backend for these inputs here
                result["contenders"][name] = {"runs": False, "why": str(e).splitlines()[0][:160]}
                continue
            err = rel_err(out.double().cpu().numpy(), expected.numpy())
            if err > bar:
                raise SystemExit(f"attention path {name} in {dtype} is off: relative error {err:.2e} > {bar:.0e}")
            runnable[name] = lambda fn=fn: fn(q, k, v)
            result["contenders"][name] = {"runs": True, "rel_error": err}
        times = interleave(runnable, rounds, device, seed=seed)
    for name, ts in times.items():
        result["contenders"][name]["ms"] = [t * 1e3 for t in ts]
    for c in result["contenders"].values():
        if c["runs"]:
            c["median_ms"] = median(c["ms"])
            c["min_ms"] = min(c["ms"])
            c["gmacs"] = macs / c["median_ms"] / 1e6
    return result


def markdown(report: dict) -> str:
    lines = [summary(report["machine"]),
             f"{report['preset']}, {report['frames']} frames, batch {report['batch']}, {report['rounds']} rounds.", "",
             "| dtype | path | median ms | min ms | GMAC/s | vs sdpa | rel. error |", "|---|---|--:|--:|--:|--:|--:|"]
    for r in report["rows"]:
        base = r["contenders"]["sdpa"]["median_ms"]
        for name, c in r["contenders"].items():
            if not c["runs"]:
                lines.append(f"| {r['dtype']} | {name} | – | – | – | – | no kernel here |")
                continue
            lines.append(f"| {r['dtype']} | {name} | {c['median_ms']:.2f} | {c['min_ms']:.2f} | {c['gmacs']:.1f} | "
                         f"{c['median_ms'] / base:.2f}x | {c['rel_error']:.1e} |")
    return "\n".join(lines)


DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.attention", description=__doc__.splitlines()[0])
    p.add_argument("--preset", type=flags.preset, default="vit_b16", help="the model whose shapes run (default vit_b16)")
    p.add_argument("--frames", type=flags.whole(1, flags.MAX_FRAMES), default=8, help="frames per clip (default 8)")
    p.add_argument("--batch", type=flags.whole(1, flags.MAX_BATCH), default=1, help="clips per batch (default 1)")
    p.add_argument("--dtypes", default="f32,bf16", type=flags.subset(tuple(DTYPES)),
                   help="comma-separated subset of f32,bf16,f16 (default f32,bf16)")
    p.add_argument("--rounds", type=flags.whole(1, flags.MAX_ROUNDS), default=20,
                   help=f"timed rounds, 1 to {flags.MAX_ROUNDS} (default 20)")
    p.add_argument("--seed", type=flags.whole(0, flags.MAX_SEED), default=0, help="inputs and round order (default 0)")
    p.add_argument("--device", type=flags.device, default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the report here")
    args = p.parse_args(argv)
    cfg = ref.preset(args.preset)
    q_k_v = 3 * args.batch * args.frames * cfg.num_tokens * cfg.width * 8  # float64, the reference's
    flags.check_bytes(p, f"--frames {args.frames} --batch {args.batch} of {args.preset}", "q, k and v", q_k_v)
    if args.json is not None:
        flags.check_file(p, args.json, "--json")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    cfg = ref.preset(args.preset)
    report = {"machine": describe(args.device), "device": args.device, "preset": args.preset,
              "frames": args.frames, "batch": args.batch, "rounds": args.rounds, "seed": args.seed,
              "rows": [measure(cfg, args.frames, args.batch, DTYPES[d], args.device, args.rounds, args.seed)
                       for d in args.dtypes]}
    print(markdown(report))
    if args.json:
        from inti.io.atomic import write_text

        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
