"""The invariants of spec/00-method.md §5, as Hypothesis properties of the NumPy spec `ref`.

Each property runs over `strategies.cases()` (small random configs, seeds and videos) and
pins the "nano" preset with ``@example``. Tests that look at merge weights overwrite the
zero-initialized score layers with random values (``case.params(random_scores=True)``), so
that softmax weights are not all 1/2 and convexity is not trivial. Invariant 8 (cost) lives in
test_ref_cost.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ref
from ref.block import block
from ref.interpolation import merge, pair
from ref.model import block_key, merge_key
from ref.params import scope
from ref.predictor import local_branch
from inti.tolerances import rel_err
from strategies import configs, cases, make_video, nano_case, randomize_scores
from tolerances import assert_close, tolerance

# spec/00-method.md §12.4: a temporal module mixes the frames of its stage, so invariant 6 (and
# invariant 5 read as "frame by frame") holds without modules only; the tests of those invariants
# say so with temporals=WITHOUT_MODULES. tests/spec/test_ref_temporal.py states what holds with them.
WITHOUT_MODULES = ("none",)
F64 = "float64"
EPS64 = tolerance(F64)  # the float64 bar, also used as the relative slack of exact-in-theory bounds


# ---- helpers: where each trace entry sits ------------------------------------------------

def stage(cfg: ref.ModelConfig, key: str) -> int | None:
    """How many merges came before a trace entry with a frame axis; None for the readout."""
    if key == "embed":
        return 0
    kind, index, *rest = key.split(".") + [""]
    if kind == "blocks":
        return sum(1 for k in cfg.schedule if k <= int(index))  # merge after block k (1-based) precedes block k (0-based)
    if kind == "merges":
        return int(index) + (1 if rest[0] == "tokens" else 0)
    return None


def forward(case, params=None, video=None):
    params = case.params(random_scores=True) if params is None else params
    return ref.forward(params, case.video if video is None else video, case.cfg, return_trace=True)


def pairs_of(x):
    """(b, t, ...) -> the first and second frame of every pair, each (b, t/2, ...)."""
    p = pair(x)
    return p[:, :, 0], p[:, :, 1]


# ---- 1. shapes ------------------------------------------------------------------------------

@given(case=cases())
@example(case=nano_case())
@example(case=nano_case(frames=8, batch=2, weight_granularity="channel"))
def test_trace_shapes_and_final_frames(case):
    cfg, video = case.cfg, case.video
    B, T0 = video.shape[:2]
    N, C = cfg.num_tokens, cfg.width
    logits, trace = forward(case)
    assert list(trace) == ref.trace_keys(cfg)  # the keys are pinned in test_ref_trace_keys.py
    for key, value in trace.items():
        s = stage(cfg, key)
        if s is None:
            continue
        t = T0 // 2**s
        if key.endswith((".scores", ".weights")):
            want = (B, t, N, C) if cfg.weight_granularity == "channel" else (B, t, N)
        else:
            want = (B, t, N, C)
        assert value.shape == want, f"{key}: shape {value.shape}, expected {want}"
    last_tokens = [k for k in trace if k.startswith("blocks.") or k.endswith(".tokens")][-1]
    assert trace[last_tokens].shape == (B, T0 // 2 ** len(cfg.schedule), N, C)
    assert trace["pooled"].shape == (B, C)
    assert trace["features"].shape == (B, cfg.feature_dim)
    assert logits.shape == trace["logits"].shape == (B, cfg.out_dim)
    np.testing.assert_array_equal(logits, trace["logits"])


@given(case=cases(dtype=np.float32))
@example(case=nano_case(dtype=np.float32))
def test_float32_video_matches_float64(case):
    params = case.params(random_scores=True)
    logits32 = ref.forward(params, case.video, case.cfg)
    logits64 = ref.forward(params, case.video.astype(np.float64), case.cfg)
    assert_close(logits32, logits64, "float32", name="logits")


@pytest.mark.parametrize(
    "changes", [{}, {"activation": "gelu"}, {"weight_fn": "mean"}, {"weight_fn": "sigmoid", "weight_granularity": "channel"}]
)
def test_float32_video_stays_float32(changes):
    case = nano_case(dtype=np.float32, **changes)
    logits, trace = ref.forward(case.params(random_scores=True), case.video, case.cfg, return_trace=True)
    promoted = [k for k, v in trace.items() if v.dtype != np.float32]
    assert logits.dtype == np.float32 and not promoted, f"entries not float32: {promoted}"


# ---- 2. convexity ---------------------------------------------------------------------------

@given(case=cases(configs(min_merges=1, min_branches=1, weight_fns=("softmax",))))
@example(case=nano_case())
@example(case=nano_case(frames=8, weight_granularity="channel"))
def test_softmax_merge_is_convex(case):
    cfg = case.cfg
    _, trace = forward(case)
    for j, k in enumerate(cfg.schedule):
        x, a, y = trace[block_key(k - 1)], trace[merge_key(j, "weights")], trace[merge_key(j, "tokens")]
        assert np.all(a > 0) and np.all(a < 1), f"merge {j}: weights outside (0, 1): [{a.min()}, {a.max()}]"
        assert_close(pair(a).sum(axis=2), np.ones_like(a[:, ::2]), F64, name=f"merge {j}: pair sums of weights")
        first, second = pairs_of(x)
        slack = EPS64 * max(1.0, float(np.abs(x).max()))
        assert np.all(y >= np.minimum(first, second) - slack), f"merge {j}: a merged token is below its pair"
        assert np.all(y <= np.maximum(first, second) + slack), f"merge {j}: a merged token is above its pair"


def test_random_scores_make_uneven_weights():
    """Guard for the convexity tests: with random score layers the weights are not all 1/2."""
    case = nano_case()
    _, trace = forward(case)
    for j in range(len(case.cfg.schedule)):
        a = trace[merge_key(j, "weights")]
        assert np.abs(a - 0.5).max() > 0.1, f"merge {j}: weights stay near 1/2, the convexity tests would be trivial"


# ---- 3. identical frames --------------------------------------------------------------------

@given(case=cases(configs(min_merges=1, min_branches=1)))
@example(case=nano_case())
@example(case=nano_case(weight_granularity="channel"))
@example(case=nano_case(weight_fn="sigmoid"))
def test_identical_frames_merge_to_themselves(case):
    """merge() on a stage whose pairs are equal: softmax and mean return the frame itself,
    whatever the weights; sigmoid (not normalized) returns it times a0 + a1."""
    cfg, B, T0 = case.cfg, *case.video.shape[:2]
    rng = np.random.default_rng(case.seed)
    x = np.repeat(rng.standard_normal((B, T0 // 2, cfg.num_tokens, cfg.width)), 2, axis=1)  # frames 2p = 2p+1
    y, decided = merge(scope(case.params(random_scores=True), "merges.0."), x, cfg=cfg)
    a = decided["weights"]
    if cfg.weight_fn == "sigmoid":
        gain = pair(a).sum(axis=2)
        expected = x[:, ::2] * (gain if cfg.weight_granularity == "channel" else gain[..., None])
    else:
        expected = x[:, ::2]
    assert_close(y, expected, F64, name=f"merged identical frames ({cfg.weight_fn})")


@given(case=cases(configs(min_merges=1, weight_fns=("softmax", "mean"), temporals=WITHOUT_MODULES)))
@example(case=nano_case())
def test_identical_frames_in_the_model(case):
    """Duplicated input frames stay equal through the blocks, and the first merge returns them."""
    video = np.repeat(case.video[:, ::2], 2, axis=1)
    _, trace = forward(case, video=video)
    k = case.cfg.schedule[0]
    first, second = pairs_of(trace[block_key(k - 1)])
    assert_close(second, first, F64, name=f"blocks.{k - 1}: the two frames of each pair")
    assert_close(trace["merges.0.tokens"], first, F64, name="merges.0.tokens")


def test_identical_frames_with_uneven_weights():
    """The local branch sees different neighbours for 2p and 2p+1, so their weights differ;
    the merged frame must still equal the pair."""
    case = nano_case(frames=8)
    video = np.repeat(case.video[:, ::2], 2, axis=1)
    _, trace = forward(case, video=video)
    a0, a1 = pairs_of(trace["merges.0.weights"])
    assert np.abs(a0 - a1).max() > 0.05, "weights within pairs are equal: this test would be trivial"
    assert_close(trace["merges.0.tokens"], trace["blocks.0"][:, ::2], F64, name="merges.0.tokens")


# ---- 4. zero-initialized predictor ----------------------------------------------------------

@given(case=cases(configs(min_merges=1)))
@example(case=nano_case())
@example(case=nano_case(weight_fn="sigmoid", weight_granularity="channel"))
def test_zero_init_merge_is_exactly_the_mean(case):
    cfg = case.cfg
    _, trace = forward(case, params=case.params())  # score layers zero, as initialized
    for j, k in enumerate(cfg.schedule):
        np.testing.assert_array_equal(trace[merge_key(j, "weights")], 0.5, err_msg=f"merge {j}: weights")
        first, second = pairs_of(trace[block_key(k - 1)])
        # 0.5*a + 0.5*b and (a + b) / 2 round identically: halving is exact in binary.
        np.testing.assert_array_equal(trace[merge_key(j, "tokens")], (first + second) / 2, err_msg=f"merge {j}: tokens")


# ---- 5. S = () is the naive adaptation -----------------------------------------------------

@given(case=cases(configs(temporals=WITHOUT_MODULES)))
@example(case=nano_case())
def test_empty_schedule_is_naive_per_frame_average(case):
    """forward with S = () equals running the image model on each frame alone (T = 1) and
    averaging the pooled class tokens, then projecting and classifying."""
    cfg, video = case.cfg.replace(schedule=()), case.video
    params = ref.backbone(case.params(random_scores=True))
    logits, trace = ref.forward(params, video, cfg, return_trace=True)
    pooled = []
    for f in range(video.shape[1]):
        _, single = ref.forward(params, video[:, f : f + 1], cfg, return_trace=True)
        for i in range(cfg.depth):
            assert_close(trace[block_key(i)][:, f : f + 1], single[block_key(i)], F64, name=f"blocks.{i}, frame {f}")
        pooled.append(single["pooled"])
    expected = np.mean(pooled, axis=0)  # (B, C)
    assert_close(trace["pooled"], expected, F64, name="pooled")
    if cfg.embed_dim is not None:
        expected = expected @ params["proj.weight"].T
    if cfg.num_classes:
        expected = expected @ params["head.weight"].T + params["head.bias"]
    assert_close(logits, expected, F64, name="logits")


# ---- 6. frames are independent within a stage ------------------------------------------------

@given(case=cases(configs(max_merges=0, temporals=WITHOUT_MODULES)), data=st.data())
@example(case=nano_case(schedule=()), data=None)
def test_blocks_never_mix_frames(case, data):
    """S = (): changing frame f's pixels changes only frame f, in every trace entry."""
    cfg, video = case.cfg, case.video
    T0 = video.shape[1]
    f = data.draw(st.integers(0, T0 - 1), label="frame") if data is not None else T0 - 1
    other = video.copy()
    other[:, f] = np.random.default_rng([case.seed, 3]).standard_normal(other[:, f].shape)
    params = case.params()
    _, before = forward(case, params)
    _, after = forward(case, params, video=other)
    keep = [t for t in range(T0) if t != f]
    for key in before:
        if stage(cfg, key) is not None and keep:
            assert_close(after[key][:, keep], before[key][:, keep], F64, name=f"{key}, frames {keep} (frame {f} changed)")
    if cfg.width > 1 or not cfg.ln_pre:  # LN over one channel erases the input
        assert np.any(after["embed"][:, f] != before["embed"][:, f]), "the perturbation did not reach frame f"


def traces_with_one_frame_changed(case, data, default: int):
    """Draw a frame f (or take `default` under @example), replace its pixels with fresh
    noise, and return (f, trace before, trace after) with random non-zero score weights."""
    T0 = case.video.shape[1]
    f = data.draw(st.integers(0, T0 - 1), label="frame") if data is not None else default
    other = case.video.copy()
    other[:, f] = np.random.default_rng([case.seed, 3]).standard_normal(other[:, f].shape)
    params = case.params(random_scores=True)
    _, before = forward(case, params)
    _, after = forward(case, params, video=other)
    return f, before, after


@given(case=cases(configs(temporals=WITHOUT_MODULES)), data=st.data())
@example(case=nano_case(frames=8), data=None)
def test_frames_independent_before_the_first_merge(case, data):
    """With any schedule, every entry before the first merge sees only its own frame (without
    temporal modules: spec/00-method.md §12.4)."""
    cfg, T0 = case.cfg, case.video.shape[1]
    f, before, after = traces_with_one_frame_changed(case, data, default=2)
    keep = [t for t in range(T0) if t != f]
    first_merge = "merges.0.scores" if cfg.schedule else "pooled"
    for key in list(before)[: list(before).index(first_merge)]:
        if keep:
            assert_close(after[key][:, keep], before[key][:, keep], F64, name=f"{key}, frames {keep}")


@given(case=cases(configs(min_merges=1, branch_pool=("token", "frame"), temporals=WITHOUT_MODULES)), data=st.data())
@example(case=nano_case(frames=8, branches=("token", "frame")), data=None)
def test_without_local_and_clip_each_group_is_independent(case, data):
    """Only the local and clip branches look across frames: without them, input frame f
    reaches only its own group f >> s at stage s, in every entry with a frame axis."""
    cfg = case.cfg
    f, before, after = traces_with_one_frame_changed(case, data, default=5)
    for key in before:
        s = stage(cfg, key)
        if s is None:
            continue
        moved = f >> s
        if key.endswith(".weights") and cfg.weight_fn == "softmax":  # the softmax couples a pair's weights
            keep = [t for t in range(before[key].shape[1]) if t // 2 != moved // 2]
        else:
            keep = [t for t in range(before[key].shape[1]) if t != moved]
        if keep:
            assert_close(after[key][:, keep], before[key][:, keep], F64, name=f"{key}, frames {keep} (input frame {f} changed)")


@given(case=cases(configs(min_merges=1, branch_pool=("token", "local", "frame"), weight_fns=("softmax", "sigmoid"),
                          temporals=WITHOUT_MODULES)), data=st.data())
@example(case=nano_case(frames=8, branches=("local",)), data=None)
def test_local_branch_reaches_one_frame_each_side(case, data):
    """The 3x3x3 local branch: at the first merge, input frame f moves only the scores of
    frames f-1, f, f+1 (without the clip branch)."""
    cfg, video = case.cfg, case.video
    T0 = video.shape[1]
    f = data.draw(st.integers(0, T0 - 1), label="frame") if data is not None else 4
    other = video.copy()
    other[:, f] = np.random.default_rng([case.seed, 3]).standard_normal(other[:, f].shape)
    params = case.params(random_scores=True)
    _, before = forward(case, params)
    _, after = forward(case, params, video=other)
    far = [t for t in range(T0) if abs(t - f) > 1]
    if far:
        assert_close(after["merges.0.scores"][:, far], before["merges.0.scores"][:, far], F64, name=f"merges.0.scores, frames {far}")


def test_clip_branch_looks_across_the_clip():
    """The converse, so the tests above can fail: with the clip branch, input frame 0 moves
    the score of frame 7."""
    case = nano_case(frames=8, branches=("clip",))
    other = case.video.copy()
    other[:, 0] += 1.0
    params = case.params(random_scores=True)
    _, before = forward(case, params)
    _, after = forward(case, params, video=other)
    assert rel_err(after["merges.0.scores"][:, 7], before["merges.0.scores"][:, 7]) > 1e3 * EPS64


@given(
    cfg=configs(temporals=WITHOUT_MODULES),
    frames=st.integers(1, 4),
    data=st.data(),
)
def test_block_is_per_frame(cfg, frames, data):
    """One block on (b, t, N, C): changing frame f's tokens changes no other frame."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    params = scope(ref.init_params(cfg, seed=1), "blocks.0.")
    x = rng.standard_normal((2, frames, cfg.num_tokens, cfg.width))
    f = data.draw(st.integers(0, frames - 1), label="frame")
    y = x.copy()
    y[:, f] = rng.standard_normal(y[:, f].shape)
    keep = [t for t in range(frames) if t != f]
    before, after = block(params, x, cfg=cfg), block(params, y, cfg=cfg)
    assert_close(after[:, keep], before[:, keep], F64, name=f"block output, frames {keep}")
    assert np.any(after[:, f] != before[:, f])


# ---- 7. batch independence ------------------------------------------------------------------

@given(case=cases(min_batch=2))
@example(case=nano_case(batch=2))
def test_batch_independence(case):
    """Clip 0's trace does not move when clip 1 changes, and equals clip 0 run alone."""
    video = case.video
    params = case.params(random_scores=True)
    other = video.copy()
    other[1:] = np.random.default_rng([case.seed, 4]).standard_normal(other[1:].shape)
    _, before = forward(case, params)
    _, after = forward(case, params, video=other)
    _, alone = forward(case, params, video=video[:1])
    for key in before:
        assert_close(after[key][:1], before[key][:1], F64, name=f"{key}, clip 0 when clip 1 changes")
        assert_close(alone[key], before[key][:1], F64, name=f"{key}, clip 0 alone vs in a batch")
    assert np.any(after["embed"][1] != before["embed"][1]) or (case.cfg.width == 1 and case.cfg.ln_pre)


# ---- 9. contributions -----------------------------------------------------------------------

def contributions_by_loop(weights: list[np.ndarray]) -> np.ndarray:
    """spec/00-method.md §6 written as a loop over input frames: c[f] = prod_j a_j[f >> j]."""
    B, T0 = weights[0].shape[:2]
    c = np.stack([np.prod([a[:, f >> j] for j, a in enumerate(weights)], axis=0) for f in range(T0)], axis=1)
    return c.mean(axis=-1) if c.ndim == 4 else c


@given(case=cases(configs(min_merges=1, min_branches=1)))
@example(case=nano_case(frames=8))
@example(case=nano_case(frames=4, weight_granularity="channel"))
def test_contributions(case):
    cfg = case.cfg
    _, trace = forward(case)
    weights = ref.trace_weights(trace, cfg)
    c = ref.contributions(weights)
    B, T0 = case.video.shape[:2]
    assert c.shape == (B, T0, cfg.num_tokens)
    assert_close(c, contributions_by_loop(weights), F64, name="contributions")
    group = 2 ** len(cfg.schedule)
    sums = c.reshape(B, T0 // group, group, cfg.num_tokens).sum(axis=2)
    if cfg.weight_fn == "softmax":
        assert_close(sums, np.ones_like(sums), F64, name="contributions summed over each group")
    elif cfg.weight_fn == "mean":
        np.testing.assert_array_equal(c, 0.5 ** len(cfg.schedule))
    else:  # sigmoid: each factor in (0, 1), nothing is normalized
        assert np.all(c > 0) and np.all(c < 1)


def test_contributions_need_weights():
    with pytest.raises(ValueError, match="at least one merge"):
        ref.contributions([])


# ---- the local branch ignores and zeroes the class token ------------------------------------

@given(
    grid=st.integers(1, 4),
    frames=st.integers(1, 4),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_local_branch_gives_the_class_token_zeros(grid, frames, d, seed):
    rng = np.random.default_rng(seed)
    params = {"local.weight": rng.standard_normal((d, 1, 3, 3, 3)), "local.bias": 1.0 + rng.random(d)}  # bias > 0
    z = rng.standard_normal((2, frames, grid * grid + 1, d))
    out = local_branch(params, z, grid=grid)
    assert out.shape == z.shape
    np.testing.assert_array_equal(out[:, :, 0], 0.0)
    assert np.all(out[:, :, 1:] != 0.0)
    z2 = z.copy()
    z2[:, :, 0] = rng.standard_normal(z2[:, :, 0].shape)  # the class token is not an input either
    np.testing.assert_array_equal(local_branch(params, z2, grid=grid), out)


# ---- sanity of the ablation weight functions -------------------------------------------------

@given(case=cases(configs(min_merges=1, weight_fns=("sigmoid", "mean"))))
@example(case=nano_case(weight_fn="sigmoid"))
@example(case=nano_case(weight_fn="mean"))
def test_sigmoid_and_mean_weights(case):
    from scipy.special import expit

    cfg = case.cfg
    _, trace = forward(case)
    for j in range(len(cfg.schedule)):
        s, a = trace[merge_key(j, "scores")], trace[merge_key(j, "weights")]
        if cfg.weight_fn == "mean":
            np.testing.assert_array_equal(s, 0.0)
            np.testing.assert_array_equal(a, 0.5)
        else:
            assert_close(a, expit(s), F64, name=f"merge {j}: sigmoid weights")
            assert np.all(a > 0) and np.all(a < 1)


def test_mean_has_no_predictor_parameters():
    cfg = ref.preset("nano", weight_fn="mean")
    assert not [k for k in ref.param_shapes(cfg) if k.startswith("merges.")]
    # and with random score layers elsewhere it would be unaffected: nothing to randomize
    params = ref.init_params(cfg)
    assert randomize_scores(params, cfg).keys() == params.keys()
    video = make_video(cfg, 4, 1, seed=0)
    logits = ref.forward(params, video, cfg)
    assert np.all(np.isfinite(logits))
