"""The evidence experiment (inti.experiments.evidence): its data, its statistics, its quick
mode, and the committed results with the checkpoint that ships."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the evidence experiment needs the experiments extra")
pytest.importorskip("skimage", reason="the evidence experiment needs the experiments extra")

from inti.experiments.evidence import stats, tasks  # noqa: E402
from inti.experiments.evidence.variants import FRAMES, INTI_SCHEDULE, equal_mac_frames, tome_r, variants, video_config  # noqa: E402

import ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "experiments" / "evidence"


# ---------------------------------------------------------------------------------------------
# data


@pytest.mark.parametrize("task", ["image", "informative", "motion", "arrow"])
def test_clips_are_a_function_of_split_index_and_seed(task):
    a, la, ia = tasks.make_clip(task, "train", 3, seed=1)
    b, lb, ib = tasks.make_clip(task, "train", 3, seed=1)
    assert np.array_equal(a, b) and la == lb and ia == ib
    c, _, _ = tasks.make_clip(task, "train", 4, seed=1)
    d, _, _ = tasks.make_clip(task, "train", 3, seed=2)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.dtype == np.uint8 and a.shape == ((1 if task == "image" else FRAMES), 32, 32, 3)


def test_digit_splits_are_disjoint_and_cover_the_digits():
    parts = [set(tasks.digit_indices(s).tolist()) for s in tasks.SPLITS]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    from sklearn.datasets import load_digits

    assert set().union(*parts) == set(range(len(load_digits().target)))


def test_clutter_splits_come_from_disjoint_rows():
    shares = [tasks.SHARES[s] for s in tasks.SPLITS]
    assert all(a[1] <= b[0] for a, b in zip(shares, shares[1:]))
    sizes = [sum(im.shape[0] for im in tasks.clutter(s)) for s in tasks.SPLITS]
    assert sizes[0] > sizes[1] > 0 and sizes[2] > 0


def test_arrow_windows_of_different_splits_never_overlap_in_time():
    lengths = (132, 250, 150)  # any frame counts: the rule, not one set of videos
    spans = {s: tasks.arrow_spans(s, lengths) for s in tasks.SPLITS}
    for s, t in (("train", "val"), ("train", "test"), ("val", "test")):
        for v, a, b in spans[s]:
            for w, c, d in spans[t]:
                assert v != w or b <= c or d <= a, (s, t, (v, a, b), (w, c, d))
    real = tuple(len(v) for v in tasks.arrow_videos())
    assert all(len(tasks.arrow_spans(s, real)) > 0 for s in tasks.SPLITS)


def test_informative_clips_show_the_digit_in_k_frames_only():
    frames, label, info = tasks.make_clip("informative", "val", 0)
    shown = info["digit_frames"]
    assert len(shown) == tasks.K_SHOWN and 0 <= label < 10
    rest = [f for f in range(FRAMES) if f not in shown]
    # the clutter frames differ from one another by the shake only; a digit frame stands out
    spread = [np.abs(frames[f].astype(int) - frames[rest[0]].astype(int)).mean() for f in range(FRAMES)]
    assert min(spread[f] for f in shown) > max(spread[f] for f in rest[1:]) * 0.5


@pytest.mark.parametrize("index", range(8))
def test_motion_moves_the_digit_the_way_its_label_says(index):
    frames, label, _ = tasks.make_clip("motion", "test", index)
    x = frames.astype(float).sum(-1)
    ink = np.abs(x - np.median(x, axis=0))  # the still clutter cancels; the moving digit stays
    yy, xx = np.mgrid[:32, :32]
    centre = np.array([[(ink[f] * yy).sum() / ink[f].sum(), (ink[f] * xx).sum() / ink[f].sum()] for f in range(FRAMES)])
    step = centre[-1] - centre[0]
    expected = {0: (0, 1), 1: (0, -1), 2: (1, 0), 3: (-1, 0)}[label]  # right, left, down, up
    axis = int(np.argmax(np.abs(expected)))
    assert np.sign(step[axis]) == expected[axis] and abs(step[axis]) > 5 * abs(step[1 - axis]) / 2


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="split must be one of"):
        tasks.make_clip("informative", "holdout", 0)
    with pytest.raises(ValueError, match="unknown task"):
        tasks.make_clip("colour", "train", 0)
    with pytest.raises(ValueError, match="non-negative integer"):
        tasks.make_clip("informative", "train", -1)
    with pytest.raises(ValueError, match="uint8"):
        tasks.to_input(np.zeros((8, 32, 32, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# the variants' MACs come from the cost model


def test_inti_removes_the_papers_share_of_block_macs():
    assert ref.compare(video_config(10, schedule=INTI_SCHEDULE), FRAMES)["reduction"]["blocks"] == pytest.approx(0.375)


def test_baselines_sit_at_intis_macs():
    inti = ref.count_macs(video_config(10, schedule=INTI_SCHEDULE), FRAMES)["total"]
    drop = ref.count_macs(video_config(10), equal_mac_frames())["total"]
    tome = ref.tome_macs(video_config(10), FRAMES, tome_r("informative"))["total"]
    assert abs(drop - inti) / inti < 0.15 and abs(tome - inti) / inti < 0.05
    names = [v.name for v in variants()]
    assert len(names) == len(set(names))
    for needed in ("naive", "inti", "inti_sigmoid", "inti_mean", "drop", "tome", "naive_st", "inti_st",
                   "inti_shuffled", "naive_st_shuffled", "only_local", "without_local", "merge_after_2"):
        assert needed in names


# ---------------------------------------------------------------------------------------------
# statistics, against numbers worked out by hand


def test_mcnemar_exact_against_the_binomial_by_hand():
    # 8 clips only A gets right, 2 only B: p = 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10
    a = "1" * 8 + "0" * 2 + "1" * 5
    b = "0" * 8 + "1" * 2 + "1" * 5
    m = stats.mcnemar(a, b)
    assert (m["a_only"], m["b_only"]) == (8, 2)
    assert m["p"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    with pytest.raises(ValueError, match="same clips"):
        stats.mcnemar("101", "10")


def test_t_interval_by_hand():
    mean, half = stats.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))
    assert math.isnan(stats.t_interval([5.0])[1])


def test_the_rules_call_each_case_what_it_is():
    assert stats.beats({"lo": 0.1, "hi": 3.0}) == "holds"
    assert stats.beats({"lo": -2.0, "hi": 0.0}) == "does not hold"
    assert stats.beats({"lo": -1.0, "hi": 1.0}) == "inconclusive"
    assert stats.beats({"lo": math.nan, "hi": math.nan}) == "inconclusive"
    assert stats.non_inferior({"lo": -0.9, "hi": 2.0}) == "holds"
    assert stats.non_inferior({"lo": -4.0, "hi": -1.1}) == "does not hold"
    assert stats.non_inferior({"lo": -1.5, "hi": 0.5}) == "inconclusive"
    assert stats.both("holds", "inconclusive") == "inconclusive"
    assert stats.both("holds", "does not hold") == "does not hold"


# ---------------------------------------------------------------------------------------------
# the quick mode: what must hold even at tiny scale


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from inti.experiments.evidence.driver import reproduce

    out = tmp_path_factory.mktemp("evidence-quick")
    (out / "README.md").write_text("# quick\n\n<!-- results:start -->\n<!-- results:end -->\n\nafter\n")
    result = reproduce(out, quick=True, say=lambda *a, **k: None)
    return out, result


def _row(result, variant):
    return next(r for r in result["rows"] if r["task"] == "informative" and r["variant"] == variant)


def test_trained_inti_beats_chance_by_a_clear_margin(quick):
    _, result = quick
    inti = _row(result, "inti")
    n = result["test_clips"]["informative"]
    # chance is 10%; 30% of 256 clips is 12 standard deviations above it
    assert n >= 256 and inti["top1_mean"] >= 0.30, inti


def test_trained_merges_put_more_than_uniform_weight_on_the_digit_frames(quick):
    _, result = quick
    share = _row(result, "inti")["digit_share_mean"]
    # θ starts as the mean, which gives exactly k/8 = 0.25; above 0.3 it has learned
    assert share > 0.30, share
    mean = _row(result, "inti_mean")
    assert mean["digit_share_mean"] == pytest.approx(tasks.K_SHOWN / FRAMES, abs=1e-9)


def test_quick_mode_writes_the_whole_report(quick):
    out, result = quick
    for name in ("results.json", "runs.jsonl", "accuracy_macs.png", "digit_share.png", "contribution_maps.png",
                 "inti_informative.safetensors"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "README.md").read_text()
    assert "**informative**" in text and text.endswith("after\n")
    saved = json.loads((out / "results.json").read_text())
    assert saved["claims"]["a"]["tests"][0]["verdict"] in ("holds", "does not hold", "inconclusive")
    assert saved["runs"] == 4 == len((out / "runs.jsonl").read_text().splitlines()) and saved["checkpoint_sha256"]


def test_a_rerun_resumes_from_the_finished_runs(quick):
    from inti.experiments.evidence.driver import reproduce

    out, result = quick
    before = (out / "runs.jsonl").read_text()
    again = reproduce(out, quick=True, say=lambda *a, **k: None)
    assert (out / "runs.jsonl").read_text() == before  # nothing trained again, nothing appended
    assert again["rows"] == result["rows"] and again["seconds"] < 30


def test_a_corrupt_run_log_is_named(tmp_path):
    from inti.experiments.evidence.driver import reproduce

    (tmp_path / "runs.jsonl").write_text('{"variant": "naive"\n')
    with pytest.raises(ValueError, match="runs.jsonl line 1"):
        reproduce(tmp_path, quick=True, say=lambda *a, **k: None)


def test_pretraining_caches_the_image_model(tmp_path):
    from inti.experiments.evidence.run import Scale, pretrain

    tiny = Scale(seeds=(0,), pretrain_steps=3, pretrain_images=300, val_clips=16)
    first = pretrain(0, tiny, tmp_path)
    second = pretrain(0, tiny, tmp_path)
    assert not first["cached"] and second["cached"]
    assert all(np.array_equal(first["params"][k], second["params"][k]) for k in first["params"])


# ---------------------------------------------------------------------------------------------
# the committed results and the shipped checkpoint


@pytest.mark.skipif(not (REPORT / "results.json").exists(), reason="the full results are not committed yet")
def test_the_shipped_checkpoint_is_the_one_the_committed_run_wrote():
    from inti.assets import trained_checkpoint
    from inti.io.params import load_params

    result = json.loads((REPORT / "results.json").read_text())
    path = trained_checkpoint()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == result["checkpoint_sha256"]
    assert path.stat().st_size <= 1_100_000
    params, cfg = load_params(path)
    assert cfg.schedule == INTI_SCHEDULE and cfg.num_classes == 10


@pytest.mark.skipif(not (REPORT / "results.json").exists(), reason="the full results are not committed yet")
def test_committed_results_have_every_variant_with_three_seeds():
    result = json.loads((REPORT / "results.json").read_text())
    have = {(r["task"], r["variant"]): r for r in result["rows"]}
    for v in variants():
        for task in v.tasks:
            row = have[(task, v.name)]
            assert len(row["top1_per_seed"]) >= 3, (task, v.name)
    assert result["command"].startswith("python -m inti.experiments.evidence")
    for claim in "abcd":
        assert result["claims"][claim]["verdict"] in ("holds", "does not hold", "inconclusive")
