"""InTI in place on a Hugging Face transformers CLIP image tower: ``inti.patch.transformers(model, schedule=(3,))``.

`model` is a ``CLIPVisionModel``, a ``CLIPVisionModelWithProjection`` or a ``CLIPModel``; the
patch goes on the vision tower inside it (the module that owns ``embeddings``, ``pre_layrnorm``,
``encoder`` and ``post_layernorm``). After the patch the tower takes video (B, T, 3, H, W) as
``pixel_values``: its embeddings and ``pre_layrnorm`` run on every frame, its encoder layers
with Φ merging neighbouring frames after each layer of the schedule (spec/00-method.md §3), and
``post_layernorm`` on each remaining frame's class token; the ``pooler_output`` is the mean over
those frames (the readout, §2.4). The host's own code does the rest, once per clip: the
projection (``image_embeds``, ``get_image_features``) and CLIPModel's image-text logits.
``last_hidden_state`` is per clip, (B, T', N, C), and so is each of ``hidden_states`` when asked
for. With ``schedule=()`` that is the naive adaptation: the mean of the per-frame outputs.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .common import (
    Patched, attach, check_video, frame_mean, merge_config, run_blocks, swap_class,
)

MODELS = ("CLIPVisionModel", "CLIPVisionModelWithProjection", "CLIPModel")
TOWER_PARTS = ("embeddings", "pre_layrnorm", "encoder", "post_layernorm")


def make_inti_class(tower_class: type) -> type:
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer

    # transformers 4's layers take (x, attention_mask, causal_attention_mask) and return a tuple
    causal_mask = "causal_attention_mask" in inspect.signature(CLIPEncoderLayer.forward).parameters

    class InTICLIPVisionTower(Patched, tower_class):
        """
        Modifications:
        - forward takes video (b, T, 3, H, W) as pixel_values: the frames are embedded as a batch of
          images, and the encoder's layers run here, with Φ (``self.merges``) merging frames after
          each layer of ``self.inti_config.schedule``.
        - post_layernorm is applied to each remaining frame's class token and the result averaged
          over the frames: ``pooler_output`` is one vector per clip, ``last_hidden_state`` and
          ``hidden_states`` are per clip, (b, T', N, C).
        - interpolate_pos_encoding and output_attentions are refused.
        """

        def forward(self, pixel_values=None, interpolate_pos_encoding: bool | None = False, output_attentions=None,
                    output_hidden_states=None, return_dict=None, **kwargs):
            # Note: this is transformers' CLIP vision forward (embeddings, pre_layrnorm, encoder,
            # post_layernorm on the class token) with modifications.
            if interpolate_pos_encoding or output_attentions:
                raise ValueError("a model patched by inti.patch takes neither interpolate_pos_encoding (θ reads a fixed "
                                 "grid) nor output_attentions")
            cfg = self.inti_config
            clips = check_video(pixel_values, cfg)
            if output_hidden_states is None:
                output_hidden_states = getattr(self.config, "output_hidden_states", False)
            x = self.embeddings(pixel_values.flatten(0, 1))  # (b T, N, C): each frame as an image
            x = self.pre_layrnorm(x)
            hidden = [x.unflatten(0, (clips, -1))]

            def step(layer, x):  # one encoder layer as transformers runs it, without an attention mask
                out = layer(x, None, None) if causal_mask else layer(x, None)
                return out[0] if isinstance(out, tuple) else out

            # InTI: the encoder's layers, with Φ merging neighbouring frames after each layer of the schedule
            x = run_blocks(self, self.encoder.layers, x, clips, step=step,
                           seen=lambda x: hidden.append(x.unflatten(0, (clips, -1))))
            pooled = frame_mean(self.post_layernorm(x[:, 0]), clips)  # InTI's readout: the mean over the frames left
            out = BaseModelOutputWithPooling(last_hidden_state=hidden[-1], pooler_output=pooled,
                                             hidden_states=tuple(hidden) if output_hidden_states else None)
            return out if return_dict is not False else out.to_tuple()

    return InTICLIPVisionTower


def _tower(model: nn.Module) -> nn.Module:
    if type(model).__name__ not in MODELS or not type(model).__module__.startswith("transformers."):
        raise TypeError(f"inti.patch.transformers takes one of transformers' {', '.join(MODELS)}, got {type(model).__name__}")
    inner = getattr(model, "vision_model", None)  # transformers 4 nests the tower once more
    for candidate in (model, inner, getattr(inner, "vision_model", None)):
        if candidate is not None and all(hasattr(candidate, part) for part in TOWER_PARTS):
            return candidate
    raise TypeError(f"found no vision tower (a module with {', '.join(TOWER_PARTS)}) in this {type(model).__name__}")


def patch(model: nn.Module, schedule, frames: int | None = None, *, seed: int = 0, **options) -> nn.Module:
    """Apply InTI to a transformers CLIP model's vision tower in place; return `model`.

    schedule, frames, seed and options as in `inti.patch.timm`. θ becomes the tower's ``merges``
    (keys ``merges.{j}.*`` in a CLIPVisionModel, ``vision_model.merges.{j}.*`` in the other two),
    trainable, in the tower's dtype and device. ``inti.patch.undo(model)`` restores the original."""
    tower = _tower(model)
    config = tower.config
    layers = tower.encoder.layers
    cfg = merge_config(
        image_size=config.image_size, patch_size=config.patch_size, width=config.hidden_size, depth=len(layers),
        heads=config.num_attention_heads, ln_eps=config.layer_norm_eps, schedule=schedule, frames=frames,
        options=options,
    )
    attach(tower, cfg, seed, like=tower.embeddings.class_embedding)
    swap_class(tower, make_inti_class)
    return model
