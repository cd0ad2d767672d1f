"""Training checkpoints: one safetensors file holds the whole state of a run.

Tensors: ``model.<key>`` (the state dict, spec/00-method.md §3.5), ``optim.<param>.<field>``
(AdamW's moments and step count, per parameter name), ``rng.torch`` (torch's generator), and
``ema.<key>`` (the EMA of the weights, `inti.train.ema`, when the run keeps one).
Metadata: ``inti-train``, a JSON object with the format and version, the step, the epoch and
the position inside it, the training and data configs, the metrics so far and the NumPy and
Python generator states; and ``inti``, the model config as parameter files store it, so that
`inti.io.params.load_params` (and with it `inti demo --weights`, `inti parity`, the NumPy spec)
reads the trained model straight from a checkpoint.

Nothing is unpickled: safetensors holds arrays and strings only. Writes are atomic
(`inti.io.atomic`), so a run killed while saving keeps its last good checkpoint.

A run's folder: ``OUT/last.safetensors`` (the newest), ``OUT/best.safetensors`` (the best
validation top-1 so far), ``OUT/checkpoints/step-<N>.safetensors`` (the newest few, the
fallbacks of `--resume`), ``OUT/metrics.jsonl`` and ``OUT/curves.png``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ref.params import key_report

from ..io.atomic import write_bytes
from ..io.files import check_regular_file
from ..io.params import METADATA_KEY, config_from_json, config_to_json

FORMAT, VERSION = "inti-train", 1
LAST, BEST, FOLDER = "last.safetensors", "best.safetensors", "checkpoints"


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model, the optimizer or the run being resumed."""


def step_path(out: Path, step: int) -> Path:
    return Path(out) / FOLDER / f"step-{step:08d}.safetensors"


def save(path, model, optimizer, state: dict, extra: dict | None = None) -> None:
    """Write model, optimizer, generators and `state` (step, epoch, batch, history, configs);
    `extra`: more tensors under their own prefix (the EMA's ``ema.*``)."""
    from safetensors.torch import save as to_bytes

    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    names = {id(p): n for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])}
    for p, st in optimizer.state.items():
        for field, value in st.items():
            tensors[f"optim.{names[id(p)]}.{field}"] = torch.as_tensor(value).detach().cpu().contiguous().clone()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors.update(extra or {})
    python_state = random.getstate()
    meta = dict(state, format=FORMAT, version=VERSION,
                numpy_rng=_jsonable(np.random.get_state()),
                python_rng=[python_state[0], list(python_state[1]), python_state[2]])
    write_bytes(path, to_bytes(tensors, metadata={FORMAT: json.dumps(meta), METADATA_KEY: config_to_json(model.cfg)}))


def _jsonable(state):
    kind, keys, pos, has_gauss, gauss = state
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def read(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a checkpoint; CheckpointMismatch (a ValueError) for anything that
    is not a whole inti training checkpoint."""
    from safetensors import safe_open

    check_regular_file(path, "training checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError for damaged files
        raise CheckpointMismatch(f"could not read training checkpoint {str(path)!r}: it is corrupt or truncated ({e})") from None
    if FORMAT not in meta:
        raise CheckpointMismatch(f"{str(path)!r} is not an inti training checkpoint (no {FORMAT!r} metadata)")
    try:
        state = json.loads(meta[FORMAT])
    except json.JSONDecodeError as e:
        raise CheckpointMismatch(f"{str(path)!r}: its training state is not valid JSON ({e})") from None
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise CheckpointMismatch(f"{str(path)!r}: training checkpoint format {state.get('version')!r} is not supported")
    state["model_config"] = config_from_json(meta.get(METADATA_KEY, ""), repr(str(path)))
    return tensors, state


def model_state(tensors: dict) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def load_model(model, tensors: dict, path) -> None:
    """Load the checkpoint's weights into `model`, loudly: every missing, unexpected or
    mis-shaped key is named, with both shapes."""
    weights = model_state(tensors)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = key_report({k: tuple(v.shape) for k, v in weights.items()}, expected)
    if problems:
        raise CheckpointMismatch(f"checkpoint {str(path)!r} does not fit this model: " + " | ".join(problems))
    model.load_state_dict(weights, strict=True)


def load_optimizer(optimizer, tensors: dict, path) -> None:
    names = {n: p for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])}
    state: dict = {}
    for key, value in tensors.items():
        if not key.startswith("optim."):
            continue
        name, field = key[len("optim."):].rsplit(".", 1)
        if name not in names:
            raise CheckpointMismatch(f"checkpoint {str(path)!r} has optimizer state for {name!r}, which this run does not train")
        state.setdefault(names[name], {})[field] = value
    optimizer.state.clear()
    for p, st in state.items():
        optimizer.state[p] = {k: v.to(p.device) if k != "step" else v for k, v in st.items()}


def restore_rng(tensors: dict, state: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy_rng"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python_rng"]
    random.setstate((version, tuple(internal), gauss_next))


def candidates(out) -> list[Path]:
    """The checkpoints of a run folder, newest first: last, then the step files."""
    out = Path(out)
    steps = sorted((out / FOLDER).glob("step-*.safetensors"), reverse=True)
    return [p for p in [out / LAST, *steps] if p.exists()]


def latest(out, log=print) -> tuple[Path, dict, dict] | None:
    """(path, tensors, state) of the newest loadable checkpoint in `out`; a corrupt one is
    reported and the one before it is tried. None when the folder holds none."""
    tried = []
    for path in candidates(out):
        try:
            tensors, state = read(path)
        except ValueError as e:
            log(f"resume: {e}; falling back to the checkpoint before it")
            tried.append(str(path))
            continue
        return path, tensors, state
    if tried:
        raise CheckpointMismatch(f"no loadable checkpoint in {str(out)!r}: {', '.join(tried)} are all corrupt")
    return None


def prune(out, keep: int) -> None:
    for old in sorted((Path(out) / FOLDER).glob("step-*.safetensors"), reverse=True)[keep:]:
        old.unlink()
