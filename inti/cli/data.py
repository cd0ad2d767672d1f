"""`inti data`: write a synthetic task to disk as lossless videos (FFV1 in Matroska) plus list
files, so that `inti train --train-list ... --root ...` reads it like any video dataset.

The folder is written whole or not at all (`inti.io.outdir.staged`): a failure leaves nothing
behind, so a retry is never blocked."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, add_out_args, positive_int, seed

SPLITS = ("train", "val")
OWN = (*SPLITS, *(f"{s}.txt" for s in SPLITS), "classes.txt")  # the task's files: videos per split, lists, names


def run(args) -> int:
    from inti.data.synthetic import CODEC, write_task
    from inti.io import outdir

    with outdir.staged(args.out, OWN, force=args.force, command="the task") as folder:
        written = write_task(folder, args.task, {"train": args.train, "val": args.val}, seed=args.seed,
                             frames=args.frames, size=args.size)
    lists = {split: Path(args.out) / path.name for split, path in written.items()}
    print(f"inti data: wrote {args.train} + {args.val} {args.task} clips ({args.frames} frames, {args.size} px, "
          f"{CODEC} in .mkv) to {args.out}/")
    for split, path in lists.items():
        print(f"  {split}: {path}")
    print(f"train on it: inti train --train-list {lists['train']} --val-list {lists['val']} --root {args.out} "
          f"--classes {args.out}/classes.txt --out run")
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("data", help="write a synthetic task to disk: lossless videos plus list files",
                       description="Write a synthetic task (inti.data.synthetic) as FFV1 Matroska videos, "
                                   "train.txt, val.txt and classes.txt.",
                       epilog="example: inti data informative --out task ; inti train --train-list task/train.txt "
                              "--val-list task/val.txt --root task --out run")
    p.add_argument("task", choices=("informative", "motion"), help="the synthetic task")
    p.add_argument("--train", type=positive_int, default=256, metavar="N", help="training clips (default: 256)")
    p.add_argument("--val", type=positive_int, default=128, metavar="N", help="validation clips (default: 128)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per clip (default: 16)")
    p.add_argument("--size", type=positive_int, default=64, help="frame side in pixels (default: 64)")
    p.add_argument("--seed", type=seed, default=0, help="the task's seed, in [0, 2**63 - 1] (default: 0)")
    add_out_args(p, None, "the task", "the task's files (train/, val/, train.txt, val.txt, classes.txt)")
    p.set_defaults(run=run)
    return p
