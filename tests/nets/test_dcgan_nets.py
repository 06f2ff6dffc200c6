"""The `paper` preset must be exactly seed 001's tables 3, 4 and 5; other sizes the same family."""
import pytest
import torch
from torch import nn

from ganinv.nets.dcgan import Discriminator, Generator, InverseGenerator, stage_widths


def layer_trace(net: nn.Module, x: torch.Tensor):
    """(type, output shape) of every conv/deconv/linear/BN/activation, in call order."""
    trace = []
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.Sigmoid)
    hooks = [m.register_forward_hook(lambda m, i, o: trace.append((type(m).__name__, tuple(o.shape[1:]))))
             for m in net.modules() if isinstance(m, kinds)]
    net.eval()
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    return trace, out


def test_generator_is_table_3():
    g = Generator(latent_dim=100, image_size=64, width=64, channels=3)
    trace, out = layer_trace(g, torch.zeros(2, 100))
    assert trace == [
        ("Linear", (4 * 4 * 64 * 8,)), ("BatchNorm2d", (512, 4, 4)), ("ReLU", (512, 4, 4)),
        ("ConvTranspose2d", (256, 8, 8)), ("BatchNorm2d", (256, 8, 8)), ("ReLU", (256, 8, 8)),
        ("ConvTranspose2d", (128, 16, 16)), ("BatchNorm2d", (128, 16, 16)), ("ReLU", (128, 16, 16)),
        ("ConvTranspose2d", (64, 32, 32)), ("BatchNorm2d", (64, 32, 32)), ("ReLU", (64, 32, 32)),
        ("ConvTranspose2d", (3, 64, 64)), ("Sigmoid", (3, 64, 64)),
    ]
    for m in g.modules():
        if isinstance(m, nn.ConvTranspose2d):
            assert m.kernel_size == (5, 5) and m.stride == (2, 2)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("cls,activation,head", [(Discriminator, "LeakyReLU", 1), (InverseGenerator, "ReLU", 100)])
def test_discriminator_and_inverse_generator_are_tables_4_and_5(cls, activation, head):
    net = cls(image_size=64, width=64, channels=3) if cls is Discriminator else cls(
        latent_dim=100, image_size=64, width=64, channels=3)
    trace, out = layer_trace(net, torch.rand(2, 3, 64, 64))
    expected = []
    for ch, size in ((64, 32), (128, 16), (256, 8), (512, 4)):
        expected += [("Conv2d", (ch, size, size)), ("BatchNorm2d", (ch, size, size)), (activation, (ch, size, size))]
    expected.append(("Linear", (head,)))
    assert trace == expected
    assert net.head.in_features == 4 * 4 * 64 * 8
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            assert m.kernel_size == (5, 5) and m.stride == (2, 2)
    if cls is Discriminator:
        assert out.shape == (2,)
    else:
        assert out.shape == (2, 100) and out.abs().max() < 1  # tanh head: inside U(-1,1)'s support


@pytest.mark.parametrize("size", [8, 16, 32, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_other_sizes_round_trip_shapes(size, channels):
    g = Generator(latent_dim=7, image_size=size, width=4, channels=channels)
    ig = InverseGenerator(latent_dim=7, image_size=size, width=4, channels=channels, latent_bound=None)
    d = Discriminator(image_size=size, width=4, channels=channels)
    x = g(torch.rand(3, 7))
    assert x.shape == (3, channels, size, size)
    assert ig(x).shape == (3, 7) and d(x).shape == (3,)


@pytest.mark.parametrize("size", [0, 6, 48])
def test_non_power_of_two_sizes_are_refused(size):
    with pytest.raises(ValueError, match="power-of-two"):
        Generator(image_size=size)


def test_encoder_widths_stop_at_max_width():
    assert stage_widths(1024, 32) == [32, 64, 128, 256, 512, 1024, 2048, 4096]
    assert stage_widths(1024, 32, max_width=512) == [32, 64, 128, 256, 512, 512, 512, 512]
    capped = InverseGenerator(latent_dim=8, image_size=256, width=32, channels=3, max_width=128)
    assert max(m.out_channels for m in capped.modules() if isinstance(m, torch.nn.Conv2d)) == 128
