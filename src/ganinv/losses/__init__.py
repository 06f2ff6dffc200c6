"""Small loss callables; each method composes them. The image loss (MSE, L1, BCE, LPIPS as one weighted sum, with
the one LPIPS policy) is ``ganinv.losses.image``."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

BCE_EPS = 1e-6  # probabilities are clamped into [eps, 1 − eps] before BCE's logarithms

def gan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """DCGAN's D objective (AEGAN (Luo et al.) eq. 4): −log D(x) − log(1 − D(G(z))), on logits for stability."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def gan_generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating G objective −log D(G(z)) that DCGAN trains with in place of log(1 − D(G(z)))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def reconstruction_bce(reconstruction: Tensor, target: Tensor) -> Tensor:
    """AEGAN (Luo et al.) eq. 5: −x log x' − (1 − x) log(1 − x'), pixels treated as Bernoulli, mean over pixels.

    Computed in float32 (BCE on probabilities is unsafe under autocast), clamped away from 0 and 1.
    """
    return F.binary_cross_entropy(reconstruction.float().clamp(BCE_EPS, 1 - BCE_EPS), target.float())


def latent_mse(predicted: Tensor, target: Tensor) -> Tensor:
    """The 'directly trained' inverse model's loss ||z − IG(G(z))||² (AEGAN paper eq. 3, no labels)."""
    return F.mse_loss(predicted.float(), target.float())


# --- DLSGAN (Cho & Krzyzak): NSGAN + R1, and the scaled encoder loss ---------------------------------------------

def nsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN, D side: mean softplus(−D(x)) + mean softplus(D(G(z))) (= −log σ(a_r) − log(1 − σ(a_g)))."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def nsgan_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN, G side: mean softplus(−D(G(z))) (= −log σ(a_g))."""
    return F.softplus(-fake_logits.float()).mean()


def r1_penalty(real_images: Tensor, real_logits: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ||∇_x D(x)||², summed over pixels, on real images.

    ``real_images`` must have ``requires_grad`` set before ``real_logits = D(real_images)``; the graph is kept
    (``create_graph=True``) so the penalty trains D. Convention (DLSGAN §4.1, and the authors' code): the loss
    term is ``λ_r1 · r1_penalty`` with λ_r1 = 10, which is Mescheder's γ/2 · ||∇||² with γ = 20. The gradient is
    taken with respect to whatever tensor D was given — scale it by (dx/dx')² to express it in other pixel units.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def dls_encoder_loss(latents: Tensor, predicted: Tensor, scale: Tensor) -> Tensor:
    """DLSGAN Algorithm 1 line 5: L_enc = avg((z − z')² ∘ s²), the MSE between z∘s and z'∘s (mean over batch
    and elements). With s = 1 (no DLS) it is the plain latent MSE of InfoGAN / ICGAN-style encoders."""
    return ((latents.float() - predicted.float()).square() * scale.float().square()).mean()


# --- DED-GAN (Cho): the direction-embedding loss ---------------------------------------------------------------------

def direction_angle(u: Tensor, v: Tensor) -> Tensor:
    """Angle (radians, per row) between unit vectors u and v (N×n), by Kahan's θ = 2·atan2(‖u − v‖, ‖u + v‖):
    accurate to float precision at every angle, where arccos(u·v) loses half the digits near 0 (float32 cannot
    resolve θ < ~0.02° from u·v) and has an infinite derivative at u·v = 1."""
    u, v = u.float(), v.float()
    return 2.0 * torch.atan2((u - v).norm(dim=-1), (u + v).norm(dim=-1))


def tan_angle_loss(target: Tensor, predicted: Tensor, max_angle: float = 1.5) -> Tensor:
    """DED-GAN (Cho) Algorithm 1 line 7, L_emb = mean tan(arccos(z_c · z'_c)), for unit vectors with positive
    coordinates (θ ∈ [0, π/2]), made numerically safe two ways:

    * θ comes from ``direction_angle`` (Kahan), not arccos of the dot product — same value, finite gradient at
      θ = 0 (where arccos' derivative is infinite) and full precision near alignment;
    * tan is **clamped** at ``max_angle`` (radians; 1.5 rad ≈ 85.9°, tan = 14.1) and continued linearly beyond
      it: tan(θ_m) + sec²(θ_m)(θ − θ_m). tan → ∞ as θ → π/2 (an embedding orthogonal to z_c, e.g. a softplus
      output that underflowed to zero on z_c's support); the tangent line keeps the loss finite and its gradient
      pointing the right way instead of cutting it off. Below θ_m the loss is exactly the paper's.
    """
    theta = direction_angle(target, predicted)
    capped = theta.clamp(max=max_angle)
    loss = torch.tan(capped) + (theta - capped) / math.cos(max_angle) ** 2
    return loss.mean()
