"""The NVlabs-layout StyleGAN2 discriminator (ganinv.nets.stylegan2_d): NVlabs' tensor names, logits equal to those
NVlabs' own ``Discriminator`` gives for fixed weights and images (recorded once from stylegan2-ada-pytorch's
training/networks.py on CPU, float32), the minibatch std layer's groups, and the config's typed, bounded reading of
recorded constructor kwargs."""
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.nets.stylegan2 import setup_filter
from ganinv.nets.stylegan2_d import (
    DiscriminatorConfig,
    MinibatchStdLayer,
    StyleGAN2Discriminator,
    conv2d_down,
    downsample2d,
)

NVLABS_KEYS_16PX_RESNET = [  # NVlabs Discriminator(c_dim=0, img_resolution=16, img_channels=3).state_dict()
    "b16.resample_filter", "b16.fromrgb.weight", "b16.fromrgb.bias", "b16.fromrgb.resample_filter",
    "b16.conv0.weight", "b16.conv0.bias", "b16.conv0.resample_filter", "b16.conv1.weight", "b16.conv1.bias",
    "b16.conv1.resample_filter", "b16.skip.weight", "b16.skip.resample_filter", "b8.resample_filter",
    "b8.conv0.weight", "b8.conv0.bias", "b8.conv0.resample_filter", "b8.conv1.weight", "b8.conv1.bias",
    "b8.conv1.resample_filter", "b8.skip.weight", "b8.skip.resample_filter", "b4.conv.weight", "b4.conv.bias",
    "b4.conv.resample_filter", "b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias"]

# NVlabs' logits for deterministic() weights and IMAGES, channel_base 128, channel_max 16, conv_clamp 1.5, mbstd 2
NVLABS_LOGITS = {"resnet": [1.918053, 1.924126], "skip": [-0.055863, -0.057012], "orig": [-0.345115, -0.348655]}


def deterministic(net):
    """Weights from a formula, not an RNG: the same on any machine and torch version."""
    with torch.no_grad():
        for i, (name, tensor) in enumerate(net.state_dict().items()):
            if "filter" not in name:
                values = torch.sin(torch.arange(tensor.numel(), dtype=torch.float64) * 0.7 + i)
                tensor.copy_(values.reshape(tensor.shape).float())
    return net


def images():
    n = 3 * 16 * 16
    ramp = torch.arange(n, dtype=torch.float64)
    return torch.stack([torch.cos(ramp * 0.013), torch.sin(ramp * 0.029)]).reshape(2, 3, 16, 16).float()


def config(**changes):
    kwargs = {"c_dim": 0, "img_resolution": 16, "img_channels": 3, "channel_base": 128, "channel_max": 16,
              "conv_clamp": 1.5, "epilogue_kwargs": {"mbstd_group_size": 2}, **changes}
    return DiscriminatorConfig.from_nvlabs_kwargs((), kwargs)


def test_the_state_dict_has_nvlabs_names_in_nvlabs_order():
    net = StyleGAN2Discriminator(config())
    assert list(net.state_dict()) == NVLABS_KEYS_16PX_RESNET
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["b16.fromrgb.weight"] == (8, 3, 1, 1) and shapes["b16.conv1.weight"] == (16, 8, 3, 3)
    assert shapes["b4.conv.weight"] == (16, 17, 3, 3) and shapes["b4.fc.weight"] == (16, 256)  # + one mbstd map
    assert shapes["b4.out.weight"] == (1, 16) and "b16.skip.bias" not in shapes
    skip = StyleGAN2Discriminator(config(architecture="skip")).state_dict()
    assert "b8.fromrgb.weight" in skip and "b4.fromrgb.weight" in skip and "b8.skip.weight" not in skip
    orig = StyleGAN2Discriminator(config(architecture="orig")).state_dict()
    assert "b8.fromrgb.weight" not in orig and not any(".skip." in k for k in orig)


@pytest.mark.parametrize("arch", ["resnet", "skip", "orig"])
def test_logits_equal_nvlabs_for_the_same_weights_and_images(arch):
    net = deterministic(StyleGAN2Discriminator(config(architecture=arch)).eval())
    with torch.no_grad():
        logits = net(images())
    assert logits.shape == (2, 1)
    assert torch.allclose(logits.flatten(), torch.tensor(NVLABS_LOGITS[arch]), atol=1e-5)


def test_the_downsampling_conv_halves_and_keeps_a_constant_in_the_interior():
    f = setup_filter((1, 3, 3, 1))
    x = torch.ones(1, 2, 8, 8)
    assert downsample2d(x, f).shape == (1, 2, 4, 4) and torch.allclose(downsample2d(x, f)[..., 1:-1, 1:-1],
                                                                       torch.ones(1, 2, 2, 2))
    w = torch.randn(5, 2, 3, 3)
    y = conv2d_down(x, w, f, down=2, padding=1)
    assert y.shape == (1, 5, 4, 4)
    assert torch.allclose(y[..., 1:-1, 1:-1], w.sum(dim=(1, 2, 3))[None, :, None, None].expand(1, 5, 2, 2),
                          atol=1e-5)
    assert conv2d_down(x, w[:, :, :1, :1], f, down=2, padding=0).shape == (1, 5, 4, 4)


def test_the_minibatch_std_layer_groups_samples_as_nvlabs():
    layer = MinibatchStdLayer(group_size=2)
    x = torch.stack([torch.zeros(4, 2, 2), torch.ones(4, 2, 2), torch.zeros(4, 2, 2), 3 * torch.ones(4, 2, 2)])
    y = layer(x)  # groups are samples {0, 2} and {1, 3}: i mod (N / G)
    assert y.shape == (4, 5, 2, 2) and torch.equal(y[:, :4], x)
    assert torch.allclose(y[:, 4, 0, 0], torch.tensor([1e-4, 1.0, 1e-4, 1.0]), atol=1e-6)
    assert MinibatchStdLayer(group_size=None)(x).shape == (4, 5, 2, 2)
    with pytest.raises(ValueError, match="multiple of its group size"):
        MinibatchStdLayer(group_size=3)(x)


def test_recorded_kwargs_are_typed_and_bounded():
    cases = [({"img_resolution": 2**20}, "img_resolution must be an integer in"),
             ({"img_resolution": "16"}, "img_resolution must be an integer in"),
             ({"img_resolution": 24}, "power-of-two"),
             ({"channel_max": 10**9}, "channel_max"),
             ({"architecture": ["resnet"]}, "architecture must be one of"),
             ({"c_dim": 10}, "conditional"),
             ({"conv_clamp": float("nan")}, "conv_clamp"),
             ({"block_kwargs": {"activation": "tanh"}}, "activation"),
             ({"block_kwargs": {"resample_filter": [1] * 100}}, "resample_filter"),
             ({"epilogue_kwargs": {"mbstd_num_channels": 3}}, "do not split"),
             ({"epilogue_kwargs": {"mbstd_group_size": True}}, "mbstd_group_size"),
             ({"epilogue_kwargs": []}, "not a dict"),
             ({"something_else": 1}, "unsupported NVlabs discriminator kwarg")]
    for changes, message in cases:
        with pytest.raises(GaninvError, match=message) as info:
            config(**changes)
        assert "\n" not in str(info.value)
    frozen = config(block_kwargs={"freeze_layers": 2, "fp16_channels_last": True}, num_fp16_res=4)
    assert frozen == config()  # training-only settings change no tensor and no maths
    assert DiscriminatorConfig.from_dict(config().to_dict()) == config()
    with pytest.raises(GaninvError, match="unknown StyleGAN2 discriminator config entries: extra"):
        DiscriminatorConfig.from_dict({**config().to_dict(), "extra": 1})
