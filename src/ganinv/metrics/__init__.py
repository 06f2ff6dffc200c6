"""Image metrics for judging reconstructions: PSNR, SSIM, LPIPS (when available offline) and dHash; and for judging
generated images as a set: the Fréchet distance (FID / FD-domain) and the kernel distance (KID / KID-domain) of
metrics/fid.py.

``reconstruction_metrics`` is the one-call summary used by evaluation code and the CLI.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.metrics.fid import frechet_distance, kernel_distance
from ganinv.metrics.hashes import colour_histogram, dhash_bits, dhash_similarity, phash_bits, to_pil
from ganinv.metrics.image import lpips, lpips_status, psnr, ssim

__all__ = [
    "MetricInputError",
    "colour_histogram",
    "dhash_bits",
    "dhash_similarity",
    "frechet_distance",
    "kernel_distance",
    "lpips",
    "lpips_status",
    "phash_bits",
    "psnr",
    "reconstruction_metrics",
    "ssim",
    "to_pil",
]


class MetricInputError(GaninvError, ValueError):
    """Images handed to the metrics that cannot be compared (a ValueError and a GaninvError)."""


def _validate(original: Tensor, reconstruction: Tensor) -> None:
    for name, t in (("original", original), ("reconstruction", reconstruction)):
        if not isinstance(t, Tensor):
            raise MetricInputError(f"reconstruction_metrics: {name} must be a torch tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise MetricInputError(
                f"reconstruction_metrics: {name} must be 4-D (N x C x H x W), got shape {tuple(t.shape)}"
            )
    if original.shape != reconstruction.shape:
        raise MetricInputError(
            "reconstruction_metrics: original and reconstruction shapes differ: "
            f"{tuple(original.shape)} vs {tuple(reconstruction.shape)}"
        )
    if original.shape[0] == 0:
        raise MetricInputError("reconstruction_metrics: empty batch (N = 0)")
    if original.shape[1] not in (1, 3):
        raise MetricInputError(
            f"reconstruction_metrics: expected 1 or 3 channels, got {original.shape[1]} (shape {tuple(original.shape)})"
        )
    for name, t in (("original", original), ("reconstruction", reconstruction)):
        if not t.is_floating_point():
            raise MetricInputError(f"reconstruction_metrics: {name} must be a float tensor in [0, 1], got {t.dtype}")
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise MetricInputError(f"reconstruction_metrics: {name} contains {bad} non-finite value(s) (NaN or inf)")


def reconstruction_metrics(original: Tensor, reconstruction: Tensor) -> dict[str, float]:
    """Batch means as Python floats: ``psnr`` (dB; inf if every pair is identical), ``ssim``,
    ``dhash_similarity`` and, only when LPIPS weights are on disk, ``lpips``.

    Raises ``MetricInputError`` (a ``ValueError``) for non-4-D, mismatched, empty or non-finite input.
    """
    _validate(original, reconstruction)
    with torch.no_grad():
        out = {
            "psnr": float(psnr(original, reconstruction).double().mean()),
            "ssim": float(ssim(original, reconstruction).double().mean()),
            "dhash_similarity": float(dhash_similarity(original, reconstruction).mean()),
        }
        lp = lpips(original, reconstruction)
    if lp is not None:
        out["lpips"] = float(lp.double().mean())
    return out
