"""Every validation error of `ref.forward`, `ref.ModelConfig` and `ref.preset`.

Each case asserts the exception type and the part of the message a user needs: what was
expected and what came instead (the project's rule for errors).
"""

from __future__ import annotations

import numpy as np
import pytest

import ref
from strategies import make_video

NANO = ref.preset("nano")  # 64 px, patch 8, width 64, depth 4, heads 4, S = (1, 2)


@pytest.fixture(scope="module")
def params():
    return ref.init_params(NANO)


def video(shape=(1, 4, 3, 64, 64), dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


# ---- the video ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "shape, match",
    [
        ((4, 3, 64, 64), r"shape \(B, T, 3, H, W\), 5 axes, got shape \(4, 3, 64, 64\) with 4 axes"),
        ((1, 1, 4, 3, 64, 64), r"5 axes, got shape \(1, 1, 4, 3, 64, 64\) with 6 axes"),
        ((1, 4, 64, 64, 3), r"3 colour channels on axis 2 .*got shape \(1, 4, 64, 64, 3\) \(channels-last\? use \(B, T, 3, H, W\)\)"),
        ((1, 4, 1, 64, 64), r"3 colour channels on axis 2 of \(B, T, 3, H, W\), got shape \(1, 4, 1, 64, 64\)$"),
        ((1, 4, 3, 32, 32), r"video frames must be 64x64 pixels for this config, got 32x32"),
        ((1, 4, 3, 64, 48), r"must be 64x64 pixels for this config, got 64x48"),
        ((0, 4, 3, 64, 64), r"at least one clip and one frame, got shape \(0, 4, 3, 64, 64\)"),
        ((1, 0, 3, 64, 64), r"at least one clip and one frame"),
    ],
)
def test_video_shape_errors(params, shape, match):
    with pytest.raises(ValueError, match=match):
        ref.forward(params, video(shape), NANO)


@pytest.mark.parametrize(
    "frames, match",
    [
        (7, r"even number of frames at block 1, got 7 \(schedule \(1, 2\) needs a multiple of 4 input frames, got 7\)"),
        (6, r"even number of frames at block 2, got 3 \(schedule \(1, 2\) needs a multiple of 4 input frames, got 6\)"),
        (2, r"even number of frames at block 2, got 1"),
        (1, r"even number of frames at block 1, got 1"),
    ],
)
def test_frames_the_schedule_cannot_halve(params, frames, match):
    with pytest.raises(ValueError, match=match):
        ref.forward(params, video((1, frames, 3, 64, 64)), NANO)


def test_one_merge_with_seven_frames():
    cfg = ref.preset("nano", schedule=(3,))
    with pytest.raises(ValueError, match=r"InTI needs an even number of frames at block 3, got 7"):
        ref.forward(ref.init_params(cfg), video((1, 7, 3, 64, 64)), cfg)


def test_any_frame_count_without_a_schedule():
    cfg = ref.preset("nano", schedule=())
    out = ref.forward(ref.init_params(cfg), make_video(cfg, 3, 1, seed=0), cfg)
    assert out.shape == (1, cfg.num_classes)


@pytest.mark.parametrize("value, count", [(np.nan, 1), (np.inf, 1), (-np.inf, 1)])
def test_non_finite_pixels(params, value, count):
    v = video()
    v[0, 3, 2, 63, 0] = value
    with pytest.raises(ValueError, match=rf"only finite pixel values, got {count} NaN or infinite value\(s\)"):
        ref.forward(params, v, NANO)


def test_non_finite_pixels_are_counted(params):
    v = video()
    v[0, 0, 0, :5, 0] = np.nan
    v[0, 1, 1, 0, :2] = np.inf
    with pytest.raises(ValueError, match=r"got 7 NaN or infinite value\(s\)"):
        ref.forward(params, v, NANO)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float16, np.complex128, np.bool_])
def test_non_float_dtypes_are_type_errors(params, dtype):
    with pytest.raises(TypeError, match=rf"floating array of normalized pixels \(float64 or float32\), got {np.dtype(dtype).name}; convert uint8 frames with ref.preprocess.preprocess"):
        ref.forward(params, video(dtype=dtype), NANO)


@pytest.mark.parametrize("value, kind", [([[0.0]], "list"), ((0.0,), "tuple"), (None, "NoneType"), (0.5, "float")])
def test_non_arrays_are_type_errors(params, value, kind):
    with pytest.raises(TypeError, match=rf"video must be a numpy array of shape \(B, T, 3, H, W\), got {kind}"):
        ref.forward(params, value, NANO)


def test_a_list_of_the_right_shape_is_still_refused(params):
    with pytest.raises(TypeError, match=r"numpy array .* got list"):
        ref.forward(params, video().tolist(), NANO)


def test_check_video_is_public_and_passes_a_good_video():
    assert ref.check_video(video(dtype=np.float32), NANO) is None


# ---- the parameters ------------------------------------------------------------------------

def test_missing_parameter(params):
    broken = {k: v for k, v in params.items() if k != "blocks.2.mlp.fc1.bias"}
    with pytest.raises(ValueError, match=r"parameters do not match the config: missing 1 key\(s\): blocks\.2\.mlp\.fc1\.bias"):
        ref.forward(broken, video(), NANO)


def test_extra_parameter(params):
    broken = dict(params, **{"merges.2.norm.weight": np.ones(64)})
    with pytest.raises(ValueError, match=r"unexpected 1 key\(s\): merges\.2\.norm\.weight"):
        ref.forward(broken, video(), NANO)


def test_misshaped_parameter(params):
    broken = dict(params, **{"merges.1.score.weight": np.zeros((64, 16))})
    with pytest.raises(ValueError, match=r"wrong shape: merges\.1\.score\.weight: expected \(1, 16\), got \(64, 16\)"):
        ref.forward(broken, video(), NANO)


def test_every_problem_is_named(params):
    broken = {k: v for k, v in params.items() if k not in ("cls_token", "pos_embed")}
    broken["head.weight"] = np.zeros((3, 32))
    broken["extra"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        ref.forward(broken, video(), NANO)
    message = str(info.value)
    for part in ("missing 2 key(s): cls_token, pos_embed", "unexpected 1 key(s): extra", "head.weight: expected (10, 32), got (3, 32)"):
        assert part in message, f"{part!r} not in {message!r}"


def test_parameters_for_another_config(params):
    """InTI parameters with S = () (use ref.backbone instead): the 2 x 11 merge keys are unexpected."""
    with pytest.raises(ValueError, match=r"unexpected 22 key\(s\): merges\.0\."):
        ref.forward(params, video(), NANO.replace(schedule=()))


def test_params_must_be_a_dict(params):
    with pytest.raises(TypeError, match=r"params must be a dict of arrays, got list"):
        ref.forward(list(params.values()), video(), NANO)


def test_video_is_checked_before_the_parameters():
    with pytest.raises(ValueError, match=r"even number of frames"):
        ref.forward({}, video((1, 7, 3, 64, 64)), NANO)


# ---- the config ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "changes, match",
    [
        ({"schedule": (0,)}, r"schedule entries must be block indices in 1\.\.4 \(counted from 1\), got 0 in schedule \(0,\)"),
        ({"schedule": (5,)}, r"block indices in 1\.\.4 .*got 5 in schedule \(5,\)"),
        ({"schedule": (1, 5)}, r"got 5 in schedule \(1, 5\)"),
        ({"schedule": (-1,)}, r"got -1"),
        ({"schedule": (2, 1)}, r"schedule must be strictly increasing, got \(2, 1\)"),
        ({"schedule": (2, 2)}, r"schedule must be strictly increasing, got \(2, 2\)"),
        ({"heads": 3}, r"heads must divide width, got width=64, heads=3"),
        ({"reduction": 3}, r"reduction must divide width, got width=64, reduction=3"),
        ({"patch_size": 7}, r"image_size must be a multiple of patch_size, got image_size=64, patch_size=7"),
        ({"width": 0}, r"ModelConfig\.width must be a positive integer, got 0"),
        ({"depth": -1}, r"ModelConfig\.depth must be a positive integer, got -1"),
        ({"heads": 2.0}, r"ModelConfig\.heads must be a positive integer, got 2\.0"),
        ({"image_size": True}, r"ModelConfig\.image_size must be a positive integer, got True"),
        ({"mlp_ratio": 0.0}, r"mlp_ratio must be positive, got 0\.0"),
        ({"mlp_ratio": float("nan")}, r"mlp_ratio must be positive, got nan"),
        ({"embed_dim": 0}, r"embed_dim must be a positive integer or None, got 0"),
        ({"num_classes": -1}, r"num_classes must be a non-negative integer \(0: no head\), got -1"),
        ({"ln_eps": 0.0}, r"ln_eps must be positive, got 0\.0"),
        ({"activation": "relu"}, r"activation must be one of \('quick_gelu', 'gelu'\), got 'relu'"),
        ({"weight_fn": "max"}, r"weight_fn must be one of \('softmax', 'sigmoid', 'mean'\), got 'max'"),
        ({"weight_granularity": "frame"}, r"weight_granularity must be one of \('token', 'channel'\), got 'frame'"),
        ({"branches": ("token", "global")}, r"branches must be distinct names from \('token', 'local', 'frame', 'clip'\), got \('token', 'global'\)"),
        ({"branches": ("token", "token")}, r"branches must be distinct names .*got \('token', 'token'\)"),
    ],
)
def test_config_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        ref.preset("nano", **changes)


@pytest.mark.parametrize("schedule", [(1.5,), (True,), ("2",)])
def test_non_integer_schedule_entries_are_refused(schedule):
    with pytest.raises(ValueError, match=r"schedule entries must be block indices"):
        ref.preset("nano", schedule=schedule)


def test_schedule_accepts_lists_and_numpy_integers():
    cfg = ref.preset("nano", schedule=[np.int64(1), 3])
    assert cfg.schedule == (1, 3) and all(type(k) is int for k in cfg.schedule)
    assert cfg == ref.preset("nano", schedule=(1, 3)) and hash(cfg) == hash(ref.preset("nano", schedule=(1, 3)))


def test_sizes_accept_numpy_integers():
    cfg = ref.preset("nano", width=np.int64(64), heads=np.int32(4))
    assert type(cfg.width) is int and type(cfg.heads) is int and cfg == ref.preset("nano")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        NANO.width = 32  # type: ignore[misc]


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'vit_h14'; choose one of \['nano', 'vit_b16', 'vit_l14'\]"):
        ref.preset("vit_h14")


def test_preset_changes_are_validated():
    with pytest.raises(ValueError, match=r"block indices in 1\.\.12 .*got 13"):
        ref.preset("vit_b16", schedule=(13,))
    assert ref.preset("vit_b16", schedule=(3, 6)).schedule == (3, 6)
    assert ref.preset("nano") is ref.PRESETS["nano"]
