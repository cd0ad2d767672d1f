"""Hostile input to the training loop (inti.train.loop, inti.train.checkpoint): bad clips, runs
that would "succeed" on nothing, checkpoints whose training state was tampered with, and
non-finite weights and gradients. Tiny models and synthetic tasks, on CPU.

- a run never succeeds on nothing: past --max-skip-fraction of bad clips it stops, naming the
  first of them; every skip is counted, in metrics.jsonl and per evaluation;
- --resume trusts nothing it reads: every field of the training state gets one clear error
  naming the file and the field, and the checkpoint before it is tried;
- no checkpoint with non-finite weights is ever written, or named as good.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

import ref
import torch_impl
from inti.cli import main
from inti.data.datasets import BadClip, SyntheticVideos
from inti.train import TrainConfig, evaluate, fit
from inti.train import checkpoint as ckpt
from inti.train.loop import TrainingStopped

CFG = ref.preset("nano", image_size=32, patch_size=8, num_classes=10, embed_dim=None, schedule=(2,))
RECIPE = TrainConfig(steps=4, batch_size=4, accum=2, lr=1e-3, warmup_steps=1, eval_every=2, log_every=1)


class Flaky(SyntheticVideos):
    """A synthetic task whose clips in `bad` cannot be read, as a list dataset with --skip-bad
    reports them (a BadClip naming the clip)."""

    def __init__(self, n, bad, **kwargs):
        super().__init__("informative", n, 8, 32, split_seed=1, **kwargs)
        self.bad, self.skip_bad = set(bad), True

    def __getitem__(self, index):
        if index in self.bad:
            return BadClip(index, f"list.txt:{index + 1}: clip{index}.mp4: could not decode video")
        return super().__getitem__(index)


def model(seed=0):
    torch.manual_seed(seed)
    return torch_impl.InTIModel(CFG)


def val(n=8, bad=()):
    return Flaky(n, bad, train=False)


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ---- bad clips: a bound, and every skip counted ---------------------------------------------------

def test_a_run_whose_every_clip_is_bad_stops_naming_them_and_writes_nothing(tmp_path):
    """The bound is checked after every step: the first step (4 clips) is already over it."""
    with pytest.raises(TrainingStopped, match=r"^4 of the 16 training clips are bad \(25\.0%\), over --max-skip-fraction "
                                              r"0\.05; fix or remove them, or raise the bound\. The first: list\.txt:\d+: "
                                              r"clip\d+\.mp4: could not decode video; (list\.txt:\d+: clip\d+\.mp4: could "
                                              r"not decode video; ){2}and 1 more$"):
        fit(model(), Flaky(16, range(16), train=True), val(), RECIPE, out=tmp_path, say=lambda *a: None)
    assert not (tmp_path / "last.safetensors").exists() and not (tmp_path / "checkpoints").exists()


def test_every_skip_is_counted_in_metrics_and_per_evaluation(tmp_path):
    """Each step takes the whole training set (batch 16 of 16 clips), so the one bad clip is
    skipped exactly once a step; each evaluation meets its one bad clip once."""
    recipe = RECIPE.replace(batch_size=16, accum=1, steps=3, eval_every=2, log_every=2)
    history = fit(model(), Flaky(16, [5], train=True), val(12, bad=[3]), recipe, out=tmp_path, say=lambda *a: None,
                  max_skip_fraction=0.1)
    logs = [r for r in records(tmp_path) if "loss" in r]
    assert [(r["step"], r["skipped"], r["skipped_total"], r["bad_clips"]) for r in logs] == [(2, 2, 2, 1), (3, 1, 3, 1)]
    assert [r["eval"]["skipped"] for r in history if "eval" in r] == [1, 1]
    assert all(r["eval"]["clips"] == 11 for r in history if "eval" in r)
    _, state = ckpt.read_checkpoint(tmp_path / "last.safetensors")
    assert state["skipped"] == {"total": 3, "bad": [5]}


def test_a_resumed_run_goes_on_counting_its_skips(tmp_path):
    """Stopped after 2 of 4 steps and resumed: the counts go on from the checkpoint's, as in
    the uninterrupted run (each step skips the one bad clip once)."""
    recipe = RECIPE.replace(batch_size=16, accum=1, steps=4, eval_every=2, log_every=1)
    run = lambda **kw: fit(model(), Flaky(16, [5], train=True), None, recipe, out=tmp_path, say=lambda *a: None,  # noqa: E731
                           max_skip_fraction=0.1, **kw)
    run(stop_after=2)
    history = run(resume=True)
    assert [(r["step"], r["skipped"], r["skipped_total"], r["bad_clips"]) for r in history] == [
        (1, 1, 1, 1), (2, 1, 2, 1), (3, 1, 3, 1), (4, 1, 4, 1)]
    assert ckpt.read_checkpoint(tmp_path / "last.safetensors")[1]["skipped"] == {"total": 4, "bad": [5]}


def test_a_step_of_bad_clips_only_takes_no_optimizer_step(tmp_path):
    """3 of 4 clips bad (allowed by a bound of 0.8), 2 clips a step: a step whose two clips
    are both bad logs no loss and leaves the weights as they were."""
    m, weights = model(), []
    snap = lambda *a: weights.append({k: v.clone() for k, v in m.state_dict().items()})  # noqa: E731
    snap()
    recipe = RECIPE.replace(batch_size=2, accum=1, steps=6, eval_every=0, log_every=1)
    history = fit(m, Flaky(4, [0, 1, 2], train=True), None, recipe, out=None, progress=snap, max_skip_fraction=0.8)
    losses = [r["loss"] for r in history if "step" in r and "eval" not in r]
    empty = [i for i, loss in enumerate(losses) if loss is None]
    assert empty and len(empty) < len(losses)
    for i in empty:
        assert all(torch.equal(weights[i][k], weights[i + 1][k]) for k in weights[i])
    moved = [i for i, loss in enumerate(losses) if loss is not None]
    assert all(not torch.equal(weights[i]["head.weight"], weights[i + 1]["head.weight"]) for i in moved)


def test_an_evaluation_with_too_many_bad_clips_is_an_error():
    with pytest.raises(ValueError, match=r"^evaluation: 2 of the 8 evaluation clips are bad \(25\.0%\), over "
                                         r"--max-skip-fraction 0\.2; .* The first: list\.txt:2: clip1\.mp4"):
        evaluate(model(), val(8, bad=[1, 6]), batch_size=4, max_skip_fraction=0.2)
    assert evaluate(model(), val(8, bad=[1]), batch_size=4, max_skip_fraction=0.2)["skipped"] == 1
    with pytest.raises(ValueError, match="max_skip_fraction must be a number in \\[0, 1\\), got 1"):
        evaluate(model(), val(8), max_skip_fraction=1)


def test_inti_train_on_bad_data_exits_2_with_one_line(tmp_path, capsys):
    from inti.data.synthetic import write_task

    task = tmp_path / "task"
    lists = write_task(task, "motion", {"train": 8, "val": 4}, frames=8, size=32)
    for i in range(8):
        (task / "train" / f"{i:06d}.mkv").write_bytes(b"not a video")
    common = ["train", "--train-list", str(lists["train"]), "--val-list", str(lists["val"]), "--root", str(task),
              "--frames", "8", "--batch-size", "4", "--steps", "2", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a"), "--skip-bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("inti train: error: ") and "training clips are bad" in err[0], err
    assert "train.txt:" in err[0] and "unexpected" not in err[0], err
    assert main([*common, "--out", str(tmp_path / "b"), "--resize", "16"]) == 2  # refused before any clip is read
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resize (16) must be at least the crop size (64)" in err[0], err
    assert main([*common, "--out", str(tmp_path / "c"), "--workers", "2"]) == 2  # a worker's error keeps its context
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{lists['train']}:" in err[0] and ".mkv: could not decode video" in err[0], err


# ---- resume trusts nothing it reads ------------------------------------------------------------------

def tamper(path, change) -> None:
    """Rewrite a checkpoint with `change(tensors, state)` applied (the file stays well-formed)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state = json.loads(meta[ckpt.FORMAT])
    change(tensors, state)
    meta[ckpt.FORMAT] = json.dumps(state)
    save_file(tensors, str(path), metadata=meta)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run stopped after 3 of 4 steps: last.safetensors and checkpoints/step-00000003."""
    out = tmp_path_factory.mktemp("stopped")
    fit(model(), Flaky(8, [], train=True), val(4), RECIPE.replace(eval_every=3), out=out, stop_after=3,
        say=lambda *a: None)
    return out


def resume(out, said=None):
    return fit(model(), Flaky(8, [], train=True), val(4), RECIPE.replace(eval_every=3), out=out, resume=True,
               say=(said.append if said is not None else lambda *a: None))


def set_state(field, value):
    return lambda tensors, state: state.__setitem__(field, value)


def drop_state(field):
    return lambda tensors, state: state.pop(field)


def set_tensor(key, make):
    return lambda tensors, state: tensors.__setitem__(key, make(tensors.get(key)))


def first_key(tensors, prefix, field=""):
    return next(k for k in sorted(tensors) if k.startswith(prefix) and k.endswith(field))


def on_first(prefix, field, make):
    return lambda tensors, state: tensors.__setitem__(first_key(tensors, prefix, field),
                                                      make(tensors[first_key(tensors, prefix, field)]))


TAMPERED = {
    "step -3": (set_state("step", -3), "step must be an integer in [0, 4] (--steps), got -3"),
    "step 10^9": (set_state("step", 10**9), "step must be an integer in [0, 4] (--steps), got 1000000000"),
    "step a string": (set_state("step", "3"), "step must be an integer in [0, 4] (--steps), got '3'"),
    "step missing": (drop_state("step"), "step must be an integer in [0, 4] (--steps), got None"),
    "step true": (set_state("step", True), "got True"),
    "batch past the epoch": (set_state("batch", 9), "batch in [0, 4], got 1 and 9"),
    "epoch negative": (set_state("epoch", -1), "epoch >= 0"),
    "position off by one": (set_state("batch", 1), "(1, 1) do not match step 3: with 4 batches an epoch, 3 steps of 2 take 6 batches, not 5"),
    "best NaN": (set_state("best", math.nan), "best must be -inf or a top-1 in [0, 1], got nan"),
    "best 7": (set_state("best", 7), "got 7"),
    "history a string": (set_state("history", "x"), "history must be a list of at most 2 records a step, got str"),
    "history too long": (set_state("history", [{"step": 1}] * 7), "got list of 7"),
    "history record a list": (set_state("history", [[1, 2]]), "history[0] is not a record the loop writes"),
    "history step past": (set_state("history", [{"step": 9, "loss": 1.0}]), "history[0] is not a record"),
    "history text value": (set_state("history", [{"step": 1, "loss": "low"}]), "history[0] is not a record"),
    "history unknown field": (set_state("history", [{"step": 1, "exec": 1}]), "history[0] is not a record"),
    "history eval of text": (set_state("history", [{"step": 1, "eval": {"top1": "x"}}]), "history[0] is not a record"),
    "history steps go back": (set_state("history", [{"step": 2, "loss": 1.0}, {"step": 1, "loss": 1.0}]),
                              "history[1] is not a record"),
    "skipped malformed": (set_state("skipped", {"total": -1, "bad": []}), "skipped must be {'total': count"),
    "skipped index past": (set_state("skipped", {"total": 1, "bad": [8]}), "distinct clip indices in [0, 8)"),
    "train config a list": (set_state("train_config", [1]), "train_config must be a JSON object, got list"),
    "data missing": (drop_state("data"), "data must be a JSON object, got NoneType"),
    "numpy rng missing": (drop_state("numpy_rng"), "numpy_rng is not a NumPy generator state"),
    "numpy rng short": (lambda t, s: s["numpy_rng"].__setitem__(1, [1, 2]), "numpy_rng is not a NumPy generator state"),
    "numpy rng kind": (lambda t, s: s["numpy_rng"].__setitem__(0, "PCG64"), "numpy_rng is not a NumPy generator state"),
    "numpy rng key too big": (lambda t, s: s["numpy_rng"][1].__setitem__(0, 2**40), "numpy_rng is not"),
    "numpy rng position": (lambda t, s: s["numpy_rng"].__setitem__(2, 10**6), "numpy_rng is not"),
    "numpy rng position past C long": (lambda t, s: s["numpy_rng"].__setitem__(2, 2**70), "numpy_rng is not"),
    "python rng missing": (drop_state("python_rng"), "python_rng is not a Python generator state"),
    "python rng version": (lambda t, s: s["python_rng"].__setitem__(0, 99), "python_rng is not"),
    "python rng short": (lambda t, s: s["python_rng"].__setitem__(1, [1, 2, 3]), "python_rng is not"),
    "python rng words text": (lambda t, s: s["python_rng"][1].__setitem__(0, "x"), "python_rng is not"),
    "python rng gauss NaN": (lambda t, s: s["python_rng"].__setitem__(2, math.nan), "python_rng is not"),
    "torch rng missing": (lambda t, s: t.pop("rng.torch"), "rng.torch must be a torch.uint8 tensor of shape (5056,), got NoneType"),
    "torch rng float": (set_tensor("rng.torch", lambda v: v.float()), "got torch.float32 (5056,)"),
    "torch rng short": (set_tensor("rng.torch", lambda v: v[:100].clone()), "got torch.uint8 (100,)"),
    "torch rng noise": (set_tensor("rng.torch", lambda v: torch.full_like(v, 255)), "rng.torch is not a torch generator state"),
    "weights NaN": (on_first("model.", "", lambda v: v * math.nan), "holds NaN or infinite values"),
    "weights inf": (on_first("model.", "head.weight", lambda v: v + math.inf), "'model.head.weight' holds NaN or infinite"),
    "weight missing": (lambda t, s: t.pop("model.head.weight"), "the weights do not fit the model: missing 1 key(s): head.weight"),
    "weight mis-shaped": (set_tensor("model.head.weight", lambda v: v[:3].clone()), "head.weight: expected (10, 64), got (3, 64)"),
    "an unknown tensor": (set_tensor("evil.payload", lambda v: torch.zeros(3)), "'evil.payload' is not a tensor a training checkpoint holds"),
    "moments NaN": (on_first("optim.", "exp_avg", lambda v: v * math.nan), "holds NaN or infinite values"),
    "second moments negative": (on_first("optim.", "exp_avg_sq", lambda v: -1 - v), "holds negative second moments"),
    "moments mis-shaped": (on_first("optim.", "exp_avg", lambda v: torch.zeros(7)), "has shape (7,), the parameter"),
    "optimizer step count past": (on_first("optim.", ".step", lambda v: v + 100), "must be a whole count of steps in [0, 3]"),
    "optimizer step count fraction": (on_first("optim.", ".step", lambda v: v - 0.5), "must be a whole count of steps"),
    "optimizer unknown field": (set_tensor("optim.head.weight.momentum", lambda v: torch.zeros(10, 64)), "is not optimizer state"),
    "optimizer unknown parameter": (set_tensor("optim.nope.exp_avg", lambda v: torch.zeros(2)), "a parameter this run does not train"),
    "optimizer integer moments": (on_first("optim.", "exp_avg", lambda v: v.long()), "is not optimizer state"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_training_state_gets_one_clear_error_naming_the_file_and_the_field(stopped_run, tmp_path, case):
    change, fragment = TAMPERED[case]
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    for path in ckpt.candidates(out):
        tamper(path, change)
    said = []
    with pytest.raises(ckpt.CheckpointMismatch) as info:
        resume(out, said)
    message = str(info.value)
    assert message.startswith(f"no loadable checkpoint in {str(out)!r}: last.safetensors (training checkpoint ")
    assert "step-00000003.safetensors (training checkpoint " in message and fragment in message, message
    assert len(said) == 2 and all("falling back to the checkpoint before it" in s for s in said)


def test_a_tampered_last_checkpoint_falls_back_to_the_one_before_it(stopped_run, tmp_path):
    """A resumed run from the step file is bitwise the run resumed from an intact folder."""
    intact, out = tmp_path / "intact", tmp_path / "tampered"
    shutil.copytree(stopped_run, intact)
    shutil.copytree(stopped_run, out)
    tamper(out / "last.safetensors", set_state("step", -3))
    said = []
    history = resume(out, said)
    assert any("last.safetensors" in s and "step must be an integer" in s and "falling back" in s for s in said)
    assert any(s.startswith("resumed from") and "step-00000003" in s for s in said)
    def untimed(history):
        return [{k: untimed([v])[0] if isinstance(v, dict) else v for k, v in r.items() if k != "clips_per_s"}
                for r in history]

    assert untimed(history) == untimed(resume(intact))
    a, b = ckpt.read_checkpoint(intact / "last.safetensors")[0], ckpt.read_checkpoint(out / "last.safetensors")[0]
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))


def test_a_changed_config_is_named_and_not_passed_over(stopped_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    with pytest.raises(ckpt.CheckpointMismatch, match=r"changed config: lr: 0\.001 -> 0\.002") as info:
        fit(model(), Flaky(8, [], train=True), val(4), RECIPE.replace(eval_every=3, lr=2e-3), out=out, resume=True,
            say=lambda *a: None)
    assert "no loadable checkpoint" not in str(info.value)


def test_resuming_a_complete_run_says_so_and_a_stop_before_the_checkpoint_is_refused(stopped_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    resume(out)
    said = []
    history = resume(out, said)
    assert any("is complete (4 of 4 steps" in s and "nothing to train" in s for s in said)
    assert [r["step"] for r in history if "eval" in r] == [3, 4]
    out = tmp_path / "stopped"
    shutil.copytree(stopped_run, out)
    with pytest.raises(ValueError, match=r"^--stop-after 2: the run in .* is at step 3 already$"):
        fit(model(), Flaky(8, [], train=True), val(4), RECIPE.replace(eval_every=3), out=out, resume=True,
            stop_after=2, say=lambda *a: None)


# ---- non-finite weights and gradients ----------------------------------------------------------------

def test_non_finite_weights_are_never_written(tmp_path):
    """Weights that turn NaN in step 4 (after the checkpoint of step 2): the checkpoint of
    step 4 is refused, and the stop names the good one of step 2, left as it was."""
    m = model()

    def poison(step, *rest):  # called after the optimizer step, before the evaluation and checkpoint
        if step == 4:
            with torch.no_grad():
                m.head.bias[0] = math.nan

    recipe = RECIPE.replace(eval_every=2, steps=6)
    with pytest.raises(TrainingStopped, match=r"^the weight head\.bias holds NaN or infinite values after step 4; training "
                                              r"stopped without writing a checkpoint, the last good checkpoint is .*last"):
        fit(m, Flaky(8, [], train=True), None, recipe, out=tmp_path, progress=poison, say=lambda *a: None)
    tensors, state = ckpt.read_checkpoint(tmp_path / "last.safetensors")
    assert state["step"] == 2 and all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000002.safetensors"]


def test_a_non_finite_gradient_stops_before_the_optimizer_step(tmp_path):
    m = model()
    m.head.weight.register_hook(lambda grad: grad * math.inf)
    before = m.head.weight.detach().clone()
    with pytest.raises(TrainingStopped, match=r"^the gradient norm is (inf|nan) at step 1; training stopped before the "
                                              r"optimizer step, and no checkpoint was written yet$"):
        fit(m, Flaky(8, [], train=True), None, RECIPE, out=tmp_path, say=lambda *a: None)
    assert torch.equal(m.head.weight.detach(), before)


def test_fit_refuses_bad_arguments():
    for kwargs, fragment in [({"max_skip_fraction": 1.0}, "max_skip_fraction must be a number in [0, 1)"),
                             ({"max_skip_fraction": -0.1}, "max_skip_fraction"), ({"max_skip_fraction": "5%"}, "got '5%'"),
                             ({"stop_after": 0}, "stop_after must be a positive integer, got 0"),
                             ({"stop_after": 2.5}, "got 2.5")]:
        with pytest.raises(ValueError) as info:
            fit(model(), Flaky(8, [], train=True), None, RECIPE, **kwargs)
        assert fragment in str(info.value)


# ---- bad clips under DDP: every rank runs every backward, and all stop together ----------------------

def test_bad_clips_under_ddp_neither_hang_nor_diverge_between_ranks(tmp_path):
    """Two processes, one clip each per step: a rank whose clip is bad runs a blank clip of
    weight 0, so that the gradient all-reduce still meets (without it, the other rank waits
    forever). The skips are counted over both ranks; and a run of bad clips only stops
    (rank 0 names the clips; torchrun ends the other rank), instead of one rank waiting."""
    import os
    import subprocess
    import sys

    from inti.data.synthetic import write_task

    task = tmp_path / "task"
    lists = write_task(task, "motion", {"train": 8, "val": 2}, frames=4, size=32)
    for i in (1, 4, 6):
        (task / "train" / f"{i:06d}.mkv").write_bytes(b"not a video")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "inti", "train",
              "--train-list", str(lists["train"]), "--val-list", str(lists["val"]), "--root", str(task), "--frames", "4",
              "--batch-size", "2", "--steps", "8", "--eval-every", "0", "--log-every", "4", "--skip-bad", "--quiet",
              "--dist-timeout", "60"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launch, "--max-skip-fraction", "0.5", "--out", str(tmp_path / "a")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = [r for r in records(tmp_path / "a") if "loss" in r]
    assert [(r["step"], r["skipped"], r["skipped_total"], r["bad_clips"]) for r in logs] == [(4, 3, 3, 3), (8, 3, 6, 3)]
    for i in range(8):
        (task / "train" / f"{i:06d}.mkv").write_bytes(b"not a video")
    stopped = subprocess.run([*launch, "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=300, env=env)
    assert stopped.returncode != 0
    ours = [line for line in stopped.stderr.splitlines() if line.startswith("inti train: error: ")]
    assert ours and all("2 of the 8 training clips are bad" in line for line in ours), stopped.stderr[-3000:]


# ---- a failed run leaves nothing that blocks its retry --------------------------------------------------

def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    """The evaluation of step 2 fails (after two metrics lines): no checkpoint yet, so the run's
    files and the folder it made go, and the same command then runs. Failing at step 4, after
    the checkpoint of step 2, everything stays, and --resume goes on from it."""
    import inti.train.loop as loop

    real, evaluations = loop.evaluate, []

    def fails_at(step):
        def evaluate(*args, **kwargs):
            evaluations.append(1)
            if len(evaluations) == step // 2:
                raise OSError("the disk went away")
            return real(*args, **kwargs)
        return evaluate

    out = tmp_path / "run"
    argv = ["train", "--synthetic", "motion", "--synthetic-train", "8", "--synthetic-val", "4", "--frames", "4",
            "--batch-size", "4", "--steps", "4", "--eval-every", "2", "--log-every", "1", "--quiet", "--out", str(out)]
    monkeypatch.setattr(loop, "evaluate", fails_at(2))
    assert main(argv) == 2 and "the disk went away" in capsys.readouterr().err
    assert not out.exists()
    evaluations.clear()
    monkeypatch.setattr(loop, "evaluate", fails_at(4))
    assert main(argv) == 2
    assert sorted(p.name for p in out.iterdir()) == ["best.safetensors", "checkpoints", "last.safetensors", "metrics.jsonl"]
    monkeypatch.setattr(loop, "evaluate", real)
    assert main([*argv, "--resume"]) == 0
    assert ckpt.read_checkpoint(out / "last.safetensors")[1]["step"] == 4
