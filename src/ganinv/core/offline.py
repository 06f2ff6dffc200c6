"""Downloads, in one place for everything that may fetch a file (the LPIPS backbone in ``ganinv.metrics.image``,
dlib's landmark model in ``ganinv.data.ffhq_align``): the switches that forbid them — ``GANINV_OFFLINE`` or
``HF_HUB_OFFLINE`` set to anything but 0 / false / no / off — and ``download_whole``, the one loop that writes a
downloaded file, whole or not at all."""
from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = ["OFFLINE_VARIABLES", "downloads_forbidden", "download_whole"]

OFFLINE_VARIABLES = ("GANINV_OFFLINE", "HF_HUB_OFFLINE")  # either one set (and not 0/false/no/off): never download
_OFF = ("0", "false", "no", "off")  # values that leave downloads allowed (an empty value too)


def downloads_forbidden() -> str | None:
    """The setting that forbids downloads (e.g. ``"GANINV_OFFLINE=1"``), or None when they are allowed. Read at
    each call, so a variable set after import counts."""
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value and value.lower() not in _OFF:
            return f"{name}={value}"
    return None


def download_whole(url: str, dest: Path, *, timeout_s: float, max_bytes: int,
                   decode: Callable[[bytes, int], bytes] = lambda chunk, room: chunk,
                   check: Callable[[], None] = lambda: None) -> None:
    """``url`` → ``dest`` through a temporary name and a rename, so ``dest`` is whole or absent: each socket wait at
    most ``timeout_s``; ``decode(chunk, room)`` turns each received chunk into the bytes to write (``room``: how
    many more may be written before ``max_bytes`` is passed; e.g. a decompressor); ``check()`` runs after the last
    chunk, before the rename (a digest, a stream's end). Raises OSError (or urllib's errors) on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    total = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                data = decode(chunk, max_bytes + 1 - total)
                total += len(data)
                if total > max_bytes:
                    raise OSError(f"the download is more than {max_bytes} bytes")
                out.write(data)
        check()
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
