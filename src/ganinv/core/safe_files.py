"""Bounded readers for files a user may receive from others: JSON, ``torch.save`` zips, safetensors, ``.npy`` and
``.npz``. Each checks what it can from the file's size and headers *before* anything is allocated or parsed, and
every refusal is one line naming the file (a ``GaninvError``, or the ``error`` class a caller passes).

* JSON: refused unread past a byte limit; nesting too deep for the parser is one line too.
* ``torch_load_tensors``: only a ``torch.save`` zip (torch >= 1.6) whose entries are all stored (torch never
  compresses; a compressed entry is a zip bomb that torch would inflate) and together fit the file (overlapping
  entries would let a small file name the same bytes many times); TorchScript archives (``constants.pkl`` or
  ``code/``, whose code ``torch.jit.load`` would run), tar files (torch < 0.4) and anything else are refused
  unread. Then ``torch.load(weights_only=True)``: tensors and plain values, never code; torch itself checks each
  storage record's size against the size its pickle declares. ``legacy=True`` also accepts the stream format of
  torch < 1.6 (published ImageNet / Inception weights use it), read by the same ``weights_only`` unpickler.
* safetensors: the file and its JSON header bounded; the format itself holds no code and the library checks every
  tensor's offsets against the buffer.
* ``.npy`` / ``.npz``: the header's shape and dtype checked against the bytes actually present (a header may claim
  any shape, and numpy allocates the whole array before reading it), object arrays refused (they are pickles),
  ``.npz`` members stored uncompressed; then ``np.load(allow_pickle=False)``.
"""
from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors.torch import load as load_safetensors

from ganinv.core.errors import GaninvError, describe_os_error

SAFETENSORS_HEADER_MAX = 16 << 20  # ~150,000 tensors' names and offsets; the library's own cap is 100 MB
NPY_HEADER_MAX = 10_000  # numpy's own default for files it did not write with a huge structured dtype
TORCH_PICKLE_MAGIC = b"\x80"  # a legacy torch stream starts with a pickle (protocol 2: 0x80 0x02)


def file_size(path: str | os.PathLike, what: str, error: type[GaninvError] = GaninvError) -> int:
    """The size of a regular file, or one line saying why it cannot be read (missing, a folder, a FIFO...)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"{what}: {describe_os_error(exc)}") from None
    if not Path(path).is_file():
        raise error(f"{what} {path} is not a regular file")
    return stat.st_size


def check_size(path: str | os.PathLike, what: str, limit: int, error: type[GaninvError] = GaninvError) -> int:
    size = file_size(path, what, error)
    if size > limit:
        raise error(f"{what} {path} is {size / 2**20:.1f} MiB, more than the {limit / 2**20:.1f} MiB such a file "
                    "can be; refusing to read it")
    return size


# ------------------------------------------------------------------------------------------------ JSON
def read_json_bounded(path: str | os.PathLike, limit: int, error: type[GaninvError] = GaninvError) -> Any:
    """The JSON value in ``path``, refused unread (one line) when the file is larger than ``limit`` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {describe_os_error(exc)}") from None
    if len(data) > limit:
        raise error(f"{path} is larger than {limit >> 10} KiB: not a file ganinv wrote; refusing to read it")
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise error(f"{path} is truncated or not JSON ({type(exc).__name__})") from None


# ------------------------------------------------------------------------------------------------ torch files
def torch_load_tensors(path: str | os.PathLike, what: str, *, max_bytes: int, legacy: bool = False,
                       error: type[GaninvError] = GaninvError) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")`` of a file checked first (see the module doc):
    a stored-only ``torch.save`` zip that is no TorchScript archive, at most ``max_bytes``; with ``legacy`` also a
    torch < 1.6 stream. ``what`` names the file in every refusal ("ResNet18 weights")."""
    size = check_size(path, what, max_bytes, error)
    with open(path, "rb") as f:
        head = f.read(512)
    if zipfile.is_zipfile(path):
        _check_torch_zip(path, what, size, error)
    elif not (legacy and head[:1] == TORCH_PICKLE_MAGIC):
        raise error(f"{what} {path} is {_kind_of(head)}, not a torch.save file (torch >= 1.6: a zip); "
                    "refusing to read it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own warnings about the file would repeat our one line
            return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values, never code
    except Exception as exc:  # torch raises many types for a damaged zip or pickle, or a class it will not load
        raise error(f"{what} {path} is truncated or corrupt, or holds more than tensors and plain values "
                    f"({type(exc).__name__})") from None


def _check_torch_zip(path: str | os.PathLike, what: str, size: int, error: type[GaninvError]) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise error(f"{what} {path} is a truncated or corrupt zip ({type(exc).__name__})") from None
    if is_torchscript([e.filename for e in entries]):
        raise error(f"{what} {path} is a TorchScript archive (it holds code, which loading would run); "
                    "refusing to read it — save the state dict with torch.save instead")
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise error(f"{what} {path} holds compressed entries (torch.save never compresses them; a zip "
                    "bomb would); refusing to read it")
    if sum(e.file_size for e in entries) > size:
        raise error(f"{what} {path}: its zip entries add up to more bytes than the file holds (overlapping "
                    "entries); refusing to read it")


def is_torchscript(names: list[str]) -> bool:
    """Whether a zip's member names are a TorchScript archive's (``torch.jit.save``): its ``constants.pkl`` or its
    ``code/`` folder — what makes ``torch.load`` hand the file to ``torch.jit.load``, which runs its code."""
    return any(name.rsplit("/", 1)[-1] == "constants.pkl" or "/code/" in f"/{name}" for name in names)


def _kind_of(head: bytes) -> str:
    """What a file that is no torch zip looks like, for the refusal."""
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "a tar archive (torch < 0.4)"
    if head[:1] == TORCH_PICKLE_MAGIC:
        return "a pickle stream (torch < 1.6, or plain pickle)"
    return "empty" if not head else "not a torch file"


# ------------------------------------------------------------------------------------------------ safetensors
def read_safetensors(path: str | os.PathLike, what: str, *, max_bytes: int,
                     error: type[GaninvError] = GaninvError) -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of a safetensors file of at most ``max_bytes``, its header at most
    ``SAFETENSORS_HEADER_MAX`` bytes and valid JSON, checked before the tensors are read."""
    size = check_size(path, what, max_bytes, error)
    try:
        with open(path, "rb") as f:
            header_size = int.from_bytes(f.read(8), "little")
            if size < 8 or header_size > min(size - 8, SAFETENSORS_HEADER_MAX):
                raise error(f"{what} {path} is not a safetensors file (its header size is {header_size} bytes "
                            f"in a file of {size}); refusing to read it")
            header = json.loads(f.read(header_size))
            metadata = (header.get("__metadata__") or {}) if isinstance(header, dict) else None
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise ValueError("the header is not a safetensors header")
            f.seek(0)
            tensors = load_safetensors(f.read())
    except GaninvError:
        raise
    except OSError as exc:
        raise error(f"cannot read {what}: {describe_os_error(exc)}") from None
    except Exception as exc:  # safetensors' error type moved between releases; any failure here is damage
        raise error(f"{what} {path} is truncated or corrupt ({type(exc).__name__})") from None
    return tensors, metadata


# ------------------------------------------------------------------------------------------------ numpy
def npy_layout(f: BinaryIO, stored: int, where: str, error: type[GaninvError] = GaninvError
               ) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of the ``.npy`` data in ``f`` (``stored`` bytes from its start), refused
    unless its shape's bytes are exactly the bytes that follow the header, and no object (pickled) dtype."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise ValueError(f"npy version {version}")
        shape, _, dtype = read[version](f, max_header_size=NPY_HEADER_MAX)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise error(f"{where} is not a numpy array file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if dtype.hasobject:
        raise error(f"{where} holds Python objects (a pickle), not numbers; refusing to read it")
    need = math.prod(shape) * dtype.itemsize
    if need != stored - f.tell():
        raise error(f"{where}: its header claims shape {shape} of {dtype} ({need} bytes) but "
                    f"{stored - f.tell()} bytes follow; truncated or crafted, refusing to read it")
    return tuple(shape), dtype


def load_npy(path: str | os.PathLike, what: str, *, max_bytes: int, ndim: int | None = None,
             error: type[GaninvError] = GaninvError) -> np.ndarray:
    """A ``.npy`` array of at most ``max_bytes`` (and ``ndim`` dimensions), its header checked before loading."""
    size = check_size(path, what, max_bytes, error)
    with open(path, "rb") as f:
        shape, _ = npy_layout(f, size, f"{what} {path}", error)
    if ndim is not None and len(shape) != ndim:
        raise error(f"{what} {path} has shape {shape}; expected {ndim} dimensions")
    return np.load(path, allow_pickle=False)  # allow_pickle=False: object arrays would be unpickled


def npz_layout(path: str | os.PathLike, what: str, *, max_bytes: int,
               error: type[GaninvError] = GaninvError) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{name: (shape, dtype)} of a ``.npz``'s arrays, without reading them: stored (uncompressed) members that fit
    the file, each header checked as ``npy_layout`` does."""
    size = check_size(path, what, max_bytes, error)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            _check_npz_entries(entries, size, f"{what} {path}", error)
            layout = {}
            for entry in entries:
                with archive.open(entry) as member:
                    layout[entry.filename.removesuffix(".npy")] = npy_layout(
                        member, entry.file_size, f"{what} {path} ({entry.filename})", error)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise error(f"{what} {path} is a truncated or corrupt .npz ({type(exc).__name__})") from None
    return layout


def _check_npz_entries(entries: list[zipfile.ZipInfo], size: int, where: str, error: type[GaninvError]) -> None:
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise error(f"{where} holds compressed members (ganinv writes them stored; a zip bomb would not); "
                    "refusing to read it")
    if sum(e.file_size for e in entries) > size:
        raise error(f"{where}: its members add up to more bytes than the file holds; refusing to read it")


def load_npz(path: str | os.PathLike, what: str, *, max_bytes: int,
             error: type[GaninvError] = GaninvError) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` checked by ``npz_layout``, read with ``allow_pickle=False``."""
    npz_layout(path, what, max_bytes=max_bytes, error=error)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return dict(archive)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise error(f"{what} {path} is truncated or corrupt ({type(exc).__name__})") from None
