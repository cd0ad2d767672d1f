"""`inti predict`: classify videos with trained weights; the top k classes, the MACs per clip,
the wall time; one JSON line per video with --json; what the model looked at with --explain.

Exit status: 0 every video classified; 2 nothing ran (a usage error, a weights file that cannot
be read or has no head, a bad --classes file, a folder without videos, an --explain folder in
use); 3 some videos failed (each said why in one line on stderr), the others were classified.
The library behind it is `inti.predict` (the views, the softmax, the bounds) and `inti.explain`
(the sheet and the animation)."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from pathlib import Path

from inti.predict import (MAX_FRAMES, MAX_VIDEOS, central_view, check_classifier, list_videos, macs_per_clip, predict,
                          read_class_names, top_k)  # no torch at import: the model is built in `run`

from .common import (EXIT_OK, EXIT_SOME_FAILED, MAX_VIEWS, WEIGHTS_HELP, CLIError, add_weights_arg, parse_views,
                     positive_int)
from .report import needs, table

REQUIRES = ("torch", "av", "tabulate")  # and, with --explain, matplotlib


def run(args) -> int:
    from inti.io import outdir
    from inti.labels import describe, mac_unit, schedule_text

    start = time.perf_counter()
    try:
        videos = list_videos(args.video)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.force and not args.explain:
        raise CLIError("--force replaces the files of an --explain folder; without --explain it does nothing")
    stems, animations = [None] * len(videos), [None] * len(videos)
    if args.explain:  # the folder's own files are known, and the policy checked, before any work
        from inti.explain import animation_suffix

        needs("matplotlib")
        stems = _explain_names(videos)
        animations = [stem + animation_suffix() for stem in stems]
        own = [name for stem, animation in zip(stems, animations) for name in (stem + ".png", animation)]
        outdir.check(args.explain, own, force=args.force, flag="--explain", command="inti predict")
    for name in REQUIRES:
        needs(name)
    loaded, classes = _model(args)
    cfg = loaded.cfg
    from torch_impl import from_ref_params

    model = from_ref_params(loaded.params, cfg, dtype="float32").eval()
    macs = macs_per_clip(cfg, args.frames, args.views)
    if not args.json:
        div, prefix = mac_unit(macs)
        views = args.views[0] * args.views[1]
        print(f"inti predict: {len(videos)} video{'s' if len(videos) > 1 else ''} with {loaded.describe()}")
        print(f"model    {describe(cfg)}; {schedule_text(cfg.schedule)}; {cfg.num_classes} classes"
              + ("" if classes else " (named by index; --classes FILE names them)"))
        print(f"cost     {macs / div:.3g} {prefix}MACs per clip ({views} view{'s' if views > 1 else ''} "
              f"{args.views[0]}x{args.views[1]} of {args.frames} frames; the cost model, spec/00-method.md §4)")
    staged = outdir.staged(args.explain, own, force=args.force, flag="--explain", command="inti predict") \
        if args.explain else contextlib.nullcontext()
    failed = 0
    with staged as folder:  # with --explain, the files move into place when every video has run
        for video, stem, animation in zip(videos, stems, animations):
            failed += not _one(args, model, cfg, classes, video, macs, folder, stem, animation)
    if not args.json:
        done = len(videos) - failed
        print(f"\ndone: {done} of {len(videos)} video{'s' if len(videos) > 1 else ''} classified"
              + (f", {failed} failed (their errors are on stderr)" if failed else "")
              + (f"; maps in {args.explain}/" if args.explain and done else "")
              + f"; {time.perf_counter() - start:.1f} s in all, weights loading included")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _model(args):
    """(the loaded weights, the class names or None), every check made before any video."""
    from inti.io.weights import load

    loaded = load(args.weights)
    cfg = loaded.cfg
    try:
        check_classifier(cfg, args.frames, f"weights file {str(loaded.path)!r}")
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.topk > cfg.num_classes:
        raise CLIError(f"--topk {args.topk} is more than the {cfg.num_classes} classes of the model")
    if args.explain and not cfg.schedule:
        raise CLIError("--explain draws the frame contributions of the merges, but this model has none (empty "
                       "schedule)")
    classes = read_class_names(args.classes, cfg.num_classes) if args.classes else None
    return loaded, classes


def _one(args, model, cfg, classes, video: Path, macs: int, folder, stem, animation) -> bool:
    """Classify one video and report it; False (after one line on stderr) when it failed."""
    try:
        result = predict(model, video, frames=args.frames, views=args.views, explain=folder is not None)
    except (ValueError, OSError) as e:  # the video's fault (missing, unreadable, too short): the others go on
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"inti predict: error: {why}", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps({"video": str(video), "ok": False, "error": why}), flush=True)
        return False
    best = top_k(result.probabilities, args.topk, classes)
    explained = None
    if folder is not None:
        explained = _explain(args, cfg, result, best[0], folder, stem, animation)
    if args.json:
        line = {"video": str(video), "ok": True, "top": best, "frames": args.frames, "views": list(args.views),
                "macs_per_clip": macs, "seconds": round(result.seconds, 4)}
        if explained:
            line["explain"] = explained
        print(json.dumps(line), flush=True)
        return True
    rows = [[str(b["rank"]), b["class"], f"{b['probability']:.4f}"] for b in best]
    print(f"\n{video}  ({result.seconds:.2f} s)")
    print(table(rows, ["rank", "class", "probability"], colalign=("right", "left", "right")))
    if explained:
        print(f"explain  {explained['sheet']}, {explained['animation']} ({explained['maps']} maps)")
    sys.stdout.flush()  # each video's answer before the next one's errors on stderr
    return True


def _explain(args, cfg, result, best, folder, stem, animation) -> dict:
    """The sheet and the animation of one video into the staged folder; their final paths."""
    from inti import explain

    t, s = central_view(result.views)
    which = "" if result.views == (1, 1) else (f"; the central view: temporal clip {t + 1} of {result.views[0]}, "
                                                f"crop {s + 1} of {result.views[1]}")
    title = (f"{result.video.name}: {best['class']} ({best['probability']:.1%}) - what InTI looked at "
             f"({result.frames} frames{which})")
    note = f"Weights: {Path(args.weights).name}."
    explain.sheet(result.clip, result.contributions, cfg, Path(folder) / f"{stem}.png", title, note)
    explain.animation(result.clip, result.contributions, cfg, Path(folder) / animation, title)
    out = Path(args.explain)
    return {"sheet": str(out / f"{stem}.png"), "animation": str(out / animation),
            "maps": explain.maps_kind(result.contributions)}


def _explain_names(videos) -> list[str]:
    """One file stem a video, from its name: characters other than letters, digits, '.', '_'
    and '-' become '_', at most 80 of them; a repeated stem gets -2, -3, ..."""
    names, seen = [], set()
    for video in videos:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(video).stem)[:80].lstrip(".") or "video"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}-{k}"
        seen.add(name)
        names.append(name)
    return names


def frames_arg(text: str) -> int:
    value = positive_int(text)
    if value > MAX_FRAMES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_FRAMES}, got {value}")
    return value


class Videos(argparse.Action):
    """The positional VIDEO list, refused at parse time past MAX_VIDEOS."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) > MAX_VIDEOS:
            parser.error(f"at most {MAX_VIDEOS:,} videos a run, got {len(values):,}")
        setattr(namespace, self.dest, values)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict", help="classify videos with trained weights: top-k classes, MACs, wall time; --explain draws the maps",
        description="Classify one or more videos (or every video in a folder) with trained InTI weights: the top-k "
                    "classes with their probabilities (the softmax, averaged over --views), the MACs per clip and "
                    "the wall time. Exit status: 0 all classified; 2 nothing ran (usage, weights, --classes); "
                    "3 some videos failed, the others were classified.",
        epilog="examples: inti predict clip.mp4 --weights run/best.safetensors --classes classes.txt ; "
               "inti predict videos/ --weights w.safetensors --json ; "
               "inti predict clip.mp4 --weights w.safetensors --views 4x3 --explain maps",
    )
    p.add_argument("video", nargs="+", action=Videos, metavar="VIDEO",
                   help=f"a video file PyAV can read, a folder (its video files, not recursive), or the name of a "
                        f"bundled clip (bikes.mp4); at most {MAX_VIDEOS:,} videos in all")
    add_weights_arg(p, "the trained weights, with a classification head: " + WEIGHTS_HELP, required=True)
    p.add_argument("--classes", metavar="FILE", default=None,
                   help="class names, one a line (line k names class k), as many as the head has classes "
                        "(default: the class indices)")
    p.add_argument("--topk", type=positive_int, default=5, metavar="K",
                   help="how many classes to show, at most the head's (default: 5)")
    p.add_argument("--views", type=parse_views, default=(1, 1), metavar="TxS",
                   help=f"temporal clips x spatial crops per video, their softmax averaged, each 1..{MAX_VIEWS}, as in "
                        "inti eval (default: 1x1, the spec's preprocessing)")
    p.add_argument("--frames", type=frames_arg, default=8, metavar="N",
                   help=f"frames sampled per view, a multiple of 2^|S| for the weights' schedule S, at most {MAX_FRAMES} "
                        "(default: 8)")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per video on stdout (video, ok, top, frames, views, macs_per_clip, seconds; "
                        "error for a failed one), and nothing else there")
    p.add_argument("--explain", metavar="OUT", default=None,
                   help="write what the model looked at into the folder OUT (new or empty, unless --force): per video "
                        "a PNG sheet of the sampled frames with their contribution maps, and an MP4 (GIF without an "
                        "H.264 encoder) that plays them")
    p.add_argument("--force", action="store_true",
                   help="replace the files inti predict writes in an --explain folder that already holds files")
    p.set_defaults(run=run)
    return p
