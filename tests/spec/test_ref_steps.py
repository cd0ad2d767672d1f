"""Single steps of the NumPy spec against independent computations.

Each reference here is written differently from ref: known numbers, scipy
(stats.norm.cdf, ndimage.correlate), or explicit Python loops over heads, patches and
channels (fine in a test, never in ref). Also: parameter names and shapes (spec/00-method.md §3.5),
seeded initialization, checking and round-tripping a parameter dict, and the assertion
helpers of tests/support/tolerances.py.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.ndimage import correlate
from scipy.stats import norm

import ref
from ref.attention import attention
from ref.block import block, mlp
from ref.embed import embed, patch_embed, patchify
from ref.interpolation import interpolate, merge_weights, pair
from ref.layers import gelu, layer_norm, linear, quick_gelu
from ref.model import readout
from ref.params import scope
from ref.predictor import clip_branch, frame_branch, local_branch, predict_scores, reduce_tokens, token_branch
from strategies import configs, make_video, randomize_scores
from tolerances import assert_close, assert_trace_close

F64 = "float64"


# ---- independent implementations -----------------------------------------------------------

def layer_norm_manual(x, weight, bias, eps):
    mu = np.mean(x, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(np.var(x, axis=-1, keepdims=True) + eps) * weight + bias


def gelu_cdf(x):
    return x * norm.cdf(x)


def attention_loop(p, x, heads):
    """Per-head loop over every leading position: q, k, v from row blocks of qkv.weight."""
    C = x.shape[-1]
    e = C // heads
    out = np.empty_like(x)
    w, b = p["qkv.weight"], p["qkv.bias"]
    for lead in np.ndindex(*x.shape[:-2]):
        tokens = x[lead]  # (n, C)
        per_head = []
        for h in range(heads):
            rows = [slice(part * C + h * e, part * C + (h + 1) * e) for part in range(3)]  # q, k, v rows of head h
            q, k, v = (tokens @ w[r].T + b[r] for r in rows)
            logits = q @ k.T / math.sqrt(e)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            per_head.append(probs @ v)
        out[lead] = np.concatenate(per_head, axis=-1) @ p["proj.weight"].T + p["proj.bias"]
    return out


def local_correlate(p, z, grid):
    """Depthwise 3x3x3 cross-correlation per (clip, channel) with scipy, zero padding."""
    b, t, n, d = z.shape
    out = np.zeros_like(z)
    for i in range(b):
        for c in range(d):
            volume = z[i, :, 1:, c].reshape(t, grid, grid)
            out[i, :, 1:, c] = (correlate(volume, p["local.weight"][c, 0], mode="constant", cval=0.0) + p["local.bias"][c]).reshape(t, -1)
    return out


def random_predictor(cfg, seed):
    """One merge's θ parameters (prefix stripped), with a random score layer."""
    full = ref.init_params(cfg.replace(schedule=(1,) if not cfg.schedule else cfg.schedule), seed=seed)
    return scope(randomize_scores(full, cfg, seed=seed), "merges.0.")


# ---- layers --------------------------------------------------------------------------------

def test_layer_norm_known_values():
    # x = (1, 2, 3, 4): mean 2.5, biased variance 1.25; with eps 0.75 the std is sqrt(2)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    w, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 0.0, -1.0])
    expected = np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(2.0) * w + b
    assert_close(layer_norm(x, w, b, 0.75), expected, F64, name="layer_norm")
    # eps = 0, unit scale: zero mean and unit (biased) variance
    y = layer_norm(np.array([[3.0, -1.0, 7.0, 0.5, 2.0]]), np.ones(5), np.zeros(5), 0.0)
    assert abs(y.mean()) < 1e-15 and abs(y.var() - 1.0) < 1e-14


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(5,), (2, 7), (2, 3, 4, 6)]), eps=st.sampled_from([1e-5, 1e-6, 1.0]))
def test_layer_norm_matches_formula(seed, shape, eps):
    rng = np.random.default_rng(seed)
    x, w, b = 3.0 * rng.standard_normal(shape) + 1.0, rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    assert_close(layer_norm(x, w, b, eps), layer_norm_manual(x, w, b, eps), F64, name=f"layer_norm {shape}")


def test_gelu_known_values_and_cdf():
    assert gelu(np.array(0.0)) == 0.0
    assert_close(gelu(np.array([1.0, -1.0])), [0.8413447460685429, -0.15865525393145707], F64, name="gelu(±1)")
    x = np.linspace(-8, 8, 161)
    assert_close(gelu(x), gelu_cdf(x), F64, name="gelu vs x * Phi(x)")


def test_quick_gelu():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 4.0])
    expected = np.array([v / (1.0 + math.exp(-1.702 * v)) for v in x])
    assert_close(quick_gelu(x), expected, F64, name="quick_gelu")
    assert abs(quick_gelu(np.array(1.0)) - 0.84579577) < 1e-8  # 1 / (1 + e^-1.702)
    assert not np.allclose(quick_gelu(x), gelu_cdf(x), rtol=0, atol=1e-3)  # a different function


def test_linear_layout_is_out_by_in():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (out=3, in=2)
    np.testing.assert_array_equal(linear(x, w), [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(linear(x, w, np.array([0.5, 0.0, -3.0])), [[1.5, 2.0, 0.0]])


# ---- attention and the block ---------------------------------------------------------------

@given(
    heads=st.integers(1, 4), head_dim=st.integers(1, 4), n=st.integers(1, 6), lead=st.sampled_from([(), (3,), (2, 2)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_attention_matches_per_head_loop(heads, head_dim, n, lead, seed):
    rng = np.random.default_rng(seed)
    C = heads * head_dim
    p = {
        "qkv.weight": rng.standard_normal((3 * C, C)), "qkv.bias": rng.standard_normal(3 * C),
        "proj.weight": rng.standard_normal((C, C)), "proj.bias": rng.standard_normal(C),
    }
    x = rng.standard_normal((*lead, n, C))
    assert_close(attention(p, x, heads=heads), attention_loop(p, x, heads), F64, name=f"attention heads={heads}")


def test_attention_head_split_matters():
    """The loop reference distinguishes head layouts: one head is not four heads."""
    rng = np.random.default_rng(0)
    C = 8
    p = {"qkv.weight": rng.standard_normal((3 * C, C)), "qkv.bias": np.zeros(3 * C), "proj.weight": np.eye(C), "proj.bias": np.zeros(C)}
    x = rng.standard_normal((5, C))
    assert not np.allclose(attention(p, x, heads=4), attention_loop(p, x, 1))


@given(cfg=configs(max_merges=0), seed=st.integers(0, 2**32 - 1))
@example(cfg=ref.preset("nano", schedule=()), seed=0)
def test_block_and_mlp_match_manual(cfg, seed):
    rng = np.random.default_rng(seed)
    p = scope(ref.init_params(cfg, seed=seed), "blocks.0.")
    x = rng.standard_normal((2, 2, cfg.num_tokens, cfg.width))
    act = gelu_cdf if cfg.activation == "gelu" else (lambda v: v / (1.0 + np.exp(-1.702 * v)))
    h = layer_norm_manual(x, p["norm2.weight"], p["norm2.bias"], cfg.ln_eps)
    expected_mlp = act(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]) @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    assert_close(mlp(scope(p, "mlp."), h, activation=cfg.activation), expected_mlp, F64, name="mlp")
    y = x + attention_loop(scope(p, "attn."), layer_norm_manual(x, p["norm1.weight"], p["norm1.bias"], cfg.ln_eps), cfg.heads)
    h = layer_norm_manual(y, p["norm2.weight"], p["norm2.bias"], cfg.ln_eps)
    y = y + act(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]) @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    assert_close(block(p, x, cfg=cfg), y, F64, name="block")


# ---- embedding -------------------------------------------------------------------------------

@given(P=st.integers(1, 3), gh=st.integers(1, 3), gw=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_patchify_is_row_major_with_channel_major_patches(P, gh, gw, seed):
    video = np.random.default_rng(seed).standard_normal((2, 2, 3, gh * P, gw * P))
    expected = np.empty((2, 2, gh * gw, 3 * P * P))
    for i in range(gh):
        for j in range(gw):
            expected[:, :, i * gw + j] = video[:, :, :, i * P : (i + 1) * P, j * P : (j + 1) * P].reshape(2, 2, -1)
    np.testing.assert_array_equal(patchify(video, P), expected)


def test_patchify_known_layout():
    # one 4x4 frame, P = 2, pixel value = 100 * channel + 10 * row + column
    c, r, q = np.meshgrid(np.arange(3), np.arange(4), np.arange(4), indexing="ij")
    video = (100 * c + 10 * r + q)[None, None].astype(float)
    patches = patchify(video, 2)
    np.testing.assert_array_equal(patches[0, 0, 0], [0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211])
    np.testing.assert_array_equal(patches[0, 0, 1, :4], [2, 3, 12, 13])  # second patch: to the right
    np.testing.assert_array_equal(patches[0, 0, 2, :4], [20, 21, 30, 31])  # third: next row of patches


@given(cfg=configs(max_merges=0), seed=st.integers(0, 2**32 - 1))
def test_patch_embed_and_embed_match_loops(cfg, seed):
    p = ref.init_params(cfg, seed=seed)
    video = make_video(cfg, 2, 1, seed)
    P, g = cfg.patch_size, cfg.grid
    expected = np.empty((1, 2, cfg.num_patches, cfg.width))
    for i in range(g):
        for j in range(g):
            region = video[:, :, None, :, i * P : (i + 1) * P, j * P : (j + 1) * P]  # (b, t, 1, 3, P, P)
            expected[:, :, i * g + j] = (region * p["patch_embed.weight"]).sum(axis=(3, 4, 5))  # conv as a stride-P sum
    if cfg.patch_bias:
        expected = expected + p["patch_embed.bias"]
    assert_close(patch_embed(p, video, cfg=cfg), expected, F64, name="patch_embed")
    tokens = np.concatenate([np.broadcast_to(p["cls_token"], (1, 2, 1, cfg.width)), expected], axis=2) + p["pos_embed"]
    if cfg.ln_pre:
        tokens = layer_norm_manual(tokens, p["ln_pre.weight"], p["ln_pre.bias"], cfg.ln_eps)
    assert_close(embed(p, video, cfg=cfg), tokens, F64, name="embed (class token first)")


# ---- θ, the predictor ----------------------------------------------------------------------

@given(grid=st.integers(1, 4), frames=st.integers(1, 4), d=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
@example(grid=3, frames=2, d=2, seed=0)
def test_local_branch_matches_scipy_correlate(grid, frames, d, seed):
    rng = np.random.default_rng(seed)
    p = {"local.weight": rng.standard_normal((d, 1, 3, 3, 3)), "local.bias": rng.standard_normal(d)}
    z = rng.standard_normal((2, frames, grid * grid + 1, d))
    assert_close(local_branch(p, z, grid=grid), local_correlate(p, z, grid), F64, name="local branch")


def test_local_branch_is_cross_correlation_not_convolution():
    """A kernel with a single 1 at offset (+1, 0, +1) reads the neighbour at t+1, w+1."""
    kernel = np.zeros((1, 1, 3, 3, 3))
    kernel[0, 0, 2, 1, 2] = 1.0
    z = np.random.default_rng(0).standard_normal((1, 3, 10, 1))  # grid 3
    out = local_branch({"local.weight": kernel, "local.bias": np.zeros(1)}, z, grid=3)
    patches = z[0, :, 1:, 0].reshape(3, 3, 3)
    expected = np.zeros_like(patches)
    expected[:-1, :, :-1] = patches[1:, :, 1:]
    np.testing.assert_array_equal(out[0, :, 1:, 0].reshape(3, 3, 3), expected)


@given(cfg=configs(min_merges=1, weight_fns=("softmax", "sigmoid")), seed=st.integers(0, 2**32 - 1), frames=st.integers(1, 3))
@example(cfg=ref.preset("nano"), seed=0, frames=2)
def test_predictor_matches_manual(cfg, seed, frames):
    p = random_predictor(cfg, seed)
    x = np.random.default_rng(seed).standard_normal((2, frames, cfg.num_tokens, cfg.width))
    z = layer_norm_manual(x, p["norm.weight"], p["norm.bias"], cfg.ln_eps) @ p["reduce.weight"].T + p["reduce.bias"]
    assert_close(reduce_tokens(p, x, cfg=cfg), z, F64, name="reduce")
    manual = {
        "token": lambda: z @ p["token.weight"].T,
        "local": lambda: local_correlate(p, z, cfg.grid),
        "frame": lambda: np.repeat(z.mean(axis=2, keepdims=True) @ p["frame.weight"].T, cfg.num_tokens, axis=2),
        "clip": lambda: np.tile(z.mean(axis=(1, 2), keepdims=True) @ p["clip.weight"].T, (1, frames, cfg.num_tokens, 1)),
    }
    steps = {"token": lambda: token_branch(p, z), "frame": lambda: frame_branch(p, z), "clip": lambda: clip_branch(p, z)}
    fused = np.zeros_like(z)
    for name in cfg.branches:
        branch = manual[name]()
        if name in steps:
            assert_close(steps[name](), branch, F64, name=f"{name} branch")
        fused = fused + branch
    scores = gelu_cdf(fused) @ p["score.weight"].T + p["score.bias"]
    if cfg.weight_granularity == "token":
        scores = scores[..., 0]
    assert_close(predict_scores(p, x, cfg=cfg), scores, F64, name=f"scores (branches {cfg.branches})")


# ---- Φ: pairing, weights, interpolation ----------------------------------------------------

def test_pair_takes_neighbouring_frames():
    x = np.arange(2 * 6 * 3).reshape(2, 6, 3)
    p = pair(x)
    assert p.shape == (2, 3, 2, 3)
    for q in range(3):
        np.testing.assert_array_equal(p[:, q, 0], x[:, 2 * q])
        np.testing.assert_array_equal(p[:, q, 1], x[:, 2 * q + 1])


@pytest.mark.parametrize("channel", [False, True])
def test_merge_weights_are_stable_for_huge_scores(channel):
    # pairs (s0, s1): (1e4, -1e4) -> (1, 0); (1e4, 1e4) -> (1/2, 1/2); (-1e4, -1e4) -> (1/2, 1/2); (0, 1e4) -> (0, 1)
    s = np.array([[[1e4, 1e4, -1e4, 0.0], [-1e4, 1e4, -1e4, 1e4]]])  # (b=1, t=2, N=4)
    want = np.array([[[1.0, 0.5, 0.5, 0.0], [0.0, 0.5, 0.5, 1.0]]])
    if channel:
        s, want = np.repeat(s[..., None], 3, axis=-1), np.repeat(want[..., None], 3, axis=-1)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = merge_weights(s, "softmax")
        g = merge_weights(s, "sigmoid")
    np.testing.assert_array_equal(a, want)
    assert np.all(np.isfinite(g)) and np.all((g >= 0) & (g <= 1))
    np.testing.assert_array_equal(g, (s > 0) * 1.0 + (s == 0) * 0.5)
    np.testing.assert_array_equal(merge_weights(s, "mean"), 0.5)


@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_softmax_weights_match_the_two_frame_formula(seed, scale):
    s = scale * np.random.default_rng(seed).standard_normal((2, 4, 5))
    a = merge_weights(s, "softmax")
    first = 1.0 / (1.0 + np.exp(s[:, 1::2] - s[:, 0::2]))  # softmax over two values
    assert_close(a[:, 0::2], first, F64, name="weight of frame 2p")
    assert_close(a[:, 1::2], 1.0 - first, F64, name="weight of frame 2p+1")


@given(seed=st.integers(0, 2**32 - 1), channel=st.booleans())
def test_interpolate_matches_formula(seed, channel):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 3, 5))
    a = rng.random(x.shape if channel else x.shape[:-1])
    y = interpolate(x, a)
    assert y.shape == (2, 2, 3, 5)
    for p in range(2):
        w0, w1 = (a[:, 2 * p], a[:, 2 * p + 1]) if channel else (a[:, 2 * p, :, None], a[:, 2 * p + 1, :, None])
        assert_close(y[:, p], w0 * x[:, 2 * p] + w1 * x[:, 2 * p + 1], F64, name=f"pair {p}")


def test_readout_matches_manual():
    cfg = ref.preset("nano")
    p = ref.init_params(cfg, seed=3)
    x = np.random.default_rng(3).standard_normal((2, 3, cfg.num_tokens, cfg.width))
    pooled = np.mean([layer_norm_manual(x[:, t, 0], p["ln_post.weight"], p["ln_post.bias"], cfg.ln_eps) for t in range(3)], axis=0)
    features = pooled @ p["proj.weight"].T
    out = readout(p, x, cfg=cfg)
    assert_trace_close(out, {"pooled": pooled, "features": features, "logits": features @ p["head.weight"].T + p["head.bias"]}, F64)


# ---- configs ----------------------------------------------------------------------------

def test_derived_sizes():
    cfg = ref.preset("vit_l14")
    assert (cfg.grid, cfg.num_patches, cfg.num_tokens, cfg.head_dim) == (16, 256, 257, 64)
    assert (cfg.mlp_width, cfg.predictor_width, cfg.feature_dim, cfg.out_dim, cfg.min_frames) == (4096, 256, 768, 400, 2)
    nano = ref.preset("nano")
    assert (nano.grid, nano.num_tokens, nano.predictor_width, nano.min_frames, nano.out_dim) == (8, 65, 16, 4, 10)
    assert ref.preset("nano", embed_dim=None, num_classes=0).out_dim == 64


# ---- parameters (spec/00-method.md §3.5) ---------------------------------------------------------------

# C = 8, P = 4, grid 2 -> N = 5, MLP 32, d = 8 / 4 = 2, E = 6, K = 5, depth 2, S = (1, 2)
ALL_OPTIONS = ref.ModelConfig(
    image_size=8, patch_size=4, width=8, depth=2, heads=2, embed_dim=6, num_classes=5, patch_bias=True, ln_pre=True,
    schedule=(1, 2), reduction=4,
)


def block_keys(i):
    b = f"blocks.{i}."
    return {
        b + "norm1.weight": (8,), b + "norm1.bias": (8,),
        b + "attn.qkv.weight": (24, 8), b + "attn.qkv.bias": (24,),
        b + "attn.proj.weight": (8, 8), b + "attn.proj.bias": (8,),
        b + "norm2.weight": (8,), b + "norm2.bias": (8,),
        b + "mlp.fc1.weight": (32, 8), b + "mlp.fc1.bias": (32,),
        b + "mlp.fc2.weight": (8, 32), b + "mlp.fc2.bias": (8,),
    }


def merge_keys(j, score_out=1):
    m = f"merges.{j}."
    return {
        m + "norm.weight": (8,), m + "norm.bias": (8,),
        m + "reduce.weight": (2, 8), m + "reduce.bias": (2,),
        m + "token.weight": (2, 2),
        m + "local.weight": (2, 1, 3, 3, 3), m + "local.bias": (2,),
        m + "frame.weight": (2, 2),
        m + "clip.weight": (2, 2),
        m + "score.weight": (score_out, 2), m + "score.bias": (score_out,),
    }


def test_param_shapes_with_every_option():
    expected = {
        "patch_embed.weight": (8, 3, 4, 4), "patch_embed.bias": (8,),
        "cls_token": (8,), "pos_embed": (5, 8),
        "ln_pre.weight": (8,), "ln_pre.bias": (8,),
        **block_keys(0), **block_keys(1),
        "ln_post.weight": (8,), "ln_post.bias": (8,),
        "proj.weight": (6, 8),
        "head.weight": (5, 6), "head.bias": (5,),
        **merge_keys(0), **merge_keys(1),
    }
    shapes = ref.param_shapes(ALL_OPTIONS)
    assert shapes == expected
    assert list(shapes) == list(expected)  # the fixed order of spec/00-method.md §3.5's table
    channel = ref.param_shapes(ALL_OPTIONS.replace(weight_granularity="channel"))
    assert {k: v for k, v in channel.items() if "score" in k} == {k: v for k, v in {**merge_keys(0, 8), **merge_keys(1, 8)}.items() if "score" in k}


def test_param_shapes_with_no_option():
    cfg = ALL_OPTIONS.replace(patch_bias=False, ln_pre=False, embed_dim=None, num_classes=0, branches=())
    shapes = ref.param_shapes(cfg)
    assert shapes == {
        "patch_embed.weight": (8, 3, 4, 4), "cls_token": (8,), "pos_embed": (5, 8),
        **block_keys(0), **block_keys(1),
        "ln_post.weight": (8,), "ln_post.bias": (8,),
        **{k: v for j in (0, 1) for k, v in merge_keys(j).items() if k.split(".")[2] in ("norm", "reduce", "score")},
    }
    assert ref.param_shapes(cfg.replace(num_classes=3))["head.weight"] == (3, 8)  # no projection: the head reads C
    assert not any(k.startswith("merges.") for k in ref.param_shapes(cfg.replace(weight_fn="mean")))


def test_init_params_is_seeded_and_zero_scores():
    a, b, c = (ref.init_params(ALL_OPTIONS, seed=s) for s in (7, 7, 8))
    assert {k: v.shape for k, v in a.items()} == ref.param_shapes(ALL_OPTIONS)
    assert list(a) == list(ref.param_shapes(ALL_OPTIONS))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a[key].dtype == np.float64
        if "score" in key:
            np.testing.assert_array_equal(a[key], 0.0, err_msg=key)
        else:
            assert not np.array_equal(a[key], c[key]), f"{key} does not depend on the seed"
    f32 = ref.init_params(ALL_OPTIONS, seed=7, dtype=np.float32)
    assert {v.dtype for v in f32.values()} == {np.dtype(np.float32)}
    assert_close(f32["blocks.1.mlp.fc2.weight"], a["blocks.1.mlp.fc2.weight"], "float32")


def test_check_params_round_trip_through_a_file():
    cfg = ref.preset("nano", weight_granularity="channel")
    params = randomize_scores(ref.init_params(cfg, seed=5), cfg, seed=5)
    assert ref.check_params(params, cfg) is None
    buffer = io.BytesIO()
    np.savez(buffer, **params)
    buffer.seek(0)
    with np.load(buffer) as saved:
        loaded = {k: saved[k] for k in saved.files}
    assert ref.check_params(loaded, cfg) is None
    assert list(loaded) == list(params)
    video = make_video(cfg, 4, 1, seed=5)
    np.testing.assert_array_equal(ref.forward(loaded, video, cfg), ref.forward(params, video, cfg))
    with pytest.raises(ValueError, match=r"merges\.0\.score\.weight: expected \(1, 16\), got \(64, 16\)"):
        ref.check_params(loaded, cfg.replace(weight_granularity="token"))


def test_backbone_and_scope():
    cfg = ref.preset("nano")
    params = ref.init_params(cfg)
    bb = ref.backbone(params)
    assert set(bb) == {k for k in params if not k.startswith("merges.")} and len(bb) < len(params)
    assert ref.check_params(bb, cfg.replace(schedule=())) is None
    shapes = ref.param_shapes(ref.preset("vit_b16"))  # 12 blocks: "blocks.1." must not catch "blocks.10."
    one = scope(shapes, "blocks.1.")
    assert len(one) == 12 and one["norm1.weight"] == (768,)
    assert scope(params, "merges.1.")["score.bias"] is params["merges.1.score.bias"]


# ---- the assertion helpers themselves can fail ---------------------------------------------

def test_assert_close_reports_shape_then_value():
    with pytest.raises(AssertionError, match=r"logits: shape \(2, 3\) differs from the expected \(3, 2\)"):
        assert_close(np.zeros((2, 3)), np.zeros((3, 2)), F64, name="logits")
    with pytest.raises(AssertionError, match=r"x: largest relative error 0\.001 exceeds the float32 tolerance 0\.0002 \(shape \(3,\)\); largest \|difference\| 0\.001 at index \(1,\)"):
        assert_close(np.array([0.0, 1.001, 0.5]), np.array([0.0, 1.0, 0.5]), "float32", name="x")
    with pytest.raises(AssertionError, match=r"1 non-finite value"):
        assert_close(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), "bfloat16")
    assert_close(np.array([1.0 + 1e-5]), np.array([1.0]), "float32")


def test_assert_trace_close_names_the_first_failing_entry():
    expected = {"embed": np.ones(3), "blocks.0": np.ones(3), "blocks.1": np.ones(3)}
    actual = {"embed": np.ones(3), "blocks.0": np.ones(3) * 1.1, "blocks.1": np.ones(3) * 2.0}
    with pytest.raises(AssertionError, match=r"first trace entry over tolerance: 'blocks\.0', relative error 0\.1"):
        assert_trace_close(actual, expected, F64)
    with pytest.raises(AssertionError, match=r"'blocks\.1'.*missing from the actual trace"):
        assert_trace_close({"embed": np.ones(3), "blocks.0": np.ones(3)}, expected, F64)
    assert_trace_close(dict(expected), expected, F64)
