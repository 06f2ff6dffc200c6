"""DED-GAN's spherical prior (seed 002) and its binary-tree transforms, as property tests: round trips, the
paper's 8-dimensional example, no underflow at d = 511, padding, the quantile preprocessing."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ganinv.core.errors import GaninvError
from ganinv.latent import (
    HALF_PI,
    cartesian_dim,
    cartesian_to_spherical,
    make_prior,
    sequential_spherical_to_cartesian,
    spherical_to_cartesian,
    spherical_to_normal,
)

# the round trip is exact in exact arithmetic; in float32 it holds to 1e-5 while no coordinate underflows, which
# log2(n) ≤ 10 factors of sin/cos ≥ sin(1e-3) guarantee (≥ 1e-30)
ANGLE = st.floats(float(np.float32(1e-3)), float(np.float32(HALF_PI - 1e-3)), width=32)


@pytest.mark.parametrize("n", [2, 8, 64, 512, 1024])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_binary_tree_round_trips_and_gives_positive_unit_vectors(n, data):
    angles = torch.from_numpy(data.draw(arrays(np.float32, (3, n - 1), elements=ANGLE)))
    x = spherical_to_cartesian(angles)
    assert x.shape == (3, n) and x.dtype == torch.float32
    assert bool((x > 0).all())
    assert torch.allclose(x.norm(dim=1), torch.ones(3), atol=1e-5)
    back = cartesian_to_spherical(x)
    assert back.shape == angles.shape
    assert (back - angles).abs().max().item() < 1e-5
    # only the direction matters: Algorithm 3 on an unnormalised vector gives the same angles
    assert (cartesian_to_spherical(x * 37.0) - angles).abs().max().item() < 1e-5


@pytest.mark.parametrize("n", [2, 8, 64, 512, 1024])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_prior_samples_round_trip(n, seed):
    prior = make_prior("spherical", n - 1)
    z = prior.sample(16, generator=torch.Generator().manual_seed(seed))
    x = spherical_to_cartesian(z)
    assert bool((x > 0).all()) and torch.allclose(x.norm(dim=1), torch.ones(16), atol=1e-5)
    assert (cartesian_to_spherical(x) - z).abs().max().item() < 1e-5


def test_tree_matches_the_papers_eight_dimensional_example():
    phi = torch.tensor([0.3, 0.5, 0.7, 0.2, 0.4, 0.6, 0.8], dtype=torch.float64)  # φ; φ0, φ1; φ00, φ01, φ10, φ11
    s, c = torch.sin, torch.cos
    p, p0, p1, p00, p01, p10, p11 = phi
    expected = torch.stack([s(p) * s(p0) * s(p00), s(p) * s(p0) * c(p00), s(p) * c(p0) * s(p01),
                            s(p) * c(p0) * c(p01), c(p) * s(p1) * s(p10), c(p) * s(p1) * c(p10),
                            c(p) * c(p1) * s(p11), c(p) * c(p1) * c(p11)])
    assert torch.allclose(spherical_to_cartesian(phi), expected, atol=1e-12)
    # the sequential transform is another chart of the same sphere: unit norm, different coordinates
    seq = sequential_spherical_to_cartesian(phi)
    assert seq.norm().item() == pytest.approx(1.0) and seq[0].item() == pytest.approx(math.cos(0.3))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_tree_never_underflows_at_d511_where_the_sequential_transform_does(seed):
    z = make_prior("spherical", 511).sample(8, generator=torch.Generator().manual_seed(seed))
    tree, sequential = spherical_to_cartesian(z), sequential_spherical_to_cartesian(z)
    tree_zeros, sequential_zeros = int((tree == 0).sum()), int((sequential == 0).sum())
    print(f"d=511, 8 samples × 512 float32 coordinates: {sequential_zeros} zeros sequential, {tree_zeros} tree")
    assert sequential_zeros > 0, "the sequential transform should underflow at d = 511 in float32"
    assert tree_zeros == 0
    assert tree.min().item() >= torch.finfo(torch.float32).tiny  # normal floats, not even subnormal
    # underflow makes the sequential chart lossy: the angles behind the zeroed tail are gone
    assert sequential_zeros > 8 * 100  # typically ~70 % of the coordinates


def test_padding_for_dimensions_whose_d_plus_1_is_not_a_power_of_two():
    assert [cartesian_dim(d) for d in (1, 3, 7, 63, 511, 100, 8, 6)] == [2, 4, 8, 64, 512, 128, 16, 8]
    z = make_prior("spherical", 100).sample(5, generator=torch.Generator().manual_seed(0))
    x = spherical_to_cartesian(z)
    assert x.shape == (5, 128) and bool((x > 0).all())
    assert torch.allclose(x.norm(dim=1), torch.ones(5), atol=1e-5)
    full = cartesian_to_spherical(x)
    assert torch.allclose(full[:, 100:], torch.full((5, 27), math.pi / 4), atol=1e-5)  # the padded leaves
    assert (cartesian_to_spherical(x, angle_dim=100) - z).abs().max().item() < 1e-5
    with pytest.raises(GaninvError, match="power-of-two"):
        cartesian_to_spherical(torch.rand(2, 6))
    with pytest.raises(GaninvError, match="angle_dim"):
        cartesian_to_spherical(torch.rand(2, 8), angle_dim=8)


def test_spherical_prior_support_mean_and_quantile_preprocessing():
    prior = make_prior("spherical", 64)
    z = prior.sample(4000, generator=torch.Generator().manual_seed(0))
    assert bool((z > 0).all() and (z < HALF_PI).all())
    assert z.mean().item() == pytest.approx(math.pi / 4, abs=0.01)
    assert z.std().item() == pytest.approx(prior.std(), abs=0.01)
    assert prior.bounds == (0.0, HALF_PI)
    assert torch.allclose(prior.mean(2), torch.full((2, 64), math.pi / 4))
    clamped = prior.clamp(torch.tensor([[-1.0, 0.0, HALF_PI, 3.0]]))
    assert bool((clamped > 0).all() and (clamped < HALF_PI).all())
    assert bool((torch.cos(clamped) > 0).all())  # float32(π/2) > π/2: the clamp keeps cosines positive
    g = spherical_to_normal(z)  # Φ⁻¹(z/(π/2)): what the generator's network sees
    assert g.mean().item() == pytest.approx(0.0, abs=0.02) and g.std().item() == pytest.approx(1.0, abs=0.02)
    assert bool(torch.isfinite(spherical_to_normal(torch.tensor([0.0, HALF_PI, 4.0]))).all())
    assert spherical_to_normal(torch.tensor([math.pi / 4])).abs().item() < 1e-6  # the median maps to 0
