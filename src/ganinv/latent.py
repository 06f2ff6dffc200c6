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

from ganinv.core.errors import GaninvError

SQRT3 = math.sqrt(3.0)
HALF_PI = math.pi / 2
# the spherical prior's angles stay this far (radians) inside (0, π/2): sin/cos never reach 0 — a zero coordinate
# would erase a whole subtree of the binary tree, and float32(π/2) > π/2 has a *negative* cosine — and the normal
# quantile Φ⁻¹(z/(π/2)) stays finite (|Φ⁻¹| < 4.9)
SPHERICAL_MARGIN = 1e-6


@dataclass(frozen=True)
class Prior:
    name: str
    dim: int

    # (low, high) bounds of the support, or None for an unbounded prior
    @property
    def bounds(self) -> tuple[float, float] | None:
        return {"uniform": (-1.0, 1.0), "uniform_sqrt3": (-SQRT3, SQRT3), "normal": None,
                "spherical": (0.0, HALF_PI)}[self.name]

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        device = device if device is not None else (generator.device if generator is not None else "cpu")
        if self.name == "normal":
            return torch.randn(n, self.dim, generator=generator, device=device)
        low, high = self.bounds
        z = low + (high - low) * torch.rand(n, self.dim, generator=generator, device=device)
        return self.clamp(z) if self.name == "spherical" else z  # rand() can return exactly 0

    def mean(self, n: int, device=None) -> Tensor:
        """The centre of the support: 0, or π/4 for the spherical prior's angles."""
        centre = HALF_PI / 2 if self.name == "spherical" else 0.0
        return torch.full((n, self.dim), centre, device=device)

    def clamp(self, z: Tensor) -> Tensor:
        """Project latents back into the support (a no-op for the normal prior). Spherical angles go into the open
        interval [m, π/2 − m] with m = ``SPHERICAL_MARGIN``."""
        if self.bounds is None:
            return z
        if self.name == "spherical":
            return z.clamp(SPHERICAL_MARGIN, HALF_PI - SPHERICAL_MARGIN)
        return z.clamp(*self.bounds)

    def std(self) -> float:
        """Per-element standard deviation: 1 for normal and U(-√3,√3), 1/√3 for U(-1,1), π/(4√3) for U(0,π/2)."""
        return {"uniform": 1.0 / SQRT3, "uniform_sqrt3": 1.0, "normal": 1.0,
                "spherical": HALF_PI / (2 * SQRT3)}[self.name]


# "spherical" (DED-GAN, Cho): angles z_s ~ U(0, π/2)^d, read as a point on the unit d-sphere in R^(d+1) by
# ``spherical_to_cartesian`` below
PRIOR_NAMES = ("uniform", "normal", "uniform_sqrt3", "spherical")


def make_prior(name: str, dim: int) -> Prior:
    if name not in PRIOR_NAMES:
        raise GaninvError(f"unknown prior {name!r}; choose one of {', '.join(PRIOR_NAMES)}")
    if dim < 1:
        raise GaninvError(f"latent dimension must be at least 1, got {dim}")
    return Prior(name, dim)


# --- the dynamic latent scale (DLSGAN, Cho & Krzyzak) ------------------------------------------------------------

LATENT_SCALE_MODES = ("window", "ema")


def scaled_latent_entropy(scale: Tensor, prior_name: str) -> float:
    """Differential entropy (nats) of Z∘s for an i.i.d. prior Z: Σ_i h(s_i Z_i) = Σ_i [h(Z_i) + log s_i].

    normal: Σ log(s_i √(2πe)); uniform_sqrt3 (U(−√3,√3)): Σ log(s_i · 2√3); uniform (U(−1,1)): Σ log(2 s_i).
    At s = 1 it is the prior's own entropy; it can be negative (DLSGAN paper figs. 5–6), and −inf if some s_i = 0.
    """
    per_element = {"normal": 0.5 * math.log(2 * math.pi * math.e), "uniform_sqrt3": math.log(2 * SQRT3),
                   "uniform": math.log(2.0), "spherical": math.log(HALF_PI)}
    if prior_name not in per_element:
        raise GaninvError(f"unknown prior {prior_name!r}; choose one of {', '.join(per_element)}")
    s = scale.detach().double().cpu()
    return float(torch.log(s).sum()) + s.numel() * per_element[prior_name]


class LatentScale:
    """Traces the element-wise variance v of predicted latents z' and gives the DLS scale vector
    ``s = √d · v^½ / ||v^½||₂`` (DLSGAN Algorithm 1, line 3), so that ||s||₂ = √d and s = 1 when v is constant.

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


# --- spherical ↔ cartesian coordinates (DED-GAN (Cho) §3) ------------------------------------------------------------
#
# d angles in (0, π/2) are a point on the positive orthant of the unit sphere in R^n, n = d + 1. The paper's
# *perfect binary tree* (its ref. [7]) writes each coordinate as a product of only log2(n) sines/cosines:
#
#     x_000 = sin φ sin φ_0 sin φ_00,  x_001 = sin φ sin φ_0 cos φ_00,  …,  x_111 = cos φ cos φ_1 cos φ_11   (n = 8)
#
# Angles are stored root first, level by level (φ; φ_0, φ_1; φ_00, φ_01, φ_10, φ_11; …) — the order the paper's
# Algorithm 3 produces ("insert front" of each level, leaves first). At a node the first child (bit 0) takes the
# sine and the second (bit 1) the cosine, so Algorithm 3's arctan(a/b) of the even/odd halves inverts it.
#
# n must be a power of two for the tree to be perfect. Other d are handled by **padding**: the angle vector is
# extended with π/4 to n − 1 angles, n = the next power of two above d (``cartesian_dim``), and the inverse drops
# those padded angles again (``cartesian_to_spherical(x, angle_dim=d)``). We pad rather than refuse so that any
# ``--latent-dim`` works (e.g. the project's default 100 → n = 128); the padded angles are all leaves of the last
# level (there are n − 1 − d ≤ n/2 of them), so each only splits one coordinate into two equal halves (π/4): the
# point still has unit norm and positive coordinates, no coordinate multiplies more than log2(n) factors, and the
# d real angles round-trip exactly. The cost is n − (d + 1) redundant outputs in the discriminator's head; choose d
# with d + 1 a power of two (63, 511, …, as the presets do) to have none.


def cartesian_dim(angle_dim: int) -> int:
    """n for d angles: d + 1 when that is a power of two, else the next power of two (π/4 padding, see above)."""
    if angle_dim < 1:
        raise GaninvError(f"latent dimension must be at least 1, got {angle_dim}")
    return 1 << angle_dim.bit_length()  # the smallest power of two > d, i.e. >= d + 1


def _pad_angles(angles: Tensor) -> Tensor:
    d = angles.shape[-1]
    missing = cartesian_dim(d) - 1 - d
    if missing == 0:
        return angles
    pad = torch.full((*angles.shape[:-1], missing), math.pi / 4, dtype=angles.dtype, device=angles.device)
    return torch.cat([angles, pad], dim=-1)


def spherical_to_cartesian(angles: Tensor) -> Tensor:
    """Angles (…, d) in (0, π/2) → unit vectors (…, n), n = ``cartesian_dim(d)`` (= d + 1 for a power of two),
    by the perfect binary tree: every coordinate is a product of log2(n) sines/cosines, so nothing underflows in
    float32 at any practical d (compare ``sequential_spherical_to_cartesian``). Coordinates are positive for angles
    inside (0, π/2). Computed in the angles' dtype."""
    if angles.ndim < 1 or angles.shape[-1] < 1:
        raise GaninvError(f"angles must be (…, d) with d >= 1, got {tuple(angles.shape)}")
    angles = _pad_angles(angles)
    levels = int(math.log2(angles.shape[-1] + 1))
    t = torch.ones((*angles.shape[:-1], 1), dtype=angles.dtype, device=angles.device)
    for k in range(levels):  # level k holds 2^k angles, one per node of t
        phi = angles[..., (1 << k) - 1:(2 << k) - 1]
        t = torch.stack([t * torch.sin(phi), t * torch.cos(phi)], dim=-1).flatten(-2)
    return t


def cartesian_to_spherical(x: Tensor, angle_dim: int | None = None) -> Tensor:
    """The paper's Algorithm 3: vectors (…, n) with non-negative coordinates, n a power of two → angles (…, n − 1)
    in [0, π/2], root first. log2(n) times: a, b = even, odd coordinates; the level's angles are arctan2(a, b); the
    vector becomes the pair norms hypot(a, b) (hypot, not √(a² + b²), so tiny coordinates do not underflow when
    squared). Only directions matter (arctan2 is scale-free), so x need not be normalised. ``angle_dim`` = d keeps
    the first d angles: the inverse of ``spherical_to_cartesian`` for a d whose d + 1 is not a power of two."""
    n = x.shape[-1] if x.ndim >= 1 else 0
    if n < 2 or n & (n - 1):
        raise GaninvError(f"cartesian vectors must have a power-of-two length >= 2, got {tuple(x.shape)}")
    if angle_dim is not None and not 1 <= angle_dim <= n - 1:
        raise GaninvError(f"angle_dim must be in [1, {n - 1}] for {n}-dim vectors, got {angle_dim}")
    levels: list[Tensor] = []
    t = x
    while t.shape[-1] > 1:
        a, b = t[..., 0::2], t[..., 1::2]
        levels.insert(0, torch.atan2(a, b))
        t = torch.hypot(a, b)
    angles = torch.cat(levels, dim=-1)
    return angles if angle_dim is None else angles[..., :angle_dim]


def sequential_spherical_to_cartesian(angles: Tensor) -> Tensor:
    """The textbook (sequential) n-sphere transform, x_k = sin φ_1 ⋯ sin φ_{k−1} cos φ_k and x_n = ∏ sin φ_i —
    here **only to show** the underflow the paper warns about: x_n multiplies d factors below 1, so at d = 511 in
    float32 most trailing coordinates are exactly 0 (the tree multiplies 9). Not used for training."""
    sines = torch.cumprod(torch.sin(angles), dim=-1)
    prefix = torch.cat([torch.ones_like(angles[..., :1]), sines], dim=-1)
    return prefix * torch.cat([torch.cos(angles), torch.ones_like(angles[..., :1])], dim=-1)


def spherical_to_normal(angles: Tensor) -> Tensor:
    """The DED-GAN paper's (Cho) §5.1 quantile preprocessing: U(0, π/2) angles → Φ⁻¹(angle / (π/2)) ~ N(0, 1), so the
    generator's network sees normal inputs. The uniform is clamped into [m, 1 − m] (m = margin / (π/2)) first:
    Φ⁻¹ is ±inf at 0 and 1."""
    m = SPHERICAL_MARGIN / HALF_PI
    return torch.special.ndtri((angles / HALF_PI).clamp(m, 1.0 - m))
