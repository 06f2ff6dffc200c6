"""Reading image files: the one place that opens them. Datasets (``folder:``, ``celeba:``), face alignment
(:mod:`ganinv.data.align`), the web page's uploads and the public API's :func:`load_images` all read through here,
so a bound, a mode or a message is decided once.

    open_bounded(path, max_bytes=, max_pixels=)    Pillow's lazy open after the file checks, with the header's
                                                   pixel count checked before anything is decoded
    read_header(path, max_bytes=, max_pixels=)     an ImageHeader (size, mode, transparency) from the header alone
    decode_image(path, channels, image_size=)      a bounded open, decoded, turned upright (EXIF), in "L" or "RGB"
    convert_mode(im, channels)                     any PIL mode → "L" (channels=1) or "RGB" (channels=3)
    image_to_tensor(im)                            "L"/"RGB" → C×H×W float32 in [0, 1]
    read_image / load_image                        one file → its centre square at image_size, as a tensor
    read_each_file(paths, read_one, into, warn)    the tolerant loop: each unreadable file named and left out
    read_image_files(paths, image_size, channels)  read_each_file over read_image
    load_images(paths, size=None, channels=None)   files and folders → one N×C×S×S batch, strictly
    to_unit_float(x), resize_images(x, size)       user tensors → the [0, 1] float batches the nets expect

Files are refused, each with one line naming it (a :class:`ganinv.core.errors.DataError`), when they are missing, a
dangling symbolic link or a symbolic link loop, not a regular file, unreadable, empty, over ``max_bytes`` (the
web page's upload limit; unbounded for local files), not an image Pillow can decode, truncated, larger than
``max_pixels`` (``MAX_IMAGE_PIXELS``, 50 megapixels: checked from the header, before anything is decoded, so a
decompression bomb costs nothing; Pillow's own bomb error gets the same line), or with a short side below
``MIN_IMAGE_SIDE`` (4 px: a 1×1 spacer or a 10000×1 strip holds no picture to invert). Everything Pillow decodes is
accepted: 16-bit, grey, 1-bit, RGBA, LA, CMYK, palette and animated GIF (the first frame), and files whose
extension lies about their format.

Modes: grey files (``GREY_MODES``: "1", "L", "I", "F" and the 16-bit "I;16", "I;16L", "I;16B", "I;16N") become RGB by
replicating the grey level, their 16/32-bit levels scaled to 0…255 (Pillow's own conversion clips them); RGB becomes
grey through Pillow's "L" conversion; images with an alpha channel (``ALPHA_MODES``, and a transparent palette) are
composited on white first; other palettes and CMYK become RGB.

Readers of many user files go through :func:`read_each_file`: an unreadable file becomes a :class:`Skipped` record
(its path and the one-line reason) instead of an exception, and every readable file is still used.
:func:`load_images` is strict where that loop is tolerant: a script that asked for ten images and silently got nine
would misalign every result with its input, so any unreadable file is one DataError naming each such file and why.
Paths in messages go through :func:`display_path`, so a name with a newline or bytes that are not UTF-8 still makes
one printable line; :attr:`Skipped.item` keeps the exact name (``os.fsencode`` gives its bytes back).
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ganinv.core.errors import DataError, GaninvError

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "MIN_IMAGE_SIDE", "GREY_MODES", "ALPHA_MODES", "ImageHeader",
           "ImageFiles", "Skipped", "open_bounded", "read_header", "decode_image", "convert_mode", "image_to_tensor",
           "centre_square", "check_size_channels", "read_image", "load_image", "read_each_file", "read_image_files",
           "expand_image_paths", "list_image_files", "is_image_name", "path_problem", "check_image_file",
           "display_path", "no_usable_images", "load_images", "resize_images", "to_unit_float"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # what a folder scan lists
MAX_IMAGE_PIXELS = 50_000_000  # refused from the header, before decoding (the web page's upload limit too)
MIN_IMAGE_SIDE = 4  # the smallest image_size; a shorter side is a spacer or a strip, not a picture
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")  # and "P" with a transparency entry


# --------------------------------------------------------------------------- paths and reasons
def display_path(path) -> str:
    """A path as one printable line for messages: bytes that are not UTF-8 as \\xNN, control characters (a newline
    in a file name) escaped. Plain names come back unchanged."""
    text = os.fsdecode(path)
    return text if text.isprintable() else "".join(map(_printable, text))


def _printable(ch: str) -> str:
    if ch.isprintable():
        return ch
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _millions(n: float, unit: float) -> str:
    """n / unit for a message: whole numbers for real-world amounts, two digits for the tiny limits tests set."""
    value = n / unit
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _os_reason(path: str, exc: OSError) -> str:
    """Why the operating system will not give us this path's bytes, in one line naming it."""
    shown = display_path(path)
    if exc.errno == errno.ENOENT:
        return f"{shown} is a symbolic link to a missing file" if os.path.islink(path) else f"{shown} does not exist"
    if exc.errno == errno.ELOOP:
        return f"{shown} is a symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot read {shown}: permission denied"
    if exc.errno == errno.EISDIR:
        return f"expected an image file but found a folder: {shown}"
    return f"cannot read {shown}: {exc.strerror or type(exc).__name__}"


def _stat(path: str) -> os.stat_result | str:
    """os.stat, or the reason it failed. Path.exists() would call a symbolic link loop "missing"; the errno
    tells them apart."""
    try:
        return os.stat(path)
    except OSError as exc:
        return _os_reason(path, exc)
    except ValueError:  # a NUL byte in the name
        return f"{display_path(path)} is not a valid path"


def path_problem(path) -> str | None:
    """None when ``path`` can be opened (a file or a folder), else the reason in one line naming it."""
    info = _stat(os.fsdecode(path))
    return info if isinstance(info, str) else None


def check_image_file(path, max_bytes: int | None = None) -> None:
    """DataError unless ``path`` is a non-empty regular file of at most ``max_bytes`` (None: any size): a folder, a
    FIFO or a device would make Pillow fail late or block."""
    path = os.fsdecode(path)
    info = _stat(path)
    if isinstance(info, str):
        raise DataError(info)
    shown = display_path(path)
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"expected an image file but found a folder: {shown}")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{shown} is not a regular file")
    if info.st_size == 0:
        raise DataError(f"{shown} is empty")
    if max_bytes is not None and info.st_size > max_bytes:
        raise DataError(f"{shown} is {_millions(info.st_size, 2**20)} MB; files above "
                        f"{_millions(max_bytes, 2**20)} MB are refused")


@dataclass(frozen=True)
class Skipped:
    """An input left out, and why. ``item`` is its exact name (``os.fsencode(item)`` gives the bytes back; JSON keeps
    undecodable bytes as \\udcXX escapes); ``reason`` is one printable line that names it."""

    item: str
    reason: str

    def to_json(self) -> dict:
        return {"item": self.item, "reason": self.reason}


def no_usable_images(skipped: list[Skipped], what: str = "inputs", named_above: bool = True) -> DataError:
    """The error when every input was skipped: the one reason when it was not named yet, otherwise how many and
    the first (the others were named through ``warn``)."""
    if not skipped:
        return DataError(f"no {what} to read")
    if len(skipped) == 1 and not named_above:
        return DataError(skipped[0].reason)
    return DataError(f"none of the {what} is a usable image ({len(skipped)} skipped, each named above; the first: "
                     f"{skipped[0].reason})")


# --------------------------------------------------------------------------- opening one file, bounded
@dataclass(frozen=True)
class ImageHeader:
    """An image file as stored: its size, Pillow mode and whether it has transparency (for notes such as
    "30×40 → resized" or "transparency flattened onto white")."""

    width: int
    height: int
    mode: str
    alpha: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.mode in GREY_MODES else 3


def _header_of(im: Image.Image) -> ImageHeader:
    alpha = im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info)
    return ImageHeader(*im.size, im.mode, alpha)


def _check_dimensions(path: str, header: ImageHeader, max_pixels: int) -> None:
    shown, (width, height) = display_path(path), (header.width, header.height)
    if width * height > max_pixels:
        raise DataError(f"{shown} is {width}×{height} ({_millions(width * height, 1e6)} megapixels); images above "
                        f"{_millions(max_pixels, 1e6)} megapixels are refused (a decompression bomb?)")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise DataError(f"{shown} is {width}×{height}: too small to invert (the short side must be at least "
                        f"{MIN_IMAGE_SIDE} px)")


@contextlib.contextmanager
def _explained(path: str, max_pixels: int) -> Iterator[None]:
    """Every way Pillow can fail on a file turned into one DataError naming it."""
    shown = display_path(path)
    try:
        yield
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"not a readable image file: {shown} is not an image (not a format PIL can decode)") from None
    except Image.DecompressionBombError:
        raise DataError(f"{shown} is far too large to decode (a decompression bomb?); images above "
                        f"{_millions(max_pixels, 1e6)} megapixels are refused") from None
    except OSError as e:
        if e.errno is not None:  # the file went away or became unreadable between the stat and the read
            raise DataError(_os_reason(path, e)) from None
        raise DataError(f"cannot decode image file {shown}: {_one_line(e)}") from None
    except MemoryError:
        raise DataError(f"cannot decode image file {shown}: out of memory") from None
    except Exception as e:  # Pillow's format plugins raise many types on corrupt input (struct.error, IndexError, …)
        raise DataError(f"cannot decode image file {shown}: {_one_line(e)}") from None


@contextlib.contextmanager
def open_bounded(path, *, max_bytes: int | None = None,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> Iterator[tuple[Image.Image, ImageHeader]]:
    """(Pillow image, header) of a file whose size, header and pixel count were checked; nothing is decoded yet.
    Any failure, inside the ``with`` block too (decoding, converting), is one DataError naming the file."""
    path = os.fsdecode(path)
    check_image_file(path, max_bytes)
    with _explained(path, max_pixels), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own bound is lower; it has its line
        with Image.open(path) as im:  # reads the header only
            header = _header_of(im)
            _check_dimensions(path, header, max_pixels)
            yield im, header


def read_header(path, *, max_bytes: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageHeader:
    """The file's header, every bound of :func:`open_bounded` checked, without decoding its pixels."""
    with open_bounded(path, max_bytes=max_bytes, max_pixels=max_pixels) as (_, header):
        return header


def decode_image(path, channels: int, *, image_size: int | None = None, max_bytes: int | None = None,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, ImageHeader]:
    """A bounded open, decoded, turned upright by its EXIF orientation and converted to "L" (channels=1) or "RGB",
    with its header as stored. ``image_size``: the side it will be resized to (a large JPEG is decoded at a
    reduced scale)."""
    with open_bounded(path, max_bytes=max_bytes, max_pixels=max_pixels) as (im, header):
        if im.format == "JPEG" and image_size is not None:
            im.draft(None, (2 * image_size, 2 * image_size))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale
        im.load()
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block is no reason to refuse the pixels
            pass
        return convert_mode(im, channels), header


# --------------------------------------------------------------------------- modes and tensors
def convert_mode(im: Image.Image, channels: int) -> Image.Image:
    """Any Pillow image as "L" (channels=1) or "RGB" (channels=3): alpha composited on white, 16/32-bit grey
    scaled (see the module doc), then L → RGB replicates the grey level and RGB → L is Pillow's luma."""
    im = _flatten_alpha(_without_palette(im))
    if im.mode in ("I", "F") or im.mode.startswith("I;"):
        im = _deep_grey_to_l(im)
    if im.mode not in ("L", "RGB"):  # "1", CMYK, YCbCr, LAB, HSV, ...
        im = im.convert("L" if im.mode == "1" else "RGB")
    target = "L" if channels == 1 else "RGB"
    return im if im.mode == target else im.convert(target)


def _without_palette(im: Image.Image) -> Image.Image:
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "PA":
        return im.convert("RGBA")
    return im


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """RGBA, LA and their premultiplied forms composited on white, as RGB; other modes unchanged."""
    if im.mode not in ("RGBA", "LA", "RGBa", "La"):
        return im
    if im.mode in ("RGBa", "La"):
        im = im.convert("RGBA" if im.mode == "RGBa" else "LA")
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _deep_grey_to_l(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey ("I;16*", "I", "F") scaled to 8 bits: Pillow's convert("L") clips instead of scaling.
    16-bit modes (and "I" holding values above 255) span 0…65535; "F" spans 0…1 (or 0…255 when it goes higher)."""
    mode = im.mode
    arr = np.asarray(im).astype(np.float64)
    top = 65535.0 if (mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255)) else 255.0
    if mode == "F":
        top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
    arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)  # 2-D uint8 -> "L"


def image_to_tensor(im: Image.Image) -> Tensor:
    """An "L" or "RGB" Pillow image as a C×H×W float32 tensor in [0, 1]."""
    arr = np.array(im, dtype=np.uint8)  # a writable copy
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div_(255.0)


def centre_square(im: Image.Image, image_size: int | None) -> Image.Image:
    """Centre-crop to the square of the short side, then resize to image_size (None: keep the short side)."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    if (w, h) != (s, s):
        im = im.crop((left, top, left + s, top + s))
    if image_size is not None and s != image_size:
        im = im.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return im


# --------------------------------------------------------------------------- one file as a tensor
def check_size_channels(image_size, channels, *, size_optional: bool = False) -> tuple[int | None, int]:
    """(image_size, channels) as ints; DataError unless channels is 1 or 3 and image_size a whole number from
    MIN_IMAGE_SIDE up to the side of a MAX_IMAGE_PIXELS square (a larger output than any accepted input), or None
    where ``size_optional``."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if image_size is None and size_optional:
        return None, int(channels)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise DataError(f"image_size must be an integer, got {image_size!r}")
    largest = int(MAX_IMAGE_PIXELS ** 0.5)
    if not MIN_IMAGE_SIDE <= image_size <= largest:
        raise DataError(f"image_size must be from {MIN_IMAGE_SIDE} to {largest}, got {image_size}")
    return int(image_size), int(channels)


def read_image(path, image_size: int | None, channels: int, *, max_bytes: int | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Tensor, ImageHeader]:
    """One file as a float32 ``channels × S × S`` tensor in [0, 1] (its centre square, resized to S = image_size, or
    the file's own short side when None) and its header as stored. DataError naming the file when it cannot be
    used."""
    image_size, channels = check_size_channels(image_size, channels, size_optional=True)
    im, header = decode_image(path, channels, image_size=image_size, max_bytes=max_bytes, max_pixels=max_pixels)
    return image_to_tensor(centre_square(im, image_size)), header


def load_image(path, image_size: int, channels: int) -> Tensor:
    """Read one image file as a float32 ``channels × image_size × image_size`` tensor in [0, 1].

    The image is centre-cropped to the square of its short side, then resized (antialiased).
    Raises DataError naming the file when it is missing, not an image, truncated, corrupt, too large or too small.
    """
    image_size, channels = check_size_channels(image_size, channels)
    return read_image(path, image_size, channels)[0]


# --------------------------------------------------------------------------- many files, tolerantly
def is_image_name(name: str) -> bool:
    """Whether a folder scan lists the file: not hidden, with one of IMAGE_EXTENSIONS (any case)."""
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_files(root) -> list[str]:
    """Relative POSIX paths of every image under root, sorted; hidden files and folders skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            if is_image_name(name):
                found.append(name if rel_dir == "." else Path(rel_dir, name).as_posix())
    found.sort()
    return found


def expand_image_paths(paths) -> tuple[list[Path], list[Skipped]]:
    """Files and folders (searched recursively, as ``folder:`` datasets are) → (image files in order, skipped).
    A missing path, a dangling symbolic link, a link loop or an image-less folder is reported, not raised."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = os.fsdecode(raw)
        problem = path_problem(path)
        if problem is not None:
            skipped.append(Skipped(path, problem))
        elif os.path.isdir(path):
            found = list_image_files(Path(path))
            if not found:
                skipped.append(Skipped(path, f"{display_path(path)} holds no images (looked for "
                                             f"{', '.join(IMAGE_EXTENSIONS)})"))
            files += [Path(path, rel) for rel in found]
        else:
            files.append(Path(path))
    return files, skipped


@dataclass
class ImageFiles:
    """What :func:`read_image_files` could read: the files, their images (C×S×S each) and headers, in input order,
    and what it skipped."""

    files: list[Path] = field(default_factory=list)
    images: list[Tensor] = field(default_factory=list)
    headers: list[ImageHeader] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, file: Path, image: Tensor, about: ImageHeader) -> None:
        """Keep one file that was read, with what its reader said about it (here: its header)."""
        self.files.append(file)
        self.images.append(image)
        self.headers.append(about)

    def batch(self) -> Tensor:
        """The images as one N×C×S×S batch (they must share a size: read with an image_size)."""
        return torch.stack(self.images)


def _silent(message: str) -> None:
    pass


def read_each_file(paths, read_one: Callable[[Path], tuple[Tensor, object]], into: ImageFiles,
                   warn: Callable[[str], None] = _silent) -> ImageFiles:
    """Files and folders → ``into``, with ``into.add(file, *read_one(file))`` for each file that can be used.

    Each file ``read_one`` refuses (a DataError) is named with its reason through ``warn`` (one line) and left out.
    When none can be used it is a DataError: the one reason, or how many (each named through ``warn`` first)."""
    files, skipped = expand_image_paths(paths)
    into.skipped.extend(skipped)
    for f in files:
        try:
            image, about = read_one(f)
        except DataError as exc:
            into.skipped.append(Skipped(os.fsdecode(f), str(exc)))
            continue
        into.add(f, image, about)
    if not into.files and len(into.skipped) <= 1:
        raise no_usable_images(into.skipped, named_above=False)  # the error line is the one reason
    for s in into.skipped:
        warn(s.reason)
    if not into.files:
        raise no_usable_images(into.skipped)
    return into


def read_image_files(paths, image_size: int | None, channels: int,
                     warn: Callable[[str], None] = _silent) -> ImageFiles:
    """Files and folders → every readable image, at ``image_size`` (None: each at its own short side); see
    :func:`read_each_file` for what is skipped and named."""
    return read_each_file(paths, lambda f: read_image(f, image_size, channels), ImageFiles(), warn)


# --------------------------------------------------------------------------- the public API's batches
def load_images(paths: str | os.PathLike | Iterable[str | os.PathLike], size: int | None = None,
                channels: int | None = None) -> Tensor:
    """Image files (and folders, searched recursively) → one N×C×S×S float32 batch in [0, 1], in input order.

    Each image is centre-cropped to the square of its short side and resized to ``size`` (antialiased; None keeps
    the files' own size, which must then be the same for all). ``channels``: 1 (grey) or 3 (RGB); None gives 1 when
    every file is grey and 3 otherwise. Any file that cannot be read is a DataError naming it and the reason."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    found = read_image_files(list(paths), size, 3 if channels is None else channels)
    if found.skipped:
        reasons = "; ".join(s.reason for s in found.skipped)
        raise DataError(f"cannot read {len(found.skipped)} of the images: {reasons}")
    sizes = [tuple(image.shape[1:]) for image in found.images]
    if len(set(sizes)) > 1:
        shown = ", ".join(f"{display_path(f)} {h}×{w}" for f, (h, w) in zip(found.files, sizes))
        raise DataError(f"the images have different sizes ({shown}); pass size=S to resize them all to S×S")
    batch = found.batch()
    if channels is None and all(header.channels == 1 for header in found.headers):
        batch = batch[:, :1].contiguous()  # read as RGB, a grey file's three channels are equal: keep one
    return batch


def to_unit_float(x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Images in [0, 1]: uint8 tensors (0..255) are divided by 255 into ``dtype``; floating tensors are returned as
    they are (their range is checked by the caller). Any other type is a GaninvError: its scale is a guess."""
    if not isinstance(x, Tensor):
        raise GaninvError(f"images must be a torch tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.to(dtype).div_(255)
    if not x.is_floating_point():
        raise GaninvError(f"images must be floating point in [0, 1] or uint8 in 0..255, got {x.dtype}")
    return x


def resize_images(x: Tensor, size: int) -> Tensor:
    """N×C×H×W → N×C×size×size, antialiased bilinear (a plain bilinear shrink aliases fine detail into noise).
    Clamped, so [0, 1] stays [0, 1] whatever the filter's rounding."""
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
