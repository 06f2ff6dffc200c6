"""Image degradations for super-resolution, robustness of latent search, and tests.

Every function takes a float batch ``x`` of shape N×C×H×W with values in [0, 1] and returns a
new tensor of the same shape, dtype and device, clamped to [0, 1]. Random degradations draw
from ``generator`` when one is given (a CPU generator works for CUDA inputs too), so results
are reproducible. Invalid arguments raise ValueError.

``DEGRADATIONS`` maps the names "blur", "downsample", "noise", "occlude" and "colour" to the
functions; every parameter has a default, so ``DEGRADATIONS[name](x)`` works.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur", "downsample", "add_noise", "occlude", "colour_shift", "DEGRADATIONS"]


def _check_batch(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name}: expected a batch of shape N×C×H×W, got a tensor of shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor in [0, 1], got dtype {x.dtype}")
    return x


def _check_number(value, name: str, what: str, low: float = 0.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < low:
        raise ValueError(f"{name}: {what} must be a finite number >= {low:g}, got {value!r}")
    return v


def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(like.device, like.dtype)


def _randint(high: int, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randint(0, high, (n,), generator=generator, device=gen_device).to(device)


def gaussian_blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (0 leaves the image unchanged): torchvision's
    ``gaussian_blur``, borders reflected.

    torchvision leaves the kernel size to the caller; ours is 2·ceil(3σ)+1 pixels (±3σ holds 99.7% of the
    weight), capped at 2·min(H, W)−1, the widest kernel a reflected border allows.
    """
    from torchvision.transforms.functional import gaussian_blur as blur  # deferred: torchvision is slow to import

    x = _check_batch(x, "gaussian_blur")
    sigma = _check_number(sigma, "gaussian_blur", "sigma")
    k = min(2 * math.ceil(3.0 * sigma) + 1, 2 * min(x.shape[-2:]) - 1)
    if sigma == 0.0 or k <= 1:
        return x.clamp(0.0, 1.0)
    return blur(x, [k, k], [sigma, sigma]).clamp_(0.0, 1.0)


def downsample(x: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Area-downsample by an integer ``factor`` (to floor(H/f)×floor(W/f)), then bicubic-upsample back."""
    x = _check_batch(x, "downsample")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or int(factor) != factor:
        raise ValueError(f"downsample: factor must be an integer >= 1, got {factor!r}")
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"downsample: factor must be an integer >= 1, got {factor}")
    if factor == 1:
        return x.clamp(0.0, 1.0)
    h, w = x.shape[-2:]
    sh, sw = h // factor, w // factor
    if sh < 1 or sw < 1:
        raise ValueError(f"downsample: factor {factor} is too large for {h}×{w} images (the small image would be empty)")
    small = F.interpolate(x, size=(sh, sw), mode="area")
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp_(0.0, 1.0)


def add_noise(x: torch.Tensor, std: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add i.i.d. Gaussian noise of standard deviation ``std``, then clamp to [0, 1]."""
    x = _check_batch(x, "add_noise")
    std = _check_number(std, "add_noise", "std")
    if std == 0.0:
        return x.clamp(0.0, 1.0)
    return (x + std * _randn(x.shape, generator, x)).clamp_(0.0, 1.0)


def occlude(
    x: torch.Tensor, size: float = 0.25, value: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Paint a square of side round(size·H) pixels (at most W) filled with ``value`` at a random place per image."""
    x = _check_batch(x, "occlude")
    size = _check_number(size, "occlude", "size")
    if size > 1.0:
        raise ValueError(f"occlude: size is a fraction of the image height and must be in [0, 1], got {size}")
    value = _check_number(value, "occlude", "value", low=-math.inf)
    n, _, h, w = x.shape
    side = min(int(round(size * h)), w)
    if side == 0 or n == 0:
        return x.clamp(0.0, 1.0)
    top = _randint(h - side + 1, n, generator, x.device)
    left = _randint(w - side + 1, n, generator, x.device)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + side)  # N×H
    in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + side)  # N×W
    mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # N×1×H×W
    fill = torch.tensor(value, dtype=x.dtype, device=x.device)
    return torch.where(mask, fill, x).clamp_(0.0, 1.0)


def colour_shift(
    x: torch.Tensor,
    gain: Sequence[float] = (1.1, 0.9, 1.0),
    offset: Sequence[float] = (0.05, 0.0, -0.05),
) -> torch.Tensor:
    """Per-channel affine change ``x·gain[c] + offset[c]``; 1-channel images use the means of gain and offset."""
    x = _check_batch(x, "colour_shift")
    try:
        g = torch.as_tensor([float(v) for v in gain], dtype=x.dtype, device=x.device)
        o = torch.as_tensor([float(v) for v in offset], dtype=x.dtype, device=x.device)
    except (TypeError, ValueError):
        raise ValueError(f"colour_shift: gain and offset must be sequences of numbers, got {gain!r} and {offset!r}") from None
    if g.numel() == 0 or g.numel() != o.numel():
        raise ValueError(f"colour_shift: gain and offset must have the same non-zero length, got {g.numel()} and {o.numel()}")
    if not (torch.isfinite(g).all() and torch.isfinite(o).all()):
        raise ValueError("colour_shift: gain and offset must be finite")
    c = x.shape[1]
    if c == 1:
        g, o = g.mean().reshape(1), o.mean().reshape(1)
    elif c != g.numel():
        raise ValueError(f"colour_shift: {g.numel()} gains for {c}-channel images; give one per channel")
    return (x * g.view(1, -1, 1, 1) + o.view(1, -1, 1, 1)).clamp_(0.0, 1.0)


DEGRADATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "blur": gaussian_blur,
    "downsample": downsample,
    "noise": add_noise,
    "occlude": occlude,
    "colour": colour_shift,
}
