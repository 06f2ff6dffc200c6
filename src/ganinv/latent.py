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


# --- the dynamic latent scale (seed 003, DLSGAN) -----------------------------------------------------------------

LATENT_SCALE_MODES = ("window", "ema")


def scaled_latent_entropy(scale: Tensor, prior_name: str) -> float:
    """Differential entropy (nats) of Z∘s for an i.i.d. prior Z: Σ_i h(s_i Z_i) = Σ_i [h(Z_i) + log s_i].

    normal: Σ log(s_i √(2πe)); uniform_sqrt3 (U(−√3,√3)): Σ log(s_i · 2√3); uniform (U(−1,1)): Σ log(2 s_i).
    At s = 1 it is the prior's own entropy; it can be negative (seed 003 figs. 5–6), and −inf if some s_i = 0.
    """
    per_element = {"normal": 0.5 * math.log(2 * math.pi * math.e), "uniform_sqrt3": math.log(2 * SQRT3),
                   "uniform": math.log(2.0)}
    if prior_name not in per_element:
        raise GaninvError(f"unknown prior {prior_name!r}; choose one of {', '.join(per_element)}")
    s = scale.detach().double().cpu()
    return float(torch.log(s).sum()) + s.numel() * per_element[prior_name]


class LatentScale:
    """Traces the element-wise variance v of predicted latents z' and gives the DLS scale vector
    ``s = √d · v^½ / ||v^½||₂`` (seed 003 Algorithm 1, line 3), so that ||s||₂ = √d and s = 1 when v is constant.

    Like the paper (and the authors' code) v is the running mean of z'² — "the mean of the predicted latent
    random variable becomes automatically zero, so z'² can be considered as the sample variance" — and it starts
    at ``initial_variance`` (1) everywhere, so s starts at 1.

    ``mode="window"``: the paper's moving average over the past 512 × batch-size samples. It keeps a ring buffer of
    the last ``window_batches`` per-batch means of z'² (initialised to ``initial_variance``, as the authors'
    ``var_vectors``) and v is their mean — exact for the training loop's equal-sized batches, ``batch_size`` times
    smaller than a ring of raw latents (1 MiB instead of 16 MiB at d = 512, batch 16, in every checkpoint), and
    recomputed from the buffer at each update, so there is no running-sum drift however long the run.
    ``mode="ema"``: the authors' later code, ``v ← decay · v + (1 − decay) · mean(z'²)``.

    A batch whose z'² is not finite everywhere is skipped (``update`` returns False): NaN/inf never reach v or s.
    ``state()`` / ``load_state()`` are plain tensors (safetensors-ready) for checkpoints and exact resume.
    """

    def __init__(self, dim: int, *, mode: str = "window", window_batches: int = 512, decay: float = 0.999,
                 initial_variance: float = 1.0, device=None):
        if mode not in LATENT_SCALE_MODES:
            raise GaninvError(f"unknown latent scale mode {mode!r}; choose one of {', '.join(LATENT_SCALE_MODES)}")
        if dim < 1:
            raise GaninvError(f"latent dimension must be at least 1, got {dim}")
        if mode == "window" and window_batches < 1:
            raise GaninvError(f"window_batches must be at least 1, got {window_batches}")
        if mode == "ema" and not 0.0 <= decay < 1.0:
            raise GaninvError(f"the EMA decay must be in [0, 1), got {decay}")
        if not (math.isfinite(initial_variance) and initial_variance > 0):
            raise GaninvError(f"initial_variance must be positive and finite, got {initial_variance}")
        self.dim, self.mode, self.window_batches, self.decay = dim, mode, window_batches, decay
        device = torch.device(device) if device is not None else torch.device("cpu")
        if mode == "window":
            self.buffer = torch.full((window_batches, dim), float(initial_variance), device=device)
            self.position = 0  # the slot the next batch overwrites
        else:
            self.ema = torch.full((dim,), float(initial_variance), device=device)
        self.updates = 0  # batches applied (skipped ones not counted)
        self._refresh()

    # --- reading ---
    @property
    def variance(self) -> Tensor:
        """v: the traced element-wise variance (d,)."""
        return self._variance

    @property
    def scale(self) -> Tensor:
        """s (d,), ||s||₂ = √d; all ones while v is constant (or, degenerate, all zero)."""
        return self._scale

    def entropy(self, prior_name: str) -> float:
        """Differential entropy of the scaled latent Z∘s for the named prior (see ``scaled_latent_entropy``)."""
        return scaled_latent_entropy(self._scale, prior_name)

    # --- writing ---
    def update(self, predicted: Tensor) -> bool:
        """Fold a batch of predicted latents (N×d, z units) into v and refresh s; False if it was skipped."""
        predicted = predicted.detach()
        if predicted.ndim != 2 or predicted.shape[1] != self.dim or predicted.shape[0] < 1:
            raise GaninvError(f"predicted latents must be N×{self.dim}, got {tuple(predicted.shape)}")
        second_moment = predicted.float().square().mean(0).to(self._variance.device)
        if not bool(torch.isfinite(second_moment).all()):
            return False
        if self.mode == "window":
            self.buffer[self.position] = second_moment
            self.position = (self.position + 1) % self.window_batches
        else:
            self.ema.mul_(self.decay).add_(second_moment, alpha=1.0 - self.decay)
        self.updates += 1
        self._refresh()
        return True

    def _refresh(self) -> None:
        v = self.buffer.double().mean(0) if self.mode == "window" else self.ema.double()
        root = v.clamp_min(0).sqrt()
        norm = root.norm()
        if norm > 0 and torch.isfinite(norm):
            s = math.sqrt(self.dim) * root / norm
        else:  # v all zero: no direction to prefer, keep the prior as is
            s = torch.ones_like(root)
        self._variance, self._scale = v.float(), s.float()

    # --- persistence ---
    def state(self) -> dict[str, Tensor]:
        counters = {"updates": torch.tensor(self.updates, dtype=torch.int64)}
        if self.mode == "window":
            return {"buffer": self.buffer.detach().cpu().clone(),
                    "position": torch.tensor(self.position, dtype=torch.int64), **counters}
        return {"ema": self.ema.detach().cpu().clone(), **counters}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        expected = {"window": {"buffer", "position", "updates"}, "ema": {"ema", "updates"}}[self.mode]
        if set(tensors) != expected:
            raise GaninvError(
                f"latent scale state has keys {sorted(tensors)}, expected {sorted(expected)} for mode {self.mode!r}"
            )
        device = self._variance.device
        if self.mode == "window":
            buffer = tensors["buffer"]
            if tuple(buffer.shape) != (self.window_batches, self.dim):
                raise GaninvError(f"latent scale buffer is {tuple(buffer.shape)}, expected "
                                  f"{(self.window_batches, self.dim)}")
            self.buffer = buffer.detach().float().to(device).clone()
            self.position = int(tensors["position"]) % self.window_batches
        else:
            ema = tensors["ema"]
            if tuple(ema.shape) != (self.dim,):
                raise GaninvError(f"latent scale EMA is {tuple(ema.shape)}, expected ({self.dim},)")
            self.ema = ema.detach().float().to(device).clone()
        self.updates = int(tensors["updates"])
        self._refresh()

    def to(self, device) -> LatentScale:
        if self.mode == "window":
            self.buffer = self.buffer.to(device)
        else:
            self.ema = self.ema.to(device)
        self._variance, self._scale = self._variance.to(device), self._scale.to(device)
        return self
