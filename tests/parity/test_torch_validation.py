"""Every validation error at the torch entry points, with ref's message for the same input.

Where a check exists in both implementations, the torch error must be the same exception
type with the same text as `ref.forward`'s on the same bad input (the project's rule for errors: the user
sees one message, whichever implementation they call). Where torch has its own rule (a
non-tensor input, half-precision dtypes, video and parameter dtypes that differ), the test
states the message it expects.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ref
import torch_impl
from torch_impl.checks import dtype_name
from strategies import make_video

NANO = ref.preset("nano")  # 64 px, patch 8, width 64, depth 4, heads 4, S = (1, 2)
TORCH_ALLOWED = "float64 or float32 or bfloat16 or float16"
REF_ALLOWED = "float64 or float32"


@pytest.fixture(scope="module")
def params():
    return ref.init_params(NANO)


@pytest.fixture(scope="module")
def model(params):
    return torch_impl.from_ref_params(params, NANO, torch.float64).eval()


def error_of(fn, *args, **kwargs) -> BaseException:
    """The exception `fn` raises; fails the test if it returns."""
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as e:
        return e
    pytest.fail(f"{getattr(fn, '__name__', fn)} accepted the bad input")


def assert_same_error(torch_call, ref_call) -> str:
    """Both calls raise the same exception type with the same message; returns the message."""
    got, expected = error_of(*torch_call), error_of(*ref_call)
    assert type(got) is type(expected), f"torch raised {type(got).__name__}, ref {type(expected).__name__}"
    assert str(got) == str(expected)
    return str(got)


# ---- the video: shape, frames, values ---------------------------------------------------------

@pytest.mark.parametrize(
    "shape, words",
    [
        ((4, 3, 64, 64), "5 axes, got shape (4, 3, 64, 64) with 4 axes"),  # a clip without the batch axis
        ((1, 1, 4, 3, 64, 64), "with 6 axes"),
        ((1, 4, 64, 64, 3), "(channels-last? use (B, T, 3, H, W))"),
        ((1, 4, 1, 64, 64), "3 colour channels on axis 2"),
        ((1, 4, 3, 32, 32), "video frames must be 64x64 pixels for this config, got 32x32"),
        ((1, 4, 3, 64, 48), "got 64x48"),
        ((0, 4, 3, 64, 64), "at least one clip and one frame"),
        ((1, 0, 3, 64, 64), "at least one clip and one frame"),
    ],
)
def test_video_shape(model, params, shape, words):
    video = np.zeros(shape)
    message = assert_same_error((model, torch.from_numpy(video)), (ref.forward, params, video, NANO))
    assert words in message


@pytest.mark.parametrize(
    "frames, words",
    [
        (7, "InTI needs an even number of frames at block 1, got 7"),
        (6, "InTI needs an even number of frames at block 2, got 3"),  # 6 -> 3 at the second merge
        (2, "at block 2, got 1"),
        (1, "at block 1, got 1"),
    ],
)
def test_frames_the_schedule_cannot_halve(model, params, frames, words):
    video = make_video(NANO, frames, 1, seed=0)
    message = assert_same_error((model, torch.from_numpy(video)), (ref.forward, params, video, NANO))
    assert words in message and "needs a multiple of 4 input frames" in message


def test_seven_frames_at_a_later_merge():
    cfg = ref.preset("nano", schedule=(3,))
    params = ref.init_params(cfg)
    video = make_video(cfg, 7, 1, seed=0)
    model = torch_impl.from_ref_params(params, cfg)
    message = assert_same_error((model, torch.from_numpy(video)), (ref.forward, params, video, cfg))
    assert message.startswith("InTI needs an even number of frames at block 3, got 7")


@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [-np.inf], [np.nan, np.inf, -np.inf, np.nan, np.nan]])
def test_non_finite_pixels(model, params, bad):
    video = make_video(NANO, 4, 2, seed=0)
    flat = video.reshape(-1)
    flat[np.linspace(0, flat.size - 1, len(bad)).astype(int)] = bad
    message = assert_same_error((model, torch.from_numpy(video)), (ref.forward, params, video, NANO))
    assert f"got {len(bad)} NaN or infinite value(s)" in message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_non_finite_pixels_in_half_precision(params, dtype):
    """Half-precision videos exist only in torch; the message is ref's for the same pixels."""
    model = torch_impl.from_ref_params(params, NANO, dtype)
    video = make_video(NANO, 4, 1, seed=0).astype(np.float32)
    video[0, 1, 2, 3, 4] = np.nan
    video[0, 3, 0, 0, 0] = np.inf
    message = assert_same_error((model, torch.from_numpy(video).to(dtype)), (ref.forward, params, video, NANO))
    assert "got 2 NaN or infinite value(s)" in message


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool, torch.complex64])
def test_non_float_video(model, params, dtype):
    """ref accepts float64 and float32 only; torch adds the half-precision dtypes, and says so."""
    video = torch.zeros(1, 4, 3, 64, 64, dtype=dtype)
    got = error_of(model, video)
    expected = error_of(ref.forward, params, video.numpy(), NANO)
    assert type(got) is type(expected) is TypeError
    assert str(got) == str(expected).replace(f"({REF_ALLOWED})", f"({TORCH_ALLOWED})")
    assert f"({TORCH_ALLOWED}), got {str(dtype).replace('torch.', '')}" in str(got)
    assert "ref.preprocess.preprocess" in str(got)


def test_integer_dtype_comes_before_shape(model, params):
    """dtype is checked first in both: a uint8 channels-last clip is told about its dtype."""
    video = np.zeros((1, 4, 64, 64, 3), dtype=np.uint8)
    got, expected = error_of(model, torch.from_numpy(video)), error_of(ref.forward, params, video, NANO)
    assert type(got) is type(expected) is TypeError and "got uint8" in str(got) and "got uint8" in str(expected)


@pytest.mark.parametrize("video", [np.zeros((1, 4, 3, 64, 64)), [[0.0]], None, 3.0])
def test_non_tensor_video(model, video):
    got = error_of(model, video)
    assert isinstance(got, TypeError)
    assert str(got) == f"video must be a torch.Tensor of shape (B, T, 3, H, W), got {type(video).__name__}"


def test_tensor_given_to_ref_is_the_mirror_message(model, params):
    """ref's own rule for the other library's array: the same sentence, its own type named."""
    expected = error_of(ref.forward, params, torch.zeros(1, 4, 3, 64, 64), NANO)
    got = error_of(model, np.zeros((1, 4, 3, 64, 64)))
    assert str(expected) == str(got).replace("torch.Tensor", "numpy array").replace("ndarray", "Tensor")


# ---- video dtype against the model's dtype ----------------------------------------------------

@pytest.mark.parametrize(
    "model_dtype, video_dtype",
    [(torch.float64, torch.float32), (torch.float32, torch.float64), (torch.float32, torch.bfloat16), (torch.bfloat16, torch.float16)],
)
def test_video_dtype_differs_from_the_parameters(params, model_dtype, video_dtype):
    model = torch_impl.from_ref_params(params, NANO, model_dtype)
    video = torch.zeros(1, 4, 3, 64, 64, dtype=video_dtype)
    got = error_of(model, video)
    v, m = dtype_name(video_dtype), dtype_name(model_dtype)
    assert isinstance(got, TypeError)
    assert str(got) == (
        f"video is {v} but the model's parameters are {m}; "
        f"convert one of them (model.to(torch.{v})) or run under torch.autocast"
    )


def test_autocast_allows_a_video_of_another_dtype(params):
    """Under autocast the dtypes may differ: a bfloat16 clip into a float32 model runs."""
    model = torch_impl.from_ref_params(params, NANO, torch.float32).eval()
    video = torch.from_numpy(make_video(NANO, 4, 1, seed=0)).to(torch.bfloat16)
    with pytest.raises(TypeError, match="video is bfloat16 but the model's parameters are float32"):
        model(video)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(video)
    assert logits.shape == (1, NANO.num_classes) and torch.isfinite(logits.float()).all()


def test_autocast_still_checks_shape_and_values(params):
    model = torch_impl.from_ref_params(params, NANO, torch.float32).eval()
    video = make_video(NANO, 4, 1, seed=0).astype(np.float32)
    video[0, 0, 0, 0, 0] = np.nan
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_same_error((model, torch.from_numpy(video)), (ref.forward, params, video, NANO))
        assert_same_error((model, torch.zeros(1, 6, 3, 64, 64)), (ref.forward, params, np.zeros((1, 6, 3, 64, 64)), NANO))


# ---- building a model -------------------------------------------------------------------------

@pytest.mark.parametrize("frames", [7, 6, 2])
def test_model_built_for_a_frame_count_the_schedule_cannot_halve(params, frames):
    video = make_video(NANO, frames, 1, seed=0)
    message = assert_same_error((torch_impl.InTIModel, NANO, "sdpa", frames), (ref.forward, params, video, NANO))
    assert message.startswith("InTI needs an even number of frames at block")


def test_model_built_for_a_valid_frame_count():
    assert torch_impl.InTIModel(NANO, frames=8).cfg == NANO


def test_model_needs_a_config():
    got = error_of(torch_impl.InTIModel, "nano")
    assert isinstance(got, TypeError) and str(got) == "cfg must be a ref.ModelConfig, got str"


def test_attention_path_names(model):
    got = error_of(torch_impl.InTIModel, NANO, attn_path="flash")
    assert isinstance(got, ValueError) and "attn_path must be one of ('sdpa', 'explicit'), got 'flash'" == str(got)
    got = error_of(model.set_attn_path, "flash")
    assert isinstance(got, ValueError) and "one of ('sdpa', 'explicit'), got 'flash'" in str(got)
    assert model.attn_path == "sdpa"


# ---- parameters -------------------------------------------------------------------------------

def _missing(p):
    return {k: v for k, v in p.items() if k not in ("blocks.2.attn.qkv.bias", "merges.1.score.weight")}


def _extra(p):
    return {**p, "blocks.9.norm1.weight": np.ones(64), "merges.5.score.bias": np.zeros(1)}


def _misshaped(p):
    return {**p, "pos_embed": np.zeros((64, 64)), "merges.0.local.weight": np.zeros((16, 3, 3, 3))}


def _all_three(p):
    return _misshaped(_extra(_missing(p)))


@pytest.mark.parametrize(
    "corrupt, words",
    [
        (_missing, ["missing 2 key(s): blocks.2.attn.qkv.bias, merges.1.score.weight"]),
        (_extra, ["unexpected 2 key(s): blocks.9.norm1.weight (64,), merges.5.score.bias (1,)"]),
        (_misshaped, ["pos_embed: expected (65, 64), got (64, 64)", "merges.0.local.weight: expected (16, 1, 3, 3, 3)"]),
        (_all_three, ["missing 2", "unexpected 2", "wrong shape"]),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_ref_params_with_bad_keys(params, corrupt, words, dtype):
    bad = corrupt(params)
    video = make_video(NANO, 4, 1, seed=0)
    message = assert_same_error((torch_impl.from_ref_params, bad, NANO, dtype), (ref.forward, bad, video, NANO))
    assert message.startswith("parameters do not match the config: ")
    assert all(w in message for w in words), message


def test_from_ref_params_for_another_config(params):
    """nano's parameters with the channel-granularity config: every score layer is mis-shaped."""
    cfg = NANO.replace(weight_granularity="channel")
    video = make_video(cfg, 4, 1, seed=0)
    message = assert_same_error((torch_impl.from_ref_params, params, cfg), (ref.forward, params, video, cfg))
    assert "merges.0.score.weight: expected (64, 16), got (1, 16)" in message


def test_from_ref_params_needs_a_dict(params):
    video = make_video(NANO, 4, 1, seed=0)
    pairs = list(params.items())
    message = assert_same_error((torch_impl.from_ref_params, pairs, NANO), (ref.forward, pairs, video, NANO))
    assert message == "params must be a dict of arrays, got list"


# ---- contributions ----------------------------------------------------------------------------

def test_contributions_of_no_merges():
    assert_same_error((torch_impl.contributions, []), (ref.contributions, []))
