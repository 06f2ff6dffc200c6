"""Latent priors: where z comes from, and the region an inverter's answer must stay inside.

Every prior knows its dimension, how to sample (with an optional ``torch.Generator`` so that an image's latent
does not depend on the batch it was drawn in), its mean (the start of optimisation-based inversion) and its
support (for clamping). Names are what ``config.json`` records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import GaninvError

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class Prior:
    name: str
    dim: int

    # (low, high) bounds of the support, or None for an unbounded prior
    @property
    def bounds(self) -> tuple[float, float] | None:
        return {"uniform": (-1.0, 1.0), "uniform_sqrt3": (-SQRT3, SQRT3), "normal": None}[self.name]

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        device = device if device is not None else (generator.device if generator is not None else "cpu")
        if self.name == "normal":
            return torch.randn(n, self.dim, generator=generator, device=device)
        low, high = self.bounds
        return low + (high - low) * torch.rand(n, self.dim, generator=generator, device=device)

    def mean(self, n: int, device=None) -> Tensor:
        return torch.zeros(n, self.dim, device=device)

    def clamp(self, z: Tensor) -> Tensor:
        """Project latents back into the support (a no-op for the normal prior)."""
        if self.bounds is None:
            return z
        return z.clamp(*self.bounds)

    def std(self) -> float:
        """Per-element standard deviation: 1 for normal and U(-√3,√3), 1/√3 for U(-1,1)."""
        return {"uniform": 1.0 / SQRT3, "uniform_sqrt3": 1.0, "normal": 1.0}[self.name]


PRIOR_NAMES = ("uniform", "normal", "uniform_sqrt3")


def make_prior(name: str, dim: int) -> Prior:
    if name not in PRIOR_NAMES:
        raise GaninvError(f"unknown prior {name!r}; choose one of {', '.join(PRIOR_NAMES)}")
    if dim < 1:
        raise GaninvError(f"latent dimension must be at least 1, got {dim}")
    return Prior(name, dim)
