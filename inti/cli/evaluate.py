"""`inti eval`: top-1, top-5, mean class accuracy, MACs per clip (the cost model, checked by
FlopCounterMode) and clips per second of trained weights, with multi-view testing (--views TxS).
`--config RECIPE` applies the recipe's test protocol (its frames, views T x S, crop and short
side, its validation list) instead of the flags; `--set key=value` changes a field."""

from __future__ import annotations

import argparse

from .common import (EXIT_OK, WEIGHTS_HELP, CLIError, add_data_args, add_run_args, add_weights_arg, datasets, parse_views,
                     positive_int, seed)
from .report import table


def run(args) -> int:
    import torch

    import ref
    from inti.io.weights import load
    from inti.train import evaluate
    from inti.train.distributed import setup, teardown
    from torch_impl import from_ref_params
    from torch_impl.cost import count_flops

    if args.set and not args.config:
        raise CLIError("--set changes a recipe's field: pass the recipe with --config")
    loaded = load(args.weights)
    params, cfg = loaded.params, loaded.cfg
    recipe = protocol(args, cfg) if args.config else None  # the recipe's test protocol, set on args
    frames = args.frames
    try:
        ref.checks.check_frames(frames, cfg)
    except ValueError as e:
        raise CLIError(f"--frames {frames} does not fit the schedule of the weights: {e}") from None
    world = setup(args.device, timeout_s=args.dist_timeout)
    model = from_ref_params(params, cfg, dtype=torch.float32).to(world.device).eval()
    if recipe is not None:
        from inti.train.launch import recipe_datasets

        data = recipe_datasets(recipe, train=False, views=args.views)[1]
        classes = data.num_classes
    else:
        _, data, classes = datasets(args, frames, cfg.image_size, cfg.num_classes or None, train=False)
    if cfg.num_classes and classes != cfg.num_classes:
        raise CLIError(f"the head of the weights has {cfg.num_classes} classes, the data {classes}")
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
        print(f"inti eval: {loaded.describe()} on {len(data)} clips, {frames} frames, views {args.views[0]}x{args.views[1]}")
        print(table(rows, ["metric", "value"], colalign=("left", "right")))
        verdict = "equal" if flops == 2 * matmul else "DIFFERENT"
        print(f"FlopCounterMode on one view: {flops:,} FLOPs = 2 x {flops // 2:,}; the cost model's matrix-product "
              f"MACs: {matmul:,} ({verdict})")
    return EXIT_OK


RECIPE_OWNS = {"frames": 8, "views": (1, 1), "batch_size": 8, "bf16": False, "list": None, "root": None, "synthetic_val": 128,
               "classes": None, "synthetic": None, "resize": None, "workers": 0, "skip_bad": False}


def protocol(args, cfg):
    """Read the recipe (with --set), check that it describes the weights' model, and put
    its test protocol on `args`; a flag the recipe owns is refused rather than ignored."""
    from inti.train.recipe import read_recipe, resolve

    given = [f"--{k.replace('_', '-')}" for k, default in RECIPE_OWNS.items() if getattr(args, k) != default]
    if given:
        raise CLIError(f"with --config the recipe sets {', '.join(given)}; change its fields with --set "
                       "(test.views=[4,3], frames=16, val_list=FILE, ...)")
    r = resolve(read_recipe(args.config, args.set))
    if cfg.replace(num_classes=r.model.num_classes) != cfg or cfg.schedule != r.model.schedule \
            or cfg.temporal != r.model.temporal or cfg.image_size != r.test["crop"]:
        raise CLIError(f"the model of the weights ({cfg.num_classes} classes, schedule {cfg.schedule}, temporal "
                       f"{cfg.temporal}, {cfg.image_size} px) is not the recipe's ({r.model.num_classes} classes, "
                       f"schedule {r.model.schedule}, temporal {r.model.temporal}, crop {r.test['crop']} px)")
    args.frames, args.views = r.recipe.values["model"]["frames"], r.test["views"]
    args.batch_size, args.bf16 = r.test["batch_size"], r.train.bf16
    return r


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", help="evaluate weights: top-1/5, mean class accuracy, MACs, clips/s, merge-weight statistics",
        description="Evaluate trained weights (a training checkpoint, a parameter file, any weights file) on "
                    "list-file data or a synthetic task.",
        epilog="example: inti eval --weights run/best.safetensors --list val.txt --root videos --views 4x3",
    )
    add_weights_arg(p, "the weights to evaluate: " + WEIGHTS_HELP, old_names=("--checkpoint",), required=True)
    p.add_argument("--config", metavar="RECIPE", default=None,
                   help="a recipe file (recipes/*.toml, or a run's recipe.toml): its test protocol and validation data")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a recipe field, such as test.views=[4,3] or val_list=val.txt (repeatable)")
    add_data_args(p, train=False)
    p.add_argument("--frames", type=positive_int, default=8, help="frames per view (default: 8)")
    p.add_argument("--views", type=parse_views, default=(1, 1), metavar="TxS",
                   help="temporal clips x spatial crops per video; softmax scores averaged (default: 1x1)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="videos per batch (default: 8)")
    p.add_argument("--seed", type=seed, default=0, help="the synthetic task's seed, as in training (default: 0)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    add_run_args(p, "cpu", "where to evaluate (default: cpu)")
    p.set_defaults(run=run)
    return p
