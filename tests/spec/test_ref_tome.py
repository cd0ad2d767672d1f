"""ToMe within each frame in the spec (spec/00-method.md §14): the forward, the matching, the cost.

- r = 0 in every block is `ref.forward`'s naive adaptation, bit for bit, trace entry by entry.
- The matching picks what a brute-force loop over every (A, B) pair picks, and the merge is
  the size-weighted average of each group, written out token by token.
- Sizes are whole numbers that sum to the frame's token count; the class token stays at
  position 0 with size 1; frames never mix; proportional attention counts a key of size s as s
  copies of it.
- The cost: r = 0 is `ref.count_macs`'s naive count; the per-block formula against a count
  written here from first principles, and a hand count; `tome_schedule` on the experiment's
  config (InTI's MACs for S = (1,) on 8 frames of a 17-token ViT).
- Bad r, bad configs, bad targets raise ValueErrors that say what was expected.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ref
from ref.attention import attention
from ref.model import block_key
from ref.tome import bipartite_soft_matching, constant_r, merge_wavg, most_merges, tome_key, tome_macs, tome_schedule
from strategies import Case, cases, configs, make_video, tome_r

# The experiment's config (spec/00-method.md §14.4): 32 px, patch 8 -> 16 patches, N = 17.
EXPERIMENT = ref.ModelConfig(
    image_size=32, patch_size=8, width=64, depth=4, heads=4, embed_dim=None, num_classes=10,
    activation="gelu", ln_eps=1e-6,
)
NAIVE_CONFIGS = configs(max_merges=0)  # schedule (): the parameters ToMe takes


def experiment_case(frames: int = 8, batch: int = 2, seed: int = 0) -> Case:
    return Case(EXPERIMENT, seed, make_video(EXPERIMENT, frames, batch, seed))


# ---- r = 0 is the naive adaptation ------------------------------------------------------------

@given(case=cases(NAIVE_CONFIGS))
@example(case=experiment_case())
def test_r_zero_is_ref_forward_exactly(case):
    params = case.params()
    expected_logits, expected = ref.forward(params, case.video, case.cfg, return_trace=True)
    logits, trace = ref.tome_forward(params, case.video, case.cfg, (0,) * case.cfg.depth, return_trace=True)
    assert list(trace) == list(expected)
    for name in expected:
        assert np.array_equal(trace[name], expected[name]), f"{name} differs from ref.forward's"
    assert np.array_equal(logits, expected_logits)
    assert np.array_equal(ref.tome_forward(params, case.video, case.cfg, [0] * case.cfg.depth), expected_logits)


# ---- the matching against a brute-force loop --------------------------------------------------

def brute_force_matching(metric: np.ndarray, r: int) -> tuple[list[int], list[int]]:
    """One frame, metric (n, e): every A token's best B partner by a loop over every pair; the r
    A tokens with the most similar partners (ties to the lower position), never the class token.
    Returns (src, dst) as positions in A and in B, most similar first."""
    n = len(metric)
    cos = lambda i, j: float(metric[i] @ metric[j] / (np.linalg.norm(metric[i]) * np.linalg.norm(metric[j])))  # noqa: E731
    best = {}
    for i in range(2, n, 2):  # A tokens but the class token (position 0)
        partner = max(range(1, n, 2), key=lambda j: (cos(i, j), -j))  # first of equals
        best[i] = (cos(i, partner), partner)
    chosen = sorted(best, key=lambda i: (-best[i][0], i))[:r]
    return [i // 2 for i in chosen], [best[i][1] // 2 for i in chosen]


def brute_force_merge(x: np.ndarray, size: np.ndarray, src: list[int], dst: list[int]):
    """One frame, x (n, C): the groups written out token by token, in ToMe's output order."""
    n = len(x)
    groups = {("a", i): [2 * i] for i in range((n + 1) // 2) if i not in src}
    groups |= {("b", j): [2 * j + 1] for j in range(n // 2)}
    for i, j in zip(src, dst):
        groups[("b", j)].append(2 * i)
    order = sorted((k for k in groups if k[0] == "a"), key=lambda k: k[1]) + [("b", j) for j in range(n // 2)]
    y = np.stack([sum(size[t] * x[t] for t in groups[k]) / sum(size[t] for t in groups[k]) for k in order])
    return y, np.array([sum(size[t] for t in groups[k]) for k in order])


@pytest.mark.parametrize("n, r, e", [(17, 8, 4), (17, 3, 3), (16, 7, 2), (9, 1, 5), (3, 1, 1), (5, 2, 16)])
def test_matching_and_merge_against_brute_force(n, r, e):
    rng = np.random.default_rng([n, r, e])
    metric = rng.standard_normal((2, 3, n, e))  # (b, t, n, e)
    x = rng.standard_normal((2, 3, n, 6))
    size = rng.integers(1, 4, size=(2, 3, n)).astype(np.float64)
    decided = bipartite_soft_matching(metric, r)
    y, size_out = merge_wavg(x, size, decided["slots"], n - r)
    assert y.shape == (2, 3, n - r, 6) and size_out.shape == (2, 3, n - r)
    for b, t in itertools.product(range(2), range(3)):
        src, dst = brute_force_matching(metric[b, t], r)
        assert decided["src"][b, t].tolist() == src and decided["dst"][b, t].tolist() == dst, (b, t)
        assert sorted(decided["unm"][b, t].tolist() + src) == list(range((n + 1) // 2))
        want_y, want_size = brute_force_merge(x[b, t], size[b, t], src, dst)
        np.testing.assert_allclose(y[b, t], want_y, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(size_out[b, t], want_size)


def test_ties_go_to_the_lower_position():
    """Identical keys: every similarity is 1, so the first B token is every A token's match and
    the A tokens merge in order of position (a stable sort) [ours]."""
    decided = bipartite_soft_matching(np.ones((1, 1, 9, 3)), 3)
    assert decided["src"].tolist() == [[[1, 2, 3]]] and decided["dst"].tolist() == [[[0, 0, 0]]]
    assert decided["unm"].tolist() == [[[0, 4]]]
    assert decided["slots"].tolist() == [[[0, 2, 2, 3, 2, 4, 2, 5, 1]]]


def test_the_class_token_is_never_merged_even_when_most_similar():
    metric = np.random.default_rng(0).standard_normal((1, 1, 7, 4))
    metric[..., 0, :] = metric[..., 1, :]  # the class token's keys equal B token 0's: cosine 1
    decided = bipartite_soft_matching(metric, most_merges(7))
    assert np.isclose(decided["similarity"][0, 0, 0, 0], 1.0)  # the trace keeps the unmasked cosine
    assert 0 not in decided["src"] and decided["unm"][..., 0].item() == 0 and decided["slots"][..., 0].item() == 0


# ---- sizes, the class token, frames apart -----------------------------------------------------

@given(case=cases(NAIVE_CONFIGS), data=st.data())
@example(case=experiment_case(), data=None)
def test_sizes_sum_to_the_token_count(case, data):
    cfg = case.cfg
    r = data.draw(tome_r(cfg), label="r") if data is not None else (3, 3, 3, 3)
    _, trace = ref.tome_forward(case.params(), case.video, cfg, r, return_trace=True)
    n = cfg.num_tokens
    for i, k in enumerate(r):
        assert trace[block_key(i)].shape[2] == n - k
        if k:
            size = trace[tome_key(i, "size")]
            assert size.shape == trace[block_key(i)].shape[:3]
            assert np.array_equal(size.sum(axis=-1), np.full(size.shape[:2], cfg.num_tokens, dtype=size.dtype))
            assert np.array_equal(size, np.round(size)) and size.min() >= 1
            assert np.all(size[..., 0] == 1) and not np.any(trace[tome_key(i, "src")] == 0)  # class token
        else:
            assert tome_key(i, "size") not in trace
        n -= k


def test_frames_never_mix_and_clips_are_independent():
    """Each frame alone gives the same pooled class token: the clip's is their mean."""
    case = experiment_case(frames=4, batch=2)
    params, r = case.params(), constant_r(EXPERIMENT, 3)
    _, trace = ref.tome_forward(params, case.video, EXPERIMENT, r, return_trace=True)
    alone = [ref.tome_forward(params, case.video[:, t : t + 1], EXPERIMENT, r, return_trace=True)[1]["pooled"]
             for t in range(4)]
    np.testing.assert_allclose(trace["pooled"], np.mean(alone, axis=0), rtol=1e-12, atol=1e-12)
    one = ref.tome_forward(params, case.video[1:], EXPERIMENT, r)
    np.testing.assert_allclose(one, ref.tome_forward(params, case.video, EXPERIMENT, r)[1:], rtol=1e-12, atol=1e-12)


def test_proportional_attention_counts_a_key_of_size_s_as_s_copies():
    cfg = EXPERIMENT
    params = ref.params.scope(ref.init_params(cfg, seed=1), "blocks.0.attn.")
    x = np.random.default_rng(1).standard_normal((2, 4, cfg.width))  # (b, n, C)
    size = np.array([1.0, 3.0, 1.0, 2.0])
    copies = np.repeat(x, size.astype(int), axis=1)  # token 1 three times, token 3 twice
    out = attention(params, x, heads=cfg.heads, size=np.broadcast_to(size, (2, 4)))
    first = np.cumsum(size).astype(int) - size.astype(int)  # where each token's copies start
    expected = attention(params, copies, heads=cfg.heads)[:, first]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# ---- the cost ---------------------------------------------------------------------------------

SHARED = ("patch_embed", "blocks", "head", "total", "matmul", "per_block")


@given(cfg=NAIVE_CONFIGS, frames=st.integers(1, 8), batch=st.integers(1, 3))
@example(cfg=EXPERIMENT, frames=8, batch=1)
@example(cfg=ref.preset("vit_b16", schedule=()), frames=16, batch=2)
def test_r_zero_costs_what_count_macs_says_for_naive(cfg, frames, batch):
    macs, naive = tome_macs(cfg, frames, (0,) * cfg.depth, batch), ref.count_macs(cfg, frames, batch)
    assert {k: macs[k] for k in SHARED} == {k: naive[k] for k in SHARED}
    assert macs["matching"] == macs["merge"] == 0 and macs["tokens"] == (cfg.num_tokens,) * cfg.depth


def first_principles(cfg: ref.ModelConfig, frames: int, r: tuple, batch: int) -> dict:
    """ToMe's MACs term by term, every product written as (outputs) x (inner length)."""
    C, e, H, K = cfg.width, cfg.head_dim, cfg.mlp_width, cfg.num_classes
    per_frame = {"patch_embed": cfg.num_patches * C * (3 * cfg.patch_size**2)}
    blocks = matching = merge = 0
    n = cfg.num_tokens
    for k in r:
        qkv = (n * 3 * C) * C
        logits = cfg.heads * (n * n) * e  # q k^T, per head
        mix = cfg.heads * (n * e) * n  # weights x values, per head
        proj = (n * C) * C
        fc1, fc2 = ((n - k) * H) * C, ((n - k) * C) * H
        blocks += qkv + logits + mix + proj + fc1 + fc2
        if k:
            matching += ((n + 1) // 2 * (n // 2)) * e  # every A token against every B token
            merge += n * C  # one multiply by its size per channel of every token
        n -= k
    head = (C * cfg.embed_dim if cfg.embed_dim else 0) + (cfg.feature_dim * K)
    out = {"patch_embed": batch * frames * per_frame["patch_embed"], "blocks": batch * frames * blocks,
           "matching": batch * frames * matching, "merge": batch * frames * merge, "head": batch * head}
    out["total"] = sum(out.values())
    return out


@given(cfg=NAIVE_CONFIGS, data=st.data())
@example(cfg=EXPERIMENT, data=None)
def test_cost_against_first_principles(cfg, data):
    r = data.draw(tome_r(cfg), label="r") if data is not None else (3, 3, 3, 3)
    frames, batch = (data.draw(st.integers(1, 8), label="frames"), data.draw(st.integers(1, 3), label="batch")) \
        if data is not None else (8, 2)
    macs, want = tome_macs(cfg, frames, r, batch), first_principles(cfg, frames, r, batch)
    assert {k: macs[k] for k in want} == want
    assert macs["matmul"] == macs["total"] - macs["merge"]
    assert sum(m for _, m in macs["per_block"]) == macs["blocks"] + macs["matching"]
    assert all(t == frames for t, _ in macs["per_block"])


# image 4, patch 2 -> L = 4, N = 5; C = 8, heads 2 (e = 4); MLP width 16; no projection, K = 3;
# depth 2, r = (2, 1): 5 tokens enter block 1 (at most 2 merge), 3 enter block 2 (at most 1).
HAND = ref.ModelConfig(image_size=4, patch_size=2, width=8, depth=2, heads=2, mlp_ratio=2.0, embed_dim=None,
                       num_classes=3)


def test_hand_count():
    # block 1, n = 5 -> 3: qkv 5*8*24 = 960; scores and weights x values 2*25*8 = 400; proj 5*8*8 = 320;
    #   MLP on 3 tokens 2*3*8*16 = 768 (sum 2448); matching 3*2*4 = 24; weighted average 5*8 = 40
    # block 2, n = 3 -> 2: qkv 3*8*24 = 576; 2*9*8 = 144; 3*8*8 = 192; MLP 2*2*8*16 = 512 (sum 1424);
    #   matching 2*1*4 = 8; weighted average 3*8 = 24
    # patch embedding 4*12*8 = 384 per frame; head 8*3 = 24 per clip. T = 2, B = 3:
    # blocks 6*(2448+1424) = 23232; matching 6*32 = 192; merge 6*64 = 384; patch 6*384 = 2304; head 72
    macs = tome_macs(HAND, 2, (2, 1), batch=3)
    assert {k: macs[k] for k in ("patch_embed", "blocks", "matching", "merge", "head", "total", "matmul")} == {
        "patch_embed": 2304, "blocks": 23232, "matching": 192, "merge": 384, "head": 72,
        "total": 26184, "matmul": 25800,
    }
    assert macs["per_block"] == [(2, 6 * (2448 + 24)), (2, 6 * (1424 + 8))] and macs["tokens"] == (5, 3)


# ---- the schedule at a budget ----------------------------------------------------------------

def test_tome_schedule_at_the_experiments_budget():
    """InTI with S = (1,) on 8 frames costs 19.27 M MACs; ToMe's constant r = 3 costs 18.82 M
    (2.3% less), the nearest of r = 0 .. 8: r = 2 costs 16% more, r = 4 (clamped) 18% less."""
    target = ref.count_macs(EXPERIMENT.replace(schedule=(1,)), 8)["total"]
    r = tome_schedule(EXPERIMENT, 8, target)
    assert r == (3, 3, 3, 3)
    total = tome_macs(EXPERIMENT, 8, r)["total"]
    assert abs(total / target - 1) < 0.03
    gaps = {k: abs(tome_macs(EXPERIMENT, 8, constant_r(EXPERIMENT, k))["total"] - target) for k in range(9)}
    assert min(gaps, key=gaps.get) == 3
    assert tome_macs(EXPERIMENT, 8, (2,) * 4)["total"] > target > total  # the budget lies between


def test_tome_schedule_edges():
    cfg = EXPERIMENT
    exact = tome_macs(cfg, 8, (2,) * 4)["total"]
    assert tome_schedule(cfg, 8, exact) == (2, 2, 2, 2)
    assert tome_schedule(cfg, 8, 10**12) == (0, 0, 0, 0)  # above the naive cost
    assert tome_schedule(cfg, 8, 1) == (8, 4, 2, 1)  # below every candidate: ToMe's clamp at r = 8
    assert constant_r(cfg, 4) == (4, 4, 4, 2)  # 5 tokens enter block 4: at most 2 merge
    assert tome_schedule(cfg, 8, tome_macs(cfg, 8, (4, 4, 4, 2))["total"]) == (4, 4, 4, 2)
    # two equally near candidates: the smaller r
    mid = (tome_macs(cfg, 8, (1,) * 4)["total"] + tome_macs(cfg, 8, (2,) * 4)["total"]) / 2
    assert tome_schedule(cfg, 8, mid) == (1, 1, 1, 1)


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "r, message",
    [
        ((3, 3, 3), r"r must have one entry per block, 4, got 3"),
        ((3, 3, 3, 3, 3), r"one entry per block, 4, got 5"),
        ((3, -1, 3, 3), r"non-negative integers, got -1 at block 2"),
        ((3, 2.0, 3, 3), r"non-negative integers, got 2.0 at block 2"),
        ((True, 0, 0, 0), r"non-negative integers, got True at block 1"),
        ((9, 0, 0, 0), r"at most 8 tokens at block 1, where 17 tokens enter \(set A holds 9"),
        ((8, 5, 0, 0), r"at most 4 tokens at block 2, where 9 tokens enter"),
        ((4, 4, 4, 4), r"at most 2 tokens at block 4, where 5 tokens enter.*got r = 4 in r = \(4, 4, 4, 4\)"),
        (3, r"r must be a tuple of 4 integers, one per block, got 3 \(a constant r is \(3,\) \* 4\)"),
        ("3333", r"r must be a tuple of 4 integers"),
    ],
)
def test_bad_r_raises(r, message):
    case = experiment_case(frames=1, batch=1)
    with pytest.raises(ValueError, match=message):
        ref.tome_forward(case.params(), case.video, EXPERIMENT, r)
    with pytest.raises(ValueError, match=message):
        tome_macs(EXPERIMENT, 8, r)


def test_bad_config_frames_and_target_raise():
    inti = EXPERIMENT.replace(schedule=(1,))
    with pytest.raises(ValueError, match=r"ToMe runs the image ViT alone: it needs a config with schedule=\(\)"):
        tome_macs(inti, 8, (0,) * 4)
    with pytest.raises(ValueError, match=r"temporal='none', got schedule=\(\), temporal='st_adapter'"):
        tome_schedule(EXPERIMENT.replace(temporal="st_adapter"), 8, 1e6)
    with pytest.raises(TypeError, match=r"cfg must be a ref.ModelConfig"):
        tome_macs({"width": 64}, 8, (0,) * 4)
    with pytest.raises(ValueError, match=r"frames must be a positive integer, got 0"):
        tome_macs(EXPERIMENT, 0, (0,) * 4)
    for target in (0, -5, float("nan"), float("inf"), "1e6", True):
        with pytest.raises(ValueError, match=r"target_macs must be a positive finite number of MACs"):
            tome_schedule(EXPERIMENT, 8, target)
    with pytest.raises(ValueError, match=r"a constant r must be a non-negative integer, got -1"):
        constant_r(EXPERIMENT, -1)
    case = experiment_case(frames=1, batch=1)
    params = {k: v for k, v in case.params().items() if k != "head.bias"}
    with pytest.raises(ValueError, match=r"parameters do not match the config: missing 1 key\(s\): head.bias"):
        ref.tome_forward(params, case.video, EXPERIMENT, (0,) * 4)
