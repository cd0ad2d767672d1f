"""inti.train: the recipe, parameter groups, the schedule, exact resume, checkpoints, bad input,
and the `inti train` / `inti eval` commands. Small models and synthetic tasks, on CPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import ref
import torch_impl
from inti.cli import main
from inti.data.datasets import SyntheticVideos
from inti.io import weights
from inti.io.params import load_params
from inti.train import TrainConfig, evaluate, fit
from inti.train import checkpoint as ckpt
from inti.train.loop import TrainingStopped
from inti.train.optim import lr_at, param_groups
from inti.tolerances import rel_err, tolerance

CFG = ref.preset("nano", image_size=32, patch_size=8, num_classes=10, embed_dim=None, schedule=(2,))
RECIPE = TrainConfig(steps=8, batch_size=8, accum=2, lr=2e-3, warmup_steps=2, eval_every=4, log_every=2)


def data(n=24, frames=8, train=True, seed=1):
    return SyntheticVideos("informative", n, frames, 32, train=train, split_seed=seed, resize=36 if train else None)


def model(seed=0, cfg=CFG):
    torch.manual_seed(seed)
    return torch_impl.InTIModel(cfg)


def run(out, recipe=RECIPE, stop=None, resume=False, workers=0, m=None, **kw):
    m = m if m is not None else model()
    history = fit(m, data(), data(12, train=False, seed=2), recipe, out=out, stop_after=stop, resume=resume,
                  workers=workers, say=lambda *a: None, **kw)
    return m, history


# ---- recipe, groups, schedule -------------------------------------------------------------------

@pytest.mark.parametrize("changes, fragment", [
    ({"steps": 0}, "steps must be a positive integer"), ({"lr": 0.0}, "lr must be a finite number in (0"),
    ({"lr": float("nan")}, "lr must be a finite number"), ({"batch_size": 6, "accum": 4}, "multiple of accum 4"),
    ({"label_smoothing": 1.5}, "label_smoothing"), ({"min_lr": 1.0}, "must not exceed lr"),
    ({"bf16": "yes"}, "bf16 must be True or False"), ({"betas": (0.9, 1.2)}, "betas must be two numbers"),
])
def test_bad_recipes_are_refused(changes, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        RECIPE.replace(**changes)


def test_parameter_groups():
    m = model()
    groups = {g["name"]: g for g in param_groups(m, RECIPE.replace(lr_theta=3.0))}
    names = {n for g in groups.values() for n in g["param_names"]}
    assert names == {n for n, _ in m.named_parameters()}
    assert groups["theta"]["lr_mult"] == 3.0 and groups["theta (no decay)"]["weight_decay"] == 0.0
    no_decay = groups["backbone (no decay)"]["param_names"]
    assert {"pos_embed", "cls_token", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias"} <= set(no_decay)
    assert "blocks.0.attn.qkv.weight" in groups["backbone"]["param_names"]
    assert set(groups["head"]["param_names"]) == {"head.weight"}
    frozen = param_groups(model(), RECIPE.replace(freeze_backbone=True))
    assert {g["group"] for g in frozen} == {"theta", "head"}


def test_the_schedule_warms_up_then_decays_by_cosine():
    r = RECIPE.replace(steps=110, warmup_steps=10, lr=1.0, min_lr=0.1)
    lrs = [lr_at(s, r) for s in range(110)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1)
    assert lrs[60] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 50 / 99)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


# ---- resume, frozen backbone, checkpoints ----------------------------------------------------------

def test_a_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path):
    """2N steps in one go against N steps, a stop, and a resume: mid-epoch (24 clips, 4 per
    micro-batch), with gradient accumulation and two loader workers. Everything is restored
    (weights, AdamW moments and step counts, generators, the position in the epoch), and the
    CPU kernels are deterministic, so the parameters are bitwise equal."""
    whole, history = run(tmp_path / "a", workers=2)
    run(tmp_path / "b", stop=5, workers=2)
    assert (tmp_path / "b" / "last.safetensors").exists()
    resumed, resumed_history = run(tmp_path / "b", resume=True, workers=2)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    steps = lambda h: {r["step"]: (r["loss"], r["lr"]) for r in h if "loss" in r}  # noqa: E731
    assert steps(history) and all(steps(resumed_history)[k] == v for k, v in steps(history).items())


def test_a_frozen_backbone_stays_bitwise_unchanged(tmp_path):
    m = model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    run(tmp_path, recipe=RECIPE.replace(freeze_backbone=True), m=m)
    after = m.state_dict()
    backbone = [k for k in before if not k.startswith(("merges.", "head."))]
    assert all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert not torch.equal(before["merges.0.score.weight"], after["merges.0.score.weight"])


def test_the_newest_corrupt_checkpoint_falls_back_and_says_so(tmp_path):
    run(tmp_path, stop=4)
    run(tmp_path, stop=6, resume=True)
    last = tmp_path / "last.safetensors"
    last.write_bytes(last.read_bytes()[:1000])  # killed mid-write by a non-atomic writer
    said = []
    found = ckpt.latest(tmp_path, log=said.append)
    assert found[2]["step"] == 6 and found[0].name == "step-00000006.safetensors"
    assert said and "corrupt or truncated" in said[0] and "falling back" in said[0]


def test_resuming_with_a_changed_config_names_the_fields(tmp_path):
    run(tmp_path, stop=4)
    with pytest.raises(ckpt.CheckpointMismatch, match=r"changed config: lr: 0\.002 -> 0\.001; steps: 8 -> 9"):
        run(tmp_path, recipe=RECIPE.replace(lr=1e-3, steps=9), resume=True)
    with pytest.raises(ckpt.CheckpointMismatch, match="model config"):
        run(tmp_path, resume=True, m=model(cfg=CFG.replace(schedule=(1,))))


def test_a_checkpoint_for_another_model_names_the_key_and_shapes(tmp_path):
    run(tmp_path, stop=2)
    tensors, _ = ckpt.read_checkpoint(tmp_path / "last.safetensors")
    other = model(cfg=CFG.replace(num_classes=5))
    with pytest.raises(ckpt.CheckpointMismatch, match=r"head\.weight: expected \(5, 64\), got \(10, 64\)"):
        ckpt.load_model(other, tensors, tmp_path / "last.safetensors")


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint", "empty"])
def test_damaged_checkpoints_give_clear_errors(tmp_path, damage):
    run(tmp_path, stop=2)
    path = tmp_path / "last.safetensors"
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "not a checkpoint": b"hello", "empty": b""}[damage])
    with pytest.raises(ValueError, match="last.safetensors"):
        ckpt.read_checkpoint(path)


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    """The head's output turns infinite at step 6 (after the checkpoint of step 4): the run
    stops before the optimizer step, naming the checkpoint it wrote, which is left as it was."""
    m, calls = model(), []

    def overflow(module, inputs, output):
        calls.append(module.training)
        return output * float("inf") if sum(calls) > 10 else output  # 2 micro-batches a step

    m.head.register_forward_hook(overflow)
    with pytest.raises(TrainingStopped, match=r"^the forward gave NaN or infinite values at step 6; training stopped before "
                                              r"the optimizer step, the last good checkpoint is .*last\.safetensors$"):
        run(tmp_path, m=m)
    tensors, state = ckpt.read_checkpoint(tmp_path / "last.safetensors")
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_a_trained_checkpoint_runs_in_the_numpy_spec_with_parity(tmp_path):
    """The model part of a training checkpoint loads as a parameter file (load_params), and
    the spec and torch agree on the trained weights, whose merges are no longer uniform."""
    trained, _ = run(tmp_path)
    params, cfg = load_params(tmp_path / "last.safetensors")
    loaded = weights.load(tmp_path / "last.safetensors")  # the front door reads it through the same owner
    assert loaded.kind == "inti training checkpoint" and loaded.cfg == cfg and loaded.step == 8
    assert all(np.array_equal(loaded.params[k], v) for k, v in params.items())
    assert cfg == CFG and all(np.array_equal(params[k], v.numpy()) for k, v in trained.state_dict().items())
    video = data(1, train=False, seed=9)[0][0].double().numpy()  # (1 view, T, 3, H, W): a batch of one
    logits_ref, trace = ref.forward(params, video, cfg, return_trace=True)
    logits_torch = torch_impl.from_ref_params(params, cfg)(torch.from_numpy(video))
    assert rel_err(logits_torch.detach().numpy(), logits_ref) <= tolerance("float64")
    assert np.ptp(trace["merges.0.weights"]) > 1e-3  # θ learned something: not all 1/2


def test_evaluate_counts_every_clip_and_reports_the_merges():
    metrics = evaluate(model(), data(10, train=False), batch_size=4)
    assert metrics["clips"] == 10 and 0 <= metrics["top1"] <= 1 and metrics["top5"] >= metrics["top1"]
    assert metrics["macs_per_clip"] == ref.count_macs(CFG, 8)["total"]
    assert metrics["merge0_entropy_bits"] == pytest.approx(1.0)  # untrained: every weight is 1/2
    assert metrics["merge0_share_above_0.9"] == 0.0


# ---- the commands ----------------------------------------------------------------------------------

def test_inti_train_then_inti_eval(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--synthetic", "informative", "--synthetic-train", "32", "--synthetic-val", "16", "--steps", "6",
            "--batch-size", "8", "--eval-every", "3", "--out", str(out), "--quiet"]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "eval" in r] == [3, 6]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 2  # the folder holds a run now
    assert "already holds" in capsys.readouterr().err
    assert main(["eval", "--weights", str(out / "best.safetensors"), "--synthetic", "informative",
                 "--synthetic-val", "16", "--views", "2x1"]) == 0
    captured = capsys.readouterr()
    assert "top1" in captured.out and "mean_class_accuracy" in captured.out and "(equal)" in captured.out
    assert "(inti training checkpoint, step 6)" in captured.out and captured.err == ""
    # the old name of --weights still works for one release, and says so in one line
    assert main(["eval", "--checkpoint", str(out / "best.safetensors"), "--synthetic", "informative",
                 "--synthetic-val", "16"]) == 0
    assert capsys.readouterr().err == "inti eval: --checkpoint is now --weights; the old name goes in the next release\n"
    assert main(["demo", "--weights", str(out / "best.safetensors"), "--out", str(tmp_path / "figs"), "--progress", "off"]) == 0
    printed = capsys.readouterr().out  # figure 4 draws the weights given, and says so
    assert "best.safetensors (inti training checkpoint, step 6)" in printed
    assert "fig4_learned.png        what training changed: the model of --weights best.safetensors on this clip" in printed


@pytest.mark.parametrize("argv, fragment", [
    (["--synthetic", "informative", "--frames", "6"], "even number of frames"),
    (["--synthetic", "informative", "--batch-size", "6", "--accum", "4"], "multiple of accum"),
    (["--train-list", "x.txt"], "pass --val-list, --root"),
    (["--synthetic", "informative", "--preset", "nano", "--weights", "w.npz"], "--preset and --weights"),
    (["--synthetic", "informative", "--weights", "missing.safetensors"], "no such weights file"),
    (["--synthetic", "informative", "--resume"], "no checkpoint"),
])
def test_inti_train_argument_errors(tmp_path, capsys, argv, fragment):
    assert main(["train", "--out", str(tmp_path / "o"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_help_documents_every_flag(capsys):
    from inti.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("train", "eval"):
        undocumented = [a.option_strings for a in subparsers[name]._actions
                        if a.option_strings and a.dest != "help" and not (a.help or "").strip()]
        assert not undocumented, (name, undocumented)
        assert main([name, "--help"]) == 0
        assert "--synthetic" in capsys.readouterr().out


def test_python_dash_m_inti_is_the_command():
    result = subprocess.run([sys.executable, "-m", "inti", "train", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--stop-after" in result.stdout and "--resume" in result.stdout


def test_inti_data_writes_a_task_that_inti_train_reads(tmp_path, capsys):
    task = tmp_path / "task"
    assert main(["data", "motion", "--out", str(task), "--train", "8", "--val", "4", "--frames", "4", "--size", "32"]) == 0
    assert (task / "train.txt").read_text().count("\n") == 8 and (task / "classes.txt").read_text().split() == [
        "right", "left", "down", "up"]
    assert main(["train", "--train-list", str(task / "train.txt"), "--val-list", str(task / "val.txt"), "--root", str(task),
                 "--classes", str(task / "classes.txt"), "--frames", "4", "--batch-size", "4", "--steps", "2",
                 "--out", str(tmp_path / "run"), "--quiet", "--no-flip"]) == 0
    assert "final evaluation: clips 4" in capsys.readouterr().out
    assert main(["data", "motion", "--out", str(task)]) == 2  # it holds files now


def test_pretrained_weights_that_miss_a_backbone_key_fail_loudly():
    from inti.train.models import fit_params

    pretrained = ref.init_params(CFG.replace(schedule=(), num_classes=0))
    del pretrained["blocks.1.mlp.fc2.bias"]
    pretrained["pos_embed"] = pretrained["pos_embed"][:-1]
    with pytest.raises(ValueError, match=r"missing 1 key\(s\): blocks\.1\.mlp\.fc2\.bias .*pos_embed: expected \(17, 64\), got \(16, 64\)"):
        fit_params(pretrained, CFG.replace(schedule=(), num_classes=0), CFG, 0, "w.npz")
    whole = ref.init_params(CFG.replace(schedule=(), num_classes=0), seed=4)
    fitted = fit_params(whole, CFG.replace(schedule=(), num_classes=0), CFG, 0, "w.npz")
    assert all(np.array_equal(fitted[k], v) for k, v in whole.items())  # the backbone is the file's
    assert not np.any(fitted["merges.0.score.weight"])  # θ is new, with its zero score layer


def test_a_bf16_autocast_step_runs(tmp_path):
    _, history = run(tmp_path, recipe=RECIPE.replace(steps=2, bf16=True, eval_every=0))
    assert all(math.isfinite(r["loss"]) for r in history if "loss" in r)


def test_temporal_modules_form_their_own_group_and_train_with_a_frozen_backbone(tmp_path, capsys):
    from ref.config import with_temporal

    cfg = with_temporal(CFG, "st_adapter")
    groups = {g["group"] for g in param_groups(model(cfg=cfg), RECIPE.replace(freeze_backbone=True))}
    assert groups == {"theta", "head", "temporal"}
    assert main(["train", "--synthetic", "motion", "--synthetic-train", "16", "--synthetic-val", "8", "--steps", "2",
                 "--batch-size", "8", "--temporal", "st_adapter", "--freeze-backbone", "--frames", "8",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    params, trained_cfg = load_params(tmp_path / "run" / "last.safetensors")
    assert trained_cfg.temporal == "st_adapter" and any("temporal" in k for k in params)
    assert main(["train", "--synthetic", "motion", "--temporal", "lstm", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "unknown temporal module setting 'lstm'" in capsys.readouterr().err
