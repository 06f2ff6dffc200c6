"""Hybrid inversion: an encoder's answer as the start of a short optimisation (``invert`` then N Adam steps on
the image loss through the frozen generator). Works with any run that can invert — aegan, regression/projection,
dlsgan, bigan — and never ends worse than the encoder by its own loss (each image keeps its best latent).

    refine(model, images, steps=100)            latents
    with_refinement(model, steps=100)           an InversionModel whose invert refines (for apps and compare)
    OptimizingModel(model, start="mean")        pure optimisation inversion behind the same seam
    ganinv invert RUN IMAGES --out DIR --refine 100

Each takes ``space`` (None: the run's own; a space of ``ganinv.methods.spaces`` — ``Z``, ``W``, ``WPLUS`` — or its name
"z" | "w" | "wplus", parsed once here): optimisation in a style generator's W or W+,
starting from the run's own answer converted up to that space (z → w = F(z∘s) → w repeated at every layer) or from
the space prior's mean (w̄). The model then *is* that space's: its ``prior``, ``sample``, ``generate`` and
``invert`` all speak W / W+ latents (W+ flattened layer-major: ``ganinv.methods.spaces``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.latent import Prior
from ganinv.methods.optimize import STARTS, check_settings, optimize_in_view
from ganinv.methods.spaces import Space, SpaceView, latent_space

REFINE_LR = 0.01  # smaller than a search from the mean: the start is already close


def refine(model: InversionModel, images: Tensor, latents: Tensor | None = None, *, steps: int = 100,
           lr: float = REFINE_LR, loss: str = "mse", space: str | Space | None = None) -> Tensor:
    """Refine ``latents`` (the run's own; default: ``model.invert(images)``) with ``steps`` optimisation steps in
    ``space`` (None: the run's own); the answer is a latent of that space."""
    if latents is None:
        if not model.can_invert:
            raise GaninvError(f"a {model.config.method!r} run has no encoder to start from; use "
                              "ganinv.methods.optimize.invert_by_optimization")
        latents = model.invert(images)
    search_loss = check_settings(steps, lr, loss)
    model.check_images(images)
    view = latent_space(model.method, space)
    return optimize_in_view(model, view, images, steps=steps, lr=lr, loss=search_loss,
                            start=in_view(model, latents, view))


def in_space(model: InversionModel, latents: Tensor, space: str | Space | None) -> Tensor:
    """The run's own latents as latents of ``space`` (z → w → wplus; None or the run's space: unchanged)."""
    return in_view(model, latents, latent_space(model.method, space))


def in_view(model: InversionModel, latents: Tensor, view: SpaceView) -> Tensor:
    """The run's own latents as latents of the view's space (z → w → wplus; the run's own space: unchanged)."""
    with torch.no_grad(), model.method.eval_mode():
        return view.from_run(latents.to(model.device, torch.float32)).float()


def with_refinement(model: InversionModel, *, steps: int = 100, lr: float = REFINE_LR,
                    loss: str = "mse", space: str | Space | None = None) -> InversionModel:
    """The model with ``invert`` = encoder + ``steps`` refinement steps (in ``space``: None, the run's own)."""
    return OptimizingModel(model, steps=steps, lr=lr, loss=loss, start="encoder", space=space)


class OptimizingModel(InversionModel):
    """An ``InversionModel`` whose ``invert`` searches by optimisation: from the prior's mean / a sample, or from
    the wrapped model's own encoder (``start="encoder"``: the hybrid). ``space``: search in z | w | wplus (None: the
    run's own space; or the ``SpaceView`` a caller already has); ``prior``, ``sample``, ``generate`` and ``invert``
    are then that space's."""

    def __init__(self, model: InversionModel, *, steps: int = 500, lr: float = 0.05, loss: str = "mse",
                 start: str = "mean", seed: int = 0, space: str | Space | SpaceView | None = None):
        image_loss = check_settings(steps, lr, loss)
        if start == "encoder" and not model.can_invert:
            raise GaninvError(f"start='encoder' needs a run with an inverse network; a {model.config.method!r} run "
                              "has none")
        if start not in STARTS + ("encoder",):
            raise GaninvError(f"start must be mean, sample or encoder, got {start!r}")
        super().__init__(model.method, batch_size=model.batch_size)
        self.base = model
        self.steps, self.lr, self.loss, self.start, self.seed = steps, lr, loss, start, seed
        self.image_loss = image_loss
        # a GaninvError now for w / wplus without a style generator
        self.view = space if isinstance(space, SpaceView) else latent_space(model.method, space)

    @property
    def space(self) -> Space:
        return self.view.space

    @property
    def can_invert(self) -> bool:
        return True

    @property
    def prior(self) -> Prior:
        return self.view.prior

    def generate(self, z: Tensor, *, grad: bool = False) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.prior.dim:
            raise GaninvError(f"{self.space} latents must be N×{self.prior.dim}, got {tuple(z.shape)}")
        return self._batched(self.view.generate, z, grad=grad)

    def invert(self, x: Tensor) -> Tensor:
        x = self.prepare_images(x)  # uint8 and other sizes, as InversionModel.invert takes them
        start = in_view(self.base, self.base.invert(x), self.view) if self.start == "encoder" else self.start
        return optimize_in_view(self, self.view, x, steps=self.steps, lr=self.lr, loss=self.image_loss, start=start,
                                generator=torch.Generator().manual_seed(self.seed))
