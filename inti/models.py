"""One way to build an InTI model by name, as ``timm.create_model`` does::

    import inti
    inti.list_models()                                  # ['nano', 'vit_b16', 'vit_b16_clip', ...]
    model = inti.create_model("vit_b16_clip", pretrained="ViT-B-16.pt", num_classes=400, frames=8)
    model = inti.create_model("vit_l14_clip", pretrained="clip-vit-large-patch14/", schedule=(8, 20))

The names are `inti.registry.MODELS` (the command line's ``--preset`` reads the same table).

pretrained: any weights file, read by the front door `inti.io.weights.load`: an inti parameter
file or training checkpoint, a timm, OpenAI CLIP, open_clip or Hugging Face state dict, a
TorchScript archive, or a Hugging Face model folder. For another library's file the name
supplies the heads, activation and eps that its shapes cannot; a folder's config.json and an
inti file's stored config must agree with the name. The backbone must fit exactly; θ, the head
and temporal modules come from the file where it holds them for this very configuration, and
are drawn fresh by ref's rule otherwise (`inti.train.models.fit_params`).

Importing this module loads no torch; `create_model` does.
"""

from __future__ import annotations

from pathlib import Path

from ref.config import ModelConfig

from .registry import ARCHITECTURE, MODELS, UNTOLD, Preset, list_models, named_config

__all__ = ["create_model", "list_models", "named_config", "MODELS", "ARCHITECTURE", "Preset"]


def create_model(name: str, pretrained=None, *, schedule=None, frames: int | None = None, num_classes: int | None = None,
                 temporal: str | None = None, image_size: int | None = None, seed: int = 0, dtype=None,
                 attn_path: str = "sdpa", **overrides):
    """An `InTIModel` of the architecture `name` (`list_models()`), in float32 unless `dtype` says.

    pretrained: None for ref's seeded init (`ref.init_params(cfg, seed)`), or a weights file or
    folder (see the module's docstring); its position grid is resampled to `image_size` when it
    was trained at another. schedule: where to merge, counted from 1 (None: the name's; ()
    for the naive adaptation). frames: checked against the schedule now, as every call is.
    num_classes: the head's classes (0: none, the model returns its features). temporal,
    image_size and overrides as in `inti.registry.named_config`."""
    import torch

    from torch_impl import from_ref_params

    cfg = named_config(name, schedule=schedule, frames=frames, num_classes=num_classes, temporal=temporal,
                       image_size=image_size, **overrides)
    if pretrained is None:
        import ref

        params = ref.init_params(cfg, seed=seed)
    else:
        params = _pretrained(pretrained, name, cfg, seed)
    return from_ref_params(params, cfg, torch.float32 if dtype is None else dtype, attn_path=attn_path, frames=frames)


def _pretrained(pretrained, name: str, cfg: ModelConfig, seed: int) -> dict:
    """The parameters of `cfg` from a weights file or folder, by the rules of the module's docstring."""
    from .io import weights
    from .io.errors import WrongKindError
    from .io.pos_embed import resample_pos_embed
    from .train.models import fit_params

    path = Path(pretrained).expanduser()
    fields = ARCHITECTURE  # the fields the file and the name must agree on
    convert = dict(schedule=cfg.schedule, image_size=cfg.image_size, seed=seed)
    if path.is_dir():  # a Hugging Face folder: its config.json tells heads, activation and eps
        loaded = weights.load(path, accept=weights.OTHERS, **convert)
    else:
        try:  # inti's own weights: the stored config tells them
            loaded = weights.load(path, accept=weights.INTI)
        except WrongKindError:  # another library's: the name tells them
            # activation and eps from the name; heads too, after the sizes are compared (a file of
            # another width may not split into the name's heads)
            loaded = weights.load(path, accept=weights.OTHERS, **convert, activation=cfg.activation, ln_eps=cfg.ln_eps)
            fields = [f for f in ARCHITECTURE if f not in UNTOLD]
    params, source = loaded.params, loaded.cfg
    wrong = [f"{f} {getattr(source, f)!r} (the name: {getattr(cfg, f)!r})"
             for f in fields if getattr(source, f) != getattr(cfg, f)]
    if wrong:
        raise ValueError(f"the weights in {str(pretrained)!r} are not a {name}: " + ", ".join(wrong)
                         + "; pick the name of their architecture (inti.list_models()) or pass the differing fields")
    source = source.replace(**{f: getattr(cfg, f) for f in UNTOLD})  # equal, or the name's for a foreign file
    if source.image_size != cfg.image_size:  # an inti file trained at another size
        params = dict(params, pos_embed=resample_pos_embed(params["pos_embed"], source.grid, cfg.grid, antialias=True))
        source = source.replace(image_size=cfg.image_size)
    return fit_params(params, source, cfg, seed, loaded.describe())
