"""frechet_distance is torchmetrics' FrechetInceptionDistance over our features: the numbers of the scipy formula
it replaced."""
import numpy as np
import pytest
import torch
from scipy import linalg

from ganinv.metrics.fid import frechet_distance


def scipy_frechet(a, b):
    """The hand-written formula frechet_distance used to be (scipy's sqrtm, regularised when singular)."""
    a, b = a.double().numpy(), b.double().numpy()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))


@pytest.mark.parametrize("n, width", [(2000, 8), (500, 128), (64, 128)])  # 64 < 128: singular covariances
def test_torchmetrics_agrees_with_the_scipy_formula(n, width):
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(n, width, generator=gen, dtype=torch.float64)
    fake = 1.3 * torch.randn(n, width, generator=gen, dtype=torch.float64) + 0.2
    # where the product of the covariances is singular the old formula regularised it (1e-6): a tiny difference
    assert frechet_distance(real, fake) == pytest.approx(scipy_frechet(real, fake), rel=1e-6)
    assert frechet_distance(real.float(), fake.float()) == pytest.approx(scipy_frechet(real, fake), rel=1e-5)
