"""`inti.patch.open_clip`: InTI in place on open_clip's VisionTransformer, alone or as a whole
CLIP model's ``.visual`` (inti/patch/open_clip.py).

The models are open_clip's own classes, built small at random (nothing downloaded). The patched
tower must equal torch_impl's `InTIModel` built from the converted weights
(`inti.io.pretrained.from_clip`), in float64, on random clips and a bundled real one, with and
without merges, and behave as the user's own module (train, compile, save, DDP, undo).
"""

from __future__ import annotations

import copy

import pytest
import torch

import inti.patch
from inti.io.clips import load_clip, to_tensor
from inti.io.pretrained import from_clip
from patching import (
    Host, assert_checkpointed_training_keeps_the_merges, assert_compiles, assert_ddp_step, assert_flops, assert_gradients_reach_theta_and_backbone,
    assert_merges_act, assert_optimizer_step_moves_both, assert_patch_parity, assert_state_dict_round_trip,
    frames_refused, numpy_state, randomize, randomize_scores, same_state, video,
)

open_clip = pytest.importorskip("open_clip")
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg  # noqa: E402
from open_clip.transformer import QuickGELU, VisionTransformer  # noqa: E402

BACKBONE = "transformer.resblocks.0.attn.in_proj_weight"


def make_tower(seed: int = 0, quick_gelu: bool = False, **kwargs) -> VisionTransformer:
    """A 4-block open_clip ViT at 32 px, patch 8 (a 4 x 4 grid), width 48, 3 heads, 16-d output, float64."""
    args = dict(image_size=32, patch_size=8, width=48, layers=4, heads=3, mlp_ratio=4.0, output_dim=16) | kwargs
    if quick_gelu:
        args["act_layer"] = QuickGELU
    return randomize(VisionTransformer(**args).double(), seed)


def make_clip(seed: int = 0) -> CLIP:
    """A whole CLIP model (QuickGELU, as OpenAI's) with that tower and a one-block text tower."""
    vision = CLIPVisionCfg(layers=4, width=48, head_width=16, patch_size=8, image_size=32, mlp_ratio=4.0)
    text = CLIPTextCfg(context_length=8, vocab_size=50, width=32, heads=2, layers=1)
    return randomize(CLIP(embed_dim=16, vision_cfg=vision, text_cfg=text, quick_gelu=True).double(), seed)


def host(schedule, quick_gelu: bool = False) -> Host:
    tower = make_tower(quick_gelu=quick_gelu)
    converted = from_clip(copy.deepcopy(tower), schedule=schedule)
    inti.patch.open_clip(tower, schedule=schedule)
    return Host(tower, tower, "", lambda clip, model=tower: model(clip), converted)


@pytest.mark.parametrize("quick_gelu", [False, True], ids=["gelu", "quick_gelu"])
@pytest.mark.parametrize("schedule", [(), (2,), (1, 3)], ids=["naive", "one merge", "two merges"])
def test_equals_torch_impl_in_float64_on_random_clips(schedule, quick_gelu):
    h = host(schedule, quick_gelu)
    assert h.inti.cfg.activation == ("quick_gelu" if quick_gelu else "gelu")
    if schedule:
        randomize_scores(h)
        assert_merges_act(h, video(h, frames=4))
    assert_patch_parity(h, video(h, frames=4), f"open_clip, schedule {schedule}")


def test_naive_adaptation_is_the_mean_of_the_towers_per_frame_embeddings():
    tower = make_tower()
    image_model = copy.deepcopy(tower)
    inti.patch.open_clip(tower, schedule=())
    clip = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = image_model(clip.flatten(0, 1)).unflatten(0, (2, 3)).mean(dim=1)
        torch.testing.assert_close(tower(clip), expected, rtol=1e-12, atol=1e-12)


def test_a_whole_clip_model_encodes_and_scores_video():
    """Patching a CLIP model patches its .visual: encode_image and the image-text logits take
    video, and equal torch_impl's image embedding; θ's keys sit under ``visual.``."""
    model = make_clip()
    converted = from_clip(copy.deepcopy(model), schedule=(2,))
    inti.patch.open_clip(model, schedule=(2,))
    h = Host(model, model.visual, "visual.", lambda clip, model=model: model.encode_image(clip), converted)
    randomize_scores(h)
    clip = video(h, frames=4)
    assert_patch_parity(h, clip, "open_clip CLIP.encode_image")
    text = torch.randint(0, 50, (3, 8))
    with torch.no_grad():
        image_features, text_features, scale = model(clip, text)
        expected = torch.nn.functional.normalize(converted(clip), dim=-1)
    torch.testing.assert_close(image_features, expected, rtol=1e-12, atol=1e-12)
    assert text_features.shape == (3, 16)
    fresh = inti.patch.open_clip(make_clip(seed=4), schedule=(2,), seed=9)
    assert_state_dict_round_trip(h, fresh, lambda m: m.encode_image, clip)
    inti.patch.undo(model)
    assert type(model.visual) is VisionTransformer and not any("merges" in k for k in model.state_dict())


def test_output_tokens_per_clip():
    tower = inti.patch.open_clip(make_tower(output_tokens=True), schedule=(2,))
    with torch.no_grad():
        pooled, tokens = tower(torch.randn(2, 4, 3, 32, 32, dtype=torch.float64))
    assert pooled.shape == (2, 16) and tokens.shape == (2, 2, 16, 48)  # (b, T', L, C)


def test_equals_torch_impl_on_a_real_clip():
    h = host((1, 3))
    randomize_scores(h)
    clip = to_tensor(load_clip("bikes.mp4", frames=8, size=32, dtype="float64"))
    assert_patch_parity(h, clip, "open_clip on bikes.mp4")


def test_flops_equal_the_cost_model():
    h = host((2,))
    assert_flops(h, video(h, frames=4), grad=True)


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
    fresh = inti.patch.open_clip(make_tower(seed=5), schedule=(1, 3), seed=7)
    assert_state_dict_round_trip(h, fresh, lambda m: m, video(h, frames=4))


def test_compile_equals_eager():
    h = host((2,))
    randomize_scores(h)
    assert_compiles(h, video(h, frames=4))


def test_undo_restores_the_model():
    tower = make_tower()
    original, before = copy.deepcopy(tower), numpy_state(tower)
    inti.patch.open_clip(tower, schedule=(1, 2))
    inti.patch.undo(tower)
    assert type(tower) is VisionTransformer and same_state(numpy_state(tower), before)
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(tower(images), original(images))


def test_frame_counts_the_schedule_cannot_halve_are_refused():
    tower = inti.patch.open_clip(make_tower(), schedule=(2,))
    message = frames_refused(lambda t: tower(torch.zeros(1, t, 3, 32, 32, dtype=torch.float64)), 3)
    assert "InTI needs an even number of frames at block 2, got 3" in message


def test_bad_models_are_refused():
    with pytest.raises(TypeError, match="open_clip's VisionTransformer"):
        inti.patch.open_clip(torch.nn.Linear(2, 2), schedule=(1,))
    with pytest.raises(ValueError, match="patch dropout"):
        inti.patch.open_clip(make_tower(patch_dropout=0.5), schedule=(1,))
    with pytest.raises(ValueError, match="takes video"):
        inti.patch.open_clip(make_tower(), schedule=(1,))(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
