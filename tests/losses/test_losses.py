"""The small loss callables: R1, the NSGAN (softplus) form of the BCE losses, DLS's encoder loss, DED-GAN's
tan-angle loss."""
import math

import pytest
import torch
import torch.nn.functional as F

from ganinv.losses import (
    direction_angle,
    dls_encoder_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    nsgan_d_loss,
    nsgan_g_loss,
    r1_penalty,
    tan_angle_loss,
)


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
    torch.manual_seed(0)
    w = torch.randn(1, 2, 3, 3, requires_grad=True)
    x = torch.rand(5, 2, 3, 3, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)  # D(x) = Σ w·x ⇒ ∇_x D = w for every sample
    penalty = r1_penalty(x, logits)
    assert penalty.item() == pytest.approx(w.square().sum().item(), rel=1e-6)
    (grad_w,) = torch.autograd.grad(penalty, w)  # create_graph: the penalty trains D
    assert torch.allclose(grad_w, 2 * w)


def test_nsgan_losses_are_the_softplus_form_of_the_bce_ones():
    real, fake = torch.randn(7), torch.randn(7)
    assert nsgan_d_loss(real, fake).item() == pytest.approx(gan_discriminator_loss(real, fake).item(), rel=1e-6)
    assert nsgan_g_loss(fake).item() == pytest.approx(gan_generator_loss(fake).item(), rel=1e-6)
    assert nsgan_g_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item(), rel=1e-6)
    z, zp, s = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0.5, 1.0, 2.0])
    assert dls_encoder_loss(z, zp, s).item() == pytest.approx(((z * s - zp * s) ** 2).mean().item(), rel=1e-6)


def test_tan_angle_loss_is_tan_arccos_and_stays_finite_at_the_edges():
    gen = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.rand(6, 8, generator=gen) + 0.1, dim=1)
    v = torch.nn.functional.normalize(torch.rand(6, 8, generator=gen) + 0.1, dim=1)
    reference = torch.tan(torch.arccos((u * v).sum(1))).mean()
    assert tan_angle_loss(u, v).item() == pytest.approx(reference.item(), rel=1e-4)
    same = u.clone().requires_grad_(True)  # θ = 0: arccos' derivative is infinite, ours is finite
    loss = tan_angle_loss(u, same)
    loss.backward()
    assert loss.item() == 0.0 and bool(torch.isfinite(same.grad).all())
    orth = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]], requires_grad=True)  # θ = 90°: tan = ∞
    loss = tan_angle_loss(*orth, max_angle=math.radians(85))
    loss.backward()
    expected = math.tan(math.radians(85)) + math.radians(5) / math.cos(math.radians(85)) ** 2
    assert loss.item() == pytest.approx(expected, rel=1e-5) and bool(torch.isfinite(orth[1].grad).all())
    assert torch.rad2deg(direction_angle(*orth)).item() == pytest.approx(90.0)
