"""TorchScript archives, read without TorchScript [ours]: the tensors of OpenAI's CLIP
downloads (``ViT-B-16.pt``), with nothing in the file run.

``torch.jit.load`` would run the archive's code (its ``code/`` and any ``__setstate__`` its
modules define), and ``torch.load(weights_only=True)`` does not cover TorchScript. Instead the
zip is opened with `zipfile` and its ``data.pkl`` unpickled by a restricted unpickler: tensors
are rebuilt from the ``data/<key>`` records, the scripted modules (``__torch__.*`` classes)
become inert placeholders that only record their attributes, and every other global the
pickle asks for is refused. The state dict is then the placeholders' tensors, under
``module.state_dict()``'s keys: which attributes are parameters and buffers is read from the
``__parameters__``/``__buffers__`` lists in the module's class in ``code/``, parsed with `ast`
and never executed.

Every size comes from the archive's own records and is checked against them before a tensor
is built: a storage record must hold exactly the bytes its tensor needs, and ``set_`` checks
that a view fits its storage. A refused pickle is an `UnsafeFileError`; a damaged archive a
`CorruptFileError` (both ValueErrors naming the file, `inti.io.errors`).
"""

from __future__ import annotations

import ast
import collections
import io
import math
import os
import pickle
import sys
import zipfile
from collections.abc import Mapping

import torch

from .errors import UnsafeFileError, WeightsError, corrupt, reading

NEVER_RUNS = "inti never runs code from a file"


def is_torchscript(path) -> bool:
    """Whether a file is a TorchScript archive (OpenAI's CLIP downloads): a zip with constants.pkl."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexDoubleStorage": torch.complex128, "ComplexFloatStorage": torch.complex64,
}
_DTYPES = {str(d).removeprefix("torch."): d for d in vars(torch).values() if isinstance(d, torch.dtype)}
_MAX_DEPTH = 200  # modules nested deeper than this are a crafted file, not a model


class _Inert:
    """Base of every object the restricted unpickler builds: plain records, which a BUILD cannot alter."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"BUILD on {type(self).__name__}")


class _Allowed(_Inert):
    """An allowlisted global: a callable of ours, standing for the torch function the pickle names."""

    __slots__ = ("fn", "name")

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def __call__(self, *args):
        return self.fn(*args)


class _StorageType(_Inert):
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


class _Storage(_Inert):
    """A ``data/<key>`` record: its bytes as a flat uint8 tensor, and the dtype the pickle gave it."""

    __slots__ = ("dtype", "flat", "key")

    def __init__(self, key, dtype, flat):
        self.key, self.dtype, self.flat = key, dtype, flat


class _TensorRecord(_Inert):
    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


class _ScriptObject(_Inert):
    """An inert stand-in for a scripted module or class (``__torch__.<qualname>``): it records
    the state the pickle gives it and runs nothing. Subclassed once per qualname."""

    __slots__ = ("built", "state")
    qualname = "__torch__"

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.state, obj.built = None, False
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if self.built:
            raise pickle.UnpicklingError(f"second BUILD on {self.qualname}")
        self.state, self.built = state, True


def _ints(value, what: str) -> tuple:
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise pickle.UnpicklingError(f"{what} is not a tuple of non-negative ints")
    return tuple(value)


def _tensor(storage, offset, size, stride, dtype) -> _TensorRecord:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage record")
    if type(offset) is not int or offset < 0:
        raise pickle.UnpicklingError("a tensor's storage offset is not a non-negative int")
    size, stride = _ints(size, "a tensor's size"), _ints(stride, "a tensor's stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor's size and stride differ in length")
    if dtype is not storage.dtype and storage.dtype is not torch.uint8:
        raise pickle.UnpicklingError(f"a {dtype} tensor on a {storage.dtype} storage")
    if storage.flat.numel() % dtype.itemsize:
        raise pickle.UnpicklingError(f"storage {storage.key!r} does not hold whole {dtype} elements")
    if not storage.flat.numel():
        if math.prod(size):
            raise pickle.UnpicklingError(f"a tensor of size {size} on the empty storage {storage.key!r}")
        return _TensorRecord(torch.empty(size, dtype=dtype))
    tensor = torch.empty((0,), dtype=dtype)
    tensor.set_(storage.flat.untyped_storage(), offset, size, stride)  # set_ checks that it fits the storage
    return _TensorRecord(tensor)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _tensor(storage, offset, size, stride, getattr(storage, "dtype", None))


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError("_rebuild_tensor_v3 without a dtype")
    return _tensor(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _TensorRecord):
        raise pickle.UnpicklingError("a parameter that is not a tensor")
    return data


def _ordered_dict(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (dict, list, tuple))):
        raise pickle.UnpicklingError("OrderedDict from something other than pairs")
    return collections.OrderedDict(*args)


def _same(value, *_):
    return value


def _tensor_from_id(data):
    return data if type(data) is int else None


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    # torch.jit._pickle's helpers: type tags on lists, which the values do not need
    ("torch.jit._pickle", "build_intlist"): _same,
    ("torch.jit._pickle", "build_doublelist"): _same,
    ("torch.jit._pickle", "build_boollist"): _same,
    ("torch.jit._pickle", "build_tensorlist"): _same,
    ("torch.jit._pickle", "restore_type_tag"): _same,
    ("torch.jit._pickle", "build_tensor_from_id"): _tensor_from_id,
}


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript archive's data.pkl into inert records: `find_class` hands out
    only our stand-ins for the globals that rebuild tensors, placeholders for ``__torch__.*``
    classes, and refuses everything else."""

    def __init__(self, file, path: str, read_record, byteswap: bool):
        super().__init__(file)
        self._path, self._read_record, self._byteswap = path, read_record, byteswap
        self._classes: dict[str, type] = {}
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self._classes:
                self._classes[qualname] = type("ScriptObject", (_ScriptObject,),
                                               {"__slots__": (), "qualname": qualname})
            return self._classes[qualname]
        if (module, name) in _ALLOWED:
            return _Allowed(f"{module}.{name}", _ALLOWED[module, name])
        if module in ("torch", "torch.storage") and name in ("UntypedStorage", "ByteStorage"):
            return _StorageType(torch.uint8)
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        raise UnsafeFileError(
            f"refusing to load {self._path!r}: its pickle asks for {module}.{name}, which is neither a tensor "
            f"nor a TorchScript module's state; {NEVER_RUNS}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise pickle.UnpicklingError("a malformed storage record")
        if type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError(f"storage {key!r} has a bad element count")
        dtype = storage_type.dtype
        if key in self._storages:
            storage = self._storages[key]
            if storage.dtype is not dtype or storage.flat.numel() != numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key!r} is used with two types")
            return storage
        data = self._read_record(key, numel * dtype.itemsize)
        flat = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty((0,), dtype=torch.uint8)
        unit = dtype.itemsize // 2 if dtype.is_complex else dtype.itemsize  # a complex number: two reals
        if self._byteswap and unit > 1 and data:
            flat = flat.view(-1, unit).flip(-1).reshape(-1)  # the archive's byte order to ours
        storage = self._storages[key] = _Storage(key, dtype, flat)
        return storage


def read_torchscript(path) -> dict[str, torch.Tensor]:
    """A TorchScript archive's state dict, read without TorchScript [ours]: the keys and tensors
    of ``torch.jit.load(path).state_dict()``, with nothing in the file run.

    Raises `UnsafeFileError` (a ValueError) for a pickle that asks for anything but tensors
    and scripted modules, and for a module that keeps its state through its own
    ``__setstate__`` (only running it could unpack that state); `CorruptFileError` for a
    damaged archive."""
    return reading(os.fspath(path), _read_torchscript)


def _read_torchscript(path: str) -> dict:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise corrupt(path, "a TorchScript archive with " + (
                "no <name>/data.pkl" if not pickles else f"{len(pickles)} data.pkl records"))
        prefix = pickles[0][: -len("/data.pkl")]
        byteorder = "little"
        if f"{prefix}/byteorder" in names:
            byteorder = archive.read(f"{prefix}/byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise corrupt(path, f"unknown byte order {byteorder[:20]!r}")

        def read_record(key: str, nbytes: int) -> bytearray:
            name = f"{prefix}/data/{key}"
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise corrupt(path, f"its pickle names the storage record {name!r}, which is missing") from None
            if info.file_size != nbytes:
                raise corrupt(path, f"{name} holds {info.file_size} bytes, its tensor needs {nbytes}")
            return bytearray(archive.read(info))

        data = archive.read(pickles[0])  # whole, so that zipfile checks its CRC (a pickle stops at STOP)
        unpickler = _TorchScriptUnpickler(io.BytesIO(data), path, read_record, byteorder != sys.byteorder)
        try:
            root = unpickler.load()
        except WeightsError:
            raise
        except RecursionError:
            raise corrupt(path, "its data.pkl nests too deep") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError, OverflowError, UnicodeDecodeError, RuntimeError) as error:
            # RuntimeError: torch's set_ on a tensor that does not fit its storage
            raise corrupt(path, error) from None
        declarations = _Declarations(archive, prefix)
        if isinstance(root, _ScriptObject):
            out: dict[str, torch.Tensor] = {}
            _module_state(root, "", out, declarations, path, ())
            return out
        if isinstance(root, Mapping):  # a plain state dict saved in a TorchScript-looking zip
            return _plain(root, path)
        raise corrupt(path, f"its data.pkl holds an object of type {type(root).__name__}, not a module")


def _plain(obj, path: str):
    """A pickled container of tensors with the records unwrapped; scripted objects are refused."""
    if isinstance(obj, _TensorRecord):
        return obj.tensor
    if isinstance(obj, Mapping):
        return {k: _plain(v, path) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v, path) for v in obj)
    if isinstance(obj, _ScriptObject):
        raise UnsafeFileError(f"weights file {path!r} holds a {obj.qualname} object inside a state dict")
    return obj


class _Declarations:
    """Which attributes of a scripted class are parameters and buffers, and whether it is a
    module: read from its class statement in ``code/`` with `ast.parse` (never executed)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        self._archive, self._prefix = archive, prefix
        self._files: dict[str, dict | None] = {}

    def __call__(self, qualname: str):
        """(is a module, parameter names, buffer names), or None where code/ does not say."""
        module, _, name = qualname.rpartition(".")
        if module not in self._files:
            self._files[module] = self._parse(f"{self._prefix}/code/{module.replace('.', '/')}.py")
        classes = self._files[module]
        return None if classes is None else classes.get(name)

    def _parse(self, name: str):
        try:
            source = self._archive.read(name).decode("utf-8")
            tree = ast.parse(source, filename=name)
        except (KeyError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
            return None  # no readable declarations: every tensor attribute counts (see _module_state)
        classes = {}
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            lists = {}
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id in ("__parameters__", "__buffers__")):
                    try:
                        value = ast.literal_eval(stmt.value)
                    except (ValueError, TypeError, SyntaxError, RecursionError):
                        continue
                    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                        lists[stmt.targets[0].id] = list(value)
            is_module = any(isinstance(b, ast.Name) and b.id == "Module" for b in node.bases)
            classes[node.name] = (is_module, lists.get("__parameters__", []), lists.get("__buffers__", []))
        return classes


def _is_module(obj, declarations) -> bool:
    if not isinstance(obj, _ScriptObject):
        return False
    declared = declarations(obj.qualname)
    if declared is not None:
        return declared[0]
    return isinstance(obj.state, dict) and isinstance(obj.state.get("training"), bool)


def _module_state(obj: _ScriptObject, prefix: str, out: dict, declarations, path: str, stack: tuple) -> None:
    """`module.state_dict()` of a placeholder: its parameters, then its buffers (in attribute
    order, None left out), then each submodule's under ``<name>.``."""
    if len(stack) > _MAX_DEPTH or any(obj is s for s in stack):
        raise corrupt(path, "its modules contain themselves" if len(stack) <= _MAX_DEPTH else "its modules nest too deep")
    state = obj.state
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        what = "no state" if not obj.built else f"a {type(state).__name__} state"
        raise UnsafeFileError(
            f"refusing to load {path!r}: its module {obj.qualname} ({prefix.rstrip('.') or 'the root'}) has {what}, "
            f"not a dict of attributes; only running its own __setstate__ could unpack that, and {NEVER_RUNS}")
    declared = declarations(obj.qualname)
    if declared is not None:
        names = [k for k in state if k in set(declared[1])] + [k for k in state if k in set(declared[2])]
    else:  # code/ does not say: every tensor attribute is a parameter or buffer
        names = [k for k, v in state.items() if isinstance(v, _TensorRecord)]
    for key in names:
        value = state[key]
        if isinstance(value, _TensorRecord):
            out[prefix + key] = value.tensor
        elif value is not None:
            raise corrupt(path, f"{obj.qualname}'s parameter or buffer {key!r} is a {type(value).__name__}")
    for key, value in state.items():
        if _is_module(value, declarations):
            _module_state(value, f"{prefix}{key}.", out, declarations, path, stack + (obj,))
