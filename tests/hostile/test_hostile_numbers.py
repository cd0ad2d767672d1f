"""No silent wrong numbers (spec/00-method.md §9): every bad config, weight or pixel gets a clear
error at the public entry point, ref and torch give the same message, and a non-finite output
from finite inputs names the first trace entry where it appeared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ref
import torch_impl
from inti.cli import main
from inti.io.params import config_to_json, load_params, save_params

NANO = ref.preset("nano")


def video(cfg=NANO, frames=4, value=None, dtype=np.float64):
    v = np.random.default_rng(0).standard_normal((1, frames, 3, cfg.image_size, cfg.image_size))
    if value is not None:
        v[0, 1, 2, 3, 4] = value
    return v.astype(dtype)


def error_of(fn, *args, **kwargs) -> BaseException:
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return info.value


# ---- configs: type and range -------------------------------------------------------------------

@pytest.mark.parametrize(
    "changes, match",
    [
        ({"ln_eps": 1e300}, r"ln_eps must be at most 0\.1, got 1e\+300"),
        ({"ln_eps": "1e-5"}, r"ln_eps must be a number, got '1e-5'"),
        ({"ln_eps": float("inf")}, r"ln_eps must be at most 0\.1, got inf"),
        ({"mlp_ratio": 1000.0}, r"mlp_ratio must be at most 64, got 1000\.0"),
        ({"mlp_ratio": "4"}, r"mlp_ratio must be a number, got '4'"),
        ({"schedule": 3}, r"schedule must be a tuple, got 3"),
        ({"schedule": "12"}, r"schedule must be a tuple, got '12'"),
        ({"branches": "token"}, r"branches must be a tuple, got 'token'"),
        ({"branches": ("token", 3)}, r"branches must be distinct names"),
        ({"ln_pre": 1}, r"ln_pre must be True or False, got 1"),
        ({"patch_bias": "no"}, r"patch_bias must be True or False, got 'no'"),
        ({"activation": None}, r"activation must be one of .* got None"),
        ({"weight_fn": ["softmax"]}, r"weight_fn must be one of .* got \['softmax'\]"),
        ({"width": "64"}, r"ModelConfig\.width must be a positive integer, got '64'"),
    ],
)
def test_config_fields_are_checked_for_type_and_range(changes, match):
    with pytest.raises(ValueError, match=match):
        NANO.replace(**changes)


@pytest.mark.parametrize(
    "call",
    [
        lambda cfg: ref.forward(ref.init_params(NANO), video(), cfg),
        lambda cfg: ref.init_params(cfg),
        lambda cfg: ref.param_shapes(cfg),
        lambda cfg: ref.check_params(ref.init_params(NANO), cfg),
        lambda cfg: ref.count_macs(cfg, 8),
        lambda cfg: torch_impl.InTIModel(cfg),
        lambda cfg: torch_impl.from_ref_params(ref.init_params(NANO), cfg),
    ],
    ids=["forward", "init_params", "param_shapes", "check_params", "count_macs", "InTIModel", "from_ref_params"],
)
def test_a_dict_is_not_a_config(call):
    as_dict = {"image_size": 64, "patch_size": 8, "width": 64}
    got = error_of(call, as_dict)
    assert isinstance(got, TypeError), repr(got)
    assert str(got).startswith("cfg must be a ref.ModelConfig, got dict; build one with ref.ModelConfig(**d)")


# ---- weights: real, floating, finite, named -------------------------------------------------------

def _with(key, value):
    params = ref.init_params(NANO)
    params[key] = value(params[key])
    return params


BAD_WEIGHTS = [
    ("nan", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a), ValueError,
     "parameters must be finite, got NaN or infinite values in 1 key(s): blocks.1.mlp.fc1.weight (1 of"),
    ("inf", lambda a: np.full_like(a, np.inf), ValueError, "blocks.1.mlp.fc1.weight"),
    ("int", lambda a: a.astype(np.int64), TypeError,
     "parameters must be real floating arrays, got 1 that are not: blocks.1.mlp.fc1.weight (int64)"),
    ("bool", lambda a: a > 0, TypeError, "blocks.1.mlp.fc1.weight (bool)"),
    ("complex", lambda a: a + 1j, TypeError, "blocks.1.mlp.fc1.weight (complex128)"),
]


@pytest.mark.parametrize("name, corrupt, kind, fragment", BAD_WEIGHTS, ids=[b[0] for b in BAD_WEIGHTS])
def test_bad_weights_are_named_by_ref_and_torch_alike(name, corrupt, kind, fragment):
    params = _with("blocks.1.mlp.fc1.weight", corrupt)
    in_ref = error_of(ref.forward, params, video(), NANO)
    in_torch = error_of(torch_impl.from_ref_params, params, NANO)
    assert isinstance(in_ref, kind) and fragment in str(in_ref), repr(in_ref)
    assert type(in_torch) is type(in_ref) and str(in_torch) == str(in_ref)


def test_a_weights_file_with_nan_is_refused_on_loading_and_in_the_cli(tmp_path, capsys):
    params = _with("merges.0.reduce.weight", lambda a: a * np.nan)
    path = tmp_path / "nan.npz"
    with pytest.raises(ValueError, match="parameters must be finite"):
        save_params(path, params, NANO)  # nothing non-finite is written either
    assert not path.exists()
    with open(path, "wb") as f:  # written by hand, as another tool might
        np.savez(f, **params, __inti__=np.array(config_to_json(NANO)))
    with pytest.raises(ValueError, match=r"nan\.npz.*must be finite.*merges\.0\.reduce\.weight"):
        load_params(path)
    assert main(["parity", "--weights", str(path), "--frames", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "merges.0.reduce.weight" in err[0] and "parity" not in err[0].split("error:")[1]


# ---- pixels and outputs --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1e6, -3e300, 1e5])
def test_huge_pixels_are_refused_alike(value):
    params = ref.init_params(NANO)
    v = video(value=value)
    in_ref = error_of(ref.forward, params, v, NANO)
    in_torch = error_of(torch_impl.from_ref_params(params, NANO), torch.from_numpy(v))
    assert isinstance(in_ref, ValueError) and "video must hold normalized pixels, within ±10000" in str(in_ref)
    assert type(in_torch) is ValueError and str(in_torch) == str(in_ref)


def test_pixels_at_the_bound_still_run():
    v = video(value=1e4)
    assert np.isfinite(ref.forward(ref.init_params(NANO), v, NANO)).all()


def overflowing_params():
    """Finite weights whose products overflow float64 in block 2's MLP (trace entry blocks.1)."""
    return _with("blocks.1.mlp.fc1.weight", lambda a: np.sign(a) * 1e307)


def test_a_non_finite_output_names_its_first_entry_in_ref_and_torch():
    params, v = overflowing_params(), video()
    in_ref = error_of(ref.forward, params, v, NANO)
    model = torch_impl.from_ref_params(params, NANO)
    in_torch = error_of(model, torch.from_numpy(v))
    assert isinstance(in_ref, ValueError), repr(in_ref)
    assert str(in_ref).startswith("the model produced NaN or infinite values from finite inputs: "
                                  "first at trace entry 'blocks.1'")
    assert type(in_torch) is ValueError and str(in_torch) == str(in_ref)
    with pytest.raises(ValueError, match="first at trace entry 'blocks.1'"):
        model(torch.from_numpy(v), return_trace=True)


def test_the_output_check_costs_nothing_when_the_output_is_finite(monkeypatch):
    """On the good path the torch model runs once: the traced rerun happens only on failure."""
    model = torch_impl.from_ref_params(ref.init_params(NANO), NANO)
    calls = []
    real = torch_impl.InTIModel.forward

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("check", True))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch_impl.InTIModel, "forward", counting)
    model(torch.from_numpy(video()))
    assert calls == [True]


# ---- frame counts and dtypes -----------------------------------------------------------------------

@pytest.mark.parametrize("frames", [0, -4, 2.0, True, "8"])
def test_frame_counts_are_positive_integers(frames):
    with pytest.raises(ValueError, match=rf"frames must be a positive integer, got {frames!r}"):
        ref.count_macs(NANO, frames)
    with pytest.raises(ValueError, match="frames must be a positive integer"):
        torch_impl.InTIModel(NANO, frames=frames)


def test_numpy_integer_frames_work():
    assert ref.count_macs(NANO, np.int64(8)) == ref.count_macs(NANO, 8)


def test_a_dtype_name_is_a_dtype_not_a_device():
    params = ref.init_params(NANO)
    assert torch_impl.from_ref_params(params, NANO, dtype="float32").pos_embed.dtype == torch.float32
    got = error_of(torch_impl.from_ref_params, params, NANO, dtype=np.float32)
    assert isinstance(got, TypeError) and "dtype must be a floating torch.dtype or its name" in str(got)


def test_traceback_only_with_inti_traceback_1(monkeypatch, capsys):
    monkeypatch.setenv("INTI_TRACEBACK", "0")
    assert main(["demo", "--weights", "no-such-file.npz"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("inti demo: error: no such weights file")
    monkeypatch.setenv("INTI_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        main(["demo", "--weights", "no-such-file.npz"])


def test_an_unexpected_error_is_one_line_too(monkeypatch, capsys):
    import inti.cli.cost

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(inti.cli.cost, "run", boom)
    monkeypatch.delenv("INTI_TRACEBACK", raising=False)
    assert main(["cost"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "KeyError: 'surprise' (unexpected; set INTI_TRACEBACK=1" in err[0]
