"""`inti.patch.transformers`: InTI in place on Hugging Face transformers' CLIP image towers
(inti/patch/transformers.py): CLIPVisionModel, CLIPVisionModelWithProjection and CLIPModel.

The models are transformers' own classes, built from a small `CLIPVisionConfig` at random
(nothing downloaded). The patched model must equal torch_impl's `InTIModel` built from the
converted weights (`inti.io.pretrained.from_hf`), in float64, on random clips and a bundled real
one, with and without merges, and behave as the user's own module (train, compile, save, DDP,
undo).
"""

from __future__ import annotations

import copy

import pytest
import torch

import inti.patch
from inti.io.clips import load_clip, to_tensor
from inti.io.pretrained import from_hf
from patching import (
    Host, assert_checkpointed_training_keeps_the_merges, assert_compiles, assert_ddp_step, assert_flops, assert_gradients_reach_theta_and_backbone,
    assert_merges_act, assert_optimizer_step_moves_both, assert_patch_parity, assert_state_dict_round_trip,
    frames_refused, numpy_state, randomize, randomize_scores, same_state, video,
)

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection,
)

BACKBONE = "encoder.layers.0.self_attn.q_proj.weight"


def vision_config(**changes) -> CLIPVisionConfig:
    """4 layers at 32 px, patch 8 (a 4 x 4 grid), width 48, 3 heads, 16-d projection."""
    return CLIPVisionConfig(**(dict(hidden_size=48, intermediate_size=192, num_hidden_layers=4, num_attention_heads=3,
                                    image_size=32, patch_size=8, projection_dim=16) | changes))


def make(kind: str, seed: int = 0, **changes):
    if kind == "CLIPModel":
        text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              vocab_size=50, max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=1)
        config = CLIPConfig(text_config=text.to_dict(), vision_config=vision_config(**changes).to_dict(), projection_dim=16)
        return randomize(CLIPModel(config).double(), seed)
    cls = {"CLIPVisionModel": CLIPVisionModel, "CLIPVisionModelWithProjection": CLIPVisionModelWithProjection}[kind]
    return randomize(cls(vision_config(**changes)).double(), seed)


def output_of(kind: str):
    """The clip-level output the patch promises, by the host's own API."""
    if kind == "CLIPVisionModel":
        return lambda model: lambda clip: model(pixel_values=clip).pooler_output
    if kind == "CLIPVisionModelWithProjection":
        return lambda model: lambda clip: model(pixel_values=clip).image_embeds
    return lambda model: lambda clip: model.get_image_features(pixel_values=clip).pooler_output


def host(kind: str, schedule, **changes) -> Host:
    model = make(kind, **changes)
    converted = from_hf(copy.deepcopy(model), schedule=schedule)
    inti.patch.transformers(model, schedule=schedule)
    tower, prefix = (model, "") if kind == "CLIPVisionModel" else (model.vision_model, "vision_model.")
    out = output_of(kind)
    return Host(model, tower, prefix, lambda clip, model=model: out(model)(clip), converted)


KINDS = ["CLIPVisionModel", "CLIPVisionModelWithProjection", "CLIPModel"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("schedule", [(), (1, 3)], ids=["naive", "two merges"])
def test_equals_torch_impl_in_float64_on_random_clips(kind, schedule):
    h = host(kind, schedule)
    if schedule:
        randomize_scores(h)
        assert_merges_act(h, video(h, frames=4))
    assert_patch_parity(h, video(h, frames=4), f"{kind}, schedule {schedule}")


@pytest.mark.parametrize("hidden_act", ["gelu", "quick_gelu"])
def test_naive_adaptation_is_the_mean_of_the_models_per_frame_outputs(hidden_act):
    model = make("CLIPVisionModelWithProjection", hidden_act=hidden_act)
    image_model = copy.deepcopy(model)
    inti.patch.transformers(model, schedule=())
    clip = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = image_model(pixel_values=clip.flatten(0, 1)).image_embeds.unflatten(0, (2, 3)).mean(dim=1)
        torch.testing.assert_close(model(pixel_values=clip).image_embeds, expected, rtol=1e-12, atol=1e-12)


def test_clip_model_scores_video_against_text():
    h = host("CLIPModel", (2,))
    randomize_scores(h)
    clip, text = video(h, frames=4), torch.randint(2, 50, (3, 8))
    with torch.no_grad():
        out = h.model(input_ids=text, pixel_values=clip)
        expected = torch.nn.functional.normalize(h.inti(clip), dim=-1)
    torch.testing.assert_close(out.image_embeds, expected, rtol=1e-12, atol=1e-12)
    assert out.logits_per_image.shape == (2, 3)


def test_outputs_per_clip():
    h = host("CLIPVisionModel", (1, 3))
    clip = video(h, frames=4)
    with torch.no_grad():
        out = h.model(pixel_values=clip, output_hidden_states=True)
        as_tuple = h.model(pixel_values=clip, return_dict=False)
    assert out.last_hidden_state.shape == (2, 1, 17, 48)  # (b, T', N, C): 4 frames merged twice
    assert [s.shape[1] for s in out.hidden_states] == [4, 2, 2, 1, 1]  # the embeddings, then after each layer
    assert torch.equal(as_tuple[1], out.pooler_output)


def test_equals_torch_impl_on_a_real_clip():
    h = host("CLIPVisionModelWithProjection", (1, 3))
    randomize_scores(h)
    clip = to_tensor(load_clip("bikes.mp4", frames=8, size=32, dtype="float64"))
    assert_patch_parity(h, clip, "transformers on bikes.mp4")


@pytest.mark.parametrize("kind", ["CLIPVisionModel", "CLIPVisionModelWithProjection"])
def test_flops_equal_the_cost_model(kind):
    h = host(kind, (2,))
    assert_flops(h, video(h, frames=4))


def test_gradients_optimizer_and_ddp(tmp_path):
    h = host("CLIPVisionModel", (1, 3))
    randomize_scores(h)
    clip = video(h, frames=4)
    assert_gradients_reach_theta_and_backbone(h, clip, BACKBONE)
    assert_optimizer_step_moves_both(h, clip, BACKBONE)
    assert_ddp_step(h, clip, tmp_path / "store")


def test_gradient_checkpointing_keeps_the_merges():
    h = host("CLIPVisionModel", (2,))
    randomize_scores(h)
    clip = video(h, frames=4)
    if hasattr(h.model, "activation_checkpointing_enable"):  # transformers 5's name
        h.model.activation_checkpointing_enable({"use_reentrant": False})
    else:
        h.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert all(layer.gradient_checkpointing for layer in h.model.encoder.layers)
    assert_checkpointed_training_keeps_the_merges(h, clip)


@pytest.mark.parametrize("kind", ["CLIPVisionModel", "CLIPVisionModelWithProjection"])
def test_state_dict_round_trip(kind):
    h = host(kind, (1, 3))
    randomize_scores(h)
    fresh = inti.patch.transformers(make(kind, seed=5), schedule=(1, 3), seed=7)
    assert_state_dict_round_trip(h, fresh, output_of(kind), video(h, frames=4))


def test_compile_equals_eager():
    h = host("CLIPVisionModelWithProjection", (2,))
    randomize_scores(h)
    assert_compiles(h, video(h, frames=4))


@pytest.mark.parametrize("kind", KINDS)
def test_undo_restores_the_model(kind):
    model = make(kind)
    original, before = copy.deepcopy(model), numpy_state(model)
    inti.patch.transformers(model, schedule=(1, 2))
    inti.patch.undo(model)
    assert same_state(numpy_state(model), before)
    assert all(type(a) is type(b) for a, b in zip(model.modules(), original.modules()))
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(output_of(kind)(model)(images), output_of(kind)(original)(images))


def test_frame_counts_the_schedule_cannot_halve_are_refused():
    model = inti.patch.transformers(make("CLIPVisionModel"), schedule=(1, 3))
    message = frames_refused(lambda t: model(pixel_values=torch.zeros(1, t, 3, 32, 32, dtype=torch.float64)), 2)
    assert "InTI needs an even number of frames at block 3, got 1" in message


def test_bad_calls_are_refused():
    with pytest.raises(TypeError, match="CLIPVisionModel, CLIPVisionModelWithProjection, CLIPModel"):
        inti.patch.transformers(torch.nn.Linear(2, 2), schedule=(1,))
    model = inti.patch.transformers(make("CLIPVisionModel"), schedule=(2,))
    clip = torch.zeros(1, 2, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(pixel_values=clip, interpolate_pos_encoding=True)
    with pytest.raises(ValueError, match="output_attentions"):
        model(pixel_values=clip, output_attentions=True)
    with pytest.raises(ValueError, match="takes video"):
        model(pixel_values=clip[:, 0])
