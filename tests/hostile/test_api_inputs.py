"""Hostile arguments to the Python API of the tools: each gets the project's own clear error
(a ValueError or TypeError raised in inti/ with a message), never a raw library exception.

The cases the training-path audit found: a bare integer for a schedule, integer keys in a
state dict, sparse, quantized and meta tensors as weights, a training config with betas "ab"
or a seed past 2^63 - 1, and a list given to `to_tensor`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ref
import torch_impl
from fuzzing import assert_ours
from inti.io import clips, layouts, pretrained
from inti.train import TrainConfig

CFG = ref.preset("nano", embed_dim=None)


@pytest.fixture(scope="module")
def timm_state_dict():
    return pretrained.export_state_dict(torch_impl.from_ref_params(ref.init_params(CFG), CFG), "timm")


def changed(sd, key, make):
    return {k: (make(v) if k == key else v) for k, v in sd.items()}


CASES = {
    "schedule a bare int": (lambda sd: pretrained.from_timm(sd, schedule=1), TypeError,
                            "schedule must be a tuple of block indices counted from 1, such as (6,) or (8, 20), or () "
                            "for no merges; got int 1"),
    "schedule a string": (lambda sd: pretrained.from_weights(sd, schedule="6"), TypeError, "got str '6'"),
    "schedule to convert": (lambda sd: layouts.convert_state_dict(sd, 2.0), TypeError, "got float 2.0"),
    "an integer key": (lambda sd: pretrained.from_timm({**sd, 5: torch.zeros(2)}), TypeError,
                       "a state dict's keys are parameter names (strings), got int 5"),
    "integer keys only": (lambda sd: pretrained.from_clip({1: torch.zeros(2), 2: torch.zeros(2)}), TypeError,
                          "got int 1 and 1 more"),
    "a sparse tensor": (lambda sd: pretrained.from_timm(changed(sd, "pos_embed", lambda v: v.to_sparse())), ValueError,
                        "pos_embed is a sparse_coo tensor; weights must be dense float tensors"),
    "a quantized tensor": (lambda sd: pretrained.from_timm(
        changed(sd, "pos_embed", lambda v: torch.quantize_per_tensor(v.float(), 0.1, 0, torch.qint8))), ValueError,
        "pos_embed is a quantized tensor"),
    "a meta tensor": (lambda sd: pretrained.from_timm(changed(sd, "cls_token", lambda v: v.to("meta"))), ValueError,
                      "cls_token is a tensor on the meta device, which holds no values"),
    "betas a string": (lambda sd: TrainConfig(betas="ab"), ValueError, "betas must be two numbers in [0, 1), got 'ab'"),
    "betas of text": (lambda sd: TrainConfig(betas=(0.9, "x")), ValueError, "betas must be two numbers"),
    "a seed past 2**63 - 1": (lambda sd: TrainConfig(seed=2**70), ValueError,
                              "seed must be an integer in [0, 2**63 - 1], got 1180591620717411303424"),
    "to_tensor of a list": (lambda sd: clips.to_tensor([[1.0]]), TypeError,
                            "clip must be a NumPy array (T, 3, H, W) as load_clip returns it, got list"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_api_arguments_get_clear_errors(timm_state_dict, case):
    call, kind, fragment = CASES[case]
    with pytest.raises(Exception) as info:
        call(timm_state_dict)
    assert_ours(info.value, case)
    assert isinstance(info.value, kind) and fragment in str(info.value), info.value


def test_the_valid_neighbours_still_work(timm_state_dict):
    assert pretrained.from_timm(timm_state_dict, schedule=[1]).cfg.schedule == (1,)
    assert pretrained.from_timm({k: v.numpy() for k, v in timm_state_dict.items()}).cfg.schedule == ()
    assert TrainConfig(betas=[0.8, 0.9], seed=2**63 - 1).betas == (0.8, 0.9)
    assert clips.to_tensor(np.zeros((2, 3, 4, 4), np.float32)).shape == (1, 2, 3, 4, 4)
