"""torch_impl: InTI in PyTorch, mirroring ref/ name for name and tested against it.

The names below load on first use, so that `import torch_impl.cli` (and `inti cost`, or
an `inti` command with a bad argument) answers without paying for importing torch.
"""

import importlib

_EXPORTS = {
    "InTIModel": ".model",
    "from_ref_params": ".convert",
    "to_ref_params": ".convert",
    "contributions": ".interpolation",
    "from_timm": ".pretrained",
    "from_clip": ".pretrained",
    "from_checkpoint": ".pretrained",
    "export_state_dict": ".pretrained",
    "load_checkpoint": ".pretrained",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
