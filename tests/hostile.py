"""A corpus of hostile checkpoint files, built byte by byte (or by torch.jit for TorchScript): each is something a
stranger could post as a "StyleGAN checkpoint" to run code, hang, or exhaust memory in whoever imports it.

``build_corpus(folder, sentinel)`` writes them and returns their paths; TorchScript archives there create
``sentinel`` when loaded the ordinary way (``torch.jit.load``, or ``torch.load(weights_only=False)``, which hands
them to torch.jit), so a test can show both that they would run and that ganinv does not run them.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
LEGACY_PROTOCOL = b"\x80\x02M\xe9\x03."
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


# --- opcodes ------------------------------------------------------------------------------------------------------

def text(s: str) -> bytes:
    data = s.encode()
    return (pickle.SHORT_BINUNICODE + bytes([len(data)]) if len(data) < 256
            else pickle.BINUNICODE + struct.pack("<I", len(data))) + data


def glob(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def integer(n: int) -> bytes:
    return pickle.BININT + struct.pack("<i", n) if -2**31 <= n < 2**31 else pickle.LONG1 + bytes([8]) + n.to_bytes(
        8, "little", signed=True)


def put(i: int) -> bytes:
    return pickle.LONG_BINPUT + struct.pack("<I", i)


def get(i: int) -> bytes:
    return pickle.LONG_BINGET + struct.pack("<I", i)


def program(*parts: bytes) -> bytes:
    return pickle.PROTO + b"\x04" + b"".join(parts) + pickle.STOP


def dict_of(**items: bytes) -> bytes:
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(text(k) + v for k, v in items.items()) + pickle.SETITEMS


PERSISTENT = glob("torch_utils.persistence", "_reconstruct_persistent_obj")


def record(class_name: bytes, state: bytes) -> bytes:
    """NVlabs' ``_reconstruct_persistent_obj(meta)`` with the given class-name and state pickles."""
    meta = pickle.EMPTY_DICT + pickle.MARK + text("type") + text("class") + text("version") + integer(4) + \
        text("module_src") + text("") + text("class_name") + class_name + text("state") + state + pickle.SETITEMS
    return PERSISTENT + meta + pickle.TUPLE1 + pickle.REDUCE


def snapshot(g_ema: bytes) -> bytes:
    return program(dict_of(G_ema=g_ema))


def generator(init_kwargs: bytes, *, stylegan3: bool = False) -> bytes:
    """A G_ema record with the given constructor kwargs and a synthesis child (an ``input`` for StyleGAN3) but no
    tensors at all: what a config bomb needs."""
    inner = dict_of(_modules=dict_of(input=record(text("SynthesisInput"), pickle.EMPTY_DICT))) if stylegan3 else \
        pickle.EMPTY_DICT
    modules = dict_of(synthesis=record(text("SynthesisNetwork"), inner))
    return record(text("Generator"), dict_of(_init_kwargs=init_kwargs, _modules=modules))


def kwargs_pickle(**values) -> bytes:
    out = pickle.EMPTY_DICT + pickle.MARK
    for key, value in values.items():
        if isinstance(value, dict):
            out += text(key) + kwargs_pickle(**value)
        elif isinstance(value, str):
            out += text(key) + text(value)
        else:
            out += text(key) + integer(value)
    return out + pickle.SETITEMS


SG2_KWARGS = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 8}, "synthesis_kwargs": {"channel_base": 32768, "channel_max": 512}}
SG3_KWARGS = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 2}, "channel_base": 32768, "channel_max": 512}


# --- the corpus -------------------------------------------------------------------------------------------------

def torchscript_bytes(sentinel: Path) -> bytes:
    """A TorchScript module whose ``__setstate__`` creates ``sentinel`` (torch.from_file with shared=True) when
    torch.jit.load rebuilds it."""
    import torch

    class Payload(torch.nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.path = path
            self.made = torch.zeros(1)

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[str, bool, torch.Tensor]:
            return (self.path, self.training, self.made)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, bool, torch.Tensor]) -> None:
            self.path = state[0]
            self.training = state[1]
            self.made = torch.from_file(self.path, True, 1)  # kept in an attribute, so the JIT cannot drop it

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; attackers do not care
        torch.jit.save(torch.jit.script(Payload(str(sentinel))), buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(kind: str, *, first_name: str = "sys_info") -> bytes:
    """torch's pre-0.4 tar layout with a hostile ``storages`` member: a FIFO, a symlink, or a huge declared size."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        info = tarfile.TarInfo(first_name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"\x80\x02}."))
        storages = tarfile.TarInfo("storages")
        if kind == "fifo":
            storages.type = tarfile.FIFOTYPE
        elif kind == "symlink":
            storages.type, storages.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(storages)
    data = buffer.getvalue()
    if kind == "huge":  # a regular member declaring 8 GiB that the file does not hold
        header = bytearray(data[1024:1536])  # after sys_info's header and its one block of data
        header[124:136] = b"%011o\x00" % (8 * 2**30 - 1)
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\x00 " % sum(header)
        data = data[:1024] + bytes(header)
    return data


def storage_pickle(numel: int, shape: tuple[int, ...], legacy: bool) -> bytes:
    """A tensor of ``shape`` over storage "0" declared to hold ``numel`` floats, as torch pickles it."""
    pid = pickle.MARK + text("storage") + glob("torch", "FloatStorage") + text("0") + text("cpu") + integer(numel)
    pid += (pickle.NONE if legacy else b"") + pickle.TUPLE + pickle.BINPERSID
    stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
    shape_t = pickle.MARK + b"".join(integer(n) for n in shape) + pickle.TUPLE
    stride_t = pickle.MARK + b"".join(integer(n) for n in stride) + pickle.TUPLE
    args = pickle.MARK + pid + integer(0) + shape_t + stride_t + pickle.NEWFALSE + glob("collections", "OrderedDict") \
        + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.TUPLE
    return glob("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE


def legacy_stream(numel_declared: int, floats_present: int, shape: tuple[int, ...]) -> bytes:
    sys_info = program(dict_of(protocol_version=integer(1001), little_endian=pickle.NEWTRUE))
    body = program(dict_of(weight=storage_pickle(numel_declared, shape, legacy=True)))
    keys = program(pickle.EMPTY_LIST + text("0") + pickle.APPEND)
    return LEGACY_MAGIC + LEGACY_PROTOCOL + sys_info + body + keys + struct.pack("<q", numel_declared) + \
        bytes(4 * floats_present)


def torch_zip(data_pkl: bytes, storage: bytes) -> bytes:
    return zip_bytes({"archive/data.pkl": data_pkl, "archive/byteorder": b"little", "archive/data/0": storage,
                      "archive/version": b"3\n"})


def class_name_laughs(levels: int = 40) -> bytes:
    """A class name that is a list of a list of … each level the previous one twice: 2**levels strings when
    printed, a few hundred bytes on disk."""
    out = text("lol") + put(0) + pickle.POP
    for i in range(1, levels + 1):
        out += pickle.EMPTY_LIST + pickle.MARK + get(i - 1) + get(i - 1) + pickle.APPENDS + put(i) + pickle.POP
    return snapshot(record(out + get(levels), pickle.EMPTY_DICT))


def module_laughs(levels: int = 40) -> bytes:
    """Modules that each hold the next one twice: 2**levels modules for whatever walks the tree."""
    out = record(text("Leaf"), pickle.EMPTY_DICT) + put(0) + pickle.POP
    for i in range(1, levels + 1):
        out += record(text("Block"), dict_of(_modules=pickle.EMPTY_DICT + pickle.MARK + text("a") + get(i - 1)
                                                + text("b") + get(i - 1) + pickle.SETITEMS)) + put(i) + pickle.POP
    return snapshot(out + get(levels))


def tuple_key_laughs(levels: int = 60) -> bytes:
    """A dict key that is a tuple of a tuple of …: hashing it visits 2**levels tuples."""
    out = pickle.EMPTY_TUPLE + put(0) + pickle.POP
    for i in range(1, levels + 1):
        out += get(i - 1) + get(i - 1) + pickle.TUPLE2 + put(i) + pickle.POP
    return program(pickle.EMPTY_DICT + out + get(levels) + text("value") + pickle.SETITEM)


def nested_modules(depth: int) -> bytes:
    """``depth`` modules each inside the last, under G_ema."""
    opening = (PERSISTENT + pickle.EMPTY_DICT + pickle.MARK + text("type") + text("class") + text("class_name")
               + text("M") + pickle.SETITEMS + text("state") + pickle.EMPTY_DICT + text("_modules") + pickle.EMPTY_DICT
               + text("m"))
    closing = pickle.SETITEM * 3 + pickle.TUPLE1 + pickle.REDUCE
    return program(pickle.EMPTY_DICT + text("G_ema") + opening * depth + record(text("Leaf"), pickle.EMPTY_DICT)
                   + closing * depth + pickle.SETITEM)


def nested_lists(depth: int) -> bytes:
    return program(pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1))


def shared_storage_bytes(copies: int) -> bytes:
    """One 1 MiB storage pickled as bytes, handed to torch's storage reader ``copies`` times (by memo)."""
    storage = LEGACY_MAGIC + LEGACY_PROTOCOL + program(dict_of(protocol_version=integer(1001),
                                                               little_endian=pickle.NEWTRUE))
    storage += program(pickle.MARK + text("storage") + glob("torch", "FloatStorage") + text("0") + text("cpu")
                       + integer(2**18) + pickle.NONE + pickle.TUPLE + pickle.BINPERSID)
    storage += program(pickle.EMPTY_LIST + text("0") + pickle.APPEND) + struct.pack("<q", 2**18) + bytes(2**20)
    blob = pickle.BINBYTES + struct.pack("<I", len(storage)) + storage + put(0)
    call = glob("torch.storage", "_load_from_bytes") + put(1)
    items = b"".join(get(1) + get(0) + pickle.TUPLE1 + pickle.REDUCE + pickle.APPEND for _ in range(copies))
    return program(blob + pickle.POP + call + pickle.POP + pickle.EMPTY_LIST + items)


def size_lies() -> dict[str, bytes]:
    """Length prefixes far beyond the file: BINBYTES8 2**60, BINUNICODE8 2**40, BYTEARRAY8, BINBYTES, FRAME."""
    return {
        "binbytes8-2e60.pkl": pickle.PROTO + b"\x05" + pickle.BINBYTES8 + struct.pack("<Q", 2**60) + b"x" * 16,
        "binunicode8-2e40.pkl": pickle.PROTO + b"\x05" + pickle.BINUNICODE8 + struct.pack("<Q", 2**40) + b"x" * 16,
        "bytearray8-2e50.pkl": pickle.PROTO + b"\x05" + pickle.BYTEARRAY8 + struct.pack("<Q", 2**50) + b"x" * 16,
        "binbytes-2e31.pkl": pickle.PROTO + b"\x04" + pickle.BINBYTES + struct.pack("<I", 2**31) + b"x" * 16,
        "frame-2e60.pkl": pickle.PROTO + b"\x04" + pickle.FRAME + struct.pack("<Q", 2**60) + pickle.NONE + pickle.STOP,
        "long4-huge.pkl": pickle.PROTO + b"\x02" + pickle.LONG4 + struct.pack("<i", 2**30) + b"\x01" * 16,
    }


def config_bombs() -> dict[str, bytes]:
    return {
        # 489 bytes that ask for a 512 × 2**22 mapping layer (8 GiB) before any tensor is read
        "config-mapping-2e22.pkl": snapshot(generator(kwargs_pickle(**{**SG2_KWARGS, "z_dim": 2**22}))),
        "config-resolution-2e30.pkl": snapshot(generator(kwargs_pickle(**{**SG2_KWARGS, "img_resolution": 2**30}))),
        "config-sg3-layers-1e9.pkl": snapshot(generator(kwargs_pickle(**{**SG3_KWARGS, "num_layers": 10**9}),
                                                        stylegan3=True)),
        # within every bound, but the file holds none of the 4096-px net's tensors: refused before it is built
        "config-largest-allowed.pkl": snapshot(generator(kwargs_pickle(
            **{**SG2_KWARGS, "z_dim": 2048, "w_dim": 2048, "img_resolution": 4096,
               "mapping_kwargs": {"num_layers": 32},
               "synthesis_kwargs": {"channel_base": 4 * 65536, "channel_max": 2048}}))),
        "config-z-dim-text-sg2.pkl": snapshot(generator(kwargs_pickle(**{**SG2_KWARGS, "z_dim": "abc"}))),
        "config-z-dim-text-sg3.pkl": snapshot(generator(kwargs_pickle(**{**SG3_KWARGS, "z_dim": "abc"}),
                                                        stylegan3=True)),
        "config-sg3-critical.pkl": snapshot(generator(kwargs_pickle(**{**SG3_KWARGS, "num_layers": 14,
                                                                        "num_critical": 14}), stylegan3=True)),
    }


def code_runners() -> dict[str, bytes]:
    return {
        "os-system.pkl": program(glob("os", "system") + text("true") + pickle.TUPLE1 + pickle.REDUCE),
        "list-of-range.pkl": program(glob("builtins", "list") + glob("builtins", "range") + integer(2**62)
                                     + pickle.TUPLE1 + pickle.REDUCE + pickle.TUPLE1 + pickle.REDUCE),
        "bytearray-2e40.pkl": program(glob("builtins", "bytearray") + integer(2**40) + pickle.TUPLE1 + pickle.REDUCE),
        "storage-class-call.pkl": program(glob("torch", "FloatStorage") + integer(2**31 - 1) + pickle.TUPLE1
                                          + pickle.REDUCE),
        "numpy-alloc.pkl": program(glob("numpy.core.multiarray", "_reconstruct") + glob("numpy", "ndarray")
                                   + pickle.MARK + integer(2**31 - 1) + integer(2**31 - 1) + pickle.TUPLE
                                   + text("b") + pickle.TUPLE3 + pickle.REDUCE),
        "numpy-newobj.pkl": program(glob("numpy", "ndarray") + pickle.MARK + integer(2**31 - 1) + integer(2**31 - 1)
                                    + pickle.TUPLE + pickle.TUPLE1 + pickle.NEWOBJ),
        "memo-index-2e32.pkl": program(pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", 2**32 - 16)),
        "setitem-on-tensor-maker.pkl": program(glob("torch", "device") + text("cpu") + pickle.TUPLE1 + pickle.REDUCE
                                               + integer(0) + integer(1) + pickle.SETITEM),
    }


def build_corpus(folder: Path, sentinel: Path) -> dict[str, Path]:
    """Write every hostile file into ``folder``; returns {name: path}."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    script = torchscript_bytes(sentinel)
    files: dict[str, bytes] = {"torchscript.pt": script, "torchscript.pkl": script,
                               "torchscript-renamed.bin.pkl": script}
    files["torchscript-code-only.pt"] = zip_bytes({"archive/data.pkl": program(pickle.NONE),
                                                   "archive/code/__torch__.py": b"def f(x):\n  return x\n"})
    files.update({"tar-fifo.pt": tar_bytes("fifo"), "tar-symlink.pt": tar_bytes("symlink"),
                  "tar-huge-member.pt": tar_bytes("huge"),
                  "tar-after-legacy-magic.pt": tar_bytes("fifo", first_name=LEGACY_MAGIC[:-1].decode(
                      "utf-8", "surrogateescape"))})
    files.update(config_bombs())
    files.update(size_lies())
    files.update(code_runners())
    files["laughs-class-name.pkl"] = class_name_laughs()
    files["laughs-modules.pkl"] = module_laughs()
    files["laughs-tuple-key.pkl"] = tuple_key_laughs()
    files["nested-modules-1e5.pkl"] = nested_modules(100_000)
    files["nested-modules-5e3.pkl"] = nested_modules(5_000)
    files["nested-lists-1e5.pkl"] = nested_lists(100_000)
    files["shared-storage-bytes.pkl"] = shared_storage_bytes(4_000)
    files["zip-tensor-beyond-storage.pt"] = torch_zip(program(dict_of(
        g_ema=dict_of(w=storage_pickle(4, (2**20, 2**20), legacy=False)))), bytes(16))
    files["zip-storage-beyond-member.pt"] = torch_zip(program(dict_of(
        g_ema=dict_of(w=storage_pickle(2**40, (4,), legacy=False)))), bytes(16))
    files["zip-deflate-bomb.pt"] = zip_bytes({"archive/data.pkl": program(pickle.NONE) + bytes(50 * 2**20)},
                                             zipfile.ZIP_DEFLATED)
    files["legacy-storage-2e40.pt"] = legacy_stream(2**40, 4, (4,))
    files["legacy-tensor-beyond-storage.pt"] = legacy_stream(4, 4, (2**20, 2**20))
    real = io.BytesIO()
    torch.save({"g_ema": {"style.1.weight": torch.zeros(64, 64)}}, real)
    files["truncated.pt"] = real.getvalue()[: len(real.getvalue()) // 2]
    files["photo.pkl"] = PNG
    files["empty.pkl"] = b""
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


if __name__ == "__main__":  # python tests/hostile.py FOLDER: write the corpus to look at
    import sys

    target = Path(sys.argv[1])
    for name, path in build_corpus(target, target / "SENTINEL").items():
        print(f"{os.path.getsize(path):>10}  {name}")
