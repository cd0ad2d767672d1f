"""Optional dependencies: each one belongs to an extra of the package, and a missing one says
which extra brings it.

The core (`ref`, parameter files in .npz) needs NumPy, SciPy and einops only. Everything else
is an extra of ``pyproject.toml``; `EXTRAS` maps each import name to it, and `require` imports
a module or raises an ImportError that names the package and the extra to install:

    >>> from inti.io.optional import require, missing_message
    >>> require("json").__name__
    'json'
    >>> missing_message("torch", "the PyTorch model")
    "the PyTorch model needs torch: pip install 'inti[torch]'"
"""

from __future__ import annotations

import importlib

# import name -> (the extra that brings it, the package name pip knows)
EXTRAS = {
    "torch": ("torch", "torch"),
    "matplotlib": ("plot", "matplotlib"),
    "av": ("video", "av"),
    "skvideo": ("video", "scikit-video"),
    "tqdm": ("cli", "tqdm"),
    "tabulate": ("cli", "tabulate"),
    "threadpoolctl": ("cli", "threadpoolctl"),
    "safetensors": ("interop", "safetensors"),
    "timm": ("interop", "timm"),
    "open_clip": ("interop", "open_clip_torch"),
    "onnx": ("export", "onnx"),
    "onnxruntime": ("export", "onnxruntime"),
    "onnxscript": ("export", "onnxscript"),
    "sklearn": ("experiments", "scikit-learn"),
    "skimage": ("experiments", "scikit-image"),
}


def missing_message(name: str, purpose: str | None = None) -> str:
    """"<purpose> needs <package>: pip install 'inti[<extra>]'", for an import name of EXTRAS."""
    top = name.split(".")[0]
    extra, package = EXTRAS.get(top, (None, top))
    install = f"pip install 'inti[{extra}]'" if extra else f"pip install {package}"
    return f"{purpose or 'this'} needs {package}: {install}"


def require(name: str, purpose: str | None = None):
    """Import `name` (a module of an extra, or a submodule of one), or raise ImportError naming
    the extra that brings it. `purpose` starts the message ("reading .safetensors files")."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing = getattr(error, "name", None) or name
        if missing.split(".")[0] != name.split(".")[0]:  # the module is there, but something it needs is not
            raise
        raise ImportError(missing_message(name, purpose), name=missing) from None


def extra_of(error: BaseException, purpose: str = "this command") -> str | None:
    """The message for a ModuleNotFoundError of an optional dependency (its `.name` in EXTRAS),
    or None for any other error."""
    name = getattr(error, "name", None)
    if isinstance(error, ModuleNotFoundError) and name and name.split(".")[0] in EXTRAS:
        return missing_message(name, purpose)
    return None
