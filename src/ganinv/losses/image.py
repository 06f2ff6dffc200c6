"""The image loss: one weighted sum of image terms, shared by optimisation (and so the hybrid), every encoder method
(aegan, regression, iterative) and pivotal tuning — and the one LPIPS policy they all follow.

    loss = ImageLoss(mse=1.0, lpips=1.0)       weights of the terms; a term of weight 0 is not computed
    total, parts = loss(x, y)                  the batch mean (a scalar) and each term's unweighted value
    total, parts = loss.per_image(x, y)        one value per image (optimisation keeps each image's best latent)
    image_loss("mse+lpips")                    the named losses the options and the CLI take: bce | mse | mse+lpips

Terms (images in [0, 1], computed in float32): ``mse`` (pixel mean of squares), ``l1`` (pixel mean of absolute
differences), ``bce`` (AEGAN (Luo et al.) eq. 5: pixels as Bernoulli probabilities, clamped away from 0 and 1) and
``lpips`` (LPIPS with torchmetrics' AlexNet, differentiable). A new term — e.g. an offline perceptual term on the
features of a discriminator or classifier — is one more weight field and one more entry in ``TERMS``.

The LPIPS policy, in this one place: LPIPS uses the real AlexNet weights when they are on disk
(``ganinv.metrics.lpips_status``: nothing is downloaded — a download on first use, as torchvision does, would go in
``lpips_problem``); when they are missing the reason is one line naming the file to place. A loss that *asks* for
LPIPS (weight > 0) is refused before any work by ``require`` with one ``GaninvError``, and computing it anyway (a run
resumed on another machine) raises the same line: never a silent switch to MSE. A default that merely *offers* LPIPS
when it can (pivotal tuning's PTI loss; the user asked for nothing) uses ``when_available``: the term is dropped,
said once through the caller's ``say``, and the caller records that it was.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.losses import BCE_EPS, reconstruction_bce
from ganinv.metrics.image import lpips_metric, lpips_status

LPIPS_MIN_SIDE = 32  # AlexNet's smallest input: smaller images are upsampled to it


# --- the terms: (x, y, per_image) -> per-image values (N,) or their batch mean ------------------------------------

def mse_term(x: Tensor, y: Tensor, per_image: bool) -> Tensor:
    return (x - y).square().flatten(1).mean(1) if per_image else F.mse_loss(x, y)


def l1_term(x: Tensor, y: Tensor, per_image: bool) -> Tensor:
    return (x - y).abs().flatten(1).mean(1) if per_image else F.l1_loss(x, y)


def bce_term(x: Tensor, y: Tensor, per_image: bool) -> Tensor:
    if not per_image:
        return reconstruction_bce(x, y)
    return F.binary_cross_entropy(x.clamp(BCE_EPS, 1 - BCE_EPS), y, reduction="none").flatten(1).mean(1)


def lpips_term(x: Tensor, y: Tensor, per_image: bool) -> Tensor:
    distance = perceptual_distance(x, y)
    return distance if per_image else distance.mean()


TERMS: dict[str, Callable[[Tensor, Tensor, bool], Tensor]] = {"mse": mse_term, "l1": l1_term, "bce": bce_term,
                                                              "lpips": lpips_term}


# --- LPIPS: the policy -----------------------------------------------------------------------------------------------

def lpips_problem() -> str | None:
    """None when LPIPS can be built on this machine; else the one line that says which file to place where."""
    available, message = lpips_status()
    return None if available else message


def perceptual_distance(x: Tensor, y: Tensor) -> Tensor:
    """Differentiable per-image LPIPS (AlexNet, via torchmetrics' inner network; the metric itself runs without
    grad). Grey images are repeated to three channels, images under 32 px upsampled. GaninvError when the weights
    are missing — a caller that asked for LPIPS never silently gets MSE alone."""
    problem = lpips_problem()
    if problem is not None:
        raise GaninvError(problem)
    net = lpips_metric().net.to(x.device)
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    if x.shape[-1] < LPIPS_MIN_SIDE:
        x = F.interpolate(x, size=LPIPS_MIN_SIDE, mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=LPIPS_MIN_SIDE, mode="bilinear", align_corners=False)
    return net(x.float(), y.float(), normalize=True).reshape(x.shape[0])


# --- the loss --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageLoss:
    """Σ weight·term over the terms of ``TERMS``; weights finite and >= 0, at least one positive."""

    mse: float = 0.0
    l1: float = 0.0
    bce: float = 0.0
    lpips: float = 0.0

    def __post_init__(self):
        weights = self.weights()
        bad = {name: w for name, w in weights.items() if not (isinstance(w, (int, float)) and math.isfinite(w)
                                                                and w >= 0)}
        if bad:
            raise GaninvError(f"image loss weights must be finite numbers >= 0, got {bad}")
        if not any(weights.values()):
            raise GaninvError("an image loss needs at least one term with a weight > 0")

    def weights(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(total, parts) as batch means: each term's mean over every pixel (LPIPS: over the images)."""
        return self._sum(x, y, per_image=False)

    def per_image(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(total, parts), one value per image (N,): an image's loss does not depend on the batch it is in."""
        return self._sum(x, y, per_image=True)

    def _sum(self, x: Tensor, y: Tensor, per_image: bool) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = x.float(), y.float()
        weights = {name: w for name, w in self.weights().items() if w > 0}
        parts = {name: TERMS[name](x, y, per_image) for name in weights}
        total = None
        for name, value in parts.items():
            total = weights[name] * value if total is None else total + weights[name] * value
        return total, parts

    # --- the LPIPS policy ---
    def require(self, what: str, instead: str = "") -> ImageLoss:
        """This loss, or one GaninvError line when it asks for LPIPS and the weights are missing: what options and
        calls check before any work. ``what``: the setting that asked (e.g. ``recon_loss=mse+lpips``); ``instead``:
        what the user can do about it."""
        problem = lpips_problem() if self.lpips > 0 else None
        if problem is not None:
            raise GaninvError(f"{what} needs LPIPS, which is unavailable here ({problem})"
                              + (f"; {instead}" if instead else ""))
        return self

    def when_available(self, say: Callable[[str], None], consequence: str) -> ImageLoss:
        """For a default that offers LPIPS without the user asking: this loss, or — when the weights are missing —
        the loss without its LPIPS term, said once through ``say`` as ``"<the reason> — <consequence>"``."""
        problem = lpips_problem() if self.lpips > 0 else None
        if problem is None:
            return self
        say(f"{problem} — {consequence}")
        return dataclasses.replace(self, lpips=0.0)


NAMED: dict[str, ImageLoss] = {"bce": ImageLoss(bce=1.0), "mse": ImageLoss(mse=1.0),
                               "mse+lpips": ImageLoss(mse=1.0, lpips=1.0)}


def image_loss(name: str, choices: tuple[str, ...] = tuple(NAMED), label: str = "image loss") -> ImageLoss:
    """The named loss (bce | mse | mse+lpips) among ``choices``; one GaninvError line for any other name."""
    if name not in choices:
        raise GaninvError(f"{label} must be one of {', '.join(choices)}, got {name!r}")
    return NAMED[name]
