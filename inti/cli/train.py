"""`inti train`: fit InTI to list-file data or a synthetic task; checkpoints, metrics.jsonl and
training curves in --out. `torchrun --nproc-per-node N -m inti train ...` runs it with DDP."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ref.config import PRESETS

from .common import EXIT_OK, CLIError, needs, parse_schedule, positive_int

RUN_FILES = ("last.safetensors", "best.safetensors", "checkpoints", "metrics.jsonl", "curves.png")


def add_data_args(p: argparse.ArgumentParser, train: bool) -> None:
    """The data flags train and eval share: list files and root, or a synthetic task."""
    g = p.add_argument_group("data: list files (path label per line) under --root, or a synthetic task")
    if train:
        g.add_argument("--train-list", metavar="FILE", help="training clips: 'relative/path.mp4 label' per line")
    g.add_argument("--val-list" if train else "--list", metavar="FILE",
                   help="validation clips, the same format" if train else "clips to evaluate, 'relative/path.mp4 label' per line")
    g.add_argument("--root", metavar="DIR", help="the folder the list files' paths are relative to")
    g.add_argument("--classes", metavar="FILE", help="class names, one per line (line k names label k); fixes the class count")
    g.add_argument("--synthetic", choices=("informative", "motion"), default=None,
                   help="a synthetic task generated in memory instead of list files (inti.data.synthetic)")
    if train:
        g.add_argument("--synthetic-train", type=positive_int, default=256, metavar="N", help="synthetic training clips (default: 256)")
    g.add_argument("--synthetic-val", type=positive_int, default=128, metavar="N", help="synthetic validation clips (default: 128)")
    g.add_argument("--resize", type=positive_int, default=None, metavar="PX",
                   help="resize the short side to this before cropping (default: the model's image size)")
    g.add_argument("--workers", type=int, default=0, metavar="N", help="loader worker processes (default: 0)")
    g.add_argument("--skip-bad", action="store_true", help="log and skip clips that are missing, unreadable or too short")
    g.add_argument("--max-skip-fraction", type=skip_fraction, default=0.05, metavar="F",
                   help="with --skip-bad, stop when more than this share of the clips are bad, in [0, 1) (default: 0.05)")
    g.add_argument("--allow-outside-root", action="store_true",
                   help="accept list-file paths that leave --root (absolute, through .. or a symlink)")


def skip_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def datasets(args, frames: int, size: int, num_classes: int | None, train: bool):
    """(train dataset or None, validation dataset, class count)."""
    from inti.data.datasets import SyntheticVideos, VideoListDataset

    seed = args.seed
    common = dict(frames=frames, size=size, resize=args.resize, seed=seed)
    val_list = getattr(args, "val_list", None) if train else args.list
    if args.synthetic:
        if (getattr(args, "train_list", None) if train else None) or val_list:
            raise CLIError("--synthetic generates its own clips; pass it or list files, not both")
        tr = SyntheticVideos(args.synthetic, args.synthetic_train, train=True, split_seed=seed * 2 + 1, **common) if train else None
        va = SyntheticVideos(args.synthetic, args.synthetic_val, train=False, split_seed=seed * 2 + 2,
                             views=getattr(args, "views", (1, 1)), **common)
        return tr, va, va.num_classes
    needed = (["--train-list"] if train and not args.train_list else []) + ([] if val_list else ["--val-list" if train else "--list"])
    if needed or not args.root:
        raise CLIError(f"pass {', '.join(needed + ([] if args.root else ['--root']))}, or --synthetic TASK")
    lists = dict(root=args.root, classes=args.classes, num_classes=num_classes, skip_bad=args.skip_bad,
                 allow_outside_root=args.allow_outside_root, **common)
    tr = VideoListDataset(args.train_list, train=True, flip=not args.no_flip, **lists) if train else None
    va = VideoListDataset(val_list, train=False, views=getattr(args, "views", (1, 1)),
                          **dict(lists, num_classes=tr.num_classes if tr else num_classes))
    return tr, va, (tr or va).num_classes


def prepare_out(out: Path, resume: bool, force: bool) -> None:
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a folder")
    if resume:
        return
    if held and not force:
        raise CLIError(f"--out {str(out)!r} already holds {', '.join(held[:5])}; pass --resume to continue that run, "
                       "--force to replace its run files, or choose another --out")
    for name in RUN_FILES:  # --force: only the files a run writes
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run(args) -> int:
    import torch

    from inti.train import TrainConfig, fit
    from inti.train.distributed import setup, teardown
    from inti.train.loop import TrainingStopped
    from inti.train.models import build

    if args.preset and args.pretrained:
        raise CLIError("--preset and --pretrained both choose the model; pass one of them")
    try:
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, accum=args.accum, lr=args.lr,
                         warmup_steps=args.warmup, weight_decay=args.weight_decay, clip_grad=args.clip_grad or None,
                         label_smoothing=args.label_smoothing, bf16=args.bf16, freeze_backbone=args.freeze_backbone,
                         lr_theta=args.lr_theta, lr_head=args.lr_head, lr_backbone=args.lr_backbone,
                         lr_temporal=args.lr_temporal, seed=args.seed, eval_every=args.eval_every,
                         log_every=args.log_every)
    except ValueError as e:
        raise CLIError(f"bad training recipe: {e}") from None
    if args.stop_after is not None and args.stop_after < 1:
        raise CLIError(f"--stop-after must be a positive integer, got {args.stop_after}")
    out = Path(args.out)
    world = setup(args.device)
    if world.main:
        prepare_out(out, args.resume, args.force)
    base = PRESETS[args.preset or "nano"]
    size = base.image_size
    if args.pretrained:  # the image size comes from the weights; read it before building the data
        from inti.train.models import load_pretrained

        size = load_pretrained(args.pretrained)[1].image_size
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
    model, cfg, source = build(make_cfg, args.seed, args.pretrained, base=base)
    data_config = {"frames": args.frames, "size": size, "resize": args.resize, "synthetic": args.synthetic,
                   "train_list": args.train_list, "val_list": args.val_list, "root": args.root,
                   "classes": classes, "seed": args.seed}
    say = print if world.main else (lambda *a, **k: None)
    say(f"inti train: {cfg.width}-wide, {cfg.depth}-block ViT at {cfg.image_size} px, schedule {cfg.schedule}, "
        f"{classes} classes, {len(train_data)} training clips of {args.frames} frames; weights: {source}")
    tqdm = needs("tqdm", "cli").tqdm
    bar = tqdm(total=min(args.stop_after or tc.steps, tc.steps), desc="inti train", disable=True if (not world.main or args.quiet) else None,
               dynamic_ncols=True)
    if args.resume:
        bar.close()
        bar = tqdm(total=tc.steps, desc="inti train (resumed)", disable=True if (not world.main or args.quiet) else None, dynamic_ncols=True)

    def progress(step, loss, lr, rate):
        bar.n = step
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}", refresh=False)
        bar.refresh()

    try:
        history = fit(model, train_data, val_data, tc, out=out, world=world, workers=args.workers, resume=args.resume,
                      stop_after=args.stop_after, data_config=data_config, progress=progress, say=say,
                      max_skip_fraction=args.max_skip_fraction)
    except TrainingStopped as e:  # expected for bad data or a diverging run: one line, exit 2
        raise CLIError(str(e)) from None
    finally:
        bar.close()
        teardown(world)
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
        epilog="example: inti train --synthetic informative --out run ; inti eval --checkpoint run/best.safetensors "
               "--synthetic informative",
    )
    add_data_args(p, train=True)
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=sorted(PRESETS), default=None, help="model preset with fresh weights (default: nano)")
    g.add_argument("--pretrained", metavar="NAME_OR_FILE", default=None,
                   help="pretrained weights: an inti parameter file or checkpoint, a timm/CLIP/open_clip checkpoint "
                        "file, or a timm model name whose weights timm holds locally (nothing is downloaded)")
    g.add_argument("--frames", type=positive_int, default=8, help="frames per clip, a multiple of 2^|S| (default: 8)")
    g.add_argument("--schedule", default=None, metavar="S", help="blocks after which to merge: 2, 8,20 or none (default: the preset's)")
    g.add_argument("--temporal", default=None, metavar="NAME",
                   help="add temporal modules (spec/08): st_adapter, st_adapter_12x384, st_adapter_24x384, aim; "
                        "with --freeze-backbone only they, θ and the head train")
    g = p.add_argument_group("recipe")
    g.add_argument("--steps", type=positive_int, default=150, help="optimizer steps (default: 150)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="clips per step, over all processes (default: 16)")
    g.add_argument("--accum", type=positive_int, default=1, help="gradient accumulation micro-batches per step (default: 1)")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    g.add_argument("--warmup", type=int, default=15, help="linear warmup steps (default: 15)")
    g.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay on matrices (default: 0.05)")
    g.add_argument("--clip-grad", type=float, default=1.0, help="max gradient norm; 0 turns clipping off (default: 1.0)")
    g.add_argument("--label-smoothing", type=float, default=0.0, help="(default: 0)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the forward")
    g.add_argument("--freeze-backbone", action="store_true", help="train only θ, the head and temporal modules")
    for group, text in (("theta", "θ (merges.*)"), ("head", "the head"), ("backbone", "the backbone"),
                        ("temporal", "temporal modules")):
        g.add_argument(f"--lr-{group}", type=float, default=1.0, metavar="X", help=f"lr multiplier of {text} (default: 1)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal flips in training (list-file data)")
    g.add_argument("--seed", type=int, default=0, help="weights, data order and augmentation (default: 0)")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="DIR", help="the run folder: checkpoints, metrics.jsonl, curves.png")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its newest loadable checkpoint")
    g.add_argument("--force", action="store_true", help="replace the run files of an earlier run in --out")
    g.add_argument("--stop-after", type=int, default=None, metavar="K",
                   help="end after K steps with a checkpoint, as a preempted job; the schedule still spans --steps")
    g.add_argument("--eval-every", type=int, default=50, metavar="N", help="evaluate and checkpoint every N steps (default: 50)")
    g.add_argument("--log-every", type=int, default=10, metavar="N", help="a metrics line every N steps (default: 10)")
    g.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p
