"""Mirror of ref/model.py: the whole InTI model as one nn.Module.

`InTIModel(cfg)` takes the same `ModelConfig` as ref, and its `state_dict` keys and shapes
are exactly `ref.param_shapes(cfg)` (spec/00-method.md §3.5).
"""

from __future__ import annotations

import torch
from torch import nn

from ref.config import ModelConfig, require_config

from .attention import PATHS
from .block import make_block
from .checks import check_frames, check_output, check_video
from .embed import patch_embed
from .interpolation import Merge
from .layers import NORM_PATHS, LayerNorm
from .temporal import TemporalEmbedding


class InTIModel(nn.Module):
    """InTI: an image ViT whose blocks are interleaved with merges Φ at `cfg.schedule`.

    forward(video (b, T0, 3, H, W), return_trace=False) -> logits (b, K), or
    (logits, trace) with the same named intermediates as `ref.forward`.
    `attn_path` is "sdpa" (fused, default) or "explicit". `frames`, if given, is checked
    against the schedule now, as it is at every call [ours: each merge needs even T].
    """

    def __init__(self, cfg: ModelConfig, attn_path: str = "sdpa", frames: int | None = None):
        super().__init__()
        require_config(cfg)
        if attn_path not in PATHS:
            raise ValueError(f"attn_path must be one of {PATHS}, got {attn_path!r}")
        if frames is not None:
            check_frames(frames, cfg)
        C = cfg.width
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(3, C, cfg.patch_size, stride=cfg.patch_size, bias=cfg.patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(C))
        self.pos_embed = nn.Parameter(torch.zeros(cfg.num_tokens, C))
        # AIM's temporal embedding (spec/00-method.md §12.2); nn.Identity() without it
        self.temporal_embed = TemporalEmbedding(cfg.temporal_frames, C) if cfg.temporal == "aim" else nn.Identity()
        self.ln_pre = LayerNorm(C, eps=cfg.ln_eps) if cfg.ln_pre else nn.Identity()
        # blocks in cfg.module_blocks carry the temporal module of spec/00-method.md §12
        self.blocks = nn.ModuleList(make_block(cfg, i + 1, attn_path) for i in range(cfg.depth))
        self.ln_post = LayerNorm(C, eps=cfg.ln_eps)
        # Parts a config switches off are nn.Identity(): no parameters, so the state_dict keys
        # stay spec/00-method.md §3.5's, and forward reads without tests of cfg.
        self.proj = nn.Linear(C, cfg.embed_dim, bias=False) if cfg.embed_dim is not None else nn.Identity()
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.merges = nn.ModuleList(Merge(cfg) for _ in cfg.schedule)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    @property
    def attn_path(self) -> str:
        return self.blocks[0].attn.path if len(self.blocks) else "sdpa"

    def set_attn_path(self, path: str) -> "InTIModel":
        """Switch every block between the fused ("sdpa") and "explicit" attention paths."""
        if path not in PATHS:
            raise ValueError(f"attention path must be one of {PATHS}, got {path!r}")
        for blk in self.blocks:
            blk.attn.path = path
        return self

    @property
    def norm_path(self) -> str:
        return self.ln_post.path

    def set_norm_path(self, path: str) -> "InTIModel":
        """Switch every LayerNorm (blocks, ln_pre, ln_post, θ, temporal modules) between the
        "explicit" float32 round trip and torch's "native" half-precision kernel (layers.py)."""
        if path not in NORM_PATHS:
            raise ValueError(f"norm path must be one of {NORM_PATHS}, got {path!r}")
        for module in self.modules():
            if isinstance(module, LayerNorm):
                module.path = path
        return self

    def set_drop_path(self, rate: float) -> "InTIModel":
        """Stochastic depth for training (spec/00-method.md §13): block i (from 0) drops each
        residual branch with probability rate * i / (D - 1), linear from 0 to `rate` [timm's
        rule]. The identity in evaluation; rate 0 turns it off."""
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"the drop path rate must lie in [0, 1), got {rate!r}")
        for blk, p in zip(self.blocks, torch.linspace(0.0, rate, len(self.blocks)).tolist()):
            blk.drop_path.p = p
        return self

    def set_grad_checkpointing(self, enable: bool = True) -> "InTIModel":
        """Recompute each block's activations in the backward rather than keep them
        (spec/00-method.md §13): the same gradients, less memory, one more forward."""
        for blk in self.blocks:
            blk.checkpointing = bool(enable)
        return self

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Patch embedding, class token first, positions added (and AIM's temporal embedding,
        spec/00-method.md §12.2), then ln_pre (spec/00-method.md §2.1-2.2). (b, t, 3, H, W) -> (b, t, N, C)."""
        patches = patch_embed(self.patch_embed, video)  # (b, t, L, C)
        b, t, _, c = patches.shape
        cls = self.cls_token.to(patches.dtype).expand(b, t, 1, c)
        x = torch.cat([cls, patches], dim=2) + self.pos_embed.to(patches.dtype)  # (b, t, N, C)
        return self.ln_pre(self.temporal_embed(x))

    def readout(self, x: torch.Tensor) -> dict:
        """ln_post on each frame's class token, mean over frames, projection [ours: after the
        mean], head. (b, t, N, C) -> {"pooled", "features", "logits"}."""
        pooled = self.ln_post(x[:, :, 0]).mean(dim=1)
        features = self.proj(pooled)
        logits = self.head(features)
        return {"pooled": pooled, "features": features, "logits": logits}

    def forward(self, video: torch.Tensor, return_trace: bool = False, check: bool = True):
        """check=False skips the output check (it is how the check itself finds the entry)."""
        cfg = self.cfg
        check_video(video, cfg, self.pos_embed.dtype)
        trace: dict[str, torch.Tensor] = {}
        keep = trace.__setitem__ if return_trace else (lambda name, value: None)
        x = self.embed(video)  # (b, T0, N, C)
        keep("embed", x)
        merge_after = {k: j for j, k in enumerate(cfg.schedule)}
        for i, blk in enumerate(self.blocks):
            x = blk(x)  # (b, t, N, C)
            keep(f"blocks.{i}", x)
            if i + 1 in merge_after:
                j = merge_after[i + 1]
                x, decided = self.merges[j](x)  # (b, t/2, N, C)
                keep(f"merges.{j}.scores", decided["scores"])
                keep(f"merges.{j}.weights", decided["weights"])
                keep(f"merges.{j}.tokens", x)
        return self.finish(video, x, trace, return_trace, check)

    def finish(self, video: torch.Tensor, x: torch.Tensor, trace: dict, return_trace: bool, check: bool):
        """The readout on the last block's tokens x, the output check [ours] (as ref.model.finish),
        and the return: logits, or (logits, trace) with the readout added to the trace."""
        out = self.readout(x)
        if check:
            check_output(self, video, out["logits"])
        if not return_trace:
            return out["logits"]
        trace |= out
        return out["logits"], trace
