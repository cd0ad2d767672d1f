"""Input validation shared by every public entry point (ref and torch_impl).

Each check raises before any computation, with a message that says what was expected
and what came instead, in the user's terms. The torch implementation calls the same
functions on a tensor's shape and dtype name, so both give identical messages.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig, require_config

FLOAT_DTYPES = ("float64", "float32", "bfloat16", "float16")


def check_frames(frames: int, cfg: ModelConfig) -> None:
    """Each merge needs an even number of frames [ours, spec/00-method.md §3]: walk the schedule.
    AIM's temporal embedding fixes T0 (spec/00-method.md §12.2): no other count is taken."""
    require_config(cfg)
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    t = int(frames)
    for k in cfg.schedule:
        if t % 2:
            raise ValueError(
                f"InTI needs an even number of frames at block {k}, got {t} "
                f"(schedule {cfg.schedule} needs a multiple of {cfg.min_frames} input frames, "
                f"got {frames})"
            )
        t //= 2
    if cfg.fixed_frames is not None and frames != cfg.fixed_frames:
        raise ValueError(
            f"temporal='aim' has a temporal embedding for exactly {cfg.fixed_frames} input frames "
            f"(temporal_frames), got {frames}"
        )


def check_video_meta(
    shape: tuple, dtype: str, cfg: ModelConfig, allowed=("float64", "float32")
) -> None:
    """Check a video's shape (b, t, 3, H, W) and dtype name against the config."""
    require_config(cfg)
    if dtype not in allowed:
        raise TypeError(
            "video must be a floating array of normalized pixels "
            f"({' or '.join(allowed)}), got {dtype}; "
            "convert uint8 frames with ref.preprocess.preprocess first"
        )
    shape = tuple(int(s) for s in shape)
    if len(shape) != 5:
        raise ValueError(
            f"video must have shape (B, T, 3, H, W), 5 axes, "
            f"got shape {shape} with {len(shape)} axes"
        )
    b, t, c, h, w = shape
    if c != 3:
        hint = " (channels-last? use (B, T, 3, H, W))" if w == 3 else ""
        raise ValueError(
            "video must have 3 colour channels on axis 2 of (B, T, 3, H, W), "
            f"got shape {shape}{hint}"
        )
    if (h, w) != (cfg.image_size, cfg.image_size):
        raise ValueError(
            f"video frames must be {cfg.image_size}x{cfg.image_size} pixels for this config, "
            f"got {h}x{w}"
        )
    if b < 1 or t < 1:
        raise ValueError(f"video must hold at least one clip and one frame, got shape {shape}")
    check_frames(t, cfg)


PIXEL_LIMIT = 1e4  # [ours] normalized pixels lie within about ±3; far beyond is not a video


def nonfinite_error(count: int) -> ValueError:
    return ValueError(
        f"video must contain only finite pixel values, got {count} NaN or infinite value(s)"
    )


def check_pixel_range(lo: float, hi: float) -> None:
    """Normalized pixels are small numbers [ours]: refuse a video beyond ±PIXEL_LIMIT, whose
    LayerNorm statistics would overflow into a silently wrong (ref) or NaN (torch) answer."""
    if max(abs(lo), abs(hi)) > PIXEL_LIMIT:
        raise ValueError(
            f"video must hold normalized pixels, within ±{PIXEL_LIMIT:g}, got values from "
            f"{lo:.3g} to {hi:.3g}; convert uint8 frames with ref.preprocess.preprocess"
        )


def first_nonfinite(trace: dict, count_bad) -> tuple[str, int, int] | None:
    """(name, bad values, size) of the first trace entry holding NaN or infinity, or None.
    `count_bad(x)` counts the non-finite values of one entry (NumPy or torch)."""
    for name, value in trace.items():
        bad = count_bad(value)
        if bad:
            return name, bad, int(np.prod(value.shape))
    return None


def nonfinite_output_error(name: str, bad: int, size: int) -> ValueError:
    return ValueError(
        f"the model produced NaN or infinite values from finite inputs: first at trace entry "
        f"{name!r} ({bad} of {size} values); the weights or the config overflow there"
    )


def check_video(video, cfg: ModelConfig) -> None:
    """Validate a NumPy video for `ref.forward`: type, dtype, shape, frame count, finiteness,
    range."""
    if not isinstance(video, np.ndarray):
        raise TypeError(
            f"video must be a numpy array of shape (B, T, 3, H, W), got {type(video).__name__}"
        )
    check_video_meta(video.shape, video.dtype.name, cfg)
    bad = int(np.size(video) - np.count_nonzero(np.isfinite(video)))
    if bad:
        raise nonfinite_error(bad)
    check_pixel_range(float(video.min()), float(video.max()))
