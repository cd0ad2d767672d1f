"""The front door for weights (`inti.io.weights.load`): every kind of file it reads, what it says
the file was, and the typed errors that say what a file is and what reads it.

The kinds are made here: inti parameter files (.npz, .safetensors), a training checkpoint
written through its format's owner (`inti.io.train_checkpoint`), other libraries' state dicts
(safetensors, npz, a torch zip) in the timm and CLIP layouts, and a TorchScript archive.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import ref
from inti.io import kinds, train_checkpoint, weights
from inti.io.errors import CorruptFileError, UnsafeFileError, WeightsError, WrongKindError
from inti.io.keymaps import external_shapes
from inti.io.layouts import convert_state_dict, to_layout
from inti.io.params import load_params, save_params
from inti.io.state_dict_files import read_state_dict

NANO = ref.preset("nano")
IMAGE = ref.preset("nano", schedule=(), num_classes=0, embed_dim=None, patch_bias=True, ln_eps=1e-6)  # timm can hold it


def timm_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in timm's layout for the image ViT IMAGE, as timm's state_dict() holds it."""
    arrays = to_layout(ref.init_params(IMAGE, seed=seed, dtype=np.float32), IMAGE, "timm")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def write_training_checkpoint(path, cfg=NANO, step=7):
    params = ref.init_params(cfg, seed=2, dtype=np.float32)
    tensors = {f"{train_checkpoint.MODEL}{k}": torch.from_numpy(v) for k, v in params.items()}
    tensors[f"{train_checkpoint.OPTIM}head.weight.exp_avg"] = torch.zeros(3)
    tensors[train_checkpoint.RNG] = torch.get_rng_state()
    train_checkpoint.write(path, tensors, {"step": step, "history": []}, cfg)
    return params


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of one file of every kind."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("weights")
    save_params(d / "params.npz", ref.init_params(NANO, seed=1), NANO)
    save_params(d / "params.safetensors", ref.init_params(NANO, seed=1, dtype=np.float32), NANO)
    write_training_checkpoint(d / "last.safetensors")
    sd = timm_state_dict()
    save_file(sd, d / "timm.safetensors")
    np.savez(d / "timm.npz", **{k: v.numpy() for k, v in sd.items()})
    torch.save({"state_dict": sd, "epoch": 3}, d / "timm.pt")
    torch.save({k: v.to(torch.bfloat16) for k, v in sd.items()}, d / "timm_bf16.pth")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 4)), d / "script.pt")
    (d / "notes.txt").write_text("these are not weights\n")
    return {p.name: p for p in d.iterdir()}


# ---------------------------------------------------------------------------------------------
# the kinds, told from the bytes


@pytest.mark.parametrize("name, kind, container", [
    ("params.npz", kinds.PARAMS, "npz"),
    ("params.safetensors", kinds.PARAMS, "safetensors"),
    ("last.safetensors", kinds.TRAINING, "safetensors"),
    ("timm.safetensors", kinds.STATE_DICT, "safetensors"),
    ("timm.npz", kinds.STATE_DICT, "npz"),
    ("timm.pt", kinds.STATE_DICT, "torch zip"),
    ("script.pt", kinds.TORCHSCRIPT, "torch zip"),
    ("notes.txt", None, None),
])
def test_sniff_tells_the_kind_from_the_bytes(files, tmp_path, name, kind, container):
    assert kinds.sniff(files[name]) == (kind, container)
    renamed = tmp_path / "renamed.bin"  # the suffix says nothing
    renamed.write_bytes(files[name].read_bytes())
    assert kinds.sniff(renamed) == (kind, container)


def test_inti_files_load_with_their_stored_config(files):
    for name in ("params.npz", "params.safetensors"):
        loaded = weights.load(files[name])
        assert loaded.kind == kinds.PARAMS and loaded.cfg == NANO and loaded.layout is None
        expected, _ = load_params(files[name])
        assert all(np.array_equal(loaded.params[k], v) for k, v in expected.items())
    assert weights.load(files["params.npz"]).dtype == "float64"
    assert weights.load(files["params.safetensors"]).describe().endswith("params.safetensors (inti parameter file)")


def test_a_training_checkpoint_loads_its_model_through_its_format_owner(files):
    loaded = weights.load(files["last.safetensors"])
    written = ref.init_params(NANO, seed=2, dtype=np.float32)
    assert loaded.kind == kinds.TRAINING and loaded.cfg == NANO and loaded.step == 7
    assert sorted(loaded.params) == sorted(written) and all(np.array_equal(loaded.params[k], v) for k, v in written.items())
    assert loaded.describe().endswith("(inti training checkpoint, step 7)")
    params, cfg = load_params(files["last.safetensors"])  # the parameter loader reads its model too
    assert cfg == NANO and all(np.array_equal(params[k], v) for k, v in written.items())


@pytest.mark.parametrize("name", ["timm.safetensors", "timm.npz", "timm.pt"])
def test_other_libraries_state_dicts_are_converted(files, name):
    loaded = weights.load(files[name], schedule=(1,))
    expected, cfg = convert_state_dict(timm_state_dict(), schedule=(1,), layout="timm")
    assert loaded.kind == kinds.STATE_DICT and loaded.layout == "timm" and loaded.cfg == cfg
    assert all(np.array_equal(loaded.params[k], v) for k, v in expected.items())
    assert loaded.dtype == "float32" and "(state dict, timm layout, converted)" in loaded.describe()


def test_the_stored_dtype_of_a_bfloat16_state_dict(files):
    assert weights.load(files["timm_bf16.pth"]).dtype == "bfloat16"


def test_a_torchscript_archive_is_read_without_running_it(files, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load must never run")

    monkeypatch.setattr(torch.jit, "load", refuse)
    with pytest.raises(ValueError, match="matches no known layout"):  # a Linear is no ViT: read, then refused
        weights.load(files["script.pt"])
    assert sorted(read_state_dict(files["script.pt"])) == ["0.bias", "0.weight"]


def test_schedule_on_inti_files(files):
    assert weights.load(files["params.npz"], schedule=(1, 2)).cfg == NANO  # the stored one, repeated
    with pytest.raises(WeightsError, match=r"schedule \(1,\) does not fit the weights in .*params\.npz.*merges\.1"):
        weights.load(files["params.npz"], schedule=(1,))


@pytest.mark.parametrize("option", [{"layout": "timm"}, {"image_size": 32}, {"heads": 2}])
def test_conversion_options_are_refused_for_inti_files(files, option):
    with pytest.raises(WeightsError, match=rf"is an inti parameter file, which stores its config; {next(iter(option))}="):
        weights.load(files["params.npz"], **option)


# ---------------------------------------------------------------------------------------------
# typed errors that say what the file is and what reads it


def test_a_torch_zip_given_for_a_parameter_file_says_what_it_is(files):
    with pytest.raises(WrongKindError, match=r"timm\.pt' is a torch zip \(a state dict saved with torch\.save\), not an "
                                             r"inti parameter file; inti\.io\.weights\.load \(the CLI's --weights\)") as info:
        load_params(files["timm.pt"])
    assert info.value.kind == kinds.STATE_DICT and "from_weights" in info.value.readers
    with pytest.raises(WrongKindError, match="is a TorchScript archive, not an inti parameter file"):
        load_params(files["script.pt"])


def test_inti_files_given_to_the_state_dict_reader_get_a_hint(files):
    with pytest.raises(WrongKindError, match=r"is an inti parameter file \(npz\), not another library's state dict; "
                                             r"inti\.io\.weights\.load .*inti\.io\.params\.load_params"):
        read_state_dict(files["params.npz"])
    with pytest.raises(WrongKindError, match="is an inti training checkpoint .*inti train --resume the whole run"):
        read_state_dict(files["last.safetensors"])


def test_accept_refuses_other_kinds_with_a_hint(files):
    with pytest.raises(WrongKindError, match=r"is an inti training checkpoint \(safetensors\), not a state dict or a "
                                             r"TorchScript archive; .*from_weights read its model") as info:
        weights.load(files["last.safetensors"], accept=weights.OTHERS)
    assert info.value.kind == kinds.TRAINING


def test_unknown_empty_and_damaged_files(files, tmp_path):
    with pytest.raises(WeightsError, match="is not a weights file inti knows"):
        weights.load(files["notes.txt"])
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        weights.load(tmp_path / "missing.safetensors")
    with pytest.raises(WeightsError, match="is not a regular file: it is a directory"):
        weights.load(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CorruptFileError, match="it is empty"):
        weights.load(tmp_path / "empty.pt")
    for name in ("params.npz", "last.safetensors", "timm.pt", "timm.safetensors"):
        data = files[name].read_bytes()
        cut = tmp_path / name
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(CorruptFileError, match="corrupt or truncated") as info:
            weights.load(cut)
        assert name in str(info.value)


def test_unsafe_files_are_refused(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "boom.pt"
    path.write_bytes(pickle.dumps({"w": Boom()}, protocol=2))
    with pytest.raises(UnsafeFileError, match="refusing to load .*never runs code from a file"):
        weights.load(path)


def test_the_error_classes_are_value_errors():
    for error in (WeightsError, CorruptFileError, UnsafeFileError, WrongKindError):
        assert issubclass(error, ValueError)


# ---------------------------------------------------------------------------------------------
# the front door behind the other entry points


def test_from_weights_reads_every_kind_and_from_timm_only_state_dicts(files):
    from inti.io.pretrained import from_timm, from_weights

    model = from_weights(files["last.safetensors"])
    assert model.cfg == NANO and model.pos_embed.dtype == torch.float32
    assert torch.equal(model.head.weight, torch.from_numpy(ref.init_params(NANO, seed=2, dtype=np.float32)["head.weight"]))
    assert from_weights(files["params.npz"]).pos_embed.dtype == torch.float64
    assert from_weights(files["timm.safetensors"]).cfg.schedule == ()
    with pytest.raises(WrongKindError, match="is an inti parameter file .*not a state dict or a TorchScript archive"):
        from_timm(files["params.npz"])


def test_training_starts_from_any_weights_file_through_the_front_door(files):
    from inti.train.models import load_pretrained

    for name, kind in (("params.npz", kinds.PARAMS), ("last.safetensors", kinds.TRAINING), ("timm.pt", kinds.STATE_DICT)):
        params, cfg, source = load_pretrained(str(files[name]))
        assert kind in source and ref.check_params(params, cfg) is None
    with pytest.raises(WeightsError, match="is not a weights file inti knows"):
        load_pretrained(str(files["notes.txt"]))
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_pretrained("missing.safetensors")


def test_no_fallback_is_chosen_by_the_text_of_a_message():
    """The loaders pick what to do next by the class of an error: no `in str(e)` anywhere in inti/io
    or the training model loader."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for path in [*sorted((root / "inti" / "io").glob("*.py")), root / "inti" / "train" / "models.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
                    and any(isinstance(c, ast.Call) and getattr(c.func, "id", None) == "str" for c in node.comparators)):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"a decision by the text of a message: {found}"


# ---------------------------------------------------------------------------------------------
# the old names, for one release


def test_the_old_names_still_work_and_say_so(files):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from inti.io import layouts, pretrained
        import inti.assets

        assert layouts.export_state_dict is layouts.to_layout
        assert layouts.check_exportable is layouts.check_layout_fits
        assert pretrained.from_checkpoint is pretrained.from_weights
        assert inti.assets.trained_checkpoint is inti.assets.trained_weights
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(messages) == 4 and all("the old name goes in the next release" in m for m in messages), messages
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import inti.io.checkpoints\nexcept DeprecationWarning as w:\n    print(w)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "inti.io.checkpoints is now inti.io.state_dict_files" in result.stdout, result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from inti.io.checkpoints import CheckpointError, load_checkpoint
    assert CheckpointError is WeightsError and load_checkpoint is read_state_dict
