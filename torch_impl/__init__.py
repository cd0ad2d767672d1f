"""torch_impl: InTI in PyTorch, mirroring ref/ name for name and tested against it."""

from .convert import from_ref_params, to_ref_params
from .interpolation import contributions
from .model import InTIModel

__all__ = ["InTIModel", "from_ref_params", "to_ref_params", "contributions"]
