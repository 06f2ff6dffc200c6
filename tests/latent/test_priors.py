"""The latent priors: each samples its distribution, per-generator reproducible; unknown names refused."""
import math

import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.latent import make_prior


@pytest.mark.parametrize("name,low,high,std", [
    ("uniform", -1, 1, 1 / math.sqrt(3)), ("uniform_sqrt3", -math.sqrt(3), math.sqrt(3), 1.0), ("normal", None, None, 1.0),
])
def test_priors_sample_their_distribution(name, low, high, std):
    prior = make_prior(name, 64)
    z = prior.sample(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 64)
    assert abs(z.mean().item()) < 0.02
    assert abs(z.std().item() - std) < 0.02
    assert prior.std() == pytest.approx(std)
    if low is not None:
        assert z.min() >= low and z.max() <= high
        assert prior.clamp(torch.full((1, 64), 5.0)).max() == pytest.approx(high)


def test_sampling_is_per_generator_reproducible():
    prior = make_prior("normal", 8)
    a = prior.sample(5, generator=torch.Generator().manual_seed(3))
    b = prior.sample(5, generator=torch.Generator().manual_seed(3))
    c = prior.sample(5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_prior_is_refused():
    with pytest.raises(GaninvError, match="unknown prior"):
        make_prior("cauchy", 4)
