"""Parameter files: a parameter dict (spec/00-method.md §3.5) saved with its config beside it.

Two formats, chosen by the file's suffix when saving and by its first bytes when loading:

- ``.npz`` (NumPy only): one entry per parameter key, plus the entry ``__inti__``, a 0-d
  string array holding the config as JSON;
- ``.safetensors``: one tensor per parameter key; the config JSON is the header metadata
  under ``"inti"``. Needs the `safetensors` package (imported only when used).

The config JSON is `inti.io.config_json`'s. Arrays keep their dtype, so a save and a load
round-trip exactly. Loading checks the keys and shapes against the stored config
(`ref.check_params`) and names every mismatch.

`load_params` reads inti's own weights: a parameter file, or the model part of a training
checkpoint, which it reads through that format's owner (`inti.io.train_checkpoint`). Any
other weights file (a torch zip, another library's state dict) is a `WrongKindError` that
says what the file is and what reads it (`inti.io.weights.load`, the CLI's ``--weights``).
Every failure is a `FileNotFoundError` or a ValueError (`inti.io.errors`) that names the file.

    >>> import tempfile, os
    >>> from ref import preset, init_params
    >>> from inti.io.params import save_params, load_params
    >>> cfg = preset("nano")
    >>> path = os.path.join(tempfile.mkdtemp(), "nano.npz")
    >>> save_params(path, init_params(cfg), cfg)
    >>> params, cfg2 = load_params(path)
    >>> cfg2 == cfg
    True
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from ref.config import ModelConfig
from ref.params import check_params

from . import kinds, train_checkpoint
from .atomic import atomic_write, write_bytes
from .config_json import FORMAT, METADATA_KEY, NPZ_ENTRY, VERSION, config_from_json, config_to_json
from .errors import CorruptFileError, WeightsError, WrongKindError
from .files import check_regular_file
from .optional import require
from .state_dicts import as_array

__all__ = ["save_params", "load_params", "check_npz_sizes", "config_to_json", "config_from_json", "as_array",
           "FORMAT", "VERSION", "CONFIG_ENTRY", "METADATA_KEY", "SUFFIXES"]

CONFIG_ENTRY = NPZ_ENTRY  # the npz entry holding the config JSON
SUFFIXES = (".npz", ".safetensors")
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this: a bound no honest zip breaks


def _safetensors(part: str):
    return require(f"safetensors{part}", "reading or writing .safetensors files")


# ---------------------------------------------------------------------------------------------
# saving


def save_params(path, params: dict, cfg: ModelConfig) -> None:
    """Write `params` and `cfg` to `path` (.npz or .safetensors), replacing the file at once
    (`inti.io.atomic`: a unique temporary file, fsync, rename; nothing half-written).

    The params are checked against the config first, so a file on disk always loads.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"parameter files must end in .npz or .safetensors, got {str(path)!r}")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    arrays = {k: as_array(v) for k, v in params.items()}
    check_params(arrays, cfg)
    meta = config_to_json(cfg)
    if suffix == ".npz":
        with atomic_write(path) as f:
            np.savez(f, **arrays, **{CONFIG_ENTRY: np.array(meta)})
    else:
        write_bytes(path, _safetensors(".numpy").save(arrays, metadata={METADATA_KEY: meta}))


# ---------------------------------------------------------------------------------------------
# loading


def _sniff(path: Path) -> str:
    """"npz", "safetensors", or a ValueError: decided from the first bytes, not the suffix."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if not head:
        raise CorruptFileError(f"{str(path)!r} is empty, not an inti parameter file")
    if head[:2] == b"PK":
        return "npz"
    if len(head) == 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if 8 + header_len <= size:
            return "safetensors"
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated (header runs past the end)")
    if path.suffix.lower() in SUFFIXES:
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt or not a {path.suffix} file")
    raise WeightsError(f"{str(path)!r} is not an inti parameter file (expected a .npz or .safetensors file)")


def check_npz_sizes(path) -> dict[str, tuple[tuple, np.dtype]]:
    """{member: (shape, dtype)} of an archive's .npy members, read from their headers; a
    ValueError for an archive whose members declare more bytes than they can hold, before
    anything is allocated: every .npy header's shape x itemsize must fit in its member, and the
    members must fit in the archive (stored as they are, or deflated at most DEFLATE_MAX_RATIO:1).

    np.load allocates the declared shape first and reads the bytes after, so a 1 kB file that
    declares a (10^11,) float64 array would ask for 745 GiB."""
    path = Path(path)
    archive_size = path.stat().st_size
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            ratio = info.file_size / max(info.compress_size, 1)
            if info.compress_size > archive_size or (
                ratio > DEFLATE_MAX_RATIO if info.compress_type else info.file_size != info.compress_size
            ):
                raise ValueError(f"entry {info.filename!r} declares {info.file_size} bytes, more than it can hold")
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                except ValueError as e:
                    raise ValueError(f"its member {info.filename.removesuffix('.npy')!r} is not a .npy array ({e})") from None
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"entry {info.filename!r} has an unknown .npy version {version}")
                shape, _, dtype = read_header(f)
                needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if needed > info.file_size - f.tell():
                    raise ValueError(
                        f"entry {info.filename!r} declares shape {shape} of {dtype} ({needed:,} bytes) "
                        f"but holds only {info.file_size - f.tell():,}"
                    )
                headers[info.filename] = (shape, dtype)
    return headers


def _no_config(path: Path, where: str) -> WrongKindError:
    return WrongKindError(f"{str(path)!r} is not an inti parameter file: it has no stored config ({where}); "
                          f"save it with inti.io.params.save_params, or read it with inti.io.weights.load",
                          kind=kinds.STATE_DICT, readers=kinds.READERS[kinds.STATE_DICT])


def _load_npz(path: Path) -> tuple[dict, str]:
    try:
        headers = check_npz_sizes(path)
        if f"{CONFIG_ENTRY}.npy" not in headers:
            raise _no_config(path, f"npz entry {CONFIG_ENTRY!r}")
        if any(dtype.hasobject for _, dtype in headers.values()):
            raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt (an entry holds "
                                   "pickled objects, not numbers)")
        with np.load(path, allow_pickle=False) as npz:
            entries = {k: npz[k] for k in npz.files}
    except WeightsError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, OverflowError, MemoryError) as e:
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated "
                               f"({str(e) or type(e).__name__})") from None
    except ValueError as e:
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt ({e})") from None
    # np.load hands back raw bytes for a member that is not an .npy array
    bad = sorted(k for k, v in entries.items() if not isinstance(v, np.ndarray))
    meta = entries.pop(CONFIG_ENTRY, None)
    if bad or meta is None or meta.dtype.kind != "U" or meta.shape != ():
        what = f"entries {', '.join(bad)} are not arrays" if bad else f"entry {CONFIG_ENTRY!r} is not a string"
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt ({what})")
    strings = sorted(k for k, v in entries.items() if v.dtype.kind not in "fiub")
    if strings:
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: entries {', '.join(strings)} are not numeric arrays")
    return entries, str(meta[()])


def _load_safetensors(path: Path) -> tuple[dict, str]:
    safe_open = _safetensors("").safe_open
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = (f.metadata() or {}).get(METADATA_KEY)
            if meta is None:
                raise _no_config(path, f"safetensors metadata {METADATA_KEY!r}")
            params = {k: f.get_tensor(k) for k in f.keys()}
    except WeightsError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError for damaged files
        raise CorruptFileError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated ({e})") from None
    return params, meta


def load_params(path) -> tuple[dict, ModelConfig]:
    """Read a file written by `save_params`, or the model part of a training checkpoint:
    returns (params, cfg), params as NumPy arrays with their stored dtypes, checked against cfg."""
    path = Path(path)
    check_regular_file(path, "parameter file", WeightsError)
    found = kinds.sniff(path)
    if found.kind == kinds.TRAINING:
        params, cfg, _ = train_checkpoint.read_model(path)
        return params, cfg
    if found.kind in (kinds.STATE_DICT, kinds.TORCHSCRIPT) and found.container not in ("npz", "safetensors"):
        raise kinds.wrong_kind(path, found, "an inti parameter file")
    params, meta = _load_npz(path) if _sniff(path) == "npz" else _load_safetensors(path)
    cfg = config_from_json(meta, repr(str(path)))
    try:
        check_params(params, cfg)
    except ValueError as e:
        raise WeightsError(f"parameter file {str(path)!r}: {e}") from None
    return params, cfg
