"""How the tools name things in text: a config, a schedule, a MAC count's unit.

Shared by the CLI's tables, the figures' titles and the benchmark report, so that all of
them say "nano: ViT 64 px, patch 8, ..." and "S=(6,)" the same way.
"""

from __future__ import annotations

import dataclasses

from ref.config import ModelConfig

from .registry import MODELS


def config_name(cfg: ModelConfig) -> str:
    """The name of the architecture (`inti.registry.MODELS`, the presets included) when cfg is one
    with only its schedule or its temporal modules changed, else "custom"."""
    def fields(c):
        return {k: v for k, v in dataclasses.asdict(c).items() if k != "schedule" and not k.startswith("temporal")}

    for name, entry in MODELS.items():
        if fields(cfg) == fields(entry.cfg):
            return name
    return "custom"


def describe(cfg: ModelConfig) -> str:
    """One line: "nano: ViT 64 px, patch 8, width 64, depth 4, heads 4", and the temporal
    module when there is one (`temporal_text`)."""
    text = (
        f"{config_name(cfg)}: ViT {cfg.image_size} px, patch {cfg.patch_size}, width {cfg.width}, "
        f"depth {cfg.depth}, heads {cfg.heads}"
    )
    return text if cfg.temporal == "none" else f"{text}; {temporal_text(cfg)}"


def blocks_text(blocks) -> str:
    """(1, 2, 3, 5) -> "blocks 1-3, 5"."""
    runs: list[list[int]] = []
    for k in blocks:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs]
    return ("blocks " if len(blocks) > 1 else "block ") + ", ".join(parts)


def temporal_text(cfg: ModelConfig) -> str:
    """The temporal module in words (spec/00-method.md §12): "ST-Adapter C_a=384 before mlp,
    blocks 1-12 (12 adapters)" or "AIM C_a=192, T0=8, blocks 1-12"; "no temporal module"."""
    if cfg.temporal == "none":
        return "no temporal module"
    where = blocks_text(cfg.module_blocks)
    if cfg.temporal == "st_adapter":
        count = len(cfg.module_blocks) * len(cfg.temporal_placement)
        before = " and ".join(cfg.temporal_placement)
        return f"ST-Adapter C_a={cfg.adapter_width} before {before}, {where} ({count} adapters)"
    return f"AIM C_a={cfg.adapter_width}, T0={cfg.temporal_frames}, s={cfg.temporal_scale:g}, {where}"


def schedule_text(schedule) -> str:
    """S=(6,) style, as the paper and spec/00-method.md write it."""
    return f"S={tuple(schedule)}"


def mac_unit(value: float) -> tuple[float, str]:
    """(divisor, prefix) that prints `value` MACs with a few digits: G, M or k."""
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= div:
            return div, prefix
    return 1.0, ""
