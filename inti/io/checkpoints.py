"""Reading checkpoint files: the project's one loader of other libraries' weight files.

`load_checkpoint(path)` returns the flat state dict inside a file, as CPU tensors in their
stored dtype, whatever the layout (timm, OpenAI CLIP, open_clip, or an InTI state dict);
`inti.io.layouts` then maps the keys. Formats, told apart by the suffix:

- ``.safetensors``: safetensors' own reader;
- ``.npz``: NumPy's reader, without pickles;
- ``.pt``, ``.pth``, ``.bin``: torch pickles, read with ``torch.load(weights_only=True)``,
  which refuses any object that is not a tensor or a container of them;
- a TorchScript archive with one of those suffixes (OpenAI's ``ViT-B-16.pt``): read with
  ``torch.jit.load(...).state_dict()``.

Nested ``state_dict``/``model`` entries and a ``module.`` prefix are unwrapped
(`inti.io.layouts.unwrap_state_dict`).
"""

from __future__ import annotations

import os
import warnings
import zipfile

import numpy as np
import torch

from .layouts import unwrap_state_dict

SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")


def is_torchscript(path) -> bool:
    """Whether a file is a TorchScript archive (OpenAI's CLIP downloads): a zip with constants.pkl."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def load_checkpoint(path) -> dict[str, torch.Tensor]:
    """A checkpoint file -> its flat state dict of CPU tensors, in their stored dtype."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path!r}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(path, device="cpu")
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            raw = {k: torch.from_numpy(archive[k]) for k in archive.files}
    elif suffix in (".pt", ".pth", ".bin"):
        if is_torchscript(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, its files are not
                raw = torch.jit.load(path, map_location="cpu").state_dict()
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"unknown checkpoint format {suffix!r} for {path!r}; expected {', '.join(SUFFIXES)}")
    return unwrap_state_dict(raw)
