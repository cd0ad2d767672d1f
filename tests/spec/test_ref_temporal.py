"""The temporal modules of spec/00-method.md §12 in the NumPy spec: the steps, the invariants of
§12.4, the cost of §12.3, the configuration's validation, and `inti cost --temporal`.

Configs with a module come from ``strategies.configs(temporals=MODULES)``; tests that need the
modules to act overwrite their zero-initialized parts with random values
(``case.params(random_modules=True)``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ref
from inti.io.params import config_from_json, config_to_json, load_params, save_params
from ref.attention import attention
from ref.config import TEMPORAL_PRESETS, with_temporal
from ref.cost import block_macs, temporal_macs
from ref.interpolation import pair
from ref.model import block_key, merge_key
from ref.params import is_temporal_key, scope, without_temporal
from ref.temporal import bottleneck, st_adapter, temporal_attention, temporal_conv
from strategies import MODULES, Case, cases, configs, make_video, nano_case
from test_ref_invariants import stage
from tolerances import assert_close, tolerance

F64 = "float64"
EPS64 = tolerance(F64)
TEMPORAL_CASES = cases(configs(temporals=MODULES))


def st_nano(frames: int = 8, batch: int = 1, seed: int = 0, **changes) -> Case:
    return nano_case(frames=frames, batch=batch, seed=seed, **({"temporal": "st_adapter"} | changes))


def aim_nano(frames: int = 8, batch: int = 1, seed: int = 0, **changes) -> Case:
    return nano_case(frames=frames, batch=batch, seed=seed,
                     **({"temporal": "aim", "temporal_frames": frames} | changes))


def forward(case, params=None, video=None):
    params = case.params(random_scores=True, random_modules=True) if params is None else params
    return ref.forward(params, case.video if video is None else video, case.cfg, return_trace=True)


# ---- the steps, against loops written out here ----------------------------------------------

@given(b=st.integers(1, 2), t=st.integers(1, 5), L=st.integers(1, 4), ca=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_temporal_conv_is_the_three_tap_formula(b, t, L, ca, seed):
    """out[t] = w0 z[t-1] + w1 z[t] + w2 z[t+1] + bias, zeros beyond both ends, any t >= 1."""
    rng = np.random.default_rng(seed)
    params = {"conv.weight": rng.standard_normal((ca, 1, 3, 1, 1)), "conv.bias": rng.standard_normal(ca)}
    z = rng.standard_normal((b, t, L, ca))
    w = params["conv.weight"][:, 0, :, 0, 0]
    frame = lambda k: z[:, k] if 0 <= k < t else np.zeros_like(z[:, 0])  # noqa: E731
    expected = np.stack([w[:, 0] * frame(k - 1) + w[:, 1] * frame(k) + w[:, 2] * frame(k + 1) + params["conv.bias"]
                         for k in range(t)], axis=1)
    assert_close(temporal_conv(params, z), expected, F64, name="temporal conv")


def test_st_adapter_keeps_the_class_token_and_adds_to_the_patches():
    case = st_nano()
    params = scope(case.params(random_modules=True), "blocks.0.temporal.attn.")
    x = np.random.default_rng(1).standard_normal((1, 8, case.cfg.num_tokens, case.cfg.width))
    y = st_adapter(params, x, cfg=case.cfg)
    np.testing.assert_array_equal(y[:, :, 0], x[:, :, 0])
    z = x[:, :, 1:] @ params["fc1.weight"].T + params["fc1.bias"]
    u = temporal_conv(params, z)
    assert_close(y[:, :, 1:], x[:, :, 1:] + u @ params["fc2.weight"].T + params["fc2.bias"], F64, name="patches")
    assert np.all(y[:, :, 1:] != x[:, :, 1:])


def test_bottleneck_is_fc2_gelu_fc1_without_a_skip():
    from scipy.special import erf

    rng = np.random.default_rng(2)
    params = {"fc1.weight": rng.standard_normal((3, 8)), "fc1.bias": rng.standard_normal(3),
              "fc2.weight": rng.standard_normal((8, 3)), "fc2.bias": rng.standard_normal(8)}
    x = rng.standard_normal((2, 5, 8))
    h = x @ params["fc1.weight"].T + params["fc1.bias"]
    h = 0.5 * h * (1 + erf(h / np.sqrt(2)))  # exact GELU, whatever the backbone's activation
    assert_close(bottleneck(params, x), h @ params["fc2.weight"].T + params["fc2.bias"], F64, name="bottleneck")


@given(case=cases(configs(temporals=("aim",), min_width=2)))
@example(case=aim_nano())
def test_temporal_attention_attends_over_frames_at_each_position(case):
    """AIM's temporal branch, token position by token position: the block's LN1 and attention
    on the sequence of the t frames of one position, then the T-Adapter."""
    cfg = case.cfg
    params = scope(case.params(random_modules=True), f"blocks.{cfg.module_blocks[0] - 1}.")
    T = cfg.temporal_frames
    x = np.random.default_rng(case.seed).standard_normal((2, T, cfg.num_tokens, cfg.width))
    update = temporal_attention(params, x, cfg=cfg)
    for n in range(cfg.num_tokens):
        seq = x[:, :, n]  # (b, t, C)
        mean, var = seq.mean(-1, keepdims=True), seq.var(-1, keepdims=True)
        normed = (seq - mean) / np.sqrt(var + cfg.ln_eps) * params["norm1.weight"] + params["norm1.bias"]
        expected = bottleneck(scope(params, "temporal.t_adapter."), attention(scope(params, "attn."), normed, heads=cfg.heads))
        assert_close(update[:, :, n], expected, F64, name=f"temporal update at token {n}")


# ---- §12.4, 1: at init, the model with modules is the image model, bit for bit ----------------

@given(case=TEMPORAL_CASES)
@example(case=st_nano(temporal_placement=("attn", "mlp")))
@example(case=aim_nano(weight_granularity="channel"))
def test_at_init_the_modules_add_exactly_nothing(case):
    params = case.params(random_scores=True)  # merges random, modules as initialized
    _, with_modules = ref.forward(params, case.video, case.cfg, return_trace=True)
    _, image = ref.forward(without_temporal(params), case.video, case.cfg.replace(temporal="none"), return_trace=True)
    assert list(with_modules) == list(image)
    for key in image:
        np.testing.assert_array_equal(with_modules[key], image[key], err_msg=f"{key} (bitwise)")


@pytest.mark.parametrize("make", [st_nano, aim_nano])
def test_random_modules_change_every_later_entry(make):
    """The converse, so that the test above can fail: modules with random values act."""
    case = make()
    params = case.params(random_scores=True, random_modules=True)
    _, moved = ref.forward(params, case.video, case.cfg, return_trace=True)
    _, image = ref.forward(without_temporal(params), case.video, case.cfg.replace(temporal="none"), return_trace=True)
    first = "embed" if case.cfg.temporal == "aim" else "blocks.0"
    later = list(image)[list(image).index(first):]
    assert all(np.abs(moved[k] - image[k]).max() > 1e3 * EPS64 * np.abs(image[k]).max() for k in later if k.endswith(("tokens", "logits")) or k.startswith(("blocks", "embed")))


# ---- the §5 invariants that still hold with modules --------------------------------------------

@given(case=cases(configs(temporals=MODULES), min_batch=2))
@example(case=st_nano(batch=2))
@example(case=aim_nano(batch=2))
def test_shapes_and_batch_independence_with_modules(case):
    """§5, invariants 1 and 7, with modules: the trace's entries and shapes are those without, and
    clip 0 does not move when clip 1 changes."""
    cfg = case.cfg
    params = case.params(random_scores=True, random_modules=True)
    _, before = forward(case, params)
    assert list(before) == ref.trace_keys(cfg)
    B, T0 = case.video.shape[:2]
    for key, value in before.items():
        s = stage(cfg, key)
        if s is not None and not key.endswith((".scores", ".weights")):
            assert value.shape == (B, T0 // 2**s, cfg.num_tokens, cfg.width), key
    other = case.video.copy()
    other[1:] = np.random.default_rng([case.seed, 4]).standard_normal(other[1:].shape)
    _, after = forward(case, params, video=other)
    for key in before:
        assert_close(after[key][:1], before[key][:1], F64, name=f"{key}, clip 0 when clip 1 changes")


@given(case=cases(configs(temporals=MODULES, min_merges=1, min_branches=1, weight_fns=("softmax",))))
@example(case=st_nano())
@example(case=aim_nano())
def test_merges_stay_convex_with_modules(case):
    """§5, invariants 2 and 9: the merges' weights and tokens do not care what made their input."""
    _, trace = forward(case)
    for j, k in enumerate(case.cfg.schedule):
        x, a, y = trace[block_key(k - 1)], trace[merge_key(j, "weights")], trace[merge_key(j, "tokens")]
        assert np.all(a > 0) and np.all(a < 1)
        p = pair(x)
        slack = EPS64 * max(1.0, float(np.abs(x).max()))
        assert np.all(y >= np.minimum(p[:, :, 0], p[:, :, 1]) - slack) and np.all(y <= np.maximum(p[:, :, 0], p[:, :, 1]) + slack)
    weights = ref.trace_weights(trace, case.cfg)
    c = ref.contributions(weights)
    B, T0 = case.video.shape[:2]
    g = 2 ** len(case.cfg.schedule)
    sums = c.reshape(B, T0 // g, g, -1).sum(axis=2)
    assert_close(sums, np.ones_like(sums), F64, name="contributions of a group")


@given(case=cases(configs(temporals=MODULES), dtype=np.float32))
@example(case=aim_nano(dtype=np.float32))
def test_float32_video_with_modules(case):
    params = case.params(random_scores=True, random_modules=True)
    logits32, trace = ref.forward(params, case.video, case.cfg, return_trace=True)
    assert all(v.dtype == np.float32 for v in trace.values())
    assert_close(logits32, ref.forward(params, case.video.astype(np.float64), case.cfg), "float32", name="logits")


# ---- §12.4, 2: the receptive field grows as the schedule predicts ------------------------------

def predicted_reach(cfg: ref.ModelConfig, f: int, T0: int) -> dict[str, set[int]]:
    """For each trace entry with a frame axis, the frames that input frame f can reach when θ
    sees one frame at a time: an ST-Adapter widens the reach by one frame of its stage on each
    side (once per placement), an AIM block to its whole stage, a merge maps p to p // 2 (the
    softmax couples the weights of a pair)."""
    reach, t, out = {f}, T0, {"embed": {f}}
    for i in range(1, cfg.depth + 1):
        if i in cfg.module_blocks and cfg.temporal == "st_adapter":
            for _ in cfg.temporal_placement:
                reach = {q for p in reach for q in (p - 1, p, p + 1) if 0 <= q < t}
        if i in cfg.module_blocks and cfg.temporal == "aim":
            reach = set(range(t))
        out[block_key(i - 1)] = reach
        if i in cfg.schedule:
            j = cfg.schedule.index(i)
            out[merge_key(j, "scores")] = reach
            out[merge_key(j, "weights")] = {q for q in range(t) if q // 2 in {p // 2 for p in reach}} if cfg.weight_fn == "softmax" else reach
            reach, t = {p // 2 for p in reach}, t // 2
            out[merge_key(j, "tokens")] = reach
    return out


def moved_frames(before: np.ndarray, after: np.ndarray) -> set[int]:
    diff = np.abs(after - before).reshape(after.shape[0], after.shape[1], -1).max(axis=(0, 2))
    return {int(t) for t in np.flatnonzero(diff > 0)}


def perturbed(case, f: int):
    other = case.video.copy()
    other[:, f] = np.random.default_rng([case.seed, 3]).standard_normal(other[:, f].shape)
    params = case.params(random_scores=True, random_modules=True)
    return forward(case, params)[1], forward(case, params, video=other)[1]


@given(case=cases(configs(temporals=MODULES, branch_pool=("token", "frame"))), data=st.data())
@example(case=st_nano(branches=("token", "frame"), temporal_placement=("attn", "mlp")), data=None)
@example(case=aim_nano(branches=("token",), temporal_blocks=(3,)), data=None)
def test_receptive_field_is_what_the_schedule_predicts(case, data):
    """Perturb input frame f: every entry moves inside the predicted reach, and, where the
    network is not degenerate (LayerNorm over 3 or more channels), exactly over it."""
    T0 = case.video.shape[1]
    f = data.draw(st.integers(0, T0 - 1), label="frame") if data is not None else 0
    before, after = perturbed(case, f)
    predicted = predicted_reach(case.cfg, f, T0)
    for key, reach in predicted.items():
        moved = moved_frames(before[key], after[key])
        assert moved <= reach, f"{key}: frames {sorted(moved - reach)} moved, outside the predicted {sorted(reach)}"
        exact = case.cfg.width >= 3 and (key.startswith(("blocks", "embed")) or key.endswith("tokens"))
        if exact:
            assert moved == reach, f"{key}: moved {sorted(moved)}, predicted {sorted(reach)}"


def test_receptive_field_by_hand():
    """The prediction written out for nano (S = (1, 2)), 8 frames, an ST-Adapter before attention
    in every block, frame 0 perturbed, against naive + module (S = ()): InTI's reach in input
    frames doubles at each merge."""
    inti = st_nano(branches=("token", "frame"))
    naive = st_nano(branches=("token", "frame"), schedule=())
    before, after = perturbed(inti, 0)
    got = {k: moved_frames(before[k], after[k]) for k in ("blocks.0", "merges.0.tokens", "blocks.1", "merges.1.tokens", "blocks.2", "blocks.3")}
    assert got == {"blocks.0": {0, 1}, "merges.0.tokens": {0}, "blocks.1": {0, 1}, "merges.1.tokens": {0},
                   "blocks.2": {0, 1}, "blocks.3": {0, 1}}
    # frame 1 of merged stage 2 stands for input frames 4-7: reach 8 input frames after 4 blocks
    before, after = perturbed(naive, 0)
    assert [moved_frames(before[block_key(i)], after[block_key(i)]) for i in range(4)] == [
        {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}]  # one input frame per block


def test_without_modules_frames_stay_apart_and_with_them_they_do_not():
    """§5, invariant 6 holds for temporal="none" only: the same case with an ST-Adapter in the
    first block moves frame 1 before the first merge; with AIM, every frame."""
    for make, moved in ((st_nano, {0, 1}), (aim_nano, set(range(8)))):
        case = make(branches=("token",), temporal_blocks=(1,))
        before, after = perturbed(case, 0)
        assert moved_frames(before["blocks.0"], after["blocks.0"]) == moved
        plain = Case(case.cfg.replace(temporal="none"), case.seed, case.video)
        before, after = perturbed(plain, 0)
        assert moved_frames(before["blocks.0"], after["blocks.0"]) == {0}


@pytest.mark.parametrize("ln_pre", [False, True])
def test_aim_embedding_is_added_once_at_the_input_to_every_token(ln_pre):
    """§12.2: row t of the embedding goes onto every token of input frame t, the class token
    included, after the positions and before ln_pre; it is the model's only one (the merges carry
    it on inside the tokens [ours]: no embedding per stage)."""
    from ref.layers import layer_norm

    case = aim_nano(ln_pre=ln_pre, temporal_blocks=(4,))
    params = case.params(random_modules=True)
    assert [k for k in params if "embed" in k and is_temporal_key(k)] == ["temporal_embed.weight"]
    image = dict(without_temporal(params))
    if ln_pre:  # the entry before ln_pre: ln_pre with unit scale and zero shift on both sides is not LN's inverse
        image["ln_pre.weight"], image["ln_pre.bias"] = params["ln_pre.weight"], params["ln_pre.bias"]
    _, with_embed = ref.forward(params, case.video, case.cfg, return_trace=True)
    plain_cfg = case.cfg.replace(temporal="none", ln_pre=False)
    _, plain = ref.forward({k: v for k, v in image.items() if not k.startswith("ln_pre")}, case.video, plain_cfg,
                           return_trace=True)
    expected = plain["embed"] + params["temporal_embed.weight"][None, :, None, :]
    if ln_pre:
        expected = layer_norm(expected, params["ln_pre.weight"], params["ln_pre.bias"], case.cfg.ln_eps)
    assert_close(with_embed["embed"], expected, F64, name="embed")


# ---- §12.4, 3 and §12.3: the cost ----------------------------------------------------------

@given(cfg=configs(temporals=MODULES), frames=st.integers(1, 4), batch=st.integers(1, 2))
def test_module_cost_follows_the_frames_left_at_its_block(cfg, frames, batch):
    T0 = cfg.fixed_frames or cfg.min_frames * frames
    macs = ref.count_macs(cfg, T0, batch)
    frames_at = [t for t, _ in macs["per_block"]]
    assert macs["temporal"] == batch * sum(sum(temporal_macs(cfg, frames_at[k - 1]).values()) for k in cfg.module_blocks)
    assert macs["total"] == sum(macs[p] for p in ("patch_embed", "blocks", "temporal", "predictor", "interpolation", "head"))
    assert macs["matmul"] == macs["total"] - macs["interpolation"]
    N, L, C, Ca = cfg.num_tokens, cfg.num_patches, cfg.width, cfg.adapter_width
    for t in sorted(set(frames_at)):
        parts = temporal_macs(cfg, t)
        if cfg.temporal == "st_adapter":  # proportional to the frames
            assert parts == {p: t * (L * C * Ca + L * Ca * 3 + L * Ca * C) for p in cfg.temporal_placement}
            assert sum(parts.values()) * 1 == t * sum(temporal_macs(cfg, 1).values())
        else:
            assert parts == {"temporal_attention": t * N * 4 * C * C + 2 * N * t * t * C,
                             "t_adapter": 2 * t * N * C * Ca, "s_adapter": 2 * t * N * C * Ca, "mlp_adapter": 2 * t * N * C * Ca}


def test_cost_by_hand():
    """A config small enough to write every term: grid 2 (L = 4, N = 5), C = 4, C_a = 2, depth 2,
    S = (1,), 4 frames: block 1 at T = 4, block 2 at T = 2."""
    base = ref.ModelConfig(image_size=4, patch_size=2, width=4, depth=2, heads=1, embed_dim=None, schedule=(1,),
                           temporal_width=2)
    st_cfg = base.replace(temporal="st_adapter", temporal_placement=("attn", "mlp"))
    one = 4 * 4 * 2 + 4 * 2 * 3 + 4 * 2 * 4  # per frame: fc1 + conv + fc2 on L = 4 patches = 80
    assert ref.count_macs(st_cfg, 4)["temporal"] == 2 * one * (4 + 2)
    aim_cfg = base.replace(temporal="aim", temporal_frames=4)
    def aim(t):  # noqa: E306
        return 5 * t * 4 * 12 + 2 * 5 * t * t * 4 + 5 * t * 4 * 4 + 3 * 2 * t * 5 * 4 * 2
    assert ref.count_macs(aim_cfg, 4)["temporal"] == aim(4) + aim(2)
    assert "temporal" not in ref.count_macs(base, 4)  # without a module, count_macs is as before


@pytest.mark.parametrize("schedule", [(6,), (8, 20), (10, 16)])
@pytest.mark.parametrize("frames", [8, 16])
def test_st_adapter_saves_the_blocks_fraction_exactly(schedule, frames):
    """Linear in T and in every block, ST-Adapter's modules fall by the blocks' fraction, 37.5% on
    ViT-L/14 for the paper's schedules; AIM's temporal attention (T^2) falls a little more."""
    for name in ("st_adapter", "st_adapter_12x384", "st_adapter_24x384"):
        cfg = with_temporal(ref.preset("vit_l14", schedule=schedule), name)
        cost = ref.compare(cfg, frames)
        assert Fraction(cost["inti"]["temporal"], cost["naive"]["temporal"]) == Fraction(5, 8)
        assert cost["naive"]["temporal"] == ref.count_macs(cfg.replace(schedule=()), frames)["temporal"]
    aim = ref.compare(with_temporal(ref.preset("vit_l14", schedule=schedule), "aim", frames), frames)
    assert aim["reduction"]["temporal"] > 0.375 and aim["reduction"]["blocks"] == 0.375


def test_the_presets_are_the_released_settings():
    b16 = ref.preset("vit_b16")
    twelve, twentyfour = with_temporal(b16, "st_adapter_12x384"), with_temporal(b16, "st_adapter_24x384")
    count = lambda c: sum(1 for k in ref.param_shapes(c) if k.endswith("temporal.mlp.conv.weight") or k.endswith("temporal.attn.conv.weight"))  # noqa: E731
    assert (count(twelve), count(twentyfour)) == (12, 24)
    assert twelve.adapter_width == twentyfour.adapter_width == 384 == with_temporal(b16, "st_adapter").adapter_width
    assert with_temporal(b16, "aim", 8).adapter_width == 192  # AIM: int(768 * 0.25)
    assert set(TEMPORAL_PRESETS) == {"st_adapter", "st_adapter_12x384", "st_adapter_24x384", "aim"}
    assert with_temporal(twelve, "none") == twelve.replace(temporal="none")


# ---- parameters -------------------------------------------------------------------------------

def test_parameter_keys_and_init_rule():
    cfg = ref.preset("nano", temporal="st_adapter", temporal_blocks=(2, 4), temporal_placement=("mlp",), temporal_width=8)
    shapes = ref.param_shapes(cfg)
    temporal = [k for k in shapes if is_temporal_key(k)]
    assert temporal == [f"blocks.{i}.temporal.mlp.{k}" for i in (1, 3)
                        for k in ("fc1.weight", "fc1.bias", "conv.weight", "conv.bias", "fc2.weight", "fc2.bias")]
    assert shapes["blocks.1.temporal.mlp.conv.weight"] == (8, 1, 3, 1, 1) and shapes["blocks.3.temporal.mlp.fc2.weight"] == (64, 8)
    params = ref.init_params(cfg, seed=0)
    zero = {k for k in temporal if not np.any(params[k])}
    assert zero == {k for k in temporal if k.endswith(("conv.weight", "conv.bias", "fc1.bias", "fc2.bias"))}
    aim = ref.preset("nano", temporal="aim", temporal_frames=4)
    params = ref.init_params(aim, seed=0)
    keys = [k for k in params if is_temporal_key(k)]
    assert keys[0] == "temporal_embed.weight" and list(params).index("temporal_embed.weight") == list(params).index("pos_embed") + 1
    zero = {k for k in keys if not np.any(params[k])}
    assert zero == {k for k in keys if k == "temporal_embed.weight" or k.endswith(("fc2.weight", "fc2.bias", "fc1.bias"))}
    # the image part and the predictors are drawn exactly as without modules (their own stream)
    image = ref.init_params(aim.replace(temporal="none"), seed=0)
    assert all(np.array_equal(params[k], v) for k, v in image.items())


@pytest.mark.parametrize("make, changes, match", [
    (st_nano, {}, r"missing 24 key\(s\): blocks\.0\.temporal\.attn\.fc1\.weight"),
    (aim_nano, {}, r"missing 49 key\(s\): temporal_embed\.weight, blocks\.0\.temporal\.t_adapter\.fc1\.weight"),
])
def test_check_params_names_the_missing_module_keys(make, changes, match):
    case = make(**changes)
    with pytest.raises(ValueError, match=match):
        ref.forward(without_temporal(case.params()), case.video, case.cfg)


def test_check_params_names_unexpected_and_misshaped_module_keys():
    case = st_nano()
    params = case.params()
    with pytest.raises(ValueError, match=r"unexpected 24 key\(s\): blocks\.0\.temporal\.attn\.conv\.bias \(32,\)"):
        ref.forward(params, case.video, case.cfg.replace(temporal="none"))
    with pytest.raises(ValueError, match=r"wrong shape: blocks\.0\.temporal\.attn\.fc1\.weight: expected \(16, 64\), got \(32, 64\)"):
        ref.forward(params, case.video, case.cfg.replace(temporal_width=16))


def test_parameter_files_keep_the_temporal_config(tmp_path):
    cfg = ref.preset("nano", temporal="aim", temporal_frames=4, temporal_blocks=(1, 3), temporal_scale=1.0)
    assert config_from_json(config_to_json(cfg)) == cfg
    params = ref.init_params(cfg, seed=1)
    save_params(tmp_path / "w.npz", params, cfg)
    loaded, again = load_params(tmp_path / "w.npz")
    assert again == cfg and loaded.keys() == params.keys()


# ---- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, match", [
    ({"temporal": "lstm"}, r"temporal must be one of \('none', 'st_adapter', 'aim'\), got 'lstm'"),
    ({"temporal": None}, r"temporal must be one of"),
    ({"temporal_width": 0}, r"temporal_width must be a positive integer or None .*got 0"),
    ({"temporal_width": -8}, r"temporal_width must be a positive integer or None .*got -8"),
    ({"temporal_width": 65}, r"temporal_width, the bottleneck C_a, must be at most the width 64, got 65"),
    ({"temporal_width": 8.0}, r"temporal_width must be a positive integer or None"),
    ({"temporal_width": True}, r"temporal_width must be a positive integer or None"),
    ({"temporal_blocks": (5,)}, r"temporal_blocks entries must be block indices in 1\.\.4 \(counted from 1; \(\) means every block\), got 5"),
    ({"temporal_blocks": (0, 1)}, r"temporal_blocks entries must be block indices in 1\.\.4 .*got 0"),
    ({"temporal_blocks": (3, 1)}, r"temporal_blocks must be strictly increasing, got \(3, 1\)"),
    ({"temporal_blocks": (2, 2)}, r"temporal_blocks must be strictly increasing"),
    ({"temporal_blocks": 3}, r"temporal_blocks must be a tuple, got 3"),
    ({"temporal_blocks": "12"}, r"temporal_blocks must be a tuple, got '12'"),
    ({"temporal_blocks": ("1",)}, r"temporal_blocks entries must be block indices .*got '1'"),
    ({"temporal_placement": ()}, r"temporal_placement must be distinct names from \('attn', 'mlp'\), at least one, got \(\)"),
    ({"temporal_placement": ("ffn",)}, r"temporal_placement must be distinct names .*got \('ffn',\)"),
    ({"temporal_placement": ("attn", "attn")}, r"temporal_placement must be distinct names"),
    ({"temporal_placement": "attn"}, r"temporal_placement must be a tuple, got 'attn'"),
    ({"temporal_frames": 0}, r"temporal_frames must be a positive integer or None \(AIM's T0"),
    ({"temporal_frames": 4.0}, r"temporal_frames must be a positive integer or None"),
    ({"temporal_scale": -0.5}, r"temporal_scale must be a number in \[0, 10\], got -0.5"),
    ({"temporal_scale": float("nan")}, r"temporal_scale must be a number in \[0, 10\], got nan"),
    ({"temporal_scale": "0.5"}, r"temporal_scale must be a number in \[0, 10\], got '0.5'"),
    ({"temporal_scale": 11}, r"temporal_scale must be a number in \[0, 10\], got 11"),
    ({"temporal": "aim"}, r"temporal='aim' needs temporal_frames, the input frame count T0"),
    ({"temporal": "aim", "temporal_frames": 6}, r"temporal_frames must be a multiple of 4 \(schedule \(1, 2\) halves the frames 2 time\(s\)\), got 6"),
])
def test_config_errors_name_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        ref.preset("nano", **changes)


def test_fields_a_module_does_not_use_are_checked_but_ignored():
    st_cfg = ref.preset("nano", temporal="st_adapter", temporal_frames=6, temporal_scale=2.0)
    assert st_cfg.fixed_frames is None and ref.count_macs(st_cfg, 8)["temporal"] > 0
    none = ref.preset("nano", temporal_width=3, temporal_blocks=(2,))
    assert none.module_blocks == () and ref.param_shapes(none) == ref.param_shapes(ref.preset("nano"))


def test_with_temporal_errors():
    with pytest.raises(ValueError, match=r"unknown temporal module setting 'st'; choose one of \['none', 'st_adapter'"):
        with_temporal(ref.preset("vit_b16"), "st")
    with pytest.raises(ValueError, match=r"temporal='aim' needs temporal_frames"):
        with_temporal(ref.preset("vit_b16"), "aim")
    with pytest.raises(ValueError, match=r"must be at most the width 64, got 384"):
        with_temporal(ref.preset("nano"), "st_adapter_12x384")


@pytest.mark.parametrize("frames", [4, 16, 12])
def test_aim_takes_its_frame_count_only(frames):
    case = aim_nano()
    video = make_video(case.cfg, frames, 1, seed=0)
    message = rf"temporal='aim' has a temporal embedding for exactly 8 input frames \(temporal_frames\), got {frames}"
    with pytest.raises(ValueError, match=message):
        ref.forward(case.params(), video, case.cfg)
    with pytest.raises(ValueError, match=message):
        ref.count_macs(case.cfg, frames)


def test_st_adapter_takes_any_frame_count_down_to_one_frame_a_stage():
    """No minimum for the kernel [ours]: S = (1, 2) on 4 frames leaves 1 frame for blocks 3-4."""
    case = st_nano(frames=4)
    _, trace = forward(case)
    assert trace["blocks.3"].shape[1] == 1 and np.all(np.isfinite(trace["logits"]))
    one = st_nano(frames=1, schedule=())
    assert np.all(np.isfinite(forward(one)[1]["logits"]))


# ---- inti cost --temporal ----------------------------------------------------------------------

def test_cost_table_with_a_module(capsys):
    from inti.cli import main
    from inti.cli import cost as cli_cost

    assert main(["cost", "--preset", "vit_b16", "--frames", "8", "--temporal", "st_adapter_12x384"]) == 0
    out = capsys.readouterr().out
    cfg = with_temporal(ref.preset("vit_b16"), "st_adapter_12x384")
    cost = ref.compare(cfg, 8)
    assert "naive + module GMACs" in out and "InTI + module GMACs" in out and "ST-Adapter C_a=384 before mlp" in out
    total = next(line for line in out.splitlines() if line.startswith("total")).split()
    assert total[1] == f"{cost['naive']['total'] / 1e9:,.3f}" and total[2] == f"{cost['inti']['total'] / 1e9:,.3f}"
    assert any(line.startswith("ST-Adapter, blocks 4-12") and "8/4" in line and "50.0%" in line for line in out.splitlines())
    assert "reduction, temporal modules only:      37.5%" in out
    rows = cli_cost.cost_rows(cfg, 8)
    parts = [r for r in rows if r[0] not in ("blocks, all", "total")]
    assert sum(r[2] for r in parts) == cost["naive"]["total"] and sum(r[3] for r in parts) == cost["inti"]["total"]
    assert sum(r[3] for r in parts if r[0].startswith("ST-Adapter")) == cost["inti"]["temporal"]


@pytest.mark.parametrize("name", ["st_adapter_24x384", "aim"])
def test_cost_paper_rows_with_a_module(capsys, name):
    from inti.cli import main

    assert main(["cost", "--paper", "--temporal", name]) == 0
    out = capsys.readouterr().out
    assert "37% fewer GFLOPs" in out and "naive + module against InTI + module" in out
    for frames in (8, 16):
        for schedule in ((6,), (8, 20), (10, 16)):
            cfg = with_temporal(ref.preset("vit_l14", schedule=schedule), name, frames)
            red = ref.reduction(cfg, frames)
            line = next(line for line in out.splitlines() if line.split()[:1] == [str(frames)] and f"S={schedule}" in line)
            assert line.split()[-3:] == [f"{red['blocks']:.1%}", f"{red['temporal']:.1%}", f"{red['total']:.1%}"]


def test_cost_temporal_error(capsys):
    from inti.cli import main

    assert main(["cost", "--preset", "nano", "--temporal", "st_adapter_24x384"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad --temporal st_adapter_24x384 for nano" in err[0] and "at most the width 64" in err[0]
