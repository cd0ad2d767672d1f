"""ref: the executable specification of InTI in NumPy (spec/00-method.md), read next to spec/.

A "§n" in these files cites section n of the method chapter, spec/00-method.md.

One concept per file, in the order data flows: config, params, checks, layers, embed,
attention, temporal (the optional temporal modules, spec/00-method.md §12), block, predictor,
interpolation, model, cost, and preprocess (pixels in); then tome, the peer baseline
(spec/00-method.md §14), on top of them.
"""

from .checks import check_video
from .config import PRESETS, TEMPORAL_PRESETS, ModelConfig, preset, with_temporal
from .cost import compare, count_macs, reduction
from .interpolation import contributions
from .model import block_key, forward, merge_key, trace_keys, trace_weights
from .params import backbone, check_params, init_params, param_shapes, without_temporal
from .tome import tome_forward, tome_macs, tome_schedule, tome_trace_keys

__all__ = [
    "ModelConfig",
    "PRESETS",
    "preset",
    "TEMPORAL_PRESETS",
    "with_temporal",
    "without_temporal",
    "init_params",
    "backbone",
    "param_shapes",
    "check_params",
    "check_video",
    "forward",
    "trace_keys",
    "block_key",
    "merge_key",
    "trace_weights",
    "count_macs",
    "reduction",
    "compare",
    "contributions",
    "tome_forward",
    "tome_macs",
    "tome_schedule",
    "tome_trace_keys",
]
