"""Other libraries' weights files: the flat state dict inside one, as CPU tensors in their
stored dtype, whatever the layout (timm, OpenAI CLIP, open_clip). `inti.io.layouts` then maps
the keys; `inti.io.weights.load` does both. Nothing here runs code from the file. Formats,
told apart by the suffix:

- ``.safetensors``: safetensors' own reader;
- ``.npz``: NumPy's reader, without pickles, every member's declared size checked first
  (`inti.io.params.check_npz_sizes`);
- ``.pt``, ``.pth``, ``.bin``: torch pickles, read with ``torch.load(weights_only=True)``,
  which refuses any object that is not a tensor or a container of them;
- a TorchScript archive with one of those suffixes (OpenAI's ``ViT-B-16.pt``): `inti.io.torchscript`.

Nested ``state_dict``/``model`` entries and a ``module.`` prefix are unwrapped
(`inti.io.state_dicts.unwrap_state_dict`). The errors (`inti.io.errors`), all ValueErrors
naming the file: a file that holds anything but tensors is an `UnsafeFileError`; a damaged one
(truncated, a flipped byte, empty) a `CorruptFileError`, never a raw exception of the library
that read it; an inti parameter file or training checkpoint a `WrongKindError` that says what
reads it. A missing path is a FileNotFoundError; a path that is not a regular file (a
directory, a device, a FIFO) is a `WeightsError` and is never opened.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import numpy as np
import torch

from . import kinds
from .errors import UnsafeFileError, WeightsError, corrupt, reading, shorten
from .files import check_regular_file
from .optional import require
from .params import check_npz_sizes
from .state_dicts import unwrap_state_dict
from .torchscript import NEVER_RUNS, read_torchscript

SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """A weights file of another library -> its flat state dict of CPU tensors, in their stored dtype.

    Raises FileNotFoundError for a missing file, and a `WeightsError` (a ValueError) for a path
    that is not a regular file, an unknown suffix, a file holding anything but tensors, a
    damaged one, or one of inti's own files (which `inti.io.weights.load` reads); nothing in
    the file is ever run."""
    path = os.path.expanduser(os.fspath(path))
    check_regular_file(path, "weights file", WeightsError, missing="no weights file at")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise WeightsError(f"unknown weights file format {suffix!r} for {path!r}; expected {', '.join(SUFFIXES)}")
    found = kinds.sniff(path)
    if found.kind in (kinds.PARAMS, kinds.TRAINING):
        raise kinds.wrong_kind(path, found, "another library's state dict")
    raw = reading(path, _read, suffix)
    if not isinstance(raw, Mapping):
        raise WeightsError(f"weights file {path!r} holds an object of type {type(raw).__name__}, not a state dict")
    try:
        flat = unwrap_state_dict(raw)
    except TypeError as e:
        raise WeightsError(f"weights file {path!r}: {e}") from None
    odd = next(((k, v) for k, v in flat.items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None or not flat:
        raise WeightsError(f"weights file {path!r} is not a flat state dict of tensors (at its top, or under "
                           f"'state_dict' or 'model'): " + (f"{odd[0]!r} holds a {type(odd[1]).__name__}" if odd
                                                            else "it holds no tensors"))
    return flat


def _read(path: str, suffix: str):
    if suffix == ".safetensors":
        return require("safetensors.torch", "reading .safetensors files").load_file(path, device="cpu")
    if suffix == ".npz":
        return _read_npz(path)
    if kinds.sniff(path).kind == kinds.TORCHSCRIPT:
        return read_torchscript(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's advice here is to re-run with weights_only=False: exactly wrong for a hostile file
        raise UnsafeFileError(
            f"refusing to load {path!r}: it holds objects other than tensors, or is damaged "
            f"({_weights_only_reason(error)}); inti loads only tensors and never runs code from a file, so it will "
            "not unpickle it with weights_only=False. Convert the weights to .safetensors where they are trusted "
            "(safetensors.torch.save_file)") from None


def _weights_only_reason(error: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only message that says what was refused, without its advice."""
    inner = error.__context__
    if isinstance(inner, pickle.UnpicklingError) and str(inner).strip():
        text = str(inner).strip()
    else:
        parts = [p.strip() for p in str(error).split("\n\n") if p.strip()]
        text = parts[1] if len(parts) > 2 else (parts[0] if parts else type(error).__name__)
    text = " ".join(text.split()).split(" Please use `torch.serialization")[0]  # torch's allowlisting advice
    return shorten(text)


def _read_npz(path: str) -> dict[str, torch.Tensor]:
    if kinds.sniff(path).container not in ("npz", "zip"):
        raise corrupt(path, "not a zip archive of .npy arrays")
    headers = check_npz_sizes(path)  # (shape, dtype) per .npy member, each size checked against the archive
    pickled = [name for name, (_, dtype) in headers.items() if dtype.hasobject]
    if pickled:
        raise UnsafeFileError(f"refusing to load {path!r}: its member {pickled[0].removesuffix('.npy')!r} holds "
                              f"pickled objects, not numbers; inti loads only tensors and {NEVER_RUNS}")
    out = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            value = archive[key]
            if not isinstance(value, np.ndarray):
                raise corrupt(path, f"its member {key!r} is not a .npy array")
            try:
                out[key] = torch.from_numpy(value)
            except TypeError:
                raise WeightsError(f"weights file {path!r}: its member {key!r} holds {value.dtype} values, "
                                   "which are not a tensor's numbers") from None
    return out
