"""torch_impl's temporal modules (spec/00-method.md §12) against the NumPy spec: parity in every
dtype on random configs and real clips, gradients, FlopCounterMode against the cost model,
initialization, checkpoint conversion, and the errors.

Every parity test builds the torch model from the very dict that ref runs, with the
zero-initialized score layers and module parameters overwritten by random values
(``case.params(random_scores=True, random_modules=True)``), so that every module acts.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

import ref
import torch_impl
import torch_impl.model
from inti.io.layouts import convert_state_dict, external_key, init_predictor, to_layout
from inti.tolerances import compare_traces
from ref.config import with_temporal
from ref.cost import temporal_macs
from ref.params import is_temporal_key, randomize_scores, randomize_temporal, without_temporal
from strategies import MODULES, cases, configs, nano_case
from test_torch_flops import _shape_only_check, counts_by_module
from test_torch_parity import TORCH_DTYPES, _readout_of_several, run_ref, run_torch
from tolerances import assert_close, assert_trace_close
from torch_impl.block import AIMBlock, STAdapterBlock
from torch_impl.cost import count_flops
from torch_impl.temporal import STAdapter

TEMPORAL_CASES = cases(configs(temporals=MODULES))
FLOAT32_CASES = cases(configs(temporals=MODULES, min_width=4).map(_readout_of_several))
HALF_CASES = cases(configs(temporals=MODULES, min_width=8).map(_readout_of_several))
LARGEST: dict[str, float] = {}


def st_nano(frames=8, batch=1, **changes):
    return nano_case(frames=frames, batch=batch, **({"temporal": "st_adapter"} | changes))


def aim_nano(frames=8, batch=1, **changes):
    return nano_case(frames=frames, batch=batch, **({"temporal": "aim", "temporal_frames": frames} | changes))


def random_params(case) -> dict:
    return case.params(random_scores=True, random_modules=True)


READOUT_CONDITION = 4.0  # the most a half-precision case's readout may magnify a relative error


def readout_condition(params: dict, trace: dict) -> float:
    """How much the readout's linear maps can magnify a relative error of the pooled tokens on
    this clip: the product, over the projection (pooled -> features) and the head (features ->
    logits) where the config has them, of ||W||_2 ||input|| / ||output|| (largest over the
    batch). As with a readout of one number (`_readout_of_several`), outputs that cancel make
    it unbounded."""
    condition = 1.0
    for weight, source, output in (("proj.weight", "pooled", "features"), ("head.weight", "features", "logits")):
        if weight in params:
            w = np.linalg.norm(np.asarray(params[weight], np.float64), 2)
            x, y = (np.asarray(trace[k], np.float64) for k in (source, output))
            condition *= float(np.max(w * np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)))
    return condition


def parity(case, dtype: str, **model_kwargs):
    params = random_params(case)
    _, expected = run_ref(params, case.video, case.cfg, dtype)
    if dtype in ("bfloat16", "float16"):  # half precision's features are off by up to ~5%
        assume(readout_condition(params, expected) <= READOUT_CONDITION)
    logits, trace = run_torch(params, case.video, case.cfg, dtype, **model_kwargs)
    assert logits.dtype == TORCH_DTYPES[dtype] and list(trace) == list(expected)
    rows = compare_traces({k: torch_impl.to_numpy(v, np.float64) for k, v in trace.items()}, expected, dtype)
    LARGEST[dtype] = max(LARGEST.get(dtype, 0.0), max(r.rel_err for r in rows))
    assert_trace_close(trace, expected, dtype)


@pytest.fixture(scope="module", autouse=True)
def report_largest():
    yield
    if LARGEST:
        print("\nlargest relative error of torch against ref (float64) with temporal modules: "
              + ", ".join(f"{k} {v:.3g}" for k, v in sorted(LARGEST.items())))


# ---- parity -----------------------------------------------------------------------------------

@given(case=TEMPORAL_CASES)
@example(case=st_nano(batch=2, temporal_placement=("attn", "mlp")))
@example(case=aim_nano(batch=2, weight_granularity="channel"))
@example(case=st_nano(frames=4, temporal_blocks=(3, 4)))  # one frame left at blocks 3 and 4
def test_float64_trace_matches_ref(case):
    parity(case, "float64")


@given(case=TEMPORAL_CASES)
@example(case=aim_nano())
def test_float64_explicit_attention_matches_ref(case):
    parity(case, "float64", attn_path="explicit")


@given(case=FLOAT32_CASES)
@example(case=st_nano(temporal_placement=("attn", "mlp")))
@example(case=aim_nano())
def test_float32_trace_matches_ref(case):
    parity(case, "float32")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@given(case=HALF_CASES)
@example(case=st_nano(temporal_placement=("attn", "mlp")))
@example(case=aim_nano())
def test_half_precision_trace_matches_ref(dtype, case):
    parity(case, dtype)


@functools.lru_cache(maxsize=None)
def _clip(name: str) -> np.ndarray:
    from inti.io.clips import load_clip

    try:
        return load_clip(name, frames=8, size=64)
    except (FileNotFoundError, ImportError) as e:
        pytest.skip(f"bundled clip {name} unavailable: {e}")


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("module", ["st_adapter_24", "aim"])
@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4"])
def test_real_clip_parity(name, module, dtype):
    """Real clips (8 frames, 64 px) through nano with modules in every block."""
    changes = {"temporal_placement": ("attn", "mlp")} if module.startswith("st") else {}
    cfg = with_temporal(ref.preset("nano"), module.removesuffix("_24"), 8).replace(**changes)
    params = randomize_temporal(randomize_scores(ref.init_params(cfg, seed=0), cfg, seed=0), cfg, seed=0)
    video = _clip(name)[None].astype(np.float64)
    _, expected = run_ref(params, video, cfg, dtype)
    _, trace = run_torch(params, video, cfg, dtype)
    rows = compare_traces({k: torch_impl.to_numpy(v, np.float64) for k, v in trace.items()}, expected, dtype)
    print(f"\n{name} nano + {module} {dtype}: largest relative error {max(r.rel_err for r in rows):.3g}")
    assert_trace_close(trace, expected, dtype)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("make", [st_nano, aim_nano])
def test_cuda_matches_ref(make, dtype):
    case = make(batch=2, temporal_placement=("attn", "mlp")) if make is st_nano else make(batch=2)
    params = random_params(case)
    _, expected = run_ref(params, case.video, case.cfg, dtype)
    model = torch_impl.from_ref_params(params, case.cfg, TORCH_DTYPES[dtype]).cuda().eval()
    with torch.no_grad():
        _, trace = model(torch.from_numpy(case.video).to("cuda", TORCH_DTYPES[dtype]), return_trace=True)
    assert trace["logits"].is_cuda
    assert_trace_close(trace, expected, dtype)


# ---- initialization ---------------------------------------------------------------------------

@given(case=TEMPORAL_CASES)
@example(case=st_nano(temporal_placement=("attn", "mlp")))
@example(case=aim_nano())
def test_at_init_the_torch_model_is_the_image_model(case):
    """§12.4, 1, in torch float64: the modules at their initial values add exactly nothing."""
    params = case.params(random_scores=True)
    video = torch.from_numpy(case.video)
    with torch.no_grad():
        _, with_modules = torch_impl.from_ref_params(params, case.cfg)(video, return_trace=True)
        _, image = torch_impl.from_ref_params(without_temporal(params), case.cfg.replace(temporal="none"))(video, return_trace=True)
    for key in image:
        torch.testing.assert_close(with_modules[key], image[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("make", [st_nano, aim_nano])
def test_a_fresh_torch_model_starts_at_the_init_rule(make):
    """InTIModel(cfg) itself zeroes what ref.init_params zeroes, so step 0 is the image model."""
    cfg = make(temporal_placement=("attn", "mlp")).cfg if make is st_nano else make().cfg
    state = torch_impl.InTIModel(cfg).state_dict()
    reference = ref.init_params(cfg)
    for key, value in state.items():
        if is_temporal_key(key):
            assert bool((value == 0).all()) == (not np.any(reference[key])), key


def test_block_classes_and_identity_placement():
    cfg = ref.preset("nano", temporal="st_adapter", temporal_blocks=(2,), temporal_placement=("mlp",))
    model = torch_impl.InTIModel(cfg)
    assert [type(b).__name__ for b in model.blocks] == ["Block", "STAdapterBlock", "Block", "Block"]
    assert isinstance(model.blocks[1].temporal["attn"], torch.nn.Identity)
    assert isinstance(model.blocks[1].temporal["mlp"], STAdapter)
    assert isinstance(model.temporal_embed, torch.nn.Identity)
    aim = torch_impl.InTIModel(ref.preset("nano", temporal="aim", temporal_frames=4))
    assert all(isinstance(b, AIMBlock) for b in aim.blocks) and tuple(aim.temporal_embed.weight.shape) == (4, 64)
    assert set(model.state_dict()) == set(ref.param_shapes(cfg))


# ---- gradients --------------------------------------------------------------------------------

TINY = ref.ModelConfig(image_size=4, patch_size=2, width=4, depth=2, heads=2, schedule=(1,), embed_dim=None,
                       num_classes=3, reduction=2, temporal_width=2)


@pytest.mark.parametrize("changes", [
    {"temporal": "st_adapter", "temporal_placement": ("attn", "mlp")},
    {"temporal": "aim", "temporal_frames": 4, "temporal_scale": 1.0},
])
def test_block_gradcheck(changes):
    """d(block output) / d(input tokens and every parameter of the block and its module)."""
    cfg = TINY.replace(**changes)
    params = randomize_temporal(ref.init_params(cfg, seed=2), cfg, seed=2)
    blk = (STAdapterBlock if cfg.temporal == "st_adapter" else AIMBlock)(cfg).double()
    values = {k.removeprefix("blocks.0."): torch.tensor(v, requires_grad=True) for k, v in params.items() if k.startswith("blocks.0.")}
    blk.load_state_dict(values)
    assert any(k.startswith("temporal.") for k in values)
    names = list(values)
    x = torch.randn(1, 4, cfg.num_tokens, cfg.width, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *v: functional_call(blk, dict(zip(names, v)), (x,)), (x, *values.values()), fast_mode=True)


@pytest.mark.parametrize("changes", [
    {"temporal": "st_adapter", "temporal_placement": ("attn", "mlp")},
    {"temporal": "aim", "temporal_frames": 4},
])
def test_tiny_model_gradcheck_in_the_video_and_the_temporal_parameters(changes):
    cfg = TINY.replace(**changes)
    params = randomize_temporal(randomize_scores(ref.init_params(cfg, seed=1), cfg, seed=1), cfg, seed=1)
    model = torch_impl.from_ref_params(params, cfg, torch.float64)
    temporal = {k: torch.tensor(v, requires_grad=True) for k, v in params.items() if is_temporal_key(k)}
    names = list(temporal)
    video = torch.randn(1, 4, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, *t: functional_call(model, dict(zip(names, t)), (v,)), (video, *temporal.values()),
                                    fast_mode=True)


@pytest.mark.parametrize("changes", [{"temporal": "st_adapter"}, {"temporal": "aim", "temporal_frames": 4}])
def test_every_temporal_parameter_gets_a_gradient_at_init(changes):
    """From zero init, one backward reaches the module parameters that must move first, so
    training can start: ST-Adapter's conv and its output bias (fc2's weight sees u = 0 and
    follows a step later), AIM's output layers, and the temporal embedding."""
    cfg = TINY.replace(**changes)
    model = torch_impl.from_ref_params(ref.init_params(cfg, seed=0), cfg, torch.float64)
    video = torch.randn(2, 4, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model(video).square().sum().backward()
    grads = {k: p.grad for k, p in model.named_parameters() if is_temporal_key(k)}
    moving = [k for k, g in grads.items() if g is not None and bool(g.abs().sum() > 0)]
    first = ("conv.weight", "conv.bias", "fc2.bias") + (("fc2.weight",) if cfg.temporal == "aim" else ())
    expected = [k for k in grads if k.endswith(first) or k == "temporal_embed.weight"]
    assert set(expected) <= set(moving), sorted(set(expected) - set(moving))


# ---- cost -------------------------------------------------------------------------------------

FEWER = settings(max_examples=min(15, settings.default.max_examples))


def assert_module_counts(cfg, counts, batch, frames):
    macs = ref.count_macs(cfg, frames, batch)
    assert counts["Global"] == 2 * macs["matmul"], (counts["Global"], 2 * macs["matmul"])
    for i, (t, block) in enumerate(macs["per_block"]):
        parts = temporal_macs(cfg, t) if i + 1 in cfg.module_blocks else {}
        assert counts.get(f"InTIModel.blocks.{i}", 0) == 2 * (block + batch * sum(parts.values())), f"block {i}"
        for part, m in parts.items():
            if part != "temporal_attention":  # the block's own attention module runs it
                assert counts.get(f"InTIModel.blocks.{i}.temporal.{part}", 0) == 2 * batch * m, f"block {i}, {part}"


@FEWER
@given(case=TEMPORAL_CASES)
@example(case=st_nano(batch=2, temporal_placement=("attn", "mlp")))
@example(case=aim_nano(batch=2))
def test_flop_counter_sees_exactly_the_cost_model(case):
    model = torch_impl.from_ref_params(random_params(case), case.cfg, torch.float32).eval()
    batch, frames = case.video.shape[:2]
    video = torch.from_numpy(case.video).float()
    assert count_flops(model, video)["total"] == 2 * ref.count_macs(case.cfg, frames, batch)["matmul"]
    assert_module_counts(case.cfg, counts_by_module(model, video), batch, frames)


@pytest.mark.parametrize("preset, module, schedule, frames", [
    ("vit_b16", "st_adapter_12x384", (3,), 8), ("vit_b16", "st_adapter_24x384", (3,), 16),
    ("vit_b16", "aim", (3,), 8), ("vit_b16", "aim", (3,), 16), ("vit_l14", "st_adapter_24x384", (6,), 16),
    ("vit_l14", "aim", (6,), 16),
])
def test_full_size_models_on_meta(monkeypatch, preset, module, schedule, frames):
    """The paper's frame counts at full size, naive + module and InTI + module, counted on the meta
    device (shapes only): FlopCounterMode equals 2 x ref's matmul MACs exactly, part by part."""
    monkeypatch.setattr(torch_impl.model, "check_video", _shape_only_check)
    counted = {}
    for s in (schedule, ()):
        cfg = with_temporal(ref.preset(preset, schedule=s), module, frames)
        with torch.device("meta"):
            model = torch_impl.InTIModel(cfg)
            video = torch.empty(1, frames, 3, cfg.image_size, cfg.image_size)
        counted[s] = counts_by_module(model, video)
        assert_module_counts(cfg, counted[s], 1, frames)
    red = ref.reduction(with_temporal(ref.preset(preset, schedule=schedule), module, frames), frames)
    print(f"\n{preset} + {module} S={schedule} T={frames}: InTI + module {counted[schedule]['Global']:,} FLOPs, naive + module "
          f"{counted[()]['Global']:,}; reduction: blocks {red['blocks']:.4%}, modules {red['temporal']:.4%}, total {red['total']:.4%}")


def test_module_flops_scale_with_the_frames_left():
    """ST-Adapter before attention in every block of nano, S = (1, 2), 8 frames: the counter
    sees each module at 8, 4, 2, 2 frames, exactly proportional."""
    case = st_nano()
    model = torch_impl.from_ref_params(random_params(case), case.cfg, torch.float32).eval()
    counts = counts_by_module(model, torch.from_numpy(case.video).float())
    per = [counts[f"InTIModel.blocks.{i}.temporal.attn"] for i in range(4)]
    assert per[0] == 2 * per[1] == 4 * per[2] == 4 * per[3] > 0


# ---- pretrained backbones with new modules -----------------------------------------------------

@pytest.mark.parametrize("layout", ["timm", "clip"])
@pytest.mark.parametrize("changes", [
    {"temporal": "st_adapter", "temporal_placement": ("attn", "mlp"), "temporal_width": 16},
    {"temporal": "aim", "temporal_frames": 4, "temporal_blocks": (2, 3)},
])
def test_converted_checkpoints_get_fresh_modules_by_the_init_rule(layout, changes):
    image_cfg = ref.preset("nano", schedule=(), ln_eps=1e-5, activation="gelu" if layout == "timm" else "quick_gelu",
                           embed_dim=None if layout == "timm" else 32, num_classes=10 if layout == "timm" else 0,
                           patch_bias=layout == "timm", heads=1)
    image = ref.init_params(image_cfg, seed=4)
    sd = to_layout(image, image_cfg, layout)
    params, cfg = convert_state_dict(sd, schedule=(1, 2), layout=layout, heads=1, ln_eps=1e-5, seed=7, **changes)
    assert cfg.temporal == changes["temporal"] and cfg.module_blocks
    ref.check_params(params, cfg)
    fresh = init_predictor(cfg, seed=7)
    assert all(np.array_equal(params[k], v) for k, v in fresh.items())  # predictors as before
    expected = ref.init_params(cfg, seed=7, prefix=ref.params.temporal_prefixes(cfg))
    assert expected and all(np.array_equal(params[k], v) for k, v in expected.items())
    # before training, the converted model with modules is InTI on the image checkpoint, exactly
    video = np.random.default_rng(0).standard_normal((1, 4, 3, 64, 64))
    with_modules = ref.forward(params, video, cfg)
    plain = ref.forward(without_temporal(params), video, cfg.replace(temporal="none"))
    np.testing.assert_array_equal(with_modules, plain)
    # exporting leaves the modules out, as it leaves θ out
    assert to_layout(params, cfg, layout).keys() == sd.keys()
    with pytest.raises(KeyError, match=r"is a temporal module"):
        external_key(next(k for k in params if is_temporal_key(k)), layout)
    broken = {k: v for k, v in params.items() if not k.endswith("temporal.s_adapter.fc2.bias")
              and not k.endswith("temporal.attn.conv.weight")}
    with pytest.raises(ValueError, match=r"missing \d+ key\(s\): blocks\.\d\.temporal\."):
        torch_impl.from_ref_params(broken, cfg)


# ---- errors -----------------------------------------------------------------------------------

def test_aim_refuses_another_frame_count_in_torch_as_in_ref():
    case = aim_nano()
    model = torch_impl.from_ref_params(case.params(), case.cfg)
    video = np.zeros((1, 4, 3, 64, 64))
    with pytest.raises(ValueError) as in_ref:
        ref.forward(case.params(), video, case.cfg)
    with pytest.raises(ValueError) as in_torch:
        model(torch.from_numpy(video))
    assert str(in_torch.value) == str(in_ref.value)
    assert "exactly 8 input frames (temporal_frames), got 4" in str(in_ref.value)
    with pytest.raises(ValueError, match=r"exactly 8 input frames \(temporal_frames\), got 16"):
        torch_impl.InTIModel(case.cfg, frames=16)


def test_loading_mismatched_module_parameters_fails_loudly():
    case = st_nano()
    params = case.params()
    with pytest.raises(ValueError, match=r"wrong shape: .*blocks\.0\.temporal\.attn\.conv\.weight: expected \(8, 1, 3, 1, 1\), got \(32, 1, 3, 1, 1\)"):
        torch_impl.from_ref_params(params, case.cfg.replace(temporal_width=8))
    with pytest.raises(ValueError, match=r"unexpected 24 key\(s\)"):
        torch_impl.from_ref_params(params, case.cfg.replace(temporal="none"))
