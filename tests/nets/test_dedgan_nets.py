"""DED-GAN's nets (seed 002): the direction discriminator and the quantile style generator."""
import torch

from ganinv.latent import make_prior, spherical_to_normal
from ganinv.nets.dedgan import DirectionDiscriminator, QuantileStyleGenerator, split_embedding


def test_direction_discriminator_and_quantile_generator():
    torch.manual_seed(0)
    G = QuantileStyleGenerator(latent_dim=7, image_size=16, width=8, channels=1, mapping_layers=2)
    D = DirectionDiscriminator(image_size=16, width=8, channels=1, direction_dim=8)
    z = make_prior("spherical", 7).sample(5)
    x = G(z)
    assert x.shape == (5, 1, 16, 16) and 0 <= x.min() and x.max() <= 1
    assert torch.allclose(x, G.generator(spherical_to_normal(z)))
    e = D(x)
    assert e.shape == (5, 8) and bool((e > 0).all())
    assert not hasattr(D, "adversarial")
    assert torch.allclose(D(x[:2]), e[:2], atol=1e-5)  # one image, one embedding
    v, direction = split_embedding(e)
    assert torch.allclose(v, e.norm(dim=1).log()) and torch.allclose(direction.norm(dim=1), torch.ones(5))
    v0, d0 = split_embedding(torch.zeros(2, 8))  # every softplus underflowed: finite, no NaN
    assert bool(torch.isfinite(v0).all()) and bool((d0 == 0).all())
