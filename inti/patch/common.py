"""What the three patches share: the merges' config, θ attached as submodules, the video check,
the one loop over a host's blocks with the merge point (`run_blocks`), the mean over frames, the
class swap and `undo`.

A patch changes the user's model object in place, as ToMe's ``tome.patch.timm`` does: its class
becomes a subclass of its own class (`swap_class`) whose forward takes video, and the merges Φ
with their predictors θ (torch_impl's `Merge`, spec/00-method.md §3) become its submodule
``merges``, so their state-dict keys are ours (``merges.{j}.*``, §3.5) under the tower's prefix.
Nothing else changes: the backbone's parameters, buffers and keys stay the host's own.
"""

from __future__ import annotations

import torch
from torch import nn

from ref.checks import FLOAT_DTYPES, check_frames, check_video_meta
from ref.config import ModelConfig
from ref.model import merge_after
from torch_impl.checks import dtype_name
from torch_impl.interpolation import Merge

from ..io.layouts import init_predictor

THETA_OPTIONS = ("reduction", "branches", "weight_fn", "weight_granularity")  # spec/00-method.md §3.3-3.4


class Patched:
    """Marker base of every patched class: `undo` finds the patched towers by it, and
    ``type(tower).host_class`` is the class the tower had before."""

    host_class: type = object


def merge_config(*, image_size: int, patch_size: int, width: int, depth: int, heads: int, ln_eps: float,
                 schedule, frames: int | None, options: dict) -> ModelConfig:
    """The config that the merges read (width, grid, ln_eps for LN_θ, schedule and θ's options).

    The host's other hyperparameters (activation, MLP width, projection, head) stay the host's
    business: this config leaves them at their defaults and nothing reads them. A `frames` count
    is checked against the schedule now [ours: each merge needs an even number of frames, §3]."""
    unknown = sorted(set(options) - set(THETA_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; a patch takes schedule, frames, seed and θ's {list(THETA_OPTIONS)}")
    if isinstance(schedule, (int, str)) or not hasattr(schedule, "__iter__"):
        raise TypeError(f"schedule must be a tuple of block indices counted from 1, such as (3,) or (), got {schedule!r}")
    cfg = ModelConfig(image_size=image_size, patch_size=patch_size, width=width, depth=depth, heads=heads,
                      ln_eps=ln_eps, embed_dim=None, num_classes=0, schedule=tuple(schedule), **options)
    if frames is not None:
        check_frames(frames, cfg)
    return cfg


def square(size, what: str) -> int:
    """An int from a size given as an int or an (h, w) pair; InTI's θ lays tokens on a square grid."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h != w:
        raise ValueError(f"InTI needs square frames and a square patch grid (θ's local branch, spec/00-method.md §3.4), "
                         f"but the model's {what} is {h}x{w}")
    return int(h)


def attach(tower: nn.Module, cfg: ModelConfig, seed: int, like: torch.Tensor) -> None:
    """Add ``tower.merges``: one `Merge` per schedule entry, in `like`'s dtype and device, with θ
    drawn by ref's init rule (`inti.io.layouts.init_predictor`; the score layer is zero, so an
    untrained merge averages each pair, §3.4). The same seed gives the same θ as the converters'
    (``from_timm(..., seed=seed)``)."""
    if isinstance(tower, Patched):
        raise ValueError(f"this {type(tower).host_class.__name__} is patched already; inti.patch.undo(model) first")
    if hasattr(tower, "merges") or hasattr(tower, "inti_config"):
        raise ValueError(f"{type(tower).__name__} already has an attribute 'merges' or 'inti_config'; "
                         "inti.patch would replace it")
    with torch.device("meta"):
        merges = nn.ModuleList(Merge(cfg) for _ in cfg.schedule)
    merges = merges.to(like.dtype).to_empty(device=like.device)
    fresh = {k.removeprefix("merges."): torch.from_numpy(v) for k, v in init_predictor(cfg, seed).items()}
    merges.load_state_dict(fresh)
    tower.merges = merges
    tower.inti_config = cfg


def swap_class(tower: nn.Module, make) -> None:
    """Give `tower` the patched subclass of its own class that `make(host_class)` builds (one per
    host class, so that torch.compile sees one class however often a model is patched)."""
    host = type(tower)
    key = (make, host)
    if key not in _CLASSES:
        patched = make(host)
        patched.host_class = host
        patched.__name__ = patched.__qualname__ = f"InTI{host.__name__}"
        _CLASSES[key] = patched
    tower.__class__ = _CLASSES[key]


_CLASSES: dict = {}


def check_video(video, cfg: ModelConfig) -> int:
    """The clips B of a video (B, T, 3, H, W), after its shape and dtype are checked against the
    model (ref's checks and messages; T must halve at every merge). An image batch is refused."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"video must be a torch.Tensor of shape (B, T, 3, H, W), got {type(video).__name__}")
    if video.dim() == 4:
        raise ValueError(f"a model patched by inti.patch takes video (B, T, 3, H, W), got shape {tuple(video.shape)}; "
                         "add a time axis (video.unsqueeze(1)) or restore the image model with inti.patch.undo(model)")
    check_video_meta(tuple(video.shape), dtype_name(video.dtype), cfg, allowed=FLOAT_DTYPES)
    return video.shape[0]


def merge_frames(merge: Merge, x: torch.Tensor, clips: int) -> torch.Tensor:
    """Φ with its θ between two of the host's blocks, on the host's frame-major batch:
    (b*t, N, C) -> (b*t/2, N, C). θ sees each clip's t frames together (its local and clip
    branches look across frames, §3.4)."""
    merged, _ = merge(x.unflatten(0, (clips, -1)))  # (b, t, N, C) -> (b, t/2, N, C)
    return merged.flatten(0, 1)


def run_blocks(tower: nn.Module, blocks, x: torch.Tensor, clips: int, step=None, seen=None) -> torch.Tensor:
    """The host's blocks, in order, with Φ after each block of the schedule: the patches' one loop
    (InTIModel.forward_features' for a host model, whose blocks are the host's own).

    x: the host's frame-major batch, (b*T, N, C). step(block, x): one block as the host runs it
    (default ``block(x)``: a host's other arguments, activation checkpointing, its layout).
    seen(x), if given, sees the tokens after each block and its merge (the host's hidden states).
    The merge j after block i comes from ref's `merge_after` (spec/00-method.md §3: S counts from 1)."""
    after = merge_after(tower.inti_config)  # {block i (from 0): merge j}
    for i, block in enumerate(blocks):
        x = block(x) if step is None else step(block, x)
        if i in after:
            # InTI: merge neighbouring frames here, (b t, N, C) -> (b t/2, N, C)
            x = merge_frames(tower.merges[after[i]], x, clips)
        if seen is not None:
            seen(x)
    return x


def frame_mean(x: torch.Tensor, clips: int) -> torch.Tensor:
    """(b*t, ...) -> (b, ...): the mean over each clip's remaining frames (the readout, §2.4)."""
    return x.unflatten(0, (clips, -1)).mean(dim=1)


def grad_checkpointed(block: nn.Module, x: torch.Tensor, *args) -> torch.Tensor:
    """One block under activation checkpointing (non-reentrant), as the hosts run theirs."""
    return torch.utils.checkpoint.checkpoint(block, x, *args, use_reentrant=False)


def undo(model: nn.Module) -> nn.Module:
    """Restore every tower of `model` that inti.patch patched: its own class back, ``merges`` and
    ``inti_config`` removed. The model then computes, and its state_dict holds, exactly what it did
    before the patch. Returns the model; ValueError if nothing in it is patched."""
    towers = [m for m in model.modules() if isinstance(m, Patched)]
    if not towers:
        raise ValueError(f"{type(model).__name__} holds no module patched by inti.patch; nothing to undo")
    for tower in towers:
        del tower.merges
        del tower.inti_config
        tower.__class__ = type(tower).host_class
    return model
