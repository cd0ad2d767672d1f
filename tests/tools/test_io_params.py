"""Parameter files (ref.io): exact round trips in both formats, and a clear error for every bad file.

NumPy only; nothing here imports torch.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import ref
from inti.io import params as pio

CONFIGS = {
    "nano": ref.preset("nano"),
    # every optional field away from its default, so the JSON round trip is exercised fully
    "odd": ref.preset(
        "nano", schedule=(2,), embed_dim=None, num_classes=0, activation="gelu", ln_eps=1e-6, ln_pre=False,
        patch_bias=True, branches=("local", "clip"), weight_granularity="channel", mlp_ratio=2.5,
    ),
    "mean": ref.preset("nano", weight_fn="mean"),
}


def _assert_same(params, loaded):
    assert list(loaded) == list(params) or sorted(loaded) == sorted(params)
    for k, v in params.items():
        assert loaded[k].dtype == v.dtype, k
        assert loaded[k].shape == v.shape, k
        np.testing.assert_array_equal(loaded[k], v, err_msg=k)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, suffix, name, dtype):
    cfg = CONFIGS[name]
    params = ref.init_params(cfg, seed=3, dtype=dtype)
    path = tmp_path / f"p{suffix}"
    pio.save_params(path, params, cfg)
    loaded, cfg2 = pio.load_params(path)
    assert cfg2 == cfg
    _assert_same(params, loaded)
    assert not list(tmp_path.glob("*.tmp")), "the temporary file was left behind"


def test_round_trip_str_path_and_overwrite(tmp_path):
    cfg = ref.preset("nano")
    path = str(tmp_path / "p.npz")
    pio.save_params(path, ref.init_params(cfg, seed=0), cfg)
    second = ref.init_params(cfg, seed=1)
    pio.save_params(path, second, cfg)  # replaces the first file
    _assert_same(second, pio.load_params(path)[0])


@pytest.mark.parametrize("cfg", list(ref.PRESETS.values()) + list(CONFIGS.values()))
def test_config_json_round_trip(cfg):
    text = pio.config_to_json(cfg)
    doc = json.loads(text)
    assert doc["format"] == pio.FORMAT and doc["version"] == pio.VERSION
    assert pio.config_from_json(text) == cfg


def test_save_refuses_bad_input(tmp_path):
    cfg = ref.preset("nano")
    params = ref.init_params(cfg)
    with pytest.raises(ValueError, match=r"must end in \.npz or \.safetensors"):
        pio.save_params(tmp_path / "p.pt", params, cfg)
    broken = dict(params)
    del broken["ln_post.bias"]
    with pytest.raises(ValueError, match="missing 1 key.*ln_post.bias"):
        pio.save_params(tmp_path / "p.npz", broken, cfg)
    assert not (tmp_path / "p.npz").exists()


# ---------------------------------------------------------------------------------------------
# errors on loading


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such parameter file: .*nothing.npz"):
        pio.load_params(tmp_path / "nothing.npz")


def test_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        pio.load_params(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        pio.load_params(tmp_path / "e.npz")


def test_not_a_params_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a parameter file\n")
    with pytest.raises(ValueError, match="not an inti parameter file"):
        pio.load_params(text)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ValueError, match=r"corrupt or not a \.npz file"):
        pio.load_params(garbage)


def test_plain_npz_without_config(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, **ref.init_params(ref.preset("nano")))
    with pytest.raises(ValueError, match="not an inti parameter file: it has no stored config"):
        pio.load_params(path)


def test_plain_safetensors_without_config(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "plain.safetensors"
    st.save_file(ref.init_params(ref.preset("nano")), str(path))
    with pytest.raises(ValueError, match="not an inti parameter file: it has no stored config"):
        pio.load_params(path)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_truncated_file(tmp_path, suffix):
    cfg = ref.preset("nano")
    path = tmp_path / f"p{suffix}"
    pio.save_params(path, ref.init_params(cfg), cfg)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        pio.load_params(path)


def test_corrupt_npz_member(tmp_path):
    """A zip whose member is not an array: corrupt, said as such, never a pickle load."""
    import zipfile

    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__inti__.npy", b"not an npy payload")
    with pytest.raises(ValueError, match="corrupt"):
        pio.load_params(path)


def _write_npz(path, params, meta):
    with open(path, "wb") as f:
        np.savez(f, **params, __inti__=np.array(meta))


def test_mismatched_params_name_the_keys(tmp_path):
    cfg = ref.preset("nano")
    params = ref.init_params(cfg)
    params["blocks.1.attn.qkv.weight"] = np.zeros((3, 3))
    del params["head.bias"]
    params["extra.weight"] = np.zeros(2)
    path = tmp_path / "bad.npz"
    _write_npz(path, params, pio.config_to_json(cfg))
    with pytest.raises(ValueError) as info:
        pio.load_params(path)
    msg = str(info.value)
    assert "bad.npz" in msg
    assert "head.bias" in msg and "extra.weight" in msg
    assert "blocks.1.attn.qkv.weight: expected (192, 64), got (3, 3)" in msg


def test_params_of_another_config(tmp_path):
    """Parameters saved for one schedule, config claiming another: the merge keys are named."""
    params = ref.init_params(ref.preset("nano"))  # two merges
    path = tmp_path / "other.npz"
    _write_npz(path, params, pio.config_to_json(ref.preset("nano", schedule=(1,))))
    with pytest.raises(ValueError, match="unexpected .*merges.1"):
        pio.load_params(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(version=99), "format version 99 is not supported"),
        (lambda d: d.update(format="something-else"), "not an inti parameter file"),
        (lambda d: d["config"].update(colour="red"), "unknown field.*colour"),
        (lambda d: d["config"].update(heads=5), "stored config is invalid: heads must divide width"),
        (lambda d: d.update(config=[1, 2]), "must be a JSON object"),
    ],
)
def test_bad_stored_config(tmp_path, change, message):
    cfg = ref.preset("nano")
    doc = json.loads(pio.config_to_json(cfg))
    change(doc)
    path = tmp_path / "c.npz"
    _write_npz(path, ref.init_params(cfg), json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        pio.load_params(path)


def test_config_not_json(tmp_path):
    cfg = ref.preset("nano")
    path = tmp_path / "c.npz"
    _write_npz(path, ref.init_params(cfg), "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        pio.load_params(path)


def test_safetensors_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    cfg = ref.preset("nano")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"needs safetensors: pip install 'inti\[interop\]'"):
        pio.save_params(tmp_path / "p.safetensors", ref.init_params(cfg), cfg)
    # .npz needs nothing but NumPy
    pio.save_params(tmp_path / "p.npz", ref.init_params(cfg), cfg)
    assert pio.load_params(tmp_path / "p.npz")[1] == cfg
