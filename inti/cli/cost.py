"""`inti cost`: the analytic MAC table (spec/00-method.md §4), naive against InTI, per part."""

from __future__ import annotations

import argparse

import ref
from ref.checks import check_frames
from ref.config import TEMPORAL_PRESETS, ModelConfig, with_temporal
from ref.cost import temporal_macs

from ..labels import blocks_text, describe, mac_unit, schedule_text
from ..registry import named_config
from .common import EXIT_OK, CLIError, add_schedule_args, positive_int, with_schedule
from .report import separator, table

PAPER_SCHEDULES = ((6,), (8, 20), (10, 16))
PAPER_FRAMES = (8, 16)  # the clip lengths video papers report
PAPER_CLAIM = 0.375
PAPER_CLAIM_TEMPORAL = 0.37  # "87.6% with 37% fewer GFLOPs", combined with temporal modules [paper]
MODULE_NAMES = {"st_adapter": "ST-Adapter", "aim": "AIM"}


def _pct(naive: int, inti: int) -> str:
    if naive == 0:
        return "added" if inti else "-"
    return f"{1 - inti / naive:.1%}"


def cost_rows(cfg: ModelConfig, frames: int, batch: int = 1) -> list[tuple[str, str, int, int]]:
    """(part, frames naive/InTI, naive MACs, InTI MACs) for the table; the rows add up to the total."""
    cost = ref.compare(cfg, frames, batch)
    inti, naive = cost["inti"], cost["naive"]
    rows = [("patch embedding", f"{frames}/{frames}", naive["patch_embed"], inti["patch_embed"])]
    bounds = [0, *cfg.schedule, cfg.depth]
    stages = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    for a, b in stages:
        label = f"blocks {a + 1}-{b}" if b > a + 1 else f"block {a + 1}"
        t = inti["per_block"][a][0]
        rows.append((label, f"{frames}/{t}", sum(m for _, m in naive["per_block"][a:b]), sum(m for _, m in inti["per_block"][a:b])))
    if len(stages) > 1:
        rows.append(("blocks, all", "", naive["blocks"], inti["blocks"]))
    rows += module_rows(cfg, frames, batch, stages)
    merge_frames = ",".join(str(frames // 2**j) for j in range(len(cfg.schedule))) or "-"
    rows += [
        ("predictor θ", f"-/{merge_frames}", naive["predictor"], inti["predictor"]),
        ("interpolation Φ", f"-/{merge_frames}", naive["interpolation"], inti["interpolation"]),
        ("head", "", naive["head"], inti["head"]),
        ("total", "", naive["total"], inti["total"]),
    ]
    return rows


def module_rows(cfg: ModelConfig, frames: int, batch: int, stages) -> list[tuple[str, str, int, int]]:
    """The temporal modules (spec/00-method.md §12.3), one row per stage that has one: the naive
    model keeps them ("naive + module"), each at the frames left at its block."""
    rows = []
    for a, b in stages:
        blocks = [k for k in cfg.module_blocks if a < k <= b]
        if not blocks:
            continue
        t = frames // 2 ** sum(1 for k in cfg.schedule if k <= a)
        naive = batch * len(blocks) * sum(temporal_macs(cfg, frames).values())
        inti = batch * len(blocks) * sum(temporal_macs(cfg, t).values())
        rows.append((f"{MODULE_NAMES[cfg.temporal]}, {blocks_text(blocks)}", f"{frames}/{t}", naive, inti))
    return rows


def format_cost_table(cfg: ModelConfig, frames: int, batch: int = 1) -> str:
    rows = cost_rows(cfg, frames, batch)
    div, prefix = mac_unit(rows[-1][2])
    mac, flop = f"{prefix}MACs", f"{prefix}FLOPs"
    plus = " + module" if cfg.temporal != "none" else ""
    body = []
    for part, fr, n, i in rows:
        if part == "total":
            body.append(separator())
        body.append((part, fr, f"{n / div:,.3f}", f"{i / div:,.3f}", _pct(n, i), f"{2 * n / div:,.3f}", f"{2 * i / div:,.3f}"))
    red = ref.reduction(cfg, frames)
    lines = [
        f"inti cost: {describe(cfg)}",
        f"{frames} frames, schedule {schedule_text(cfg.schedule)}, batch {batch}",
        "MACs: one multiply-accumulate counts 1 (what fvcore and video papers call FLOPs).",
        "FLOPs: 2 x MACs (torch FlopCounterMode's convention). frames: naive/InTI at that part.",
    ]
    if plus:
        lines.append("Both sides carry the temporal module (spec/00-method.md §12.3): naive + module against InTI + module.")
    lines += [
        "",
        table(body, ["part", "frames", f"naive{plus} {mac}", f"InTI{plus} {mac}", "reduction", f"naive{plus} {flop}",
                     f"InTI{plus} {flop}"], colalign=("left", "right", "right", "right", "right", "right", "right")),
        "",
        f"reduction, blocks only:                {red['blocks']:.1%}",
    ]
    if plus:
        lines.append(f"reduction, temporal modules only:      {red['temporal']:.1%}")
    lines.append(f"reduction, total (predictor included): {red['total']:.1%}")
    return "\n".join(lines)


def format_paper_table() -> str:
    base = ref.preset("vit_l14")
    body = []
    for frames in PAPER_FRAMES:
        for schedule in PAPER_SCHEDULES:
            cost = ref.compare(base.replace(schedule=schedule), frames)
            naive, inti, red = cost["naive"]["total"], cost["inti"]["total"], cost["reduction"]
            body.append((str(frames), schedule_text(schedule), f"{naive / 1e9:,.1f}", f"{inti / 1e9:,.1f}",
                         f"{2 * naive / 1e9:,.1f}", f"{2 * inti / 1e9:,.1f}", f"{red['blocks']:.1%}", f"{red['total']:.1%}"))
    body += [separator(), ("paper", "", "", "", "", "", f"{PAPER_CLAIM:.1%}", "not stated")]
    return "\n".join([
        "inti cost --paper: the rows that stand next to the paper's claim,",
        '"37.5% fewer GFLOPs than naive adaptation" (InTI, arXiv 2408.06840).',
        f"{describe(base)} (CLIP ViT-L/14), batch 1.",
        "MACs: one multiply-accumulate counts 1. FLOPs = 2 x MACs.",
        "",
        table(body, ["frames", "schedule", "naive GMACs", "InTI GMACs", "naive GFLOPs", "InTI GFLOPs", "blocks only",
                     "total, θ included"], colalign=("left", "left", "right", "right", "right", "right", "right", "right")),
        "",
        "The paper's 37.5% matches the blocks-only reduction (each schedule saves 9/24 of the block",
        "MACs). The total, with the predictor θ, the interpolation, patch embedding and head, is",
        "printed beside it, not in its place.",
    ])


def format_paper_temporal_table(name: str) -> str:
    """The --paper rows with a temporal module setting on both sides (naive + module, InTI +
    module), next to the paper's "37% fewer GFLOPs" with temporal modules."""
    base = ref.preset("vit_l14")
    body = []
    for frames in PAPER_FRAMES:
        for schedule in PAPER_SCHEDULES:
            cfg = with_temporal(base.replace(schedule=schedule), name, frames)
            cost = ref.compare(cfg, frames)
            naive, inti, red = cost["naive"]["total"], cost["inti"]["total"], cost["reduction"]
            body.append((str(frames), schedule_text(schedule), f"{naive / 1e9:,.1f}", f"{inti / 1e9:,.1f}",
                         f"{2 * naive / 1e9:,.1f}", f"{2 * inti / 1e9:,.1f}", f"{red['blocks']:.1%}",
                         f"{red['temporal']:.1%}", f"{red['total']:.1%}"))
    body += [separator(), ("paper", "", "", "", "", "", "", "", f"{PAPER_CLAIM_TEMPORAL:.0%}")]
    module = describe(with_temporal(base, name, PAPER_FRAMES[0])).split("; ", 1)[1]
    module = module.replace(f"T0={PAPER_FRAMES[0]}", "T0 = the row's frames")
    return "\n".join([
        f"inti cost --paper --temporal {name}: the rows that stand next to the paper's claim with",
        'temporal modules, "87.6% ... with 37% fewer GFLOPs" (InTI, arXiv 2408.06840).',
        f"{describe(base)} (CLIP ViT-L/14), batch 1;",
        f"module: {module}.",
        "Both sides carry the module: naive + module against InTI + module.",
        "MACs: one multiply-accumulate counts 1. FLOPs = 2 x MACs.",
        "",
        table(body, ["frames", "schedule", "naive+m GMACs", "InTI+m GMACs", "naive+m GFLOPs", "InTI+m GFLOPs",
                     "blocks only", "modules only", "total"],
              colalign=("left", "left", "right", "right", "right", "right", "right", "right", "right")),
        "",
        "Which temporal modules and schedule the paper's 37% rests on is not in the available text",
        "(spec/00-method.md §12); the rows show what this module setting gives, predictor included.",
    ])


def run(args) -> int:
    if args.paper:
        print(format_paper_table() if args.temporal is None else format_paper_temporal_table(args.temporal))
        return EXIT_OK
    cfg = with_schedule(named_config(args.preset), args.schedule)
    check_frames(args.frames, cfg)
    if args.temporal is not None:
        try:
            cfg = with_temporal(cfg, args.temporal, args.frames)
        except ValueError as e:
            raise CLIError(f"bad --temporal {args.temporal} for {args.preset}: {e}") from None
    print(format_cost_table(cfg, args.frames, args.batch))
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "cost", help="the MAC table: naive against InTI, per part",
        description="MACs of naive adaptation and of InTI, per part (patch embedding, blocks per stage, "
                    "predictor, interpolation, head), with the reduction; MACs and FLOPs = 2 x MACs.",
        epilog="examples: inti cost --preset vit_l14 --frames 16 --schedule 8,20 ; inti cost --paper ; "
               "inti cost --temporal st_adapter_12x384 --frames 8",
    )
    add_schedule_args(p, "vit_b16", "input frames T0")
    p.add_argument("--batch", type=positive_int, default=1, help="clips per batch (default: 1)")
    p.add_argument("--paper", action="store_true",
                   help="print only the ViT-L/14 rows behind the paper's 37.5%% claim (8 and 16 frames; S=(6,), (8,20), (10,16))")
    p.add_argument("--temporal", choices=sorted(TEMPORAL_PRESETS), default=None,
                   help="add a temporal module setting (spec/00-method.md §12) to both sides: naive + module against "
                        "InTI + module; st_adapter_12x384 and _24x384 are ST-Adapter's ViT-B presets, aim is AIM's block")
    p.set_defaults(run=run)
    return p
