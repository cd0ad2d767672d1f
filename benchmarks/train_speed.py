"""Training throughput: naive against InTI, one training step (forward + backward + AdamW),
and the loader's clips per second against the model's consumption (benchmarks/README.md).

    python -m benchmarks.train_speed            # nano and vit_b16, batch 2, 8 frames, float32 and bf16
    python -m benchmarks.train_speed --quick    # nano only

Rows, all measured in one process, naive and InTI interleaved round by round, in float32 and
under bfloat16 autocast (as `inti train --bf16` runs: the weights and AdamW stay float32):
- clips/s of a training step, the speed-up, and the speed-up as a fraction of the MAC ratio
  (the ratio of the forward's MACs; the backward costs about twice the forward for both);
- peak memory of a step (torch's CPU profiler), against the share of activations the merges
  remove (the ratio of token-frames through the blocks);
- the loader: clips/s of `VideoListDataset` with 2 workers, on a synthetic task written to
  disk as FFV1 videos, against the InTI training step's clips/s.

On a CPU without bfloat16 matrix units (no amx_bf16, no avx512_bf16) bfloat16 is emulated, far
slower than float32: its rows are marked as emulated and run at most 3 rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ref
import torch_impl
from inti.io.atomic import write_text

from . import flags
from .machine import describe, fixed_malloc, native_bf16, summary
from .timing import interleave, torch_peak

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
RESULTS = ("train_results.json", "train_results.md")
DTYPES = ("f32", "bf16")
TARGET = 0.9  # the training step's speed-up, as a fraction of the MAC ratio (not judged when bfloat16 is emulated)


def step_fn(model, video, labels, optimizer, bf16: bool = False):
    """One training step as the engine (inti.train.loop) takes it: the forward and the loss
    under bfloat16 autocast when bf16 (as `inti train --bf16`), the loss in float32, backward, AdamW."""
    device = video.device.type

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(video).float(), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()
    return step


def token_frames(cfg, frames: int) -> int:
    """Frames through each block, summed over the blocks: the activations a step keeps."""
    return sum(t for t, _ in ref.count_macs(cfg, frames)["per_block"])


def measure_case(preset: str, frames: int, batch: int, rounds: int, seed: int = 0, dtype: str = "f32",
                 device: str = "cpu", norm_path: str = "native") -> dict:
    """One row: naive and InTI training steps on the same initial weights, interleaved."""
    cfg = ref.preset(preset)
    torch.manual_seed(seed)
    models = {"inti": torch_impl.InTIModel(cfg), "naive": torch_impl.InTIModel(cfg.replace(schedule=()))}
    models["naive"].load_state_dict({k: v for k, v in models["inti"].state_dict().items() if not k.startswith("merges.")})
    for m in models.values():
        m.to(device).set_norm_path(norm_path)
    video = torch.randn(batch, frames, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(seed))
    labels = torch.randint(0, cfg.num_classes, (batch,), generator=torch.Generator().manual_seed(seed))
    video, labels = video.to(device), labels.to(device)
    bf16 = dtype == "bf16"
    steps = {n: step_fn(m.train(), video, labels, torch.optim.AdamW(m.parameters(), lr=1e-4), bf16)
             for n, m in models.items()}
    emulated = bf16 and not native_bf16(device)
    result = {"preset": preset, "frames": frames, "batch": batch, "dtype": dtype, "autocast": bf16,
              "emulated_bf16": emulated, "device": device, "norm_path": norm_path,
              "peak_mib": {}}
    for name, fn in steps.items():  # warm-up, which also measures peak memory
        _, _, peak = torch_peak(fn, device)
        result["peak_mib"][name] = peak / 2**20
    result["times_s"] = interleave(steps, min(rounds, 3) if emulated else rounds, device, seed=seed)
    med = {n: statistics.median(t) for n, t in result["times_s"].items()}
    cost = ref.compare(cfg, frames, batch)
    mac_ratio = cost["naive"]["total"] / cost["inti"]["total"]
    result.update({
        "clips_per_s": {n: batch / med[n] for n in med}, "speedup": med["naive"] / med["inti"], "mac_ratio": mac_ratio,
        "fraction_of_mac_ratio": med["naive"] / med["inti"] / mac_ratio,
        "memory_ratio": result["peak_mib"]["naive"] / result["peak_mib"]["inti"],
        "activation_ratio": token_frames(cfg.replace(schedule=()), frames) / token_frames(cfg, frames),
    })
    return result


def measure_loader(frames: int, size: int, batch: int, workers: int, clips: int = 64) -> dict:
    from inti.data.datasets import EpochSampler, VideoListDataset, make_loader
    from inti.data.synthetic import write_task

    with tempfile.TemporaryDirectory() as d:
        lists = write_task(Path(d) / "task", "informative", {"train": clips}, frames=frames * 4, size=size * 2)
        data = VideoListDataset(lists["train"], Path(d) / "task", frames=frames, size=size, train=True)
        sampler = EpochSampler(len(data), batch)
        for videos, *_ in make_loader(data, sampler, workers):  # warm-up epoch: worker start, page cache
            pass
        start = time.perf_counter()
        n = sum(len(v) for v, *_ in make_loader(data, sampler, workers))
        return {"workers": workers, "clips": n, "clips_per_s": n / (time.perf_counter() - start),
                "source": f"{clips} FFV1 clips of {frames * 4} frames at {size * 2} px, {frames} sampled, cropped to {size}"}


def markdown(report: dict) -> str:
    lines = [summary(report["machine"]),
             f"Command: `{report['command']}` ({report['duration_s'] / 60:.1f} min).", "",
             "| case | dtype | rounds | naive clips/s | InTI clips/s | speed-up | MAC ratio | of ratio | peak MiB naive / InTI | "
             "memory ratio | activation ratio |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in report["rows"]:
        dtype = {"f32": "f32", "bf16": "bf16 autocast"}[r["dtype"]] + (" *" if r["emulated_bf16"] else "")
        lines.append(f"| {r['preset']} T{r['frames']} b{r['batch']} | {dtype} | {len(r['times_s']['inti'])} | "
                     f"{r['clips_per_s']['naive']:.3g} | "
                     f"{r['clips_per_s']['inti']:.3g} | {r['speedup']:.2f}x | {r['mac_ratio']:.2f}x | "
                     f"{r['fraction_of_mac_ratio']:.0%}{'' if r['emulated_bf16'] else ' ✓' if r['fraction_of_mac_ratio'] >= TARGET else ' ✗'} | "
                     f"{r['peak_mib']['naive']:,.0f} / {r['peak_mib']['inti']:,.0f} | "
                     f"{r['memory_ratio']:.2f}x | {r['activation_ratio']:.2f}x |")
    if any(r["emulated_bf16"] for r in report["rows"]):
        lines += ["", "\\* emulated: no bfloat16 matrix units on this CPU; these rows say nothing about bfloat16 hardware."]
    loader = report.get("loader")
    if loader:
        lines += ["", f"Loader: {loader['clips_per_s']:.1f} clips/s with {loader['workers']} workers ({loader['source']}); "
                      f"the nano InTI training step consumes {report['rows'][0]['clips_per_s']['inti']:.1f} clips/s."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="nano only, at most 3 rounds")
    p.add_argument("--rounds", type=flags.whole(1, flags.MAX_ROUNDS), default=5,
                   help=f"timed rounds per row, 1 to {flags.MAX_ROUNDS} (default 5)")
    p.add_argument("--dtypes", default=",".join(DTYPES), type=flags.subset(DTYPES),
                   help="comma-separated subset of f32,bf16 (autocast); default both")
    p.add_argument("--norm-path", default="native", choices=("explicit", "native"),
                   help="LayerNorm path for half-precision inputs (torch_impl.layers; default native)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where train_results.json and train_results.md go (default benchmarks/out/)")
    p.add_argument("--force", action="store_true", help="replace train_results.* of an earlier run in --out")
    flags.add_malloc_arg(p)
    args = p.parse_args(argv)
    flags.check_folder(p, args.out)
    if (args.out / RESULTS[0]).exists() and not args.force:
        p.error(f"{args.out} already holds {RESULTS[0]}; pass --force to replace it")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.malloc == "fixed":
        fixed_malloc()
    started = time.perf_counter()
    cases = [("nano", 8, 2)] if args.quick else [("nano", 8, 2), ("vit_b16", 8, 2)]
    rows = [measure_case(preset, frames, batch, min(args.rounds, 3) if args.quick else args.rounds, dtype=dtype,
                         norm_path=args.norm_path)
            for preset, frames, batch in cases for dtype in args.dtypes]
    report = {"command": " ".join(["python -m benchmarks.train_speed", *argv]),
              "machine": describe("cpu"), "rows": rows,
              "loader": measure_loader(8, ref.preset("nano").image_size, 2, workers=2)}
    report["duration_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / RESULTS[0], json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    write_text(args.out / RESULTS[1], table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
