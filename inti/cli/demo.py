"""`inti demo`: a real clip through naive adaptation and InTI, in the NumPy spec and in PyTorch;
the parity, the MACs, the wall times, and four figures (the fourth: what the shipped trained
InTI learned, `learned`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import EXIT_OK, EXIT_PARITY, CLIError, add_model_args
from .parity import first_failure, format_macs_summary, format_parity, format_times, header, run_checked

DEFAULT_OUT = "inti-demo"
LEARNED = "fig4_learned.png"
LEARNED_CLIPS = 2


def learned(out: Path) -> tuple[Path | None, str]:
    """The shipped trained InTI (inti.assets) on generated test clips of the evidence
    experiment's informative-frames task, its contribution maps next to the untrained model's
    (the same backbone, θ at its initialization): (path, caption), or (None, why not)."""
    try:
        from inti.experiments.evidence.tasks import task_clip, to_input
    except ImportError as error:
        return None, f"skipped: {error}"
    import numpy as np

    import ref
    from inti.assets import trained_checkpoint
    from inti.figures import learned_figure
    from inti.io.params import load_params
    from inti.train.models import fit_params

    try:
        path = trained_checkpoint()
    except FileNotFoundError as error:
        return None, f"skipped: {error}"
    params, cfg = load_params(path)
    try:
        made = [task_clip("informative", "test", i) for i in range(LEARNED_CLIPS)]
    except ImportError as error:  # scikit-learn or scikit-image missing: the experiments extra
        return None, f"skipped: {error}"
    video = np.stack([to_input(frames) for frames, _, _ in made]).astype(np.float64)
    untrained = fit_params(params, cfg, cfg, seed=0, where=str(path), keep_new=False)

    def maps(p):
        logits, trace = ref.forward(p, video, cfg, return_trace=True)
        return ref.contributions([trace[f"merges.{j}.weights"] for j in range(len(cfg.schedule))]), logits

    trained_maps, logits = maps(params)
    untrained_maps, _ = maps(untrained)
    guesses = logits.argmax(-1)
    note = "Clips: " + "; ".join(f"clip {i}: digit {label}, the trained model says {int(guesses[i])}"
                                 for i, (_, label, _) in enumerate(made)) + f". Weights: the shipped {path.name}."
    out_path = learned_figure(video, trained_maps, untrained_maps, cfg, [info["digit_frames"] for _, _, info in made],
                              out / LEARNED, "What InTI learned: trained against untrained contribution maps "
                              "(informative frames: the digit shows in 2 of 8 frames)", note=note)
    return out_path, ("what training changed: the shipped trained InTI's contribution maps on generated clips "
                      "where the digit shows in 2 of 8 frames, above the untrained ones (uniform)")


def _uniform(results) -> bool:
    from inti.figures import is_uniform

    contrib = results["inti"].contributions.get("ref")
    return contrib is not None and is_uniform(contrib)


def run(args) -> int:
    from inti.figures import FIGURES, write_figures

    start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not args.force:
        shown = ", ".join(held[:4]) + (" ..." if len(held) > 4 else "")
        raise CLIError(
            f"--out {str(out)!r} already holds {len(held)} file(s) ({shown}); pass --force to replace "
            f"the demo's four figures in it (nothing else there is touched), or choose another --out"
        )
    if args.weights is not None:
        note = f"Weights from {Path(args.weights).name}."
    elif args.random_scores:
        note = "The score weights are random (--random-scores), not trained: the maps show the mechanism, not learned behaviour."
    else:
        note = None

    def figures(step, cfg, clip, results):
        paths = write_figures(out, clip=clip, cfg=cfg, frames=args.frames, results=results, note=note, step=step)
        with step("figure 4: what a trained InTI learned (the shipped checkpoint)"):
            extra["learned"] = learned(out)
        return paths

    extra = {}
    cfg, source, clip, results, paths = run_checked(args, "inti demo", extra_steps=len(FIGURES) + 1, then=figures)
    learned_path, learned_caption = extra["learned"]
    failure = first_failure(results)
    captions = {
        "compute": "where the compute goes: MACs per block, naive and InTI, merges marked",
        "contributions": "frame contributions, token by token (spec/00-method.md §6, the paper's Figure 4)"
        + (" -- uniform: the score layer is zero at init" if _uniform(results) else ""),
        "parity": "parity: relative error per trace entry, float64 and float32, against the tolerance",
    }
    print("\n".join([
        "inti demo: InTI on a real clip, the NumPy spec (ref) against PyTorch (torch_impl)",
        "",
        *header(args, cfg, source, clip),
        "",
        format_macs_summary(cfg, args.frames),
        "",
        format_times(results),
        "",
        format_parity(results),
        "",
        f"figures in {out}/",
        *[f"  {paths[k].name:<24}{captions[k]}" for k in paths],
        f"  {learned_path.name:<24}{learned_caption}" if learned_path else f"  {LEARNED:<24}{learned_caption}",
        "",
        f"done in {time.perf_counter() - start:.1f} s, not counting Python and torch start-up"
        + (f"; parity FAILED: {failure}" if failure else ""),
    ]))
    if failure:
        print(f"inti demo: parity failed: {failure}", file=sys.stderr)
        return EXIT_PARITY
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo", help="run naive and InTI through ref and torch on a real clip; write four figures",
        description="Decode and preprocess a clip, run naive adaptation and InTI through the NumPy spec "
                    "(float64) and PyTorch (float64, float32), print the parity, the MAC reduction and the "
                    "wall time of each path, and write four PNG figures (the fourth: the shipped trained "
                    "InTI's learned contribution maps against untrained ones).",
        epilog="examples: inti demo ; inti demo my_clip.mp4 --frames 16 ; inti demo --random-scores --out figs",
    )
    add_model_args(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the figures (default: {DEFAULT_OUT}/); it must be new or empty, unless --force")
    p.add_argument("--force", action="store_true",
                   help="replace the four figures in an --out folder that already holds files; "
                        "nothing else in it is touched")
    p.set_defaults(run=run)
    return p
