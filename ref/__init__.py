"""ref: the executable specification of InTI in NumPy (METHOD.md), read next to spec/."""

from .checkpoints import convert_state_dict
from .checks import check_video
from .config import PRESETS, ModelConfig, preset
from .cost import count_macs, reduction
from .interpolation import contributions
from .model import forward
from .params import backbone, check_params, init_params, param_shapes

__all__ = [
    "ModelConfig", "PRESETS", "preset", "init_params", "backbone", "param_shapes", "check_params",
    "check_video", "convert_state_dict", "forward", "count_macs", "reduction", "contributions",
]
