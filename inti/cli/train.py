"""`inti train`: fit InTI to list-file data or a synthetic task; checkpoints, metrics.jsonl and
training curves in --out. `torchrun --nproc-per-node N -m inti train ...` runs it with DDP.

`--config RECIPE` trains a recipe file (recipes/*.toml, `inti.train.recipe`): every setting
comes from it, `--set key=value` changes any field, `--dry-run` resolves it without data or
weights and prints the report of `inti.train.dryrun`, and the run folder keeps the resolved
recipe as recipe.toml, so `--config OUT/recipe.toml` reruns the run."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ..registry import list_models, named_config
from .common import (DEFAULT_SKIP_FRACTION, EXIT_OK, CLIError, add_data_args, add_out_args, add_run_args, add_weights_arg,
                     datasets, non_negative_int, parse_schedule, positive_int, real, schedule_arg, seed)
from .report import needs


@contextlib.contextmanager
def cleaned_up_on_failure(out: Path, created: bool, mine: bool, own):
    """A run that fails before its first checkpoint leaves nothing behind (its metrics, its
    recipe.toml, the folder it made), so that the retry is not refused; once a checkpoint is
    written, everything stays: the retry is --resume. `mine`: this process made the run."""
    try:
        yield
    except BaseException:
        from inti.train.checkpoint import candidates

        if mine and out.is_dir() and not candidates(out):
            for name in own:
                path = out / name
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
                elif path.is_file():
                    path.unlink()
            if created and not any(out.iterdir()):
                out.rmdir()
        raise


@contextlib.contextmanager
def training(out: Path, created: bool, world, args, total: int, desc: str = "inti train"):
    """Around a run, for both of train's paths: tqdm's bar on the main process (none elsewhere or
    with --quiet), given to the body as fit's `progress` callback; the run's folder cleaned up if
    it fails before its first checkpoint; a stopped run (bad data, divergence) as one CLI error
    line; the bar closed and the process group torn down however the run ends."""
    from inti.train.checkpoint import RUN_FILES
    from inti.train.distributed import teardown
    from inti.train.loop import TrainingStopped

    bar = needs("tqdm").tqdm(total=total, desc=desc, disable=True if (not world.main or args.quiet) else None,
                             dynamic_ncols=True)

    def progress(step, loss, lr, rate):
        bar.n = step
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}", refresh=False)
        bar.refresh()

    try:
        with cleaned_up_on_failure(out, created, world.main and not args.resume, RUN_FILES):
            yield progress
    except TrainingStopped as e:  # bad data or a diverging run: one line, exit 2
        raise CLIError(str(e)) from None
    finally:
        bar.close()
        teardown(world)


def run_recipe(args) -> int:
    """`inti train --config RECIPE [--set k=v ...] [--dry-run]`."""
    from inti.io import outdir
    from inti.train import dryrun, launch
    from inti.train.checkpoint import RUN_FILES
    from inti.train.distributed import setup
    from inti.train.recipe import read_recipe, resolve

    given = [f"--{k.replace('_', '-')}" for k, default in args.recipe_owns.items() if getattr(args, k) != default]
    if args.max_skip_fraction != DEFAULT_SKIP_FRACTION or args.allow_outside_root:
        raise CLIError("--max-skip-fraction and --allow-outside-root are not recipe fields: a --config run keeps "
                       f"the default bound ({DEFAULT_SKIP_FRACTION:g}) and the root rule")
    if given:
        raise CLIError(f"with --config the recipe sets {', '.join(given)}; change its fields with --set KEY=VALUE")
    recipe = read_recipe(args.config, args.set)
    r = resolve(recipe, None if args.dry_run else launch.train_clip_count(recipe))
    if args.dry_run:
        print(dryrun.report(r))
        missing = dryrun.problems(r)
        if missing:
            raise CLIError("the recipe names files that are not there: " + "; ".join(missing))
        return EXIT_OK
    if not args.out:
        raise CLIError("pass --out DIR, the run folder (or --dry-run)")
    out = Path(args.out)
    policy = dict(force=args.force, command="the run", hint="pass --resume to continue that run, ")
    if not args.resume:  # a resumed run continues in its own folder
        outdir.check(out, RUN_FILES, **policy)  # before any work; nothing is removed until the run can start
    world = setup(args.device or r.recipe.values["run"]["device"], timeout_s=args.dist_timeout)
    created = not out.exists()
    if world.main and not args.resume:
        outdir.prepare(out, RUN_FILES, **policy)  # --force: the earlier run's files go, and only they
    say = print if world.main else (lambda *a, **k: None)
    with training(out, created, world, args, total=min(args.stop_after or r.train.steps, r.train.steps)) as progress:
        launch.run(r, out, world=world, resume=args.resume, stop_after=args.stop_after, progress=progress, say=say)
    say(f"checkpoints in {out}/ (last.safetensors, best.safetensors, checkpoints/), metrics in {out}/metrics.jsonl, "
        f"the resolved recipe in {out}/recipe.toml")
    return EXIT_OK


def run(args) -> int:
    import torch

    if args.config:
        return run_recipe(args)
    if args.set or args.dry_run:
        raise CLIError("--set and --dry-run act on a recipe: pass it with --config FILE")
    if not args.out:
        raise CLIError("the following arguments are required: --out (or --config RECIPE --dry-run)")

    from inti.io import outdir
    from inti.train import TrainConfig, fit
    from inti.train.checkpoint import RUN_FILES
    from inti.train.distributed import setup
    from inti.train.models import build, load_pretrained

    if args.preset and args.weights:
        raise CLIError("--preset and --weights both choose the model; pass one of them")
    try:
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, accum=args.accum, lr=args.lr,
                         warmup_steps=args.warmup, weight_decay=args.weight_decay, clip_grad=args.clip_grad or None,
                         label_smoothing=args.label_smoothing, bf16=args.bf16, freeze_backbone=args.freeze_backbone,
                         lr_theta=args.lr_theta, lr_head=args.lr_head, lr_backbone=args.lr_backbone,
                         lr_temporal=args.lr_temporal, seed=args.seed, eval_every=args.eval_every,
                         log_every=args.log_every)
    except ValueError as e:
        raise CLIError(f"bad training recipe: {e}") from None
    out = Path(args.out)
    world = setup(args.device or "cpu", timeout_s=args.dist_timeout)
    policy = dict(force=args.force, command="the run", hint="pass --resume to continue that run, ")
    if world.main and not args.resume:  # a resumed run continues in its own folder
        outdir.check(out, RUN_FILES, **policy)  # before any work; nothing is removed until the run can start
    base = named_config(args.preset or "nano")
    size = base.image_size
    pretrained = load_pretrained(args.weights) if args.weights else None  # (params, cfg, where from)
    if pretrained is not None:  # the image size comes from the weights; read it before building the data
        size = pretrained[1].image_size
    train_data, val_data, classes = datasets(args, args.frames, size, None, train=True)

    def make_cfg(source):
        changes = {"num_classes": classes}
        if args.schedule is not None:
            changes["schedule"] = parse_schedule(args.schedule)
        try:
            cfg = source.replace(**changes)
            if args.temporal is not None:
                from ref.config import with_temporal

                cfg = with_temporal(cfg, args.temporal, frames=args.frames)
            from ref.checks import check_frames

            check_frames(args.frames, cfg)
        except ValueError as e:
            raise CLIError(f"the model cannot take this run: {e}") from None
        return cfg

    torch.manual_seed(args.seed)
    model, cfg, source = build(make_cfg, args.seed, pretrained, base=base)
    created = not out.exists()
    if world.main and not args.resume:
        outdir.prepare(out, RUN_FILES, **policy)  # --force: the earlier run's files go now, and only they
    data_config = {"frames": args.frames, "size": size, "resize": args.resize, "synthetic": args.synthetic,
                   "train_list": args.train_list, "val_list": args.val_list, "root": args.root,
                   "classes": classes, "seed": args.seed}
    say = print if world.main else (lambda *a, **k: None)
    say(f"inti train: {cfg.width}-wide, {cfg.depth}-block ViT at {cfg.image_size} px, schedule {cfg.schedule}, "
        f"{classes} classes, {len(train_data)} training clips of {args.frames} frames; weights: {source}")
    total = tc.steps if args.resume else min(args.stop_after or tc.steps, tc.steps)
    with training(out, created, world, args, total, "inti train (resumed)" if args.resume else "inti train") as progress:
        history = fit(model, train_data, val_data, tc, out=out, world=world, workers=args.workers,
                      resume=args.resume, stop_after=args.stop_after, data_config=data_config, progress=progress,
                      say=say, max_skip_fraction=args.max_skip_fraction)
    evals = [r["eval"] for r in history if "eval" in r]
    if evals:
        last = evals[-1]
        say("final evaluation: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in last.items()))
    steps = [r for r in history if "skipped_total" in r]
    if steps and steps[-1]["skipped_total"]:
        say(f"bad clips skipped in training: {steps[-1]['skipped_total']} times, {steps[-1]['bad_clips']} distinct "
            f"(--skip-bad, at most {args.max_skip_fraction:g} of the clips); in the last evaluation: "
            f"{evals[-1]['skipped'] if evals else 0}")
    say(f"checkpoints in {out}/ (last.safetensors, best.safetensors, checkpoints/), metrics in {out}/metrics.jsonl")
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train InTI (θ, the head, and the backbone unless frozen) on list files or a synthetic task",
        description="Train InTI with AdamW, warmup and cosine decay, on list-file video data or a synthetic task. "
                    "Checkpoints resume exactly (--resume); torchrun --nproc-per-node N -m inti train ... runs DDP.",
        epilog="example: inti train --synthetic informative --out run ; inti eval --weights run/best.safetensors "
               "--synthetic informative",
    )
    g = p.add_argument_group("recipe file: every setting from one TOML file (recipes/)")
    g.add_argument("--config", metavar="RECIPE", default=None,
                   help="a recipe file: model, data, augmentation, optimizer, toolkit and test protocol")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a recipe field: section.key or a key one table holds (frames=16, optim.lr=3e-4, "
                        "weights=ViT-B-16.pt); repeatable")
    g.add_argument("--dry-run", action="store_true",
                   help="resolve the recipe without data or weights: the final config, MACs, parameters, memory, file checks")
    add_data_args(p, train=True)
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=list_models(), default=None, help="model preset with fresh weights (default: nano)")
    add_weights_arg(g, "the weights to start from: any weights file (an inti parameter file or training checkpoint, "
                       "a timm / OpenAI CLIP / open_clip state dict or TorchScript archive), or a timm model name whose "
                       "weights timm holds locally (nothing is downloaded); default: fresh weights",
                    old_names=("--pretrained",), metavar="FILE_OR_NAME")
    g.add_argument("--frames", type=positive_int, default=8, help="frames per clip, a multiple of 2^|S| (default: 8)")
    g.add_argument("--schedule", type=schedule_arg, default=None, metavar="S",
                   help="blocks after which to merge: 2, 8,20 or none (default: the preset's)")
    g.add_argument("--temporal", default=None, metavar="NAME",
                   help="add temporal modules (spec/08): st_adapter, st_adapter_12x384, st_adapter_24x384, aim; "
                        "with --freeze-backbone only they, θ and the head train")
    g = p.add_argument_group("recipe")
    g.add_argument("--steps", type=positive_int, default=150, help="optimizer steps (default: 150)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="clips per step, over all processes (default: 16)")
    g.add_argument("--accum", type=positive_int, default=1, help="gradient accumulation micro-batches per step (default: 1)")
    g.add_argument("--lr", type=real(0, open_lo=True), default=2e-3, help="peak learning rate (default: 2e-3)")
    g.add_argument("--warmup", type=non_negative_int, default=15, help="linear warmup steps (default: 15)")
    g.add_argument("--weight-decay", type=real(0), default=0.05, help="AdamW weight decay on matrices (default: 0.05)")
    g.add_argument("--clip-grad", type=real(0), default=1.0, help="max gradient norm; 0 turns clipping off (default: 1.0)")
    g.add_argument("--label-smoothing", type=real(0, 1), default=0.0, help="in [0, 1] (default: 0)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the forward")
    g.add_argument("--freeze-backbone", action="store_true", help="train only θ, the head and temporal modules")
    for group, text in (("theta", "θ (merges.*)"), ("head", "the head"), ("backbone", "the backbone"),
                        ("temporal", "temporal modules")):
        g.add_argument(f"--lr-{group}", type=real(0), default=1.0, metavar="X", help=f"lr multiplier of {text} (default: 1)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal flips in training (list-file data)")
    g.add_argument("--seed", type=seed, default=0, help="weights, data order and augmentation, in [0, 2**63 - 1] (default: 0)")
    g = p.add_argument_group("run")
    add_out_args(g, None, "the run (checkpoints, metrics.jsonl, curves.png; recipe.toml with --config)",
                 "the run files of an earlier run (last/best.safetensors, checkpoints/, metrics.jsonl, curves.png, "
                 "recipe.toml)", required=False)  # --config --dry-run writes nothing
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its newest loadable checkpoint")
    g.add_argument("--stop-after", type=positive_int, default=None, metavar="K",
                   help="end after K steps with a checkpoint, as a preempted job; the schedule still spans --steps")
    g.add_argument("--eval-every", type=non_negative_int, default=50, metavar="N",
                   help="evaluate and checkpoint every N steps; 0: only at the end (default: 50)")
    g.add_argument("--log-every", type=non_negative_int, default=10, metavar="N",
                   help="a metrics line every N steps; 0: every step (default: 10)")
    add_run_args(g, None, "cpu by default; with --config, the recipe's run.device")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    owned = ("train_list", "val_list", "root", "classes", "synthetic", "synthetic_train", "synthetic_val", "resize",
             "workers", "skip_bad", "preset",
             "weights", "frames", "schedule", "temporal", "steps", "batch_size", "accum", "lr", "warmup",
             "weight_decay", "clip_grad", "label_smoothing", "bf16", "freeze_backbone", "lr_theta", "lr_head",
             "lr_backbone", "lr_temporal", "no_flip", "seed", "eval_every", "log_every")
    p.set_defaults(run=run, recipe_owns={k: p.get_default(k) for k in owned})
    return p
