"""Read StyleGAN checkpoint files without running any code they contain.

A pickle is a small program: each global it names is imported and may be called. NVlabs snapshots
(stylegan2-ada-pytorch, stylegan3: ``network-snapshot-*.pkl``) even carry the networks' *source code* and execute it
on load (``torch_utils.persistence``); rosinality checkpoints are ``torch.save`` files that need
``weights_only=False`` because they hold an ``argparse.Namespace``. A file from the internet could name ``os.system``
just as well, so this reader lets a pickle name only an allow-list of harmless globals and maps the rest:

* NVlabs' persistent objects (``torch_utils.persistence._reconstruct_persistent_obj``) become ``PersistentRecord``:
  the class name, the constructor's arguments and the module state (``_parameters``, ``_buffers``, ``_modules``) —
  the source code beside them is never compiled.
* Tensors are rebuilt by torch's own functions; a storage pickled as bytes is read by ``torch.load(...,
  weights_only=True)`` (torch's safe unpickler). numpy arrays and scalars, ``OrderedDict``, ``EasyDict`` and
  ``argparse.Namespace`` become plain data.
* Anything else is refused by name with ``GaninvError`` before it is imported, let alone called.

``read_checkpoint(path)`` returns the file's top-level object as plain data (dicts, lists, tensors, records).
"""
from __future__ import annotations

import copyreg
import io
import pickle
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinv.core.errors import GaninvError

PERSISTENCE_MODULES = ("torch_utils.persistence", "dnnlib.tflib.network")


class PersistentRecord:
    """What an NVlabs persistent object holds, as data: ``class_name``, ``init_args``, ``init_kwargs`` and the
    module ``state`` (its ``__dict__``: ``_parameters``, ``_buffers``, ``_modules`` and plain attributes)."""

    def __init__(self, class_name: str, state: dict[str, Any]):
        self.class_name = class_name
        self.state = state

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The module's state dict as ``nn.Module.state_dict`` would list it: parameters, persistent buffers, then
        each submodule's under ``name.``."""
        out: dict[str, torch.Tensor] = {}
        skip = set(self.state.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None and name not in skip:
                    out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else value
        for name, child in self.modules.items():
            if isinstance(child, (PersistentRecord, PlainObject)):  # a plain torch module may sit among NVlabs' own
                out.update(child.tensors(f"{prefix}{name}."))
        return out

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name!r})"


class PlainObject:
    """An allowed non-persistent object (``argparse.Namespace``, a torch module class that NVlabs code nested):
    its attributes, nothing else."""

    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:  # a torch module among persistent ones
        return PersistentRecord("", self.__dict__).tensors(prefix)


class EasyDictData(dict):
    """``dnnlib.EasyDict`` as a plain dict (attribute access is the only thing the original adds)."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


def _reconstruct_persistent(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
        raise GaninvError("this file holds an NVlabs persistent object of an unknown layout (not type 'class')")
    return PersistentRecord(str(meta.get("class_name", "?")), dict(meta.get("state") or {}))


def _tensor_from_bytes(data: bytes):
    """A storage pickled as the bytes of a ``torch.save`` file: read by torch's own safe (weights-only) reader."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's safe reader refuses anything but tensors and storages
        raise GaninvError(f"a tensor in this file could not be read safely ({type(exc).__name__}: {exc})") from None


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data.detach() if isinstance(data, torch.Tensor) else data


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for the allowed classes only (protocol 0/1 pickles of plain objects)."""
    if cls not in (PlainObject, EasyDictData, OrderedDict):
        raise GaninvError(f"refusing to rebuild {cls!r}")
    obj = cls.__new__(cls)
    if state is not None and isinstance(obj, dict):
        obj.update(state)
    return obj


def _numpy_global(name: str):
    """numpy's array and scalar rebuilders under their old (numpy.core) and new (numpy._core) module names."""
    if name == "_reconstruct":
        return np.ndarray.__reduce__(np.zeros(0))[0]
    if name == "scalar":
        return np.float64(0).__reduce__()[0]
    return {"ndarray": np.ndarray, "dtype": np.dtype}.get(name)


def _torch_global(module: str, name: str):
    if (module, name) == ("torch.storage", "_load_from_bytes"):
        return _tensor_from_bytes
    if (module, name) in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state")):
        return _rebuild_parameter
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_tensor_v3"):
        return getattr(torch._utils, name)
    if module == "torch" and (name == "Size" or isinstance(getattr(torch, name, None), torch.dtype)):
        return getattr(torch, name)
    if (module, name) == ("torch", "device"):
        return torch.device
    if module == "torch" and name.endswith("Storage") and hasattr(torch, name):  # legacy typed storages by name
        return getattr(torch, name)
    if module.startswith("torch.nn.modules.") or module == "torch.nn.parameter":
        return PlainObject if name != "Parameter" else _rebuild_parameter
    return None


SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "range": range, "complex": complex,
                 "bytearray": bytearray, "object": object, "tuple": tuple, "list": list, "dict": dict}


def allowed_global(module: str, name: str):
    """The object a pickle may use for ``module.name``, or None (refused)."""
    if module in PERSISTENCE_MODULES:
        if module == "dnnlib.tflib.network":
            raise GaninvError("this is a TensorFlow StyleGAN pickle (dnnlib.tflib); convert it to PyTorch first with "
                              "NVlabs stylegan2-ada-pytorch's legacy.py, then import the converted .pkl")
        return _reconstruct_persistent if name == "_reconstruct_persistent_obj" else None
    if (module, name) in (("dnnlib", "EasyDict"), ("dnnlib.util", "EasyDict")):
        return EasyDictData
    if (module, name) == ("argparse", "Namespace"):
        return PlainObject
    if (module, name) == ("collections", "OrderedDict"):
        return OrderedDict
    if module in ("copyreg", "copy_reg"):
        return {"_reconstructor": _reconstructor, "__newobj__": copyreg.__newobj__}.get(name)
    if module in ("builtins", "__builtin__"):
        return SAFE_BUILTINS.get(name)
    if module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy"):
        return _numpy_global(name)
    if module.startswith("torch"):
        return _torch_global(module, name)
    return None


class SafeUnpickler(pickle.Unpickler):
    """A pickle reader that imports nothing: every global goes through ``allowed_global``."""

    def find_class(self, module: str, name: str):
        found = allowed_global(module, name)
        if found is None:
            raise GaninvError(f"refusing to load this file: it names {module}.{name}, which is not weights or plain "
                              "data (a checkpoint that runs code on load is not read by ganinv)")
        return found


# torch.load(pickle_module=...) uses the module's Unpickler (zip files) and load (legacy files)
SAFE_PICKLE_MODULE = types.SimpleNamespace(__name__="ganinv_safe_pickle", Unpickler=SafeUnpickler,
                                           load=lambda f, **kw: SafeUnpickler(f, **kw).load())


def read_checkpoint(path: str | Path) -> Any:
    """The top-level object of a StyleGAN file — an NVlabs pickle or a ``torch.save`` file — as plain data, with
    ``GaninvError`` for a missing, truncated, foreign or code-running file."""
    path = Path(path)
    if not path.is_file():
        raise GaninvError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        if zipfile.is_zipfile(path) or _is_legacy_torch_file(path):
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=SAFE_PICKLE_MODULE)
        with path.open("rb") as f:
            return SafeUnpickler(f).load()
    except GaninvError as exc:
        raise GaninvError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, IndexError, KeyError,
            TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise GaninvError(f"{path} is not a readable StyleGAN checkpoint (truncated, or not a .pkl/.pt file: "
                          f"{type(exc).__name__}: {str(exc)[:120]})") from None


LEGACY_TORCH_HEADER = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _is_legacy_torch_file(path: Path) -> bool:
    """A pre-1.6 ``torch.save`` file starts with its magic number pickled with protocol 2."""
    with path.open("rb") as f:
        return f.read(len(LEGACY_TORCH_HEADER)) == LEGACY_TORCH_HEADER
