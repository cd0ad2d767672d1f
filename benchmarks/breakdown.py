"""Where a forward's time goes: one call under `torch.profiler`, its ops' self times in groups.

Groups (GROUPS): ``gemm`` (matrix products and the patch convolution, with the bias copy that
starts an addmm), ``attention`` (the fused SDPA kernels, softmax), ``elementwise`` (adds,
activations, layer norms, reductions, fills), ``copies`` (copy_, casts, clone, cat, pad),
``theta`` (everything θ, the weight predictor, runs), ``phi`` (the rest of the merge: the
weights and the interpolation), ``other`` (views, allocation and anything unnamed) and ``host``
(time outside every op: Python and dispatch; on a GPU, time the device waits for the host).
The groups add up to the call's wall time.

θ and Φ are found without touching torch_impl: `labels(model)` wraps each merge's `forward`
and `predict_scores` in `record_function` ranges on the instance, for the profiled call only.
Every other op is attributed by its name. On CUDA the times are the device times of the
kernels that each op launched; on the CPU, the ops' own CPU time.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import time

import torch

from .timing import quiet_stderr, sync

GROUPS = ("gemm", "attention", "elementwise", "copies", "theta", "phi", "other", "host")
THETA, PHI = "inti::theta", "inti::phi"

_GEMM_KERNELS = {"addmm", "mm", "bmm", "baddbmm", "addbmm", "_addmm_activation"}
_GEMM = _GEMM_KERNELS | {
    "linear", "matmul", "t", "conv2d", "convolution", "_convolution", "mkldnn_convolution",
    "_slow_conv2d_forward", "_nnpack_spatial_convolution", "cudnn_convolution", "_mkldnn_linear",
}
_ATTENTION = {
    "scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention", "_flash_attention_forward", "_efficient_attention_forward",
    "_scaled_dot_product_attention_math", "softmax", "_softmax", "_safe_softmax",
}
_COPIES = {
    "copy_", "_to_copy", "clone", "cat", "stack", "constant_pad_nd", "repeat", "repeat_interleave",
    "index_select", "_copy_from", "_copy_from_and_resize",
}
# wrappers that copy only through a child op above (to -> _to_copy, contiguous -> clone, pad ->
# constant_pad_nd) or not at all (a `to` to the same dtype): their own time is dispatch
_OTHER = {"to", "contiguous", "pad", "type_as",
    "view", "reshape", "_reshape_alias", "_unsafe_view", "as_strided", "transpose", "permute", "expand",
    "expand_as", "unflatten", "flatten", "select", "slice", "unsqueeze", "squeeze", "detach", "alias",
    "empty", "empty_strided", "empty_like", "resize_", "split", "chunk", "unbind", "narrow", "lift_fresh",
    "result_type", "unfold", "item", "_local_scalar_dense", "is_nonzero", "split_with_sizes", "set_",
}


def _op(name: str) -> str | None:
    return name[6:] if name.startswith("aten::") else None


def _bias_copy(event) -> bool:
    """The copy of the bias into the output that starts an addmm: part of the GEMM."""
    up = event.cpu_parent
    return up is not None and _op(up.name) in _GEMM_KERNELS


def is_copy(event) -> bool:
    """One copy as a reader counts them: the outermost copying op (a cast's _to_copy, not also
    the copy_ inside it), and not addmm's bias copy."""
    up = event.cpu_parent
    return _op(event.name) in _COPIES and not _bias_copy(event) and not (up is not None and _op(up.name) in _COPIES)


def classify(event) -> str:
    """The group of one profiler event's self time (see the module docstring)."""
    labels, parent = set(), event.cpu_parent
    while parent is not None:
        labels.add(parent.name)
        parent = parent.cpu_parent
    if THETA in labels:
        return "theta"
    if PHI in labels:
        return "phi"
    op = _op(event.name)
    if op is None:
        return "other"
    if op in _GEMM:
        return "gemm"
    if op in _ATTENTION:
        return "attention"
    if op in _COPIES:
        return "gemm" if _bias_copy(event) else "copies"
    if op in _OTHER:
        return "other"
    return "elementwise"


def _self_time_us(event, cuda: bool) -> float:
    if cuda:
        return float(getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0))
    return float(event.self_cpu_time_total)


@contextlib.contextmanager
def labels(model):
    """record_function ranges around θ (`predict_scores`) and Φ (`forward`) of each merge."""
    from torch.profiler import record_function

    def wrap(fn, label):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with record_function(label):
                return fn(*args, **kwargs)
        return inner

    patched = []
    for merge in getattr(model, "merges", ()):
        for attr, label in (("forward", PHI), ("predict_scores", THETA)):
            if hasattr(merge, attr):
                setattr(merge, attr, wrap(getattr(merge, attr), label))  # an instance attribute
                patched.append((merge, attr))
    try:
        yield
    finally:
        for merge, attr in patched:
            delattr(merge, attr)  # the class's method again


def profile_call(fn, model, device: str, top: int = 8) -> dict:
    """Run fn() once under the profiler; the groups' seconds and shares, copy counts, top ops."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with labels(model), quiet_stderr(), profile(activities=activities) as prof:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        wall = time.perf_counter() - start
    seconds = dict.fromkeys(GROUPS, 0.0)
    by_op: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    copies = 0
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CPU:  # kernels: counted through their op
            continue
        group, us = classify(e), _self_time_us(e, cuda)
        seconds[group] += us * 1e-6
        by_op[e.name][0] += us * 1e-6
        by_op[e.name][1] += 1
        copies += is_copy(e)
    seconds["host"] = max(0.0, wall - sum(seconds.values()))
    return {
        "wall_s": wall,
        "seconds": seconds,
        "shares": {g: s / wall for g, s in seconds.items()} if wall > 0 else {},
        "copy_calls": copies,  # copies, casts, cat, pad anywhere (θ and Φ included; is_copy)
        "copy__calls": by_op["aten::copy_"][1] if "aten::copy_" in by_op else 0,
        "top_ops": [[name, s, n] for name, (s, n) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:top]],
        "time": "device (CUDA kernels)" if cuda else "cpu",
    }
