"""Training checkpoints, the trainer's side: what a run saves and how it resumes.

The file format (one safetensors file: ``model.*``, ``optim.*`` and ``rng.torch`` tensors, the
run state and the model config as metadata) has one owner, `inti.io.train_checkpoint`; this
module gathers the model's, the optimizer's and the generators' state into it, and puts them
back. The weights loader reads a checkpoint's model through the same owner, so
`inti.io.weights.load` (and with it ``--weights``, `inti.io.params.load_params`, the NumPy
spec) reads a trained model straight from a checkpoint.
``ema.<key>`` tensors (the EMA of the weights, `inti.train.ema`) ride along when a run keeps one.

Nothing is unpickled: safetensors holds arrays and strings only. Writes are atomic
(`inti.io.atomic`), so a run killed while saving keeps its last good checkpoint.

A run's folder: ``OUT/last.safetensors`` (the newest), ``OUT/best.safetensors`` (the best
validation top-1 so far), ``OUT/checkpoints/step-<N>.safetensors`` (the newest few, the
fallbacks of `--resume`), ``OUT/metrics.jsonl`` and ``OUT/curves.png``.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ref.params import key_report

from ..io import train_checkpoint as file_format
from ..io.train_checkpoint import FORMAT, MODEL, OPTIM, RNG, VERSION, model_part, read

__all__ = ["CheckpointMismatch", "save", "read", "load_model", "load_optimizer", "restore_rng", "candidates", "latest",
           "prune", "step_path", "FORMAT", "VERSION", "LAST", "BEST", "FOLDER", "RUN_FILES"]

LAST, BEST, FOLDER = "last.safetensors", "best.safetensors", "checkpoints"
RUN_FILES = (LAST, BEST, FOLDER, "metrics.jsonl", "curves.png", "recipe.toml")  # what a run writes in its folder


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model, the optimizer or the run being resumed."""


def step_path(out: Path, step: int) -> Path:
    return Path(out) / FOLDER / f"step-{step:08d}.safetensors"


def save(path, model, optimizer, state: dict, extra: dict | None = None) -> None:
    """Write model, optimizer, generators and `state` (step, epoch, batch, history, configs);
    `extra`: more tensors under their own prefix (the EMA's ``ema.*``)."""
    tensors = {f"{MODEL}{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    names = {id(p): n for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])}
    for p, st in optimizer.state.items():
        for field, value in st.items():
            tensors[f"{OPTIM}{names[id(p)]}.{field}"] = torch.as_tensor(value).detach().cpu().contiguous().clone()
    tensors[RNG] = torch.get_rng_state()
    tensors.update(extra or {})
    python_state = random.getstate()
    run_state = dict(state, numpy_rng=_jsonable(np.random.get_state()),
                     python_rng=[python_state[0], list(python_state[1]), python_state[2]])
    file_format.write(path, tensors, run_state, model.cfg)


def _jsonable(state):
    kind, keys, pos, has_gauss, gauss = state
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def load_model(model, tensors: dict, path) -> None:
    """Load the checkpoint's weights into `model`, loudly: every missing, unexpected or
    mis-shaped key is named, with both shapes."""
    weights = model_part(tensors)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = key_report({k: tuple(v.shape) for k, v in weights.items()}, expected)
    if problems:
        raise CheckpointMismatch(f"checkpoint {str(path)!r} does not fit this model: " + " | ".join(problems))
    model.load_state_dict(weights, strict=True)


def load_optimizer(optimizer, tensors: dict, path) -> None:
    names = {n: p for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])}
    state: dict = {}
    for key, value in tensors.items():
        if not key.startswith(OPTIM):
            continue
        name, field = key[len(OPTIM):].rsplit(".", 1)
        if name not in names:
            raise CheckpointMismatch(f"checkpoint {str(path)!r} has optimizer state for {name!r}, which this run does not train")
        state.setdefault(names[name], {})[field] = value
    optimizer.state.clear()
    for p, st in state.items():
        optimizer.state[p] = {k: v.to(p.device) if k != "step" else v for k, v in st.items()}


def restore_rng(tensors: dict, state: dict) -> None:
    torch.set_rng_state(tensors[RNG])
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
