"""Messages that name the file's kind: a weights file of a kind an entry point does not read
(or reads but cannot convert) gets a message that says what the file is, and what reads it.

- a torch zip of InTI's own state dict (torch.save of a model's state_dict()) has no config:
  the message says so, and how to load or save it, instead of "looks like the timm layout";
- a torch zip or npz whose state dict fits no layout: the file and its kind are named;
- `--resume` over a folder whose checkpoint is another kind of file: the kind, and its readers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ref
import torch_impl
from inti.cli import main
from inti.data.datasets import SyntheticVideos
from inti.io import weights
from inti.io.errors import WeightsError, WrongKindError
from inti.io.params import save_params
from inti.train import TrainConfig, fit
from inti.train import checkpoint as ckpt

CFG = ref.preset("nano", image_size=32, patch_size=8, num_classes=10, embed_dim=None, schedule=(2,))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinds")
    params = ref.init_params(CFG)
    torch.save({k: torch.from_numpy(v) for k, v in params.items()}, d / "inti_state_dict.pt")
    torch.save({"a": torch.zeros(2), "b": torch.ones(3)}, d / "other.pt")
    np.savez(d / "other.npz", a=np.zeros(3))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), d / "script.pt")
    save_params(d / "params.npz", params, CFG)
    save_params(d / "params.safetensors", params, CFG)
    return d


def test_inti_own_state_dict_in_a_torch_zip_is_named_as_such(files, capsys):
    with pytest.raises(WrongKindError, match=r"inti_state_dict\.pt' is a torch zip \(a state dict saved with torch\.save\) "
                                             r"whose keys are InTI's own parameter names .* without the config .* "
                                             r"inti\.io\.params\.save_params"):
        weights.load(files / "inti_state_dict.pt")
    assert main(["eval", "--weights", str(files / "inti_state_dict.pt"), "--synthetic", "motion"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "InTI's own parameter names" in err[0] and "timm layout" not in err[0], err


@pytest.mark.parametrize("name, kind", [("other.pt", "a torch zip (a state dict saved with torch.save)"),
                                        ("other.npz", "a npz file holding a state dict"),
                                        ("script.pt", "a TorchScript archive")])
def test_a_state_dict_that_fits_no_layout_names_the_file_and_its_kind(files, capsys, name, kind):
    with pytest.raises(WeightsError) as info:
        weights.load(files / name)
    assert str(info.value).startswith(f"{str(files / name)!r} is {kind}, which inti reads, but it does not convert: "
                                      "the state dict matches no known layout")
    assert main(["demo", "--weights", str(files / name), "--progress", "off", "--out", str(files / "demo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is {kind}, which inti reads" in err[0], err


@pytest.mark.parametrize("name, kind", [("params.npz", "an inti parameter file (npz)"),
                                        ("params.safetensors", "an inti parameter file (safetensors)"),
                                        ("other.pt", "a torch zip (a state dict saved with torch.save)"),
                                        ("script.pt", "a TorchScript archive")])
def test_resume_names_the_kind_of_a_checkpoint_that_is_another_file(files, tmp_path, name, kind):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.safetensors").write_bytes((files / name).read_bytes())
    with pytest.raises(ckpt.CheckpointMismatch) as info:
        fit(torch_impl.InTIModel(CFG), SyntheticVideos("informative", 8, 8, 32, train=True), None,
            TrainConfig(steps=2, batch_size=4, eval_every=0), out=out, resume=True, say=lambda *a: None)
    message = str(info.value)
    assert f"last.safetensors ({str(out / 'last.safetensors')!r} is {kind}, not an inti training checkpoint; " in message
    assert "inti.io.weights.load (the CLI's --weights)" in message
