"""Files shipped with the package.

- `trained_weights()`: the path of InTI trained on the evidence experiment's informative-frames
  task (32 px frames, patch 8, width 64, depth 4, one merge after block 1; 10 classes), the
  first seed's model of `python -m inti.experiments.evidence`, as an inti parameter file (read
  it with `inti.io.weights.load` or `inti.io.params.load_params`). Its SHA-256 is recorded in
  experiments/evidence/results.json.
- `sample_clips()`: two test clips of that task, on which `inti demo` draws what the shipped
  model learned (figure 4): clips 0 and 1 of the task's test split,
  ``inti.experiments.evidence.tasks.task_clip("informative", "test", i)``, stored as they are
  generated (uint8 frames), so the demo needs neither the experiment nor its extras.

``trained_checkpoint()`` is the old name of `trained_weights()` (the file is a parameter file,
not a training checkpoint), kept for one release.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TRAINED = "inti_informative.safetensors"
CLIPS = "informative_clips.npz"


def _shipped(name: str, what: str) -> Path:
    path = HERE / name
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} is missing from this installation of inti; reinstall the package, "
                                "or rebuild it with python -m inti.experiments.evidence")
    return path


def trained_weights() -> Path:
    """The path of the shipped trained InTI, an inti parameter file."""
    return _shipped(TRAINED, "the trained weights")


def sample_clips() -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """(frames (n, T, 32, 32, 3) uint8, labels (n,), for each clip the frames that show its digit)."""
    with np.load(_shipped(CLIPS, "the sample clips"), allow_pickle=False) as data:
        frames, labels, shown = data["frames"], data["labels"], data["digit_frames"]
    return frames, labels, [np.flatnonzero(row).tolist() for row in shown]


def to_model_input(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (n, T, H, W, 3) -> the model's input (n, T, 3, H, W), float32 in CLIP's
    statistics (`ref.preprocess.normalize`), as the shipped model was trained on."""
    from ref.preprocess import normalize

    return np.stack([normalize(clip.astype(np.float32) / 255.0) for clip in frames]).astype(np.float32)


def __getattr__(name: str):
    if name == "trained_checkpoint":
        warnings.warn("inti.assets.trained_checkpoint is now trained_weights (the file is a parameter file); the old "
                      "name goes in the next release", DeprecationWarning, stacklevel=2)
        return trained_weights
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
