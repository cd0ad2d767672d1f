"""torch_impl: InTI in PyTorch, mirroring ref/ name for name and tested against it."""

from .convert import from_ref_params, to_ref_params
from .interpolation import contributions
from .model import InTIModel
from .pretrained import export_state_dict, from_checkpoint, from_clip, from_timm, load_checkpoint

__all__ = [
    "InTIModel", "from_ref_params", "to_ref_params", "contributions",
    "from_timm", "from_clip", "from_checkpoint", "export_state_dict", "load_checkpoint",
]
