"""`inti export`: InTI as a deployable graph (ONNX) with its config in a JSON sidecar.

torch and onnx are imported inside `run` only (inti.export does the work)."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, CLIError, add_model_args, model_from_args, positive_int

FORMATS = ("onnx",)  # inti.export.FORMATS, repeated here so that --help needs no torch


def run(args) -> int:
    from inti import export  # torch, and onnx inside it, only now

    try:
        cfg, params, source = model_from_args(args)  # checks --frames against the schedule too
        export.check_exportable(cfg, args.frames)
    except ValueError as e:
        raise CLIError(f"cannot export: {e}") from None
    classes = None
    if args.classes is not None:
        if not cfg.num_classes:
            raise CLIError("--classes names the head's classes, but this model has no head (num_classes 0)")
        from inti.predict import read_class_names

        classes = read_class_names(args.classes, cfg.num_classes)
    info = export.export_onnx(args.output, params, cfg, args.frames, trace=args.trace, opset=args.opset,
                              force=args.force, source=source, classes=classes)
    outputs = ", ".join(info["outputs"])
    print(f"inti export: wrote {info['path']} ({info['bytes'] / 2**20:.1f} MiB, {info['nodes']} nodes; "
          f"input video (batch, {args.frames}, 3, {cfg.image_size}, {cfg.image_size}), batch dynamic; outputs {outputs})")
    print(f"inti export: wrote {info['sidecar']} (the config, the graph's opset {info['opset']}, the preprocessing a "
          f"deployment needs, {'the class names' if classes else 'no class names (--classes FILE)'}; "
          "inti.io.config_json.config_from_json reads its config)")
    return EXIT_OK


def opset(text: str) -> int:
    """An ONNX opset the installed exporter writes (torch and onnxscript are imported to ask)."""
    value = positive_int(text)
    try:
        from inti import export

        return export.check_opset(value)
    except (ValueError, ImportError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", help="write the model as an ONNX graph plus a JSON sidecar with its config",
        description="Export InTI (float32, explicit attention, no input checks) to a graph file for a runtime "
                    "such as onnxruntime. The batch axis is dynamic; the frames axis is fixed at --frames (the "
                    "schedule's halvings are static for a given T). The config, the preprocessing a deployment "
                    "needs (frame sampling, resize, crop, mean and std) and the class names (--classes) go to "
                    "FILE.json beside it.",
        epilog="example: inti export --format onnx --output nano.onnx --frames 8 --trace",
    )
    p.add_argument("--format", choices=FORMATS, required=True, help="graph format: onnx")
    p.add_argument("--output", required=True, metavar="FILE", help="the graph file to write (and FILE.json)")
    add_model_args(p, video=False)
    p.add_argument("--classes", metavar="FILE", default=None,
                   help="class names, one a line (line k names class k), as many as the head has; written to the "
                        "sidecar for a deployment")
    p.add_argument("--trace", action="store_true", help="also output each merge's weights, merges.{j}.weights")
    p.add_argument("--opset", type=opset, default=18,
                   help="ONNX opset, within what the installed exporter writes (18 to 25 with onnxscript 0.7; "
                        "default: 18)")
    p.add_argument("--force", action="store_true", help="replace FILE and FILE.json if they exist")
    p.set_defaults(run=run)
    return p
