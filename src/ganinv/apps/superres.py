"""Super-resolution by inversion (AEGAN §4.3, Arfeen & Zhang §4.2): a blurred or downsampled image → invert → G.

The generator only knows images of its own shape, so a low-resolution input is first brought to the run's shape
(bicubic, channels converted) and the reconstruction is brought back to the shape the caller asks for: the
result always has the clean image's N×C×H×W, whatever the run's shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganinv.apps import Warn, convert_channels, fit_to_run, load_inverter, read_images, resize, silent
from ganinv.core.errors import GaninvError
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import ImageFiles, Skipped, degrade, display_path, read_image_files
from ganinv.inference.evaluate import generated_batch
from ganinv.inference.model import InversionModel
from ganinv.metrics import psnr, ssim

DEFAULT_SIGMAS = (1.0, 2.0, 3.0)
DEFAULT_FACTORS = (2, 4, 8)


def check_degradation(sigma: float | None = None, factor: int | None = None) -> None:
    if sigma is not None and factor is not None:
        raise GaninvError("give either --sigma (blur) or --factor (downsampling), not both")
    if sigma is not None and not (sigma >= 0 and np.isfinite(sigma)):
        raise GaninvError(f"--sigma must be a finite number ≥ 0, got {sigma}")
    if factor is not None and (isinstance(factor, bool) or not np.isfinite(factor) or int(factor) != factor
                               or factor < 1):
        raise GaninvError(f"--factor must be an integer ≥ 1, got {factor}")


def check_conditions(sigmas, factors, side: int) -> tuple[list[float], list[int]]:
    """(σ values, integer factors) of an evaluation, each checked before anything is generated: a σ finite and ≥ 0,
    a factor an integer from 1 to the image side (``--factors 0`` divided by zero)."""
    for sigma in sigmas:
        if isinstance(sigma, bool) or not (np.isfinite(sigma) and sigma >= 0):
            raise GaninvError(f"--sigmas must be finite numbers ≥ 0, got {sigma}")
    for factor in factors:
        if isinstance(factor, bool) or not np.isfinite(factor) or int(factor) != factor or not 1 <= factor <= side:
            raise GaninvError(f"--factors must be integers from 1 to the run's image side {side}, got {factor:g}")
    return [float(s) for s in sigmas], [int(f) for f in factors]


def degrade_image(clean: Tensor, *, sigma: float | None = None, factor: int | None = None) -> Tensor:
    """The degraded observation: a gaussian blur (same size) or an area-downsampled image (H/f × W/f)."""
    check_degradation(sigma, factor)
    if sigma is not None:
        return degrade.gaussian_blur(clean, sigma=sigma)
    if factor is not None:
        h, w = clean.shape[-2:]
        if h // factor < 1 or w // factor < 1:
            raise GaninvError(f"--factor {factor} is too large for {h}×{w} images")
        return torch.nn.functional.interpolate(clean, size=(h // factor, w // factor), mode="area").clamp(0, 1)
    return clean


def super_resolve(model: InversionModel, low: Tensor, size: tuple[int, int] | None = None,
                  channels: int | None = None) -> Tensor:
    """G(invert(low)) at ``size`` (default: low's own size) with ``channels`` (default: low's): low is resized to
    the run's shape (bicubic) and converted to its channel count, inverted and regenerated, and the result is
    resized/converted back, so it is N×channels×size."""
    if low.ndim != 4 or low.shape[0] == 0:
        raise GaninvError(f"super_resolve needs an N×C×H×W batch, got {tuple(low.shape)}")
    size = tuple(size) if size is not None else tuple(low.shape[-2:])
    channels = channels or low.shape[1]
    with torch.inference_mode():
        x = fit_to_run(low.float().clamp(0, 1), model.image_shape)
        out = model.reconstruct(x).float().cpu()
    return resize(convert_channels(out, channels), size).clamp(0, 1)


def upsample(low: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """The classical baselines: ``bicubic`` upsampling, and ``nearest`` (the degraded input shown as it is)."""
    return resize(low, size, mode=mode)


def compare(clean: Tensor, *, sigma: float | None = None, factor: int | None = None,
            model: InversionModel) -> dict[str, Tensor]:
    """Every image row of a super-resolution figure, all at the clean image's shape."""
    size = tuple(clean.shape[-2:])
    low = degrade_image(clean, sigma=sigma, factor=factor)
    rows = {"clean": clean, "degraded": upsample(low, size, "nearest")}
    if factor is not None and factor > 1:
        rows["bicubic"] = upsample(low, size, "bicubic")
    rows["inverted"] = super_resolve(model, low, size, clean.shape[1])
    return rows


@dataclass(frozen=True)
class SuperResolved:
    """What ``super_resolve_files`` wrote: the grid's rows (names), the files shown (one column each), the skipped
    files and — when the images were degraded here from the clean files — each row's PSNR / SSIM against the
    clean image, per file: ``scores[row] = {"psnr": [...], "ssim": [...]}``."""

    rows: list[str]
    files: list[Path]
    skipped: list[Skipped]
    scores: dict[str, dict[str, list[float]]]

    @property
    def n(self) -> int:
        return len(self.files)


def super_resolve_files(run: str | Path, images: list[str | Path], out: str | Path, *, sigma: float | None = None,
                        factor: int | None = None, warn: Warn = silent) -> SuperResolved:
    """``ganinv superres``: a grid PNG at ``out``, a column per file under its name.

    With ``sigma`` or ``factor`` each file is read at the run's shape and degraded first: a demonstration against
    the clean image (``compare``'s rows), each degraded / bicubic / inverted image captioned with its PSNR and SSIM
    against the clean one. Without, each file is the low-resolution input as it is (read at its own short side):
    rows input (nearest), bicubic and inverted, at the run's size, and nothing to score them against."""
    check_degradation(sigma, factor)
    model = load_inverter(run)
    if sigma is None and factor is None:
        read = read_image_files(images, None, model.image_shape[0], warn=warn)
        rows, scores = _as_low_resolution(model, read, warn), {}
    else:
        read = read_images(images, model.image_shape, warn=warn)
        rows = compare(read.batch(), sigma=sigma, factor=factor, model=model)
        scores = {name: per_image_scores(rows["clean"], image) for name, image in rows.items() if name != "clean"}
    what = f"blur σ={sigma:g}" if sigma is not None else f"downsampled ×{factor}" if factor else "low-resolution input"
    captions = [[f"{p:.2f} dB\n{q:.3f}" for p, q in zip(scores[name]["psnr"], scores[name]["ssim"])]
                if name in scores else [""] * len(read.files) for name in rows]
    title = f"super-resolution by inversion ({what})" + (": PSNR and SSIM against the clean image under each"
                                                          if scores else "")
    save_png(labelled_grid(list(rows.values()), list(rows), title=title, captions=captions,
                           column_labels=[display_path(f.name) for f in read.files]), out)
    return SuperResolved(list(rows), list(read.files), list(read.skipped), scores)


def per_image_scores(clean: Tensor, other: Tensor) -> dict[str, list[float]]:
    return {"psnr": psnr(clean, other).tolist(), "ssim": ssim(clean, other).tolist()}


def _as_low_resolution(model: InversionModel, read: ImageFiles, warn: Warn) -> dict[str, Tensor]:
    channels, size, _ = model.image_shape
    rows: dict[str, list[Tensor]] = {"input (nearest)": [], "bicubic": [], "inverted": []}
    for f, image in zip(read.files, read.images):
        low, side = image.unsqueeze(0), image.shape[-1]
        if side != size:
            warn(f"{display_path(f)}: {side}×{side} (centre crop) → super-resolved to {size}×{size}")
        rows["input (nearest)"].append(upsample(low, (size, size), "nearest"))
        rows["bicubic"].append(upsample(low, (size, size), "bicubic"))
        rows["inverted"].append(super_resolve(model, low, (size, size), channels))
    return {name: torch.cat(row) for name, row in rows.items()}


def _scores(clean: Tensor, other: Tensor) -> dict[str, float]:
    return {"psnr": float(psnr(clean, other).double().mean()), "ssim": float(ssim(clean, other).double().mean())}


def evaluate_superres(model: InversionModel, *, real: Tensor | None = None, n: int = 64, seed: int = 0,
                      sigmas=DEFAULT_SIGMAS, factors=DEFAULT_FACTORS) -> list[dict]:
    """Rows of PSNR/SSIM against the clean image for every σ and factor, for the degraded input itself, bicubic
    upsampling (factors only) and inversion, on generated images and (when given) real ones."""
    sigmas, factors = check_conditions(sigmas, factors, model.image_shape[-1])
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise GaninvError(f"--n must be a positive integer, got {n}")
    sets = {"generated": generated_batch(model, n, seed).cpu()}
    if real is not None and len(real):
        sets["real"] = real[:n].float()
    rows = []
    for images_name, clean in sets.items():
        conditions = [("none", None, None)] + [(f"blur σ={s:g}", s, None) for s in sigmas] + \
                     [(f"down ×{f} ({clean.shape[-1] // f}px)", None, f) for f in factors]
        for label, sigma, factor in conditions:
            result = compare(clean, sigma=sigma, factor=factor, model=model)
            for name, image in result.items():
                if name == "clean" or (label == "none" and name == "degraded"):
                    continue
                rows.append({"images": images_name, "n": len(clean), "degradation": label, "method": name,
                             **_scores(clean, image)})
    return rows
