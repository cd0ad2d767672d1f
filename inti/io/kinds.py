"""What kind of weights file a path holds, told from its first bytes and headers, never from
its suffix, and with nothing decoded but the headers.

The kinds, and what reads each:

- ``PARAMS``, an inti parameter file (``.npz`` or ``.safetensors`` with the config stored
  beside the parameters): `inti.io.params.load_params`;
- ``TRAINING``, an inti training checkpoint (``.safetensors``; model, optimizer, generators,
  run state): `inti.io.train_checkpoint`, and its model part `load_params`;
- ``STATE_DICT``, another library's state dict (timm, OpenAI CLIP, open_clip, Hugging Face) in a
  ``.safetensors`` or ``.npz`` file, a torch zip or a legacy torch pickle: `inti.io.state_dict_files`
  (a Hugging Face model folder holds one: `inti.io.hf`);
- ``TORCHSCRIPT``, a TorchScript archive (OpenAI's CLIP downloads): `inti.io.torchscript`.

`inti.io.weights.load` reads them all. `sniff` reads at most a zip's directory or a
safetensors header (bounded by `MAX_HEADER`): it never allocates by a size the file declares.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from typing import NamedTuple

from .config_json import METADATA_KEY, NPZ_ENTRY
from .errors import WrongKindError
from .train_checkpoint import FORMAT as TRAINING_KEY

PARAMS = "inti parameter file"
TRAINING = "inti training checkpoint"
STATE_DICT = "state dict"
TORCHSCRIPT = "TorchScript archive"
KINDS = (PARAMS, TRAINING, STATE_DICT, TORCHSCRIPT)

CONFIG_ENTRY = f"{NPZ_ENTRY}.npy"  # the npz member holding a parameter file's config
MAX_HEADER = 100 * 2**20  # safetensors' own limit on its JSON header

READERS = {
    PARAMS: "inti.io.weights.load (the CLI's --weights), inti.io.params.load_params and "
            "inti.io.pretrained.from_weights read it",
    TRAINING: "inti.io.weights.load (the CLI's --weights), inti.io.params.load_params and "
              "inti.io.pretrained.from_weights read its model, inti train --resume the whole run",
    STATE_DICT: "inti.io.weights.load (the CLI's --weights) and inti.io.pretrained.from_weights read it, "
                "converted from the timm, OpenAI CLIP, open_clip or Hugging Face layout",
    TORCHSCRIPT: "inti.io.weights.load (the CLI's --weights) and inti.io.pretrained.from_clip read it, "
                 "without running it",
}


class Sniffed(NamedTuple):
    """kind: one of KINDS, or None (not a weights file inti knows, or too damaged to tell);
    container: "npz", "safetensors", "torch zip", "torch pickle", "zip", "Hugging Face model folder", or None."""

    kind: str | None
    container: str | None

    def describe(self) -> str:
        """In words, for messages: "an inti training checkpoint", "a torch zip (a state dict)"."""
        if self.kind in (PARAMS, TRAINING):
            return f"an {self.kind} ({self.container})"
        if self.kind == TORCHSCRIPT:
            return "a TorchScript archive"
        if self.kind == STATE_DICT and self.container == "Hugging Face model folder":
            return "a Hugging Face model folder (a state dict)"
        if self.kind == STATE_DICT:
            return f"a {self.container} file holding a state dict" if self.container in ("npz", "safetensors") \
                else f"a {self.container} (a state dict saved with torch.save)"
        return f"a damaged {self.container} file" if self.container else "not a weights file inti knows"


def sniff(path) -> Sniffed:
    """The kind of the regular file at `path` (check it with `inti.io.files` first)."""
    path = os.fspath(path)
    size = os.stat(path).st_size
    with open(path, "rb") as f:
        head = f.read(9)
        if head[:2] == b"PK":
            return _zip_kind(path)
        if len(head) == 9 and head[8:9] == b"{":
            (length,) = struct.unpack("<Q", head[:8])
            if length > MAX_HEADER or 8 + length > size:
                return Sniffed(None, "safetensors")
            f.seek(8)
            return _safetensors_kind(f.read(length))
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return Sniffed(STATE_DICT, "torch pickle")  # torch.save's legacy format, or a plain pickle
    return Sniffed(None, None)


def _zip_kind(path: str) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception:  # noqa: BLE001 - any failure to read the directory: a damaged zip, which its reader reports
        return Sniffed(None, "zip")
    if any(n.endswith("constants.pkl") for n in names):
        return Sniffed(TORCHSCRIPT, "torch zip")
    if any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        return Sniffed(STATE_DICT, "torch zip")
    if CONFIG_ENTRY in names:
        return Sniffed(PARAMS, "npz")
    if names and all(n.endswith(".npy") for n in names):
        return Sniffed(STATE_DICT, "npz")
    return Sniffed(None, "zip")


def _safetensors_kind(header: bytes) -> Sniffed:
    try:
        doc = json.loads(header)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return Sniffed(None, "safetensors")
    meta = doc.get("__metadata__") if isinstance(doc, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    if TRAINING_KEY in meta:
        return Sniffed(TRAINING, "safetensors")
    if METADATA_KEY in meta:
        return Sniffed(PARAMS, "safetensors")
    return Sniffed(STATE_DICT, "safetensors")


def wrong_kind(path, found: Sniffed, expected: str):
    """The `WrongKindError` for a file of kind `found` where `expected` (in words) was wanted:
    what the file is and what reads it."""
    readers = READERS.get(found.kind)
    message = f"{os.fspath(path)!r} is {found.describe()}, not {expected}" + (f"; {readers}" if readers else "")
    return WrongKindError(message, kind=found.kind, readers=readers)
