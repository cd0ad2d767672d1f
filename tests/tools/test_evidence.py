"""The evidence experiment (inti.experiments.evidence): its data, its models and their caches,
its statistics, its quick mode, and the committed results with the checkpoint that ships."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn", reason="the evidence experiment needs the experiments extra")
pytest.importorskip("skimage", reason="the evidence experiment needs the experiments extra")

import ref  # noqa: E402
from inti.experiments.evidence import arms as A  # noqa: E402
from inti.experiments.evidence import models, rules, stats, tasks  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "experiments" / "evidence"
README = (ROOT / "README.md").read_text()
FRAMES = tasks.FRAMES


# ---------------------------------------------------------------------------------------------
# data


@pytest.mark.parametrize("task", tasks.TASKS)
def test_clips_are_a_function_of_split_index_and_seed(task):
    a, la, ia = tasks.task_clip(task, "train", 3, seed=1)
    b, lb, ib = tasks.task_clip(task, "train", 3, seed=1)
    assert np.array_equal(a, b) and la == lb and ia == ib
    c, _, _ = tasks.task_clip(task, "train", 4, seed=1)
    d, _, _ = tasks.task_clip(task, "train", 3, seed=2)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.dtype == np.uint8 and a.shape == ((1 if task == "image" else FRAMES), 32, 32, 3)


def test_no_generator_shares_a_name_with_the_synthetic_module():
    import inspect

    from inti.data import synthetic

    ours = {n for n, f in inspect.getmembers(tasks, inspect.isfunction) if f.__module__ == tasks.__name__}
    theirs = {n for n, f in inspect.getmembers(synthetic, inspect.isfunction) if f.__module__ == synthetic.__name__}
    assert not ours & theirs, ours & theirs


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


def test_informative_clips_show_the_digit_in_k_frames_only():
    frames, label, info = tasks.task_clip("informative", "val", 0)
    shown = info["digit_frames"]
    assert len(shown) == tasks.K_SHOWN and 0 <= label < 10
    rest = [f for f in range(FRAMES) if f not in shown]
    # the clutter frames differ from one another by the shake only; a digit frame stands out
    spread = [np.abs(frames[f].astype(int) - frames[rest[0]].astype(int)).mean() for f in range(FRAMES)]
    assert min(spread[f] for f in shown) > max(spread[f] for f in rest[1:]) * 0.5


def _chroma(frame):
    x = frame.astype(float) / 255
    return x.max(-1) - x.min(-1)


def test_all_frames_clips_show_part_of_the_digit_in_every_frame(monkeypatch):
    # the same clips with no ink, and with no occluder: the ink shows in every frame, and in
    # most frames less of it than the whole digit would show (an occluder can miss the ink)
    def made(**changes):
        for name, value in changes.items():
            monkeypatch.setattr(tasks, name, value)
        out = [tasks.task_clip("all_frames", "test", i)[0].astype(int) for i in range(6)]
        monkeypatch.undo()
        return np.stack(out)

    clips, blank, whole = made(), made(INK=(0.0, 0.0)), made(HIDDEN=(0.0, 0.0))
    shown = (np.abs(clips - blank).sum(-1) > 30).sum(axis=(2, 3))  # (clips, frames) inked pixels
    unhidden = (np.abs(whole - blank).sum(-1) > 30).sum(axis=(2, 3))
    assert np.all(shown > 0), shown
    assert np.all(shown <= unhidden) and np.mean(shown < unhidden) > 0.75, (shown, unhidden)
    assert all(not np.array_equal(c[f], c[f + 1]) for c in clips for f in range(FRAMES - 1))


@pytest.mark.parametrize("index", range(6))
def test_arrow_clips_pair_a_scene_with_its_reversal_and_forward_spreads_the_dye(index, monkeypatch):
    a, la, _ = tasks.task_clip("arrow", "val", 2 * index)
    b, lb, _ = tasks.task_clip("arrow", "val", 2 * index + 1)
    assert (la, lb) == (0, 1) and np.array_equal(a[::-1], b)
    monkeypatch.setattr(tasks, "DYE_MASS", (0.0, 0.0))  # the same scene without dye
    photo = tasks.task_clip("arrow", "val", 2 * index)[0]
    dye = np.abs(a.astype(int) - photo.astype(int)).sum(-1)  # (frames, h, w)
    footprint, peak = (dye > 20).sum(axis=(1, 2)), dye.max(axis=(1, 2))
    # forward, as diffusion goes: the stain widens and thins, frame after frame
    assert np.all(np.diff(footprint) >= 0) and footprint[-1] > 2 * footprint[0], footprint
    assert peak[0] > peak[-1], peak


@pytest.mark.parametrize("index", range(8))
def test_motion_moves_the_digit_the_way_its_label_says(index):
    frames, label, _ = tasks.task_clip("motion", "test", index)
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
        tasks.task_clip("informative", "holdout", 0)
    with pytest.raises(ValueError, match="unknown task"):
        tasks.task_clip("colour", "train", 0)
    with pytest.raises(ValueError, match="non-negative integer"):
        tasks.task_clip("informative", "train", -1)
    with pytest.raises(ValueError, match="uint8"):
        tasks.to_input(np.zeros((8, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="unknown arm"):
        A.arm("median_pool")


# ---------------------------------------------------------------------------------------------
# the arms' MACs come from the cost model


def test_inti_removes_the_papers_share_of_block_macs():
    assert ref.compare(A.image_config(10, schedule=A.INTI_SCHEDULE), FRAMES)["reduction"]["blocks"] == pytest.approx(0.375)


def test_equal_mac_baselines_sit_at_intis_macs():
    inti = A.inti_macs("informative")
    for name in ("drop", "random_drop", "hard_select", "tome"):
        assert abs(A.macs(A.arm(name), "informative") - inti) / inti < 0.1, name
    naive = ref.count_macs(A.image_config(10), FRAMES)["total"]
    cfg = A.image_config(10)
    # no token dropped: the spec's cost model of naive adaptation, counted another way
    assert A.random_drop_macs(cfg, cfg.num_patches) == naive
    assert A.rlt_macs(cfg, np.full((3, FRAMES), cfg.num_patches)) == naive
    names = [a.name for a in A.arms()]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------------------------------------
# the models: the cached entries are the whole model, and each baseline does what it says


def _params(cfg, seed=0):
    p = ref.init_params(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for k in p:  # θ's score layer starts at zero; random values make the weights differ
        if k.startswith("merges.") and "score" in k:
            p[k] = rng.normal(0, 0.5, p[k].shape)
    return {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in p.items()}


def _video(n=3, seed=0):
    return torch.from_numpy(np.stack([tasks.to_input(tasks.task_clip("informative", "val", i, seed)[0])
                                      for i in range(n)]))


def test_arm_model_is_inti_model_on_pixels():
    from torch_impl import InTIModel

    cfg = A.image_config(10, schedule=(1,))
    params = _params(cfg)
    arm, plain = models.ArmModel(cfg).eval(), InTIModel(cfg).eval()
    arm.load_state_dict(params)
    plain.load_state_dict(params)
    x = _video()
    with torch.no_grad():
        torch.testing.assert_close(arm(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry,schedule", [("block1", (1,)), ("block1", (2,)), ("features", ())])
def test_cached_entries_give_what_the_whole_model_gives(entry, schedule):
    from inti.experiments.evidence.cache import frozen_outputs

    cfg = A.image_config(10, schedule=schedule)
    params = _params(cfg)
    whole, cached = models.ArmModel(cfg).eval(), models.ArmModel(cfg, entry=entry).eval()
    whole.load_state_dict(params)
    cached.load_state_dict(params)
    frames = np.stack([tasks.task_clip("informative", "val", i)[0] for i in range(3)])
    out = frozen_outputs({"params": {k: v.numpy() for k, v in params.items()}, "cfg": cfg}, frames)
    x = torch.from_numpy(np.stack([tasks.to_input(f) for f in frames]))
    with torch.no_grad():
        torch.testing.assert_close(cached(torch.from_numpy(out[entry])), whole(x), rtol=1e-4, atol=1e-4)


def test_hard_selection_keeps_the_better_frame_of_each_pair_whole():
    cfg = A.image_config(10, schedule=(1,))
    model = models.ArmModel(cfg, reduce="hard").eval()
    model.load_state_dict(_params(cfg))
    h = torch.randn(2, FRAMES, cfg.num_tokens, cfg.width)
    with torch.no_grad():
        y, weights = model.select(0, h)
        score = model.merges[0].predict_scores(h).mean(-1)  # (b, t)
    for b in range(2):
        for p in range(FRAMES // 2):
            better = 2 * p + int(score[b, 2 * p + 1] > score[b, 2 * p])
            assert torch.equal(y[b, p], h[b, better])


def test_random_token_dropping_keeps_the_class_token_and_k_patches():
    cfg = A.image_config(10)
    model = models.ArmModel(cfg, keep=5).eval()
    h = torch.arange(2 * FRAMES * cfg.num_tokens, dtype=torch.float32).reshape(2, FRAMES, cfg.num_tokens, 1)
    out = model.drop_tokens(h.expand(-1, -1, -1, cfg.width))
    assert out.shape == (2, FRAMES, 6, cfg.width)
    assert torch.equal(out[:, :, 0, 0], h[:, :, 0, 0])  # the class token, first
    kept = out[..., 1:, 0] - h[:, :, :1, 0]
    assert torch.all(kept[..., 1:] > kept[..., :-1]) and torch.all(kept >= 1)  # distinct patches, in order
    assert torch.equal(model.drop_tokens(h), model.drop_tokens(h))  # evaluation repeats itself


def test_run_lengths_by_hand():
    # one 8x8 patch grid of 1 patch (image 8, patch 8): frames 0-2 equal, 3 new, 4 equal to 3
    video = torch.zeros(1, 5, 3, 8, 8)
    video[:, 3:] = 1.0
    keep, length = models.run_lengths(video, 8, threshold=0.1)
    assert keep[0, :, 0].tolist() == [True, False, False, True, False]
    assert length[0, 0, 0] == 3 and length[0, 3, 0] == 2


def test_rlt_that_drops_nothing_is_naive_adaptation():
    from torch_impl import InTIModel

    cfg = A.image_config(10)
    params = _params(cfg)
    rlt, naive = models.RunLengthModel(cfg, threshold=-1.0, frames=FRAMES).eval(), InTIModel(cfg).eval()
    rlt.load_state_dict(params, strict=False)
    naive.load_state_dict(params)
    x = _video()
    with torch.no_grad():
        torch.testing.assert_close(rlt(x), naive(x), rtol=1e-5, atol=1e-5)
        rlt.threshold = 0.5  # now it drops tokens, and the answer changes
        assert not torch.allclose(rlt(x), naive(x), atol=1e-4)


def test_attention_pooling_starts_as_the_mean():
    cfg = A.image_config(10)
    features = torch.randn(4, FRAMES, cfg.width)
    attn, mean = models.ArmModel(cfg, entry="features", pool="attn"), models.ArmModel(cfg, entry="features")
    torch.testing.assert_close(attn.pooled(features), mean.pooled(features))
    assert torch.equal(models.ArmModel(cfg, entry="features", pool="max").pooled(features), features.amax(1))


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


def _d(per_seed):
    return stats.paired(np.array(per_seed) / 100, np.zeros(len(per_seed)))


def test_the_rules_call_each_case_what_it_is():
    assert stats.beats(_d([2.0, 3.0, 2.5]), 1.0) == "holds"
    assert stats.beats(_d([0.3, 0.5, 0.4]), 1.0) == "does not hold"  # above 0, but below the minimum effect
    assert stats.beats(_d([-3.0, 4.0, 1.0]), 1.0) == "inconclusive"
    assert stats.beats(_d([0.0, 0.0, 0.0]), 1.0) == "not estimable"  # no spread: no interval
    assert stats.non_inferior(_d([-0.2, 0.1, 0.0]), 1.0) == "holds"
    assert stats.non_inferior(_d([-4.0, -3.5, -3.8]), 1.0) == "does not hold"
    assert stats.non_inferior(_d([-3.0, 1.0, -1.0]), 1.0) == "inconclusive"
    assert stats.non_inferior(_d([2.0, 2.0, 2.0]), 1.0) == "not estimable"
    assert stats.both("holds", "inconclusive") == "inconclusive"
    assert stats.both("holds", "does not hold") == "does not hold"
    assert stats.both("holds", "not estimable") == "not estimable"


def test_power_and_the_pilot_bound_by_hand():
    # the 80% upper bound of an sd from 3 values: chi-square with 2 df has ppf(0.2) = -2 ln 0.8
    assert stats.upper_sd(1.0, 3) == pytest.approx(math.sqrt(2 / (-2 * math.log(0.8))))
    assert stats.planned_sd(0.0, 0.1, 1000) == pytest.approx(1.0)  # sqrt(1e4 * 0.1 / 1000) points
    assert stats.split_spread(1.0, 0.1, 1000) == 0.0
    # at a true difference of 0 and a margin of 0 the lower end is at or above 0 about 2.5% of the time
    assert stats.power(1.0, 5, "non_inferior", 0.0) == pytest.approx(0.025, abs=0.005)
    assert stats.power(1.0, 5, "non_inferior", 10.0) > 0.999
    assert stats.power(1.0, 5, "beats", 1.0, true_delta=0.0) < 0.03


def test_the_plan_runs_every_deciding_arm_on_every_seed():
    plan = {"seeds": [0, 1, 2, 3, 4]}
    jobs = rules.jobs(plan, "max_pool")
    by = {}
    for arm, task, seed, recipe in jobs:
        by.setdefault((arm, task, recipe), set()).add(seed)
    for arm, task in rules.deciding_arms():
        assert by[(arm, task, "main")] == set(plan["seeds"]), (arm, task)
        assert len(by[(arm, task, "second")]) == rules.REPORTED_SEEDS
    assert by[("tome", "informative", "main")] == {0, 1, 2}
    assert ("attn_pool_ft", "informative", 0, "main") not in jobs and ("max_pool_ft", "all_frames", 0, "main") in jobs
    # the rows the declared scope leaves out run only in the addendum, at the reported seeds
    left = {(arm, task): seeds for (arm, task, recipe), seeds in by.items() if arm in rules.LEFT_OUT}
    assert bool(left) == rules.ADDENDUM and all(s == {0, 1, 2} for s in left.values())
    assert (("max_pool_ft", "informative", 0, "main") in jobs) == rules.ADDENDUM
    kept = {a.name for a in A.arms() if (rules.ADDENDUM or a.name not in rules.LEFT_OUT)
            and (a.setting != "finetune" or a.name in {"naive_ft", "inti_ft", "max_pool_ft", "drop_ft"})}
    assert kept == {arm for arm, *_ in jobs}


# ---------------------------------------------------------------------------------------------
# the quick mode: what must hold even at tiny scale


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from inti.experiments.evidence.driver import reproduce

    out = tmp_path_factory.mktemp("evidence-quick")
    (out / "README.md").write_text("# quick\n\n<!-- results:start -->\n<!-- results:end -->\n\nafter\n")
    result = reproduce(out, quick=True, say=lambda *a, **k: None)
    return out, result


def _row(result, arm):
    return next(r for r in result["rows"] if r["task"] == "informative" and r["arm"] == arm)


def test_trained_inti_beats_chance_by_a_clear_margin(quick):
    _, result = quick
    inti = _row(result, "inti")
    # chance is 10%; 30% of 512 clips is 17 standard deviations above it
    assert result["test_clips"]["informative"] >= 512 and inti["top1_mean"] >= 0.30, inti


def test_trained_merges_put_more_than_uniform_weight_on_the_digit_frames(quick):
    _, result = quick
    assert _row(result, "inti")["digit_share_mean"] > 0.30
    assert _row(result, "hard_select")["digit_share_mean"] > 0.30
    assert _row(result, "inti_mean")["digit_share_mean"] == pytest.approx(tasks.K_SHOWN / FRAMES, abs=1e-6)


def test_quick_mode_writes_the_whole_report(quick):
    out, result = quick
    for name in ("results.json", "runs.jsonl", "accuracy_macs.png", "digit_share.png", "contribution_maps.png",
                 "convergence.png", "inti_informative.safetensors"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "README.md").read_text()
    assert "**informative**" in text and text.endswith("after\n")
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == len(QUICK_ARMS()) == len((out / "runs.jsonl").read_text().splitlines())
    assert saved["checkpoint_sha256"] and saved["claims"]["s"]["verdict"] == "not estimable"  # one seed


def QUICK_ARMS():
    from inti.experiments.evidence.driver import QUICK_ARMS as names

    return names


def test_a_rerun_resumes_from_the_finished_runs(quick):
    from inti.experiments.evidence.driver import reproduce

    out, result = quick
    before = (out / "runs.jsonl").read_text()
    again = reproduce(out, quick=True, say=lambda *a, **k: None)
    assert (out / "runs.jsonl").read_text() == before  # nothing trained again, nothing appended
    assert again["rows"] == result["rows"]


def test_timing_reads_the_trained_models(quick):
    from inti.experiments.evidence.timing import time_arms

    out, _ = quick
    timed = time_arms(out, rounds=2, quick=True, say=lambda *a, **k: None)
    assert set(QUICK_ARMS()) <= set(timed["by_arm"]) and timed["batch"] == 32
    assert all(t["clips_per_s"] > 0 for t in timed["by_arm"].values())


def test_a_corrupt_run_log_is_named(tmp_path):
    from inti.experiments.evidence.driver import reproduce

    (tmp_path / "runs.jsonl").write_text('{"arm": "naive"\n')
    with pytest.raises(ValueError, match="runs.jsonl line 1"):
        reproduce(tmp_path, quick=True, say=lambda *a, **k: None)


def test_the_full_run_needs_its_settings(tmp_path):
    from inti.experiments.evidence.__main__ import main

    assert main(["--out", str(tmp_path)]) == 2  # no settings.json: one line, exit 2
    for bad in (["--rounds", "0", "--timing-only"], ["--pilot", "--timing-only"]):
        with pytest.raises(SystemExit) as stopped:
            main(bad + ["--out", str(tmp_path)])
        assert stopped.value.code == 2


# ---------------------------------------------------------------------------------------------
# the committed record: pilots, settings, results and the checkpoint that ships

committed = pytest.mark.skipif(not (REPORT / "results.json").exists(), reason="the full results are not committed yet")


@pytest.mark.skipif(not (REPORT / "settings.json").exists(), reason="the pilots are not committed yet")
def test_the_settings_are_what_the_pilots_decide():
    from inti.experiments.evidence import tuning

    pilots = tuning.read(REPORT / "pilots.jsonl")
    settings = json.loads((REPORT / "settings.json").read_text())
    choice = tuning.choose(pilots)
    assert choice["settings"] == settings["settings"] and choice["selection_ft"] == settings["selection_ft"]
    assert json.loads(json.dumps(tuning.plan(pilots, choice))) == settings["plan"]
    assert all(r["measured_on"] == "val" and "test_top1" not in r for r in pilots)  # the pilots never read test
    assert len(settings["plan"]["seeds"]) >= 5


@committed
def test_committed_results_have_every_planned_run_and_verdict():
    result = json.loads((REPORT / "results.json").read_text())
    settings = json.loads((REPORT / "settings.json").read_text())
    have = {(r["task"], r["arm"]): r for r in result["rows"]}
    deciding = rules.deciding_arms()
    for arm, task, seed, recipe in rules.jobs(settings["plan"], settings["selection_ft"]):
        if recipe == "main":
            seeds = have[(task, arm)]["seeds"]
            assert len(seeds) >= (5 if (arm, task) in deciding else rules.REPORTED_SEEDS), (arm, task)
    for claim in "asbcd":
        assert result["claims"][claim]["verdict"] in stats.VERDICTS


@committed
def test_the_shipped_checkpoint_is_the_one_the_committed_run_wrote():
    from inti.assets import trained_weights
    from inti.io.params import load_params

    result = json.loads((REPORT / "results.json").read_text())
    path = trained_weights()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == result["checkpoint_sha256"]
    assert path.stat().st_size <= 1_100_000
    _, cfg = load_params(path)
    assert cfg.schedule == A.INTI_SCHEDULE and cfg.num_classes == 10


@committed
def test_the_shipped_checkpoint_measures_what_the_results_say():
    """Its test top-1 and digit share on the first 256 test clips of the first seed, against the
    whole test set's figures in results.json, within the subset's sampling tolerance (3.5
    standard errors, the finite-population correction applied)."""
    from inti.assets import trained_weights
    from inti.experiments.evidence.run import digit_share
    from inti.io.params import load_params
    from torch_impl import from_ref_params

    result = json.loads((REPORT / "results.json").read_text())
    row = next(r for r in result["rows"] if r["task"] == "informative" and r["arm"] == "inti")
    seed, total, m = row["seeds"][0], result["plan"]["test_clips"], 256
    params, cfg = load_params(trained_weights())
    model = from_ref_params(params, cfg, dtype=torch.float32).eval()
    made = [tasks.task_clip("informative", "test", i, seed) for i in range(m)]
    x = torch.from_numpy(np.stack([tasks.to_input(f) for f, _, _ in made]))
    with torch.no_grad():
        logits, trace = model(x, return_trace=True)
    correct = (logits.argmax(-1).numpy() == np.array([y for _, y, _ in made]))
    shares = digit_share([w.numpy() for w in ref.trace_weights(trace, cfg)], [info for _, _, info in made])
    fpc = math.sqrt(1 - m / total)
    p = row["top1_per_seed"][0]
    assert abs(correct.mean() - p) <= 3.5 * math.sqrt(p * (1 - p) / m) * fpc, (correct.mean(), p)
    share = row["digit_share_per_seed"][0]
    assert abs(shares.mean() - share) <= 3.5 * shares.std(ddof=1) / math.sqrt(m) * fpc, (shares.mean(), share)


@committed
def test_the_readme_states_the_reports_verdicts_word_for_word():
    """The README's "Does it work?" gives each claim's verdict as the report writes it, from the
    committed results, and leaves none out."""
    result = json.loads((REPORT / "results.json").read_text())
    report = (REPORT / "README.md").read_text()
    section = README.split("## Does it work?")[1].split("\n## ")[0]
    stated = re.findall(r"^- (\*\*\(\w\) .*\*\*\.)$", section, flags=re.M)
    expected = [f"**{claim['title']}: {claim['verdict']}**." for key, claim in result["claims"].items()
                if key in rules.CLAIMS]
    assert stated == expected
    assert all(line in report for line in stated)
