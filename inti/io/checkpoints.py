"""Deprecated: the old home of the reader of other libraries' weights files, kept for one release.

"Checkpoint" now means inti's training checkpoint only (`inti.io.train_checkpoint`). The
reader of timm / OpenAI CLIP / open_clip weights files is `inti.io.state_dict_files`
(``load_checkpoint`` is now `read_state_dict`), the TorchScript reader `inti.io.torchscript`,
and ``CheckpointError`` the base of `inti.io.errors`, `WeightsError`. Every file of any kind
is read by `inti.io.weights.load`.
"""

from __future__ import annotations

import warnings

from .errors import WeightsError as CheckpointError
from .state_dict_files import SUFFIXES
from .state_dict_files import read_state_dict as load_checkpoint
from .torchscript import is_torchscript, read_torchscript

__all__ = ["CheckpointError", "SUFFIXES", "is_torchscript", "load_checkpoint", "read_torchscript"]

warnings.warn("inti.io.checkpoints is now inti.io.state_dict_files (load_checkpoint: read_state_dict), "
              "inti.io.torchscript and inti.io.errors; the old module goes in the next release",
              DeprecationWarning, stacklevel=2)
