"""`inti.io.state_dict_files.read_state_dict` (and `inti.io.torchscript`) never runs code from a file, and a damaged file gets
the project's own message.

TorchScript archives (OpenAI's CLIP downloads) are read without TorchScript: a crafted
``data.pkl`` or a module's scripted ``__setstate__`` must not run, and ``torch.jit.load`` is
never called. Plain pickles that hold anything but tensors are refused with inti's message,
not torch's advice to retry with ``weights_only=False``. Truncated, flipped, empty files and
paths that are not regular files are FileNotFoundError or ValueError naming the file, never a
raw exception of zipfile, torch, safetensors or NumPy. Every archive here is made by the test.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from inti.io.errors import WeightsError
from inti.io.state_dict_files import read_state_dict
from inti.io.torchscript import read_torchscript

OUR_MESSAGE = r"(could not read weights file|refusing to load|is not a regular file|no weights file)"


# ---------------------------------------------------------------------------------------------
# archives made here


class Block(nn.Module):  # OpenAI CLIP's ResidualAttentionBlock, in small
    def __init__(self, width: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Visual(nn.Module):  # OpenAI CLIP's VisionTransformer layout: conv1, class_embedding, ..., proj
    def __init__(self, width: int = 8, patch: int = 4, image: int = 8, depth: int = 2, out: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn((image // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x).transpose(0, 1)).transpose(0, 1)
        return self.ln_post(x[:, 0]) @ self.proj


class Whole(nn.Module):  # a whole CLIP: visual. prefix, logit_scale, a buffer
    def __init__(self):
        super().__init__()
        self.visual = Visual()
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.register_buffer("steps", torch.arange(3))

    def forward(self, x):
        return self.visual(x) * self.logit_scale.exp()


class Scripted(nn.Module):
    """What torch.jit.script keeps that tracing does not: a plain tensor attribute (not in the
    state dict), a non-persistent buffer (in a TorchScript state dict), None entries, ints."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 3, bias=False)
        self.register_buffer("hidden", torch.ones(2), persistent=False)
        self.register_buffer("absent", None)
        self.plain = torch.zeros(4)
        self.count = 3
        self.norms = nn.ModuleList([nn.LayerNorm(3), nn.LayerNorm(3)])
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(1))])
        self.transposed = nn.Parameter(torch.randn(3, 2).t())  # a non-contiguous tensor

    def forward(self, x):
        y = self.linear(x) + self.plain.sum() + self.hidden.sum() + self.count
        for norm in self.norms:
            y = norm(y)
        return y * self.scales[0] + self.transposed.sum()


class SetsItsOwnState(nn.Module):
    """A module whose state is a tuple unpacked by its own scripted __setstate__: torch.jit.load
    runs that code (it prints), inti must refuse the file without running it."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return self.weight, self.training

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        print("SETSTATE RAN: code from the file")
        self.weight = state[0]
        self.training = state[1]

    def forward(self, x):
        return x * self.weight


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return module.eval()


def save_traced(module: nn.Module, path, example) -> None:
    with warnings.catch_warnings():  # TorchScript is deprecated, and tracing MultiheadAttention warns
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, example), path)


def save_scripted(module: nn.Module, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), path)


def jit_state_dict(path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(path).state_dict()


@pytest.fixture
def archive(tmp_path):
    """A genuine OpenAI-layout TorchScript archive (float32) and its module."""
    whole = seeded(Whole())
    path = tmp_path / "ViT-tiny.pt"
    save_traced(whole, path, torch.zeros(1, 3, 8, 8))
    return path, whole


def no_torchscript(monkeypatch) -> None:
    """From here on, any use of TorchScript's loader fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript's loader was called: it runs code from the file")
    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module_from_buffer", refuse)


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def rewrite(src, dst, replace: dict[str, bytes | None]) -> None:
    """A copy of the zip src, with the members whose names end with a key of replace replaced
    (None: left out); their CRCs are right, so only the content is what the test makes it."""
    with zipfile.ZipFile(dst, "w") as out:
        for name, data in members(src).items():
            hit = [k for k in replace if name.endswith(k)]
            if hit and replace[hit[0]] is None:
                continue
            out.writestr(name, replace[hit[0]] if hit else data)


def assert_same(loaded: dict, expected: dict, ordered: bool = True) -> None:
    assert (list(loaded) if ordered else sorted(loaded)) == (list(expected) if ordered else sorted(expected))
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and loaded[key].device.type == "cpu", key
        assert torch.equal(loaded[key], value), key


def assert_ours(excinfo, path) -> None:
    """The error is FileNotFoundError or ValueError raised by inti, naming the file."""
    assert excinfo.type is FileNotFoundError or issubclass(excinfo.type, WeightsError), (
        f"a raw {excinfo.type.__name__}: {excinfo.value}")
    assert str(path) in str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# genuine archives load, without TorchScript


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["float32", "float16"])
def test_openai_layout_archive(tmp_path, dtype, monkeypatch):
    whole = seeded(Whole()).to(dtype)
    path = tmp_path / "ViT-B-16.pt"
    save_traced(whole, path, torch.zeros(1, 3, 8, 8, dtype=dtype))
    expected = whole.state_dict()
    reference = jit_state_dict(path)
    assert_same(reference, expected)  # the archive is what the test thinks it is
    no_torchscript(monkeypatch)
    loaded = read_state_dict(path)
    assert_same(loaded, expected)
    assert loaded["visual.conv1.weight"].dtype == dtype and loaded["steps"].dtype == torch.int64
    assert "visual.transformer.1.attn.in_proj_weight" in loaded and "visual.transformer.0.mlp.2.bias" in loaded


def test_scripted_archive_matches_torchscripts_state_dict(tmp_path, monkeypatch):
    """Which attributes are parameters and buffers comes from code/'s declarations: the plain
    tensor is left out, the non-persistent buffer kept, as torch.jit.load(...).state_dict()."""
    path = tmp_path / "scripted.pth"
    save_scripted(seeded(Scripted()), path)
    reference = jit_state_dict(path)
    assert "hidden" in reference and "plain" not in reference and "scales.0" in reference
    no_torchscript(monkeypatch)
    loaded = read_torchscript(path)
    assert_same(loaded, reference)
    assert loaded["transposed"].stride() == reference["transposed"].stride()
    assert_same(read_state_dict(path), reference)


def test_torch_jit_load_is_never_called(archive, monkeypatch):
    path, whole = archive
    no_torchscript(monkeypatch)
    assert_same(read_state_dict(path), whole.state_dict())


def test_a_modules_own_setstate_never_runs(tmp_path, capfd):
    path = tmp_path / "setstate.pt"
    save_scripted(SetsItsOwnState(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(path)  # what the old loader did: the file's code runs
    assert "SETSTATE RAN" in capfd.readouterr().out
    with pytest.raises(ValueError, match=r"refusing to load .*__setstate__.*inti never runs code from a file") as excinfo:
        read_state_dict(path)
    assert_ours(excinfo, path)
    assert "SETSTATE RAN" not in capfd.readouterr().out


def test_big_endian_archive(tmp_path, monkeypatch):
    """An archive written on a big-endian machine (its byteorder record says so) is swapped back."""
    visual = seeded(Visual())  # float32 throughout: every record swaps in 4-byte words
    little = tmp_path / "little.pt"
    save_traced(visual, little, torch.zeros(1, 3, 8, 8))
    swapped = {name: np.frombuffer(data, dtype="<f4").astype(">f4").tobytes()
               for name, data in members(little).items() if "/data/" in name}
    big = tmp_path / "big.pt"
    rewrite(little, big, swapped | {"/byteorder": b"big"})
    no_torchscript(monkeypatch)
    assert_same(read_state_dict(big), visual.state_dict())


# ---------------------------------------------------------------------------------------------
# crafted pickles are refused, and nothing in them runs


class Opens:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class Touches:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


ATTACKS = {"builtins.open": Opens, "os.system": Touches}
REFUSED_NAME = {"builtins.open": r"(builtins|io)\.open", "os.system": r"(posix|nt|os)\.system"}


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_crafted_torchscript_pickle_is_refused(archive, tmp_path, attack, nested, monkeypatch):
    genuine, _ = archive
    marker = tmp_path / "marker"
    payload = ATTACKS[attack](marker)
    crafted = tmp_path / "crafted.pt"
    rewrite(genuine, crafted, {"/data.pkl": pickle.dumps({"weight": [payload]} if nested else payload, protocol=2)})
    no_torchscript(monkeypatch)
    with pytest.raises(ValueError, match=rf"refusing to load .*its pickle asks for {REFUSED_NAME[attack]}, which is neither "
                                         r"a tensor.*inti never runs code from a file") as excinfo:
        read_state_dict(crafted)
    assert_ours(excinfo, crafted)
    assert not marker.exists()


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("legacy", [False, True], ids=["torch.save", "pickle.dump"])
def test_crafted_plain_pickle_is_refused(tmp_path, attack, legacy):
    marker = tmp_path / "marker"
    path = tmp_path / ("legacy.pth" if legacy else "crafted.pt")
    obj = {"state_dict": {"weight": torch.ones(2), "evil": ATTACKS[attack](marker)}}
    if legacy:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    else:
        torch.save(obj, path)
    with pytest.raises(ValueError, match=r"refusing to load .*holds objects other than tensors.*never runs code from a file"
                                         r".*\.safetensors") as excinfo:
        read_state_dict(path)
    assert_ours(excinfo, path)
    assert "Re-running `torch.load`" not in str(excinfo.value)  # torch's advice, wrong for a hostile file
    assert not marker.exists()


# Hand-written pickles that use only names the reader allows, but not as a tensor does.
MISUSES = {
    "BUILD on an allowed global": b"\x80\x02ccollections\nOrderedDict\n}U\x01aK\x01sb.",
    "NEWOBJ on an allowed global": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)\x81.",
    "storage without a storage type": b"\x80\x02(U\x07storageK\x01U\x010U\x03cpuK\x01tQ.",
    "unknown persistent id": b"\x80\x02U\x04evilQ.",
    "a storage record that is missing": b"\x80\x02(U\x07storagectorch\nFloatStorage\nU\x03999U\x03cpuK\x01tQ.",
    "a truncated pickle": b"\x80\x02}(U\x01a",
    "not a module": b"\x80\x02K\x05.",
    "a global from torch": b"\x80\x02ctorch\nload\n.",
}


@pytest.mark.parametrize("what", list(MISUSES))
def test_misused_pickles_are_refused(archive, tmp_path, what, monkeypatch):
    genuine, _ = archive
    crafted = tmp_path / "misuse.pt"
    rewrite(genuine, crafted, {"/data.pkl": MISUSES[what]})
    no_torchscript(monkeypatch)
    with pytest.raises(ValueError, match=OUR_MESSAGE) as excinfo:
        read_state_dict(crafted)
    assert_ours(excinfo, crafted)


def test_placeholders_are_inert(archive, tmp_path, monkeypatch):
    """A __torch__ class that names a real module's method (its __reduce__ args, a BUILD of a
    tensor) is a placeholder: its name is never imported, nothing on it is called."""
    genuine, _ = archive
    crafted = tmp_path / "placeholder.pt"
    # __torch__.os.system(...) via REDUCE: a placeholder, not os.system; its state is not a dict
    marker = tmp_path / "marker"
    data = b"\x80\x02c__torch__.os\nsystem\nU" + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode() + b"\x85R."
    rewrite(genuine, crafted, {"/data.pkl": data})
    no_torchscript(monkeypatch)
    with pytest.raises(ValueError, match=r"refusing to load .*__torch__\.os\.system .*has no state") as excinfo:
        read_state_dict(crafted)
    assert_ours(excinfo, crafted)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# damaged files and paths that are not files: our message, never a raw library exception


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_archive(archive, tmp_path, fraction, monkeypatch):
    genuine, _ = archive
    raw = genuine.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    no_torchscript(monkeypatch)
    with pytest.raises((FileNotFoundError, ValueError), match=OUR_MESSAGE) as excinfo:
        read_state_dict(cut)
    assert_ours(excinfo, cut)


def test_archive_with_a_short_or_missing_record(archive, tmp_path, monkeypatch):
    """A zip whose directory parses, but a storage record is too short or gone."""
    genuine, _ = archive
    damaged = tmp_path / "short.pt"
    rewrite(genuine, damaged, {"/data/3": b"\0" * 7})  # a storage record shorter than its tensor
    missing = tmp_path / "missing.pt"
    rewrite(genuine, missing, {"/data/2": None})
    no_torchscript(monkeypatch)
    for path in (damaged, missing):
        with pytest.raises(ValueError, match=r"could not read weights file .*corrupt or truncated") as excinfo:
            read_state_dict(path)
        assert_ours(excinfo, path)


def test_flipped_byte_in_data_pkl(archive, tmp_path, monkeypatch):
    genuine, _ = archive
    raw = bytearray(genuine.read_bytes())
    with zipfile.ZipFile(genuine) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data.pkl"))
    assert info.compress_type == zipfile.ZIP_STORED
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # past the local header (torch pads its extra field)
    assert raw[start: start + 2] == b"\x80\x02"  # data.pkl's first bytes: PROTO 2
    for offset in (0, info.file_size // 2, info.file_size - 1):
        flipped = bytearray(raw)
        flipped[start + offset] ^= 0xFF
        path = tmp_path / f"flipped{offset}.pt"
        path.write_bytes(bytes(flipped))
        no_torchscript(monkeypatch)
        with pytest.raises(ValueError, match=r"could not read weights file .*corrupt or truncated") as excinfo:
            read_state_dict(path)
        assert_ours(excinfo, path)


@pytest.mark.parametrize("name", ["empty.pt", "empty.pth", "empty.bin", "empty.safetensors", "empty.npz"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"could not read weights file .*corrupt or truncated") as excinfo:
        read_state_dict(path)
    assert_ours(excinfo, path)


def test_damaged_plain_files(tmp_path):
    from safetensors.torch import save_file

    sd = {"weight": torch.arange(64, dtype=torch.float32), "bias": torch.ones(3)}
    torch.save(sd, tmp_path / "good.pt")
    save_file(sd, tmp_path / "good.safetensors")
    np.savez(tmp_path / "good.npz", **{k: v.numpy() for k, v in sd.items()})
    for name in ("good.pt", "good.safetensors", "good.npz"):
        assert_same(read_state_dict(tmp_path / name), sd, ordered=False)  # safetensors sorts its keys
        raw = (tmp_path / name).read_bytes()
        for cut in (8, len(raw) // 2, len(raw) - 3):
            path = tmp_path / f"cut{cut}-{name}"
            path.write_bytes(raw[:cut])
            with pytest.raises(ValueError, match=r"could not read weights file") as excinfo:
                read_state_dict(path)
            assert_ours(excinfo, path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint at all" * 4)
    with pytest.raises(ValueError, match=OUR_MESSAGE) as excinfo:
        read_state_dict(junk)
    assert_ours(excinfo, junk)


def test_npz_with_bad_members(tmp_path):
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("weight.npy", b"not an array")
    with pytest.raises(ValueError, match=r"could not read weights file .*'weight' is not a \.npy array") as excinfo:
        read_state_dict(bad)
    assert_ours(excinfo, bad)
    objects = tmp_path / "objects.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(objects, "w") as z:
        z.writestr("weight.npy", buffer.getvalue())
    with pytest.raises(ValueError, match=r"refusing to load .*holds pickled objects") as excinfo:
        read_state_dict(objects)
    assert_ours(excinfo, objects)
    strings = tmp_path / "strings.npz"
    np.savez(strings, names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"'names' holds <U1 values") as excinfo:
        read_state_dict(strings)
    assert_ours(excinfo, strings)


def test_paths_that_are_not_regular_files(tmp_path):
    directory = tmp_path / "weights.pt"
    directory.mkdir()
    null_link = tmp_path / "null.pth"
    null_link.symlink_to(os.devnull)
    paths = [directory, null_link, os.devnull]
    if hasattr(os, "mkfifo"):  # opening a FIFO would block: it must not be opened at all
        fifo = tmp_path / "fifo.pt"
        os.mkfifo(fifo)
        paths.append(fifo)
    for path in paths:
        with pytest.raises(ValueError, match=r"is not a regular file") as excinfo:
            read_state_dict(path)
        assert_ours(excinfo, path)
    with pytest.raises(FileNotFoundError, match="no weights file") as excinfo:
        read_state_dict(tmp_path / "missing.pt")
    assert_ours(excinfo, tmp_path / "missing.pt")
    dangling = tmp_path / "dangling.pt"
    dangling.symlink_to(tmp_path / "nowhere.pt")
    with pytest.raises(FileNotFoundError):
        read_state_dict(dangling)
