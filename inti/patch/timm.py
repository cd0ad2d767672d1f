"""InTI in place on a timm VisionTransformer: ``inti.patch.timm(model, schedule=(3,))``.

After the patch the model takes video (B, T, 3, H, W). Its own patch embedding, positions,
blocks, norm and head run on every frame as on an image; after each block of the schedule, Φ
merges neighbouring frames (spec/00-method.md §3), so the later blocks see half as many. It
returns what timm returns, once per clip: the logits (or pre-logits, or ``forward_features``'
tokens, then (B, T', N, C) for the T' frames left), each frame pooled as timm pools it and the
pooled vectors averaged over the frames left before the head, which is the method's readout
(§2.4-2.5). With ``schedule=()`` that is the naive adaptation: the mean of timm's per-frame logits.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import (
    Patched, attach, check_video, frame_mean, grad_checkpointed, merge_config, run_blocks, square, swap_class,
)


def make_inti_class(transformer_class: type) -> type:
    class InTIVisionTransformer(Patched, transformer_class):
        """
        Modifications:
        - forward_features takes video (b, T, 3, H, W): the frames are embedded as a batch of images,
          the blocks run with Φ (``self.merges``) merging frames after each block of
          ``self.inti_config.schedule``, and the tokens come back per clip, (b, T', N, C).
        - forward_head pools each remaining frame (and applies fc_norm) as timm does, averages over
          the frames, then applies the head: one output per clip.
        - Attention masks are refused: the merges change the number of frames they would apply to.
        """

        def forward_features(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
            # Note: this is timm.models.vision_transformer.VisionTransformer.forward_features with modifications.
            if attn_mask is not None or is_causal:
                raise ValueError("a model patched by inti.patch takes no attention mask (attn_mask, is_causal)")
            cfg = self.inti_config
            clips = check_video(x, cfg)
            x = self.patch_embed(x.flatten(0, 1))  # (b T, L, C): each frame as an image
            x = self._pos_embed(x)  # (b T, N, C)
            x = self.patch_drop(x)
            x = self.norm_pre(x)
            checkpointing = self.grad_checkpointing and torch.is_grad_enabled()
            # InTI: timm's blocks, with Φ merging neighbouring frames after each block of the schedule
            x = run_blocks(self, self.blocks, x, clips, step=grad_checkpointed if checkpointing else None)
            x = self.norm(x)
            return x.unflatten(0, (clips, -1))  # (b, T', N, C)

        def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
            if x.dim() != 4:
                raise ValueError(f"forward_head of a patched model takes forward_features' tokens (B, T', N, C), "
                                 f"got shape {tuple(x.shape)}")
            clips = x.shape[0]
            pooled = super().forward_head(x.flatten(0, 1), pre_logits=True)  # (b t', C): pool, fc_norm, head_drop
            pooled = frame_mean(pooled, clips)  # InTI's readout: the mean over the frames left
            return pooled if pre_logits else self.head(pooled)

    return InTIVisionTransformer


def _host_class():
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:
        raise ImportError("inti.patch.timm needs timm: pip install 'inti[interop]'") from None
    return VisionTransformer


def patch(model: nn.Module, schedule, frames: int | None = None, *, seed: int = 0, **options) -> nn.Module:
    """Apply InTI to a timm ``VisionTransformer`` in place, and return it.

    schedule: the blocks, counted from 1, after which Φ merges neighbouring frames (§3), such as
    (3,) on a 12-block ViT-B; () merges nowhere (the naive adaptation). frames: a frame count to
    check against the schedule now (each call is checked too). seed: θ's initial values, by
    ref's rule (the same as ``from_timm(..., seed=seed)``'s; the score layer is zero, so every
    merge starts as the plain mean of its pair). options: θ's ``reduction``, ``branches``,
    ``weight_fn``, ``weight_granularity`` (spec/00-method.md §3.3-3.4).

    θ becomes ``model.merges`` (state-dict keys ``merges.{j}.*``), trainable, in the model's dtype
    and device. Refused: a model with register or distillation tokens or none (θ needs one class
    token in front of a square grid), ``dynamic_img_size``, and patch dropout (it breaks the grid).
    ``inti.patch.undo(model)`` restores the original."""
    host = _host_class()
    if not isinstance(model, host):
        raise TypeError(f"inti.patch.timm takes a timm VisionTransformer, got {type(model).__name__}")
    if model.cls_token is None or model.num_prefix_tokens != 1:
        raise ValueError("InTI needs exactly one class token in front of the patch tokens (θ lays the rest on the "
                         f"grid, spec/00-method.md §3.4); this model has {model.num_prefix_tokens} prefix token(s)"
                         + ("" if model.cls_token is not None else " and no class token"))
    if getattr(model, "dynamic_img_size", False):
        raise ValueError("InTI's θ needs a fixed patch grid; this model has dynamic_img_size=True")
    if not isinstance(model.patch_drop, nn.Identity):
        raise ValueError("patch dropout drops tokens and breaks the grid θ reads; build the model with patch_drop_rate=0")
    embed = model.patch_embed
    cfg = merge_config(
        image_size=square(embed.img_size, "image size"), patch_size=square(embed.patch_size, "patch size"),
        width=model.embed_dim, depth=len(model.blocks), heads=model.blocks[0].attn.num_heads,
        ln_eps=getattr(model.blocks[0].norm1, "eps", 1e-6), schedule=schedule, frames=frames, options=options,
    )
    square(embed.grid_size, "patch grid")
    attach(model, cfg, seed, like=model.cls_token)
    swap_class(model, make_inti_class)
    return model
