"""DED-GAN's nets (Cho): the style generator behind a quantile preprocessing, and a residual discriminator
whose one head is the direction embedding.

* ``QuantileStyleGenerator``: angles z_s ∈ (0, π/2)^d → images. Its first, parameter-free operation is the paper's
  "quantile function of normal distribution ... so that the neural network part of the generator receives N(0,1)"
  (§5.1): Φ⁻¹(z_s / (π/2)) (``ganinv.latent.spherical_to_normal``); the body is ``StyleGenerator`` unchanged. It is
  a wrapper, not a ``StyleGenerator`` subclass, on purpose: code that recognises a style generator (e.g. freezing
  one under a post-hoc method, ``ganinv.inference.wrap``) must not mistake it for one that takes z directly.
  Its W is StyleGAN2's 512 wide (``w_dim``), not d wide as ``StyleGenerator``'s default: an 8-layer mapper of
  *square* d×d layers (lr ×0.01) starts ill-conditioned — at d = 63 the median singular value of ∂w/∂z is ~1e-3,
  at d = 7 ~5e-4 — so G(z) ignores most directions of z, nothing can recover them from the image, and L_emb
  stalls near chance (docs/reproduction.md, DED-GAN). A first layer d → 512 keeps every direction of z in w.
* ``DirectionDiscriminator``: ``ResidualDiscriminator``'s trunk (no minibatch stddev, so one image is embedded as
  one vector) with a single dense head of n = ``cartesian_dim(d)`` outputs through softplus (§2: "so that the
  discriminator always outputs positive vectors"). Its norm is the adversarial value, v = log‖D(x)‖, its direction
  the predicted cartesian latent z'_c = D(x)/‖D(x)‖ (``split_embedding``).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.latent import spherical_to_normal
from ganinv.nets.style import ResidualDiscriminator, StyleGenerator

STYLEGAN2_W_DIM = 512  # StyleGAN2's W width, whatever d is (see the module docstring)
EMBEDDING_NORM_FLOOR = 1e-30  # ‖D(x)‖ below this (every softplus output underflowed) is read as this


class QuantileStyleGenerator(nn.Module):
    """Spherical angles (N×latent_dim, in (0, π/2)) → images in [0, 1]: ``StyleGenerator(Φ⁻¹(z_s/(π/2)))``."""

    def __init__(self, *, latent_dim: int, image_size: int, width: int, channels: int, mapping_layers: int = 8,
                 w_dim: int | None = STYLEGAN2_W_DIM):
        super().__init__()
        self.generator = StyleGenerator(latent_dim=latent_dim, image_size=image_size, width=width,
                                        channels=channels, mapping_layers=mapping_layers, w_dim=w_dim)

    def forward(self, angles: Tensor) -> Tensor:
        return self.generator(spherical_to_normal(angles))


class DirectionDiscriminator(ResidualDiscriminator):
    """Images in [0, 1] → the embedding D(x) (N×direction_dim), every element > 0 (softplus)."""

    def __init__(self, *, image_size: int, width: int, channels: int, direction_dim: int, max_width: int = 512):
        super().__init__(image_size=image_size, width=width, channels=channels, latent_dim=direction_dim,
                         max_width=max_width)
        del self.adversarial  # one head: its norm is the adversarial value
        self.direction_dim = direction_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(self.latent(self.features(x)))


def split_embedding(embedding: Tensor) -> tuple[Tensor, Tensor]:
    """D(x) (N×n) → (v = log‖D(x)‖ [N], z'_c = D(x)/‖D(x)‖ [N×n]), in float32; the norm floored at
    ``EMBEDDING_NORM_FLOOR`` so an all-zero embedding gives a finite v and a zero direction, never NaN."""
    embedding = embedding.float()
    norm = embedding.norm(dim=1, keepdim=True).clamp_min(EMBEDDING_NORM_FLOOR)
    return norm.squeeze(1).log(), embedding / norm
