"""`inti demo`: a real clip through naive adaptation and InTI, in the NumPy spec and in PyTorch;
the parity, the MACs, the wall times, and four figures. The fourth shows what a trained InTI
learned: the shipped model (`inti.assets`) on its bundled test clips, or the model of
``--weights`` on the demo's clip."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import EXIT_OK, EXIT_PARITY, add_model_args, add_out_args, clip_label, model_from_args
from .report import format_macs_summary, format_parity, format_times, header, needs, parity_failure, progress

DEFAULT_OUT = "inti-demo"
DTYPES = ("float64", "float32")
REPEATS, THREADS = 5, 1  # the wall times: the median of REPEATS forwards after a warm-up, on THREADS threads
REQUIRES = ("torch", "matplotlib", "av", "skvideo", "tqdm", "tabulate", "threadpoolctl")  # each names its extra


def run(args) -> int:
    from inti.figures import FIGURES, LEARNED, write_figures
    from inti.io import outdir

    start = time.perf_counter()
    own = (*FIGURES.values(), LEARNED)
    outdir.check(args.out, own, force=args.force, command="the demo")  # before any work
    for name in REQUIRES:
        needs(name)
    cfg, params, source = model_from_args(args)
    from inti.io.clips import load_clip
    from inti.parity import run_both, steps_per_run
    from inti.walltime import forward_times

    steps = 1 + 2 * steps_per_run(DTYPES) + 1 + len(FIGURES) + 1
    with progress("inti demo", total=steps, mode=args.progress) as step, \
            outdir.staged(args.out, own, force=args.force, command="the demo") as folder:
        with step(f"decode and preprocess {Path(str(args.video)).name if args.video else 'the bundled clip'}"):
            clip = load_clip(args.video, frames=args.frames, size=cfg.image_size)  # (T0, 3, H, W)
        results = run_both(clip[None], params, cfg, DTYPES, step=step, attn_path=args.attn)
        with step(f"wall times: the median of {REPEATS} forwards per path"):
            times = forward_times(clip[None], params, cfg, DTYPES, repeats=REPEATS, threads=THREADS, attn_path=args.attn)
        paths = write_figures(folder, clip=clip, cfg=cfg, frames=args.frames, results=results, note=_note(args), step=step)
        with step("figure 4: what a trained InTI learned"):
            learned, learned_caption = _learned(folder / LEARNED, args, params, cfg, clip)
    failure = parity_failure(results)
    out = Path(args.out)
    print("\n".join([
        "inti demo: InTI on a real clip, the NumPy spec (ref) against PyTorch (torch_impl)",
        "",
        *header(clip_label(args.video), cfg, source, clip),
        "",
        format_macs_summary(cfg, args.frames),
        "",
        format_times(times, REPEATS, THREADS),
        "",
        format_parity(results),
        "",
        f"figures in {out}/",
        *[f"  {path.name:<24}{_caption(key, results)}" for key, path in paths.items()],
        f"  {LEARNED:<24}{learned_caption}",
        "",
        f"done in {time.perf_counter() - start:.1f} s, not counting Python and torch start-up"
        + (f"; parity FAILED: {failure}" if failure else ""),
    ]))
    if failure:
        print(f"inti demo: parity failed: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def _note(args) -> str | None:
    """The line figure 2's caption adds about the weights."""
    if args.weights is not None:
        return f"Weights from {Path(args.weights).name}."
    if args.random_scores:
        return "The score weights are random (--random-scores), not trained: the maps show the mechanism, not learned behaviour."
    return None


def _caption(key: str, results) -> str:
    from inti.figures import is_uniform

    contrib = results["inti"].contributions.get("ref")
    uniform = contrib is not None and is_uniform(contrib)
    return {
        "compute": "where the compute goes: MACs per block, naive and InTI, merges marked",
        "contributions": "frame contributions, token by token (spec/00-method.md §6, the paper's Figure 4)"
        + (" -- uniform: the score layer is zero at init" if uniform else ""),
        "parity": "parity: relative error per trace entry, float64 and float32, against the tolerance",
    }[key]


def _learned(path: Path, args, params, cfg, clip) -> tuple[Path | None, str]:
    """Figure 4: trained contribution maps above untrained ones (θ at its initialization).
    With --weights, that model on the demo's clip; without, the shipped trained InTI
    (`inti.assets`) on its bundled test clips. (path, caption), or (None, why not)."""
    from inti import assets
    from inti.figures import has_predictor, learned_figure, learned_maps

    if args.weights is not None:
        name = Path(args.weights).name
        if not has_predictor(params):
            return None, f"skipped: the weights in {name} have no learned predictor (no merges, or weight_fn 'mean')"
        scores = " with random score weights (--random-scores)" if args.random_scores else ""
        videos, marked, weights = clip[None], [[]], f"--weights {name}{scores}"
        what = f"the model of --weights {name}{scores} on this clip"
    else:
        try:
            from inti.io.params import load_params

            params, cfg = load_params(assets.trained_weights())
            frames, labels, marked = assets.sample_clips()
        except FileNotFoundError as error:
            return None, f"skipped: {error}"
        videos, weights = assets.to_model_input(frames), f"the shipped {assets.TRAINED} (inti.assets)"
        what = f"the shipped trained InTI ({assets.TRAINED}, inti.assets) on its {len(frames)} bundled test clips"
    trained, untrained, logits = learned_maps(params, cfg, videos)
    note = f"Weights: {weights}."
    if args.weights is None:
        guesses = logits.argmax(-1)
        note = "Clips: " + "; ".join(f"clip {i}: digit {int(label)}, the trained model says {int(guesses[i])}"
                                     for i, label in enumerate(labels)) + ". " + note
    title = "What InTI learned: trained against untrained contribution maps" + (
        "" if args.weights is not None else " (informative frames: the digit shows in 2 of 8 frames)")
    learned_figure(videos, trained, untrained, cfg, marked, path, title, note=note,
                   marked_meaning=None if args.weights is not None else "the frames that show the digit")
    return path, f"what training changed: {what}, trained maps above untrained ones (θ at its initialization)"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo", help="run naive and InTI through ref and torch on a real clip; write four figures",
        description="Decode and preprocess a clip, run naive adaptation and InTI through the NumPy spec "
                    "(float64) and PyTorch (float64, float32), print the parity, the MAC reduction and the "
                    "wall time of each path, and write four PNG figures (the fourth: what a trained InTI "
                    "learned, from the shipped model or from --weights).",
        epilog="examples: inti demo ; inti demo my_clip.mp4 --frames 16 ; inti demo --weights run/best.safetensors "
               "--out figs",
    )
    add_model_args(p)
    add_out_args(p, DEFAULT_OUT, "the figures", "the demo's four figures")
    p.set_defaults(run=run)
    return p
