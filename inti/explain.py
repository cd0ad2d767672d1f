"""What the model looked at in one video: its sampled frames with each frame's contribution map
overlaid (spec/00-method.md §6, the paper's Figure 4), as a PNG sheet and as a short animation
that plays the clip with its maps (`inti predict --explain`).

A frame's map is its contribution, token by token: how much of that frame reaches the output
frame it is merged into, the product of the merge weights on its path (`ref.contributions`).
Each patch token covers `patch_size` x `patch_size` pixels of the frame the model read, so the
map is drawn over exactly those pixels, on one colour scale from 0 to 1 for every frame. Maps
are called **uniform** when every token of every frame has the same contribution (a θ whose
score layer is zero, as at its initialization, or the 'mean' weight function: every merge
averages its pair, and the model prefers no token), and **learned** otherwise.

The animation is an H.264 MP4 (PyAV's bundled FFmpeg has libx264), or a GIF (Pillow, which
matplotlib brings) where no H.264 encoder exists; `animation_suffix` says which. Both files are
written through `inti.io.atomic`: a reader never sees half of one. matplotlib and PyAV are
imported inside the functions.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

from ref.config import ModelConfig

from .figures import GROUP_COLORS, canvas, is_uniform, to_image
from .io.atomic import atomic_write, write_bytes
from .io.optional import require

FPS = 2  # animation frames a second: each sampled frame shows for half a second
COLUMNS = 8  # frames per row of the sheet
ALPHA = 0.55  # the map's weight over the frame
DPI = 100
CMAP = "viridis"


def maps_kind(contrib) -> str:
    """"uniform" when every token of every frame contributes the same (`figures.is_uniform`),
    else "learned"; None (no merges) is "none"."""
    if contrib is None:
        return "none"
    return "uniform" if is_uniform(np.asarray(contrib)) else "learned"


def caption(contrib, cfg: ModelConfig) -> str:
    """What the maps show, in words: learned or uniform, and why."""
    group = cfg.min_frames
    kind = maps_kind(contrib)
    if kind == "uniform":
        why = ("the 'mean' weight function gives every frame of a pair 1/2" if cfg.weight_fn == "mean" else
               "the predictor's score layer is zero (θ as at its initialization), so every merge averages its pair")
        return (f"Uniform maps: every token contributes {float(np.asarray(contrib).flat[0]):.3g} = 1/{group}, since "
                f"{why}; the model prefers no token, and the maps show nothing it learned.")
    c = np.asarray(contrib)
    share = "sum to 1 at every token" if cfg.weight_fn == "softmax" else "need not sum to 1 (sigmoid weights)"
    return (f"Learned maps: θ weighs each token of each frame (contributions from {c.min():.2f} to {c.max():.2f}; "
            f"uniform would be {1 / group:.3g}). Each output frame stands for {group} input frames (one border colour), "
            f"whose contributions {share}; bright: that frame's token reaches the output.")


def short_caption(contrib, cfg: ModelConfig) -> str:
    """`caption` in one short line, for the animation."""
    group = cfg.min_frames
    if maps_kind(contrib) == "uniform":
        return f"Uniform maps: every token contributes 1/{group}; the model prefers no token."
    c = np.asarray(contrib)
    return (f"Learned maps: contributions from {c.min():.2f} to {c.max():.2f} (uniform would be {1 / group:.3g}); "
            f"each output frame stands for {group} input frames.")


def overlay(frame: np.ndarray, contrib_frame: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """One frame with its map drawn over it: frame (3, H, W) normalized as the model read it,
    contrib_frame (N,) its contributions (class token first) -> RGB (H, W, 3) in [0, 1]."""
    cm = require("matplotlib", "drawing the maps").colormaps[CMAP]
    heat = np.asarray(contrib_frame, np.float64)[1:].reshape(cfg.grid, cfg.grid)  # row-major patch grid
    heat = np.repeat(np.repeat(heat, cfg.patch_size, axis=0), cfg.patch_size, axis=1)  # (H, W): each token's pixels
    return (1 - ALPHA) * to_image(frame) + ALPHA * cm(np.clip(heat, 0.0, 1.0))[..., :3]


def _colorbar(fig, ax) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), CMAP), cax=ax)
    bar.set_label("contribution", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _check(clip, contrib, cfg: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    clip, contrib = np.asarray(clip), np.asarray(contrib, np.float64)
    t0 = clip.shape[0]
    if clip.shape != (t0, 3, cfg.image_size, cfg.image_size) or contrib.shape != (t0, cfg.num_tokens):
        raise ValueError(f"expected a clip (T, 3, {cfg.image_size}, {cfg.image_size}) and contributions "
                         f"(T, {cfg.num_tokens}), got {clip.shape} and {contrib.shape}")
    return clip, contrib


def sheet(clip, contrib, cfg: ModelConfig, path, title: str, note: str = "") -> Path:
    """The PNG sheet: for each sampled frame, the frame as the model read it and, under it, the
    frame with its map, bordered in its group's colour, titled with the output frame it goes to
    and its mean contribution; rows of `COLUMNS` frames; the caption says learned or uniform."""
    clip, contrib = _check(clip, contrib, cfg)
    t0, group = clip.shape[0], cfg.min_frames
    cols, rows = min(t0, COLUMNS), math.ceil(t0 / COLUMNS)
    width = 1.5 * cols + 0.9
    fig = canvas((width, 3.1 * rows + 1.2), DPI, "drawing the maps")
    gs = fig.add_gridspec(2 * rows, cols + 1, width_ratios=[1.0] * cols + [0.07], hspace=0.3, wspace=0.08)
    for f in range(t0):
        r, c = divmod(f, COLUMNS)
        color = GROUP_COLORS[(f // group) % len(GROUP_COLORS)]
        top, bottom = fig.add_subplot(gs[2 * r, c]), fig.add_subplot(gs[2 * r + 1, c])
        top.imshow(to_image(clip[f]), interpolation="bilinear")
        top.set_title(f"frame {f}", fontsize=8, pad=2)
        bottom.imshow(overlay(clip[f], contrib[f], cfg), interpolation="nearest")
        bottom.set_title(f"→ out {f // group}, mean {contrib[f, 1:].mean():.2f}", fontsize=7, pad=2)
        for ax in (top, bottom):
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.2)
    _colorbar(fig, fig.add_subplot(gs[1, cols]))
    fig.suptitle(title, fontsize=10)
    text = caption(contrib, cfg) + (f" {note}" if note else "")
    fig.text(0.5, 0.01, textwrap.fill(text, int(width * 14)), ha="center", va="bottom", fontsize=8)
    fig.subplots_adjust(left=0.03, right=0.93, top=1 - 0.55 / (3.1 * rows + 1.2), bottom=0.75 / (3.1 * rows + 1.2))
    path = Path(path)
    with atomic_write(path) as f:  # the caption also goes into the PNG's text chunks, for tools that read them
        fig.savefig(f, format="png", dpi=DPI, facecolor="white", metadata={"Title": title, "Description": text})
    return path


def animation_suffix() -> str:
    """".mp4" where PyAV can encode H.264 (libx264), else ".gif"."""
    av = require("av", "writing the animation")
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # av's codec lookup raises its own error class for an unknown encoder
        return ".gif"
    return ".mp4"


def animation_frames(clip, contrib, cfg: ModelConfig, title: str) -> np.ndarray:
    """The animation's frames, (T, height, width, 3) uint8, one per sampled frame: the frame on
    the left, the frame with its map on the right, the title and whether the maps are learned
    or uniform above and below. Width and height are even, as H.264's 4:2:0 needs."""
    clip, contrib = _check(clip, contrib, cfg)
    kind = maps_kind(contrib)
    frames = []
    for f in range(clip.shape[0]):
        fig = canvas((6.4, 3.8), DPI, "drawing the maps")
        left, right = fig.add_axes((0.03, 0.13, 0.4, 0.68)), fig.add_axes((0.45, 0.13, 0.4, 0.68))
        left.imshow(to_image(clip[f]), interpolation="bilinear")
        right.imshow(overlay(clip[f], contrib[f], cfg), interpolation="nearest")
        left.set_title(f"frame {f} (of 0-{clip.shape[0] - 1})", fontsize=9)
        right.set_title(f"→ output {f // cfg.min_frames}: {kind} map, mean {contrib[f, 1:].mean():.2f}", fontsize=9)
        for ax in (left, right):
            ax.set_xticks([]), ax.set_yticks([])
        _colorbar(fig, fig.add_axes((0.87, 0.13, 0.018, 0.68)))
        fig.text(0.5, 0.96, textwrap.shorten(title, 90), ha="center", va="top", fontsize=9)
        fig.text(0.5, 0.03, textwrap.shorten(short_caption(contrib, cfg), 115), ha="center", va="bottom", fontsize=7)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    return np.stack(frames)


def animation(clip, contrib, cfg: ModelConfig, path, title: str) -> Path:
    """Write the animation to `path` (".mp4": H.264 with PyAV; ".gif": Pillow), atomically;
    `FPS` frames a second; the caption goes into the file's comment (MP4 metadata, GIF comment)."""
    path = Path(path)
    frames = animation_frames(clip, contrib, cfg, title)
    buffer = io.BytesIO()
    if path.suffix == ".mp4":
        av = require("av", "writing the animation")
        with av.open(buffer, "w", format="mp4") as container:
            container.metadata.update(title=title, comment=caption(contrib, cfg))
            stream = container.add_stream("libx264", rate=FPS)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    elif path.suffix == ".gif":
        image = require("PIL.Image", "writing a GIF")
        first, *rest = (image.fromarray(a) for a in frames)
        first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=1000 // FPS, loop=0,
                   comment=caption(contrib, cfg).encode("utf-8"))
    else:
        raise ValueError(f"an animation is a .mp4 or .gif file, got {str(path)!r}")
    write_bytes(path, buffer.getvalue())
    return path
