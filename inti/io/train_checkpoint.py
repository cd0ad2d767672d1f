"""The training checkpoint's file format: its one owner. The trainer (`inti.train.checkpoint`)
writes and resumes through it; the weights loader (`inti.io.weights`, and `load_params`) reads
its model part through it.

One safetensors file holds the whole state of a run:

- tensors: ``model.<key>`` (the model's state dict, spec/00-method.md §3.5),
  ``optim.<param>.<field>`` (the optimizer's state per parameter name), ``rng.torch`` (torch's
  generator);
- metadata ``inti-train``: a JSON object with the format and version, and the run state the
  trainer keeps (step, epoch, batch, history, configs, the NumPy and Python generators);
- metadata ``inti``: the model config, as parameter files store it (`inti.io.config_json`).

Nothing is unpickled: safetensors holds arrays and strings only. Writes are atomic
(`inti.io.atomic`), so a run killed while saving keeps its last good checkpoint.
"""

from __future__ import annotations

import json
import os

from ref.config import ModelConfig
from ref.params import check_params

from .atomic import write_bytes
from .config_json import METADATA_KEY, config_from_json, config_to_json
from .errors import CorruptFileError, WeightsError, WrongKindError
from .files import check_regular_file
from .optional import require

FORMAT, VERSION = "inti-train", 1
MODEL, OPTIM, RNG = "model.", "optim.", "rng.torch"  # the tensors' names: MODEL + key, OPTIM + param.field


def write(path, tensors: dict, state: dict, cfg: ModelConfig) -> None:
    """Write a checkpoint: `tensors` named as above (torch tensors), `state` the run's JSON-able
    state, `cfg` the model's config."""
    st_torch = require("safetensors.torch", "writing a training checkpoint")
    meta = dict(state, format=FORMAT, version=VERSION)
    write_bytes(path, st_torch.save(tensors, metadata={FORMAT: json.dumps(meta), METADATA_KEY: config_to_json(cfg)}))


def read(path, framework: str = "pt", prefix: str = "") -> tuple[dict, dict]:
    """(tensors, state) of a checkpoint: the tensors whose names start with `prefix`, as torch
    tensors (framework "pt") or NumPy arrays ("numpy"); the state with its ``model_config``.

    Raises `CorruptFileError` for a damaged file and `WrongKindError` for any other file (an
    inti parameter file, another library's safetensors), both ValueErrors naming the file."""
    where = repr(os.fspath(path))
    check_regular_file(path, "training checkpoint", WeightsError)
    safe_open = require("safetensors", "reading a training checkpoint").safe_open
    try:
        with safe_open(os.fspath(path), framework=framework) as f:
            meta = f.metadata() or {}
            if FORMAT not in meta:
                what = "an inti parameter file" if METADATA_KEY in meta else "a safetensors file of another kind"
                raise WrongKindError(f"{where} is not an inti training checkpoint (no {FORMAT!r} metadata): it is {what}",
                                     kind=None)
            tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    except WeightsError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError for damaged files
        text = str(e) or type(e).__name__
        raise CorruptFileError(f"could not read training checkpoint {where}: it is corrupt or truncated ({text})") from None
    try:
        state = json.loads(meta[FORMAT])
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"{where}: its training state is not valid JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise WeightsError(f"{where}: training checkpoint format {version!r} is not supported (this inti reads version {VERSION})")
    state["model_config"] = config_from_json(meta.get(METADATA_KEY, ""), where)
    return tensors, state


def model_part(tensors: dict) -> dict:
    """The model's state dict inside a checkpoint's tensors: ``model.<key>`` -> ``<key>``."""
    return {k[len(MODEL):]: v for k, v in tensors.items() if k.startswith(MODEL)}


def read_model(path) -> tuple[dict, ModelConfig, dict]:
    """(params as NumPy arrays, their config, the run state) of a checkpoint: the trained model,
    as a parameter file gives it, checked against its config."""
    tensors, state = read(path, framework="numpy", prefix=MODEL)
    cfg = state["model_config"]
    params = model_part(tensors)
    try:
        check_params(params, cfg)
    except ValueError as e:
        raise WeightsError(f"training checkpoint {os.fspath(path)!r}: {e}") from None
    return params, cfg, state
