"""`inti data`: write a synthetic task to disk as lossless videos (FFV1 in Matroska) plus list
files, so that `inti train --train-list ... --root ...` reads it like any video dataset."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, positive_int


def run(args) -> int:
    from inti.data.synthetic import CODEC, write_task

    lists = write_task(args.out, args.task, {"train": args.train, "val": args.val}, seed=args.seed,
                       frames=args.frames, size=args.size, force=args.force)
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
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (new or empty, unless --force)")
    p.add_argument("--train", type=positive_int, default=256, metavar="N", help="training clips (default: 256)")
    p.add_argument("--val", type=positive_int, default=128, metavar="N", help="validation clips (default: 128)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per clip (default: 16)")
    p.add_argument("--size", type=positive_int, default=64, help="frame side in pixels (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--force", action="store_true", help="replace the task's files in a folder that holds files")
    p.set_defaults(run=run)
    return p
