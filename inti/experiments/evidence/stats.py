"""The statistics of the decision rules (experiments/evidence/README.md, "Decision rules").

Seeds are the unit of replication: a run with seed s pretrains its own image model, draws its
own training, val and test clips and initializes its own new parts; the arms of seed s are
tested on the same clips. A comparison of arm A with arm B is therefore paired by seed:

- Δ_s = top-1(A, s) - top-1(B, s), in points; its mean over seeds with a 95% Student-t
  interval (n - 1 degrees of freedom). Since each seed draws its own test clips, the interval
  covers both what training varies and what the choice of test clips varies;
- per seed, McNemar's exact test on the same clips (the discordant pairs, two-sided binomial),
  reported beside the interval.

Rules (`beats`, `non_inferior`): an interval from per-seed differences that are all equal is
"not estimable", whatever its mean; "A beats B" needs the interval above 0 *and* a mean of at
least a minimum effect declared before the run.

    >>> d = paired([0.90, 0.92, 0.91], [0.80, 0.83, 0.79])
    >>> round(d["mean"], 1), d["lo"] > 0
    (10.3, True)
    >>> beats(d, min_effect=1.0)
    'holds'
"""

from __future__ import annotations

import math

import numpy as np

VERDICTS = ("holds", "does not hold", "inconclusive", "not estimable")


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided Student-t interval); half-width nan for one value."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("t_interval needs at least one value")
    if x.size == 1:
        return float(x[0]), math.nan
    half = float(t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean()), half


def mcnemar(correct_a: str, correct_b: str) -> dict:
    """McNemar's exact test on the same clips: correct_a/b are "0"/"1" strings, clip by clip.
    Returns the discordant counts (a right and b wrong, the reverse) and the two-sided p."""
    from scipy.stats import binomtest

    if len(correct_a) != len(correct_b):
        raise ValueError(f"McNemar needs the same clips: {len(correct_a)} against {len(correct_b)} results")
    a = np.frombuffer(correct_a.encode(), dtype=np.uint8) == ord("1")
    b = np.frombuffer(correct_b.encode(), dtype=np.uint8) == ord("1")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"a_only": only_a, "b_only": only_b, "p": p}


def paired(top1_a, top1_b, correct_a=None, correct_b=None, scale: float = 100.0) -> dict:
    """Δ = A - B (in points for top-1: scale 100), seed by seed: mean, 95% t-interval (lo, hi),
    the per-seed values, their standard deviation and, given the per-clip results, McNemar's
    test per seed."""
    a, b = np.asarray(top1_a, np.float64), np.asarray(top1_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired needs one value per seed on both sides, got {a.shape} and {b.shape}")
    delta = scale * (a - b)
    mean, half = t_interval(delta)
    out = {"mean": mean, "lo": mean - half, "hi": mean + half, "per_seed": delta.tolist(), "seeds": int(a.size),
           "sd": float(delta.std(ddof=1)) if a.size > 1 else math.nan}
    if correct_a is not None and correct_b is not None:
        out["mcnemar"] = [mcnemar(x, y) for x, y in zip(correct_a, correct_b)]
    return out


def estimable(d: dict) -> bool:
    """An interval needs two seeds or more and per-seed differences that are not all equal."""
    per_seed = d.get("per_seed", [])
    return len(per_seed) > 1 and max(per_seed) > min(per_seed) and not (math.isnan(d["lo"]) or math.isnan(d["hi"]))


def beats(d: dict, min_effect: float) -> str:
    """A beats B: "holds" when the interval of Δ lies above 0 and its mean is at least
    `min_effect`; "does not hold" when its upper end is below `min_effect` (no effect of the
    declared size is left); "inconclusive" otherwise; "not estimable" without a spread."""
    if not estimable(d):
        return "not estimable"
    if d["lo"] > 0 and d["mean"] >= min_effect:
        return "holds"
    if d["hi"] < min_effect:
        return "does not hold"
    return "inconclusive"


def non_inferior(d: dict, margin: float) -> str:
    """A is within `margin` of B (A - B >= -margin): "holds" when the interval's lower end is
    at least -margin, "does not hold" when its upper end is below -margin."""
    if not estimable(d):
        return "not estimable"
    if d["lo"] >= -margin:
        return "holds"
    if d["hi"] < -margin:
        return "does not hold"
    return "inconclusive"


def above(values, level_value: float, min_effect: float, scale: float = 100.0) -> dict:
    """A one-sample rule (a top-1 against chance, a share against a fixed value): the t-interval
    of scale * (values - level_value) judged as `beats` judges a paired Δ."""
    d = paired(values, [level_value] * len(values), scale=scale)
    return d | {"verdict": beats(d, min_effect)}


def both(*verdicts: str) -> str:
    """A claim made of several rules: holds when all hold, does not hold when any does not,
    not estimable when one is and none fails; inconclusive otherwise."""
    if all(v == "holds" for v in verdicts):
        return "holds"
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    if any(v == "not estimable" for v in verdicts):
        return "not estimable"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------
# power, from a pilot's spread (before the run)


def upper_sd(sd: float, n: int, level: float = 0.8) -> float:
    """The one-sided `level` upper confidence bound of a standard deviation estimated from n
    values (chi-square): what a pilot of few seeds may have underestimated."""
    from scipy.stats import chi2

    return float(sd * math.sqrt((n - 1) / chi2.ppf(1 - level, n - 1)))


def planned_sd(train_sd: float, discordant: float, test_clips: int) -> float:
    """The per-seed standard deviation of Δ (points) with `test_clips` test clips per seed: what
    training varies (train_sd) and the paired binomial part, sqrt(discordant rate / clips)."""
    return math.sqrt(train_sd**2 + 1e4 * discordant / test_clips)


def split_spread(sd_pilot: float, discordant: float, pilot_clips: int) -> float:
    """The training part of a pilot's per-seed spread of Δ: its variance less the binomial
    part of its clips (at least 0)."""
    return math.sqrt(max(sd_pilot**2 - 1e4 * discordant / pilot_clips, 0.0))


def power(sd: float, seeds: int, kind: str, bound: float, true_delta: float = 0.0, draws: int = 20000) -> float:
    """The chance that the rule holds with `seeds` seeds, per-seed sd `sd` and true Δ
    `true_delta`: kind "non_inferior" (bound: the margin) or "beats" (bound: the minimum
    effect). Simulated from the normal model of the per-seed Δ (a fixed generator)."""
    from scipy.stats import t

    rng = np.random.default_rng(0)
    mean = rng.normal(true_delta, sd / math.sqrt(seeds), draws)
    s = sd * np.sqrt(rng.chisquare(seeds - 1, draws) / (seeds - 1))
    half = t.ppf(0.975, seeds - 1) * s / math.sqrt(seeds)
    if kind == "non_inferior":
        return float(np.mean(mean - half >= -bound))
    return float(np.mean((mean - half > 0) & (mean >= bound)))
