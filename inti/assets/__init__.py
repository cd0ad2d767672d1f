"""Files shipped with the package.

`trained_checkpoint()`: InTI trained on the evidence experiment's informative-frames task (32 px
frames, patch 8, width 64, depth 4, one merge after block 1; 10 classes), the first seed's
model of `python -m inti.experiments.evidence`. Its SHA-256 is recorded in
experiments/evidence/results.json. `inti demo` draws its learned contribution map.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINED = "inti_informative.safetensors"


def trained_checkpoint() -> Path:
    """The path of the shipped trained InTI checkpoint (read it with inti.io.params.load_params)."""
    path = HERE / TRAINED
    if not path.is_file():
        raise FileNotFoundError(f"the trained checkpoint {path} is missing from this installation of inti; "
                                "reinstall the package, or rebuild it with python -m inti.experiments.evidence")
    return path
