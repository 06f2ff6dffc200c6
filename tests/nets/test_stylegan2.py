"""Our StyleGAN2 generator (NVlabs layout): shapes, const noise, truncation, the rosinality conversions and config
inference, and the NVlabs kwargs it refuses. Agreement with the original code is checked outside the suite."""
import json

import pytest
import torch
import torch.nn.functional as F

from ganinv.core.errors import GaninvError
from ganinv.nets.stylegan2 import (
    StyleGAN2,
    StyleGAN2Config,
    modulated_conv2d,
    nvlabs_to_rosinality,
    rosinality_config,
    rosinality_to_nvlabs,
    setup_filter,
    upsample2d,
)


def tiny_config(**overrides) -> StyleGAN2Config:
    kwargs = {"z_dim": 8, "w_dim": 8, "img_resolution": 16, "img_channels": 3, "mapping_layers": 2, "channel_base": 128,
                  "channel_max": 32}
    return StyleGAN2Config(**{**kwargs, **overrides})


@torch.no_grad()
def randomised(config: StyleGAN2Config, seed: int = 0) -> StyleGAN2:
    """A generator whose noise strengths, biases and w_avg are non-zero, so no term hides behind a zero."""
    torch.manual_seed(seed)
    G = StyleGAN2(config).eval()
    for name, p in G.named_parameters():
        if name.endswith("noise_strength") or (name.endswith("bias") and "affine" not in name):
            p.copy_(0.3 * torch.randn_like(p))
    G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    return G


def test_shapes_num_ws_and_state_dict_layout():
    config = tiny_config()
    G = randomised(config)
    assert (G.z_dim, G.w_dim, G.img_resolution, G.img_channels) == (8, 8, 16, 3)
    assert G.num_ws == config.num_ws == 6  # b4: conv1 + torgb; b8, b16: conv0 + conv1 (torgbs share)
    z = torch.randn(5, 8)
    w = G.mapping(z)
    assert w.shape == (5, 8)
    img = G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1))
    assert img.shape == (5, 3, 16, 16) and torch.isfinite(img).all()
    assert torch.equal(img, G(z))
    assert img.std(0).mean() > 1e-3  # the image depends on z: the random init is a usable generator
    with pytest.raises(ValueError):
        G.synthesis(w)  # ws must be N×num_ws×w_dim
    shapes = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert shapes["synthesis.b4.const"] == (32, 4, 4)
    assert shapes["synthesis.b8.conv0.weight"] == (16, 32, 3, 3)
    assert shapes["synthesis.b8.conv0.noise_const"] == (8, 8)
    assert shapes["synthesis.b8.conv0.noise_strength"] == ()
    assert shapes["synthesis.b8.conv1.resample_filter"] == (4, 4)
    assert shapes["synthesis.b16.torgb.weight"] == (3, 8, 1, 1)
    assert shapes["synthesis.b16.torgb.affine.weight"] == (8, 8)
    assert shapes["mapping.fc1.weight"] == (8, 8) and shapes["mapping.w_avg"] == (8,)
    assert "synthesis.b4.conv0.weight" not in shapes and "mapping.fc2.weight" not in shapes
    assert next(iter(shapes)).startswith("synthesis.")  # NVlabs registers synthesis first


def test_const_noise_is_deterministic_and_per_sample():
    G = randomised(tiny_config())
    z = torch.randn(4, 8)
    a, b = G(z, noise_mode="const"), G(z, noise_mode="const")
    assert torch.equal(a, b)
    assert torch.allclose(G(z[1:2]), a[1:2], atol=1e-5)  # each image depends on its own z alone
    assert not torch.allclose(G(z, noise_mode="none"), a)  # the noise terms are live
    assert not torch.allclose(G(z, noise_mode="random"), a)
    with pytest.raises(ValueError):
        G(z, noise_mode="bogus")


def test_truncation():
    G = randomised(tiny_config())
    z = torch.randn(3, 8)
    assert torch.allclose(G.mapping(z, truncation_psi=0.0), G.mapping.w_avg.expand(3, -1))
    w = G.mapping(z)
    assert torch.allclose(G.mapping(z, truncation_psi=0.5), G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg), atol=1e-6)


def test_rosinality_round_trip_and_images():
    config = tiny_config()
    G = randomised(config)
    state = G.state_dict()
    ros = nvlabs_to_rosinality(state, config)
    assert ros["input.input"].shape == (1, 32, 4, 4) and ros["conv1.noise.weight"].shape == (1,)
    assert ros["noises.noise_0"].shape == (1, 1, 4, 4) and ros["to_rgbs.0.bias"].shape == (1, 3, 1, 1)
    assert "convs.0.conv.blur.kernel" in ros and "to_rgbs.1.upsample.kernel" in ros
    back = rosinality_to_nvlabs(ros, config, w_avg=state["mapping.w_avg"])
    assert list(back) == list(state)
    assert all(torch.equal(back[k], state[k]) for k in state)
    # the rosinality-layout state, with its config inferred from shapes, reproduces the images
    G2 = StyleGAN2(rosinality_config(ros)).eval()
    G2.load_state_dict(rosinality_to_nvlabs(ros, rosinality_config(ros), w_avg=state["mapping.w_avg"]))
    z = torch.randn(3, 8)
    assert torch.equal(G2(z, truncation_psi=0.7), G(z, truncation_psi=0.7))
    assert torch.equal(rosinality_to_nvlabs(ros, config)["mapping.w_avg"], torch.zeros(8))  # none given: zeros


def test_rosinality_config_inference():
    config = tiny_config(img_resolution=32, mapping_layers=3, z_dim=12, w_dim=12)
    inferred = rosinality_config(nvlabs_to_rosinality(randomised(config).state_dict(), config))
    assert inferred.resolution_channels() == config.resolution_channels() == {4: 32, 8: 16, 16: 8, 32: 4}
    assert (inferred.z_dim, inferred.w_dim, inferred.img_resolution, inferred.img_channels) == (12, 12, 32, 3)
    assert inferred.mapping_layers == 3 and inferred.mapping_lr_multiplier == 0.01 and inferred.conv_clamp is None
    assert inferred.resample_filter == (1.0, 3.0, 3.0, 1.0)
    # rosinality's channel_multiplier=2 at 64 px: NVlabs' default widths, so no explicit channel list (shapes only)
    full = StyleGAN2Config(z_dim=512, w_dim=512, img_resolution=64, img_channels=3)
    with torch.device("meta"):
        meta_state = StyleGAN2(full).state_dict()
    assert rosinality_config(nvlabs_to_rosinality(meta_state, full)) == full
    with pytest.raises(GaninvError):
        rosinality_config({"conv1.conv.weight": torch.zeros(1)})
    with pytest.raises(GaninvError, match="g_ema"):
        rosinality_config({"g_ema": {}, "g": {}})


def test_from_nvlabs_kwargs():
    kwargs = {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 256, "img_channels": 3,
                  "mapping_kwargs": {"num_layers": 2, "w_avg_beta": 0.995},
                  "synthesis_kwargs": {"channel_base": 16384, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256}}
    config = StyleGAN2Config.from_nvlabs_kwargs(kwargs)
    assert (config.z_dim, config.img_resolution, config.mapping_layers, config.channel_base) == (512, 256, 2, 16384)
    assert config.conv_clamp == 256 and config.num_ws == 14
    # the stylegan3 repository's networks_stylegan2 layout: synthesis kwargs at the top, conv_clamp default 256
    sg3 = StyleGAN2Config.from_nvlabs_kwargs({"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3,
                                                  "mapping_kwargs": {}, "channel_base": 128, "channel_max": 32})
    assert sg3.conv_clamp == 256 and sg3.channel_base == 128
    for bad in (dict(kwargs, c_dim=10),
                dict(kwargs, synthesis_kwargs=dict(kwargs["synthesis_kwargs"], architecture="resnet")),
                dict(kwargs, synthesis_kwargs=dict(kwargs["synthesis_kwargs"], magnitude_ema_beta=0.9)),
                dict(kwargs, mapping_kwargs={"activation": "relu"})):
        with pytest.raises(GaninvError):
            StyleGAN2Config.from_nvlabs_kwargs(bad)


def test_config_json_round_trip():
    config = tiny_config(channels=[32, 16, 8], resample_filter=[1, 2, 1], conv_clamp=256.0)
    assert config.channels == (32, 16, 8)
    assert StyleGAN2Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(GaninvError):
        tiny_config(img_resolution=24)


def test_ops_against_direct_definitions():
    torch.manual_seed(0)
    # ×2 FIR upsampling keeps a constant image constant away from the border (unit DC gain)
    up = upsample2d(torch.ones(1, 2, 8, 8), setup_filter([1, 3, 3, 1]))
    assert up.shape == (1, 2, 16, 16) and torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))
    # the scale-input/scale-output modulated conv equals the explicit per-sample modulated, demodulated kernel
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    ours = modulated_conv2d(x, weight, styles, padding=1)
    for n in range(3):
        k = weight * styles[n][None, :, None, None]
        k = k / (k.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(ours[n:n + 1], F.conv2d(x[n:n + 1], k, padding=1), atol=1e-5)
