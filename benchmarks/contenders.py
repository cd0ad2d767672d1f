"""The contenders, all on the same weights and the same input clip.

- ``naive``: torch_impl with an empty schedule, every frame through every block;
- ``inti``:  torch_impl with the preset's schedule (the backbone shared with ``naive``);
- ``timm``:  timm's ``VisionTransformer`` with our weights loaded, frame by frame ((B*T) frames
  at once), the pooled class tokens averaged over T, then our projection and head: the naive
  adaptation a user would write (eager rows only);
- ``merge``: InTI's merges Φ alone (weight predictor and interpolation), on the tokens that
  reach them, to give the share of InTI's time they take;
- ``gemm``:  the four GEMMs of one block on random operands of the model's shapes (gemm.py):
  the machine's GEMM rate that the others' MAC/s is a fraction of;
- ``ref``:   the NumPy executable spec `ref.forward` (InTI, float32; float32 eager rows only).

Pure bfloat16 rows run a cast copy of the models (the same weights rounded to bfloat16).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

import ref
from ref.checks import check_frames
from inti.io.layouts import external_key
from torch_impl import InTIModel, to_numpy


def build_models(cfg: ref.ModelConfig, device: str, seed: int = 0):
    """InTI and naive torch models sharing one backbone (the same tensors), float32, eval mode.

    The score layers get small random weights (they start at zero), so that the merges really
    weigh their frames; speed does not depend on the values."""
    torch.manual_seed(seed)
    inti = InTIModel(cfg).eval()
    for merge in inti.merges:
        if hasattr(merge, "score"):
            nn.init.normal_(merge.score.weight, std=0.02)
    inti = inti.to(device)
    return inti, naive_sharing(inti)


def naive_sharing(inti: InTIModel) -> InTIModel:
    """The naive model (schedule ()) holding `inti`'s backbone: the same tensors, no second copy."""
    with torch.device("meta"):  # no memory, no init: the weights come next
        naive = InTIModel(inti.cfg.replace(schedule=())).eval()
    backbone = {k: v for k, v in inti.state_dict().items() if not k.startswith("merges.")}
    naive.load_state_dict(backbone, strict=True, assign=True)
    return naive.set_attn_path(inti.attn_path).set_norm_path(inti.norm_path)


def timm_state_dict(model: InTIModel) -> dict[str, torch.Tensor]:
    """Our backbone in timm's VisionTransformer names (inti.io.layouts' key map), as views
    of the same tensors. The projection and head stay ours: timm's ViT cannot hold a
    projection (inti.io.pretrained.export_state_dict refuses it), so they run after
    timm's pooled output, see `TimmVideo`."""
    lead = {"cls_token": (1, 1, -1), "pos_embed": (1, *model.pos_embed.shape)}  # timm keeps leading 1s
    return {
        external_key(k, "timm"): v.reshape(lead[k]) if k in lead else v
        for k, v in model.state_dict().items()
        if not k.startswith(("merges.", "proj.", "head."))
    }


def build_timm(cfg: ref.ModelConfig, model: InTIModel, device: str) -> nn.Module:
    """timm's VisionTransformer configured like our backbone (CLIP-like: class token, norm_pre,
    QuickGELU, our LayerNorm eps, no fc_norm, no head), holding our weights."""
    from functools import partial

    from timm.layers import PatchEmbed, QuickGELU
    from timm.models.vision_transformer import VisionTransformer

    def embed_layer(**kw):  # timm ties the patch bias to pre_norm; ours is its own setting
        return PatchEmbed(**{**kw, "bias": cfg.patch_bias})

    with torch.device("meta"):  # no memory, no init: our weights are assigned next
        vit = VisionTransformer(
            img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.width, depth=cfg.depth,
            num_heads=cfg.heads, mlp_ratio=cfg.mlp_width / cfg.width, qkv_bias=True, class_token=True,
            pre_norm=cfg.ln_pre, fc_norm=False, num_classes=0, global_pool="token", embed_layer=embed_layer,
            act_layer=QuickGELU if cfg.activation == "quick_gelu" else partial(nn.GELU, approximate="none"),
            norm_layer=partial(nn.LayerNorm, eps=cfg.ln_eps), weight_init="skip",
        )
    vit.load_state_dict(timm_state_dict(model), strict=True, assign=True)  # shared, not copied
    left = [n for n, t in [*vit.named_parameters(), *vit.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"timm's ViT has tensors our weights do not cover: {left}")
    return vit.eval().to(device)


class TimmVideo(nn.Module):
    """The naive adaptation with timm: every frame through timm's ViT, the pooled class tokens
    averaged over time, then the same projection and head as our models (so both include them)."""

    def __init__(self, vit: nn.Module, ours: InTIModel):
        super().__init__()
        self.vit = vit
        self.proj, self.head = ours.proj, ours.head  # nn.Identity() where the config has none

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        pooled = self.vit(video.flatten(0, 1)).unflatten(0, (b, t)).mean(dim=1)  # (b, C)
        return self.head(self.proj(pooled))


class _Stop(Exception):
    pass


def merge_inputs(model: InTIModel, video: torch.Tensor) -> list[torch.Tensor]:
    """The tokens that reach each merge, from one eager forward stopped at the last merge."""
    seen: list[torch.Tensor] = []

    def grab(module, args):
        seen.append(args[0])
        if len(seen) == len(model.merges):
            raise _Stop

    handles = [m.register_forward_pre_hook(grab) for m in model.merges]
    try:
        model(video)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return seen


def _model_set(cfg, inti: InTIModel, naive: InTIModel, args, log) -> dict:
    """{"inti", "naive", "timm"}: timm holds inti's tensors (None unless asked for and installed)."""
    models = {"inti": inti, "naive": naive, "timm": None}
    if "timm" not in args.contenders:
        return models
    try:
        models["timm"] = TimmVideo(build_timm(cfg, inti, args.device), inti).eval()
    except ImportError as e:
        log(f"  timm is not available ({e}); its column stays empty")
    return models


def prepare_case(case, args, log, dtypes=("f32",)) -> dict:
    """The models and the input clip of one case (grid.Case).

    Returns {"models": {"cfg", "f32": {"inti", "naive", "timm"}, "bf16pure": {...} (when a
    row of `dtypes` needs it), "ref_params", "gemm" (filled by the rows)}, "video"}: naive and timm hold
    InTI's tensors; the bfloat16 set is a cast copy of the float32 one (model.to(bfloat16))."""
    cfg = ref.preset(case.preset)
    check_frames(case.frames, cfg)
    inti, naive = build_models(cfg, args.device, seed=args.seed)
    inti.set_norm_path(args.norm_path)
    naive.set_norm_path(args.norm_path)
    models = {"cfg": cfg, "ref_params": None, "gemm": {}, "f32": _model_set(cfg, inti, naive, args, log)}
    if "bf16pure" in dtypes:
        inti_b = copy.deepcopy(inti).to(torch.bfloat16)  # the float32 set stays as it is
        models["bf16pure"] = _model_set(cfg, inti_b, naive_sharing(inti_b), args, log)
    if "ref" in args.contenders:
        # float32 NumPy views of the same tensors: ref.forward's cast to the video's dtype is free.
        models["ref_params"] = {k: to_numpy(v) for k, v in inti.state_dict().items()}
    generator = torch.Generator().manual_seed(args.seed)
    video = torch.randn(case.batch, case.frames, 3, cfg.image_size, cfg.image_size, generator=generator)
    return {"models": models, "video": video.to(args.device)}
