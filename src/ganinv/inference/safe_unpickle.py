"""Read StyleGAN checkpoint files without running any code they contain, in bounded time and memory.

A pickle is a small program: each global it names is imported and may be called. NVlabs snapshots
(stylegan2-ada-pytorch, stylegan3: ``network-snapshot-*.pkl``) even carry the networks' *source code* and execute it
on load (``torch_utils.persistence``); rosinality checkpoints are ``torch.save`` files holding an
``argparse.Namespace``. A file from the internet could name ``os.system`` just as well, be a TorchScript archive
whose code ``torch.load`` would run, or declare sizes that exhaust memory. So ``torch.load`` is never called on it:

* the container is recognised first (``torch_files.sniff``): a torch zip (TorchScript refused), a legacy torch
  stream, a plain pickle; a tar, an image or an empty file is refused by name;
* every pickle is dry-run by ``pickle_scan.scan_pickle`` (declared lengths, opcode count, memo, key kinds, total
  work) before ``SafeUnpickler`` reads it;
* ``SafeUnpickler`` lets a pickle name only an allow-list of globals, each mapped to a function that checks its
  arguments: NVlabs' persistent objects become ``PersistentRecord`` (class name, constructor arguments and module
  state — the source code beside them is never compiled); tensors are rebuilt over the file's own bytes by
  ``torch_files.rebuild_tensor`` (every element inside its storage); numpy arrays and scalars, ``OrderedDict``,
  ``EasyDict`` and ``argparse.Namespace`` become plain data; anything else is refused by name before it is
  imported, let alone called;
* the result is walked once (``check_graph``): no cycles, at most ``MAX_DEPTH`` levels and ``MAX_EXPANDED``
  objects counted along every path, so whatever later walks it (``PersistentRecord.tensors``, messages) is bounded.

``read_checkpoint(path)`` returns the file's top-level object as plain data (dicts, lists, tensors, records), or
raises ``GaninvError`` with one line naming the file.
"""
from __future__ import annotations

from collections import OrderedDict
import mmap
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinv.core.errors import GaninvError
from ganinv.inference.pickle_scan import scan_pickle
from ganinv.inference.torch_files import (
    Source,
    read_legacy_stream,
    read_storage_bytes,
    read_torch_zip,
    rebuild_tensor,
    sniff,
    storage_kind,
)

PERSISTENCE_MODULES = ("torch_utils.persistence", "dnnlib.tflib.network")
MAX_DEPTH = 100  # containers nested in a 1024-px NVlabs snapshot: about 15
MAX_EXPANDED = 5_000_000  # objects counted along every path (a shared object once per reference)
MAX_NAME = 256


class PersistentRecord:
    """What an NVlabs persistent object holds, as data: ``class_name``, ``init_args``, ``init_kwargs`` and the
    module ``state`` (its ``__dict__``: ``_parameters``, ``_buffers``, ``_modules`` and plain attributes)."""

    def __init__(self, class_name: str, state: dict[str, Any]):
        self.class_name = class_name
        self.state = state

    def __setstate__(self, state):  # NVlabs never updates a reconstructed object; a file that tries is forged
        raise GaninvError("this file rewrites an NVlabs persistent object after building it (a forged snapshot)")

    def _part(self, key: str, kind: type, default):
        value = self.state.get(key)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise GaninvError(f"{self.class_name}.{key} is a {type(value).__name__}, not a {kind.__name__}")
        return value

    @property
    def init_args(self) -> tuple:
        return tuple(self._part("_init_args", (tuple, list), ()))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self._part("_init_kwargs", dict, {}))

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self._part("_modules", dict, {}))

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The module's state dict as ``nn.Module.state_dict`` would list it: parameters, persistent buffers, then
        each submodule's under ``name.``."""
        out: dict[str, torch.Tensor] = {}
        skip = self._part("_non_persistent_buffers_set", (set, frozenset, list, tuple), ())
        for group in ("_parameters", "_buffers"):
            for name, value in self._part(group, dict, {}).items():
                if value is None or name in skip:
                    continue
                if not isinstance(value, torch.Tensor) or not isinstance(name, str):
                    raise GaninvError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
                out[prefix + name] = value.detach()
        for name, child in self.modules.items():
            if isinstance(child, (PersistentRecord, PlainObject)):  # a plain torch module may sit among NVlabs' own
                out.update(child.tensors(f"{prefix}{name}."))
        return out

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name!r})"


class PlainObject:
    """An allowed non-persistent object (``argparse.Namespace``, a torch module class that NVlabs code nested):
    its attributes in ``attrs``, nothing else (so no attribute of the file's can shadow a method)."""

    def __new__(cls, *args, **kwargs):  # the unpickler's NEWOBJ calls __new__ alone
        obj = super().__new__(cls)
        obj.attrs = {}
        return obj

    def __init__(self, *args, **kwargs):
        self.attrs: dict[str, Any] = dict(kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            parts = [part for part in state if part is not None]
        else:
            parts = [state]
        for part in parts:
            if not isinstance(part, dict):
                raise GaninvError(f"an object in this file has a {type(part).__name__} as its attributes")
            self.attrs.update(part)

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:  # a torch module among persistent ones
        return PersistentRecord("", self.attrs).tensors(prefix)


class EasyDictData(dict):
    """``dnnlib.EasyDict`` as a plain dict (attribute access is the only thing the original adds)."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


# --- the allow-list: each global a function that checks its arguments -------------------------------------------

def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise GaninvError("this file holds an NVlabs persistent object of an unknown layout (not type 'class')")
    name = meta.get("class_name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise GaninvError("this file holds an NVlabs persistent object whose class name is not a short string")
    return PersistentRecord(name, meta["state"])  # kept, not copied: a file may share one state a million times


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise GaninvError(f"a parameter in this file is a {type(data).__name__}, not a tensor")
    return data.detach()


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return rebuild_tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, torch.dtype):
        raise GaninvError("a tensor in this file has no valid dtype")
    return rebuild_tensor(storage, offset, size, stride, dtype)


def _rebuild_tensor(storage, offset, size, stride):
    return rebuild_tensor(storage, offset, size, stride)


def _storage_from_bytes(data):
    return read_storage_bytes(data, _unpickle_nested)


def _hashable_items(items: Any, what: str) -> list:
    """Elements for a set or dict keys: names and numbers only (their hashing is cheap and not steerable)."""
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise GaninvError(f"this file builds a {what} from a {type(items).__name__}")
    for item in items:
        if not (item is None or isinstance(item, (str, bytes, bool)) or (type(item) is int and abs(item) < 2**62)):
            raise GaninvError(f"this file puts a {type(item).__name__} in a {what}")
    return list(items)


def _pairs(items: Any, what: str) -> list:
    if isinstance(items, dict):
        return list(items.items())
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in items):
        raise GaninvError(f"this file builds a {what} from something other than (key, value) pairs")
    _hashable_items([key for key, _ in items], what)
    return [tuple(pair) for pair in items]


def _sequence(items: Any = ()) -> list:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise GaninvError(f"this file builds a sequence from a {type(items).__name__}")
    return list(items)


def _bytearray(data: Any = b"", encoding: Any = None):
    if isinstance(data, str) and encoding == "latin-1":  # how protocol 2 pickles a bytearray
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)):
        raise GaninvError(f"this file builds a bytearray from a {type(data).__name__}")
    return bytearray(data)


def _ordered_dict(items: Any = ()) -> OrderedDict:
    return OrderedDict(_pairs(items, "dict"))


SAFE_BUILTINS = {
    "set": lambda items=(): set(_hashable_items(items, "set")),
    "frozenset": lambda items=(): frozenset(_hashable_items(items, "set")),
    "list": lambda items=(): _sequence(items), "tuple": lambda items=(): tuple(_sequence(items)),
    "dict": lambda items=(): dict(_pairs(items, "dict")), "bytearray": _bytearray,
    "slice": slice, "complex": complex, "object": object,
}


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for the allowed classes only (protocol 0/1 pickles of plain objects)."""
    made = {PlainObject: PlainObject, EasyDictData: EasyDictData, _ordered_dict: OrderedDict}.get(cls)
    if made is None:
        raise GaninvError("this file rebuilds an object of a class ganinv does not read")
    obj = made.__new__(made)
    if state is not None:
        if not isinstance(state, dict):
            raise GaninvError("this file rebuilds an object from a state that is not a dict")
        if isinstance(obj, PlainObject):
            obj.__setstate__(state)
        else:
            obj.update(state)
    return obj


def _newobj(cls, *args):
    if cls not in (PlainObject, EasyDictData):
        raise GaninvError("this file builds an object of a class ganinv does not read")
    return cls()


class _NumpyArrayType:
    """What ``numpy.ndarray`` names in a file: only an argument of ``_reconstruct`` (never called, never a class)."""


NUMPY_ARRAY = _NumpyArrayType()


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not NUMPY_ARRAY or tuple(shape) != (0,) or not isinstance(dtype_code, (bytes, str)):
        raise GaninvError("this file builds a numpy array in a way numpy never pickles one")
    return np.ndarray.__reduce__(np.zeros(0))[0](np.ndarray, (0,), dtype_code[:4])  # empty; BUILD fills it


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise GaninvError("this file holds a numpy scalar that is not a plain number")
    return NUMPY_SCALAR(dtype, data)


def _numpy_dtype(spec, align=False, copy=False):
    if not isinstance(spec, str) or len(spec) > 16:
        raise GaninvError("this file holds a numpy dtype that is not a plain one")
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _numpy_frombuffer(data, dtype, shape, order="C"):
    """How protocol 5 pickles a numpy array: its bytes, dtype and shape — which must agree."""
    if (not isinstance(data, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject
            or not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape)
            or np.prod(shape, dtype=object) * dtype.itemsize != len(data) or order not in ("C", "F")):
        raise GaninvError("this file holds a numpy array whose bytes do not match its shape")
    return np.frombuffer(bytearray(data), dtype).reshape(shape, order=order)


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    """How protocols 0-2 pickle Python 3 bytes: ``_codecs.encode(text, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise GaninvError("this file encodes bytes in a way pickle never does")
    return text.encode("latin-1")


NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # numpy's own scalar rebuilder, whatever its module is called
NUMPY_GLOBALS = {"_reconstruct": _numpy_reconstruct, "scalar": _numpy_scalar, "ndarray": NUMPY_ARRAY,
                 "dtype": _numpy_dtype, "_frombuffer": _numpy_frombuffer}
TORCH_GLOBALS = {
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch", "Size"): lambda dims=(): torch.Size([int(d) for d in _sequence(dims)]),
    ("torch", "device"): lambda kind, index=None: _device(kind, index),
}


def _device(kind: Any, index: Any = None) -> torch.device:
    if not isinstance(kind, str) or len(kind) > 32 or not (index is None or type(index) is int):
        raise GaninvError("this file names a device that is not a short string")
    return torch.device(kind) if index is None else torch.device(kind, index)


def _torch_global(module: str, name: str, nested: bool):
    if (module, name) == ("torch.storage", "_load_from_bytes") and nested:
        return None  # a storage's bytes hold one storage, never another pickled file
    if (module, name) in TORCH_GLOBALS:
        return TORCH_GLOBALS[module, name]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module in ("torch", "torch.storage") and name.endswith("Storage"):  # legacy typed storages by name: a dtype
        return storage_kind(name)
    if module.startswith("torch.nn.modules."):
        return PlainObject
    return None


def allowed_global(module: str, name: str, nested: bool = False):
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
        return _ordered_dict
    if module in ("copyreg", "copy_reg"):
        return {"_reconstructor": _reconstructor, "__newobj__": _newobj}.get(name)
    if module in ("builtins", "__builtin__"):
        return SAFE_BUILTINS.get(name)
    if (module, name) == ("_codecs", "encode"):
        return _codecs_encode
    if module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy", "numpy.core.numeric",
                  "numpy._core.numeric"):
        return NUMPY_GLOBALS.get(name)
    if module.startswith("torch"):
        return _torch_global(module, name, nested)
    return None


class SafeUnpickler(pickle.Unpickler):
    """A pickle reader that imports nothing: every global goes through ``allowed_global``; persistent ids go to
    the container's storage reader (torch files) or are refused (plain pickles)."""

    def __init__(self, f, persistent=None, *, nested: bool = False):
        super().__init__(f)
        self._persistent, self._nested = persistent, nested

    def find_class(self, module: str, name: str):
        found = allowed_global(module, name, self._nested)
        if found is None:
            raise GaninvError(f"refusing to load this file: it names {module[:80]}.{name[:80]}, which is not weights "
                              "or plain data (a checkpoint that runs code on load is not read by ganinv)")
        return found

    def persistent_load(self, pid):
        if self._persistent is None:
            raise GaninvError("not a readable StyleGAN checkpoint: it holds a persistent id outside a torch file")
        return self._persistent(pid)


def _unpickle(source: Source, end: int, persistent=None, *, nested: bool = False) -> Any:
    """Dry-run, then read, the pickle at the source's position; its stream is left just after it."""
    try:
        stop = scan_pickle(source.buffer, source.stream.tell(), end, persistent_ids=persistent is not None)
    except GaninvError as exc:
        raise GaninvError(f"not a readable StyleGAN checkpoint: {exc}") from None
    obj = SafeUnpickler(source.stream, persistent, nested=nested).load()
    source.stream.seek(stop)
    return obj


def _unpickle_nested(source: Source, end: int, persistent=None) -> Any:
    return _unpickle(source, end, persistent, nested=True)


# --- the result, walked once ----------------------------------------------------------------------------------------

def _children(obj: Any) -> list | None:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, PersistentRecord):
        return [obj.state]
    if isinstance(obj, PlainObject):
        return [obj.attrs]
    if isinstance(obj, np.ndarray) and (obj.dtype.hasobject or obj.size > 2**31):  # size: of zero-byte elements
        raise GaninvError("this file holds a numpy array of Python objects or of billions of empty elements")
    return None  # a leaf: str, bytes, numbers, tensors, numeric arrays, dtypes, devices


def check_graph(root: Any) -> None:
    """Refuse a result that loops, nests deeper than ``MAX_DEPTH`` or expands (shared objects counted once per
    reference) to more than ``MAX_EXPANDED`` objects — iteratively, each object visited once."""
    done: dict[int, int] = {}  # id → expanded size
    on_path: set[int] = set()
    stack: list[tuple[Any, list | None]] = [(root, None)]
    while stack:
        obj, children = stack.pop()
        if children is not None:  # leaving obj: all its children are done
            on_path.discard(id(obj))
            done[id(obj)] = min(1 + sum(done.get(id(c), 1) for c in children), MAX_EXPANDED + 1)
            if done[id(obj)] > MAX_EXPANDED:
                raise GaninvError(f"not a readable StyleGAN checkpoint: its objects expand to more than "
                                  f"{MAX_EXPANDED:,} (shared over and over: a decompression bomb)")
            continue
        if id(obj) in done:
            continue
        if id(obj) in on_path:
            raise GaninvError("not a readable StyleGAN checkpoint: its objects contain themselves (a loop)")
        kids = _children(obj)
        if kids is None:
            continue
        on_path.add(id(obj))
        if len(on_path) > MAX_DEPTH:
            raise GaninvError(f"not a readable StyleGAN checkpoint: its objects nest more than {MAX_DEPTH} deep")
        stack.append((obj, kids))
        stack.extend((child, None) for child in kids if id(child) not in done)


def read_checkpoint(path: str | Path) -> Any:
    """The top-level object of a StyleGAN file — an NVlabs pickle or a ``torch.save`` file — as plain data, with
    one-line ``GaninvError`` naming the file for a missing, truncated, foreign, oversized or code-running file."""
    path = Path(path)
    if not path.is_file():
        raise GaninvError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        obj = _read(path)
        check_graph(obj)
        return obj
    except GaninvError as exc:
        raise GaninvError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 — a hostile file must end in one line, whatever broke
        detail = " ".join(str(exc).split())[:160]
        raise GaninvError(f"{path}: not a readable StyleGAN checkpoint (truncated, or not a .pkl/.pt file: "
                          f"{type(exc).__name__}: {detail})") from None


def _read(path: Path) -> Any:
    with path.open("rb") as f:
        kind = sniff(f.read(512))
        f.seek(0)
        if kind == "zip":
            return read_torch_zip(path, _unpickle)
        if kind == "tar":
            raise GaninvError("a tar archive — torch's oldest (pre-0.4) checkpoint format, whose members ganinv "
                              "does not extract; re-save it with a current torch")
        if kind not in ("legacy", "pickle"):
            raise GaninvError(kind)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # the scan indexes it; nothing is copied
            source = Source(mapped, f)
            if kind == "legacy":
                return read_legacy_stream(source, len(mapped), _unpickle)
            return _unpickle(source, len(mapped))
