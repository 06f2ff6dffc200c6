"""Images for the public API: files → one batch, and user tensors → the [0, 1] float batches the nets expect.

    load_images(paths, size=None, channels=None)    files and folders → N×C×S×S float32 in [0, 1]
    to_unit_float(x)                                 uint8 0..255 → float in [0, 1]; float tensors unchanged
    resize_images(x, size)                           antialiased bilinear to size × size, kept inside [0, 1]

``load_images`` is strict where the CLI is tolerant: a script that asked for ten images and silently got nine
would misalign every result with its input, so any unreadable file is one DataError naming each such file and why.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganinv.core.errors import DataError, GaninvError
from ganinv.data.datasets import display_path, read_image_files

__all__ = ["load_images", "resize_images", "to_unit_float"]


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
