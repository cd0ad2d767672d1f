"""inti.parity: the one parity routine behind `inti demo`, `inti parity` and the parity figure.

Synthetic clips (seeded noise) keep this fast; the real-clip runs are in test_figures and test_cli.
"""

from __future__ import annotations

import numpy as np
import pytest
from recording import recording_step
import torch

import ref
from ref.params import randomize_scores
from inti.tolerances import TOLERANCE
from inti import parity

CFG = ref.preset("nano")


@pytest.fixture(scope="module")
def video():
    return np.random.default_rng(0).standard_normal((1, 4, 3, 64, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def params():
    return randomize_scores(ref.init_params(CFG, seed=0), CFG, seed=0)


@pytest.fixture(scope="module")
def both(video, params):
    return parity.run_both(video, params, CFG)


def test_rows_cover_every_trace_entry_and_dtype(both):
    inti = both["inti"]
    names = list(inti.reference)
    assert names[:3] == ["embed", "blocks.0", "merges.0.scores"]
    expected = [(n, d) for d in parity.DTYPES for n in names + [parity.CONTRIBUTIONS]]
    assert [(r.name, r.dtype) for r in inti.rows] == expected
    naive = both["naive"]
    assert not any(r.name.startswith("merges.") for r in naive.rows)
    assert parity.CONTRIBUTIONS not in {r.name for r in naive.rows} and naive.contributions == {}


def test_all_within_tolerance_and_tolerance_from_the_table(both):
    for result in both.values():
        assert result.ok, result.failures()
        for row in result.rows:
            assert row.tol == TOLERANCE[row.dtype]
            assert row.ok == (row.rel_err <= row.tol)
            assert np.isfinite(row.rel_err)
        assert set(result.times) == {"ref float64", "torch float64", "torch float32"}
        assert all(t > 0 for t in result.times.values())


def test_float32_errors_are_float32_sized(both):
    """float64 agrees to ~1e-15, float32 to ~1e-7: the comparison really sees the dtype."""
    worst64 = both["inti"].worst("float64").rel_err
    worst32 = both["inti"].worst("float32").rel_err
    assert worst64 < 1e-12 < 1e-9 < worst32


def test_a_stricter_tolerance_fails(video, params):
    result = parity.run_parity(video, params, CFG, ("float32",), tols={"float32": 1e-12})
    assert not result.ok
    assert all(r.tol == 1e-12 for r in result.rows)
    assert result.failures()[0].name == "embed"


def test_a_wrong_torch_model_is_caught_at_the_right_entry(video, params, monkeypatch):
    """Perturb block 2 of the torch side only: the first failing entry is blocks.2."""
    real = parity.from_ref_params

    def broken(p, cfg, **kw):
        model = real(p, cfg, **kw)
        with torch.no_grad():
            model.blocks[2].mlp.fc2.bias.add_(1e-3)
        return model

    monkeypatch.setattr(parity, "from_ref_params", broken)
    result = parity.run_parity(video, params, CFG, ("float64",))
    failures = result.failures()
    assert failures and failures[0].name == "blocks.2"
    assert all(r.ok for r in result.rows if r.name in ("embed", "blocks.0", "blocks.1"))


def test_steps_are_reported(video, params):
    labels = []

    parity.run_both(video, params, CFG, ("float32",), step=recording_step(labels))
    assert labels == [
        "naive ref forward (numpy float64)", "naive torch forward (float32)",
        "InTI ref forward (numpy float64)", "InTI torch forward (float32)",
    ]
    assert len(labels) == 2 * parity.steps_per_run(("float32",))


def test_random_scores_change_only_the_score_layer():
    base = ref.init_params(CFG, seed=0)
    rand = randomize_scores(base, CFG, seed=0)
    changed = {k for k in base if not np.array_equal(base[k], rand[k])}
    assert changed == {f"merges.{j}.score.{w}" for j in range(2) for w in ("weight", "bias")}
    again = randomize_scores(base, CFG, seed=0)
    assert all(np.array_equal(rand[k], again[k]) for k in rand)  # seeded
    assert all(rand[k].dtype == base[k].dtype for k in base)


def test_random_scores_give_non_trivial_weights(both):
    w = both["inti"].reference["merges.0.weights"]
    assert w.std() > 0.05 and 0 < w.min() and w.max() < 1


def test_bad_inputs(video, params):
    with pytest.raises(ValueError, match="no tolerance for dtype 'int8'"):
        parity.run_parity(video, params, CFG, ("int8",))
    with pytest.raises(ValueError, match="even number of frames"):
        parity.run_parity(video[:, :3], params, CFG)
