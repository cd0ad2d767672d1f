"""The Hugging Face layout (its entry in inti/io/keymaps.py, and inti/io/hf.py for config.json and
folders, through inti.io.layouts, inti.io.weights and inti.io.pretrained): transformers' CLIP
image towers into InTI and back.

The reference models are transformers' own CLIPVisionModel, CLIPVisionModelWithProjection and
CLIPModel, built from small configs at random (nothing downloaded). With an empty schedule, InTI
is the naive adaptation (spec/00-method.md §2): the tower's own output per frame, averaged over
frames. torch_impl and ref.forward must both reproduce it in float64, and a file written by
transformers must come back byte for byte after a round trip through our parameters.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import ref
from inti.io import hf, keymaps, layouts, weights
from inti.io.clips import load_clip, to_tensor
from inti.io.errors import WeightsError, WrongKindError
from inti.io.pretrained import export_state_dict, from_hf, from_weights
from inti.tolerances import rel_err
from patching import PATCH_FLOAT64, randomize
from torch_impl import to_numpy, to_ref_params

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")
from transformers import (  # noqa: E402
    CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection,
)

KINDS = ["CLIPVisionModel", "CLIPVisionModelWithProjection", "CLIPModel"]
PROJECTION = "visual_projection.weight"


def vision_config(**changes) -> CLIPVisionConfig:
    """3 layers at 32 px, patch 8, width 48 with 3 heads (not width // 64: only a config tells it)."""
    return CLIPVisionConfig(**(dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=3,
                                    image_size=32, patch_size=8, projection_dim=16) | changes))


def make(kind: str, seed: int = 0, dtype=torch.float64, **changes):
    if kind == "CLIPModel":
        text = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              vocab_size=50, max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=1)
        model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision_config(**changes).to_dict(),
                                     projection_dim=16))
    else:
        model = {"CLIPVisionModel": CLIPVisionModel, "CLIPVisionModelWithProjection": CLIPVisionModelWithProjection}[kind](
            vision_config(**changes))
    return randomize(model.to(dtype), seed)


def image_output(model, images: torch.Tensor) -> torch.Tensor:
    """The tower's own per-image output: pooler_output, or the projected embedding."""
    with torch.no_grad():
        if isinstance(model, CLIPModel):
            return model.get_image_features(pixel_values=images).pooler_output
        out = model(pixel_values=images)
        return out.image_embeds if isinstance(model, CLIPVisionModelWithProjection) else out.pooler_output


def per_frame_mean(model, clip: torch.Tensor) -> torch.Tensor:
    b, t = clip.shape[:2]
    return image_output(model, clip.flatten(0, 1)).unflatten(0, (b, t)).mean(dim=1)


def assert_naive_parity(model, inti, clip, what):
    """torch_impl and ref.forward both equal the tower's per-frame outputs, averaged, to 1e-12."""
    expected = to_numpy(per_frame_mean(model, clip))
    with torch.no_grad():
        err = rel_err(to_numpy(inti(clip)), expected)
    assert err <= PATCH_FLOAT64, f"{what}: torch_impl against transformers: {err:.3g}"
    err = rel_err(ref.forward(to_ref_params(inti), clip.numpy(), inti.cfg), expected)
    assert err <= PATCH_FLOAT64, f"{what}: ref.forward against transformers: {err:.3g}"


def save(model, folder):
    model.save_pretrained(folder)
    return folder


# ---- parity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hidden_act, eps", [("quick_gelu", 1e-5), ("gelu", 1e-6)])
def test_naive_model_equals_transformers_per_frame_and_averaged(kind, hidden_act, eps):
    model = make(kind, hidden_act=hidden_act, layer_norm_eps=eps)
    inti = from_hf(model)
    cfg = inti.cfg
    assert (cfg.heads, cfg.activation, cfg.ln_eps, cfg.ln_pre, cfg.patch_bias) == (3, hidden_act, eps, True, False)
    assert cfg.embed_dim == (None if kind == "CLIPVisionModel" else 16) and cfg.num_classes == 0
    gen = torch.Generator().manual_seed(0)
    for frames in (1, 3):  # one frame: the tower's own output; three: their mean
        clip = torch.randn(2, frames, 3, 32, 32, generator=gen, dtype=torch.float64)
        assert_naive_parity(model, inti, clip, f"{kind} {hidden_act}, {frames} frame(s)")


def test_naive_model_equals_transformers_on_a_real_clip():
    model = make("CLIPVisionModelWithProjection")
    clip = to_tensor(load_clip("bikes.mp4", frames=4, size=32, dtype="float64"))
    assert_naive_parity(model, from_hf(model), clip, "bikes.mp4")


# ---- files: a folder, a bare file, and the round trip -----------------------------------------


@pytest.mark.parametrize("kind, prefix", [("CLIPVisionModel", ""), ("CLIPVisionModelWithProjection", "vision_model."),
                                          ("CLIPModel", "vision_model.")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["float32", "float16"])
def test_round_trip_reproduces_the_file(tmp_path, kind, prefix, dtype):
    """model.safetensors -> our parameters -> the hf layout: the same tensors, bit for bit and in
    their dtype, and (for a tower alone) the very bytes transformers wrote."""
    folder = save(make(kind, dtype=dtype), tmp_path / "model")
    written = safetensors_torch.load_file(folder / "model.safetensors")
    params, cfg = layouts.convert_state_dict(folder)
    exported = layouts.to_layout(params, cfg, "hf", prefix=prefix)
    vision = {k: v for k, v in written.items() if k.startswith("vision_model.") or k == PROJECTION or kind != "CLIPModel"}
    assert exported.keys() == vision.keys()
    for key, value in vision.items():
        assert exported[key].dtype == to_numpy(value).dtype and np.array_equal(exported[key], to_numpy(value)), key
    model = from_hf(folder, dtype=dtype)
    tensors = export_state_dict(model, "hf", prefix=prefix)
    assert all(torch.equal(tensors[k], v) and tensors[k].dtype == v.dtype for k, v in vision.items())
    if kind != "CLIPModel":
        again = tmp_path / "again.safetensors"
        safetensors_torch.save_file(tensors, again, metadata={"format": "pt"})
        assert again.read_bytes() == (folder / "model.safetensors").read_bytes()


def test_exported_weights_load_into_transformers(tmp_path):
    """Export back into a fresh transformers model: it computes what the original did."""
    model = make("CLIPVisionModelWithProjection")
    fresh = make("CLIPVisionModelWithProjection", seed=3)
    fresh.load_state_dict(export_state_dict(from_hf(model, schedule=(2,)), "hf", prefix="vision_model."))
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    assert torch.equal(image_output(fresh, images), image_output(model, images))


def test_a_folder_tells_what_the_shapes_cannot(tmp_path):
    """heads, hidden_act and layer_norm_eps come from config.json; a bare file gets transformers'
    defaults and width // 64 heads, which overrides replace."""
    model = make("CLIPVisionModel", hidden_act="gelu", layer_norm_eps=1e-6)
    folder = save(model, tmp_path / "model")
    for loaded in (from_hf(folder), from_weights(folder), from_hf(model), weights.load(folder)):
        assert (loaded.cfg.heads, loaded.cfg.activation, loaded.cfg.ln_eps) == (3, "gelu", 1e-6)
    bare = from_weights(folder / "model.safetensors")
    assert (bare.cfg.heads, bare.cfg.activation, bare.cfg.ln_eps) == (1, "quick_gelu", 1e-5)
    told = from_weights(folder / "model.safetensors", heads=3, activation="gelu", ln_eps=1e-6)
    assert told.cfg == from_hf(folder).cfg
    assert_naive_parity(model, from_hf(folder, dtype=torch.float64), torch.randn(1, 2, 3, 32, 32, dtype=torch.float64),
                        "from a folder")


def test_config_json_defaults_are_transformers(tmp_path):
    """A config.json written with only the fields that differ from CLIPVisionConfig's defaults
    (transformers' use_diff) reads as transformers reads it."""
    folder = save(make("CLIPVisionModel", num_attention_heads=12, hidden_act="gelu"), tmp_path / "model")
    full = json.loads((folder / "config.json").read_text())
    defaults = CLIPVisionConfig().to_dict()
    (folder / "config.json").write_text(json.dumps({k: v for k, v in full.items() if defaults.get(k) != v}))
    assert "num_attention_heads" not in (folder / "config.json").read_text()
    cfg = from_hf(folder).cfg
    assert (cfg.heads, cfg.activation, cfg.patch_size) == (12, "gelu", 8)  # 12: the default, not width // 64 = 1
    assert hf.HF_DEFAULTS == {k: defaults[k] for k in hf.HF_DEFAULTS}


def test_the_front_door_reads_a_file_and_a_folder(tmp_path):
    """inti.io.weights.load: a model.safetensors of the hf layout, or the folder holding it with its
    config.json, is a state dict read in the "hf" layout, in its stored dtype."""
    model = make("CLIPVisionModelWithProjection", dtype=torch.float32)
    folder = save(model, tmp_path / "model")
    expected, _ = layouts.convert_state_dict(model.state_dict(), heads=3)
    for path in (folder, folder / "model.safetensors"):
        loaded = weights.load(path)
        assert (loaded.kind, loaded.layout, loaded.dtype, loaded.path) == ("state dict", "hf", "float32", path)
        assert loaded.params.keys() == expected.keys()
        assert all(np.array_equal(loaded.params[k], v) for k, v in expected.items())
    assert weights.load(folder).cfg.heads == 3 and weights.load(folder / "model.safetensors").cfg.heads == 1
    assert "Hugging Face model folder" in str(pytest.raises(WrongKindError, weights.load, folder, accept=weights.INTI).value)


def test_detection(tmp_path):
    for kind in KINDS:
        state = make(kind).state_dict()
        assert layouts.detect_layout(state) == "hf"
        assert layouts.detect_layout(keymaps.select_tower(state, keymaps.HF)) == "hf"
    params, cfg = layouts.convert_state_dict(make("CLIPModel").state_dict(), schedule=(2,), heads=3)
    assert cfg.schedule == (2,) and any(k.startswith("merges.0.") for k in params)
    with pytest.raises(ValueError, match="Hugging Face"):
        layouts.convert_state_dict(make("CLIPVisionModel").state_dict(), layout="timm")


def test_inti_train_weights_reads_a_folder(tmp_path, capsys):
    from inti.cli import main

    folder = save(make("CLIPVisionModelWithProjection", dtype=torch.float32), tmp_path / "model")
    argv = ["train", "--synthetic", "informative", "--synthetic-train", "8", "--synthetic-val", "4", "--steps", "1",
            "--batch-size", "4", "--frames", "4", "--schedule", "2", "--weights", str(folder),
            "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err


def test_image_size_resampling():
    model = make("CLIPVisionModel")
    params, cfg = layouts.convert_state_dict(model.state_dict(), image_size=48, heads=3)
    assert cfg.image_size == 48 and params["pos_embed"].shape == (37, 48)


# ---- refusals ------------------------------------------------------------------------------------


def write_config(folder, **changes):
    doc = json.loads((folder / "config.json").read_text()) | changes
    (folder / "config.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("changes, message", [
    (dict(hidden_act="gelu_new"), "hidden_act 'gelu_new' is not supported"),
    (dict(num_attention_heads=5), "cannot split width 48 into 5 heads"),
    (dict(hidden_size=64), "does not describe the weights.*width 64 \\(weights: 48\\)"),
    (dict(patch_size=16), "does not describe the weights.*patch_size 16 \\(weights: 8\\)"),
    (dict(image_size=64), "does not describe the weights.*image_size 64 \\(weights: 32\\)"),
    (dict(num_hidden_layers=2), "does not describe the weights.*depth 2 \\(weights: 3\\)"),
    (dict(intermediate_size=64), "does not describe the weights.*mlp_width 64 \\(weights: 96\\)"),
    (dict(layer_norm_eps="1e-5"), "layer_norm_eps must be a number"),
    (dict(num_attention_heads=True), "num_attention_heads must be an integer"),
    (dict(model_type="siglip_vision_model"), "'siglip_vision_model' model"),
])
def test_a_config_that_does_not_describe_the_weights_is_refused(tmp_path, changes, message):
    folder = save(make("CLIPVisionModel"), tmp_path / "model")
    write_config(folder, **changes)
    with pytest.raises(ValueError, match=message):
        from_hf(folder)


def test_bad_folders_and_files_are_refused(tmp_path):
    folder = save(make("CLIPVisionModel"), tmp_path / "model")
    (folder / "config.json").write_bytes(b"{" + b" " * hf.CONFIG_MAX_BYTES + b"}")
    with pytest.raises(ValueError, match="a few kB"):
        from_hf(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON config"):
        from_hf(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        from_hf(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(WeightsError, match="not a Hugging Face model folder.*sharded"):
        from_hf(empty)


def test_keys_that_are_not_a_clip_tower_are_named():
    state = make("CLIPVisionModel").state_dict()
    state["classifier.weight"] = torch.zeros(5, 48)  # CLIPForImageClassification's head: another readout
    with pytest.raises(ValueError, match="unexpected 1 key.*classifier.weight"):
        layouts.convert_state_dict(state, heads=3)
    del state["classifier.weight"], state["encoder.layers.1.self_attn.k_proj.bias"]
    with pytest.raises(ValueError, match="missing 1 key.*encoder.layers.1.self_attn.k_proj.bias"):
        layouts.convert_state_dict(state, heads=3)


def test_what_the_hf_layout_cannot_hold_is_refused():
    timm_like = ref.ModelConfig(image_size=32, patch_size=8, width=48, depth=2, heads=3, embed_dim=None, num_classes=5,
                                ln_pre=False, patch_bias=True)
    params = ref.init_params(timm_like)
    with pytest.raises(ValueError, match="patch_bias=True.*num_classes=5.*ln_pre=False"):
        layouts.to_layout(params, timm_like, "hf")
    with pytest.raises(ValueError, match="inti.io.keymaps.key_groups"):
        layouts.key_map(timm_like, "hf")
    with pytest.raises(KeyError, match="3 keys in the hf layout"):
        keymaps.external_key("blocks.0.attn.qkv.weight", "hf")


def test_key_map_splits_qkv_in_order():
    cfg = ref.ModelConfig(image_size=32, patch_size=8, width=48, depth=2, heads=3, embed_dim=16)
    qkv = keymaps.key_groups(cfg, "hf")["blocks.1.attn.qkv.weight"]
    assert qkv == tuple(f"encoder.layers.1.self_attn.{p}_proj.weight" for p in "qkv")
    assert keymaps.key_groups(cfg, "hf")["proj.weight"] == ("visual_projection.weight",)
    shapes = keymaps.external_shapes(cfg, "hf")
    assert shapes["encoder.layers.0.self_attn.v_proj.weight"] == (48, 48) and shapes["visual_projection.weight"] == (16, 48)
    model = CLIPVisionModelWithProjection(vision_config(num_hidden_layers=2))
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert keymaps.external_shapes(cfg.replace(mlp_ratio=2.0), "hf", prefix="vision_model.") == theirs
    params = ref.init_params(cfg)
    q, k, v = (keymaps.to_theirs("blocks.1.attn.qkv.weight", params["blocks.1.attn.qkv.weight"], keymaps.HF, 3))
    assert [np.array_equal(p, params["blocks.1.attn.qkv.weight"][48 * i:48 * (i + 1)]) for i, p in enumerate((q, k, v))] \
        == [True] * 3
