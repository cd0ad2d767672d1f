"""The fuzzing suite: malformed input to every public entry point (helpers: tests/support/fuzzing.py).

Each case must get the project's own clear error or a correct answer; never a raw library
exception, a non-finite output, a hang (a timeout per case), or a changed file that the user
did not ask to write. Bounded for CI (the "fuzz" hypothesis profile, tests/conftest.py);
`pytest --fuzz-long tests/hostile/test_fuzz.py` runs many more cases and every truncation offset.

Input classes: videos as arrays (ref and torch), configs (keyword fields and stored JSON),
parameter dicts, parameter files (truncated at every offset, bytes flipped, headers lying about
shapes), other libraries' weights files (the same, in three formats), every kind of weights file
through the front door (`inti.io.weights.load`), video files (truncated, flipped, text,
zero-length, audio only), and `inti` command lines.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ref
import torch_impl
from fuzzing import outcome, snapshot
from inti.io.clips import bundled_clip, load_clip
from inti.io.params import config_from_json, config_to_json, load_params, save_params
from inti.io.state_dict_files import read_state_dict

LONG = os.environ.get("INTI_FUZZ_LONG") == "1"
FUZZ = settings.get_profile("fuzz")
TINY = ref.ModelConfig(image_size=8, patch_size=4, width=8, depth=2, heads=2, mlp_ratio=2.0, embed_dim=None,
                       num_classes=3, schedule=(1,), reduction=2)
TINY_PARAMS = ref.init_params(TINY, seed=0)


def finite(x) -> None:
    assert np.isfinite(torch_impl.to_numpy(x)).all(), "a non-finite output came back without an error"


def offsets(size: int, every: int) -> list[int]:
    """Truncation points: every offset in --fuzz-long, else every `every`-th and the edges."""
    step = 1 if LONG else every
    return sorted(set(range(0, size, step)) | {1, 2, 7, 8, 9, size - 1})


# ---- videos as arrays ---------------------------------------------------------------------------

DTYPES = ["float64", "float32", "float16", "int64", "uint8", "bool", "complex128", "object"]
SPECIALS = [np.nan, np.inf, -np.inf, 1e300, -1e5, 1e4, 0.0]


@st.composite
def videos(draw):
    if draw(st.booleans()):  # near the right shape: one axis changed
        shape = [1, 2, 3, 8, 8]
        axis = draw(st.integers(0, 4))
        shape[axis] = draw(st.integers(0, 9))
    else:
        shape = draw(st.lists(st.integers(0, 9), min_size=0, max_size=6))
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal(size)
    for _ in range(draw(st.integers(0, 2)) if size else 0):
        values[draw(st.integers(0, size - 1))] = draw(st.sampled_from(SPECIALS))
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype).reshape(shape) if dtype != "object" else values.astype(object).reshape(shape)


@settings(FUZZ)
@given(videos())
def test_fuzz_video_arrays(video):
    in_ref = outcome("video array (ref)", lambda: ref.forward(TINY_PARAMS, video, TINY), finite)
    if video.dtype == object:
        return  # not a tensor; torch's own entry point takes tensors only
    model = torch_impl.from_ref_params(TINY_PARAMS, TINY)
    tensor = torch.from_numpy(np.array(video))
    in_torch = outcome("video tensor (torch)", lambda: model(tensor), finite)
    if video.dtype == np.float64 and isinstance(in_ref, Exception):
        assert isinstance(in_torch, Exception) and str(in_torch) == str(in_ref), (in_ref, in_torch)


# ---- configs -------------------------------------------------------------------------------------

VALUES = st.one_of(
    st.integers(-3, 300), st.sampled_from([0.0, 0.5, 1e-6, 1e300, float("nan"), float("inf"), -1.0]),
    st.sampled_from(["", "token", "softmax", "gelu", "64"]), st.none(), st.booleans(),
    st.lists(st.integers(-1, 5), max_size=3), st.tuples(st.sampled_from(["token", "local", "frame", "clip", "x"])),
)
FIELDS = [f for f in ref.ModelConfig.__dataclass_fields__]


def config_works(cfg: ref.ModelConfig) -> None:
    """A config that builds is one the whole spec can run: cost, shapes, and (when small) a forward."""
    macs = ref.count_macs(cfg, cfg.min_frames)
    assert all(v >= 0 for k, v in macs.items() if k != "per_block")
    assert config_from_json(config_to_json(cfg)) == cfg
    if cfg.width * cfg.grid**2 * cfg.depth <= 64 * 64 * 4 and cfg.mlp_width <= 512:
        video = np.random.default_rng(0).standard_normal((1, cfg.min_frames, 3, cfg.image_size, cfg.image_size))
        finite(ref.forward(ref.init_params(cfg), video, cfg))


@settings(FUZZ)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4))
def test_fuzz_config_fields(changes):
    base = TINY.replace(schedule=())
    outcome("config fields", lambda: base.replace(**changes), config_works)


@settings(FUZZ)
@given(st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["format", "version", "config", "x"]),
                    st.one_of(st.integers(), st.text(max_size=8), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3)),
                    max_size=4).map(json.dumps),
))
def test_fuzz_stored_config_json(text):
    outcome("config JSON", lambda: config_from_json(text), config_works)


# ---- parameter dicts ---------------------------------------------------------------------------

MUTATIONS = ["drop", "add", "reshape", "int", "bool", "complex", "float16", "nan", "inf", "list", "none", "huge"]


def mutate(params: dict, key: str, how: str) -> dict:
    out = dict(params)
    a = np.asarray(out[key])
    out.update({
        "drop": lambda: {},
        "add": lambda: {key + "_extra": a},
        "reshape": lambda: {key: a.reshape(-1)[:-1] if a.size > 1 else np.zeros((2, 2))},
        "int": lambda: {key: a.astype(np.int32)},
        "bool": lambda: {key: a > 0},
        "complex": lambda: {key: a + 0j},
        "float16": lambda: {key: a.astype(np.float16)},
        "nan": lambda: {key: a * np.nan},
        "inf": lambda: {key: a + np.inf},
        "list": lambda: {key: a.tolist()},
        "none": lambda: {key: None},
        "huge": lambda: {key: np.sign(a) * 1e307},
    }[how]())
    if how == "drop":
        del out[key]
    return out


@settings(FUZZ)
@given(st.sampled_from(sorted(TINY_PARAMS)), st.sampled_from(MUTATIONS))
def test_fuzz_parameter_dicts(key, how):
    params = mutate(TINY_PARAMS, key, how)
    video = np.random.default_rng(0).standard_normal((1, 2, 3, 8, 8))
    outcome("parameter dict (ref)", lambda: ref.forward(params, video, TINY), finite)
    outcome("parameter dict (torch)", lambda: torch_impl.from_ref_params(params, TINY)(torch.from_numpy(video)), finite)


# ---- parameter files ---------------------------------------------------------------------------

class Files(dict):
    """{name: bytes}, shown by name and size (hypothesis prints the fixtures of a failing case)."""

    def __repr__(self):
        return "Files(" + ", ".join(f"{k}: {len(v)} bytes" for k, v in self.items()) + ")"


@pytest.fixture(scope="module")
def param_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("params")
    files = Files()
    for suffix in (".npz", ".safetensors"):
        save_params(d / f"tiny{suffix}", TINY_PARAMS, TINY)
        files[suffix] = (d / f"tiny{suffix}").read_bytes()
    return files


def loads_back(result) -> None:
    """Only the whole file loads, and it loads exactly what was saved."""
    params, cfg = result
    assert cfg == TINY and params.keys() == TINY_PARAMS.keys()
    assert all(np.array_equal(params[k], v) for k, v in TINY_PARAMS.items())


def loads_valid(result) -> None:
    """A flipped byte in the tensor data of a safetensors file (which has no checksum) is a
    different valid file: what loads is a valid config and finite parameters that fit it."""
    params, cfg = result
    assert isinstance(cfg, ref.ModelConfig)
    ref.check_params(params, cfg)


def _load_bytes(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(tmp_path)
    try:
        return load_params(path)
    finally:
        assert snapshot(tmp_path) == before, "loading changed a file"


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_fuzz_parameter_files_truncated_at_every_offset(param_files, tmp_path, suffix):
    data = param_files[suffix]
    for cut in offsets(len(data), every=7):
        outcome(f"parameter file {suffix}, truncated", lambda: _load_bytes(tmp_path, f"t{suffix}", data[:cut]), loads_back)


@settings(FUZZ)
@given(st.sampled_from([".npz", ".safetensors"]), st.data())
def test_fuzz_parameter_files_with_flipped_bytes(param_files, tmp_path_factory, suffix, data):
    raw = bytearray(param_files[suffix])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    tmp = tmp_path_factory.mktemp("flip")
    outcome(f"parameter file {suffix}, bytes flipped", lambda: _load_bytes(tmp, f"f{suffix}", bytes(raw)), loads_valid)


def lying_npz(base: bytes, shape) -> bytes:
    """The file with one member's .npy header replaced by one that declares `shape`."""
    src = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "pos_embed.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
                payload = header.getvalue() + payload[128:]
            dst.writestr(info.filename, payload)
    return out.getvalue()


def lying_safetensors(base: bytes, change) -> bytes:
    (n,) = struct.unpack("<Q", base[:8])
    header = json.loads(base[8:8 + n])
    change(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + base[8 + n:]


@pytest.mark.parametrize("case", ["npz huge shape", "npz wrong shape", "st huge shape", "st offsets past the end",
                                  "st header length", "st no config"])
def test_fuzz_parameter_files_lying_headers(param_files, tmp_path, case):
    npz, st_ = param_files[".npz"], param_files[".safetensors"]
    data, suffix = {
        "npz huge shape": (lambda: (lying_npz(npz, (10**11,)), ".npz")),
        "npz wrong shape": (lambda: (lying_npz(npz, (2, 3)), ".npz")),
        "st huge shape": (lambda: (lying_safetensors(st_, lambda h: h["pos_embed"].update(shape=[10**6, 10**6])), ".safetensors")),
        "st offsets past the end": (lambda: (lying_safetensors(st_, lambda h: h["pos_embed"].update(data_offsets=[0, 10**12])), ".safetensors")),
        "st header length": (lambda: (struct.pack("<Q", 2**62) + st_[8:], ".safetensors")),
        "st no config": (lambda: (lying_safetensors(st_, lambda h: h.pop("__metadata__")), ".safetensors")),
    }[case]()
    err = outcome("parameter file, lying header", lambda: _load_bytes(tmp_path, f"lie{suffix}", data), loads_back)
    assert isinstance(err, ValueError), err


# ---- other libraries' weights files ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpt")
    state = {k: torch.from_numpy(v).float() for k, v in TINY_PARAMS.items()}
    save_file(state, d / "c.safetensors")
    torch.save({"state_dict": state}, d / "c.pt")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 4)), d / "script.pt")
    return Files({name: (d / name).read_bytes() for name in ("c.safetensors", "c.pt", "script.pt")})


def is_state_dict(result) -> None:
    assert isinstance(result, dict) and result and all(isinstance(v, torch.Tensor) for v in result.values())


@pytest.mark.parametrize("saved", [{"rtate_dict": {"w": torch.ones(2)}}, {"w": torch.ones(2), "epoch": 3}, {}],
                         ids=["a wrapper's key flipped", "a number beside the tensors", "empty"])
def test_a_torch_file_that_is_not_a_flat_state_dict_is_refused(tmp_path, saved):
    """What a flipped byte in a wrapper's key gives ('state_dict' -> 'rtate_dict'): a valid torch
    file that holds no flat state dict. read_state_dict promises one, so it refuses the file."""
    path = tmp_path / "w.pt"
    torch.save(saved, path)
    with pytest.raises(ValueError, match="is not a flat state dict of tensors"):
        read_state_dict(path)


@pytest.mark.parametrize("name", ["c.safetensors", "c.pt", "script.pt"])
def test_fuzz_weights_files_truncated(weights_files, tmp_path, name):
    data = weights_files[name]
    for cut in offsets(len(data), every=max(len(data) // 60, 1)):
        path = tmp_path / name
        path.write_bytes(data[:cut])
        outcome(f"state dict file {name.split('.')[-1]}, truncated", lambda: read_state_dict(path), is_state_dict)


@settings(FUZZ)
@given(st.sampled_from(["c.safetensors", "c.pt", "script.pt"]), st.data())
def test_fuzz_weights_files_with_flipped_bytes(weights_files, tmp_path_factory, name, data):
    raw = bytearray(weights_files[name])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("flip") / name
    path.write_bytes(bytes(raw))
    outcome(f"state dict file {name.split('.')[-1]}, bytes flipped", lambda: read_state_dict(path), is_state_dict)



# ---- the front door: every kind of weights file through inti.io.weights.load ----------------------

FRONT_DOOR = ("params.npz", "params.safetensors", "training.safetensors", "timm.safetensors", "timm.pt")


@pytest.fixture(scope="module")
def front_door_files(tmp_path_factory):
    from safetensors.torch import save_file

    from inti.io import train_checkpoint
    from inti.io.layouts import to_layout

    d = tmp_path_factory.mktemp("front")
    save_params(d / "params.npz", TINY_PARAMS, TINY)
    save_params(d / "params.safetensors", TINY_PARAMS, TINY)
    model = {f"{train_checkpoint.MODEL}{k}": torch.from_numpy(v) for k, v in TINY_PARAMS.items()}
    train_checkpoint.write(d / "training.safetensors", model | {train_checkpoint.RNG: torch.get_rng_state()},
                           {"step": 3}, TINY)
    image = TINY.replace(schedule=())
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_layout(ref.backbone(TINY_PARAMS), image, "timm").items()}
    save_file(sd, d / "timm.safetensors")
    torch.save({"model": sd}, d / "timm.pt")
    return Files({name: (d / name).read_bytes() for name in FRONT_DOOR})


def loads_weights(result) -> None:
    """What the front door returns: parameters that fit their config, and the kind it read."""
    from inti.io.kinds import KINDS

    assert result.kind in KINDS and isinstance(result.cfg, ref.ModelConfig)
    ref.check_params(result.params, result.cfg)


def _front_door(tmp_path, name: str, data: bytes):
    from inti.io import weights

    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(tmp_path)
    try:
        return weights.load(path)
    finally:
        assert snapshot(tmp_path) == before, "loading changed a file"


@pytest.mark.parametrize("name", FRONT_DOOR)
def test_fuzz_the_front_door_truncated(front_door_files, tmp_path, name):
    data = front_door_files[name]
    for cut in offsets(len(data), every=max(len(data) // 40, 1)):
        outcome(f"weights.load {name}, truncated", lambda: _front_door(tmp_path, name, data[:cut]), loads_weights)


@settings(FUZZ)
@given(st.sampled_from(FRONT_DOOR), st.data())
def test_fuzz_the_front_door_with_flipped_bytes(front_door_files, tmp_path_factory, name, data):
    raw = bytearray(front_door_files[name])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    tmp = tmp_path_factory.mktemp("flip")
    outcome(f"weights.load {name}, bytes flipped", lambda: _front_door(tmp, name, bytes(raw)), loads_weights)

# ---- video files ------------------------------------------------------------------------------------

CLIP = "carphone_distorted.mp4"  # bundled, 7 kB: every truncation is cheap to try


def decoded(clip) -> None:
    assert clip.shape == (2, 3, 16, 16) and clip.dtype == np.float32
    finite(clip)


def _decode_bytes(tmp_path, data: bytes, name="v.mp4"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_clip(path, frames=2, size=16)


def test_fuzz_video_files_truncated(tmp_path):
    data = bundled_clip(CLIP).read_bytes()
    for cut in offsets(len(data), every=max(len(data) // 40, 1)):
        outcome("video file, truncated", lambda: _decode_bytes(tmp_path, data[:cut]), decoded, timeout=20)


def test_a_truncation_that_leaves_a_stream_without_a_codec_is_a_clear_error(tmp_path):
    """Cut inside its codec header, the bundled clip still lists a video stream, but one that
    FFmpeg cannot open a decoder for (PyAV gives no codec context): a clear error, not an
    AttributeError from PyAV."""
    data = bundled_clip(CLIP).read_bytes()
    with pytest.raises(ValueError, match="FFmpeg cannot open the video stream's codec"):
        _decode_bytes(tmp_path, data[:5100])


@settings(FUZZ)
@given(st.data())
def test_fuzz_video_files_with_flipped_bytes(tmp_path_factory, data):
    raw = bytearray(bundled_clip(CLIP).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    outcome("video file, bytes flipped", lambda: _decode_bytes(tmp_path_factory.mktemp("v"), bytes(raw)), decoded,
            timeout=20)


@pytest.mark.parametrize("kind", ["zero-length", "text", "random bytes", "audio only"])
def test_fuzz_video_files_that_are_not_videos(tmp_path, kind):
    if kind == "audio only":
        import av

        path = tmp_path / "audio.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("aac", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
        data = path.read_bytes()
    else:
        data = {"zero-length": b"", "text": b"this is not a video\n" * 20,
                "random bytes": np.random.default_rng(0).bytes(5000)}[kind]
    err = outcome("video file, not a video", lambda: _decode_bytes(tmp_path, data), decoded, timeout=20)
    assert isinstance(err, ValueError), err


# ---- command lines -----------------------------------------------------------------------------------

TOKENS = ["cost", "demo", "parity", "--preset", "nano", "vit_b16", "bogus", "--frames", "0", "4", "7", "-1", "x",
          "--schedule", "1", "9", "1,2", "none", "a,b", "--batch", "--paper", "--weights", "w.npz", "bad.npz",
          "missing.npz", "--random-scores", "--attn", "explicit", "flash", "--dtypes", "float32", "float8",
          "--tolerance", "float32=1e-3", "float32=x", "--out", "out", "--force", "--progress", "off", "on",
          "--seed", "carphone_distorted.mp4", "bad.mp4", "dir", "--", "", "--help",
          "predict", "--topk", "--views", "2x1", "0x3", "--json", "--explain", "--classes"]


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    save_params(d / "w.npz", ref.init_params(ref.preset("nano", schedule=(2,)), seed=1), ref.preset("nano", schedule=(2,)))
    (d / "bad.npz").write_text("not a parameter file")
    (d / "bad.mp4").write_text("not a video")
    (d / "dir").mkdir()
    return d


@settings(FUZZ, max_examples=FUZZ.max_examples // 2 or 1)
@given(st.lists(st.sampled_from(TOKENS), max_size=7))
def test_fuzz_command_lines(cli_dir, monkeypatch, capsys, argv):
    from inti.cli import main

    monkeypatch.chdir(cli_dir)
    monkeypatch.delenv("INTI_TRACEBACK", raising=False)
    before = snapshot(cli_dir)

    def answered(code) -> None:
        assert code in (0, 1, 2, 3), code  # 3: inti predict, some of its videos failed

    code = outcome("command line", lambda: main(argv), answered, timeout=120, refused=lambda c: c == 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code == 2 and err.strip() and "usage:" not in err:  # ours (argparse's own usage errors aside)
        assert len(err.strip().splitlines()) == 1 and err.startswith("inti "), err
    after = snapshot(cli_dir)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed = ("out/", "inti-demo/")
    assert all(k.startswith(allowed) for k in changed), f"{argv} changed files it was not asked to write: {changed}"
    for folder in ("out", "inti-demo"):  # the next example starts from the same files
        if (cli_dir / folder).is_dir():
            for p in (cli_dir / folder).iterdir():
                p.unlink()
            (cli_dir / folder).rmdir()


PREDICT_TOKENS = ["carphone_distorted.mp4", "bad.mp4", "dir", "missing.mp4", "--weights", "w.npz", "bad.npz",
                  "bad.mp4", "--topk", "0", "3", "99", "x", "--views", "2x1", "1x11", "--frames", "4", "7", "200",
                  "--json", "--explain", "out", "w.npz", "--force", "--classes", "bad.npz", "--"]


@settings(FUZZ, max_examples=FUZZ.max_examples // 3 or 1)
@given(st.lists(st.sampled_from(PREDICT_TOKENS), max_size=8))
def test_fuzz_predict_command_lines(cli_dir, monkeypatch, capsys, argv):
    """`inti predict`'s own flags and files: a correct answer, a clear error (2), or some
    videos failed (3), each failure one line; nothing written outside --explain's folder."""
    test_fuzz_command_lines.hypothesis.inner_test(cli_dir, monkeypatch, capsys, ["predict", *argv])


def test_a_lying_npz_header_allocates_nothing(param_files, tmp_path):
    """A 29 kB file that declares a 2 GB member: refused before np.load allocates for it
    (np.load allocates the declared shape first; without the check the peak is 2 GB)."""
    import tracemalloc

    path = tmp_path / "lie.npz"
    path.write_bytes(lying_npz(param_files[".npz"], (2**28,)))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"declares shape \(268435456,\) of float64 \(2,147,483,648 bytes\)"):
            load_params(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24, f"peak {peak / 2**20:.0f} MiB while refusing the file"
