"""torch_impl: InTI in PyTorch, mirroring ref/ file for file and name for name, tested against it.

Every file but convert.py has a twin of the same name in ref/. The tools that read and write
files, load pretrained weights, compare traces and draw figures live in the `inti` package.
"""

from .convert import from_ref_params, to_numpy, to_ref_params
from .interpolation import contributions
from .model import InTIModel
from .tome import ToMeModel, tome_from_ref_params

__all__ = [
    "InTIModel", "from_ref_params", "to_ref_params", "to_numpy", "contributions", "ToMeModel", "tome_from_ref_params",
]
