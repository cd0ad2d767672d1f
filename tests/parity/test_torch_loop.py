"""One forward loop in torch (torch_impl/model.py): `InTIModel.forward_features`, with the hooks
`block_step` and `merge_step`, is the only loop over blocks, and its users come through it.

- The ONNX export wrapper (`inti.export.ExportModule`) and ToMe (`ToMeModel`) run the shared
  loop once per call and its steps once per block and merge (hook counters); the wrapper runs
  a model's overridden merge step, so it has no loop of its own.
- No other function in torch_impl or inti carries tokens through a loop over blocks (read off
  the source), but inti.patch's one loop over a host model's own blocks.
- The hooks serve their users: a merge step that keeps the first frame of every pair (a
  hard-selection baseline) gives the image model on every 2^|S|-th frame, by ref; a block step
  under activation checkpointing gives the same gradients, each block running again in the
  backward.
- torch's traces carry exactly `ref.trace_keys` / `ref.tome_trace_keys`.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.checkpoint import checkpoint

import ref
import torch_impl
from inti.export import ExportModule
from ref.model import merge_key
from strategies import nano_case
from tolerances import assert_close
from torch_impl.model import InTIModel
from torch_impl.tome import ToMeModel, tome_from_ref_params

ROOT = Path(__file__).resolve().parents[2]
NANO = ref.preset("nano")  # depth 4, S = (1, 2)


@pytest.fixture()
def calls(monkeypatch):
    """Counts of InTIModel.forward_features, block_step and merge_step calls (any subclass that
    reaches them through super() or inherits them counts too)."""
    counts = Counter()
    for name in ("forward_features", "block_step", "merge_step"):
        original = getattr(InTIModel, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(InTIModel, name, counted)
    return counts


def nano_model(cls=InTIModel, cfg=NANO, **kwargs):
    params = ref.params.randomize_scores(ref.init_params(cfg, seed=0), cfg)
    return params, torch_impl.from_ref_params(params, cfg, build=cls, **kwargs).eval()


# ---- the users come through the one loop ------------------------------------------------------

def test_the_export_wrapper_runs_the_models_loop(calls):
    _, model = nano_model()
    video = torch.from_numpy(nano_case(frames=8).video)
    with torch.no_grad():
        logits, *weights = ExportModule(model, trace=True)(video)
        assert dict(calls) == {"forward_features": 1, "block_step": NANO.depth, "merge_step": len(NANO.schedule)}
        expected, trace = model(video, return_trace=True)
    assert torch.equal(logits, expected)
    assert all(torch.equal(a, trace[merge_key(j, "weights")]) for j, a in enumerate(weights))


class KeepFirst(InTIModel):
    """A hard-selection baseline: at each of the schedule's points, keep frame 2p of pair p."""

    def merge_step(self, j, x, trace):
        y = x[:, 0::2]  # (b, t/2, N, C)
        if trace is not None:
            trace[merge_key(j, "tokens")] = y
        return y


def test_a_merge_step_changes_the_model_and_its_export_alike():
    """KeepFirst keeps frames 0, 4, ... of 8 after two merges; the blocks never mix frames, so
    it is the image model on video[:, ::4] (ref, S = ()). The export wrapper runs it too."""
    params, model = nano_model(KeepFirst)
    video = nano_case(frames=8, batch=2).video
    expected = ref.forward(ref.backbone(params), video[:, ::4], NANO.replace(schedule=()))
    with torch.no_grad():
        logits, trace = model(torch.from_numpy(video), return_trace=True)
        exported = ExportModule(model)(torch.from_numpy(video))
    assert_close(logits, expected, "float64", name="KeepFirst's logits against the image model on every 4th frame")
    assert torch.equal(exported, logits)
    assert [k for k in trace if k.startswith("merges.")] == ["merges.0.tokens", "merges.1.tokens"]


def test_tome_runs_the_shared_loop_with_its_own_block_step(calls):
    cfg = NANO.replace(schedule=())
    params = ref.init_params(cfg, seed=0)
    r = (3, 0, 2, 1)
    model = tome_from_ref_params(params, cfg, r).eval()
    video = nano_case(frames=4).video
    with torch.no_grad():
        logits, trace = model(torch.from_numpy(video), return_trace=True)
    # one loop (InTIModel's, reached through super()), ToMe's block_step, no merge step
    assert calls["forward_features"] == 1 and calls["merge_step"] == 0
    assert calls["block_step"] == 0, "ToMe's block_step replaces InTIModel's: it must not call it"
    assert list(trace) == ref.tome_trace_keys(cfg, r)
    assert_close(logits, ref.tome_forward(params, video, cfg, r), "float64", name="ToMe's logits")


def test_tome_calls_its_block_step_once_per_block(monkeypatch):
    seen = []
    original = ToMeModel.block_step

    def counted(self, i, x, trace):
        seen.append(i)
        return original(self, i, x, trace)

    monkeypatch.setattr(ToMeModel, "block_step", counted)
    cfg = NANO.replace(schedule=())
    model = tome_from_ref_params(ref.init_params(cfg), cfg, (1, 1, 1, 1))
    with torch.no_grad():
        model(torch.from_numpy(nano_case(frames=2).video))
    assert seen == [0, 1, 2, 3] and model._size is None  # no tensor held between calls


def threads_through(loop: ast.AST) -> bool:
    """Whether a loop carries a value from block to block: `x = f(..., x, ...)` in its body."""
    for node in ast.walk(loop):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.value)):
                return True
    return False


def loops_over_blocks() -> list[str]:
    """Every function in torch_impl/ and inti/ with a `for` over something that names ``blocks``
    and carries the tokens through it (x = step(x)): "path:Class.function". Loops that only set
    an attribute on each block (the attention path, drop-path rates) are not forward loops."""
    found = []
    for path in sorted([*(ROOT / "torch_impl").rglob("*.py"), *(ROOT / "inti").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        for cls in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]:
            for fn in cls.body:
                if not isinstance(fn, ast.FunctionDef):
                    continue
                loops = [n for n in ast.walk(fn) if isinstance(n, ast.For) and "blocks" in ast.unparse(n.iter)]
                if any(threads_through(loop) for loop in loops):
                    owner = f"{cls.name}." if isinstance(cls, ast.ClassDef) else ""
                    found.append(f"{path.relative_to(ROOT)}:{owner}{fn.name}")
    return found


# The evidence experiment's baselines run the blocks their own way: an arm enters the stack at a
# cached block output and selects, drops or merges after any block, and RLT masks dropped tokens
# inside attention. They are measured against InTIModel, and tests/tools/test_evidence.py holds
# an InTI arm on pixels equal to InTIModel; the library itself keeps one loop.
BASELINES = ["inti/experiments/evidence/models.py:ArmModel.frames",
             "inti/experiments/evidence/models.py:RunLengthModel.forward"]


def test_there_is_one_loop_over_blocks():
    """One loop over our blocks, and one over a host library's blocks (inti.patch: the host's own
    blocks, with Φ between them at the schedule); every other user overrides a step or calls
    `forward_features`, the experiment's baselines aside."""
    assert loops_over_blocks() == [*BASELINES, "inti/patch/common.py:run_blocks",
                                   "torch_impl/model.py:InTIModel.forward_features"]


# ---- a block step: activation checkpointing ----------------------------------------------------

class Checkpointed(InTIModel):
    def block_step(self, i, x, trace):
        return checkpoint(self.blocks[i], x, use_reentrant=False)


def test_a_checkpointed_block_step_gives_the_same_gradients():
    params, plain = nano_model()
    _, ckpt = nano_model(Checkpointed)
    video = torch.from_numpy(nano_case(frames=4, batch=2).video)
    runs = Counter()
    for blk in ckpt.blocks:
        blk.register_forward_pre_hook(lambda *_: runs.update(["block"]))  # the recomputation may stop early
    grads = []
    for model in (plain, ckpt):
        model.train()
        model(video).square().sum().backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    assert runs["block"] == 2 * NANO.depth, "each checkpointed block runs once forward, once again in the backward"
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        assert_close(grads[1][name], g, "float64", name=f"{name}.grad")


# ---- torch's traces carry the helper's keys --------------------------------------------------

@pytest.mark.parametrize("changes", [{}, {"schedule": ()}, {"schedule": (4,)},
                                     {"temporal": "st_adapter", "temporal_blocks": (1, 3)},
                                     {"temporal": "aim", "temporal_blocks": (1, 3), "temporal_frames": 4}])
def test_torch_makes_exactly_the_helpers_keys(changes):
    case = nano_case(frames=4, **changes)
    model = torch_impl.from_ref_params(case.params(), case.cfg).eval()
    with torch.no_grad():
        _, trace = model(torch.from_numpy(case.video), return_trace=True)
    assert list(trace) == ref.trace_keys(case.cfg)
