"""File writes that never leave half a file behind, and the few filesystem operations checkpoints are built of.

``atomic_write`` writes to a temporary name in the same folder, then renames it over the target: a reader (or a
resumed run) sees either the old file or the new one, never half of one. The run directory's checkpoint commit
(:mod:`ganinv.core.rundir`) is made of ``write_durable``, ``fsync_dir``, ``make_dir`` and ``replace`` alone — one
place to reason about durability, and one place a test can make fail. numpy arrays go through ``atomic_save_npy``
and ``atomic_save_npz`` (never ``np.save(open(...))``, whose file is closed whenever the garbage collector gets to
it, possibly after the rename).
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_durable(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to the disk (so a power cut after a commit cannot lose it)."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or a new entry in ``path`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # some filesystems refuse fsync on a folder
            raise
    finally:
        os.close(fd)


def make_dir(path: str | os.PathLike) -> None:
    Path(path).mkdir(parents=True, exist_ok=True)


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """The atomic step: ``dst`` is the old file or the new one, never anything in between."""
    os.replace(src, dst)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """A hard link (no extra space), or a copy on filesystems without them. Not for the run directory: its top-level
    weights are an independent copy (a link would share damage); kept for callers and tests that name it."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copyfile(src, dst)


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (``.NAME.XXXX.tmp``): half-written files are recognisable by it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.remove(tmp)
    return Path(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """``data`` onto ``path`` atomically and durably, through the primitives above."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write_durable(tmp, data)
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_save_npy(path: str | os.PathLike, array) -> None:
    """``np.save`` onto ``path`` atomically; the file is closed (flushed) before it is fsynced and renamed."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)


def atomic_save_npz(path: str | os.PathLike, **arrays) -> None:
    """``np.savez`` of ``arrays`` onto ``path`` atomically (closed before it is fsynced and renamed)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def jsonable(obj):
    """Strict JSON values: tuples as lists, NaN as None, ±infinity as "inf" / "-inf" (a PSNR of identical images),
    0-d tensors and numpy scalars as numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, float) and math.isinf(obj):
        return str(obj)
    return obj
