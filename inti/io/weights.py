"""The front door for weights: `load(path)` reads any weights file inti knows and says what it was.

    >>> import tempfile, os
    >>> from ref import preset, init_params
    >>> from inti.io.params import save_params
    >>> path = os.path.join(tempfile.mkdtemp(), "nano.npz")
    >>> save_params(path, init_params(preset("nano")), preset("nano"))
    >>> w = load(path)
    >>> w.kind, w.cfg == preset("nano"), sorted(w.params)[:1]
    ('inti parameter file', True, ['blocks.0.attn.proj.bias'])

The kind is told from the file's bytes, never its suffix (`inti.io.kinds`), and each kind is
read by the one module that owns its format:

========================== ============================================ =========================
kind                       what                                         read by
========================== ============================================ =========================
inti parameter file        params + config, .npz or .safetensors        `inti.io.params`
inti training checkpoint   a run's whole state; its model is read       `inti.io.train_checkpoint`
state dict                 timm / OpenAI CLIP / open_clip / Hugging     `inti.io.state_dict_files`,
                           Face weights in .safetensors, .npz, .pt,     converted by `inti.io.layouts`
                           .pth, .bin; or a Hugging Face model folder   (a folder: `inti.io.hf`)
TorchScript archive        OpenAI CLIP's downloads, never run           `inti.io.torchscript`, converted
========================== ============================================ =========================

A Hugging Face model folder (``model.safetensors`` or ``pytorch_model.bin`` with its
``config.json``, as ``save_pretrained`` writes it) is a state dict whose config.json tells the
heads, activation and LayerNorm eps that the shapes cannot; the path is the folder.

inti's own files carry their config; another library's state dict gets its config from its
shapes and the layout (`inti.io.layout_config`), and new predictors θ for `schedule`. The
parameters come back as NumPy arrays in the spec's layout (spec/00-method.md §3.5), so both
`ref.forward` and `torch_impl.from_ref_params` take them.

Errors (`inti.io.errors`, all ValueErrors naming the file, chosen by class): a damaged file
is a `CorruptFileError`, one that holds more than tensors an `UnsafeFileError`, a kind the
caller did not accept (``accept=``) a `WrongKindError` saying what the file is and what reads
it. A missing path is a FileNotFoundError. Nothing in any file is ever run, every size a file
declares is checked before anything is allocated, and no file is changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ref.config import ModelConfig
from ref.params import check_params

from . import kinds, train_checkpoint
from .errors import CorruptFileError, WeightsError, WrongKindError
from .files import check_regular_file
from .hf import read_folder
from .keymaps import default_layout, detect_layout
from .layouts import convert_state_dict, schedule_tuple
from .params import load_params
from .state_dicts import dtype_name, select_visual, stored_dtype, unwrap_state_dict

ALL = kinds.KINDS
INTI = (kinds.PARAMS, kinds.TRAINING)
OTHERS = (kinds.STATE_DICT, kinds.TORCHSCRIPT)
_DAMAGED_BY_SUFFIX = {".npz": "params", ".safetensors": "params", ".pt": "state", ".pth": "state", ".bin": "state"}


@dataclass(frozen=True)
class Weights:
    """What `load` read: the parameters (NumPy arrays, spec layout), their config, and what the
    file was."""

    params: dict = field(repr=False)
    cfg: ModelConfig
    kind: str  # one of inti.io.kinds.KINDS
    path: Path
    layout: str | None = None  # the layout a state dict was read in ("timm", "clip", "open_clip", "hf")
    dtype: str | None = None  # the dtype the file stores its position embedding in ("float32", "bfloat16")
    step: int | None = None  # a training checkpoint's step

    def describe(self) -> str:
        """One line for a report: "run/best.safetensors (inti training checkpoint, step 150)"."""
        detail = [self.kind]
        if self.layout:
            detail.append(f"{self.layout} layout, converted")
        if self.step is not None:
            detail.append(f"step {self.step}")
        return f"{self.path} ({', '.join(detail)})"


def load(path, *, accept=ALL, layout: str | None = None, schedule=None, image_size: int | None = None,
         antialias: bool = True, seed: int = 0, **overrides) -> Weights:
    """Read a weights file of any kind inti knows, or a Hugging Face model folder (see the
    module's table) -> `Weights`.

    accept: the kinds the caller takes (default: all); another is a `WrongKindError` that says
    what the file is and what reads it.
    schedule: where InTI merges (spec/00-method.md §3). For inti's own files, None keeps the
    stored one, and another must fit the stored parameters (θ is the file's). For another
    library's state dict, None means no merges, and θ is new for the schedule given.
    layout, image_size, antialias, seed, overrides: how another library's state dict is
    converted (`inti.io.layouts.convert_state_dict`); inti's own files store their config, so
    there they are refused (an image_size equal to the stored one aside)."""
    if schedule is not None:
        schedule = schedule_tuple(schedule)
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_dir():
        if kinds.STATE_DICT not in accept:
            found = kinds.Sniffed(kinds.STATE_DICT, "Hugging Face model folder")
            raise kinds.wrong_kind(path, found, " or ".join(f"{'an' if k[0] in 'aeiou' else 'a'} {k}" for k in accept))
        state_dict, told = read_folder(path)
        return _convert(path, kinds.Sniffed(kinds.STATE_DICT, "Hugging Face model folder"), state_dict, layout,
                        schedule, image_size, antialias, seed, told | overrides)
    check_regular_file(path, "weights file", WeightsError)
    found = kinds.sniff(path)
    if found.kind is None:
        _refuse_unknown(path, found)
    if found.kind not in accept:
        raise kinds.wrong_kind(path, found, " or ".join(f"{'an' if k[0] in 'aeiou' else 'a'} {k}" for k in accept))
    if found.kind in INTI:
        return _load_own(path, found.kind, layout, schedule, image_size, overrides)
    from .state_dict_files import read_state_dict  # torch's formats need torch: imported only for them

    return _convert(path, found, read_state_dict(path), layout, schedule, image_size, antialias, seed, overrides)


def _convert(path: Path, found: kinds.Sniffed, state_dict, layout, schedule, image_size, antialias, seed,
             overrides) -> Weights:
    """Another library's state dict, converted by `inti.io.layouts.convert_state_dict`."""
    sd = unwrap_state_dict(state_dict)
    if INTI_OWN_KEYS <= set(sd):
        raise WrongKindError(
            f"{str(path)!r} is {found.describe()} whose keys are InTI's own parameter names (a torch_impl.InTIModel "
            "state dict), without the config inti needs to read it; load it into a model built for its config with "
            "load_state_dict, or save it with inti.io.params.save_params, which stores the config beside it",
            kind=found.kind)
    try:
        used = layout or default_layout(detect_layout(select_visual(sd)[0]))
        params, cfg = convert_state_dict(sd, () if schedule is None else schedule, image_size, layout=used,
                                         antialias=antialias, seed=seed, **overrides)
    except WeightsError:
        raise
    except ValueError as e:  # the content does not convert: say which file, of what kind
        raise WeightsError(f"{str(path)!r} is {found.describe()}, which inti reads, but it does not convert: {e}") from None
    return Weights(params, cfg, found.kind, path, layout=used, dtype=stored_dtype(sd))


INTI_OWN_KEYS = {"patch_embed.weight", "ln_pre.weight", "pos_embed"}  # InTI's names; timm's and CLIP's differ


def _refuse_unknown(path: Path, found: kinds.Sniffed) -> None:
    """The error for a file whose kind `sniff` could not tell: the reader of its suffix says what
    is damaged, else one message says what was expected."""
    if path.stat().st_size == 0:
        raise CorruptFileError(f"could not read weights file {str(path)!r}: it is empty")
    reader = _DAMAGED_BY_SUFFIX.get(path.suffix.lower())
    if found.container is not None and reader == "params":
        load_params(path)  # raises its detailed error for a damaged .npz or .safetensors file
    if found.container is not None and reader == "state":
        from .state_dict_files import read_state_dict

        read_state_dict(path)  # the same for a damaged torch file
    if found.container is not None:
        raise CorruptFileError(f"could not read weights file {str(path)!r}: it is a damaged {found.container} file")
    raise WeightsError(
        f"{str(path)!r} is not a weights file inti knows: expected an inti parameter file or training checkpoint, "
        "another library's state dict (.safetensors, .npz, .pt, .pth, .bin) or a TorchScript archive")


def _load_own(path: Path, kind: str, layout, schedule, image_size, overrides) -> Weights:
    step = None
    if kind == kinds.TRAINING:
        params, cfg, state = train_checkpoint.read_model(path)
        step = state.get("step") if isinstance(state.get("step"), int) else None
    else:
        params, cfg = load_params(path)
    refused = (["layout"] if layout is not None else []) + list(overrides)
    if image_size is not None and image_size != cfg.image_size:
        refused.append("image_size")
    if refused:
        raise WeightsError(f"{str(path)!r} is an {kind}, which stores its config; {', '.join(f'{n}=' for n in refused)} "
                           "applies to converting other libraries' state dicts")
    if schedule is not None and tuple(schedule) != cfg.schedule:
        new = cfg.replace(schedule=tuple(schedule))
        try:
            check_params(params, new)
        except ValueError as e:
            raise WeightsError(f"schedule {tuple(schedule)} does not fit the weights in {str(path)!r}, stored for "
                               f"{cfg.schedule}: {e}") from None
        cfg = new
    return Weights(params, cfg, kind, path, dtype=dtype_name(params["pos_embed"]), step=step)
