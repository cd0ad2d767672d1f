"""`inti export` and inti/export.py: the ONNX graph against the NumPy spec and torch, its nodes
and MACs, the sidecar (the config, the preprocessing and class names a deployment needs, checked
by a deployment that imports no inti), and the errors a user can cause."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")

import onnx  # noqa: E402

import ref  # noqa: E402
from ref.model import merge_key  # noqa: E402
import torch_impl  # noqa: E402
from inti import export  # noqa: E402
from inti.cli import main  # noqa: E402
from inti.io.params import config_from_json, save_params  # noqa: E402
from inti.tolerances import rel_err, tolerance  # noqa: E402

FRAMES = 8
TOL = tolerance("float32")


@pytest.fixture(scope="module")
def nano():
    cfg = ref.preset("nano")
    params = ref.params.randomize_scores(ref.init_params(cfg), cfg)
    return cfg, params


@pytest.fixture(scope="module")
def exported(nano, tmp_path_factory):
    """nano with random scores, exported through the CLI from a parameter file, with --trace."""
    cfg, params = nano
    folder = tmp_path_factory.mktemp("export")
    weights = folder / "nano.npz"
    save_params(weights, params, cfg)
    out = folder / "nano.onnx"
    assert main(["export", "--format", "onnx", "--output", str(out), "--weights", str(weights),
                 "--frames", str(FRAMES), "--trace"]) == 0
    return out, export.session(out)


def _compare(sess, nano, video):
    cfg, params = nano
    got = export.run_onnx(sess, video)
    _, spec = ref.forward(params, video.astype(np.float64), cfg, return_trace=True)
    model = torch_impl.from_ref_params(params, cfg, dtype=torch.float32).eval()
    with torch.no_grad():
        _, mirror = model(torch.from_numpy(video.astype(np.float32)), return_trace=True)
    names = ["logits", *(merge_key(j, "weights") for j in range(len(cfg.schedule)))]
    assert sorted(got) == sorted(names)
    for name in names:
        assert rel_err(got[name], spec[name]) <= TOL, (name, rel_err(got[name], spec[name]))
        assert rel_err(got[name], mirror[name].numpy()) <= TOL, name
    # the random scores make the weights differ from 1/2, so the weights test something
    assert np.abs(got["merges.0.weights"] - 0.5).max() > 0.05


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_the_spec_and_torch_on_random_clips(exported, nano, batch):
    cfg = nano[0]
    video = np.random.default_rng(batch).standard_normal((batch, FRAMES, 3, cfg.image_size, cfg.image_size))
    _compare(exported[1], nano, video.astype(np.float32))


def test_onnxruntime_matches_the_spec_and_torch_on_a_real_clip(exported, nano):
    pytest.importorskip("av")
    from inti.io.clips import load_clip

    clip = load_clip("bikes.mp4", frames=FRAMES, size=nano[0].image_size)
    _compare(exported[1], nano, clip[None])


def test_the_graph_refuses_another_frame_count(exported, nano):
    cfg = nano[0]
    with pytest.raises(ValueError, match="shape"):
        export.run_onnx(exported[1], np.zeros((1, 4, 3, cfg.image_size, cfg.image_size), np.float32))


def test_the_sidecar_holds_the_config(exported, nano):
    out, _ = exported
    text = export.sidecar_path(out).read_text()
    assert config_from_json(text) == nano[0]
    meta = json.loads(text)["export"]
    assert meta["frames"] == FRAMES and meta["dynamic_axes"] == {"video": {"0": "batch"}}
    assert list(meta["outputs"]) == ["logits", "merges.0.weights", "merges.1.weights"]


@pytest.mark.parametrize("schedule", [None, ()])
def test_the_graph_is_static_and_its_macs_are_the_cost_model(exported, nano, schedule):
    cfg, params = nano
    if schedule is None:
        proto = onnx.load(str(exported[0]))
    else:
        cfg, params = cfg.replace(schedule=schedule), ref.backbone(params)
        proto = export.to_onnx(params, cfg, FRAMES)
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"NonZero", "TopK", "Loop", "If", "Unique", "Scan", "Where"}, ops
    assert export.data_dependent_nodes(proto) == []
    macs = export.graph_macs(proto, batch=1)
    assert macs["total"] == ref.count_macs(cfg, FRAMES)["matmul"]
    assert export.graph_macs(proto, batch=2)["total"] == ref.count_macs(cfg, FRAMES, batch=2)["matmul"]
    dim = proto.graph.input[0].type.tensor_type.shape.dim
    assert dim[0].dim_param == "batch" and [d.dim_value for d in dim[1:]] == [FRAMES, 3, cfg.image_size, cfg.image_size]


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit status 2, nothing written


@pytest.fixture
def fast_export(monkeypatch, exported):
    """Skip the slow torch export in the error tests: to_onnx returns the graph made once."""
    proto = onnx.load(str(exported[0]))
    monkeypatch.setattr(export, "to_onnx", lambda *a, **k: proto)


def _errors(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    assert main(["export", "--format", "tflite", "--output", str(tmp_path / "m.onnx")]) == 2
    err = _errors(capsys)
    assert err.count("usage:") == 1 and "invalid choice: 'tflite'" in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, fragment", [("missing/m.onnx", "does not exist"), (".", "is a directory")])
def test_an_output_that_cannot_be_written(tmp_path, capsys, fast_export, where, fragment):
    before = sorted(tmp_path.iterdir())
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / where)]) == 2
    err = _errors(capsys)
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert sorted(tmp_path.iterdir()) == before


def test_an_existing_output_needs_force(tmp_path, capsys, fast_export):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    assert main(["export", "--format", "onnx", "--output", str(out)]) == 2
    assert "--force" in _errors(capsys) and out.read_bytes() == b"old"
    assert main(["export", "--format", "onnx", "--output", str(out), "--force"]) == 0
    onnx.checker.check_model(onnx.load(str(out)))


def test_a_failed_write_leaves_nothing_half_written(tmp_path, capsys, fast_export, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["export", "--format", "onnx", "--output", str(out), "--force"]) == 2
    assert "No space left" in _errors(capsys)
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_failed_sidecar_removes_the_new_graph(tmp_path, capsys, fast_export, monkeypatch):
    def broken(path, text):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(export, "write_text", broken)
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 2
    assert "Input/output error" in _errors(capsys)
    assert list(tmp_path.iterdir()) == []


def test_frames_the_schedule_cannot_halve_are_refused_up_front(tmp_path, capsys, nano):
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "m.onnx"), "--frames", "6"]) == 2
    err = _errors(capsys)
    assert len(err.strip().splitlines()) == 1 and "cannot export" in err and "multiple of 4" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="cannot export for --frames 6"):
        export.check_exportable(nano[0], 6)


# ---------------------------------------------------------------------------------------------
# the opset: within what the installed exporter writes, and recorded as the graph has it

TINY = ref.ModelConfig(image_size=8, patch_size=4, width=8, depth=2, heads=2, mlp_ratio=2.0, embed_dim=None,
                       num_classes=3, schedule=(1,), reduction=2)


@pytest.mark.parametrize("opset, fragment", [
    ("0", "argument --opset: must be a positive integer, got 0"), ("-1", "must be a positive integer, got -1"),
    ("x", "must be a positive integer, got 'x'"), ("1", "writes ONNX opsets 18 to"), ("17", "got --opset 17"),
    ("99", "got --opset 99"),
])
def test_an_opset_the_exporter_cannot_write_is_refused_before_any_work(tmp_path, capsys, opset, fragment):
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "m.onnx"), "--opset", opset]) == 2
    err = _errors(capsys).strip().splitlines()
    assert fragment in err[-1] and (len(err) == 1 or err[0].startswith("usage:")), err
    assert list(tmp_path.iterdir()) == []


def test_the_supported_opsets_come_from_the_installed_exporter():
    from onnxscript.version_converter._version_converter import SUPPORTED_MAX_ONNX_OPSET
    from torch.onnx._internal.exporter._constants import TORCHLIB_OPSET

    supported = export.supported_opsets()
    assert supported.start == TORCHLIB_OPSET and supported.stop - 1 == min(SUPPORTED_MAX_ONNX_OPSET,
                                                                            onnx.defs.onnx_opset_version())
    for bad in (True, 18.0, "18", None):
        with pytest.raises(ValueError, match="writes ONNX opsets"):
            export.check_opset(bad)


def test_the_sidecar_records_the_opset_the_written_graph_has(tmp_path):
    params = ref.init_params(TINY, seed=0)
    top = export.supported_opsets().stop - 1
    info = export.export_onnx(tmp_path / "t.onnx", params, TINY, 2, opset=top)
    meta = json.loads(export.sidecar_path(tmp_path / "t.onnx").read_text())["export"]
    assert export.graph_opset(onnx.load(str(tmp_path / "t.onnx"))) == top == meta["onnx_opset"] == info["opset"]


def test_a_graph_at_another_opset_than_asked_is_refused_or_recorded_as_it_is(tmp_path, monkeypatch, exported):
    """The exporter keeps its base opset, without a word, where it cannot convert: to_onnx
    checks the graph it got; and the sidecar is written from the file, whatever to_onnx gave."""
    params = ref.init_params(TINY, seed=0)
    monkeypatch.setattr(export, "supported_opsets", lambda: range(7, 30))
    with pytest.raises(ValueError, match="the exporter wrote opset 18 when asked for --opset 17"):
        export.to_onnx(params, TINY, 2, opset=17)
    at_18 = onnx.load(str(exported[0]))
    monkeypatch.setattr(export, "to_onnx", lambda *a, **k: at_18)
    info = export.export_onnx(tmp_path / "m.onnx", params, TINY, 2, opset=20)
    assert json.loads(export.sidecar_path(tmp_path / "m.onnx").read_text())["export"]["onnx_opset"] == 18 == info["opset"]


# ---------------------------------------------------------------------------------------------
# the sidecar holds what a deployment needs: the preprocessing and the class names


CLASSES = [f"action {i}" for i in range(10)]

# A deployment written only against the sidecar: NumPy, PyAV and onnxruntime, no inti, ref or torch.
DEPLOYMENT = '''
import json, sys
for name in ("inti", "ref", "torch_impl", "torch"):
    sys.modules[name] = None  # a deployment has none of them: importing one fails
import av
import numpy as np
import onnxruntime as ort

graph, video = sys.argv[1], sys.argv[2]
with open(graph + ".json") as f:
    side = json.load(f)
pre = side["preprocess"]
T, size = pre["frames"], pre["size"]
with av.open(video) as container:  # every frame, in presentation order, RGB
    frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
n = len(frames)
assert n >= T, "too short"
picked = [int(np.floor((i + 0.5) * n / T)) for i in range(T)]  # segment centres


def taps(n_in, n_out):  # half-pixel centres, edges repeated
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(x).astype(int)
    return i0, np.minimum(i0 + 1, n_in - 1), x - i0


def resize(image):  # bilinear, the short side to size: rows, then columns
    h, w = image.shape[:2]
    out_h, out_w = (size, int(w * size / h)) if h <= w else (int(h * size / w), size)
    x = image.astype(np.float64) * pre["scale"]
    i0, i1, a = taps(h, out_h)
    x = x[i0] * (1 - a)[:, None, None] + x[i1] * a[:, None, None]
    j0, j1, b = taps(w, out_w)
    return x[:, j0] * (1 - b)[None, :, None] + x[:, j1] * b[None, :, None]


clip = []
for i in picked:
    x = resize(frames[i])
    top, left = (x.shape[0] - size) // 2, (x.shape[1] - size) // 2
    x = (x[top:top + size, left:left + size] - np.array(pre["mean"])) / np.array(pre["std"])
    clip.append(x.transpose(2, 0, 1))  # channels first
batch = np.stack(clip)[None].astype(np.float32)
session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
logits = session.run(["logits"], {session.get_inputs()[0].name: batch})[0][0].astype(np.float64)
p = np.exp(logits - logits.max())
print(json.dumps({"probabilities": (p / p.sum()).tolist(), "classes": side["classes"],
                  "loaded": sorted(m for m in ("inti", "ref", "torch") if sys.modules.get(m) is not None)}))
'''


@pytest.fixture(scope="module")
def with_classes(nano, tmp_path_factory):
    """nano with random scores exported with --classes, from the parameter file predict reads too."""
    cfg, params = nano
    folder = tmp_path_factory.mktemp("deploy")
    save_params(folder / "nano.npz", params, cfg)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    out = folder / "nano.onnx"
    assert main(["export", "--format", "onnx", "--output", str(out), "--weights", str(folder / "nano.npz"),
                 "--frames", str(FRAMES), "--classes", str(folder / "classes.txt")]) == 0
    return folder, out


def _spec_numbers(name: str) -> list[float]:
    """CLIP's statistics as spec/00-method.md §7 writes them."""
    text = (Path(__file__).resolve().parents[2] / "spec" / "00-method.md").read_text()
    section = text.split("## 7.", 1)[1].split("## 8.", 1)[0]
    found = re.search(name + r"\s+\(([^)]*)\)", " ".join(section.split()))
    return [float(v) for v in found.group(1).split(",")]


def test_the_sidecar_holds_the_preprocessing_and_the_class_names(with_classes, nano):
    side = json.loads(export.sidecar_path(with_classes[1]).read_text())
    pre = side["preprocess"]
    assert pre["frames"] == FRAMES and pre["size"] == nano[0].image_size == pre["crop"]["size"][0]
    assert pre["mean"] == _spec_numbers("mean") and pre["std"] == _spec_numbers("standard deviation")
    assert pre["layout"] == ["batch", FRAMES, 3, 64, 64] and pre["scale"] == 1 / 255
    assert pre["sampling"]["index"].startswith("floor((i + 0.5) * n / frames)")
    assert pre["resize"]["interpolation"] == "bilinear" and pre["resize"]["antialias"] is False
    assert side["classes"] == CLASSES and side["postprocess"]["probabilities"].startswith("softmax")
    assert config_from_json(json.dumps(side)) == nano[0]  # the config still reads back


def test_a_deployment_written_against_the_sidecar_reproduces_inti_predict(with_classes, capsys, tmp_path):
    """NumPy + PyAV + onnxruntime, no inti: the same probabilities as `inti predict` on a bundled
    clip, within the float32 tolerance, and the same class names."""
    pytest.importorskip("av")
    from inti.io.clips import bundled_clip

    folder, graph = with_classes
    video = str(bundled_clip("bikes.mp4"))
    assert main(["predict", video, "--weights", str(folder / "nano.npz"), "--classes", str(folder / "classes.txt"),
                 "--json", "--topk", "10"]) == 0
    line = json.loads(capsys.readouterr().out)
    predicted = np.full(10, np.nan)
    for entry in line["top"]:
        predicted[entry["index"]] = entry["probability"]
    script = tmp_path / "deploy.py"
    script.write_text(DEPLOYMENT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script), str(graph), video], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    deployed = json.loads(proc.stdout)
    assert deployed["loaded"] == [] and deployed["classes"] == CLASSES
    assert rel_err(deployed["probabilities"], predicted) <= TOL, rel_err(deployed["probabilities"], predicted)
    assert [e["class"] for e in line["top"]] == [CLASSES[i] for i in np.argsort(deployed["probabilities"])[::-1]]


@pytest.mark.parametrize("case, fragment", [
    ("count", "names 9 classes, but the model's head has 10"),
    ("no head", "this model has no head"),
])
def test_bad_classes_are_refused_before_the_export(tmp_path, capsys, nano, case, fragment):
    cfg, params = nano
    names = CLASSES[:9]
    if case == "no head":
        cfg, names = cfg.replace(num_classes=0), CLASSES
        params = ref.init_params(cfg)
    save_params(tmp_path / "w.npz", params, cfg)
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    assert main(["export", "--format", "onnx", "--output", str(tmp_path / "m.onnx"), "--weights",
                 str(tmp_path / "w.npz"), "--classes", str(tmp_path / "classes.txt")]) == 2
    err = _errors(capsys)
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.txt", "w.npz"]
    with pytest.raises(ValueError, match="expected 10 class names"):
        export.sidecar(nano[0], FRAMES, False, 18, classes=CLASSES[:3])
