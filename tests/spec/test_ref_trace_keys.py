"""The trace's keys come from one helper: `ref.model`'s `block_key`, `merge_key`,
`merge_entries`, `trace_keys`, `trace_weights`, and `ref.tome`'s `tome_key`, `tome_trace_keys`.

- The names are the ones the docstrings of `ref.forward` and `ref.tome_forward` give, written
  out here by hand for a fixed config (the one place outside ref/model.py and ref/tome.py where
  they are spelled), so a change of spelling in the helper fails here.
- `ref.forward` and `ref.tome_forward` produce exactly the helper's keys, in order, on drawn
  configs (temporal modules included); torch's are checked in tests/parity/test_torch_loop.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import ref
from ref.model import block_key, merge_entries, merge_key, trace_keys, trace_weights
from ref.tome import tome_key, tome_trace_keys
from strategies import MODULES, cases, configs, nano_case, tome_r

NANO = ref.preset("nano")  # depth 4, S = (1, 2)


def test_the_keys_are_the_documented_names():
    assert trace_keys(NANO) == [
        "embed",
        "blocks.0", "merges.0.scores", "merges.0.weights", "merges.0.tokens",
        "blocks.1", "merges.1.scores", "merges.1.weights", "merges.1.tokens",
        "blocks.2", "blocks.3",
        "pooled", "features", "logits",
    ]
    assert trace_keys(NANO.replace(schedule=(4,))) == [
        "embed", "blocks.0", "blocks.1", "blocks.2", "blocks.3",
        "merges.0.scores", "merges.0.weights", "merges.0.tokens", "pooled", "features", "logits",
    ]
    assert trace_keys(NANO.replace(schedule=())) == [
        "embed", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "pooled", "features", "logits"]
    assert (block_key(11), merge_key(2, "weights")) == ("blocks.11", "merges.2.weights")


def test_the_tome_keys_are_the_documented_names():
    assert tome_trace_keys(NANO.replace(schedule=()), (2, 0, 0, 1)) == [
        "embed",
        "tome.0.similarity", "tome.0.src", "tome.0.dst", "tome.0.tokens", "tome.0.size", "blocks.0",
        "blocks.1", "blocks.2",
        "tome.3.similarity", "tome.3.src", "tome.3.dst", "tome.3.tokens", "tome.3.size", "blocks.3",
        "pooled", "features", "logits",
    ]


def test_an_unknown_entry_is_refused():
    with pytest.raises(ValueError, match=r"merge's trace entries are \('scores', 'weights', 'tokens'\), got 'score'"):
        merge_key(0, "score")
    with pytest.raises(ValueError, match="ToMe merge's trace entries are"):
        tome_key(0, "weights")


def test_merge_entries_and_trace_weights_read_and_write_the_same_names():
    a0, a1, s, y = np.zeros(1), np.ones(1), np.full(1, 2.0), np.full(1, 3.0)
    assert merge_entries(1, {"scores": s, "weights": a1}, y) == {
        "merges.1.scores": s, "merges.1.weights": a1, "merges.1.tokens": y}
    trace = {"merges.0.weights": a0, "merges.1.weights": a1, "blocks.0": y}
    assert trace_weights(trace, NANO)[0] is a0 and trace_weights(trace, NANO)[1] is a1
    assert trace_weights(trace, NANO.replace(schedule=())) == []


@given(case=cases(configs(temporals=("none", *MODULES))))
@example(case=nano_case())
@example(case=nano_case(frames=8, schedule=(4,)))
def test_ref_forward_makes_exactly_the_helpers_keys(case):
    _, trace = ref.forward(case.params(), case.video, case.cfg, return_trace=True)
    assert list(trace) == trace_keys(case.cfg)


@given(case=cases(configs(max_merges=0)), data=st.data())
def test_ref_tome_makes_exactly_the_helpers_keys(case, data):
    r = data.draw(tome_r(case.cfg), label="r")
    _, trace = ref.tome_forward(case.params(), case.video, case.cfg, r, return_trace=True)
    assert list(trace) == tome_trace_keys(case.cfg, r)
