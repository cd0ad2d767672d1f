"""Deploying InTI: the model as an ONNX graph, with its config in a JSON sidecar (`inti export`).

    >>> from inti.export import sidecar_path
    >>> str(sidecar_path("model.onnx"))
    'model.onnx.json'

What is exported is `ExportModule`, a thin wrapper around a `torch_impl.InTIModel` that calls the
model's own loop, `InTIModel.forward_features` (embed, the blocks with the merges at the
schedule), then its readout, as `InTIModel.forward` does but without `check_video` /
`check_output`: those are eager, data-dependent checks with Python control flow (the
finiteness scan, the pixel range), which a graph cannot hold. A deployed graph therefore does
not check its input; `run_onnx` checks the shape, and the caller checks the values where it
matters.

The graph's axes [ours]:

- **batch: dynamic** (the input's axis 0 is the symbol ``batch``; every output follows it);
- **frames: fixed** at export time (``--frames T``). The schedule's halvings and the merge's
  pairing (a reshape of T into (T/2, 2)) are static for a given T, and a T that the schedule
  cannot halve must be refused; a dynamic T would need those frame-count checks inside the
  graph (If nodes or data-dependent shapes). Export once per clip length instead; the sidecar
  records T and the runtime refuses any other.
- height, width and channels are the config's (fixed by the patch grid and the positions).

The exporter is torch's `torch.export`-based one (``torch.onnx.export(..., dynamo=True)``,
onnxscript underneath). The older TorchScript exporter bakes the example batch into the
merge's reshape (``x.shape[1] // 2`` is traced as a constant) and the graph fails at any other
batch, so it is not used. Attention is exported on the ``explicit`` path (q k^T, softmax, times
v: MatMul and Softmax nodes, no fused kernel needed by the runtime); the ``sdpa`` path exports
to the same math with more shape arithmetic. The graph computes in float32.

Outputs: ``logits`` (batch, K), and with ``trace=True`` also ``merges.{j}.weights`` for each
merge j (batch, T_j, N) or (batch, T_j, N, C), the convex pair weights of `ref.forward`'s trace.

The sidecar says what a deployment needs to use the graph without this package (NumPy, a
decoder and a runtime): the config; the graph's inputs and outputs; ``preprocess``, how a video
becomes the input (spec/00-method.md §7: the frame-sampling rule, the resize and the crop, the
scale, CLIP's mean and standard deviation from `ref.preprocess`'s constants, the layout);
``postprocess``, how logits become probabilities (and how `inti predict` averages views); and
``classes``, the class names when known (``inti export --classes FILE``), else null.

Both files are written through `inti.io.atomic` (a temporary file, fsync, rename): a failure
leaves no half-written file, and the ``.onnx`` written just before a failed sidecar is removed
again unless a file of that name was there before.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

import ref
from ref.checks import check_frames
from ref.config import ModelConfig
from ref.model import merge_key, trace_weights
from ref.preprocess import CLIP_MEAN, CLIP_STD
from torch_impl import from_ref_params

from .io.atomic import write_bytes, write_text
from .io.config_json import config_to_json

FORMATS = ("onnx",)
EXPORT_FORMAT = "inti-onnx"
EXPORT_VERSION = 2  # 2: the sidecar gained preprocess, postprocess and classes
DEFAULT_OPSET = 18
INPUT_NAME = "video"
BATCH_AXIS = "batch"
# Nodes whose output shape or path depends on the data; the exported graph must hold none.
DATA_DEPENDENT_OPS = ("NonZero", "TopK", "Loop", "If", "Unique", "Scan", "Where")
MATMUL_OPS = ("MatMul", "Gemm", "Conv")
_ONNX_HINT = "pip install onnx onnxruntime onnxscript (or pip install 'inti[export]')"


def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f"ONNX export needs the {name} package: {_ONNX_HINT}") from None


def sidecar_path(path) -> Path:
    """The JSON sidecar beside an exported graph: ``model.onnx`` -> ``model.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def output_names(cfg: ModelConfig, trace: bool = False) -> list[str]:
    return ["logits", *(merge_key(j, "weights") for j in range(len(cfg.schedule)) if trace)]


def check_exportable(cfg: ModelConfig, frames: int) -> None:
    """Refuse, up front and naming the part, what this exporter cannot turn into a static graph.

    Every model option of `ref.ModelConfig` exports (tested: channel granularity, sigmoid and
    mean weights, every branch subset, ST-Adapter and AIM), so what is refused is a frame count:
    the graph's frames axis is fixed, and T must be one the schedule can halve."""
    try:
        check_frames(frames, cfg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot export for --frames {frames}: {e}") from None


class ExportModule(nn.Module):
    """`InTIModel.forward` without its eager checks: video (b, T, 3, H, W) -> logits (b, K), or
    (logits, merges.0.weights, ...) with trace=True. It runs the model's own loop
    (`forward_features`, with whatever block and merge steps the model has) and readout."""

    def __init__(self, model, trace: bool = False):
        super().__init__()
        self.model = model
        self.trace = trace

    def forward(self, video: torch.Tensor):
        trace = {} if self.trace else None
        x = self.model.forward_features(video, trace=trace)  # (b, T / 2^|S|, N, C)
        logits = self.model.readout(x)["logits"]
        return (logits, *trace_weights(trace, self.model.cfg)) if self.trace else logits


def export_module(params: dict, cfg: ModelConfig, trace: bool = False) -> ExportModule:
    """The float32 wrapper, in eval mode, on the explicit attention path."""
    model = from_ref_params(params, cfg, dtype=torch.float32).eval()
    model.set_attn_path("explicit")
    return ExportModule(model, trace=trace).eval()


def supported_opsets() -> range:
    """The ONNX opsets the installed exporter writes. torch's exporter builds the graph at its
    base opset (torch's TORCHLIB_OPSET, 18) and onnxscript's version converter moves it up to
    SUPPORTED_MAX_ONNX_OPSET (25 in onnxscript 0.7), within what the installed onnx knows; below
    the base the converter cannot go, and it keeps the base opset without a word, so such an
    opset is refused here."""
    onnx = _import("onnx")
    _import("onnxscript")
    try:
        from torch.onnx._internal.exporter._constants import TORCHLIB_OPSET as lowest
    except ImportError:  # a torch that moved it: the one opset known to work
        lowest = DEFAULT_OPSET
    try:
        from onnxscript.version_converter._version_converter import SUPPORTED_MAX_ONNX_OPSET as highest
    except ImportError:
        highest = lowest
    return range(lowest, min(highest, onnx.defs.onnx_opset_version()) + 1)


def check_opset(opset) -> int:
    """`opset` as an int within `supported_opsets()`, or a ValueError naming the range."""
    supported = supported_opsets()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in supported:
        raise ValueError(f"the installed exporter (torch {torch.__version__.split('+')[0]}) writes ONNX opsets "
                         f"{supported.start} to {supported.stop - 1}, got --opset {opset!r}")
    return opset


def graph_opset(proto) -> int:
    """The default-domain ("" or "ai.onnx") opset a model imports."""
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if len(versions) != 1:
        raise ValueError(f"the graph imports the default ONNX domain {len(versions)} times, not once")
    return int(versions[0])


def to_onnx(params: dict, cfg: ModelConfig, frames: int, trace: bool = False, opset: int = DEFAULT_OPSET):
    """The ONNX ModelProto of InTI for clips of `frames` frames, with a dynamic batch, at
    `opset` (one of `supported_opsets()`; the graph's opset is checked after the export)."""
    check_exportable(cfg, frames)
    opset = check_opset(opset)
    wrapper = export_module(params, cfg, trace)
    # Batch 2 in the example: torch.export would specialize a batch of 1 to a constant.
    example = torch.zeros(2, frames, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad(), open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        program = torch.onnx.export(
            wrapper, (example,), None, dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
            output_names=output_names(cfg, trace), dynamic_shapes={"video": {0: torch.export.Dim(BATCH_AXIS)}},
            verbose=False,
        )
    proto = program.model_proto
    if graph_opset(proto) != opset:
        raise ValueError(f"the exporter wrote opset {graph_opset(proto)} when asked for --opset {opset}")
    # name the dynamic axis "batch" everywhere it shows (torch.export calls it s0 or similar)
    for value in [*proto.graph.input, *proto.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_param or not dim.dim_value:
            dim.dim_param = BATCH_AXIS
    return proto


def preprocessing(cfg: ModelConfig, frames: int) -> dict:
    """How a video file becomes the graph's input, in the sidecar's words (spec/00-method.md §7,
    `ref.preprocess`): what a deployment without this package implements."""
    size = cfg.image_size
    return {
        "spec": "spec/00-method.md section 7; ref/preprocess.py is the executable definition",
        "steps": ["decode", "sample", "resize", "crop", "normalize"],
        "decode": "every frame of the first video stream, in presentation order, as RGB uint8 (h, w, 3); "
                  "n = the number of frames decoded",
        "frames": frames,
        "sampling": {"rule": "segment centres", "index": "floor((i + 0.5) * n / frames) for i = 0 .. frames - 1",
                     "too_short": "refuse a clip with n < frames"},
        "size": size,
        "resize": {"short_side": size, "long_side": "floor(long * size / short)", "interpolation": "bilinear",
                   "sample_position": "(j + 0.5) * in / out - 0.5, clamped to [0, in - 1] (half-pixel centres, "
                                      "edges repeated)", "antialias": False, "order": "rows, then columns",
                   "in_torch": "torch.nn.functional.interpolate(mode='bilinear', align_corners=False, "
                               "antialias=False)"},
        "crop": {"kind": "centre", "size": [size, size], "top": "(h - size) // 2", "left": "(w - size) // 2"},
        "scale": 1 / 255,
        "mean": list(CLIP_MEAN),
        "std": list(CLIP_STD),
        "normalize": "(x * scale - mean[c]) / std[c] per RGB channel c",
        "layout": [BATCH_AXIS, frames, 3, size, size],
        "channels": "RGB, channels first: (frames, h, w, 3) -> (frames, 3, h, w)",
        "dtype": "float32",
    }


def check_classes(classes, cfg: ModelConfig) -> list[str] | None:
    """The class names for the sidecar: None, or one string per class of the head."""
    if classes is None:
        return None
    classes = list(classes)
    if not cfg.num_classes:
        raise ValueError("class names name the head's classes, but this model has no head (num_classes 0)")
    if len(classes) != cfg.num_classes or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"expected {cfg.num_classes} class names (strings), one per class of the head, got "
                         f"{len(classes)}")
    return classes


def sidecar(cfg: ModelConfig, frames: int, trace: bool, opset: int, source: str = "", classes=None) -> str:
    """The sidecar's JSON: `config_to_json`'s document (so `config_from_json` reads it back) plus an
    "export" entry describing the graph's inputs and outputs, "preprocess" (`preprocessing`),
    "postprocess" and "classes" (the names, or null)."""
    doc = json.loads(config_to_json(cfg))
    t = frames
    outputs = {"logits": [BATCH_AXIS, cfg.out_dim]}
    for j, _ in enumerate(cfg.schedule):
        if trace:
            tail = [cfg.num_tokens, cfg.width] if cfg.weight_granularity == "channel" else [cfg.num_tokens]
            outputs[merge_key(j, "weights")] = [BATCH_AXIS, t, *tail]
        t //= 2
    doc["export"] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "onnx_opset": opset,
        "frames": frames,
        "dynamic_axes": {INPUT_NAME: {"0": BATCH_AXIS}},
        "inputs": {INPUT_NAME: [BATCH_AXIS, frames, 3, cfg.image_size, cfg.image_size]},
        "outputs": outputs,
        "dtype": "float32",
        "attention": "explicit",
        "weights": source,
        "macs_per_clip": ref.count_macs(cfg, frames)["matmul"],
        "torch": torch.__version__,
    }
    doc["preprocess"] = preprocessing(cfg, frames)
    doc["postprocess"] = {
        "probabilities": "softmax over the last axis of logits" if cfg.num_classes else None,
        "views": "inti predict --views TxS averages the probabilities of T temporal clips x S crops; 1x1 is the "
                 "preprocessing above",
    }
    doc["classes"] = check_classes(classes, cfg)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def check_output_path(path, force: bool = False) -> Path:
    """Refuse, before any slow work, an output that cannot be written: a missing folder, a
    directory, an existing file (unless force)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write --output {str(path)!r}: it is a directory; give a file name such as model.onnx")
    parent = path.parent
    if not parent.exists():
        raise FileNotFoundError(f"cannot write --output {str(path)!r}: the folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write --output {str(path)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write --output {str(path)!r}: the folder {str(parent)!r} is not writable")
    side = sidecar_path(path)
    if side.is_dir():
        raise IsADirectoryError(f"cannot write the sidecar {str(side)!r}: it is a directory")
    existing = [str(p) for p in (path, side) if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{' and '.join(map(repr, existing))} exist already; pass --force to replace them")
    return path


def export_onnx(path, params: dict, cfg: ModelConfig, frames: int, trace: bool = False,
                opset: int = DEFAULT_OPSET, force: bool = False, source: str = "", classes=None) -> dict:
    """Write the graph to `path` and its sidecar beside it (`sidecar_path`); returns a summary.
    classes: the head's class names for the sidecar, or None."""
    check_exportable(cfg, frames)
    opset = check_opset(opset)
    classes = check_classes(classes, cfg)
    path = check_output_path(path, force)
    proto = to_onnx(params, cfg, frames, trace, opset)
    data = proto.SerializeToString()  # the whole model in one message: fine below protobuf's 2 GiB
    side = sidecar_path(path)
    existed = path.exists()
    write_bytes(path, data)
    try:  # the sidecar records the opset of the graph as written, read back from the file
        written = graph_opset(_import("onnx").load(str(path), load_external_data=False))
        write_text(side, sidecar(cfg, frames, trace, written, source, classes))
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return {"path": path, "sidecar": side, "bytes": len(data), "nodes": len(proto.graph.node),
            "outputs": output_names(cfg, trace), "opset": written}


# ---------------------------------------------------------------------------------------------
# reading the graph: its nodes and its MACs


def data_dependent_nodes(proto) -> list[str]:
    """The nodes (op types) among DATA_DEPENDENT_OPS, anywhere in the graph."""
    return [n.op_type for n in proto.graph.node if n.op_type in DATA_DEPENDENT_OPS]


def _static_shapes(proto, batch: int) -> dict[str, list[int]]:
    """Every tensor's shape with the batch fixed at `batch`, by ONNX shape inference."""
    onnx = _import("onnx")
    fixed = copy.deepcopy(proto)
    for value in fixed.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.Clear()
                dim.dim_value = batch
    for value in fixed.graph.output:  # let inference recompute them
        value.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    shapes = {init.name: list(init.dims) for init in inferred.graph.initializer}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    return shapes


def _need(shapes, name, node):
    if name not in shapes:
        raise ValueError(f"shape inference left the shape of {name!r} ({node.op_type} {node.name!r}) unknown")
    return shapes[name]


def graph_macs(proto, batch: int = 1) -> dict[str, int]:
    """MACs of the graph's MatMul, Gemm and Conv nodes at `batch`, from the inferred input shapes:
    MatMul prod(broadcast batch dims) * M * K * N; Gemm M * K * N; Conv prod(output) * (C_in / groups)
    * prod(kernel). Returns {op type: MACs} and "total"."""
    shapes = _static_shapes(proto, batch)
    out = dict.fromkeys(MATMUL_OPS, 0)
    for node in proto.graph.node:
        if node.op_type == "MatMul":
            a, b = (_need(shapes, n, node) for n in node.input[:2])
            a2, b2 = (a if len(a) > 1 else [1, *a]), (b if len(b) > 1 else [*b, 1])
            lead = np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2]))
            out["MatMul"] += int(np.prod(lead, dtype=np.int64)) * a2[-2] * a2[-1] * b2[-1]
        elif node.op_type == "Gemm":
            a, b = (_need(shapes, n, node) for n in node.input[:2])
            attrs = {at.name: at.i for at in node.attribute}
            m, k = (a[::-1] if attrs.get("transA") else a)
            n = b[0] if attrs.get("transB") else b[1]
            out["Gemm"] += m * k * n
        elif node.op_type == "Conv":
            w = _need(shapes, node.input[1], node)
            y = _need(shapes, node.output[0], node)
            out["Conv"] += int(np.prod(y, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------------------------
# running the graph


def session(path_or_bytes, threads: int | None = None):
    """An onnxruntime InferenceSession on the CPU execution provider."""
    ort = _import("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = str(path_or_bytes) if isinstance(path_or_bytes, (str, Path)) else path_or_bytes
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnx(sess, video: np.ndarray) -> dict[str, np.ndarray]:
    """Run a session on (b, T, 3, H, W) float32; returns {output name: array}. The shape is
    checked against the graph's input first (the graph itself has no checks)."""
    video = np.ascontiguousarray(video, dtype=np.float32)
    want = sess.get_inputs()[0].shape
    if video.ndim != len(want) or any(isinstance(w, int) and w != v for w, v in zip(want, video.shape)):
        raise ValueError(f"the graph takes video of shape {tuple(want)}, got {video.shape}")
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {INPUT_NAME: video})))
