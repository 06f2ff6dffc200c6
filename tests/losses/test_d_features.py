"""The offline perceptual term d_features (ganinv.losses.features): a frozen copy of a run's own discriminator, its
normalised feature maps compared; off unless a weight asks for it, refused in one line when there is no
discriminator, and named with its run wherever the loss is described."""
import pytest
import torch

import ganinv
from ganinv.core.errors import GaninvError
from ganinv.losses.features import DiscriminatorFeatures, unit_channels
from ganinv.losses.image import NAMED, ImageLoss, image_loss
from ganinv.nets.bigan import JointDiscriminator
from ganinv.nets.style import ResidualDiscriminator


def images(n=3, channels=1, side=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, side, side, generator=g), torch.rand(n, channels, side, side, generator=g)


@pytest.fixture(scope="module")
def gan_nets(gan_run):
    return ganinv.load(gan_run).method.nets


def test_the_gan_runs_own_discriminator_gives_the_term_by_name(gan_nets, gan_run):
    assert "discriminator" in gan_nets  # what a gan run saves, and ganinv.load gives back
    loss = ImageLoss(mse=1.0, d_features=0.5).with_discriminator(gan_nets, f"the gan run {gan_run}")
    x, y = images()
    total, parts = loss(x, y)
    assert set(parts) == {"mse", "d_features"} and 0 < float(parts["d_features"]) <= 4
    assert torch.allclose(total, parts["mse"] + 0.5 * parts["d_features"])
    assert float(loss(x, x)[1]["d_features"]) < 1e-6  # a distance: zero between an image and itself
    per_image, parts = loss.per_image(x, y)
    assert per_image.shape == (3,) and torch.allclose(parts["d_features"].mean(), loss(x, y)[1]["d_features"])
    assert torch.allclose(per_image[1:], loss.per_image(x[1:], y[1:])[0], atol=1e-6)  # eval BatchNorm: batch-free
    assert loss.describe() == f"mse + 0.5·d_features (the gan run {gan_run})"


def test_the_discriminator_is_a_frozen_copy_and_gradients_reach_the_image(gan_nets):
    D = gan_nets["discriminator"]
    before = {k: v.clone() for k, v in D.state_dict().items()}
    loss = ImageLoss(d_features=1.0).with_discriminator(gan_nets, "the gan run")
    assert loss.features.net is not D and not any(p.requires_grad for p in loss.features.parameters())
    loss.features.train()
    assert not loss.features.net.training  # frozen means frozen: BatchNorm keeps its running statistics
    x, y = images()
    y.requires_grad_(True)
    first, _ = loss(x, y)
    first.backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    for _ in range(20):  # plain gradient descent on the pixels: the term must fall
        with torch.no_grad():
            y -= 0.5 * y.grad / y.grad.abs().amax()
            y.clamp_(0, 1)
        y.grad = None
        last, _ = loss(x, y)
        last.backward()
    assert float(last.detach()) < 0.8 * float(first.detach())
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items())  # the run's own D is untouched


def test_the_residual_discriminator_of_dlsgan_runs_reads_signed_pixels():
    D = ResidualDiscriminator(image_size=16, width=8, channels=3, latent_dim=4, max_width=16)
    features = DiscriminatorFeatures(D, source="a dlsgan run")
    x, y = images(channels=3)
    maps = features.maps(x)
    assert [m.shape[-1] for m in maps] == [16, 8, 4]  # from-RGB, then each residual block
    assert torch.allclose(maps[0], D.from_rgb(x * 2 - 1))
    assert features(x, y).shape == (3,) and float(features(x, x).abs().max()) < 1e-6
    with pytest.raises(GaninvError, match="reads 3-channel images"):
        features(x[:, :1], y[:, :1])


def test_unit_channels_makes_each_position_a_unit_vector():
    f = torch.randn(2, 5, 3, 3) * 7
    assert torch.allclose(unit_channels(f).norm(dim=1), torch.ones(2, 3, 3), atol=1e-5)
    assert torch.isfinite(unit_channels(torch.zeros(1, 4, 2, 2))).all()  # dead features: no NaN


def test_a_run_without_a_discriminator_is_refused_in_one_line():
    loss = NAMED["mse+d_features"]
    with pytest.raises(GaninvError) as info:
        loss.with_discriminator({"generator": torch.nn.Linear(2, 2), "encoder": torch.nn.Linear(2, 2)}, "the aegan run R")
    text = str(info.value)
    assert "\n" not in text and "the aegan run R has none" in text and "encoder, generator" in text and "dlsgan" in text
    with pytest.raises(GaninvError, match="cannot read the feature maps of a Linear"):
        loss.with_discriminator({"discriminator": torch.nn.Linear(2, 2)}, "R")
    with pytest.raises(GaninvError, match="no discriminator to read"):
        loss(*images())  # asked for and never bound: an error, not MSE alone
    assert loss.describe() == "mse + d_features (no discriminator bound yet)"


def test_the_term_is_off_unless_asked_for():
    loss = ImageLoss(mse=1.0)
    assert loss.d_features == 0 and loss.with_discriminator({}, "R") is loss
    assert set(loss(*images())[1]) == {"mse"} and loss.describe() == "mse"
    assert image_loss("mse+d_features").d_features == 1.0
    with pytest.raises(GaninvError, match="must be one of bce, mse"):
        image_loss("mse+d_features", ("bce", "mse"))  # a method offers it only by listing it


def test_bigans_joint_discriminator_gives_its_image_side():
    D = JointDiscriminator(latent_dim=4, image_size=16, width=4, channels=1)
    features = DiscriminatorFeatures(D, source="a bigan run")
    assert [m.shape[-1] for m in features.maps(images()[0])] == [8]
    with pytest.raises(GaninvError, match="cannot read"):
        DiscriminatorFeatures(JointDiscriminator(latent_dim=4, image_size=8, width=4, channels=1), source="R")
