"""Root pytest configuration: runs before numpy is imported by any test.

The NumPy spec makes many small batched matrix products; on a 2-core machine OpenBLAS's
threads mostly contend over them, so tests (and the doctests in spec/ and ref/) use one
BLAS thread unless the environment says otherwise. Every test runs in its own empty working
folder (`_own_working_folder` below).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402  (after the thread setting, which must precede numpy)


@pytest.fixture(autouse=True)
def _own_working_folder(tmp_path_factory, monkeypatch):
    """Every test and doctest runs in a new empty working folder: what a user left in the
    repository (an `inti-demo/` from `make demo`, a `run/` from training) never changes what a
    test sees, and a default output folder lands in the test's own temporary space."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
