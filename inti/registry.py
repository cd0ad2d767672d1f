"""The named architectures: what `inti.create_model`, `inti.list_models` and the command line's
``--preset`` read (`MODELS`).

A name is an image ViT's architecture: its sizes and the hyperparameters that tell the CLIP
and ImageNet variants apart, which no weight shape records (the activation, the LayerNorm eps),
with a default schedule and head, and a line saying where weights of that architecture come
from. The project's own presets (`ref.config.PRESETS`: nano, vit_b16, vit_l14) are names here
too, unchanged.

    >>> list_models("*_clip")
    ['vit_b16_clip', 'vit_b32_clip', 'vit_l14_clip']
    >>> named_config("vit_b32_clip", schedule=(6,)).patch_size
    32

Configs only: no torch, no weights (`inti.models` builds the models).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ref.config import PRESETS, ModelConfig, with_temporal


@dataclass(frozen=True)
class Preset:
    """A named architecture: its config and where weights of that architecture come from."""

    cfg: ModelConfig
    about: str


# The hyperparameters that tell the families apart (spec/00-method.md §2; spec/07-pretrained-layouts.md).
CLIP = dict(activation="quick_gelu", ln_eps=1e-5, ln_pre=True, patch_bias=False, num_classes=0)  # OpenAI CLIP's tower
IMAGENET = dict(activation="gelu", ln_eps=1e-6, ln_pre=False, patch_bias=True, embed_dim=None, num_classes=1000)  # timm
B = dict(image_size=224, width=768, depth=12, heads=12, schedule=(3,))
L = dict(image_size=224, width=1024, depth=24, heads=16, schedule=(6,))

MODELS: dict[str, Preset] = {
    "nano": Preset(PRESETS["nano"], "a 4-block ViT at 64 px, patch 8, width 64, S = (1, 2): tests and demos"),
    "vit_b16": Preset(PRESETS["vit_b16"], "CLIP ViT-B/16 with a 400-class head (Kinetics-400), S = (3,)"),
    "vit_l14": Preset(PRESETS["vit_l14"], "CLIP ViT-L/14 with a 400-class head (Kinetics-400), S = (6,)"),
    "vit_b16_clip": Preset(ModelConfig(patch_size=16, embed_dim=512, **B, **CLIP),
                           "CLIP ViT-B/16 image tower, 512-d embedding: OpenAI ViT-B-16.pt, open_clip ViT-B-16 "
                           "(activation='gelu' unless -quickgelu), Hugging Face openai/clip-vit-base-patch16"),
    "vit_b32_clip": Preset(ModelConfig(patch_size=32, embed_dim=512, **B, **CLIP),
                           "CLIP ViT-B/32 image tower, 512-d embedding: OpenAI ViT-B-32.pt, open_clip ViT-B-32, "
                           "Hugging Face openai/clip-vit-base-patch32"),
    "vit_l14_clip": Preset(ModelConfig(patch_size=14, embed_dim=768, **L, **CLIP),
                           "CLIP ViT-L/14 image tower, 768-d embedding: OpenAI ViT-L-14.pt, open_clip ViT-L-14, "
                           "Hugging Face openai/clip-vit-large-patch14"),
    "vit_b16_in1k": Preset(ModelConfig(patch_size=16, **B, **IMAGENET),
                           "ImageNet ViT-B/16, 1000-class head: timm vit_base_patch16_224 (augreg in21k -> in1k)"),
    "vit_b32_in1k": Preset(ModelConfig(patch_size=32, **B, **IMAGENET),
                           "ImageNet ViT-B/32, 1000-class head: timm vit_base_patch32_224 (augreg in21k -> in1k)"),
    "vit_l14_in1k": Preset(ModelConfig(patch_size=14, **L, **(IMAGENET | dict(ln_eps=1e-5, ln_pre=True, patch_bias=False))),
                           "ImageNet ViT-L/14, 1000-class head: timm vit_large_patch14_clip_224.*_ft_in1k "
                           "(CLIP weights fine-tuned on ImageNet; norm_pre, no projection)"),
}
# The fields an architecture fixes: a pretrained file must agree with the name on each.
ARCHITECTURE = ("patch_size", "width", "depth", "heads", "mlp_ratio", "activation", "ln_eps", "ln_pre", "patch_bias",
                "embed_dim")
UNTOLD = ("heads", "activation", "ln_eps")  # no weight shape records them


def list_models(pattern: str | None = None) -> list[str]:
    """The names `create_model` takes, sorted; `pattern` filters them as a shell glob ("*clip*")."""
    names = sorted(MODELS)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def named_config(name: str, *, schedule=None, frames: int | None = None, num_classes: int | None = None,
                 temporal: str | None = None, image_size: int | None = None, **overrides) -> ModelConfig:
    """The config `create_model(name, ...)` builds: the name's, with the given fields changed.

    temporal: a module setting of spec/00-method.md §12 ("st_adapter", "st_adapter_12x384",
    "st_adapter_24x384", "aim"; AIM takes `frames` as its T0). overrides: any other ModelConfig
    field (``activation="gelu"`` for open_clip's ViTs, θ's ``reduction``, ``weight_fn``, ...)."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; inti.list_models() has {', '.join(list_models())}")
    unknown = sorted(set(overrides) - set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown ModelConfig field(s) {unknown}; known: {sorted(ModelConfig.__dataclass_fields__)}")
    changes = dict(overrides)
    for field, value in (("schedule", schedule), ("num_classes", num_classes), ("image_size", image_size)):
        if value is not None:
            changes[field] = tuple(value) if field == "schedule" else value
    cfg = MODELS[name].cfg.replace(**changes)
    return with_temporal(cfg, temporal, frames) if temporal is not None else cfg


