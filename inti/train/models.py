"""The model a run starts from: a preset with fresh weights, or pretrained weights (an inti
parameter file or training checkpoint, a timm / OpenAI CLIP / open_clip / Hugging Face checkpoint
file or Hugging Face model folder, or a timm model name whose weights timm already holds on this machine; nothing is downloaded).

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


def load_pretrained(name_or_file: str) -> tuple[dict, ModelConfig, str]:
    """(params, cfg, description) of pretrained weights."""
    path = Path(name_or_file).expanduser()
    if path.is_dir():  # a Hugging Face model folder: model.safetensors and its config.json
        from ..io.layouts import convert_state_dict

        params, cfg = convert_state_dict(path)
        return params, cfg, f"{path} (Hugging Face folder)"
    if path.exists():
        from ..io.params import load_params

        try:
            params, cfg = load_params(path)
            return params, cfg, f"{path} (inti parameters)"
        except ValueError as e:
            if "is not an inti parameter file" not in str(e) and "not an inti" not in str(e):
                raise
        from ..io.layouts import convert_state_dict

        params, cfg = convert_state_dict(path)
        return params, cfg, f"{path} (converted checkpoint)"
    if os.sep in name_or_file or name_or_file.endswith((".pt", ".pth", ".bin", ".safetensors", ".npz")):
        raise FileNotFoundError(f"no such pretrained weights file: {name_or_file!r}")
    return _timm_cached(name_or_file)


def _timm_cached(name: str) -> tuple[dict, ModelConfig, str]:
    """A timm model's weights from timm's local cache only (HF_HUB_OFFLINE=1: no download)."""
    try:
        import timm
    except ImportError:
        raise ImportError("--pretrained NAME needs timm: pip install 'inti[interop]'") from None
    if name not in timm.list_models():
        raise ValueError(f"--pretrained {name!r} is neither a file nor a timm model name")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never fetched at run time
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as e:  # timm and huggingface_hub raise their own kinds for a missing cache
        raise ValueError(
            f"timm holds no local copy of {name!r}'s weights ({type(e).__name__}); inti downloads nothing: "
            "fetch them once with timm yourself, or pass the checkpoint file"
        ) from None
    from ..io.layouts import convert_state_dict
    from ..io.pretrained import _timm_hints

    params, cfg = convert_state_dict(model.state_dict(), layout="timm", **_timm_hints(model))
    return params, cfg, f"timm {name} (local cache)"


def build(make_cfg, seed: int, pretrained: str | None = None, base: ModelConfig | None = None):
    """(InTIModel in float32, its config, where its weights came from).

    make_cfg(source_cfg) -> the run's config: `base` (a preset) or the pretrained weights'
    config, with the run's schedule, classes and so on."""
    if pretrained is None:
        cfg = make_cfg(base)
        params, source = ref.init_params(cfg, seed=seed), f"fresh weights, ref.init_params(seed={seed})"
    else:
        loaded, source_cfg, source = load_pretrained(pretrained)
        cfg = make_cfg(source_cfg)
        params = fit_params(loaded, source_cfg, cfg, seed, pretrained)
    return from_ref_params(params, cfg, dtype=torch.float32), cfg, source
