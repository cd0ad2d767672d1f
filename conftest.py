"""Root pytest configuration: runs before numpy is imported by any test.

The NumPy spec makes many small batched matrix products; on a 2-core machine OpenBLAS's
threads mostly contend over them, so tests (and the doctests in spec/ and ref/) use one
BLAS thread unless the environment says otherwise.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
