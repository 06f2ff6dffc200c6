"""Hybrid inversion: an encoder's answer as the start of a short optimisation (``invert`` then N Adam steps on
the image loss through the frozen generator). Works with any run that can invert — aegan, regression/projection,
dlsgan, bigan.

**Never worse than the same number of steps from the mean, by construction.** The hybrid runs N steps from the
encoder's answer *and*, with the very same settings (``OPTIMIZE_LR``, constant, Adam), N steps from the space's
mean (w̄ in W / W+), and each image keeps the better end by its own loss. The second search is exactly
``invert_by_optimization(start="mean")`` (an image's search does not depend on the other images in its batch),
so per image hybrid(N) ≤ optimisation from the mean (N) for every N ≥ 1, and ≤ the encoder's own answer (each
search keeps its start when nothing beats it); N = 0 is the encoder's answer as it is. The price is a second
search: twice the generator passes of plain optimisation. Choosing one start at step 0 by its loss is not enough:
on the tiny test generator, searching from whichever start had the lower loss ended worse than the search from the
mean on 6–7 of 16 images after 10, 50 and 200 steps — the two searches settle in different dips.

Why the old hybrid (lr 0.01 from the encoder) lost to optimisation from the mean at lr 0.05: Adam's step is about
``lr`` per coordinate whatever the gradient's size, so N steps move a latent at most about lr·N·√d. The encoder's
answer is no nearer the optimum than that allows: on the tiny generator's own images 10 steps at lr 0.01 moved
latents 0.25 (the optimum lay ~1.7 away) and ended at 5× the loss of 10 steps from the mean at 0.05 (0.021 against
0.0042 MSE); at 0.05 both move alike. A small step does not buy precision near a good start; it only shortens the
walk — on the CelebA StyleGAN, 200 steps at 0.01 from the encoder (19.6 dB) lost to 100 at 0.05 from w̄ (22.1 dB).

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
from ganinv.inference.model import InversionModel, keeps_graph
from ganinv.latent import Prior
from ganinv.losses.image import ImageLoss
from ganinv.methods.optimize import (OPTIMIZE_LR, REFINE_LOSSES, STARTS, check_settings, optimize_in_view,
                                     search_in_view)
from ganinv.methods.spaces import Space, SpaceView, latent_space

REFINE_LR = OPTIMIZE_LR  # the mean's own settings: the search from the mean inside the hybrid is the plain one


def refine_loss(model: InversionModel, steps: int, lr: float, loss: str) -> ImageLoss:
    """The checked image loss of a search on ``model`` (``check_settings``), ``mse+d_features`` among its names: that
    term bound to the run's own frozen discriminator — a gan / dlsgan / dedgan / bigan run's, an imported StyleGAN's,
    an encoder run's trained with d_features — or one line naming the nets the run has instead."""
    source = f"the {model.config.method} run {getattr(model, 'source', None) or '(in memory)'}"
    return check_settings(steps, lr, loss, REFINE_LOSSES).with_discriminator(model.method.nets, source)


def refine(model: InversionModel, images: Tensor, latents: Tensor | None = None, *, steps: int = 100,
           lr: float = REFINE_LR, loss: str = "mse", space: str | Space | None = None) -> Tensor:
    """Refine ``latents`` (the run's own; default: ``model.invert(images)``) with ``steps`` optimisation steps in
    ``space`` (None: the run's own); the answer is a latent of that space."""
    if latents is None:
        if not model.can_invert:
            raise GaninvError(f"a {model.config.method!r} run has no encoder to start from; use "
                              "ganinv.methods.optimize.invert_by_optimization")
        latents = model.invert(images)
    search_loss = refine_loss(model, steps, lr, loss)
    model.check_images(images)
    view = latent_space(model.method, space)
    return refine_in_view(model, view, images, in_view(model, latents, view), steps=steps, lr=lr, loss=search_loss)


def refine_in_view(model: InversionModel, view: SpaceView, images: Tensor, start: Tensor, *, steps: int, lr: float,
                   loss: ImageLoss) -> Tensor:
    """The hybrid in a space already seen (see the module doc): ``steps`` steps from ``start`` (latents of the view's
    space) and as many from the space's mean, with the same settings; per image the end with the lower loss (ties:
    the encoder's). 0 steps: ``start`` itself — the encoder's answer converted, as asked for, not searched."""
    if steps == 0:
        return start
    from_start, start_loss = search_in_view(model, view, images, steps=steps, lr=lr, loss=loss, start=start)
    from_mean, mean_loss = search_in_view(model, view, images, steps=steps, lr=lr, loss=loss, start="mean")
    return torch.where((mean_loss < start_loss).to(from_start.device)[:, None], from_mean.to(from_start.device),
                       from_start)


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

    def __init__(self, model: InversionModel, *, steps: int = 500, lr: float = OPTIMIZE_LR, loss: str = "mse",
                 start: str = "mean", seed: int = 0, space: str | Space | SpaceView | None = None):
        image_loss = refine_loss(model, steps, lr, loss)
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
        return self._batched(self.view.generate, z, grad=keeps_graph(z, grad))

    def invert(self, x: Tensor) -> Tensor:
        x = self.prepare_images(x)  # uint8 and other sizes, as InversionModel.invert takes them
        if self.start == "encoder":
            return refine_in_view(self, self.view, x, in_view(self.base, self.base.invert(x), self.view),
                                  steps=self.steps, lr=self.lr, loss=self.image_loss)
        return optimize_in_view(self, self.view, x, steps=self.steps, lr=self.lr, loss=self.image_loss,
                                start=self.start, generator=torch.Generator().manual_seed(self.seed))
