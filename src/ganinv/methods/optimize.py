"""Optimisation inversion (Creswell & Bharath; AEGAN (Luo et al.) §2 eq. 2): no inverse network — each image's latent is
searched for by gradient descent through the frozen generator,

    z ← z − α ∇_z [−x log G(z) − (1 − x) log(1 − G(z))]                 (eq. 2, loss="bce")

with Adam in place of plain gradient steps, and MSE or MSE + LPIPS as alternative image losses (``ganinv.losses.image``:
a loss asking for LPIPS is refused before any work when its weights are missing). Many images are
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
  steps=500``, or ``training.launch.materialise_run``) that ``ganinv.load`` opens and every application can use.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.latent import Prior
from ganinv.losses.image import ImageLoss, image_loss
from ganinv.methods.base import GeneratorRole, Method, MethodOptions, dcgan_generator
from ganinv.methods.session import gradient_step
from ganinv.methods.spaces import Space, SpaceView, latent_space

if TYPE_CHECKING:  # annotations only: methods sit below inference
    from ganinv.inference.model import InversionModel

LOSSES = ("bce", "mse", "mse+lpips")  # named image losses (ganinv.losses.image)
# refining a loaded run's answers may also compare images in the run's own discriminator (inference.hybrid binds it)
REFINE_LOSSES = (*LOSSES, "mse+d_features")
STARTS = ("mean", "sample")
OPTIMIZE_LR = 0.05  # Adam's step from the prior's mean (and, with the same settings, the hybrid's from an encoder)


# --- settings --------------------------------------------------------------------------------------------------------

def check_values(steps: int, lr: float, loss: str, choices: tuple[str, ...] = LOSSES) -> ImageLoss:
    """The image loss named ``loss``, after refusing settings no optimisation can run with (one line each)."""
    if steps < 0:
        raise GaninvError(f"optimisation steps must be >= 0, got {steps}")
    if not lr > 0:
        raise GaninvError(f"optimisation lr must be positive, got {lr}")
    return image_loss(loss, choices, "optimisation loss")


def check_settings(steps: int, lr: float, loss: str, choices: tuple[str, ...] = LOSSES) -> ImageLoss:
    """``check_values``, and the LPIPS policy (ganinv.losses.image): a loss asking for LPIPS is refused before any
    work when its weights are missing."""
    return check_values(steps, lr, loss, choices).require(f"optimisation loss {loss}", "use mse")


# --- the optimiser ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """How the step size and the exploration noise change over a search of T steps (t = step / T).

    ``CONSTANT`` (this project's optimisation): ``lr`` throughout, no noise. ``PROJECTOR``: StyleGAN2's projector
    (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", projector.py — the w_projector.py that
    PTI's pivots come from): lr ramped up linearly over the first ``rampup`` of the steps and down along a cosine
    over the last ``rampdown``, and Gaussian noise of std ``noise_factor``·σ·max(0, 1 − t/``noise_ramp``)² added to
    the latent the loss sees (σ: the prior's spread, √E‖w − w̄‖², as the projector's ``w_std``), so that the early
    steps look around the start instead of settling into the nearest dip. The projector also optimises the
    generator's per-layer noise maps with a regulariser; the generators here (our own, and imported StyleGANs, which
    run with ``noise_mode="const"``) have no noise inputs to optimise, so that part has nothing to act on."""

    rampup: float = 0.0
    rampdown: float = 0.0
    noise_factor: float = 0.0
    noise_ramp: float = 0.75

    def lr_scale(self, t: float) -> float:
        scale = 1.0
        if self.rampdown > 0:
            scale = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / self.rampdown) * math.pi)
        if self.rampup > 0:
            scale *= min(1.0, t / self.rampup)
        return scale

    def noise_scale(self, t: float) -> float:
        return self.noise_factor * max(0.0, 1.0 - t / self.noise_ramp) ** 2


CONSTANT = Schedule()
PROJECTOR = Schedule(rampup=0.05, rampdown=0.25, noise_factor=0.05, noise_ramp=0.75)  # projector.py's defaults
SPREAD_SAMPLES = 1024  # prior samples σ is measured on (the projector: 10,000 at 512 dims)


def prior_spread(prior: Prior) -> float:
    """σ = √E‖z − z̄‖² over fixed prior samples: the scale of the projector's latent noise."""
    z = prior.sample(SPREAD_SAMPLES, generator=torch.Generator().manual_seed(0))
    return (z - prior.mean(1, device=z.device)).square().sum(1).mean().sqrt().item()


def optimize_latents(generate, prior: Prior, images: Tensor, start: Tensor, *, steps: int, lr: float,
                     loss: str | ImageLoss = "mse", schedule: Schedule = CONSTANT,
                     generator: torch.Generator | None = None) -> Tensor:
    """Adam on each image's own latent; returns, per image, the best latent seen (the start included)."""
    return search_latents(generate, prior, images, start, steps=steps, lr=lr, loss=loss, schedule=schedule,
                          generator=generator)[0]


def search_latents(generate, prior: Prior, images: Tensor, start: Tensor, *, steps: int, lr: float,
                   loss: str | ImageLoss = "mse", schedule: Schedule = CONSTANT,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``optimize_latents``, and each image's loss at the latent returned. A step whose latent carries the
    schedule's noise is not a candidate for the best (its loss is not the latent's own); the start and the end are
    always measured without noise. ``generator`` seeds that noise."""
    loss = image_loss(loss, LOSSES, "optimisation loss") if isinstance(loss, str) else loss
    z = prior.clamp(start.detach().to(images.device, torch.float32)).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    spread = prior_spread(prior) if schedule.noise_factor > 0 and steps > 0 else 0.0
    best = z.detach().clone()
    best_loss = torch.full((len(images),), float("inf"), device=images.device)
    for step in range(steps + 1):
        sigma = spread * schedule.noise_scale(step / steps) if step < steps else 0.0
        if sigma > 0 and step == 0:  # the start's own loss, so that the answer is never worse than the start
            with torch.no_grad():
                keep_better(best, best_loss, z, loss.per_image(generate(z), images)[0])
        seen = z + sigma * torch.randn(z.shape, generator=generator).to(z.device) if sigma > 0 else z
        per_image, _ = loss.per_image(generate(seen), images)
        if sigma == 0:
            keep_better(best, best_loss, z, per_image)
        if step == steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule.lr_scale(step / steps)
        with gradient_step([optimizer]):
            per_image.sum().backward()
        with torch.no_grad():
            z.copy_(prior.clamp(z))
    return best, best_loss


def keep_better(best: Tensor, best_loss: Tensor, z: Tensor, per_image: Tensor) -> None:
    """Where ``per_image`` beats ``best_loss``, take ``z`` (in place)."""
    with torch.no_grad():
        better = per_image.detach() < best_loss
        best[better], best_loss[better] = z.detach()[better], per_image.detach()[better]


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


def invert_by_optimization(model: InversionModel, images: Tensor, *, steps: int = 500, lr: float = OPTIMIZE_LR,
                           loss: str = "mse", start="mean", generator: torch.Generator | None = None,
                           batch_size: int | None = None, space: str | Space | None = None) -> Tensor:
    """Latents of ``images`` (N×C×H×W in [0,1]) for any ``InversionModel``'s generator, by optimisation.

    ``space``: where the latents are searched — None (the run's own space), or a space (``Z``, ``W``, ``WPLUS``, or
    its name "z" | "w" | "wplus"; w and wplus need a style generator: ``ganinv.methods.spaces.latent_space``); the
    answer is a latent of that space. ``start``: "mean" (the space prior's mean: w̄ in W and W+), "sample" (a prior
    sample; pass ``generator`` to seed it), or a latent tensor of that space (e.g. an encoder's answer — the hybrid).
    ``steps`` Adam steps at ``lr`` on ``loss``."""
    search_loss = check_settings(steps, lr, loss)
    model.check_images(images)
    return optimize_in_view(model, latent_space(model.method, space), images, steps=steps, lr=lr, loss=search_loss,
                            start=start, generator=generator, batch_size=batch_size)


def optimize_in_view(model: InversionModel, view: SpaceView, images: Tensor, *, steps: int, lr: float,
                     loss: ImageLoss, start="mean", generator: torch.Generator | None = None,
                     batch_size: int | None = None, schedule: Schedule = CONSTANT) -> Tensor:
    """``invert_by_optimization`` in a space the caller has already seen the run in (``latent_space``), with
    checked settings and images."""
    return search_in_view(model, view, images, steps=steps, lr=lr, loss=loss, start=start, generator=generator,
                          batch_size=batch_size, schedule=schedule)[0]


def search_in_view(model: InversionModel, view: SpaceView, images: Tensor, *, steps: int, lr: float,
                   loss: ImageLoss, start="mean", generator: torch.Generator | None = None,
                   batch_size: int | None = None, schedule: Schedule = CONSTANT) -> tuple[Tensor, Tensor]:
    """``optimize_in_view``, and each image's loss at its answer (what the hybrid and PTI's pivots choose by)."""
    starts = start_latents(view.prior, len(images), start, generator)
    outs, losses, size = [], [], batch_size or model.batch_size
    with frozen_for_search(model.method):
        for x, z0 in zip(images.split(size), starts.split(size)):
            x = x.to(model.device, torch.float32)
            z, z_loss = search_latents(view.generate, view.prior, x, z0.to(model.device), steps=steps, lr=lr,
                                       loss=loss, schedule=schedule, generator=generator)
            outs.append(z)
            losses.append(z_loss)
    return torch.cat(outs), torch.cat(losses)


# --- the method: a loadable run directory -----------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizeOptions(MethodOptions):
    steps: int = 500  # Adam steps per inversion
    lr: float = OPTIMIZE_LR
    loss: str = "mse"  # bce (AEGAN (Luo et al.) eq. 2) | mse | mse+lpips
    start: str = "mean"  # mean | sample (seeded by the run's seed)

    def __post_init__(self):
        check_values(self.steps, self.lr, self.loss)  # the LPIPS weights: when a run is built or searches, not read
        if self.start not in STARTS:
            raise GaninvError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")

    def check_before_training(self) -> None:
        check_settings(self.steps, self.lr, self.loss)


class Optimize(Method):
    """Post-hoc, nothing to train: the run holds the frozen generator and the search settings."""

    name = "optimize"
    Options = OptimizeOptions
    generator_role = GeneratorRole.FROZEN
    uses_real_data = False
    trainable = ()

    def build_nets(self) -> dict[str, nn.Module]:
        return {"generator": dcgan_generator(self.config)}

    def train_step(self, batch) -> dict[str, float]:
        return {}  # no weights to learn; `train` only materialises the run directory

    def invert(self, x: Tensor) -> Tensor:
        o = self.options
        loss = check_settings(o.steps, o.lr, o.loss)
        start = start_latents(self.prior, len(x), o.start, torch.Generator().manual_seed(self.config.seed))
        with frozen_for_search(self):
            return optimize_latents(self.generate, self.prior, x, start.to(x.device), steps=o.steps, lr=o.lr,
                                    loss=loss)
