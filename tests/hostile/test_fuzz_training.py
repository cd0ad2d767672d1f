"""The fuzzing suite, training path (helpers: tests/support/fuzzing.py): generated hostile list
files, lists to write, checkpoints with tampered training state, videos whose headers lie about
their frame size, and `inti data` flag values.

Each case must get the project's own clear error or a correct answer, checked from the input
(never from the code under test): a list read back holds exactly the lines written, by the
list-file rules; a resumed run resumes a state that satisfies the rules; a frame size over the
bound is never decoded. Bounded for CI (the "fuzz" hypothesis profile); `pytest --fuzz-long`
runs more cases.
"""

from __future__ import annotations

import json
import math
import posixpath
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import inti.io.bounds as bounds
import ref
import torch_impl
from fuzzing import outcome, snapshot
from inti.data.datasets import SyntheticVideos
from inti.data.lists import read_list, write_list
from inti.train import TrainConfig, fit
from inti.train import checkpoint as ckpt

UP = ".." + "/"  # a step up, spelled so that no path in the source leaves the repository
FUZZ = settings.get_profile("fuzz")
FEW = settings(FUZZ, max_examples=max(FUZZ.max_examples // 2, 1))

# ---- list files ------------------------------------------------------------------------------------

PATHS = ["a.mp4", "dir/b.mp4", UP + "up.mp4", "/abs.mp4", f"a/{UP}c.mp4", "./a.mp4", "a//a.mp4", f"x/{UP}{UP}y.mp4",
         "ü/é.mp4", "a\x00b.mp4", "C:\\v.mp4", "~/v.mp4", "-", "#c.mp4", "v" * 300 + ".mp4", "..", "."]
LABELS = ["0", "1", "2", "9", "-1", "1.5", "1e3", "٣", "+1", "00", "0x1", "1000000000000", "9" * 40, "NaN", "True",
          "-0", "65535", "65536"]
SEPARATORS = [" ", "\t", "   ", "\u3000", "\x0b"]
GOOD_PATHS, GOOD_LABELS = PATHS[:2] + [f"a/{UP}c.mp4", "ü/é.mp4"], ["0", "1", "2", "9"]


def usually(good, every):
    """Mostly valid pieces, so that answers are tried as often as errors."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(every))


@st.composite
def list_files(draw):
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["entry"] * 6 + ["blank", "one column", "three columns"]))
        path, label = draw(usually(GOOD_PATHS, PATHS)), draw(usually(GOOD_LABELS, LABELS))
        sep = draw(st.sampled_from(SEPARATORS))
        lines.append({"entry": path + sep + label, "blank": draw(st.sampled_from(["", "  ", "\t"])),
                      "one column": path, "three columns": path + sep + label + sep + label}[kind])
        if kind == "entry" and draw(st.booleans()) and lines:  # the same clip again, same or other label
            lines.append(path + " " + draw(st.sampled_from([label, "1", "2"])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    raw = text.encode("utf-8")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + raw


def read_as_the_rules_say(data: bytes, num_classes, outside: bool):
    """The rules of inti.data.lists, applied to the raw bytes: returns the checker of an answer."""
    text = data.decode("utf-8")
    text = text[1:] if text.startswith("\ufeff") else text
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    limit = num_classes if num_classes is not None else bounds.MAX_CLASSES

    def check(entries) -> None:
        assert [e.line for e in entries] == [i + 1 for i, line in enumerate(lines) if line.strip()]
        seen = {}
        for e in entries:
            path, label = lines[e.line - 1].split()
            assert (e.path, e.label) == (path, int(label)) and label.isascii() and label.isdigit() and 0 <= e.label < limit
            assert outside or not (path.startswith("/") or posixpath.normpath(path).split("/")[0] == "..")
            assert seen.setdefault(posixpath.normpath(path), e.label) == e.label  # one label a clip
    return check


@FEW
@given(list_files(), st.one_of(st.none(), st.integers(1, 12)), st.booleans())
def test_fuzz_list_files(tmp_path_factory, data, num_classes, outside):
    path = tmp_path_factory.mktemp("list") / "list.txt"
    path.write_bytes(data)
    outcome("list file", lambda: read_list(path, num_classes, allow_outside_root=outside),
            read_as_the_rules_say(data, num_classes, outside))


LABEL_VALUES = st.one_of(st.integers(-2, 12), st.sampled_from([2.7, 2.0, True, False, "3", None, np.int64(4), 10**12,
                                                               float("nan"), np.float32(1.0)]))


@FEW
@given(st.lists(st.tuples(usually(GOOD_PATHS, PATHS), st.one_of(st.integers(0, 3), LABEL_VALUES)), max_size=4),
       st.one_of(st.none(), st.integers(4, 12)))
def test_fuzz_lists_to_write(tmp_path_factory, entries, num_classes):
    path = tmp_path_factory.mktemp("write") / "list.txt"

    def reads_back(_) -> None:
        assert [(e.path, e.label) for e in read_list(path, num_classes)] == [(p, int(k)) for p, k in entries]

    outcome("list to write", lambda: write_list(path, entries, num_classes), reads_back)
    if not path.exists():
        assert list(path.parent.iterdir()) == []  # a refused list writes nothing


# ---- checkpoints with tampered training state -------------------------------------------------------

TINY = ref.ModelConfig(image_size=8, patch_size=4, width=8, depth=2, heads=2, mlp_ratio=2.0, embed_dim=None,
                       num_classes=3, schedule=(1,), reduction=2)
RECIPE = TrainConfig(steps=4, batch_size=2, accum=1, lr=1e-3, warmup_steps=1, eval_every=2, log_every=1)


def tiny_run(out, **kwargs):
    torch.manual_seed(0)
    train = SyntheticVideos("informative", 6, 2, 8, train=True, split_seed=1, classes=3)
    val = SyntheticVideos("informative", 2, 2, 8, train=False, split_seed=2, classes=3)
    return fit(torch_impl.InTIModel(TINY), train, val, RECIPE, out=out, say=lambda *a: None, **kwargs)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    """A complete run of 4 steps: resuming it reads and checks everything, and trains nothing."""
    out = tmp_path_factory.mktemp("run")
    tiny_run(out)
    return out


VALUES = st.one_of(st.integers(-3, 9), st.sampled_from([10**9, 2**64, -(2**63), 0.5, 1e300, math.nan, math.inf,
                                                        -math.inf, "", "x", "4", None, True, [], {}, [1, 2], {"a": 1}]))
TENSOR_CHANGES = ["nan", "inf", "negate", "int", "float16", "bool", "shape", "drop", "scalar", "empty", "zeros"]


def change_tensor(tensors: dict, key: str, how: str) -> None:
    v = tensors[key]
    if how == "drop":
        del tensors[key]
        return
    with np.errstate(all="ignore"):
        tensors[key] = {
            "nan": lambda: v.float() * math.nan, "inf": lambda: v.float() + math.inf, "negate": lambda: -v.float() - 1,
            "int": lambda: v.long(), "float16": lambda: v.half(), "bool": lambda: v > 0, "zeros": lambda: torch.zeros_like(v),
            "shape": lambda: torch.zeros(v.numel() + 1), "scalar": lambda: torch.tensor(7.0), "empty": lambda: torch.zeros(0),
        }[how]().contiguous()


def set_in(state, path: list, value) -> None:
    *parents, last = path
    for key in parents:
        state = state[key]
    state[last] = value


@st.composite
def tamperings(draw):
    """(where, change): a JSON path of the training state and a value, or a tensor change."""
    if draw(st.booleans()):
        return "tensor", (draw(st.integers(0, 10**6)), draw(st.sampled_from(TENSOR_CHANGES)))
    top = draw(st.sampled_from(["step", "epoch", "batch", "best", "history", "train_config", "data", "numpy_rng",
                                "python_rng", "skipped", "format", "version"]))
    depth = draw(st.integers(0, 3))
    return "state", (top, [draw(st.integers(0, 10**6)) for _ in range(depth)], draw(VALUES))


def tamper(path, where: str, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state = json.loads(meta[ckpt.FORMAT])
    if where == "tensor":
        pick, how = change
        change_tensor(tensors, sorted(tensors)[pick % len(tensors)], how)
    else:
        top, picks, value = change
        node, keys = state, [top]
        for pick in picks:  # descend into lists and dicts as far as they go
            inner = node[keys[-1]] if isinstance(node, (dict, list)) else None
            if not isinstance(inner, (dict, list)) or not inner:
                break
            node, keys = inner, [*keys, pick % len(inner) if isinstance(inner, list) else sorted(inner)[pick % len(inner)]]
        if len(keys) == 1:
            state[top] = value
        else:
            set_in(state, keys, value)
    meta[ckpt.FORMAT] = json.dumps(state)
    save_file(tensors, str(path), metadata=meta)


@FEW
@given(tamperings())
def test_fuzz_tampered_training_state(complete_run, tmp_path_factory, tampering):
    out = tmp_path_factory.mktemp("t") / "run"
    shutil.copytree(complete_run, out)
    for path in ckpt.candidates(out):
        tamper(path, *tampering)
    before = snapshot(out)

    def resumed(history) -> None:  # a valid state after all (or an older checkpoint that stayed valid): run to the end
        assert isinstance(history, list) and max(r["step"] for r in history) == RECIPE.steps
        tensors, state = ckpt.read_checkpoint(out / ckpt.LAST)
        assert state["step"] == RECIPE.steps and all(bool(torch.isfinite(v).all()) for v in tensors.values()
                                                      if v.is_floating_point())

    result = outcome("training checkpoint, tampered", lambda: tiny_run(out, resume=True, stop_after=RECIPE.steps),
                     resumed)
    if isinstance(result, Exception):
        assert snapshot(out) == before  # a refused resume writes nothing


# ---- videos whose headers lie about the frame size ----------------------------------------------------

@pytest.fixture(scope="module")
def gif_bytes(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("gif") / "v.gif"
    pixels = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=8)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb8"
        for frame in pixels:
            for packet in [*stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))]:
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@FEW
@given(st.integers(0, 300), st.integers(0, 300), st.integers(1, 3))
def test_fuzz_videos_with_lying_frame_sizes(gif_bytes, tmp_path_factory, monkeypatch, width, height, sample):
    """The bounds scaled down (128 pixels a side, 2 frames of 100 x 100 a clip), so that both
    sides of each are cheap to reach: a size over a bound is never decoded."""
    from inti.io.clips import decode

    monkeypatch.setattr(bounds, "MAX_VIDEO_SIDE", 128)
    monkeypatch.setattr(bounds, "MAX_CLIP_BYTES", 2 * 100 * 100 * 3)
    data = bytearray(gif_bytes)
    data[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    path = tmp_path_factory.mktemp("lie") / "v.gif"
    path.write_bytes(bytes(data))

    def within_the_bounds(frames) -> None:
        t, h, w, c = frames.shape
        assert (t, c) == (sample, 3) and frames.dtype == np.uint8
        assert max(h, w) <= 128 and t * h * w * 3 <= 2 * 100 * 100 * 3

    result = outcome("video file, lying frame size", lambda: decode(path, sample=sample), within_the_bounds, timeout=20)
    if max(width, height) > 128 or sample * width * height * 3 > 2 * 100 * 100 * 3:
        assert isinstance(result, ValueError), (width, height, sample, result)  # never decoded
        if min(width, height) > 0:
            assert isinstance(result, bounds.BoundError), (width, height, sample, result)  # and the bound says so


# ---- flag values ----------------------------------------------------------------------------------------

DATA_FLAGS = {"--size": ["0", "-1", "x", "1e3", "8", "16", "100000", str(2**70)],
              "--frames": ["0", "-3", "2", "4", str(10**8), "2.5"],
              "--train": ["0", "-1", "1", "2", str(10**9), "one"],
              "--val": ["0", "1", str(2**63)],
              "--seed": ["0", "-1", "7", str(2**70), "x"]}


@FEW
@given(st.dictionaries(st.sampled_from(sorted(DATA_FLAGS)), st.integers(0, 10), max_size=3), st.sampled_from(["motion", "informative", "bogus"]))
def test_fuzz_inti_data_flags(tmp_path_factory, capsys, flags, task):
    from inti.cli import main

    folder = tmp_path_factory.mktemp("data")
    argv = ["data", task, "--out", str(folder / "out"), "--train", "1", "--val", "1", "--frames", "2", "--size", "8"]
    for flag, pick in flags.items():
        argv += [flag, DATA_FLAGS[flag][pick % len(DATA_FLAGS[flag])]]

    def wrote_the_task(code) -> None:
        assert code in (0, 2), code
        if code == 0:
            assert (folder / "out" / "train.txt").exists() and (folder / "out" / "classes.txt").exists()

    code = outcome("command line, inti data", lambda: main(argv), wrote_the_task, refused=lambda c: c == 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code == 2 and "usage:" not in err:
        assert len(err.strip().splitlines()) == 1 and err.startswith("inti data: error: "), err


TRAIN_FLAGS = {"--seed": ["0", "-1", str(2**63 - 1), str(2**63), "x"], "--workers": ["0", "-1", "1e9", "x"],
               "--device": ["cpu", "CPU", "bogus", "cuda:x", "cpu:0"], "--lr": ["1e-3", "0", "nan", "-inf", "x"],
               "--warmup": ["0", "-1", "2.5"], "--label-smoothing": ["0.1", "1.01", "nan"],
               "--max-skip-fraction": ["0.2", "1", "-0.1"], "--dist-timeout": ["5", "0", "inf"],
               "--eval-every": ["0", "-1"], "--stop-after": ["1", "0"], "--schedule": ["2", "a", "9,"],
               "--resize": ["32", "64", "0"], "--weight-decay": ["0", "-1e-9", "1e400"]}


@FEW
@given(st.dictionaries(st.sampled_from(sorted(TRAIN_FLAGS)), st.integers(0, 10), min_size=1, max_size=3))
def test_fuzz_inti_train_flags(capsys, flags):
    """The parse of `inti train`: a usage error (exit 2, naming the flag), or values inside
    every rule, checked here from the rules themselves."""
    from inti.cli import build_parser

    argv = ["train", "--synthetic", "motion", "--out", "o"]
    for flag, pick in flags.items():
        argv += [flag, TRAIN_FLAGS[flag][pick % len(TRAIN_FLAGS[flag])]]

    def parse():
        try:
            return build_parser().parse_args(argv)
        except SystemExit as e:
            return e.code

    def within_the_rules(args) -> None:
        if args == 2:
            last = capsys.readouterr().err.strip().splitlines()[-1]
            assert last.startswith("inti train: error: argument --"), last
            return
        assert 0 <= args.seed <= 2**63 - 1 and args.workers >= 0 and args.device in (None, "cpu")
        assert math.isfinite(args.lr) and args.lr > 0 and 0 <= args.label_smoothing <= 1 and args.warmup >= 0
        assert 0 <= args.max_skip_fraction < 1 and 0 < args.dist_timeout < math.inf and args.eval_every >= 0
        assert (args.stop_after is None or args.stop_after >= 1) and math.isfinite(args.weight_decay)
        assert args.resize is None or args.resize >= 1

    outcome("command line, inti train flags", parse, within_the_rules, refused=lambda r: r == 2)
