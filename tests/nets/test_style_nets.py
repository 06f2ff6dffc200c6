"""The style nets of DLSGAN (seed 003): shapes, ranges, per-image outputs, the authors' widths, bad sizes."""
import pytest
import torch

from ganinv.nets.style import ResidualDiscriminator, StyleGenerator, resolution_widths


@pytest.mark.parametrize("size,channels", [(16, 1), (16, 3), (32, 1), (32, 3)])
def test_style_nets_shapes_and_ranges(size, channels):
    torch.manual_seed(0)
    G = StyleGenerator(latent_dim=8, image_size=size, width=8, channels=channels, mapping_layers=2)
    D = ResidualDiscriminator(image_size=size, width=8, channels=channels, latent_dim=8)
    x = G(torch.randn(6, 8) * 3)
    assert x.shape == (6, channels, size, size) and 0 <= x.min() and x.max() <= 1
    assert x.std(0).mean() > 1e-3  # the image depends on z
    logit, latent = D(x)
    assert logit.shape == (6,) and latent.shape == (6, 8)
    logit2, latent2 = D(x[:2])  # no minibatch stddev: each image's outputs depend on that image alone
    assert torch.allclose(logit[:2], logit2, atol=1e-5) and torch.allclose(latent[:2], latent2, atol=1e-5)


def test_style_widths_and_bad_sizes():
    assert resolution_widths(128, 64) == {4: 512, 8: 512, 16: 512, 32: 256, 64: 128, 128: 64}  # the authors' filters
    assert resolution_widths(16, 8) == {4: 32, 8: 16, 16: 8}
    for bad in (12, 4):
        with pytest.raises(ValueError):
            StyleGenerator(latent_dim=8, image_size=bad, width=8, channels=1)
