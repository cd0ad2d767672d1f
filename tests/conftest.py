"""Hypothesis profiles for the whole suite.

- ``ci``: derandomized (the same examples on every run), no deadline, 25 examples per property.
  ``.ci/run`` selects it with ``HYPOTHESIS_PROFILE=ci``.
- ``dev`` (the default): 10 random examples per property, no deadline, for a quick local loop.

pytest puts ``tests/`` on ``sys.path``, so test files import the shared helpers as
``from strategies import cases`` and ``from tolerances import assert_close``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
