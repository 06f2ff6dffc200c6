"""Per-image reconstruction metrics: PSNR, SSIM and (when its weights are available) LPIPS.

All functions take float tensors ``N x C x H x W`` in ``[0, 1]`` (C is 1 or 3) and return one value
per image (shape ``N``).

LPIPS's weights, the one policy: the torchvision AlexNet checkpoint in the torch hub cache (``TORCH_HOME``) is used
when present; when it is missing it is downloaded on first use, as torchvision itself would (one line on stderr says
so), through ``download_file`` alone — short socket timeouts, a size bound, torchvision's sha256 prefix checked — unless
``GANINV_OFFLINE`` or ``HF_HUB_OFFLINE`` is set; offline (or when the download fails) the reason is one line naming the
file to place and where. A downloaded file passes the same checks as a placed one before torchvision reads it. The
linear layers ship inside torchmetrics' package (never downloaded).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ganinv.core import safe_files
from ganinv.core.offline import OFFLINE_VARIABLES, download_whole, downloads_forbidden  # re-exported: core's

__all__ = ["psnr", "ssim", "lpips_status", "lpips", "lpips_weights_path", "download_file", "downloads_forbidden",
           "OFFLINE_VARIABLES"]

# Smallest side AlexNet (the LPIPS backbone) accepts is 31 px; smaller images are upsampled to this.
_LPIPS_MIN_SIDE = 32
# Default SSIM gaussian window (Wang et al. 2004) and its sigma.
_SSIM_KERNEL = 11
_SSIM_SIGMA = 1.5


def _check_pair(x: Tensor, y: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"{name}: expected two torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.ndim != 4 or y.ndim != 4:
        raise ValueError(f"{name}: expected 4-D N x C x H x W tensors, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Per-image PSNR in dB (data range 1.0), shape ``N``; ``inf`` for identical images.

    Computed in float64 so that known values (e.g. a constant 0.1 offset gives 20 dB) come out exactly.
    """
    _check_pair(x, y, "psnr")
    out = peak_signal_noise_ratio(
        x.double(), y.double(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return out.reshape(x.shape[0]).to(x.dtype if x.is_floating_point() else torch.float32)


def _ssim_kernel_size(h: int, w: int) -> int:
    """Largest odd window <= 11 that leaves a valid interior on an ``h x w`` image (7 at 16 px)."""
    k = min(_SSIM_KERNEL, min(h, w) // 2)
    if k % 2 == 0:
        k -= 1
    if k < 3:
        raise ValueError(f"ssim: images of {h}x{w} are too small (need at least 6 px on each side)")
    return k


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-image SSIM, shape ``N`` (gaussian window 11, shrunk to 7 for images under 22 px)."""
    _check_pair(x, y, "ssim")
    k = _ssim_kernel_size(x.shape[-2], x.shape[-1])
    out = structural_similarity_index_measure(
        x.float(), y.float(), gaussian_kernel=True, sigma=_SSIM_SIGMA, kernel_size=k,
        data_range=1.0, reduction="none",
    )
    return out.reshape(x.shape[0])


# ----------------------------------------------------------------------------------------- LPIPS

_lock = threading.Lock()
_LPIPS_CACHE: dict[str, object] = {}  # "module" -> built metric, "error" -> message of a failed build


def lpips_weights_path() -> Path:
    """Where torchvision looks for the AlexNet ImageNet checkpoint (the LPIPS backbone)."""
    from torchvision.models import AlexNet_Weights  # deferred: torchvision's model zoo is slow to import

    filename = os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _torchmetrics_lin_weights() -> Path:
    import torchmetrics.functional.image.lpips as tm_lpips  # deferred: loads torchvision's AlexNet code

    return Path(tm_lpips.__file__).resolve().parent / "lpips_models" / "alex.pth"


# --- downloads: the one place ganinv fetches anything, and the switches that forbid it --------------------------------

DOWNLOAD_TIMEOUT_S = 10.0  # each connect / read may wait this long: an offline machine answers in seconds, not minutes
LPIPS_BACKBONE_MAX_BYTES = 512 << 20  # the AlexNet checkpoint is 233 MiB
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: a sha256 prefix in the file name


def download_file(url: str, dest: Path, *, timeout_s: float, max_bytes: int) -> None:
    """``url`` -> ``dest``, whole or not at all (``core.offline.download_whole``), at most ``max_bytes``, the sha256
    prefix a torch.hub file name carries checked. Tests replace this function: nothing else in ganinv opens a URL."""
    digest = hashlib.sha256()

    def hashed(chunk: bytes, room: int) -> bytes:
        digest.update(chunk)
        return chunk

    def matches_name() -> None:
        expected = _HASH_IN_NAME.search(dest.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise OSError(f"the file's sha256 does not start with {expected.group(1)}, as its name says")

    download_whole(url, dest, timeout_s=timeout_s, max_bytes=max_bytes, decode=hashed, check=matches_name)


def _fetch_backbone(backbone: Path, url: str) -> str | None:
    """Download the AlexNet checkpoint on first use, as torchvision would: None once it is on disk, else why not."""
    forbidden = downloads_forbidden()
    if forbidden is not None:
        return f"downloads are off ({forbidden})"
    print(f"LPIPS: downloading the AlexNet backbone weights {url} to {backbone} (first use; set GANINV_OFFLINE=1 "
          "to never download)", file=sys.stderr)
    try:
        download_file(url, backbone, timeout_s=DOWNLOAD_TIMEOUT_S, max_bytes=LPIPS_BACKBONE_MAX_BYTES)
    except Exception as exc:  # offline, refused, timed out, a bad file: the reason joins the one line
        reason = " ".join(str(exc).split()) or "no reason given"
        return f"downloading it from {url} failed ({type(exc).__name__}: {reason})"
    return None if backbone.is_file() else f"downloading it from {url} left no file"


def _missing_backbone(backbone: Path) -> str | None:
    """None when the AlexNet checkpoint is on disk (downloaded now if need be); else the one line naming the file.
    A failed download is remembered for the process (keyed by path): later checks do not wait on the network again."""
    from torchvision.models import AlexNet_Weights  # deferred: torchvision's model zoo is slow to import

    if backbone.is_file():
        return None
    key = f"missing:{backbone}"
    if key not in _LPIPS_CACHE:
        url = AlexNet_Weights.IMAGENET1K_V1.url
        reason = _fetch_backbone(backbone, url)
        if reason is None:
            return None
        _LPIPS_CACHE[key] = (
            f"LPIPS unavailable: the AlexNet backbone weights '{backbone.name}' are missing and {reason}. "
            f"Put that file at {backbone} (it is {url}; set TORCH_HOME to use another cache directory)."
        )
    return str(_LPIPS_CACHE[key])


def _missing_message() -> str | None:
    """Why LPIPS cannot be built, or None when every file it needs is on disk (the backbone fetched if allowed)."""
    missing = _missing_backbone(lpips_weights_path())
    if missing is not None:
        return missing
    lin = _torchmetrics_lin_weights()
    if not lin.is_file():
        return (
            f"LPIPS unavailable: torchmetrics' LPIPS linear-layer weights '{lin.name}' are missing "
            f"from the installed package (expected at {lin}); reinstall torchmetrics >= 1.3."
        )
    return None


def lpips_metric() -> object:
    """The torchmetrics LPIPS metric (built once, shared: ``lpips`` and the optimisation losses use it), or
    RuntimeError with the reason it is unavailable."""
    with _lock:
        path = str(lpips_weights_path())
        cached = _LPIPS_CACHE.get(path)
        if cached is not None:
            return cached
        missing = _missing_message()
        if missing is not None:
            raise RuntimeError(missing)
        stat = os.stat(path)
        error_key = f"error:{path}:{stat.st_mtime_ns}:{stat.st_size}"  # retried once the file changes
        if error_key in _LPIPS_CACHE:
            raise RuntimeError(str(_LPIPS_CACHE[error_key]))
        try:
            # torchvision reads this cache file with torch.load's full unpickler (weights_only off): tensors only
            safe_files.torch_load_tensors(path, "LPIPS backbone weights", max_bytes=512 << 20, legacy=True)
            from torchmetrics.image.lpip import (
                LearnedPerceptualImagePatchSimilarity,  # deferred: loads torchvision's AlexNet code
            )

            metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="none", normalize=True)
            metric.eval()
        except Exception as exc:  # corrupt checkpoint, incompatible torchmetrics, ...
            msg = (
                f"LPIPS unavailable: building torchmetrics' LPIPS from {path} failed "
                f"({type(exc).__name__}: {exc}). Replace that file with the original torchvision checkpoint."
            )
            _LPIPS_CACHE[error_key] = msg
            raise RuntimeError(msg) from exc
        _LPIPS_CACHE[path] = metric
        return metric


def lpips_status() -> tuple[bool, str]:
    """``(available, message)``. Local files first; a missing backbone is downloaded on first use unless downloads
    are off or fail (see the module doc), and then the message is the one line naming the file to place."""
    try:
        lpips_metric()
    except RuntimeError as exc:
        return False, str(exc)
    return True, f"LPIPS available (AlexNet backbone from {lpips_weights_path()})"


def lpips(x: Tensor, y: Tensor) -> Tensor | None:
    """Per-image LPIPS (AlexNet), shape ``N``, or ``None`` when the weights are not on disk.

    Inputs in ``[0, 1]``; grey images are repeated to 3 channels, images under 32 px on a side are
    upsampled bilinearly to 32 px (AlexNet's minimum).  Not differentiable (torchmetrics runs it without grad).
    """
    _check_pair(x, y, "lpips")
    try:
        metric = lpips_metric()
    except RuntimeError:
        return None
    n = x.shape[0]
    if n == 0:
        return torch.zeros(0, device=x.device)
    x = x.detach().float().clamp(0.0, 1.0)
    y = y.detach().float().clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x, y = x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        raise ValueError(f"lpips: expected 1 or 3 channels, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if min(h, w) < _LPIPS_MIN_SIDE:
        scale = _LPIPS_MIN_SIDE / min(h, w)
        size = (max(_LPIPS_MIN_SIDE, round(h * scale)), max(_LPIPS_MIN_SIDE, round(w * scale)))
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0.0, 1.0)
        y = torch.nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    with _lock:
        metric = metric.to(x.device)  # type: ignore[attr-defined]
        try:
            with torch.no_grad():
                out = metric(x, y)  # type: ignore[operator]
        finally:
            metric.reset()  # type: ignore[attr-defined]
    return out.reshape(n).float()
