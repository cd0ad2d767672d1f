"""InTI in place on an open_clip ViT: ``inti.patch.open_clip(model, schedule=(3,))``.

`model` is open_clip's ``VisionTransformer`` or a whole CLIP model, whose ``.visual`` is patched.
After the patch the tower takes video (B, T, 3, H, W): its own embedding runs on every frame,
its residual blocks with Φ merging neighbouring frames after each block of the schedule
(spec/00-method.md §3), its own pooling (``ln_post`` and the pool type) on every frame left, and
then the mean over those frames and the projection, once per clip (the readout, §2.4-2.5). So
``model.encode_image(video)`` and ``model(video, text)`` return one image embedding per clip; with
``output_tokens`` the tokens come back per clip, (B, T', L, C). With ``schedule=()`` that is the
naive adaptation: the mean of the tower's per-frame embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import (
    Patched, attach, check_video, frame_mean, grad_checkpointed, merge_config, run_blocks, square,
    swap_class,
)


def make_inti_class(transformer_class: type) -> type:
    class InTIVisionTransformer(Patched, transformer_class):
        """
        Modifications:
        - forward takes video (b, T, 3, H, W): the frames are embedded as a batch of images
          (``_embeds``), and the blocks of ``transformer.resblocks`` run here, with Φ
          (``self.merges``) merging frames after each block of ``self.inti_config.schedule``.
        - Each remaining frame is pooled as open_clip pools an image (``_pool``); the pooled
          vectors are averaged over the frames, then projected: one embedding per clip.
        """

        def forward(self, x: torch.Tensor):
            # Note: this is open_clip.transformer.VisionTransformer.forward with modifications.
            cfg = self.inti_config
            clips = check_video(x, cfg)
            x = self._embeds(x.flatten(0, 1))  # (b T, N, C): each frame as an image, ln_pre included
            x = self._inti_blocks(x, clips)  # (b T', N, C)
            pooled, tokens = self._pool(x)  # per frame
            pooled = frame_mean(pooled, clips)  # InTI's readout: the mean over the frames left
            if self.proj is not None:
                pooled = pooled @ self.proj
            if self.output_tokens:
                return pooled, tokens.unflatten(0, (clips, -1))
            return pooled

        def _inti_blocks(self, x: torch.Tensor, clips: int) -> torch.Tensor:
            # Note: this is open_clip.transformer.Transformer.forward with modifications.
            transformer = self.transformer
            seq_first = not getattr(transformer, "batch_first", True)
            checkpointing = getattr(transformer, "grad_checkpointing", False) and torch.is_grad_enabled()

            def step(block, x):  # one block as open_clip runs it: (b T, N, C) in and out
                x = x.transpose(0, 1) if seq_first else x  # NLD -> LND where the blocks want it
                x = grad_checkpointed(block, x) if checkpointing else block(x)
                return x.transpose(0, 1) if seq_first else x

            # InTI: open_clip's blocks, with Φ merging neighbouring frames after each block of the schedule
            return run_blocks(self, transformer.resblocks, x, clips, step=step)

    return InTIVisionTransformer


def _tower(model: nn.Module) -> nn.Module:
    try:
        from open_clip.transformer import VisionTransformer
    except ImportError:
        raise ImportError("inti.patch.open_clip needs open_clip: pip install 'inti[interop]'") from None
    tower = getattr(model, "visual", model)
    if not isinstance(tower, VisionTransformer):
        raise TypeError(f"inti.patch.open_clip takes open_clip's VisionTransformer or a CLIP model whose .visual is one, "
                        f"got {type(model).__name__}"
                        + (f" with .visual {type(tower).__name__}" if tower is not model else ""))
    if not (hasattr(tower, "_embeds") and hasattr(tower, "_pool")):
        raise TypeError("this open_clip version's VisionTransformer has no _embeds and _pool; "
                        "inti.patch needs open_clip_torch 3")
    return tower


def patch(model: nn.Module, schedule, frames: int | None = None, *, seed: int = 0, **options) -> nn.Module:
    """Apply InTI to an open_clip ViT in place (the tower, or a CLIP model's ``.visual``); return `model`.

    schedule, frames, seed and options as in `inti.patch.timm`. θ becomes the tower's ``merges``
    (keys ``merges.{j}.*``, or ``visual.merges.{j}.*`` in a whole CLIP model), trainable, in the
    tower's dtype and device. Refused: patch dropout (it breaks the grid θ reads) and a tower
    without a class token. ``inti.patch.undo(model)`` restores the original."""
    tower = _tower(model)
    if not isinstance(tower.patch_dropout, nn.Identity):
        raise ValueError("patch dropout drops tokens and breaks the grid θ reads; build the model with patch_dropout=0")
    if getattr(tower, "class_embedding", None) is None:
        raise ValueError("InTI needs a class token in front of the patch tokens (spec/00-method.md §3.4); "
                         "this tower has none")
    block = tower.transformer.resblocks[0]
    cfg = merge_config(
        image_size=square(tower.image_size, "image size"), patch_size=square(tower.patch_size, "patch size"),
        width=tower.conv1.out_channels, depth=len(tower.transformer.resblocks), heads=block.attn.num_heads,
        ln_eps=getattr(block.ln_1, "eps", 1e-5), schedule=schedule, frames=frames, options=options,
    )
    square(tower.grid_size, "patch grid")
    attach(tower, cfg, seed, like=tower.class_embedding)
    swap_class(tower, make_inti_class)
    return model
