"""Mirror of ref/model.py: the whole InTI model as one nn.Module.

`InTIModel(cfg)` takes the same `ModelConfig` as ref, and its `state_dict` keys and shapes
are exactly `ref.param_shapes(cfg)` (spec/00-method.md §3.5).

The forward is split as timm's `forward_features` / `forward_head`, and the loop over blocks
and merges exists once in torch_impl, in `forward_features`:

    forward(video, return_trace=False)     check_video, forward_features, readout, check_output
    forward_features(video, *, trace=None) embed, then the loop, with no checks:
        block_step(i, x, trace) -> x       block i (from 0); default self.blocks[i](x)
        merge_step(j, x, trace) -> x       merge j, after block cfg.schedule[j] (from 1); default Φ_j
    readout(x) -> dict                     ln_post, mean over frames, proj, head (timm's forward_head)

`trace` is None, or a dict that each step fills with its entries under `ref.model`'s names
(`block_key`, `merge_key`, `merge_entries`). Those who need another forward override a step in
a subclass, never the loop:

- the ONNX export wrapper (inti/export.py) calls forward_features and readout: no eager checks,
  the explicit attention path set on the blocks beforehand, a trace only for the weights it
  outputs;
- ToMe (tome.py) replaces block_step: r tokens of every frame merged inside block i, the token
  sizes carried from step to step on the model, as ToMe's own patch carries them;
- a baseline that selects or drops frames or tokens at the schedule's points replaces
  merge_step; keeping the first frame of every pair, say (hard selection with no score):

      class KeepFirst(InTIModel):
          def merge_step(self, j, x, trace):
              y = x[:, 0::2]  # (b, t/2, n, C)
              if trace is not None:
                  trace[merge_key(j, "tokens")] = y
              return y

- activation checkpointing lives in block_step itself, switched on by
  `set_grad_checkpointing()` (timm's `set_grad_checkpointing`): the block runs again in the
  backward, non-reentrant, with the random draws of stochastic depth replayed.

Stochastic depth lives inside `Block` (a DropPath on each residual branch, as timm's), not
in a step: `set_drop_path(rate)`. Both are training-only and add no parameter (spec/00-method.md §13). A host library's model patched in place keeps its own loop and calls the same merge
between its blocks: `Merge(cfg)(x)` (interpolation.py) -> (merged, decided), and
`merge_entries(j, decided, merged)` for its trace.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ref.config import ModelConfig, require_config
from ref.model import block_key, merge_after, merge_entries

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
    (logits, trace) with the same named intermediates as `ref.forward`. The loop is
    `forward_features`, its hooks `block_step` and `merge_step` (the module docstring).
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
        self.merge_after = merge_after(cfg)  # {block i: merge j}, both from 0
        self.grad_checkpointing = False  # training only: set_grad_checkpointing
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
        (spec/00-method.md §13), in `block_step`: the same gradients, less memory, one more
        forward of every block."""
        self.grad_checkpointing = bool(enable)
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

    def forward_features(self, video: torch.Tensor, *, trace: dict | None = None) -> torch.Tensor:
        """The one loop over blocks and merges: embed, then block i for each i, and merge j where
        the schedule puts it. video (b, T0, 3, H, W) -> the last block's tokens (b, t, N, C).

        No checks: `forward` makes them around this, and the ONNX export wrapper, which cannot
        hold them, calls this directly. Given a dict `trace`, fills it in `ref.forward`'s order
        (`ref.trace_keys`); each step adds its own entries. Override a step, never the loop."""
        x = self.embed(video)  # (b, T0, N, C)
        if trace is not None:
            trace["embed"] = x
        for i in range(len(self.blocks)):
            x = self.block_step(i, x, trace)  # (b, t, n, C)
            if trace is not None:
                trace[block_key(i)] = x
            if i in self.merge_after:
                x = self.merge_step(self.merge_after[i], x, trace)  # (b, t/2, n, C) for Φ
        return x

    def block_step(self, i: int, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        """Block i (from 0) on x (b, t, n, C), under activation checkpointing when it is set and
        gradients are on. A hook: ToMe and the like replace it; entries it adds to `trace` go
        before ``blocks.{i}``."""
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(self.blocks[i], x, use_reentrant=False)  # replays DropPath's draws
        return self.blocks[i](x)

    def merge_step(self, j: int, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        """Merge j (schedule order, from 0), after block ``cfg.schedule[j]`` (from 1): Φ_j
        (spec/00-method.md §3), (b, t, N, C) -> (b, t/2, N, C), its decision and output added to `trace`. A hook:
        baselines that select or drop frames or tokens at the schedule's points replace it."""
        y, decided = self.merges[j](x)
        if trace is not None:
            trace |= merge_entries(j, decided, y)
        return y

    def forward(self, video: torch.Tensor, return_trace: bool = False, check: bool = True):
        """check=False skips the output check (it is how the check itself finds the entry)."""
        check_video(video, self.cfg, self.pos_embed.dtype)
        trace = {} if return_trace else None
        x = self.forward_features(video, trace=trace)  # (b, T0 / 2^|S|, n, C)
        out = self.readout(x)
        if check:
            check_output(self, video, out["logits"])  # [ours], as ref.model.finish
        if trace is None:
            return out["logits"]
        trace |= out
        return out["logits"], trace
