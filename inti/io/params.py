"""Parameter files: a parameter dict (spec/00-method.md §3.5) saved with its config beside it.

Two formats, chosen by the file's suffix when saving and by its first bytes when loading:

- ``.npz`` (NumPy only): one entry per parameter key, plus the entry ``__inti__``, a 0-d
  string array holding the config as JSON.
- ``.safetensors``: one tensor per parameter key; the config JSON is the header metadata
  under ``"inti"``. Needs the `safetensors` package (imported only when used). A training
  checkpoint (`inti.train.checkpoint`) is one too: its ``model.*`` tensors are read.

The JSON is ``{"format": "inti-params", "version": 1, "config": {field: value, ...}}`` with
every `ModelConfig` field. Arrays keep their dtype, so a save and a load round-trip exactly.
Loading checks the keys and shapes against the stored config (`ref.check_params`) and names
every mismatch. Every failure is a `FileNotFoundError` or `ValueError` that names the file.

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

import dataclasses
import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from ref.config import ModelConfig
from ref.params import check_params

from .atomic import atomic_write, write_bytes
from .files import check_regular_file

FORMAT = "inti-params"
VERSION = 1
CONFIG_ENTRY = "__inti__"  # the npz entry holding the config JSON
METADATA_KEY = "inti"  # the safetensors metadata key holding the config JSON
TRAINING_KEY = "inti-train"  # present in training checkpoints, whose model tensors are "model.<key>"
SUFFIXES = (".npz", ".safetensors")

_SAFETENSORS_HINT = "pip install safetensors (or pip install 'inti[interop]')"


# ---------------------------------------------------------------------------------------------
# the config as JSON


def config_to_json(cfg: ModelConfig) -> str:
    """The config, with the format name and version, as one JSON string."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"cfg must be a ref.ModelConfig, got {type(cfg).__name__}")
    fields = dataclasses.asdict(cfg)  # tuples stay tuples, which json writes as lists
    return json.dumps({"format": FORMAT, "version": VERSION, "config": fields}, sort_keys=True)


def config_from_json(text: str, where: str = "the JSON") -> ModelConfig:
    """Parse `config_to_json`'s output back into a validated `ModelConfig`.

    Fields missing from the JSON take the dataclass defaults; unknown fields are refused."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{where}: the stored config is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{where} is not an inti parameter file: its stored config has no format {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{where}: parameter file format version {doc.get('version')!r} is not supported "
            f"(this inti reads version {VERSION})"
        )
    fields = doc.get("config")
    if not isinstance(fields, dict):
        raise ValueError(f"{where}: the stored config must be a JSON object, got {type(fields).__name__}")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{where}: the stored config has unknown field(s): {', '.join(unknown)}")
    try:
        return ModelConfig(**fields)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: the stored config is invalid: {e}") from None


# ---------------------------------------------------------------------------------------------
# saving


def as_array(value) -> np.ndarray:
    """A NumPy array of a parameter, keeping its dtype; a tensor goes through `torch_impl.to_numpy`."""
    if not isinstance(value, np.ndarray) and type(value).__module__.startswith("torch"):
        from torch_impl.convert import to_numpy  # torch is loaded already: value is a tensor

        value = to_numpy(value)
    return np.ascontiguousarray(np.asarray(value))


def _import_safetensors():
    try:
        import safetensors.numpy as st_numpy
        from safetensors import safe_open
    except ImportError:
        raise ImportError(f"reading or writing .safetensors files needs the safetensors package: {_SAFETENSORS_HINT}") from None
    return st_numpy, safe_open


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
        st_numpy, _ = _import_safetensors()
        write_bytes(path, st_numpy.save(arrays, metadata={METADATA_KEY: meta}))


# ---------------------------------------------------------------------------------------------
# loading


def _sniff(path: Path) -> str:
    """"npz", "safetensors", or a ValueError: decided from the first bytes, not the suffix."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if not head:
        raise ValueError(f"{str(path)!r} is empty, not an inti parameter file")
    if head[:2] == b"PK":
        return "npz"
    if len(head) == 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if 8 + header_len <= size:
            return "safetensors"
        raise ValueError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated (header runs past the end)")
    if path.suffix.lower() in SUFFIXES:
        raise ValueError(
            f"could not read parameter file {str(path)!r}: it is corrupt or not a {path.suffix} file"
        )
    raise ValueError(f"{str(path)!r} is not an inti parameter file (expected a .npz or .safetensors file)")


DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this: a bound no honest zip breaks


def check_npz_sizes(path: Path) -> None:
    """Refuse an archive whose members declare more bytes than they can hold, before anything
    is allocated: every .npy header's shape x itemsize must fit in its member, and the members
    must fit in the archive (stored as they are, or deflated at most DEFLATE_MAX_RATIO:1).

    np.load allocates the declared shape first and reads the bytes after, so a 1 kB file that
    declares a (10^11,) float64 array would ask for 745 GiB."""
    archive_size = path.stat().st_size
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
                version = np.lib.format.read_magic(f)
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


def _load_npz(path: Path) -> tuple[dict, str]:
    try:
        check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if CONFIG_ENTRY not in names:
                raise ValueError(
                    f"{str(path)!r} is not an inti parameter file: it has no stored config "
                    f"(npz entry {CONFIG_ENTRY!r}); save it with inti.io.params.save_params"
                )
            entries = {k: npz[k] for k in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, OverflowError, MemoryError) as e:
        raise ValueError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated "
                         f"({str(e) or type(e).__name__})") from None
    except ValueError as e:
        if "inti parameter file" in str(e):
            raise
        raise ValueError(f"could not read parameter file {str(path)!r}: it is corrupt ({e})") from None
    # np.load hands back raw bytes for a member that is not an .npy array
    bad = sorted(k for k, v in entries.items() if not isinstance(v, np.ndarray))
    meta = entries.pop(CONFIG_ENTRY)
    if bad or meta.dtype.kind != "U" or meta.shape != ():
        what = f"entries {', '.join(bad)} are not arrays" if bad else f"entry {CONFIG_ENTRY!r} is not a string"
        raise ValueError(f"could not read parameter file {str(path)!r}: it is corrupt ({what})")
    strings = sorted(k for k, v in entries.items() if v.dtype.kind not in "fiub")
    if strings:
        raise ValueError(f"could not read parameter file {str(path)!r}: entries {', '.join(strings)} are not numeric arrays")
    return entries, str(meta[()])


def _load_safetensors(path: Path) -> tuple[dict, str]:
    _, safe_open = _import_safetensors()
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = (f.metadata() or {}).get(METADATA_KEY)
            if meta is None:
                raise LookupError
            metadata = f.metadata() or {}
            if TRAINING_KEY in metadata:  # a training checkpoint (inti.train.checkpoint): its model part
                params = {k[len("model."):]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
            else:
                params = {k: f.get_tensor(k) for k in f.keys()}
    except LookupError:
        raise ValueError(
            f"{str(path)!r} is not an inti parameter file: it has no stored config "
            f"(safetensors metadata {METADATA_KEY!r}); save it with inti.io.params.save_params"
        ) from None
    except Exception as e:  # safetensors raises its own SafetensorError for damaged files
        raise ValueError(f"could not read parameter file {str(path)!r}: it is corrupt or truncated ({e})") from None
    return params, meta


def load_params(path) -> tuple[dict, ModelConfig]:
    """Read a file written by `save_params`: returns (params, cfg), params as NumPy arrays
    with their stored dtypes, checked against cfg."""
    path = Path(path)
    check_regular_file(path, "parameter file")
    kind = _sniff(path)
    params, meta = _load_npz(path) if kind == "npz" else _load_safetensors(path)
    cfg = config_from_json(meta, repr(str(path)))
    try:
        check_params(params, cfg)
    except ValueError as e:
        raise ValueError(f"parameter file {str(path)!r}: {e}") from None
    return params, cfg
