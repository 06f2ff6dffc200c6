"""The image loss: one weighted sum of image terms, shared by optimisation (and so the hybrid), every encoder method
(aegan, regression, iterative) and pivotal tuning — and the one LPIPS policy they all follow.

    loss = ImageLoss(mse=1.0, lpips=1.0)       weights of the terms; a term of weight 0 is not computed
    total, parts = loss(x, y)                  the batch mean (a scalar) and each term's unweighted value, by name
    total, parts = loss.per_image(x, y)        one value per image (optimisation keeps each image's best latent)
    loss.describe()                            "mse + lpips": what a table or report prints beside its numbers
    image_loss("mse+lpips")                    the named losses the options and the CLI take (``NAMED``)

Terms (images in [0, 1], computed in float32): ``mse`` (pixel mean of squares), ``l1`` (pixel mean of absolute
differences), ``bce`` (AEGAN (Luo et al.) eq. 5: pixels as Bernoulli probabilities, clamped away from 0 and 1),
``lpips`` (LPIPS with torchmetrics' AlexNet, differentiable) and ``d_features`` (the offline perceptual term:
distances between a frozen discriminator's normalised feature maps, ``ganinv.losses.features``; it needs a run's
discriminator, bound with ``with_discriminator``, and its description names that run). A new term is one more
weight field and one more entry in ``TERMS`` (or, needing a net, in ``_term``).

The LPIPS policy, in this one place (its files: ``ganinv.metrics.image``): *present* — the real AlexNet weights in
the torch hub cache are used; *absent, online* — they are downloaded on first use, as torchvision does (one line on
stderr says so), then checked as a placed file is; *offline* (``GANINV_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, or the
download failed) — the reason is one line naming the file to place and where. A loss that *asks* for LPIPS
(weight > 0) is refused before any work by ``require`` with one ``GaninvError``, and computing it anyway (a run
resumed on another machine) raises the same line: never a silent switch to MSE. A default that merely *offers* LPIPS
when it can (pivotal tuning's PTI loss; the user asked for nothing) uses ``when_available``: the term is dropped,
said once through the caller's ``say``, and the caller records that it was. No term is ever switched on silently
either: ``d_features`` is off unless a weight asks for it, and ``describe`` names it with its discriminator.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.losses import BCE_EPS, reconstruction_bce
from ganinv.losses.features import DiscriminatorFeatures, discriminator_features
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


def d_features_term(features: DiscriminatorFeatures | None, x: Tensor, y: Tensor, per_image: bool) -> Tensor:
    if features is None:
        raise GaninvError("the d_features image term has no discriminator to read: bind a run's with "
                          "ImageLoss.with_discriminator(nets, source) before computing it")
    distance = features(x, y)
    return distance if per_image else distance.mean()


TERMS: dict[str, Callable[[Tensor, Tensor, bool], Tensor]] = {"mse": mse_term, "l1": l1_term, "bce": bce_term,
                                                              "lpips": lpips_term}
NEEDS_A_NET = ("d_features",)  # terms computed with a net the loss is bound to (ImageLoss._term)


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
    d_features: float = 0.0
    features: DiscriminatorFeatures | None = field(default=None, repr=False)  # d_features' net: with_discriminator

    def __post_init__(self):
        weights = self.weights()
        bad = {name: w for name, w in weights.items() if not (isinstance(w, (int, float)) and math.isfinite(w)
                                                                and w >= 0)}
        if bad:
            raise GaninvError(f"image loss weights must be finite numbers >= 0, got {bad}")
        if not any(weights.values()):
            raise GaninvError("an image loss needs at least one term with a weight > 0")

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in (*TERMS, *NEEDS_A_NET)}

    def describe(self) -> str:
        """The terms in use as a table or report names them: ``"mse + 0.1·d_features (discriminator of RUN)"``."""
        shown = [name if w == 1 else f"{w:g}·{name}" for name, w in self.weights().items() if w > 0]
        if self.d_features > 0:
            whose = self.features.source if self.features is not None else "no discriminator bound yet"
            shown[-1] += f" ({whose})"  # d_features is the last weight field
        return " + ".join(shown)

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(total, parts) as batch means: each term's mean over every pixel (LPIPS: over the images)."""
        return self._sum(x, y, per_image=False)

    def per_image(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(total, parts), one value per image (N,): an image's loss does not depend on the batch it is in."""
        return self._sum(x, y, per_image=True)

    def _sum(self, x: Tensor, y: Tensor, per_image: bool) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = x.float(), y.float()
        weights = {name: w for name, w in self.weights().items() if w > 0}
        parts = {name: self._term(name, x, y, per_image) for name in weights}
        total = None
        for name, value in parts.items():
            total = weights[name] * value if total is None else total + weights[name] * value
        return total, parts

    def _term(self, name: str, x: Tensor, y: Tensor, per_image: bool) -> Tensor:
        if name == "d_features":
            return d_features_term(self.features, x, y, per_image)
        return TERMS[name](x, y, per_image)

    def with_discriminator(self, nets: Mapping[str, nn.Module], source: str) -> ImageLoss:
        """This loss with its d_features term bound to a frozen copy of ``nets["discriminator"]`` (a run's nets;
        ``source`` names the run, e.g. ``"the gan run runs/gan"``); unchanged when the term is off. One GaninvError
        line when the term is on and the run has no discriminator."""
        if self.d_features == 0:
            return self
        return dataclasses.replace(self, features=discriminator_features(nets, source))

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
                               "mse+lpips": ImageLoss(mse=1.0, lpips=1.0),
                               "mse+d_features": ImageLoss(mse=1.0, d_features=1.0)}  # bind: with_discriminator


def image_loss(name: str, choices: tuple[str, ...] = tuple(NAMED), label: str = "image loss") -> ImageLoss:
    """The named loss (bce | mse | mse+lpips | mse+d_features) among ``choices``; one GaninvError line for any other
    name. A method offers a name by listing it in its choices (and binds d_features' discriminator)."""
    if name not in choices:
        raise GaninvError(f"{label} must be one of {', '.join(choices)}, got {name!r}")
    return NAMED[name]
