"""Hypothesis profiles for the whole suite.

- ``ci``: derandomized (the same examples on every run), no deadline, 25 examples per property.
  ``.ci/run`` selects it with ``HYPOTHESIS_PROFILE=ci``.
- ``dev`` (the default): 10 random examples per property, no deadline, for a quick local loop.

The tests sit in folders that say what they test: ``spec/`` (the NumPy spec), ``parity/``
(torch_impl against it), ``tools/`` (the inti package and the scripts), ``hostile/`` (bad input,
fuzzing, safe writes) and ``repo/`` (the layout, the README, the tutorials). Their shared helpers
live in ``support/``, which this file puts on ``sys.path``, so test files import them as
``from strategies import cases`` and ``from tolerances import assert_close``.

Every test runs in a fresh empty working folder (the root conftest.py), so nothing a user left in
the repository, such as an ``inti-demo/`` from ``make demo``, changes what a test sees.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# ---- the fuzzing suite (tests/hostile/test_fuzz.py) ------------------------------------------------------
# `pytest --fuzz-long` runs it with many more cases; the outcome counts of a run are printed at
# the end, and written as JSON to $INTI_FUZZ_REPORT when that is set.


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="run the fuzzing suite (tests/hostile/test_fuzz.py) with many more cases")


def pytest_configure(config):
    long = config.getoption("--fuzz-long", default=False)
    settings.register_profile(
        "fuzz", parent=settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev")),
        max_examples=400 if long else 30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )
    os.environ["INTI_FUZZ_LONG"] = "1" if long else ""


def pytest_terminal_summary(terminalreporter):
    import sys

    fuzz = sys.modules.get("fuzzing")
    if fuzz is None or not fuzz.OUTCOMES:
        return
    terminalreporter.write_line(fuzz.summary())
    path = os.environ.get("INTI_FUZZ_REPORT")
    if path:
        import json

        from inti.io.atomic import write_text

        write_text(path, json.dumps(fuzz.report(), indent=2) + "\n")
