"""The kernel distance (KID's unbiased polynomial-kernel MMD², Bińkowski et al.): the estimator itself on one
subset, near zero for one distribution, clipped subsets on a small real side, seeded, and named by its features."""
import numpy as np
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.metrics import kernel_distance
from ganinv.metrics.fid import kernel_name


def unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """MMD²_u with k(a, b) = (a·b / d + 1)³, written out: the diagonal terms left out of the within-set means."""
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / m**2)


def test_one_subset_of_everything_is_the_unbiased_estimator():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (40, 5)), rng.normal(0.3, 1.2, (40, 5))
    mean, std = kernel_distance(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=40)
    assert mean == pytest.approx(unbiased_poly_mmd(x, y), rel=1e-9) and std == 0.0


def test_same_distribution_is_near_zero_and_a_shift_is_not():
    gen = torch.Generator().manual_seed(0)
    real, same = torch.randn(600, 16, generator=gen), torch.randn(600, 16, generator=gen)
    shifted = torch.randn(600, 16, generator=gen) + 0.5
    near, near_std = kernel_distance(real, same, subsets=20, subset_size=200)
    far, _ = kernel_distance(real, shifted, subsets=20, subset_size=200)
    assert abs(near) < 3 * near_std + 1e-3  # unbiased: zero within its noise, may be slightly negative
    assert far > 10 * abs(near) and far > 0.05


def test_subset_size_is_clipped_to_the_smaller_side_and_seeded():
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(30, 8, generator=gen), torch.randn(500, 8, generator=gen)
    before = torch.get_rng_state()
    a = kernel_distance(real, fake, subsets=5, subset_size=1000, seed=3)  # torchmetrics' KID class would refuse
    assert torch.equal(before, torch.get_rng_state())  # a seeded generator: the global RNG is untouched
    assert a == kernel_distance(real, fake, subsets=5, subset_size=1000, seed=3)
    assert a != kernel_distance(real, fake, subsets=5, subset_size=1000, seed=4)
    # 500 copies of one vector: any 30 of them are the same set, so the clipped estimate is known exactly
    one = fake[:1].expand(500, -1)
    mean, _ = kernel_distance(real, one, subsets=2, subset_size=1000)
    assert mean == pytest.approx(unbiased_poly_mmd(real.double().numpy(), one[:30].double().numpy()), rel=1e-9)


def test_refuses_too_few_images_or_mismatched_features():
    with pytest.raises(GaninvError, match="at least 2"):
        kernel_distance(torch.randn(1, 4), torch.randn(10, 4))
    with pytest.raises(GaninvError, match="one width"):
        kernel_distance(torch.randn(10, 4), torch.randn(10, 5))


def test_named_by_the_features_it_measures():
    assert kernel_name("FID") == "KID" and kernel_name("FD-domain") == "KID-domain"
