"""Hypothesis strategies for InTI: small configs, frame counts, and whole test cases.

Import them from a test file as ``from strategies import cases, configs`` (pytest puts
``tests/`` on ``sys.path``). The public API:

- ``configs(**limits)``: a valid `ref.ModelConfig`, drawn one named dimension at a time:
  grid, patch_size (image_size = grid * patch_size), heads, head_dim (width = heads *
  head_dim), reduction (a divisor of width), depth, the schedule (0..2 sorted distinct
  block indices), branches (any subset, canonical order), weight_fn, weight_granularity,
  activation, ln_pre, patch_bias, embed_dim, num_classes, mlp_ratio, ln_eps; and, only when
  `temporals` allows more than "none" (the default draws none, so the examples of the tests
  written before temporal modules existed are unchanged), the temporal module
  (spec/00-method.md §12): its kind, width (None or 1..C), blocks (any subset; () = all),
  ST-Adapter's placement, AIM's T0 (cfg.min_frames * m, m in 1..2, at most max_frames) and scale.
  ``configs(temporals=MODULES)`` draws a module every time. Keyword limits restrict it, e.g. ``configs(min_merges=1, weight_fns=("softmax",))`` or
  ``configs(branch_pool=("token", "frame"), min_branches=1)`` (branches drawn as subsets of
  the pool; with no branch, or the clip branch alone, every token of a clip gets the same
  score, so softmax weights are all 1/2).
- ``frames_for(cfg, max_frames=8)``: a strategy of valid input frame counts T0 =
  cfg.min_frames * m, m in 1..2, at most `max_frames` (but never below cfg.min_frames); AIM's
  one count, cfg.fixed_frames, when it has one.
- ``cases(cfgs=None, *, min_batch=1, max_batch=2, dtype=np.float64, max_size=...)``: a
  `Case(cfg, seed, video)`; `video` has shape (B, T0, 3, H, W) and comes from
  ``np.random.default_rng([seed, 1])`` (arrays are never drawn elementwise: too slow).
  ``case.params()`` gives ``ref.init_params(cfg, seed)``; ``case.params(random_scores=True)``
  also overwrites every ``merges.{j}.score.*`` with random non-zero values, so that softmax
  weights are not all 1/2 (see `randomize_scores`); ``random_modules=True`` does the same for
  the temporal modules' zero-initialized parameters (`randomize_temporal`), so they act.
- ``nano_case(frames=4, batch=1, seed=0, dtype=np.float64, **changes)``: the "nano" preset
  (fields changed by `changes`) as a `Case`, for ``@example``.
- ``tome_r(cfg)``: ToMe's merge counts, one per block (spec/00-method.md §14), each in
  0 .. (n - 1) // 2 for the n tokens entering its block, so every draw is valid; 0 and the
  largest value are drawn often.
- ``randomize_scores(params, cfg, seed=0, scale=2.0)`` and ``make_video(cfg, frames, batch,
  seed, dtype)``: the two helpers behind `Case`, for tests that build their own inputs.

Size cap: every dimension is tiny (N <= 17 tokens, C <= 12, T0 <= 8, B <= 2), and `cases`
additionally lowers T0 so that B * T0 * N * max(C, mlp width) stays below `max_size`; one
example runs in milliseconds in ref.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

import ref
from ref.params import randomize_scores, randomize_temporal  # the one random-score rule, shared with the demo
from ref.config import ACTIVATIONS, BRANCHES, GRANULARITIES, PLACEMENTS, WEIGHT_FNS
from ref.tome import most_merges

__all__ = ["Case", "cases", "configs", "frames_for", "nano_case", "randomize_scores", "randomize_temporal",
           "make_video", "MODULES", "tome_r"]

MODULES = ("st_adapter", "aim")  # the temporal modules of spec/00-method.md §12

MAX_SIZE = 20_000  # cap on B * T0 * N * max(C, mlp_width) for `cases`


class Case(NamedTuple):
    """One drawn test case: a config, a seed for its parameters, and a float video."""

    cfg: ref.ModelConfig
    seed: int
    video: np.ndarray  # (B, T0, 3, H, W)

    def __repr__(self) -> str:  # hypothesis prints failing cases: no full video dump
        return f"Case(cfg={self.cfg!r}, seed={self.seed}, video=<{self.video.dtype} array {self.video.shape}>)"

    def params(self, random_scores: bool = False, scale: float = 2.0, random_modules: bool = False) -> dict:
        """``ref.init_params(cfg, seed)`` in float64; with random_scores, see `randomize_scores`;
        with random_modules, `randomize_temporal`."""
        params = ref.init_params(self.cfg, seed=self.seed)
        if random_modules:
            params = randomize_temporal(params, self.cfg, seed=self.seed)
        return randomize_scores(params, self.cfg, seed=self.seed, scale=scale) if random_scores else params


def make_video(cfg: ref.ModelConfig, frames: int, batch: int, seed: int, dtype=np.float64) -> np.ndarray:
    """A standard-normal video (batch, frames, 3, H, W) from ``default_rng([seed, 1])``."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((batch, frames, 3, cfg.image_size, cfg.image_size)).astype(dtype)


def _subset(draw, pool, min_size: int = 0) -> tuple[str, ...]:
    chosen = draw(st.sets(st.sampled_from(tuple(pool)), min_size=min(min_size, len(pool)))) if pool else set()
    return tuple(b for b in BRANCHES if b in chosen)  # canonical order


@st.composite
def configs(
    draw,
    *,
    max_grid: int = 4,
    max_patch: int = 4,
    max_heads: int = 3,
    max_head_dim: int = 4,
    min_width: int = 1,
    max_depth: int = 3,
    min_merges: int = 0,
    max_merges: int = 2,
    branch_pool=BRANCHES,
    min_branches: int = 0,
    weight_fns=WEIGHT_FNS,
    granularities=GRANULARITIES,
    activations=ACTIVATIONS,
    temporals=("none",),
    max_frames: int = 8,
) -> ref.ModelConfig:
    """A small valid ModelConfig; see the module docstring. Every limit is inclusive."""
    grid = draw(st.integers(1, max_grid))
    patch_size = draw(st.integers(1, max_patch))
    heads = draw(st.integers(1, max_heads))
    head_dim = draw(st.integers(max(1, -(-min_width // heads)), max(max_head_dim, -(-min_width // heads))))
    width = heads * head_dim
    reduction = draw(st.sampled_from([r for r in (1, 2, 3, 4) if width % r == 0]))
    depth = draw(st.integers(max(1, min_merges), max(max_depth, min_merges)))
    merges = draw(st.integers(min_merges, min(max_merges, depth)))
    schedule = tuple(sorted(draw(st.lists(st.integers(1, depth), min_size=merges, max_size=merges, unique=True))))
    temporal = {}
    if tuple(temporals) != ("none",):  # no draw at all otherwise: earlier tests keep their examples
        kind = draw(st.sampled_from(tuple(temporals)))
        temporal = {"temporal": kind}
        if kind != "none":
            temporal["temporal_width"] = draw(st.none() | st.integers(1, width))
            temporal["temporal_blocks"] = tuple(sorted(draw(st.sets(st.integers(1, depth)))))
        if kind == "st_adapter":
            chosen = draw(st.sets(st.sampled_from(PLACEMENTS), min_size=1))
            temporal["temporal_placement"] = tuple(p for p in PLACEMENTS if p in chosen)
        if kind == "aim":
            step = 2 ** len(schedule)
            temporal["temporal_frames"] = step * draw(st.integers(1, max(1, min(2, max_frames // step))))
            temporal["temporal_scale"] = draw(st.sampled_from([0.5, 1.0, 0.0]))
    return ref.ModelConfig(
        image_size=grid * patch_size,
        patch_size=patch_size,
        width=width,
        depth=depth,
        heads=heads,
        mlp_ratio=draw(st.sampled_from([1.0, 2.0, 4.0])),
        embed_dim=draw(st.none() | st.integers(1, 8)),
        num_classes=draw(st.just(0) | st.integers(1, 5)),
        activation=draw(st.sampled_from(tuple(activations))),
        ln_eps=draw(st.sampled_from([1e-5, 1e-6])),
        ln_pre=draw(st.booleans()),
        patch_bias=draw(st.booleans()),
        schedule=schedule,
        reduction=reduction,
        branches=_subset(draw, branch_pool, min_branches),
        weight_fn=draw(st.sampled_from(tuple(weight_fns))),
        weight_granularity=draw(st.sampled_from(tuple(granularities))),
        **temporal,
    )


def frames_for(cfg: ref.ModelConfig, max_frames: int = 8, max_multiple: int = 2) -> st.SearchStrategy[int]:
    """Valid input frame counts T0 = cfg.min_frames * m, m in 1..max_multiple, T0 <= max_frames
    (T0 = cfg.min_frames when even that exceeds max_frames); AIM's fixed T0 when it has one."""
    if cfg.fixed_frames is not None:
        return st.just(cfg.fixed_frames)
    top = max(1, min(max_multiple, max_frames // cfg.min_frames))
    return st.integers(1, top).map(lambda m: m * cfg.min_frames)


def _example_size(cfg: ref.ModelConfig, frames: int, batch: int) -> int:
    return batch * frames * cfg.num_tokens * max(cfg.width, cfg.mlp_width)


@st.composite
def cases(
    draw,
    cfgs: st.SearchStrategy[ref.ModelConfig] | None = None,
    *,
    min_batch: int = 1,
    max_batch: int = 2,
    max_frames: int = 8,
    dtype=np.float64,
    max_size: int = MAX_SIZE,
) -> Case:
    """A `Case(cfg, seed, video)`: cfg from `cfgs` (default ``configs()``), B in
    min_batch..max_batch, T0 from `frames_for`, lowered to cfg.min_frames when the example
    would exceed `max_size` (see the module docstring)."""
    cfg = draw(cfgs if cfgs is not None else configs())
    batch = draw(st.integers(min_batch, max_batch))
    frames = draw(frames_for(cfg, max_frames=max_frames))
    if _example_size(cfg, frames, batch) > max_size and cfg.fixed_frames is None:
        frames = cfg.min_frames
    seed = draw(st.integers(0, 2**32 - 1))
    return Case(cfg, seed, make_video(cfg, frames, batch, seed, dtype))


def nano_case(frames: int = 4, batch: int = 1, seed: int = 0, dtype=np.float64, **changes) -> Case:
    """The "nano" preset (optionally changed) as a Case, to pin with ``@example``."""
    cfg = ref.preset("nano", **changes)
    return Case(cfg, seed, make_video(cfg, frames, batch, seed, dtype))


@st.composite
def tome_r(draw, cfg: ref.ModelConfig) -> tuple[int, ...]:
    """ToMe's r per block for cfg: r_i in 0 .. (n_i - 1) // 2, n_i the tokens entering block i."""
    r, n = [], cfg.num_tokens
    for _ in range(cfg.depth):
        most = most_merges(n)
        r.append(draw(st.sampled_from([0, most]) | st.integers(0, most)))
        n -= r[-1]
    return tuple(r)
