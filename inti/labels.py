"""How the tools name things in text: a config, a schedule, a MAC count's unit.

Shared by the CLI's tables, the figures' titles and the benchmark report, so that all of
them say "nano: ViT 64 px, patch 8, ..." and "S=(6,)" the same way.
"""

from __future__ import annotations

import dataclasses

from ref.config import PRESETS, ModelConfig


def config_name(cfg: ModelConfig) -> str:
    """The preset's name when cfg is a preset with only its schedule changed, else "custom"."""
    def fields(c):
        return {k: v for k, v in dataclasses.asdict(c).items() if k != "schedule"}

    for name, p in PRESETS.items():
        if fields(cfg) == fields(p):
            return name
    return "custom"


def describe(cfg: ModelConfig) -> str:
    """One line: "nano: ViT 64 px, patch 8, width 64, depth 4, heads 4"."""
    return (
        f"{config_name(cfg)}: ViT {cfg.image_size} px, patch {cfg.patch_size}, width {cfg.width}, "
        f"depth {cfg.depth}, heads {cfg.heads}"
    )


def schedule_text(schedule) -> str:
    """S=(6,) style, as the paper and spec/00-method.md write it."""
    return f"S={tuple(schedule)}"


def mac_unit(value: float) -> tuple[float, str]:
    """(divisor, prefix) that prints `value` MACs with a few digits: G, M or k."""
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= div:
            return div, prefix
    return 1.0, ""
