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

import math
import numbers
import random
from pathlib import Path

import numpy as np
import torch

from ref.params import key_report

from ..io import train_checkpoint as file_format
from ..io.errors import CorruptFileError, WrongKindError
from ..io.train_checkpoint import FORMAT, MODEL, OPTIM, RNG, VERSION, model_part

__all__ = ["CheckpointMismatch", "save", "read", "load_model", "load_optimizer", "restore_rng", "candidates", "latest",
           "prune", "step_path", "FORMAT", "VERSION", "LAST", "BEST", "FOLDER", "RUN_FILES"]

LAST, BEST, FOLDER = "last.safetensors", "best.safetensors", "checkpoints"
RUN_FILES = (LAST, BEST, FOLDER, "metrics.jsonl", "curves.png", "recipe.toml")  # what a run writes in its folder


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model, the optimizer or the run being resumed."""


class CheckpointInvalid(CheckpointMismatch):
    """A checkpoint whose content is damaged or tampered with: `--resume` falls back to the one before it."""


def read_checkpoint(path) -> tuple[dict, dict]:
    """(tensors, state) of a training checkpoint (`inti.io.train_checkpoint.read`); a file of
    another kind (a parameter file, a torch zip, a TorchScript archive) is named as what it
    is, with what reads it."""
    from ..io import kinds

    try:
        return file_format.read(path)
    except (CorruptFileError, WrongKindError):
        found = kinds.sniff(path)
        if found.kind is not None and found.kind != kinds.TRAINING:
            raise kinds.wrong_kind(path, found, "an inti training checkpoint") from None
        raise


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


# ---- what --resume reads, checked before any of it is used ------------------------------------

OPTIMIZER_FIELDS = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # AdamW's, per parameter
LOG_FIELDS = ("step", "epoch", "loss", "lr", "clips_per_s", "skipped", "skipped_total", "bad_clips")
EVAL_RECORDS = ("eval", "eval_ema")  # an evaluation of the weights, and of their EMA when a run keeps one
EXTRA_TENSORS = ("ema",)  # weights beside the model's (an EMA), checked finite


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def validate_state(path, tensors: dict, state: dict, *, changed, steps: int, accum: int,
                   batches_per_epoch: int, clips: int, model=None, optimizer=None) -> None:
    """Check everything `--resume` will use from a checkpoint read by `read`, before any of it
    is used. Raises CheckpointMismatch when `changed(state)`, given a state whose configs are
    JSON objects, names fields of the configs that differ from the run's: no older checkpoint
    of the run can fix that. Raises CheckpointInvalid, naming the file and the field, for
    anything else, and `latest` then falls back to the checkpoint before it:

    - the step is an integer in [0, steps]; the epoch and the batch inside it are integers
      with epoch * batches_per_epoch + batch = step * accum, the micro-batches the steps took;
    - `best` is -inf or a top-1 in [0, 1]; the skip record (clips skipped, distinct bad clips)
      holds counts and clip indices in [0, clips);
    - the history is a list of the records the loop writes: a dict with an integer step in
      [1, step] and numbers, or an ``eval`` dict of numbers;
    - the NumPy, Python and torch generator states are of the right type and size, and each
      loads into a fresh generator of its kind;
    - the tensors are ``model.*`` (every key of `model`, with its shape, all finite),
      ``optim.<param>.<field>`` (AdamW's fields, finite, of the parameter's shape, a step count
      in [0, step]) and ``rng.torch``, and nothing else.
    """
    where = f"training checkpoint {str(path)!r}"

    def invalid(field: str, why: str):
        return CheckpointInvalid(f"{where}: {field} {why}")

    for name in ("train_config", "data"):
        if not isinstance(state.get(name), dict):
            raise invalid(name, f"must be a JSON object, got {type(state.get(name)).__name__}")
    problems = changed(state)
    if problems:
        raise CheckpointMismatch(f"cannot resume from {str(path)!r} with a changed config: " + "; ".join(problems))

    step, epoch, batch = state.get("step"), state.get("epoch"), state.get("batch")
    if not _is_int(step) or not 0 <= step <= steps:
        raise invalid("step", f"must be an integer in [0, {steps}] (--steps), got {step!r}")
    if not _is_int(epoch) or epoch < 0 or not _is_int(batch) or not 0 <= batch <= batches_per_epoch:
        raise invalid("epoch and batch", f"must be integers, epoch >= 0 and batch in [0, {batches_per_epoch}], "
                                         f"got {epoch!r} and {batch!r}")
    if epoch * batches_per_epoch + batch != step * accum:
        raise invalid("epoch and batch", f"({epoch}, {batch}) do not match step {step}: with {batches_per_epoch} "
                                         f"batches an epoch, {step} steps of {accum} take {step * accum} batches, not "
                                         f"{epoch * batches_per_epoch + batch}")
    best = state.get("best")
    if not _is_real(best) or not (best == -math.inf or 0 <= best <= 1):
        raise invalid("best", f"must be -inf or a top-1 in [0, 1], got {best!r}")
    skipped = state.get("skipped", {"total": 0, "bad": []})
    if (not isinstance(skipped, dict) or set(skipped) != {"total", "bad"} or not _is_int(skipped["total"])
            or skipped["total"] < 0 or not isinstance(skipped["bad"], list)
            or not all(_is_int(i) and 0 <= i < clips for i in skipped["bad"])
            or len(set(skipped["bad"])) != len(skipped["bad"]) or len(skipped["bad"]) > skipped["total"]):
        raise invalid("skipped", f"must be {{'total': count, 'bad': distinct clip indices in [0, {clips})}}, "
                                 f"got {str(skipped)[:100]}")
    _validate_history(state.get("history"), step, invalid)
    _validate_generators(tensors, state, invalid)
    _validate_tensors(tensors, step, model, optimizer, invalid)


def _validate_history(history, step: int, invalid) -> None:
    if not isinstance(history, list) or len(history) > 2 * step:
        raise invalid("history", f"must be a list of at most 2 records a step, got {type(history).__name__} "
                                 f"of {len(history) if isinstance(history, list) else '?'}")
    last = 0
    for i, record in enumerate(history):
        ok = isinstance(record, dict) and _is_int(record.get("step")) and last <= record["step"] <= step
        kind = next((k for k in EVAL_RECORDS if isinstance(record, dict) and k in record), None)
        if ok and kind is not None:
            ok = set(record) == {"step", kind} and isinstance(record[kind], dict) and all(
                isinstance(k, str) and _is_real(v) for k, v in record[kind].items())
        elif ok:
            ok = set(record) <= set(LOG_FIELDS) and all(v is None or _is_real(v) for v in record.values())
        if not ok:
            raise invalid(f"history[{i}]", f"is not a record the loop writes (a step in [{last}, {step}] with numbers, "
                                           f"or an eval of numbers): {str(record)[:120]}")
        last = record["step"]


def _validate_generators(tensors: dict, state: dict, invalid) -> None:
    rng = tensors.get("rng.torch")
    expected = torch.get_rng_state()
    if not isinstance(rng, torch.Tensor) or rng.dtype != expected.dtype or rng.shape != expected.shape:
        raise invalid("rng.torch", f"must be a {expected.dtype} tensor of shape {tuple(expected.shape)}, got "
                                   f"{getattr(rng, 'dtype', type(rng).__name__)} {tuple(getattr(rng, 'shape', ()))}")
    try:
        torch.Generator().set_state(rng)
    except RuntimeError as e:
        raise invalid("rng.torch", f"is not a torch generator state ({e})") from None
    numpy_rng = state.get("numpy_rng")
    try:
        kind, keys, pos, has_gauss, gauss = numpy_rng
        if kind != "MT19937" or not isinstance(keys, list) or len(keys) != 624 \
                or not all(_is_int(k) and 0 <= k < 2**32 for k in keys):
            raise ValueError("an MT19937 state holds 624 32-bit keys")
        if not (_is_int(pos) and 0 <= pos <= 624 and has_gauss in (0, 1) and _is_real(gauss) and math.isfinite(gauss)):
            raise ValueError("its position, Gaussian flag or cached Gaussian is out of range")
        np.random.RandomState().set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    except (TypeError, ValueError, OverflowError) as e:
        raise invalid("numpy_rng", f"is not a NumPy generator state ({e}): {str(numpy_rng)[:80]}") from None
    python_rng = state.get("python_rng")
    try:
        version, internal, gauss_next = python_rng
        if not isinstance(internal, list) or not all(_is_int(k) for k in internal) or not (
                gauss_next is None or (_is_real(gauss_next) and math.isfinite(gauss_next))):
            raise ValueError("its words must be integers, its cached Gaussian None or a number")
        random.Random().setstate((version, tuple(internal), gauss_next))
    except (TypeError, ValueError, OverflowError) as e:
        raise invalid("python_rng", f"is not a Python generator state ({e}): {str(python_rng)[:80]}") from None


def _validate_tensors(tensors: dict, step: int, model, optimizer, invalid) -> None:
    params = {} if optimizer is None else {n: p for g in optimizer.param_groups
                                           for n, p in zip(g["param_names"], g["params"])}
    expected = {} if model is None else {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = {}
    for key, value in tensors.items():
        if key == "rng.torch":
            continue
        kind, _, rest = key.partition(".")
        if kind not in ("model", "optim", *EXTRA_TENSORS) or not rest:
            raise invalid(repr(key), "is not a tensor a training checkpoint holds (model.*, optim.*, rng.torch)")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise invalid(repr(key), "holds NaN or infinite values")
        if kind in EXTRA_TENSORS:
            continue
        if kind == "model":
            weights[rest] = tuple(value.shape)
            continue
        name, _, field = rest.rpartition(".")
        if field not in OPTIMIZER_FIELDS or not value.is_floating_point():
            raise invalid(repr(key), f"is not optimizer state: the fields are {', '.join(OPTIMIZER_FIELDS)}, in floats")
        if optimizer is not None and name not in params:
            raise invalid(repr(key), "is optimizer state for a parameter this run does not train")
        if field == "step":
            if value.numel() != 1 or not 0 <= float(value) <= step or float(value) != int(float(value)):
                raise invalid(repr(key), f"must be a whole count of steps in [0, {step}], got {value.tolist()}")
        elif optimizer is not None and tuple(value.shape) != tuple(params[name].shape):
            raise invalid(repr(key), f"has shape {tuple(value.shape)}, the parameter {tuple(params[name].shape)}")
        elif field in ("exp_avg_sq", "max_exp_avg_sq") and bool((value < 0).any()):
            raise invalid(repr(key), "holds negative second moments")
    if model is not None:
        problems = key_report(weights, expected)
        if problems:
            raise invalid("the weights", "do not fit the model: " + " | ".join(problems))


def candidates(out) -> list[Path]:
    """The checkpoints of a run folder, newest first: last, then the step files."""
    out = Path(out)
    steps = sorted((out / FOLDER).glob("step-*.safetensors"), reverse=True)
    return [p for p in [out / LAST, *steps] if p.exists()]


def latest(out, log=print, check=None) -> tuple[Path, dict, dict] | None:
    """(path, tensors, state) of the newest loadable checkpoint in `out`; a corrupt one, or one
    that `check(path, tensors, state)` finds invalid (CheckpointInvalid), is reported and the
    one before it is tried. None when the folder holds none."""
    tried = []
    for path in candidates(out):
        try:
            tensors, state = read_checkpoint(path)
        except ValueError as e:  # corrupt, truncated, not a training checkpoint
            problem = e
        else:
            try:  # a changed config (CheckpointMismatch) is raised: the older checkpoints share it
                if check is not None:
                    check(path, tensors, state)
                return path, tensors, state
            except CheckpointInvalid as e:
                problem = e
        log(f"resume: {problem}; falling back to the checkpoint before it")
        tried.append(f"{path.name} ({problem})")
    if tried:
        raise CheckpointMismatch(f"no loadable checkpoint in {str(out)!r}: " + "; ".join(tried))
    return None


def prune(out, keep: int) -> None:
    for old in sorted((Path(out) / FOLDER).glob("step-*.safetensors"), reverse=True)[keep:]:
        old.unlink()
