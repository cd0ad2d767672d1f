"""`inti.create_model` and `inti.list_models` (inti/models.py, the names in inti/registry.py): InTI
models by name.

Each named architecture is checked against the library whose weights it stands for, built on
the meta device (timm's and open_clip's own model definitions; nothing downloaded): the
hyperparameters that the converters read from that model must be the name's. Loading
pretrained files goes through the existing loaders, on nano-sized files written in the
libraries' layouts.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import inti
import ref
from inti.io import layouts
from inti.io.params import save_params
from ref.params import randomize_scores
from inti.models import ARCHITECTURE, MODELS, create_model, list_models, named_config
from torch_impl import from_ref_params, to_ref_params

NANO = ref.preset("nano")


def test_list_models():
    names = list_models()
    assert names == sorted(names) and set(ref.config.PRESETS) <= set(names)
    for size in ("b16", "b32", "l14"):
        assert {f"vit_{size}_clip", f"vit_{size}_in1k"} <= set(names)
    assert list_models("*_clip") == ["vit_b16_clip", "vit_b32_clip", "vit_l14_clip"]
    assert inti.list_models is list_models and inti.create_model is create_model


def test_import_inti_stays_light():
    code = "import sys, inti; inti.list_models(); print('torch' in sys.modules, 'inti.models' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_the_projects_presets_are_unchanged():
    for name in ref.config.PRESETS:
        assert MODELS[name].cfg == ref.preset(name)


def architecture(cfg) -> dict:
    return {f: getattr(cfg, f) for f in ("image_size", "num_classes", *ARCHITECTURE)}


@pytest.mark.parametrize("name, timm_name", [
    ("vit_b16_in1k", "vit_base_patch16_224"), ("vit_b32_in1k", "vit_base_patch32_224"),
    ("vit_l14_in1k", "vit_large_patch14_clip_224"),
])
def test_imagenet_names_are_timms_models(name, timm_name):
    timm = pytest.importorskip("timm")
    from inti.io.pretrained import timm_hints

    with torch.device("meta"):
        model = timm.create_model(timm_name, pretrained=False)
    theirs = layouts.infer_config(model.state_dict(), "timm", **timm_hints(model))
    assert architecture(theirs) == architecture(MODELS[name].cfg)


@pytest.mark.parametrize("name, open_clip_name", [("vit_b16_clip", "ViT-B-16"), ("vit_b32_clip", "ViT-B-32"),
                                                  ("vit_l14_clip", "ViT-L-14")])
def test_clip_names_are_openais_towers(name, open_clip_name):
    """open_clip's bundled model configs, with QuickGELU as OpenAI's weights use (the -quickgelu models)."""
    open_clip = pytest.importorskip("open_clip")
    from inti.io.pretrained import clip_hints

    with torch.device("meta"):
        model = open_clip.create_model(open_clip_name, pretrained=None, force_quick_gelu=True, device="meta")
    theirs = layouts.infer_config(layouts.select_visual(model.state_dict())[0], "clip", **clip_hints(model.visual))
    assert architecture(theirs) == architecture(MODELS[name].cfg)


def test_model_config_applies_the_changes():
    cfg = named_config("vit_b16_clip", schedule=(4, 8), num_classes=400, image_size=160, activation="gelu")
    assert (cfg.schedule, cfg.num_classes, cfg.image_size, cfg.activation, cfg.width) == ((4, 8), 400, 160, "gelu", 768)
    assert named_config("vit_l14_clip", schedule=()).schedule == ()
    aim = named_config("vit_b16_clip", temporal="aim", frames=8)
    assert aim.temporal == "aim" and aim.temporal_frames == 8
    with pytest.raises(ValueError, match="unknown model 'vit_h14'.*vit_b16_clip"):
        named_config("vit_h14")
    with pytest.raises(TypeError, match="unknown ModelConfig field"):
        named_config("nano", depht=3)


def test_create_model_without_weights_is_refs_init():
    model = create_model("nano", frames=8, seed=3)
    expected = from_ref_params(ref.init_params(NANO, seed=3), NANO, torch.float32)
    assert model.cfg == NANO and next(model.parameters()).dtype == torch.float32
    video = torch.randn(1, 8, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(video), expected(video))
    with pytest.raises(ValueError, match="InTI needs an even number of frames at block 2, got 3"):
        create_model("nano", frames=6)
    assert create_model("nano", schedule=(), num_classes=0, dtype=torch.float64).cfg.out_dim == NANO.embed_dim


def write_clip_file(tmp_path, cfg=NANO.replace(schedule=(), num_classes=0), seed=0):
    """A nano backbone as an OpenAI CLIP checkpoint file: keys and shapes only say so much."""
    from safetensors.numpy import save_file

    params = ref.init_params(cfg, seed=seed)
    path = tmp_path / "visual.safetensors"
    save_file({"visual." + k: v for k, v in layouts.to_layout(params, cfg, "clip").items()}, str(path))
    return path, params


def test_pretrained_foreign_file_gets_what_its_shapes_cannot_tell_from_the_name(tmp_path):
    """nano has 4 heads at width 64; a bare CLIP file would be read with width // 64 = 1."""
    path, params = write_clip_file(tmp_path)
    assert layouts.convert_state_dict(path)[1].heads == 1
    model = create_model("nano", pretrained=path, schedule=(2,), num_classes=7, dtype=torch.float64)
    assert model.cfg.heads == 4 and model.cfg.num_classes == 7 and model.cfg.schedule == (2,)
    state = to_ref_params(model)
    assert all(np.array_equal(state[k], v) for k, v in params.items())  # the backbone is the file's
    fresh = ref.init_params(model.cfg, seed=0)
    assert all(np.array_equal(state[k], fresh[k]) for k in state if k.startswith(("merges.", "head.")))


def test_pretrained_foreign_file_keeps_its_head_for_the_same_classes(tmp_path):
    """A timm-layout file of nano's backbone with a 10-class head, read as nano with timm's
    hyperparameters: the name tells the 4 heads (the file would say 1), and with the same
    classes the file's head is the model's, as timm.create_model keeps a pretrained head."""
    from safetensors.numpy import save_file

    timm_nano = dict(embed_dim=None, activation="gelu", ln_eps=1e-6, ln_pre=False, patch_bias=True)
    cfg = NANO.replace(schedule=(), **timm_nano)
    params = ref.init_params(cfg, seed=2)
    save_file(layouts.to_layout(params, cfg, "timm"), str(tmp_path / "timm.safetensors"))
    model = create_model("nano", pretrained=tmp_path / "timm.safetensors", dtype=torch.float64, **timm_nano)
    state = to_ref_params(model)
    assert model.cfg.heads == 4 and all(np.array_equal(state[k], v) for k, v in params.items())


def test_pretrained_inti_file_keeps_theta_and_head(tmp_path):
    params = randomize_scores(ref.init_params(NANO, seed=5), NANO, seed=1)
    save_params(tmp_path / "w.safetensors", params, NANO)
    model = create_model("nano", pretrained=tmp_path / "w.safetensors", dtype=torch.float64)
    state = to_ref_params(model)
    assert all(np.array_equal(state[k], v) for k, v in params.items())
    smaller = create_model("nano", pretrained=tmp_path / "w.safetensors", image_size=32, dtype=torch.float64)
    assert smaller.pos_embed.shape == (17, 64)  # resampled to a 4 x 4 grid


def test_pretrained_of_another_architecture_is_refused(tmp_path):
    path, _ = write_clip_file(tmp_path)
    with pytest.raises(ValueError, match="are not a vit_b16_clip: patch_size 8 \\(the name: 16\\), width 64"):
        create_model("vit_b16_clip", pretrained=path)
    params = ref.init_params(NANO.replace(activation="gelu"))
    save_params(tmp_path / "gelu.npz", params, NANO.replace(activation="gelu"))
    with pytest.raises(ValueError, match="activation 'gelu' \\(the name: 'quick_gelu'\\)"):
        create_model("nano", pretrained=tmp_path / "gelu.npz")
    assert create_model("nano", pretrained=tmp_path / "gelu.npz", activation="gelu").cfg.activation == "gelu"
    with pytest.raises(FileNotFoundError):
        create_model("nano", pretrained=tmp_path / "missing.safetensors")


def test_pretrained_hugging_face_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=4,
                                           num_attention_heads=4, image_size=64, patch_size=8, projection_dim=32)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "hf")
    model = create_model("nano", pretrained=tmp_path / "hf")
    assert model.cfg == NANO
    config.hidden_act = "gelu"
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "hf_gelu")
    with pytest.raises(ValueError, match="activation 'gelu' \\(the name: 'quick_gelu'\\)"):
        create_model("nano", pretrained=tmp_path / "hf_gelu")


def test_the_cli_offers_the_same_names():
    from inti.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("demo", "parity", "cost", "export", "train"):
        preset = next(a for a in commands[name]._actions if a.dest == "preset")
        assert list(preset.choices) == list_models(), name


def test_cost_preset_reads_the_registry(capsys):
    """`inti cost --preset vit_b32_clip`: a name of the registry that ref's presets lack; the
    table's total is the cost model's for that config."""
    from inti.cli import main

    assert "vit_b32_clip" not in ref.config.PRESETS
    assert main(["cost", "--preset", "vit_b32_clip", "--frames", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("inti cost: vit_b32_clip: ViT 224 px, patch 32, width 768")
    total = ref.compare(named_config("vit_b32_clip"), 8)["inti"]["total"]
    assert f"{total / 1e9:,.3f}" in out.split("\ntotal")[1].splitlines()[0]


def test_train_preset_reads_the_registry(tmp_path, monkeypatch, capsys):
    """`inti train --preset NAME` builds the registry's config (a name added to the table here:
    nano's sizes with timm's hyperparameters, which ref's presets do not have)."""
    from inti import registry
    from inti.cli import main
    from inti.io import weights

    tiny = NANO.replace(activation="gelu", ln_eps=1e-6, ln_pre=False, patch_bias=True, embed_dim=None, schedule=(2,))
    monkeypatch.setitem(registry.MODELS, "nano_timm", registry.Preset(tiny, "nano with timm's hyperparameters"))
    argv = ["train", "--preset", "nano_timm", "--synthetic", "informative", "--synthetic-train", "8",
            "--synthetic-val", "4", "--steps", "1", "--batch-size", "4", "--frames", "4", "--out", str(tmp_path / "run"),
            "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    cfg = weights.load(tmp_path / "run" / "last.safetensors").cfg
    assert cfg.replace(num_classes=tiny.num_classes) == tiny
