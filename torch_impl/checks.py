"""Mirror of ref/checks.py: the same checks, with the same messages, on tensors.

The shape, dtype-name and frame-count rules are ref's own functions, called on a tensor's
shape and dtype name; only what needs torch (the type, autocast, the finiteness scan) is
written here. `dtype_name` and `torch_dtype` are the project's one mapping between torch
dtypes and the names that the tolerance table and the command line use.
"""

from __future__ import annotations

import torch

from ref.checks import (
    FLOAT_DTYPES,
    check_frames,
    check_pixel_range,
    check_video_meta,
    first_nonfinite,
    nonfinite_error,
    nonfinite_output_error,
)

__all__ = ["FLOAT_DTYPES", "check_frames", "check_video", "check_output", "dtype_name", "torch_dtype"]


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> "float32", the name NumPy and the tolerance table use."""
    return str(dtype).removeprefix("torch.")


def torch_dtype(name: str) -> torch.dtype:
    """"float32" -> torch.float32, for the floating dtypes the models run in (FLOAT_DTYPES)."""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"unknown floating dtype {name!r}; choose from {', '.join(FLOAT_DTYPES)}")
    return getattr(torch, name)


@torch.compiler.disable
def check_video(video, cfg, param_dtype: torch.dtype | None = None) -> None:
    """The checks of ref.checks.check_video, with the same messages, on a tensor.

    Runs eagerly even under torch.compile (the finiteness check needs one sync). On the
    meta device, which holds no values, only the shapes and dtype are checked."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"video must be a torch.Tensor of shape (B, T, 3, H, W), got {type(video).__name__}")
    check_video_meta(tuple(video.shape), dtype_name(video.dtype), cfg, allowed=FLOAT_DTYPES)
    if param_dtype is not None and video.dtype != param_dtype and not torch.is_autocast_enabled(video.device.type):
        raise TypeError(
            f"video is {dtype_name(video.dtype)} but the model's parameters are {dtype_name(param_dtype)}; "
            f"convert one of them (model.to(torch.{dtype_name(video.dtype)})) or run under torch.autocast"
        )
    if video.device.type == "meta":  # shapes only (e.g. counting FLOPs without data)
        return
    # min and max propagate NaN and show inf, with no full-size boolean temporary.
    lo, hi = torch.aminmax(video.detach())
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        raise nonfinite_error(int((~torch.isfinite(video.detach())).sum()))
    check_pixel_range(float(lo), float(hi))


def count_nonfinite(x: torch.Tensor) -> int:
    return int((~torch.isfinite(x.detach())).sum())


@torch.compiler.disable
def check_output(model, video: torch.Tensor, logits: torch.Tensor) -> None:
    """Finite inputs must give finite outputs [ours], as in ref.forward: when the logits are
    not finite, run once more with the trace (no grad) and name its first non-finite entry."""
    if video.device.type == "meta" or bool(torch.isfinite(logits.detach()).all()):
        return
    with torch.no_grad():
        _, trace = model(video, return_trace=True, check=False)
    bad = first_nonfinite(trace, count_nonfinite) or ("logits", count_nonfinite(logits), logits.numel())
    raise nonfinite_output_error(*bad)
