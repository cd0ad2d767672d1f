"""One way to build an InTI model by name, as ``timm.create_model`` does::

    import inti
    inti.list_models()                                  # ['nano', 'vit_b16', 'vit_b16_clip', ...]
    model = inti.create_model("vit_b16_clip", pretrained="ViT-B-16.pt", num_classes=400, frames=8)
    model = inti.create_model("vit_l14_clip", pretrained="clip-vit-large-patch14/", schedule=(8, 20))

A name is an image ViT's architecture: its sizes and the hyperparameters that tell the CLIP
and ImageNet variants apart, which no weight shape records (the activation, the LayerNorm eps),
with a default schedule and head. `MODELS` holds them, each with a line saying where weights of
that architecture come from; the command line's ``--preset`` reads the same table.

pretrained: a weights file or folder, read by the existing loaders: an inti parameter file
(`inti.io.params.load_params`), a timm, OpenAI CLIP, open_clip or Hugging Face checkpoint file, or
a Hugging Face model folder (`inti.io.layouts.convert_state_dict`). For another library's file the
name supplies the heads, activation and eps that its shapes cannot; a folder's config.json and an
inti file's stored config must agree with the name. The backbone must fit exactly; θ, the head
and temporal modules come from the file where it holds them for this very configuration, and
are drawn fresh by ref's rule otherwise (`inti.train.models.fit_params`).

Importing this module loads no torch; `create_model` does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from ref.config import PRESETS, ModelConfig, with_temporal


@dataclass(frozen=True)
class Preset:
    """A named architecture: its config and where weights of that architecture come from."""

    cfg: ModelConfig
    about: str


# The hyperparameters that tell the families apart (spec/00-method.md §2; spec/07-pretrained-layouts.md §1).
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


def model_config(name: str, *, schedule=None, frames: int | None = None, num_classes: int | None = None,
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


def create_model(name: str, pretrained=None, *, schedule=None, frames: int | None = None, num_classes: int | None = None,
                 temporal: str | None = None, image_size: int | None = None, seed: int = 0, dtype=None,
                 attn_path: str = "sdpa", **overrides):
    """An `InTIModel` of the architecture `name` (`list_models()`), in float32 unless `dtype` says.

    pretrained: None for ref's seeded init (`ref.init_params(cfg, seed)`), or a weights file or
    folder (see the module's docstring); its position grid is resampled to `image_size` when it
    was trained at another. schedule: where to merge, counted from 1 (None: the name's; ()
    for the naive adaptation). frames: checked against the schedule now, as every call is.
    num_classes: the head's classes (0: none, the model returns its features). temporal,
    image_size and overrides as in `model_config`."""
    import torch

    from torch_impl import from_ref_params

    cfg = model_config(name, schedule=schedule, frames=frames, num_classes=num_classes, temporal=temporal,
                       image_size=image_size, **overrides)
    if pretrained is None:
        import ref

        params = ref.init_params(cfg, seed=seed)
    else:
        params = _pretrained(pretrained, name, cfg, seed)
    return from_ref_params(params, cfg, torch.float32 if dtype is None else dtype, attn_path=attn_path, frames=frames)


def _pretrained(pretrained, name: str, cfg: ModelConfig, seed: int) -> dict:
    """The parameters of `cfg` from a weights file or folder, by the rules of the module's docstring."""
    from .io.layouts import convert_state_dict, resample_pos_embed
    from .io.params import load_params
    from .train.models import fit_params

    path = Path(pretrained).expanduser()
    fields = ARCHITECTURE  # the fields the file and the name must agree on
    if path.is_dir():  # a Hugging Face folder: its config.json tells heads, activation and eps
        loaded, source = convert_state_dict(path, cfg.schedule, cfg.image_size)
    else:
        try:
            loaded, source = load_params(path)  # an inti parameter file: its stored config tells them
        except ValueError:  # a checkpoint of another library: the name tells them
            loaded, source = convert_state_dict(path, cfg.schedule, cfg.image_size, activation=cfg.activation,
                                                ln_eps=cfg.ln_eps)
            fields = [f for f in ARCHITECTURE if f not in UNTOLD]
    wrong = [f"{f} {getattr(source, f)!r} (the name: {getattr(cfg, f)!r})"
             for f in fields if getattr(source, f) != getattr(cfg, f)]
    if wrong:
        raise ValueError(f"the weights in {str(pretrained)!r} are not a {name}: " + ", ".join(wrong)
                         + "; pick the name of their architecture (inti.list_models()) or pass the differing fields")
    source = source.replace(**{f: getattr(cfg, f) for f in UNTOLD})  # equal, or the name's for a foreign file
    if source.image_size != cfg.image_size:  # an inti file trained at another size
        loaded = dict(loaded, pos_embed=resample_pos_embed(loaded["pos_embed"], source.grid, cfg.grid, antialias=True))
        source = source.replace(image_size=cfg.image_size)
    return fit_params(loaded, source, cfg, seed, str(pretrained))
