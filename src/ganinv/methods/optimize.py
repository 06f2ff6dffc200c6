"""Optimisation inversion (Creswell & Bharath; AEGAN (Luo et al.) §2 eq. 2): no inverse network — each image's latent is
searched for by gradient descent through the frozen generator,

    z ← z − α ∇_z [−x log G(z) − (1 − x) log(1 − G(z))]                 (eq. 2, loss="bce")

with Adam in place of plain gradient steps, and MSE or MSE + LPIPS as alternative image losses. Many images are
optimised at once, each with its own latent: the loss is a sum of per-image terms and Adam is element-wise, so an
image's answer does not depend on the batch it was in. After every step the latents are projected back into the
prior's support (``Prior.clamp``: the box of a uniform prior; a no-op for normal priors and W spaces). Each
image keeps the best latent seen (by its own loss), so refining a start never ends worse than the start.

Three ways in:
* ``invert_by_optimization(model, images, …, space=None)`` on any ``InversionModel`` (any generator run, any
  inverter run); ``space="w"`` / ``"wplus"`` optimises in a style generator's W / W+ instead of the run's own space
  (``ganinv.methods.spaces``: the space's prior, generate and mean w̄);
* ``hybrid.OptimizingModel(model, …)``: an ``InversionModel`` whose ``invert`` optimises (``start="encoder"``
  is the hybrid);
* the ``optimize`` method: a post-hoc run directory (``ganinv train optimize --generator RUN --steps 1 -o
  steps=500``, or ``runs.materialise_run``) that ``ganinv.load`` opens and every application can use.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.latent import Prior
from ganinv.methods.base import Method, MethodOptions, dcgan_generator
from ganinv.methods.spaces import latent_space
from ganinv.metrics import lpips_status
from ganinv.metrics.image import lpips_metric

if TYPE_CHECKING:  # annotations only: methods sit below inference
    from ganinv.inference.model import InversionModel

LOSSES = ("bce", "mse", "mse+lpips")
STARTS = ("mean", "sample")
BCE_EPS = 1e-6


# --- losses ----------------------------------------------------------------------------------------------------------

_lpips_warned = False


def perceptual_distance(x: Tensor, y: Tensor) -> Tensor | None:
    """Differentiable per-image LPIPS (AlexNet, via torchmetrics) when its weights are on disk; else None, with
    one warning per process saying why (ganinv.metrics.lpips_status)."""
    global _lpips_warned

    available, message = lpips_status()
    if not available:
        if not _lpips_warned:
            warnings.warn(f"{message} — the LPIPS term is left out (MSE only)", stacklevel=2)
            _lpips_warned = True
        return None

    net = lpips_metric().net.to(x.device)  # the metric's inner network is differentiable; the metric is not
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    if x.shape[-1] < 32:
        x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=32, mode="bilinear", align_corners=False)
    return net(x.float(), y.float(), normalize=True).reshape(x.shape[0])


def per_image_loss(kind: str, reconstruction: Tensor, target: Tensor) -> Tensor:
    """One value per image: "bce" (eq. 2, mean over pixels), "mse", or "mse+lpips"."""
    r, t = reconstruction.float(), target.float()
    if kind == "bce":
        return F.binary_cross_entropy(r.clamp(BCE_EPS, 1 - BCE_EPS), t, reduction="none").flatten(1).mean(1)
    mse = (r - t).square().flatten(1).mean(1)
    if kind == "mse+lpips":
        lp = perceptual_distance(r, t)
        return mse if lp is None else mse + lp
    return mse


def check_settings(steps: int, lr: float, loss: str) -> None:
    if steps < 0:
        raise GaninvError(f"optimisation steps must be >= 0, got {steps}")
    if not lr > 0:
        raise GaninvError(f"optimisation lr must be positive, got {lr}")
    if loss not in LOSSES:
        raise GaninvError(f"optimisation loss must be one of {', '.join(LOSSES)}, got {loss!r}")


# --- the optimiser ---------------------------------------------------------------------------------------------------

def optimize_latents(generate, prior: Prior, images: Tensor, start: Tensor, *, steps: int, lr: float,
                     loss: str = "mse") -> Tensor:
    """Adam on each image's own latent; returns, per image, the best latent seen (the start included)."""
    z = prior.clamp(start.detach().to(images.device, torch.float32)).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    best = z.detach().clone()
    best_loss = torch.full((len(images),), float("inf"), device=images.device)
    for step in range(steps + 1):
        per_image = per_image_loss(loss, generate(z), images)
        with torch.no_grad():
            better = per_image.detach() < best_loss
            best[better], best_loss[better] = z.detach()[better], per_image.detach()[better]
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        per_image.sum().backward()
        optimizer.step()
        with torch.no_grad():
            z.copy_(prior.clamp(z))
    return best


@contextlib.contextmanager
def frozen_for_search(method: Method):
    """Every net in eval mode with its weights frozen, and autograd on (for the latents only)."""
    modes = {name: net.training for name, net in method.nets.items()}
    flags = {name: [p.requires_grad for p in net.parameters()] for name, net in method.nets.items()}
    try:
        for net in method.nets.values():
            net.eval().requires_grad_(False)
        with torch.enable_grad():
            yield
    finally:
        for name, net in method.nets.items():
            net.train(modes[name])
            for p, flag in zip(net.parameters(), flags[name]):
                p.requires_grad_(flag)


def start_latents(prior: Prior, n: int, start, generator: torch.Generator | None = None) -> Tensor:
    if isinstance(start, Tensor):
        if start.ndim != 2 or start.shape != (n, prior.dim):
            raise GaninvError(f"start latents must be {n}×{prior.dim}, got {tuple(start.shape)}")
        return start
    if start == "mean":
        return prior.mean(n)
    if start == "sample":
        return prior.sample(n, generator=generator)
    raise GaninvError(f"start must be one of {', '.join(STARTS)} or a latent tensor, got {start!r}")


def invert_by_optimization(model: InversionModel, images: Tensor, *, steps: int = 500, lr: float = 0.05,
                           loss: str = "mse", start="mean", generator: torch.Generator | None = None,
                           batch_size: int | None = None, space: str | None = None) -> Tensor:
    """Latents of ``images`` (N×C×H×W in [0,1]) for any ``InversionModel``'s generator, by optimisation.

    ``space``: where the latents are searched — None (the run's own space), or "z" | "w" | "wplus" (w and wplus need
    a style generator: ``ganinv.methods.spaces.latent_space``); the answer is a latent of that space.
    ``start``: "mean" (the space prior's mean: w̄ in W and W+), "sample" (a prior sample; pass ``generator`` to seed
    it), or a latent tensor of that space (e.g. an encoder's answer — the hybrid). ``steps`` Adam steps at ``lr`` on
    ``loss``."""
    check_settings(steps, lr, loss)
    model.check_images(images)
    method = model.method
    view = latent_space(method, space)
    starts = start_latents(view.prior, len(images), start, generator)
    outs = []
    with frozen_for_search(method):
        for x, z0 in zip(images.split(batch_size or model.batch_size), starts.split(batch_size or model.batch_size)):
            x = x.to(model.device, torch.float32)
            outs.append(optimize_latents(view.generate, view.prior, x, z0.to(model.device), steps=steps, lr=lr,
                                         loss=loss))
    return torch.cat(outs)


# --- the method: a loadable run directory -----------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizeOptions(MethodOptions):
    steps: int = 500  # Adam steps per inversion
    lr: float = 0.05
    loss: str = "mse"  # bce (AEGAN (Luo et al.) eq. 2) | mse | mse+lpips
    start: str = "mean"  # mean | sample (seeded by the run's seed)

    def __post_init__(self):
        check_settings(self.steps, self.lr, self.loss)
        if self.start not in STARTS:
            raise GaninvError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")


class Optimize(Method):
    """Post-hoc, nothing to train: the run holds the frozen generator and the search settings."""

    name = "optimize"
    Options = OptimizeOptions
    trains_generator = False
    uses_real_data = False
    trainable = ()

    def build_nets(self) -> dict[str, nn.Module]:
        return {"generator": dcgan_generator(self.config)}

    def train_step(self, batch) -> dict[str, float]:
        return {}  # no weights to learn; `train` only materialises the run directory

    def invert(self, x: Tensor) -> Tensor:
        o = self.options
        start = start_latents(self.prior, len(x), o.start, torch.Generator().manual_seed(self.config.seed))
        with frozen_for_search(self):
            return optimize_latents(self.generate, self.prior, x, start.to(x.device), steps=o.steps, lr=o.lr,
                                    loss=o.loss)
