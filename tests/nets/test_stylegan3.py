"""The plain-PyTorch StyleGAN3 generator: shapes, determinism, truncation, NVlabs state-dict layout, config import.

(Numerical agreement with NVlabs' own code is checked outside the test suite, against the original sources.)"""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.nets.stylegan3 import StyleGAN3, StyleGAN3Config, design_lowpass_filter

TINY = {"z_dim": 16, "w_dim": 16, "img_resolution": 16, "img_channels": 3, "num_layers": 4, "channel_base": 256,
        "channel_max": 16}
CONFIGS = {
    "T": StyleGAN3Config(**TINY),
    "R": StyleGAN3Config(**dict(TINY, channel_max=32), conv_kernel=1, use_radial_filters=True),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def net(request) -> StyleGAN3:
    torch.manual_seed(0)
    return StyleGAN3(CONFIGS[request.param]).eval()


def test_shapes_and_num_ws(net):
    assert net.num_ws == net.config.num_layers + 2
    assert (net.z_dim, net.w_dim, net.img_resolution, net.img_channels) == (16, 16, 16, 3)
    z = torch.randn(3, 16)
    w = net.mapping(z)
    assert w.shape == (3, 16)  # one w per sample, not broadcast
    with torch.no_grad():
        img = net.synthesis(w.unsqueeze(1).repeat(1, net.num_ws, 1))
        assert img.shape == (3, 3, 16, 16)
        assert torch.isfinite(img).all() and 0 < img.abs().max() < 10  # a usable image, ≈[-1, 1] scale
        assert torch.equal(net.synthesis(w), img)  # a single w is broadcast to every layer
        assert torch.equal(net(z), img)
    with pytest.raises(ValueError):
        net.synthesis(torch.randn(3, net.num_ws + 1, 16))


def test_deterministic_and_batch_independent(net):
    z = torch.randn(4, 16)
    with torch.no_grad():
        a, b = net(z), net(z, noise_mode="random")  # SG3 has no noise: every mode is the same
        alone = net(z[:1])
    assert torch.equal(a, b)
    torch.testing.assert_close(alone, a[:1], atol=1e-5, rtol=0)


def test_truncation_towards_w_avg(net):
    z = torch.randn(5, 16)
    with torch.no_grad():
        net.mapping.w_avg.copy_(torch.randn(16))
        torch.testing.assert_close(net.mapping(z, truncation_psi=0.0), net.mapping.w_avg.expand(5, -1))
        w, half = net.mapping(z), net.mapping(z, truncation_psi=0.5)
        torch.testing.assert_close(half, (w + net.mapping.w_avg) / 2)
        net.mapping.w_avg.zero_()


def test_state_dict_follows_the_nvlabs_names(net):
    sd = net.state_dict()
    for key in ("mapping.w_avg", "mapping.fc0.weight", "mapping.fc1.bias", "synthesis.input.affine.weight",
                "synthesis.input.weight", "synthesis.input.transform", "synthesis.input.freqs",
                "synthesis.input.phases"):
        assert key in sd, key
    names = net.synthesis.layer_names
    assert len(names) == net.config.num_layers + 1
    assert names[0].startswith("L0_") and names[-1] == "L4_16_3"  # L{idx}_{size}_{channels}; the last is ToRGB
    assert names[-2].split("_")[1] == "16"  # the critically sampled layers work at the image size, no margin
    for name in names:
        assert sd[f"synthesis.{name}.magnitude_ema"].shape == ()
        assert f"synthesis.{name}.affine.weight" in sd
    # Filters: the upsampling ones exist where a layer upsamples; one-tap (identity) filters are absent, as in NVlabs.
    assert f"synthesis.{names[0]}.up_filter" in sd and f"synthesis.{names[0]}.down_filter" in sd
    assert not any(k.startswith(f"synthesis.{names[-1]}.") and k.endswith("_filter") for k in sd)
    assert sd["synthesis.input.affine.weight"].shape == (4, 16)
    torch.testing.assert_close(sd["synthesis.input.affine.bias"], torch.tensor([1.0, 0, 0, 0]))
    assert all(sd[f"synthesis.{n}.magnitude_ema"] == 1 for n in names)


def test_t_and_r_differ_where_nvlabs_does():
    t, r = StyleGAN3(CONFIGS["T"]), StyleGAN3(CONFIGS["R"])
    first_t, first_r = t.synthesis.layer_names[0], r.synthesis.layer_names[0]
    assert getattr(t.synthesis, first_t).weight.shape[-2:] == (3, 3)
    assert getattr(r.synthesis, first_r).weight.shape[-2:] == (1, 1)
    assert getattr(t.synthesis, first_t).down_filter.ndim == 1  # separable Kaiser sinc
    assert getattr(r.synthesis, first_r).down_filter.ndim == 2  # radially symmetric jinc (non-critical layers)
    crit = r.synthesis.layer_names[-2]
    assert getattr(r.synthesis, crit).down_filter.ndim == 1  # critically sampled layers keep separable filters


def test_state_dict_round_trip_gives_the_same_images(net):
    torch.manual_seed(1)
    other = StyleGAN3(net.config).eval()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["synthesis.input.transform"] = torch.tensor([[0.8, -0.6, 0.1], [0.6, 0.8, -0.2], [0.0, 0.0, 1.0]])
    for k in sd:
        if k.endswith("magnitude_ema"):
            sd[k] = torch.tensor(2.0)
    other.load_state_dict(sd, strict=True)
    net_copy = StyleGAN3(net.config).eval()
    net_copy.load_state_dict(sd, strict=True)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(other(z, truncation_psi=0.7), net_copy(z, truncation_psi=0.7))
        assert not torch.allclose(other(z), net(z))  # the transform and gains took effect


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    g = StyleGAN3(CONFIGS["R"])
    with torch.no_grad():
        g.synthesis.input.affine.weight.normal_()  # initialised to 0, which blocks the gradient into its w input
    g(torch.randn(2, 16)).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())


def test_filters_pass_dc():
    separable = design_lowpass_filter(12, cutoff=4.0, width=4.0, fs=32)
    radial = design_lowpass_filter(12, cutoff=4.0, width=4.0, fs=32, radial=True)
    assert design_lowpass_filter(1, cutoff=4.0, width=4.0, fs=32) is None
    assert separable.shape == (12,) and radial.shape == (12, 12)
    torch.testing.assert_close(separable.sum(), torch.tensor(1.0))
    torch.testing.assert_close(radial.sum(), torch.tensor(1.0))


def test_config_from_nvlabs_kwargs():
    # As NVlabs train.py builds an SG3-R generator: synthesis kwargs flat, training-only ones included.
    kwargs = {"z_dim": 512, "w_dim": 512, "mapping_kwargs": {"num_layers": 2}, "channel_base": 65536,
              "channel_max": 1024, "magnitude_ema_beta": 0.999, "conv_kernel": 1, "use_radial_filters": True,
              "num_fp16_res": 4, "c_dim": 0, "img_resolution": 1024, "img_channels": 3}
    config = StyleGAN3Config.from_nvlabs_kwargs(kwargs)
    assert (config.conv_kernel, config.use_radial_filters, config.channel_base) == (1, True, 65536)
    assert config.mapping_layers == 2 and config.conv_clamp == 256
    json.dumps(asdict(config))
    nested = {"z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 16, "img_channels": 1,
                  "mapping_kwargs": {"num_layers": 3, "w_avg_beta": 0.998}, "synthesis_kwargs": {"num_layers": 6}}
    config = StyleGAN3Config.from_nvlabs_kwargs(nested)
    assert (config.mapping_layers, config.num_layers, config.img_channels) == (3, 6, 1)


def test_config_refuses_what_we_do_not_support():
    base = {"z_dim": 8, "w_dim": 8, "img_resolution": 16, "img_channels": 3}
    with pytest.raises(GaninvError, match="c_dim"):
        StyleGAN3Config.from_nvlabs_kwargs(dict(base, c_dim=10))
    with pytest.raises(GaninvError, match="fancy_option"):
        StyleGAN3Config.from_nvlabs_kwargs(dict(base, c_dim=0, fancy_option=1))
    with pytest.raises(GaninvError, match="z_dim"):
        StyleGAN3Config.from_nvlabs_kwargs({"w_dim": 8, "img_resolution": 16, "img_channels": 3})
