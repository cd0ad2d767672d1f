"""Speed benchmarks: repository scripts, run from the repository root (`make bench`), not installed.

Importing this package first sets OMP_WAIT_POLICY=PASSIVE, before torch (and its OpenMP
runtime) loads: idle OpenMP threads then sleep instead of spinning, so that the NumPy
contender's BLAS threads and torch's do not steal each other's cores. When torch is loaded
already (imported by a caller), setting it would be too late for this process and would only
leak into child processes, so it is then left alone.
"""

import os
import sys

# Whether the OpenMP setting can have reached torch: set by the user, or set here before torch.
OMP_WAIT_POLICY_BEFORE_TORCH = "OMP_WAIT_POLICY" in os.environ or "torch" not in sys.modules
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
