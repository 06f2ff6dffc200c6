"""A corpus of bad (and oddly named good) image files, made on the spot, for every command that reads user images.

``make_corpus(root)`` writes it and returns ``{relative name: expected}`` with expected one of

* ``"ok"``: decodable, must be processed: 16-bit, RGBA, LA, grey, 1-bit, CMYK JPEG, palette GIF, animated GIF (the
  first frame), WebP named .jpg, and good images named with spaces, unicode, a newline and bytes that are not
  UTF-8 (an ``os.fsdecode`` name: ``os.fsencode(name)`` gives the bytes back);
* ``"bad"``: must be named on stderr with a reason and skipped: truncated JPEG, empty file, text named .png,
  PNG signature + junk, 1×1 and 10000×1 (too small to invert), a 100-megapixel PNG (a decompression bomb,
  12 KB on disk), a folder named .jpg, a missing path, a dangling symbolic link, a symbolic link loop;
* ``"skip: REASON"``: a case this process cannot make: the unreadable file (mode 000) is readable to root,
  so as root it is whatever its bytes are (a good PNG) and the permission check runs in a subprocess without
  CAP_DAC_OVERRIDE (tests/apps/test_badfiles.py).

``REASONS`` holds a phrase each bad entry's message must contain. Names are relative to ``root``; two good files
share the name ``same.png`` in different folders (outputs must not collide).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ganinv.data import display_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # what a folder: scan lists (ganinv.data)
NON_UTF8 = os.fsdecode(b"bytes-\xff\xfe.png")
NEWLINE = "new\nline.png"
UNREADABLE = "unreadable.png"
NAMED_ONLY = ("missing.png", "folder.jpg")  # a folder scan does not see them: one is absent, one is a folder

REASONS = {
    "truncated.jpg": "cannot decode",
    "empty.png": "is empty",
    "text.png": "not a readable image file",
    "signature-junk.png": "not a readable image file",
    "one-pixel.png": "too small",
    "strip.png": "too small",
    "bomb.png": "megapixels",
    "folder.jpg": "holds no images",
    "missing.png": "does not exist",
    "dangling.png": "symbolic link to a missing file",
    "loop.png": "symbolic link loop",
    UNREADABLE: "permission denied",
}


def picture(seed: int, h: int = 20, w: int = 24, channels: int = 3) -> np.ndarray:
    """A distinct little picture (smooth gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (x * (5 + seed) + y * (3 + 2 * seed)) % 256
    noise = rng.integers(0, 60, (h, w, channels))
    return np.clip(base[..., None] + noise, 0, 255).astype(np.uint8).squeeze()


def png_zeros(width: int, height: int) -> bytes:
    """A 1-bit all-black PNG written by hand: 10000×10000 is 12 KB on disk and never held in memory here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _save(path: Path, image: Image.Image, fmt: str | None = None, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **kwargs)


def _jpeg_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture(seed, 64, 64)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _good_files(root: Path) -> dict[str, str]:
    """Decodable files of every mode PIL reads, and good files with odd names."""
    grey = picture(7, channels=1)
    rgb = picture(8)
    _save(root / "plain.png", Image.fromarray(rgb))
    _save(root / "sixteen-bit.png", Image.fromarray(grey.astype(np.uint16) * 257))
    _save(root / "rgba.png", Image.fromarray(np.dstack([rgb, grey])))
    _save(root / "la.png", Image.merge("LA", [Image.fromarray(grey), Image.fromarray(grey[::-1].copy())]))
    _save(root / "grey.png", Image.fromarray(picture(9, channels=1)))
    _save(root / "one-bit.png", Image.fromarray(picture(10, channels=1) > 128))
    _save(root / "cmyk.jpg", Image.fromarray(picture(11)).convert("CMYK"), "JPEG")
    _save(root / "palette.gif", Image.fromarray(picture(12)).convert("P"), "GIF")
    frames = [Image.fromarray(picture(13 + i)).convert("P") for i in range(3)]
    _save(root / "animated.gif", frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    _save(root / "webp-named.jpg", Image.fromarray(picture(16)), "WEBP")
    _save(root / "with space.png", Image.fromarray(picture(17)))
    _save(root / "ünïcødé-画像.png", Image.fromarray(picture(18)))
    _save(root / NEWLINE, Image.fromarray(picture(19)))
    _save(root / NON_UTF8, Image.fromarray(picture(20)))
    _save(root / "d1" / "same.png", Image.fromarray(picture(21)))
    _save(root / "d2" / "same.png", Image.fromarray(picture(22)))
    names = ["plain.png", "sixteen-bit.png", "rgba.png", "la.png", "grey.png", "one-bit.png", "cmyk.jpg",
             "palette.gif", "animated.gif", "webp-named.jpg", "with space.png", "ünïcødé-画像.png", NEWLINE,
             NON_UTF8, "d1/same.png", "d2/same.png"]
    return dict.fromkeys(names, "ok")


def _bad_files(root: Path) -> dict[str, str]:
    jpeg = _jpeg_bytes(30)
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("this is not a picture\n" * 20)
    (root / "signature-junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(200))
    _save(root / "one-pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    _save(root / "strip.png", Image.new("L", (10000, 1), 128))
    (root / "bomb.png").write_bytes(png_zeros(10000, 10000))
    (root / "folder.jpg").mkdir()
    os.symlink(root / "nowhere.png", root / "dangling.png")
    os.symlink("loop.png", root / "loop.png")  # points at itself
    return {name: "bad" for name in ("truncated.jpg", "empty.png", "text.png", "signature-junk.png",
                                      "one-pixel.png", "strip.png", "bomb.png", "folder.jpg", "missing.png",
                                      "dangling.png", "loop.png")}


def _unreadable_file(root: Path) -> dict[str, str]:
    path = root / UNREADABLE
    _save(path, Image.fromarray(picture(40)))
    path.chmod(0)
    if os.access(path, os.R_OK):
        return {UNREADABLE: "skip: this process reads files of mode 000 (root); the permission case runs in a "
                            "subprocess without CAP_DAC_OVERRIDE"}
    return {UNREADABLE: "bad"}


def make_corpus(root: str | os.PathLike) -> dict[str, str]:
    """Write the corpus under ``root`` (created); return {relative name: "ok" | "bad" | "skip: REASON"}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return {**_good_files(root), **_bad_files(root), **_unreadable_file(root)}


def usable(root: Path, name: str, expected: str) -> bool:
    """Whether a command run by this process must process the entry (a "skip:" entry when this process reads it)."""
    return expected == "ok" or (expected.startswith("skip") and os.access(root / name, os.R_OK))


def seen_by_folder_scan(root: Path, name: str) -> bool:
    """Whether a ``folder:`` dataset lists the entry: on disk (a link counts, even a broken one), not a folder, with
    an image extension (so the GIFs are only read when named)."""
    path = root / name
    return os.path.lexists(path) and not os.path.isdir(path) and name.lower().endswith(IMAGE_EXTENSIONS)


def listable(name: str) -> bool:
    """Whether the name can stand in a whitespace-separated text list (CelebA's attribute and partition files)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ch.isspace() for ch in name)


# ------------------------------------------------------------------------------------------------ assertions
def split_corpus(root: Path, corpus: dict, names) -> tuple[list[str], list[str]]:
    """(names a command must process, names it must skip) among ``names``."""
    names = list(names)
    good = [n for n in names if usable(root, n, corpus[n])]
    bad = [n for n in names if n not in good and not corpus[n].startswith("skip")]
    return good, bad


def folder_names(root: Path, corpus: dict) -> list[str]:
    return [n for n in corpus if seen_by_folder_scan(root, n)]


def assert_reported(err: str, root: Path, corpus: dict, bad: list[str], good: list[str]) -> None:
    """No traceback; every bad file on exactly one stderr line, with its reason; no good file reported as bad."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    for name in bad:
        shown = display_path(root / name)
        mentions = [line for line in lines if shown in line]
        assert len(mentions) == 1, (name, mentions)
        assert REASONS[name] in mentions[0], (name, mentions[0])
    for name in good:
        shown = display_path(root / name)
        assert not any(shown in line and any(r in line for r in REASONS.values()) for line in lines), name


def assert_skipped_records(records: list[dict], root: Path, bad: list[str], *, resolved: bool = False) -> None:
    """The JSON failure records name exactly the bad files (exact names) with their reasons."""
    expected = {item_name(root / n, resolved): n for n in bad}
    assert sorted(r["item"] for r in records) == sorted(expected), records
    for r in records:
        assert REASONS[expected[r["item"]]] in r.get("reason", r.get("error", "")), r


def item_name(path: Path, resolved: bool) -> str:
    """How a command records an item: the path as given, or resolved (an index resolves all but links)."""
    return str(path.resolve()) if resolved and not path.is_symlink() else os.fsdecode(path)
