"""Image grids a person would rather look at than read: originals above their reconstructions."""
from __future__ import annotations

import base64
import importlib.util
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ganinv.core.bounds import image_format
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write


MIN_TILE = 64  # tiles are upscaled (nearest, so pixels stay visible) to at least this many pixels a side
FONT_SIZE = 13
# The largest grid drawn: Pillow's own decompression-bomb limit (89 megapixels), so every grid we write opens in
# Pillow without a warning; drawing one takes about 12 bytes a pixel (float and 8-bit copies), about 1 GiB here.
MAX_GRID_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS as Pillow ships it


def grid_pixels(rows: int, columns: int, side: int, min_tile: int = MIN_TILE) -> int:
    """The tiles' pixels of a ``labelled_grid`` of rows × columns images of side px (labels left out)."""
    tile = side * max(1, -(-min_tile // side)) + 2
    return rows * columns * tile * tile


def check_grid_size(rows: int, columns: int, side: int, advice: str, min_tile: int = MIN_TILE) -> None:
    """Refuse, in one line and before anything is generated, a grid larger than MAX_GRID_PIXELS."""
    pixels = grid_pixels(rows, columns, side, min_tile)
    if pixels > MAX_GRID_PIXELS:
        raise GaninvError(f"a grid of {rows} rows × {columns} images of {side} px would have {pixels / 1e6:.0f} "
                          f"megapixels (at most {MAX_GRID_PIXELS / 1e6:.0f}); {advice}")


def label_font() -> ImageFont.ImageFont:
    """DejaVu Sans (shipped inside matplotlib, a dependency) for labels: Pillow's default font lacks σ, λ, −, →;
    Pillow's default when matplotlib's copy cannot be found."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), FONT_SIZE)
    return ImageFont.load_default(size=FONT_SIZE)


def labelled_grid(rows: list[Tensor], row_labels: list[str], *, column_labels: list[str] | None = None,
                  title: str | None = None, captions: list[list[str]] | None = None,
                  min_tile: int = MIN_TILE) -> Tensor:
    """Rows of images with a label left of each row, optionally a label above each column, a caption under each
    image (``captions[row][column]``, e.g. a file name or a distance) and a title; tiles upscaled by an integer
    factor with nearest-neighbour so small images stay readable. Column labels and captions are never cut: a long
    one folds onto more lines under its tile (at spaces where it can, "\n" starts a line). Returns one C×H×W image
    in [0, 1]."""
    if len(rows) != len(row_labels) or (captions is not None and len(captions) != len(rows)):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} row labels"
                         + (f" and {len(captions)} caption rows" if captions is not None else ""))
    n, side = max(len(r) for r in rows), rows[0].shape[-1]
    check_grid_size(len(rows), n, side, "show fewer images", min_tile)
    factor = max(1, -(-min_tile // side))
    font = label_font()
    strips = [_row_strip(r, n, factor) for r in rows]
    line, tile = FONT_SIZE + 6, side * factor + 2
    heads = [fold(text, font, tile - 2) for text in column_labels or []]
    notes = [[fold(text, font, tile - 2) for text in row] for row in captions or [[] for _ in rows]]
    label_width = max(int(font.getlength(text)) for text in row_labels) + 10
    top = (line if title else 0) + line * max((len(h) for h in heads), default=0)
    below = [line * max((len(c) for c in row), default=0) for row in notes]  # each row's caption lines
    width = max(label_width + strips[0].width, int(font.getlength(title or "")) + 8)
    canvas = Image.new("RGB", (width, top + sum(s.height for s in strips) + sum(below)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill="black", font=font)
    for j, lines in enumerate(heads):
        _draw_lines(draw, lines, (label_width + 2 + j * tile, (line if title else 0) + 2), line, "black", font)
    y = top
    for strip, text, row_notes, height in zip(strips, row_labels, notes, below):
        canvas.paste(strip, (label_width, y))
        draw.text((4, y + strip.height // 2 - FONT_SIZE // 2), text, fill="black", font=font)
        for j, lines in enumerate(row_notes):
            _draw_lines(draw, lines, (label_width + 2 + j * tile, y + strip.height + 2), line, "dimgray", font)
        y += strip.height + height
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], at: tuple[int, int], line: int, fill: str,
                font) -> None:
    x, y = at
    for i, text in enumerate(lines):
        draw.text((x, y + i * line), text, fill=fill, font=font)


def fold(text: str, font, width: int) -> list[str]:
    """``text`` as lines at most ``width`` pixels wide in ``font``: broken at spaces where it can, inside a word
    (a file name) where it must, and at every "\n"; no character is dropped."""
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= width or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
            while len(current) > 1 and font.getlength(current) > width:  # one word wider than the tile
                cut = max(1, max(i for i in range(1, len(current) + 1) if font.getlength(current[:i]) <= width
                                 or i == 1))
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines


def rows_of(images: Tensor, per_row: int) -> list[Tensor]:
    """A batch cut into grid rows of ``per_row`` images."""
    return [images[i:i + per_row] for i in range(0, len(images), per_row)]


def _row_strip(images: Tensor, n: int, factor: int) -> Image.Image:
    """One grid row as a PIL image: the images upscaled by ``factor`` (nearest), padded to ``n`` tiles."""
    x = images.detach().float().cpu().clamp(0, 1)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    x = torch.nn.functional.interpolate(x, scale_factor=factor, mode="nearest") if factor > 1 else x
    if len(x) < n:
        x = torch.cat([x, torch.ones(n - len(x), *x.shape[1:])])
    grid = make_grid(x, nrow=n, padding=2, pad_value=1.0)
    return Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def save_png(image: Tensor, path: str | Path) -> None:
    """Save a grid (C×H×W) or a batch (N×C×H×W) as one image, atomically, in the format the suffix of ``path``
    names (.png, .jpg, .webp, …: ``core.bounds.IMAGE_FORMATS``); any other suffix is refused in one line before
    anything is written. The name stays: almost every caller writes .png."""
    fmt = image_format(path)
    picture = _to_pil(image)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}  # Pillow's default 75 smears thin grid lines

    atomic_write(path, lambda tmp: picture.save(tmp, format=fmt, **options))


def _to_pil(image: Tensor) -> Image.Image:
    """The 8-bit RGB picture torchvision's ``save_image`` would write for this grid or batch."""
    grid = make_grid(image.detach().float().cpu().clamp(0, 1))
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def png_data_uri(image: Tensor) -> str:
    """A PNG embedded as a data URI, for self-contained HTML reports."""
    buffer = io.BytesIO()
    save_image(image.detach().float().cpu().clamp(0, 1), buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
