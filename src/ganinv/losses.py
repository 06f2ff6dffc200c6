"""Small loss callables; each method composes them."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """DCGAN's D objective (seed 001 eq. 4): −log D(x) − log(1 − D(G(z))), on logits for stability."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def gan_generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating G objective −log D(G(z)) that DCGAN trains with in place of log(1 − D(G(z)))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def reconstruction_bce(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Seed 001 eq. 5: −x log x' − (1 − x) log(1 − x'), pixels treated as Bernoulli, mean over pixels.

    Computed in float32 (BCE on probabilities is unsafe under autocast), clamped away from 0 and 1.
    """
    eps = 1e-6
    return F.binary_cross_entropy(reconstruction.float().clamp(eps, 1 - eps), target.float())


def latent_mse(predicted: Tensor, target: Tensor) -> Tensor:
    """The 'directly trained' inverse model's loss ||z − IG(G(z))||² (seed 001 eq. 3, without labels)."""
    return F.mse_loss(predicted.float(), target.float())
