"""`inti train --config FILE --dry-run`: everything a recipe resolves to, without data or weights.

The report holds the final config (the resolved recipe, every field), the derived run (steps,
warmup, lr and how they came), the model built on PyTorch's meta device (no memory, no
weights) with its parameter count, the MACs per view and per clip with the test views
(`ref.count_macs`, spec/00-method.md §4) beside naive adaptation's, an estimate of the memory
per GPU, and the checks of the files the recipe names (lists, root, class names, weights).

Memory estimate [ours, an estimate, not a measurement]: activations saved for the backward,
34 bytes per token and channel per block with 16-bit autocast (Korthikanti et al., 2022,
"Reducing Activation Recomputation in Large Transformer Models", eq. 1, without dropout masks
and with fused attention, which keeps no N x N matrix), twice that in float32, summed over the
frames each block sees; with activation checkpointing, the float32 input of every block (4
bytes per token and channel) plus one block's full activations. The weights take 4 bytes per
parameter, and each trained one 12 more (its gradient and AdamW's two moments). θ, the
temporal modules, the head and the data are left out.
"""

from __future__ import annotations

from pathlib import Path

import ref

from .recipe import Resolved, count_clips, resolved_toml


def activation_bytes(cfg, frames: int, clips: int, bf16: bool = True, checkpoint: bool = False) -> int:
    """The activation estimate of the module docstring for `clips` clips on one GPU."""
    per = 34 if bf16 else 68
    stages = [t for t, _ in ref.count_macs(cfg, frames)["per_block"]]  # the frames each block sees
    token_channels = cfg.num_tokens * cfg.width
    if not checkpoint:
        return clips * per * token_channels * sum(stages)
    return clips * token_channels * (4 * sum(stages) + per * max(stages))


def param_counts(cfg, freeze_backbone: bool) -> tuple[int, int]:
    """(total, trained) parameters of the torch model, built on the meta device."""
    import torch

    from torch_impl import InTIModel

    from .optim import group_of

    with torch.device("meta"):
        model = InTIModel(cfg)
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for n, p in model.named_parameters() if not (freeze_backbone and group_of(n) == "backbone"))
    return total, trained


def file_checks(r: Resolved) -> list[str]:
    """One line per file the recipe names: found (with the list's clip count) or missing."""
    d, m, lines = r.data, r.recipe.values["model"], []
    if d["synthetic"]:
        lines.append(f"data: synthetic task {d['synthetic']!r} ({d['synthetic_train']} training, {d['synthetic_val']} validation clips)")
    else:
        for key in ("train_list", "val_list"):
            if not d[key]:
                lines.append(f"data.{key}: not given (pass --set data.{key}=FILE)")
                continue
            try:
                lines.append(f"data.{key}: {d[key]} ({count_clips(d[key], d['separator'])} clips)")
            except (OSError, ValueError) as e:
                lines.append(f"data.{key}: MISSING or unreadable: {e}")
        for key, kind in (("root", "folder"), ("classes", "file")):
            if d[key]:
                ok = Path(d[key]).is_dir() if kind == "folder" else Path(d[key]).is_file()
                lines.append(f"data.{key}: {d[key]} ({'found' if ok else 'MISSING'})")
            elif key == "root":
                lines.append("data.root: not given (pass --set data.root=DIR)")
    if m["weights"]:
        path = Path(m["weights"]).expanduser()
        lines.append(f"model.weights: {m['weights']} ({f'found, {path.stat().st_size / 1e6:,.0f} MB' if path.is_file() else 'MISSING'})")
    elif m["init"] == "pretrained":
        lines.append("model.weights: not given; this recipe starts from pretrained weights (pass --set weights=FILE, "
                     "or --set init=fresh for random ones)")
    return lines


def problems(r: Resolved) -> list[str]:
    """The file checks that would stop a run (missing files), for the exit status."""
    return [line for line in file_checks(r) if "MISSING" in line]


def report(r: Resolved) -> str:
    """The dry-run report (the module docstring)."""
    from ..labels import describe, schedule_text

    cfg, tc, frames = r.model, r.train, r.recipe.values["model"]["frames"]
    gpus = r.recipe.values["run"]["gpus"]
    views = r.test["views"][0] * r.test["views"][1]
    inti = ref.count_macs(cfg, frames)
    naive = ref.count_macs(cfg.replace(schedule=()), frames)
    red = ref.reduction(cfg, frames)
    total, trained = param_counts(cfg, tc.freeze_backbone)
    per_gpu = tc.batch_size // tc.accum / gpus
    clips = max(int(per_gpu), 1)
    act = activation_bytes(cfg, frames, clips, tc.bf16, tc.grad_checkpoint)
    state = 4 * total + 12 * trained
    g = 1e9
    lines = [resolved_toml(r.recipe).rstrip(), "", "# ---- resolved run " + "-" * 60]
    lines += [f"model: {describe(cfg)}", f"frames {frames}, schedule {schedule_text(cfg.schedule)}"]
    lines += r.notes
    lines += [
        f"parameters: {total:,} ({trained:,} trained{'; backbone frozen' if tc.freeze_backbone else ''}), built on the meta device",
        f"MACs per view: {inti['total'] / g:,.2f} G (naive adaptation {naive['total'] / g:,.2f} G); FLOPs = 2 x MACs",
        f"MACs per clip: {inti['total'] * views / g:,.2f} G with the test views {r.test['views'][0]}x{r.test['views'][1]} "
        f"(temporal x spatial), crop {r.test['crop']}, short side {r.test['resize']}",
        f"reduction against naive: blocks {red['blocks']:.1%}, total {red['total']:.1%}"
        + (f", temporal modules {red['temporal']:.1%}" if "temporal" in red else ""),
    ]
    paper = r.recipe.values["recipe"]
    if paper["paper_reduction"]:
        key = "total" if cfg.temporal != "none" else "blocks"
        lines.append(f"paper: {paper['paper_reduction']:.1%} fewer GFLOPs [paper]; this recipe's {key} reduction is {red[key]:.1%}")
    if paper["paper_top1"]:
        lines.append(f"paper: {paper['paper_top1']:g} top-1 [paper]")
    lines += [
        f"per GPU ({gpus} GPUs, accum {tc.accum}): {per_gpu:g} clips a micro-batch; estimated memory "
        f"{(act + state) / 2**30:,.1f} GiB = activations {act / 2**30:,.1f} GiB "
        f"({'bf16' if tc.bf16 else 'float32'}{', checkpointed per block' if tc.grad_checkpoint else ''}) "
        f"+ weights, gradients and AdamW {state / 2**30:,.1f} GiB (an estimate: inti.train.dryrun)",
        "toolkit: " + ", ".join([f"layer_decay {tc.layer_decay:g}", f"drop_path {tc.drop_path:g}", f"mixup {tc.mixup:g}",
                                 f"cutmix {tc.cutmix:g}", f"label_smoothing {tc.label_smoothing:g}", f"ema {tc.ema_decay:g}",
                                 f"grad_checkpoint {tc.grad_checkpoint}", f"augment {r.augment}"]),
    ]
    lines += file_checks(r)
    return "\n".join(lines)
