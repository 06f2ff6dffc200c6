"""torch's own containers, read without ``torch.load``: the zip of ``torch.save`` (torch >= 1.6) and the legacy
stream of older torch, both with every declared size checked against the bytes actually present before anything
is allocated.

``torch.load`` with its full unpickler (what rosinality's argparse.Namespace would need) hands a zip holding
``constants.pkl`` (a TorchScript archive, whatever its extension) to ``torch.jit.load``, which runs the archive's
code, and tries any other file as a legacy *tar* first (extracting members: a FIFO named ``storages`` blocks
forever). So the container is recognised here:

* a zip: ``constants.pkl`` or a ``code/`` folder is TorchScript and refused; otherwise its one ``*/data.pkl`` is
  unpickled by the caller's restricted unpickler, and each storage it names is read from ``*/data/<key>`` (stored,
  not compressed; the storages together no larger than the file) into a buffer torch wraps without copying;
* a legacy stream (torch's magic number, protocol 1001, sys info, the object pickle, the storage keys, then each
  storage as an 8-byte element count and its bytes): the object pickle's storages are allocated only while their
  declared sizes fit in the bytes left, then filled from the file;
* a tar is never opened (``sniff`` names it).

Tensors are rebuilt by ``rebuild_tensor``, which checks offset, shape and strides against the storage first; the
storages are not resizable, so nothing later can grow them either.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from ganinv.core.errors import GaninvError
from ganinv.core.safe_files import is_torchscript

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_TORCH_HEADER = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
LEGACY_MAGIC_PICKLE = LEGACY_TORCH_HEADER + b"."
LEGACY_PROTOCOL_PICKLE = b"\x80\x02M\xe9\x03."  # torch's legacy PROTOCOL_VERSION 1001
MAX_ZIP_MEMBERS = 100_000
MAX_DIMS = 16
MAX_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
ALLOWED_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                            torch.int16, torch.int32, torch.int64, torch.bool})
FILE_SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                   (b"\x1f\x8b", "gzip-compressed"), (b"BZh", "bzip2-compressed"), (b"\xfd7zXZ", "xz-compressed"),
                   (b"%PDF", "a PDF document"), (b"\x89HDF", "an HDF5 file (a Keras/TensorFlow model?)"))

class Source:
    """A file's bytes two ways at one offset: ``buffer`` (bytes or an mmap) for the opcode scan, ``stream`` (a file
    or BytesIO over the same bytes) for the unpickler."""

    def __init__(self, buffer: Any, stream: BinaryIO):
        self.buffer, self.stream = buffer, stream

    @classmethod
    def of_bytes(cls, data: bytes) -> Source:
        return cls(data, io.BytesIO(data))


# (source, end, persistent_load or None) -> the object: the caller's scanned, restricted unpickler
Unpickle = Callable[[Source, int, Any], Any]


def sniff(head: bytes) -> str:
    """What a file is from its first 512 bytes: zip | tar | legacy | pickle, or a sentence for something else."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith(LEGACY_TORCH_HEADER):
        return "legacy"
    for signature, what in FILE_SIGNATURES:
        if head.startswith(signature):
            return f"not a readable StyleGAN checkpoint (it is {what}, not a .pkl or .pt file)"
    if not head:
        return "not a readable StyleGAN checkpoint (the file is empty)"
    return "pickle"


class StorageKind:
    """What ``torch.FloatStorage`` & co. name in a file: a dtype — never the class, which would allocate if called."""

    def __init__(self, name: str, dtype: torch.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"StorageKind({self.name})"


def storage_kind(name: str) -> StorageKind | None:
    if name == "UntypedStorage":
        return StorageKind(name, torch.uint8)
    try:
        dtype = torch.storage._get_dtype_from_pickle_storage_type(name)
    except (KeyError, AttributeError):
        return None
    return StorageKind(name, dtype) if dtype in ALLOWED_DTYPES else None


class LoadedStorage:
    """A storage's bytes from the file, wrapped by torch without a copy; never resizable (an empty one too)."""

    def __init__(self, buffer: bytearray, nbytes: int, dtype: torch.dtype):
        self.buffer, self.nbytes, self.dtype = buffer, nbytes, dtype
        self.untyped = torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage()  # len(buffer) >= 1

    @classmethod
    def empty(cls, nbytes: int, dtype: torch.dtype) -> LoadedStorage:
        return cls(bytearray(max(nbytes, 1)), nbytes, dtype)


def _index(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value < 2**48:
        raise GaninvError(f"a tensor in this file has an invalid {what} ({type(value).__name__})")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS:
        raise GaninvError(f"a tensor in this file has an invalid {what}")
    return tuple(_index(v, what) for v in value)


def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None = None):
    """A tensor over ``storage`` — after checking that every element it addresses lies inside the storage."""
    if not isinstance(storage, LoadedStorage):
        raise GaninvError("a tensor in this file is not backed by one of its storages")
    dtype = storage.dtype if dtype is None else dtype
    if dtype not in ALLOWED_DTYPES:
        raise GaninvError(f"a tensor in this file has an unsupported dtype {dtype}")
    offset, size, stride = _index(offset, "offset"), _shape(size, "shape"), _shape(stride, "stride")
    if len(size) != len(stride):
        raise GaninvError("a tensor in this file has as many strides as dimensions")
    span = 0 if 0 in size else 1 + sum((n - 1) * s for n, s in zip(size, stride))
    capacity = storage.nbytes // torch.empty(0, dtype=dtype).element_size()
    if offset + span > capacity:
        raise GaninvError(f"a tensor in this file declares shape {size} (elements up to {offset + span:,}) but "
                          f"its storage holds {capacity:,}: the file lies about its sizes")
    return torch.empty(0, dtype=dtype).set_(storage.untyped, offset, size, stride)


# --- torch.save's zip ---------------------------------------------------------------------------------------------

def read_torch_zip(path: Path, unpickle: Unpickle) -> Any:
    size = path.stat().st_size
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise GaninvError(f"a damaged or truncated zip archive (a .pt file cut short?): {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise GaninvError(f"a zip archive of {len(infos):,} members, not a torch checkpoint")
        names = [info.filename for info in infos]
        if is_torchscript(names):
            raise GaninvError("a TorchScript archive (torch.jit.save), whose code would run on loading; ganinv never "
                              "loads TorchScript — save the generator's weights with torch.save(G.state_dict()) "
                              "or use the original NVlabs .pkl / rosinality .pt")
        pickles = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise GaninvError("a zip archive, but not one torch.save wrote (it has no single */data.pkl)")
        members = ZipMembers(archive, size)
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and members.read(byteorder, 16).strip() not in (b"little", b""):
            raise GaninvError("a big-endian torch file (saved on a big-endian machine); re-save it on x86 or ARM")
        data = bytes(members.read(pickles[0], size))
        storages = ZipStorages(members, prefix)
        return unpickle(Source.of_bytes(data), len(data), storages.persistent_load)


class ZipMembers:
    """Members read whole (so zipfile checks their CRC), stored only, all together no larger than the file."""

    def __init__(self, archive: zipfile.ZipFile, budget: int):
        self.archive, self.budget = archive, budget

    def read(self, name: str, limit: int) -> bytearray:
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise GaninvError(f"the zip archive lacks {name}") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise GaninvError(f"{name} is compressed inside the zip archive (torch.save stores members as they are)")
        if info.file_size > min(limit, self.budget):
            raise GaninvError(f"{name} declares {info.file_size:,} bytes, more than the file can hold")
        self.budget -= info.file_size
        buffer = bytearray(max(info.file_size, 1))
        with self.archive.open(info) as member:
            got = member.readinto(memoryview(buffer)[: info.file_size]) if info.file_size else 0
            if got != info.file_size or member.read(1):
                raise GaninvError(f"{name} is truncated inside the zip archive")
        return buffer if info.file_size else bytearray()


class ZipStorages:
    """``persistent_load`` for a torch zip: ('storage', kind, key, location, numel) → a ``LoadedStorage``."""

    def __init__(self, members: ZipMembers, prefix: str):
        self.members, self.prefix = members, prefix
        self.loaded: dict[str, LoadedStorage] = {}

    def persistent_load(self, pid: Any) -> LoadedStorage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise GaninvError("this torch file names something other than a storage as a persistent id")
        _, kind, key, _location, numel = pid
        kind, key = _storage_kind(kind), _storage_key(key)
        if key not in self.loaded:
            nbytes = _index(numel, "storage size") * torch.empty(0, dtype=kind.dtype).element_size()
            buffer = self.members.read(f"{self.prefix}data/{key}", 2**62)
            if len(buffer) < nbytes:
                raise GaninvError(f"storage {key} declares {nbytes:,} bytes but the file holds {len(buffer):,}")
            self.loaded[key] = LoadedStorage(buffer or bytearray(1), nbytes, kind.dtype)
        return self.loaded[key]


def _storage_kind(kind: Any) -> StorageKind:
    if not isinstance(kind, StorageKind):
        raise GaninvError("this torch file names a storage of an unknown type")
    return kind


def _storage_key(key: Any) -> str:
    if not isinstance(key, str) or not MAX_KEY.fullmatch(key):
        raise GaninvError("this torch file names a storage by an invalid key")
    return key


# --- torch's legacy stream (torch < 1.6, and the bytes NVlabs pickles hold for each storage) ----------------------

def read_legacy_stream(source: Source, end: int, unpickle: Unpickle) -> Any:
    f = source.stream
    if f.read(len(LEGACY_MAGIC_PICKLE)) != LEGACY_MAGIC_PICKLE:
        raise GaninvError("a damaged legacy torch file (its magic number is cut short)")
    if f.read(len(LEGACY_PROTOCOL_PICKLE)) != LEGACY_PROTOCOL_PICKLE:
        raise GaninvError("a legacy torch file of an unknown protocol version")
    sys_info = unpickle(source, end, None)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise GaninvError("a legacy torch file from a big-endian machine (or with broken sys info)")
    storages = LegacyStorages(end - f.tell())
    result = unpickle(source, end, storages.persistent_load)
    keys = unpickle(source, end, None)
    if (not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or len(set(keys)) != len(keys)
            or set(keys) != set(storages.loaded)):
        raise GaninvError("a damaged legacy torch file (its list of storages does not match its objects)")
    for key in keys:
        storages.fill(key, f, end)
    return result


class LegacyStorages:
    """``persistent_load`` for a legacy stream: storages allocated only while they fit in the bytes left, filled
    after the object pickle from (element count, bytes) records."""

    def __init__(self, bytes_left: int):
        self.bytes_left = bytes_left
        self.loaded: dict[str, tuple[LoadedStorage, int]] = {}

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] in ("module", b"module"):
            if not isinstance(pid[1], type):  # the class, already through the allow-list; its source is ignored
                raise GaninvError("this legacy torch file names a module class ganinv does not read")
            return pid[1]
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
            raise GaninvError("this torch file names something other than a storage as a persistent id")
        _, kind, key, _location, numel, view = pid
        kind, key, numel = _storage_kind(kind), _storage_key(key), _index(numel, "storage size")
        if view is not None:
            raise GaninvError("a legacy torch file with storage views (torch < 0.4), which ganinv does not read")
        if key not in self.loaded:
            nbytes = numel * torch.empty(0, dtype=kind.dtype).element_size()
            if nbytes > self.bytes_left:
                raise GaninvError(f"storage {key} declares {nbytes:,} bytes but only {self.bytes_left:,} are left "
                                  "in the file: it lies about its sizes")
            self.bytes_left -= nbytes
            self.loaded[key] = (LoadedStorage.empty(nbytes, kind.dtype), numel)
        return self.loaded[key][0]

    def fill(self, key: str, f: BinaryIO, end: int) -> None:
        storage, numel = self.loaded[key]
        header = f.read(8)
        if len(header) != 8 or struct.unpack("<q", header)[0] != numel:
            raise GaninvError(f"storage {key} is truncated or its recorded size disagrees with its object")
        if storage.nbytes > end - f.tell():
            raise GaninvError(f"storage {key} is truncated (the file ends inside it)")
        view = memoryview(storage.buffer)[: storage.nbytes]
        if storage.nbytes and f.readinto(view) != storage.nbytes:
            raise GaninvError(f"storage {key} is truncated (the file ends inside it)")


def read_storage_bytes(data: Any, unpickle: Unpickle) -> LoadedStorage:
    """A storage as NVlabs' pickles hold it (``torch.storage._load_from_bytes``): a legacy stream of one storage."""
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[: len(LEGACY_TORCH_HEADER)]) == LEGACY_TORCH_HEADER:
        raise GaninvError("a storage in this file is not in torch's legacy storage format")
    storage = read_legacy_stream(Source.of_bytes(bytes(data)), len(data), unpickle)
    if not isinstance(storage, LoadedStorage):
        raise GaninvError("a storage in this file holds something other than a storage")
    return storage
