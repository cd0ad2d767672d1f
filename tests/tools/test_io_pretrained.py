"""Pretrained layouts (spec/07-pretrained-layouts.md): timm, OpenAI CLIP and open_clip ViTs
into InTI and back.

Nothing is downloaded. The reference models are the libraries' own: ``timm.create_model(...,
pretrained=False)`` and ``open_clip.create_model(..., pretrained=None)``, built on the meta
device (so their own random init costs nothing) and then filled by `randomize` from a seeded
generator, every parameter including biases and LayerNorms, so that a wrong mapping of any key
shows. With an empty schedule, InTI is the naive adaptation (spec/00-method.md §2): per-frame outputs of
the image model, averaged over frames. That is what both the torch model and ref.forward must
reproduce, to the tolerance table's float64 and float32 entries.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ref
from ref.model import merge_key
from inti.io import layouts as ck
from inti.tolerances import rel_err as _rel_err, tolerance
from inti.io.state_dict_files import read_state_dict
from torch_impl import to_numpy
from inti.io import pos_embed
from inti.io.pretrained import export_state_dict, from_clip, from_timm, from_weights
from patching import randomize

timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")

POOL = 1 << 22  # more values than the largest tensor of a ViT-B (its fc1, 2.4M)


def make_timm(name: str, dtype=torch.float64, seed: int = 0, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, **kwargs)
    return randomize(model.to_empty(device="cpu").to(dtype), seed, POOL)


def make_open_clip(name: str, image_size: int, dtype=torch.float64, seed: int = 0, **kwargs):
    """(the image tower, the whole CLIP model's state-dict keys outside it)."""
    with torch.device("meta"):
        whole = open_clip.create_model(name, pretrained=None, force_image_size=image_size, device="meta", **kwargs)
    other = [k for k in whole.state_dict() if not k.startswith("visual.")]
    return randomize(whole.visual.to_empty(device="cpu").to(dtype), seed, POOL), other


def per_frame_mean(image_model, video: torch.Tensor) -> torch.Tensor:
    """The naive adaptation, computed by the image model itself: (b, t, 3, H, W) -> mean over t."""
    b, t = video.shape[:2]
    with torch.no_grad():
        return image_model(video.flatten(0, 1)).unflatten(0, (b, t)).mean(dim=1)


def rel_err(actual, expected) -> float:
    return _rel_err(to_numpy(actual), to_numpy(expected))


def assert_close(actual, expected, dtype, what: str) -> float:
    err = rel_err(actual, expected)
    assert err <= tolerance(dtype), f"{what}: relative error {err:.3g} > {tolerance(dtype):g} ({dtype})"
    return err


def video_for(cfg_or_size, frames=2, batch=1, dtype=torch.float64, seed=0) -> torch.Tensor:
    size = cfg_or_size if isinstance(cfg_or_size, int) else cfg_or_size.image_size
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=gen, dtype=torch.float64).to(dtype)


def check_parity(image_model, inti_model, params, cfg, video, what: str) -> None:
    """torch InTI and ref.forward both equal the image model's per-frame mean, at video's dtype."""
    expected = per_frame_mean(image_model, video)
    with torch.no_grad():
        assert_close(inti_model(video), expected, video.dtype, f"{what}: torch_impl")
    assert_close(ref.forward(params, video.numpy(), cfg), expected, video.dtype, f"{what}: ref")


def numpy_state(module_or_sd) -> dict:
    sd = module_or_sd.state_dict() if isinstance(module_or_sd, torch.nn.Module) else module_or_sd
    return {k: v.detach().numpy() for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------
# module-scope models: built once, never modified by a test (copy before casting)


@pytest.fixture(scope="module")
def timm_tiny():  # vit_tiny_patch16_224 at 64 px: 12 blocks, width 192, 3 heads, a 1000-class head
    return make_timm("vit_tiny_patch16_224", img_size=64)


@pytest.fixture(scope="module")
def timm_base():  # vit_base_patch16_224 at 32 px (a 2 x 2 grid), no head: it returns timm's pre-logits
    return make_timm("vit_base_patch16_224", img_size=32, num_classes=0)


@pytest.fixture(scope="module")
def open_clip_b16():  # open_clip ViT-B-16 (exact GELU) at 32 px: 12 blocks, width 768, proj to 512
    return make_open_clip("ViT-B-16", 32)


@pytest.fixture(scope="module")
def open_clip_s16():  # open_clip ViT-S-16 with QuickGELU, OpenAI's architecture: width 384, 6 heads
    return make_open_clip("ViT-S-16", 64, force_quick_gelu=True)


# ---------------------------------------------------------------------------------------------
# parity: our naive forward equals the library's own


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("which", ["tiny", "base"])
def test_timm_parity(which, dtype, request):
    model = copy.deepcopy(request.getfixturevalue(f"timm_{which}")).to(dtype)
    inti = from_timm(model)
    params, cfg = ck.convert_state_dict(model.state_dict())
    assert inti.cfg == cfg and inti.pos_embed.dtype == dtype
    assert (cfg.activation, cfg.ln_eps, cfg.ln_pre, cfg.patch_bias, cfg.embed_dim) == ("gelu", 1e-6, False, True, None)
    assert cfg.num_classes == (1000 if which == "tiny" else 0) and cfg.depth == 12
    check_parity(model, inti, params, cfg, video_for(cfg, frames=2, batch=2 if which == "tiny" else 1, dtype=dtype),
                 f"timm vit_{which}")


@pytest.mark.parametrize("name, activation", [
    ("vit_base_patch16_clip_224", "gelu"),
    ("vit_base_patch32_clip_quickgelu_224", "quick_gelu"),
])
def test_timm_clip_parity(name, activation):
    """timm's vit_*_clip_* models: norm_pre (our ln_pre), no patch bias, eps 1e-5, a head with bias."""
    model = make_timm(name, img_size=64, depth=2)
    inti = from_timm(model)  # the model object tells its activation
    assert (inti.cfg.activation, inti.cfg.ln_eps, inti.cfg.ln_pre, inti.cfg.patch_bias) == (activation, 1e-5, True, False)
    # A state dict does not: the default is exact GELU, and QuickGELU is an override.
    params, cfg = ck.convert_state_dict(model.state_dict(), activation=activation)
    assert cfg == inti.cfg
    check_parity(model, inti, params, cfg, video_for(cfg), name)


def test_timm_state_dict_cannot_tell_quickgelu():
    """The activation is not in the shapes: a quickgelu state dict read with the default is wrong
    (this is what the override above is for)."""
    model = make_timm("vit_base_patch32_clip_quickgelu_224", img_size=64, depth=2)
    video = video_for(64)
    assert rel_err(from_timm(model.state_dict())(video), per_frame_mean(model, video)) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_open_clip_parity(open_clip_b16, dtype):
    visual = copy.deepcopy(open_clip_b16[0]).to(dtype)
    inti = from_clip(visual)  # nn.GELU in the model: read as open_clip
    params, cfg = ck.convert_state_dict(visual.state_dict(), layout="open_clip")
    assert inti.cfg == cfg
    assert (cfg.width, cfg.depth, cfg.heads, cfg.embed_dim, cfg.activation, cfg.ln_pre) == (768, 12, 12, 512, "gelu", True)
    check_parity(visual, inti, params, cfg, video_for(cfg, dtype=dtype), "open_clip ViT-B-16")


def test_openai_clip_layout_parity(open_clip_s16):
    """OpenAI CLIP's layout: the state dict of a whole CLIP model, with the visual. prefix and
    the text tower; read by default as OpenAI's (QuickGELU). open_clip's -quickgelu models are
    OpenAI's architecture, and open_clip loads OpenAI's weights into them."""
    visual, text_keys = open_clip_s16
    whole = {"visual." + k: v for k, v in visual.state_dict().items()}
    whole |= {k: torch.zeros(1) for k in text_keys}  # the text tower is ignored, whatever it holds
    assert "logit_scale" in whole and "transformer.resblocks.0.attn.in_proj_weight" in whole
    inti = from_clip(whole)
    params, cfg = ck.convert_state_dict(whole)
    assert inti.cfg == cfg and cfg.activation == "quick_gelu" and cfg.heads == 6
    check_parity(visual, inti, params, cfg, video_for(cfg), "OpenAI-layout CLIP ViT-S/16")


def test_open_clip_state_dict_layouts_differ_only_in_activation(open_clip_b16):
    """The same keys read as "clip" and as "open_clip" give the same model but the activation."""
    sd = open_clip_b16[0].state_dict()
    (_, as_clip), (_, as_open_clip) = ck.convert_state_dict(sd), ck.convert_state_dict(sd, layout="open_clip")
    assert as_clip.activation == "quick_gelu" and as_clip.replace(activation="gelu") == as_open_clip


def test_heads_come_from_the_model_object():
    """Shapes cannot tell heads: a state dict gets width // 64 [ours]; a model object its own."""
    model = make_timm("vit_tiny_patch16_224", img_size=32, depth=2, num_heads=4)
    video = video_for(32)
    assert from_timm(model).cfg.heads == 4
    assert_close(from_timm(model)(video), per_frame_mean(model, video), torch.float64, "heads from the model")
    from_sd = from_timm(model.state_dict())
    assert from_sd.cfg.heads == 3 and rel_err(from_sd(video), per_frame_mean(model, video)) > 1e-3
    assert_close(from_timm(model.state_dict(), heads=4)(video), per_frame_mean(model, video), torch.float64, "heads=4")


def test_default_heads():
    assert [ck.default_heads(w) for w in (192, 384, 768, 1024, 1280, 1408, 1664, 32)] == [3, 6, 12, 16, 16, 16, 16, 1]


# ---------------------------------------------------------------------------------------------
# InTI on a converted model: the predictors are new, with a zero score layer


def test_converted_model_merges_by_plain_mean(timm_tiny):
    inti = from_timm(timm_tiny, schedule=(2, 4))
    params, cfg = ck.convert_state_dict(timm_tiny.state_dict(), schedule=(2, 4))
    assert cfg.schedule == (2, 4) and all(not params[k].any() for k in params if ".score." in k)
    video = video_for(cfg, frames=4)
    with torch.no_grad():
        logits, trace = inti(video, return_trace=True)
    for j, after in enumerate(("blocks.1", "blocks.3")):
        assert torch.all(trace[merge_key(j, "weights")] == 0.5)
        pairs = trace[after].unflatten(1, (-1, 2))  # (b, t/2, 2, N, C)
        assert_close(trace[merge_key(j, "tokens")], pairs.mean(dim=2), torch.float64, f"merge {j} is the pair mean")
    assert_close(ref.forward(params, video.numpy(), cfg), logits, torch.float64, "ref vs torch with merges")
    # Identical frames merge to themselves (spec/00-method.md §5, invariant 3), so the output is timm's on one frame.
    still = video[:, :1].expand(-1, 4, -1, -1, -1).contiguous()
    with torch.no_grad():
        assert_close(inti(still), timm_tiny(still[:, 0]), torch.float64, "identical frames")


# ---------------------------------------------------------------------------------------------
# round trips: theirs -> ours -> theirs is exact


def assert_same_state(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for k in expected:
        assert actual[k].dtype == expected[k].dtype and actual[k].shape == expected[k].shape, k
        assert torch.equal(actual[k], expected[k]), f"{k} changed in the round trip"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_round_trip_timm(dtype):
    for name in ("vit_tiny_patch16_224", "vit_base_patch16_clip_224"):
        sd = make_timm(name, dtype=dtype, img_size=32, depth=2).state_dict()
        model = from_timm(sd)
        assert model.pos_embed.dtype == dtype
        assert_same_state(export_state_dict(model, "timm"), sd)


def test_round_trip_clip(open_clip_s16):
    sd = {k: v.float() for k, v in open_clip_s16[0].state_dict().items()}
    for layout in ("clip", "open_clip"):
        model = from_clip(sd, layout=layout)
        assert_same_state(export_state_dict(model, layout), sd)
        whole = export_state_dict(from_clip({"visual." + k: v for k, v in sd.items()}, layout=layout), layout,
                                  prefix="visual.")
        assert_same_state(whole, {"visual." + k: v for k, v in sd.items()})


def test_round_trip_numpy(timm_tiny, open_clip_b16):
    """ref alone: NumPy in, NumPy out, the same arrays; the predictors stay out of the export."""
    for sd, layout in ((numpy_state(timm_tiny), "timm"), (numpy_state(open_clip_b16[0]), "open_clip")):
        params, cfg = ck.convert_state_dict(sd, schedule=(1,), layout=layout)
        assert any(k.startswith("merges.") for k in params)
        back = ck.to_layout(params, cfg, layout)
        assert sorted(back) == sorted(sd) and all(np.array_equal(back[k], sd[k]) for k in sd)


@pytest.mark.parametrize("layout, changes", [
    ("timm", dict(activation="gelu", ln_eps=1e-6, ln_pre=False, patch_bias=True, embed_dim=None, num_classes=10)),
    ("timm", dict(activation="gelu", ln_eps=1e-5, ln_pre=True, patch_bias=False, embed_dim=None, num_classes=0)),
    ("clip", dict(activation="quick_gelu", ln_eps=1e-5, ln_pre=True, embed_dim=32, num_classes=0)),
    ("open_clip", dict(activation="gelu", ln_eps=1e-5, ln_pre=True, embed_dim=None, num_classes=0, mlp_ratio=2.0)),
])
def test_round_trip_ours(layout, changes):
    """ours -> theirs -> ours is exact, config included (heads given: the shapes cannot tell it)."""
    cfg = ref.preset("nano", schedule=(), **changes)
    params = ref.init_params(cfg, seed=1)
    back, cfg_back = ck.convert_state_dict(ck.to_layout(params, cfg, layout), layout=layout, heads=cfg.heads)
    assert cfg_back == cfg and sorted(back) == sorted(params)
    assert all(np.array_equal(back[k], params[k]) for k in params)


# ---------------------------------------------------------------------------------------------
# position embeddings at another image size


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("n", [1, 2, 7, 14])
def test_bicubic_is_identity_at_native_size(n, antialias):
    assert np.array_equal(pos_embed.bicubic_matrix(n, n, antialias), np.eye(n))
    pos = np.random.default_rng(0).standard_normal((n * n + 1, 8))
    assert np.array_equal(pos_embed.resample_pos_embed(pos, n, n, antialias), pos)


@settings(max_examples=60, deadline=None)
@given(old=st.integers(1, 24), new=st.integers(1, 24), antialias=st.booleans())
@example(old=14, new=10, antialias=True)  # ViT-B/16 from 224 to 160
@example(old=14, new=10, antialias=False)
@example(old=16, new=24, antialias=True)  # ViT-L/14 from 224 to 336
@example(old=7, new=2, antialias=True)
def test_bicubic_matches_torch(old, new, antialias):
    """resample_pos_embed is torch's F.interpolate(bicubic, align_corners=False), grid (h w) row-major."""
    pos = np.random.default_rng(old * 100 + new).standard_normal((old * old + 1, 5))
    grid = torch.from_numpy(pos[1:]).reshape(1, old, old, 5).permute(0, 3, 1, 2)  # (1, C, h, w)
    resized = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False, antialias=antialias)
    expected = np.concatenate([pos[:1], resized.permute(0, 2, 3, 1).reshape(new * new, 5).numpy()])
    ours = pos_embed.resample_pos_embed(pos, old, new, antialias)
    assert ours.shape == (new * new + 1, 5)
    assert_close(ours, expected, "float64", f"resample {old} -> {new}, antialias={antialias}")


def test_resample_matches_timm_float32():
    from timm.layers import resample_abs_pos_embed

    pos = np.random.default_rng(0).standard_normal((197, 16)).astype(np.float32)  # ViT-B/16 at 224
    for antialias in (True, False):
        theirs = resample_abs_pos_embed(torch.from_numpy(pos)[None], [10, 10], antialias=antialias)[0]
        ours = pos_embed.resample_pos_embed(pos, 14, 10, antialias)
        assert ours.dtype == np.float32 and ours.shape == (101, 16)
        assert_close(ours, theirs, "float32", f"timm resample_abs_pos_embed, antialias={antialias}")


def test_other_image_size_224_to_160():
    """from_timm(..., image_size=160) on a 224 checkpoint is timm's model at 160 with the
    position grid resampled as timm's loader does it (bicubic, antialias)."""
    model = make_timm("vit_tiny_patch16_224", depth=2)
    inti = from_timm(model, image_size=160)
    params, cfg = ck.convert_state_dict(model.state_dict(), image_size=160)
    assert cfg.image_size == 160 and params["pos_embed"].shape == (101, 192) and inti.cfg == cfg
    at_160 = make_timm("vit_tiny_patch16_224", depth=2, img_size=160)
    sd = model.state_dict()
    # timm's resample_abs_pos_embed, in float64 (timm itself casts to float32 first)
    grid = sd["pos_embed"][:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(10, 10), mode="bicubic", align_corners=False, antialias=True)
    sd["pos_embed"] = torch.cat([sd["pos_embed"][:, :1], grid.permute(0, 2, 3, 1).reshape(1, 100, -1)], dim=1)
    at_160.load_state_dict(sd)
    check_parity(at_160, inti, params, cfg, video_for(160), "timm tiny at 160")
    # and timm's own loader (float32 arithmetic) agrees to the float32 tolerance
    theirs = timm.models.vision_transformer.checkpoint_filter_fn(
        {k: v.float() for k, v in model.state_dict().items()}, at_160)["pos_embed"]
    assert_close(params["pos_embed"], theirs[0], "float32", "timm's checkpoint_filter_fn")


def test_image_size_must_fit_the_patches(timm_tiny):
    with pytest.raises(ValueError, match="image_size must be a multiple of patch_size"):
        ck.convert_state_dict(timm_tiny.state_dict(), image_size=100)


# ---------------------------------------------------------------------------------------------
# files on disk


@pytest.fixture(scope="module")
def small_timm():
    return make_timm("vit_tiny_patch16_224", dtype=torch.float32, img_size=32, depth=2)


@pytest.mark.parametrize("filename, wrap", [
    ("model.safetensors", None),
    ("pytorch_model.bin", None),
    ("checkpoint.pt", "state_dict"),
    ("checkpoint.pth", "model"),
    ("ddp.pt", "module."),
])
def test_checkpoint_files(small_timm, tmp_path, filename, wrap):
    from safetensors.torch import save_file

    sd = small_timm.state_dict()
    path = tmp_path / filename
    if filename.endswith(".safetensors"):
        save_file(sd, path)
    elif wrap == "module.":
        torch.save({"module." + k: v for k, v in sd.items()}, path)
    else:
        torch.save({wrap: sd, "epoch": 3} if wrap else sd, path)
    assert_same_state(read_state_dict(path), sd)
    expected = export_state_dict(from_timm(small_timm), "timm")
    for model in (from_timm(path), from_weights(path), from_weights(str(path))):
        assert model.pos_embed.dtype == torch.float32
        assert_same_state(export_state_dict(model, "timm"), expected)
    params, cfg = ck.convert_state_dict(path)  # ref alone reads the file too
    assert cfg == from_timm(small_timm).cfg and np.array_equal(params["pos_embed"], sd["pos_embed"][0].numpy())


def test_openai_torchscript_file(tmp_path):
    """OpenAI's CLIP downloads are TorchScript archives of the whole model (visual. prefix)."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    class Whole(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = VisionTransformer(32, 16, 64, 2, 1, 4.0, output_dim=16, act_layer=QuickGELU)
            self.logit_scale = torch.nn.Parameter(torch.ones([]))

        def forward(self, x):
            return self.visual(x)

    whole = randomize(Whole(), 0, POOL).double()
    path = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated, and tracing MultiheadAttention warns
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(whole, torch.zeros(1, 3, 32, 32, dtype=torch.float64)), path)
    inti = from_clip(path)  # width 64: one head by the width // 64 rule
    assert inti.cfg.activation == "quick_gelu" and inti.cfg.embed_dim == 16
    video = video_for(32)
    assert_close(inti(video), per_frame_mean(whole.visual, video), torch.float64, "TorchScript CLIP file")
    # the one loader reads the archive's tensors, as the ViT's own state dict holds them
    loaded = read_state_dict(path)
    assert loaded.keys() == whole.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in whole.state_dict().items())


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        from_weights(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no weights file at"):
        read_state_dict(tmp_path / "missing.pt")
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"weights\.h5': it is empty"):
        from_weights(tmp_path / "weights.h5")
    (tmp_path / "weights.h5").write_bytes(b"an HDF5 file is not read here\n" * 4)
    with pytest.raises(ValueError, match="is not a weights file inti knows"):
        from_weights(tmp_path / "weights.h5")
    with pytest.raises(ValueError, match="unknown weights file format '.h5'"):
        read_state_dict(tmp_path / "weights.h5")


# ---------------------------------------------------------------------------------------------
# errors: unknown and partial layouts, what the layouts cannot hold


def test_unknown_layout_lists_the_keys():
    sd = {"encoder.layer.0.weight": np.zeros((4, 4)), "embeddings.cls": np.zeros(4)}
    with pytest.raises(ValueError, match=r"matches no known layout .* Keys that did not fit: embeddings\.cls \(4,\), "
                                         r"encoder\.layer\.0\.weight \(4, 4\)"):
        ck.convert_state_dict(sd)
    with pytest.raises(ValueError, match="the state dict is empty"):
        from_weights({})


def test_partial_layouts_name_the_keys(small_timm):
    sd = small_timm.state_dict()
    without = {k: v for k, v in sd.items() if k != "blocks.1.mlp.fc2.bias"}
    with pytest.raises(ValueError, match=r"timm layout .* missing 1 key\(s\): blocks\.1\.mlp\.fc2\.bias$"):
        from_timm(without)
    extra = sd | {"blocks.0.ls1.gamma": torch.ones(192), "reg_token": torch.zeros(1, 4, 192)}
    with pytest.raises(ValueError, match=r"unexpected 2 key\(s\): blocks\.0\.ls1\.gamma \(192,\), reg_token \(1, 4, 192\)"):
        from_timm(extra)
    wrong = sd | {"blocks.0.attn.proj.bias": torch.zeros(5)}
    with pytest.raises(ValueError, match=r"wrong shape: blocks\.0\.attn\.proj\.bias: expected \(192,\), got \(5,\)"):
        from_timm(wrong)
    with pytest.raises(ValueError, match="lacks the keys that fix its shape: pos_embed"):
        from_timm({k: v for k, v in sd.items() if k != "pos_embed"})
    no_class_row = sd | {"pos_embed": torch.zeros(1, 4, 192)}  # timm's no_embed_class
    with pytest.raises(ValueError, match=r"class-token row .* got \(1, 4, 192\)"):
        from_timm(no_class_row)


def test_wrong_family_and_model_type(small_timm, open_clip_b16):
    with pytest.raises(ValueError, match="keys are in the clip layout"):
        from_timm(open_clip_b16[0].state_dict())
    with pytest.raises(ValueError, match="keys are in the timm layout"):
        from_clip(small_timm.state_dict())
    with pytest.raises(TypeError, match="not a CLIP / open_clip ViT"):
        from_clip(small_timm)
    with pytest.raises(ValueError, match="from_clip takes layout"):
        from_clip(open_clip_b16[0], layout="timm")


def test_timm_models_that_pool_otherwise():
    avg = make_timm("vit_tiny_patch16_224", img_size=32, depth=1, global_pool="avg")
    with pytest.raises(ValueError, match="global_pool='avg'"):
        from_timm(avg)
    with pytest.raises(ValueError, match=r"unexpected 2 key\(s\): fc_norm\.bias"):
        from_timm(avg.state_dict())
    with pytest.raises(ValueError, match="register tokens"):
        from_timm(make_timm("vit_tiny_patch16_224", img_size=32, depth=1, reg_tokens=4))


def test_overrides_cannot_contradict_shapes(small_timm):
    sd = small_timm.state_dict()
    with pytest.raises(ValueError, match="width=512 contradicts the state dict, whose shapes give width=192"):
        from_timm(sd, width=512)
    with pytest.raises(ValueError, match="cannot split width 192 into 5 heads"):
        from_timm(sd, heads=5)
    with pytest.raises(TypeError, match="unknown ModelConfig field"):
        from_timm(sd, colour="red")
    assert from_timm(sd, width=192, weight_fn="sigmoid", schedule=(1,)).cfg.weight_fn == "sigmoid"


def test_exports_that_the_layout_cannot_hold(small_timm, open_clip_s16):
    gelu_clip = from_clip(open_clip_s16[0].state_dict(), layout="open_clip")
    with pytest.raises(ValueError, match="timm's ViT has no projection, but embed_dim=384"):
        export_state_dict(gelu_clip, "timm")
    with pytest.raises(ValueError, match="conv1 has no bias.*no classifier head.*eps 1e-5"):
        export_state_dict(from_timm(small_timm), "open_clip")
    with pytest.raises(ValueError, match="OpenAI CLIP uses QuickGELU"):
        export_state_dict(gelu_clip, "clip")
    with pytest.raises(ValueError, match="layout must be one of"):
        export_state_dict(from_timm(small_timm), "keras")
