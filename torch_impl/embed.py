"""Mirror of ref/embed.py: patch embedding, class token, positions, ln_pre.

The modules themselves live on `InTIModel` (`patch_embed`, `cls_token`, `pos_embed`,
`ln_pre`), so that the state_dict keys are spec/00-method.md §3.5's; `InTIModel.embed` chains the steps
as `ref.embed.embed` does, with these functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def patchify(video: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(b, t, 3, H, W) -> (b, t, L, 3*P*P), row-major patches flattened as (3, P, P)."""
    return rearrange(video, "b t c (h p) (w q) -> b t (h w) (c p q)", p=patch_size, q=patch_size)


def patch_embed(conv: torch.nn.Conv2d, video: torch.Tensor) -> torch.Tensor:
    """(b, t, 3, H, W) -> (b, t, L, C): a stride-P convolution, which is patches @ W_patch.T."""
    b = video.shape[0]
    x = F.conv2d(rearrange(video, "b t c h w -> (b t) c h w"), conv.weight, conv.bias, stride=conv.stride)
    return rearrange(x, "(b t) c h w -> b t (h w) c", b=b)
