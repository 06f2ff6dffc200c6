"""Hybrid inversion: an encoder's answer as the start of a short optimisation (``invert`` then N Adam steps on
the image loss through the frozen generator). Works with any run that can invert — aegan, regression/projection,
dlsgan, bigan — and never ends worse than the encoder by its own loss (each image keeps its best latent).

    refine(model, images, steps=100)            latents
    with_refinement(model, steps=100)           an InversionModel whose invert refines (for apps and compare)
    OptimizingModel(model, start="mean")        pure optimisation inversion behind the same seam
    ganinv invert RUN IMAGES --out DIR --refine 100
"""
from __future__ import annotations

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import STARTS, check_settings, invert_by_optimization

REFINE_LR = 0.01  # smaller than a search from the mean: the start is already close


def refine(model: InversionModel, images: Tensor, latents: Tensor | None = None, *, steps: int = 100,
           lr: float = REFINE_LR, loss: str = "mse") -> Tensor:
    """Refine ``latents`` (default: ``model.invert(images)``) with ``steps`` optimisation steps."""
    if latents is None:
        if not model.can_invert:
            raise GaninvError(f"a {model.config.method!r} run has no encoder to start from; use "
                              "ganinv.methods.optimize.invert_by_optimization")
        latents = model.invert(images)
    return invert_by_optimization(model, images, steps=steps, lr=lr, loss=loss, start=latents)


def with_refinement(model: InversionModel, *, steps: int = 100, lr: float = REFINE_LR,
                    loss: str = "mse") -> InversionModel:
    """The model with ``invert`` = encoder + ``steps`` refinement steps."""
    return OptimizingModel(model, steps=steps, lr=lr, loss=loss, start="encoder")


class OptimizingModel(InversionModel):
    """An ``InversionModel`` whose ``invert`` searches by optimisation: from the prior's mean / a sample, or from
    the wrapped model's own encoder (``start="encoder"``: the hybrid)."""

    def __init__(self, model: InversionModel, *, steps: int = 500, lr: float = 0.05, loss: str = "mse",
                 start: str = "mean", seed: int = 0):
        check_settings(steps, lr, loss)
        if start == "encoder" and not model.can_invert:
            raise GaninvError(f"start='encoder' needs a run with an inverse network; a {model.config.method!r} run "
                              "has none")
        if start not in STARTS + ("encoder",):
            raise GaninvError(f"start must be mean, sample or encoder, got {start!r}")
        super().__init__(model.method, batch_size=model.batch_size)
        self.base = model
        self.steps, self.lr, self.loss, self.start, self.seed = steps, lr, loss, start, seed

    @property
    def can_invert(self) -> bool:
        return True

    def invert(self, x: Tensor) -> Tensor:
        self.check_images(x)
        start = self.base.invert(x) if self.start == "encoder" else self.start
        return invert_by_optimization(self, x, steps=self.steps, lr=self.lr, loss=self.loss, start=start,
                                      generator=torch.Generator().manual_seed(self.seed))
