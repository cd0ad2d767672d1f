"""The statistics of the decision rules (experiments/evidence/README.md, "Decision rules").

Seeds are the unit of replication: a run with seed s pretrains its own image model, draws
its own training clips and initializes its own θ and head; every variant of seed s is tested
on the same test clips. A comparison of variant A with variant B is therefore paired by seed:

- Δ_s = top-1(A, s) - top-1(B, s), in points; its mean over seeds with a 95% Student-t
  interval (n - 1 degrees of freedom);
- per seed, McNemar's exact test on the same clips (the discordant pairs, two-sided binomial).

    >>> d = paired([0.90, 0.92, 0.91], [0.80, 0.83, 0.79])
    >>> round(d["mean"], 1), d["lo"] > 0
    (10.3, True)
    >>> beats(d)
    'holds'
"""

from __future__ import annotations

import math

import numpy as np


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


def paired(top1_a, top1_b, correct_a=None, correct_b=None) -> dict:
    """Δ = A - B in points, seed by seed: mean, 95% t-interval (lo, hi), the per-seed values and,
    given the per-clip results, McNemar's test per seed."""
    a, b = np.asarray(top1_a, np.float64), np.asarray(top1_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired needs one top-1 per seed on both sides, got {a.shape} and {b.shape}")
    delta = 100.0 * (a - b)
    mean, half = t_interval(delta)
    out = {"mean": mean, "lo": mean - half, "hi": mean + half, "per_seed": delta.tolist(), "seeds": int(a.size)}
    if correct_a is not None and correct_b is not None:
        out["mcnemar"] = [mcnemar(x, y) for x, y in zip(correct_a, correct_b)]
    return out


def _known(d: dict) -> bool:
    return not (math.isnan(d["lo"]) or math.isnan(d["hi"]))


def beats(d: dict) -> str:
    """A beats B: "holds" when the interval of Δ lies above 0, "does not hold" when its upper end
    is at most 0, "inconclusive" otherwise (or with one seed)."""
    if not _known(d):
        return "inconclusive"
    if d["lo"] > 0:
        return "holds"
    if d["hi"] <= 0:
        return "does not hold"
    return "inconclusive"


def non_inferior(d: dict, margin: float = 1.0) -> str:
    """A is within `margin` points of B (A - B >= -margin): "holds" when the interval's lower end
    is at least -margin, "does not hold" when its upper end is below -margin."""
    if not _known(d):
        return "inconclusive"
    if d["lo"] >= -margin:
        return "holds"
    if d["hi"] < -margin:
        return "does not hold"
    return "inconclusive"


def both(*verdicts: str) -> str:
    """A claim made of several rules: holds when all hold, does not hold when any does not."""
    if all(v == "holds" for v in verdicts):
        return "holds"
    if any(v == "does not hold" for v in verdicts):
        return "does not hold"
    return "inconclusive"
