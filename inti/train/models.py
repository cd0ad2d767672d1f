"""The model a run starts from: a preset with fresh weights, or pretrained weights (any weights
file or Hugging Face model folder, read by the front door `inti.io.weights.load`: an inti
parameter file or training checkpoint, a timm / OpenAI CLIP / open_clip / Hugging Face state dict
or TorchScript archive; or a timm model name whose weights timm already holds on this machine;
nothing is downloaded).

The pretrained backbone must fit exactly: every backbone key present with its shape, or a
loud error that names them. The parts that are new for video (θ's ``merges.*``, a head for
the task's classes, temporal modules) start from the method's init rule (§3.4).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import ref
from ref.config import ModelConfig
from ref.params import key_report
from torch_impl import from_ref_params

NEW_FOR_VIDEO = ("merges.", "head.")  # and any key holding "temporal"


def _is_new(key: str) -> bool:
    return key.startswith(NEW_FOR_VIDEO) or "temporal" in key


def fit_params(pretrained: dict, source_cfg: ModelConfig, cfg: ModelConfig, seed: int, where: str,
               keep_new: bool = True) -> dict:
    """`pretrained`'s backbone with fresh parts for what is new in `cfg`. Raises ValueError
    naming every backbone key that is missing, unexpected or mis-shaped.

    keep_new: where `cfg` differs from the file's only by its schedule, θ and the head are
    the file's own (a run resumed from inti weights); False always starts them fresh."""
    fresh = ref.init_params(cfg, seed=seed)
    wanted = {k: tuple(v.shape) for k, v in fresh.items() if not _is_new(k)}
    have = {k: tuple(v.shape) for k, v in pretrained.items() if not _is_new(k)}
    problems = key_report(have, wanted)
    if problems:
        raise ValueError(f"the pretrained weights in {where} do not fit the backbone: " + " | ".join(problems))
    keep_new = keep_new and source_cfg.replace(schedule=cfg.schedule) == cfg  # θ and the head are the file's own
    return {k: (pretrained[k] if (not _is_new(k) or (keep_new and k in pretrained)) else v) for k, v in fresh.items()}


WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")


def load_pretrained(name_or_file: str) -> tuple[dict, ModelConfig, str]:
    """(params, cfg, description) of pretrained weights: a weights file of any kind, a Hugging
    Face model folder, or a timm model name."""
    path = Path(name_or_file).expanduser()
    if path.exists():
        from ..io.weights import load

        loaded = load(path)
        return loaded.params, loaded.cfg, loaded.describe()
    if os.sep in name_or_file or name_or_file.endswith(WEIGHT_SUFFIXES):
        raise FileNotFoundError(f"no such weights file: {name_or_file!r}")
    return _timm_cached(name_or_file)


def _timm_cached(name: str) -> tuple[dict, ModelConfig, str]:
    """A timm model's weights from timm's local cache only (HF_HUB_OFFLINE=1: no download)."""
    try:
        import timm
    except ImportError:
        raise ImportError("--weights NAME (a timm model) needs timm: pip install 'inti[interop]'") from None
    if name not in timm.list_models():
        raise ValueError(f"--weights {name!r} is neither a file nor a timm model name")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never fetched at run time
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as e:  # timm and huggingface_hub raise their own kinds for a missing cache
        raise ValueError(
            f"timm holds no local copy of {name!r}'s weights ({type(e).__name__}); inti downloads nothing: "
            "fetch them once with timm yourself, or pass the weights file"
        ) from None
    from ..io.layouts import convert_state_dict
    from ..io.pretrained import timm_hints

    params, cfg = convert_state_dict(model.state_dict(), layout="timm", **timm_hints(model))
    return params, cfg, f"timm {name} (local cache)"


def build(make_cfg, seed: int, pretrained=None, base: ModelConfig | None = None):
    """(InTIModel in float32, its config, where its weights came from).

    pretrained: None (fresh weights), a weights file or timm model name (`load_pretrained`), or
    what `load_pretrained` returned. make_cfg(source_cfg) -> the run's config: `base` (a preset)
    or the pretrained weights' config, with the run's schedule, classes and so on."""
    if pretrained is None:
        cfg = make_cfg(base)
        params, source = ref.init_params(cfg, seed=seed), f"fresh weights, ref.init_params(seed={seed})"
    else:
        loaded, source_cfg, source = load_pretrained(pretrained) if isinstance(pretrained, (str, os.PathLike)) else pretrained
        cfg = make_cfg(source_cfg)
        params = fit_params(loaded, source_cfg, cfg, seed, source)
    return from_ref_params(params, cfg, dtype=torch.float32), cfg, source
