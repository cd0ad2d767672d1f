"""`inti.patch.timm`: InTI in place on a timm VisionTransformer (inti/patch/timm.py).

The models are timm's own `VisionTransformer`, built small at random (nothing downloaded) and
filled by `patching.randomize`. The patched model must equal torch_impl's `InTIModel` built from
the converted weights (`inti.io.pretrained.from_timm`), in float64, on random clips and on a
bundled real one, with and without merges; it must count the MACs of ref's cost model, train
(gradients, the user's optimizer, DDP), compile, save and load, and undo to the very model it was.
"""

from __future__ import annotations

import copy

import pytest
import torch

import inti.patch
from inti.io.clips import load_clip, to_tensor
from inti.io.pretrained import from_timm
from patching import (
    Host, assert_checkpointed_training_keeps_the_merges, assert_compiles, assert_ddp_step, assert_flops, assert_gradients_reach_theta_and_backbone,
    assert_merges_act, assert_optimizer_step_moves_both, assert_patch_parity, assert_state_dict_round_trip,
    frames_refused, numpy_state, randomize, randomize_scores, same_state, video,
)

timm = pytest.importorskip("timm")
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

BACKBONE = "blocks.0.attn.qkv.weight"


def make(seed: int = 0, **kwargs) -> VisionTransformer:
    """A 4-block timm ViT at 32 px, patch 8 (a 4 x 4 grid), width 48, 3 heads, 10 classes, float64."""
    args = dict(img_size=32, patch_size=8, embed_dim=48, depth=4, num_heads=3, num_classes=10) | kwargs
    return randomize(VisionTransformer(**args).double(), seed)


def host(schedule, pre_logits: bool = False, **kwargs) -> Host:
    """A patched timm ViT and torch_impl's model from a copy of its weights taken before the patch."""
    model = make(**kwargs)
    converted = from_timm(copy.deepcopy(model), schedule=schedule)
    inti.patch.timm(model, schedule=schedule)

    def output(clip, model=model):
        return model.forward_head(model.forward_features(clip), pre_logits=True) if pre_logits else model(clip)

    return Host(model, model, "", output, converted)


@pytest.mark.parametrize("schedule", [(), (2,), (1, 3)], ids=["naive", "one merge", "two merges"])
def test_equals_torch_impl_in_float64_on_random_clips(schedule):
    h = host(schedule)
    if schedule:
        randomize_scores(h)
        assert_merges_act(h, video(h, frames=4))
    assert_patch_parity(h, video(h, frames=4), f"timm, schedule {schedule}")


def test_naive_adaptation_is_the_mean_of_timms_per_frame_logits():
    """schedule=() on T frames: timm's own image forward per frame, averaged (spec/00-method.md §2.5),
    computed by an unpatched copy, so the expectation comes from timm, not from the patch."""
    model = make()
    image_model = copy.deepcopy(model)
    inti.patch.timm(model, schedule=())
    clip = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = image_model(clip.flatten(0, 1)).unflatten(0, (2, 3)).mean(dim=1)
        torch.testing.assert_close(model(clip), expected, rtol=1e-12, atol=1e-12)


def test_pre_logits_and_features_per_clip():
    h = host((2,), pre_logits=True)
    randomize_scores(h)
    clip = video(h, frames=4)
    with torch.no_grad():
        tokens = h.model.forward_features(clip)
    assert tokens.shape == (2, 2, 17, 48)  # (b, T', N, C): 4 frames merged once
    with torch.no_grad():
        _, trace = h.inti(clip, return_trace=True)
    torch.testing.assert_close(h.output(clip), trace["pooled"], rtol=1e-12, atol=1e-12)


def test_equals_torch_impl_on_a_real_clip():
    h = host((1, 3))
    randomize_scores(h)
    clip = to_tensor(load_clip("bikes.mp4", frames=8, size=32, dtype="float64"))
    assert_patch_parity(h, clip, "timm on bikes.mp4")


def test_flops_equal_the_cost_model():
    h = host((2,))
    assert_flops(h, video(h, frames=4))


def test_gradients_optimizer_and_ddp(tmp_path):
    h = host((1, 3))
    randomize_scores(h)
    clip = video(h, frames=4)
    assert_gradients_reach_theta_and_backbone(h, clip, BACKBONE)
    assert_optimizer_step_moves_both(h, clip, BACKBONE)
    assert_ddp_step(h, clip, tmp_path / "store")


def test_gradient_checkpointing_keeps_the_merges():
    h = host((2,))
    randomize_scores(h)
    clip = video(h, frames=4)
    h.model.set_grad_checkpointing(True)
    assert_checkpointed_training_keeps_the_merges(h, clip)


def test_state_dict_round_trip():
    h = host((1, 3))
    randomize_scores(h)
    fresh = inti.patch.timm(make(seed=5), schedule=(1, 3), seed=7)
    assert_state_dict_round_trip(h, fresh, lambda m: m, video(h, frames=4))


def test_compile_equals_eager():
    h = host((2,))
    randomize_scores(h)
    assert_compiles(h, video(h, frames=4))


def test_undo_restores_the_model():
    model = make()
    original, before = copy.deepcopy(model), numpy_state(model)
    inti.patch.timm(model, schedule=(1, 2))
    assert type(model).__name__ == "InTIVisionTransformer" and "merges.0.score.weight" in model.state_dict()
    assert inti.patch.undo(model) is model
    assert type(model) is VisionTransformer and not hasattr(model, "merges")
    assert same_state(numpy_state(model), before)
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(images), original(images))
    with pytest.raises(ValueError, match="nothing to undo"):
        inti.patch.undo(model)


def test_same_seed_same_theta_as_from_timm():
    model = make()
    converted = from_timm(copy.deepcopy(model), schedule=(2,), seed=3)
    inti.patch.timm(model, schedule=(2,), seed=3)
    theta = {k: v for k, v in converted.state_dict().items() if k.startswith("merges.")}
    assert theta and all(torch.equal(model.state_dict()[k], v) for k, v in theta.items())


def test_frame_counts_the_schedule_cannot_halve_are_refused():
    model = inti.patch.timm(make(), schedule=(1, 3))
    message = frames_refused(lambda t: model(torch.zeros(1, t, 3, 32, 32, dtype=torch.float64)), 6)
    assert "InTI needs an even number of frames at block 3, got 3" in message
    with pytest.raises(ValueError, match="InTI needs an even number of frames at block 1, got 5"):
        inti.patch.timm(make(), schedule=(1, 3), frames=5)


@pytest.mark.parametrize("bad, message", [
    (lambda m: m(torch.zeros(2, 3, 32, 32, dtype=torch.float64)), "takes video"),
    (lambda m: m(torch.zeros(1, 2, 3, 48, 48, dtype=torch.float64)), "32x32"),
    (lambda m: m(torch.zeros(1, 2, 3, 32, 32, dtype=torch.float64), attn_mask=torch.ones(17, 17)), "attention mask"),
    (lambda m: inti.patch.timm(m, schedule=(1,)), "patched already"),
])
def test_bad_calls_are_refused(bad, message):
    model = inti.patch.timm(make(), schedule=(2,))
    with pytest.raises(ValueError, match=message):
        bad(model)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(reg_tokens=2), ValueError, "one class token"),
    (dict(class_token=False, global_pool="avg"), ValueError, "class token"),
    (dict(dynamic_img_size=True), ValueError, "dynamic_img_size"),
    (dict(patch_drop_rate=0.5), ValueError, "patch dropout"),
])
def test_models_theta_cannot_read_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        inti.patch.timm(make(**kwargs), schedule=(2,))


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="timm VisionTransformer"):
        inti.patch.timm(torch.nn.Linear(2, 2), schedule=(1,))
    with pytest.raises(ValueError, match="schedule entries must be block indices in 1..4"):
        inti.patch.timm(make(), schedule=(5,))
    with pytest.raises(TypeError, match="unknown option"):
        inti.patch.timm(make(), schedule=(1,), reduce=2)
    with pytest.raises(TypeError, match="schedule must be a tuple"):
        inti.patch.timm(make(), schedule=3)
