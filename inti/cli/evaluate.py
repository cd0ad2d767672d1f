"""`inti eval`: top-1, top-5, mean class accuracy, MACs per clip (the cost model, checked by
FlopCounterMode) and clips per second of a checkpoint, with multi-view testing (--views TxS)."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, CLIError, positive_int, table
from .train import add_data_args, datasets


def parse_views(text: str) -> tuple[int, int]:
    """"1x1", "4x3" -> (temporal clips, spatial crops)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        t, s = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be TxS, such as 4x3 (temporal clips x spatial crops), got {text!r}") from None
    if t < 1 or s < 1:
        raise argparse.ArgumentTypeError(f"both view counts must be positive, got {text!r}")
    return t, s


def run(args) -> int:
    import torch

    import ref
    from inti.io.params import load_params
    from inti.train import evaluate
    from inti.train.distributed import setup, teardown
    from torch_impl import from_ref_params
    from torch_impl.cost import count_flops

    params, cfg = load_params(args.checkpoint)
    frames = args.frames
    try:
        ref.checks.check_frames(frames, cfg)
    except ValueError as e:
        raise CLIError(f"--frames {frames} does not fit the checkpoint's schedule: {e}") from None
    world = setup(args.device)
    model = from_ref_params(params, cfg, dtype=torch.float32).to(world.device).eval()
    _, data, classes = datasets(args, frames, cfg.image_size, cfg.num_classes or None, train=False)
    if cfg.num_classes and classes != cfg.num_classes:
        raise CLIError(f"the checkpoint's head has {cfg.num_classes} classes, the data {classes}")
    try:
        metrics = evaluate(model, data, batch_size=args.batch_size, world=world, workers=args.workers, bf16=args.bf16,
                           max_skip_fraction=args.max_skip_fraction)
        from inti.data.datasets import BadClip

        video = next(item for item in map(data.__getitem__, range(len(data))) if not isinstance(item, BadClip))[0]
        one = (video[0] if video.dim() == 5 else video)[None].to(world.device)
        flops = count_flops(model, one)["total"]
    finally:
        teardown(world)
    matmul = ref.count_macs(cfg, frames)["matmul"]
    if world.main:
        rows = [[k, f"{v:.4f}" if isinstance(v, float) else f"{v:,}"] for k, v in metrics.items()]
        print(f"inti eval: {args.checkpoint} on {len(data)} clips, {frames} frames, views {args.views[0]}x{args.views[1]}")
        print(table(rows, ["metric", "value"], colalign=("left", "right")))
        verdict = "equal" if flops == 2 * matmul else "DIFFERENT"
        print(f"FlopCounterMode on one view: {flops:,} FLOPs = 2 x {flops // 2:,}; the cost model's matrix-product "
              f"MACs: {matmul:,} ({verdict})")
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint: top-1/5, mean class accuracy, MACs, clips/s, merge-weight statistics",
        description="Evaluate a training checkpoint or parameter file on list-file data or a synthetic task.",
        epilog="example: inti eval --checkpoint run/best.safetensors --list val.txt --root videos --views 4x3",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a training checkpoint or an inti parameter file")
    add_data_args(p, train=False)
    p.add_argument("--frames", type=positive_int, default=8, help="frames per view (default: 8)")
    p.add_argument("--views", type=parse_views, default=(1, 1), metavar="TxS",
                   help="temporal clips x spatial crops per video; softmax scores averaged (default: 1x1)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="videos per batch (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="the synthetic task's seed, as in training (default: 0)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.set_defaults(run=run)
    return p
