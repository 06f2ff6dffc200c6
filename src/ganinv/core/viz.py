"""Image grids a person would rather look at than read: originals above their reconstructions."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ganinv.core.io import atomic_write


def comparison_grid(rows: list[Tensor], pad_value: float = 1.0) -> Tensor:
    """Stack equally long batches as grid rows: e.g. [originals, reconstructions, …] → one C×H×W image."""
    n = min(len(r) for r in rows)
    images = torch.cat([r[:n].detach().float().cpu().clamp(0, 1) for r in rows])
    return make_grid(images, nrow=n, padding=2, pad_value=pad_value)


def save_png(image: Tensor, path: str | Path) -> None:
    """Save a grid (C×H×W) or a batch (N×C×H×W) as one PNG, atomically."""
    def write(tmp: str) -> None:
        save_image(image.detach().float().cpu().clamp(0, 1), tmp, format="png")

    atomic_write(path, write)


def png_data_uri(image: Tensor) -> str:
    """A PNG embedded as a data URI, for self-contained HTML reports."""
    buffer = io.BytesIO()
    save_image(image.detach().float().cpu().clamp(0, 1), buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
