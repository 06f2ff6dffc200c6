"""Degradations: shapes and ranges kept, blur lowers high frequencies, downsampling, reproducible noise and
occlusion, colour shift, argument errors."""
from __future__ import annotations

import pytest
import torch

from ganinv.data import degrade


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    x[:, :, 8:24, 8:24] = 1.0  # some structure as well as noise
    return x


def _high_freq_energy(x):
    spec = torch.fft.fft2(x).abs() ** 2
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h).abs().view(-1, 1)
    fx = torch.fft.fftfreq(w).abs().view(1, -1)
    return spec[..., (fy > 0.25) | (fx > 0.25)].sum().item()


def test_degradations_keep_shape_and_range(batch):
    g = torch.Generator().manual_seed(1)
    outs = {
        "blur": degrade.gaussian_blur(batch, 1.5),
        "downsample": degrade.downsample(batch, 4),
        "noise": degrade.add_noise(batch, 0.3, generator=g),
        "occlude": degrade.occlude(batch, 0.25, generator=g),
        "colour": degrade.colour_shift(batch),
    }
    assert set(degrade.DEGRADATIONS) == set(outs)
    for name, y in outs.items():
        assert y.shape == batch.shape and y.dtype == batch.dtype, name
        assert y.min() >= 0 and y.max() <= 1, name
        assert not torch.equal(y, batch), name
        assert degrade.DEGRADATIONS[name](batch).shape == batch.shape
    grey = batch[:, :1]
    for fn in degrade.DEGRADATIONS.values():
        y = fn(grey)
        assert y.shape == grey.shape and y.min() >= 0 and y.max() <= 1


def test_blur_lowers_high_frequencies(batch):
    assert torch.equal(degrade.gaussian_blur(batch, 0), batch)
    e0 = _high_freq_energy(batch)
    e1 = _high_freq_energy(degrade.gaussian_blur(batch, 0.8))
    e2 = _high_freq_energy(degrade.gaussian_blur(batch, 2.0))
    assert e2 < e1 < e0
    assert e2 < 0.05 * e0
    # a flat image stays flat (normalised kernel, reflected borders), on 1 and 3 channels
    flat = torch.full((2, 3, 12, 9), 0.3)
    assert torch.allclose(degrade.gaussian_blur(flat, 1.7), flat, atol=1e-6)
    assert torch.allclose(degrade.gaussian_blur(flat[:, :1], 1.7), flat[:, :1], atol=1e-6)
    # a huge sigma on a tiny image still works (kernel capped by image size)
    assert degrade.gaussian_blur(torch.rand(1, 3, 4, 4), 10.0).shape == (1, 3, 4, 4)


def test_downsample(batch):
    assert torch.equal(degrade.downsample(batch, 1), batch)
    y = degrade.downsample(batch, 4)
    # the result only holds an 8x8 image's information: area-pooling it back gives the same 8x8 image
    small = torch.nn.functional.avg_pool2d(batch, 4)
    assert (torch.nn.functional.avg_pool2d(y, 4) - small).abs().mean() < 0.05
    assert _high_freq_energy(y) < 0.2 * _high_freq_energy(batch)
    assert degrade.downsample(batch, 32).shape == batch.shape
    with pytest.raises(ValueError, match="too large"):
        degrade.downsample(batch, 33)


def test_noise_and_occlusion_are_reproducible(batch):
    a = degrade.add_noise(batch, 0.1, generator=torch.Generator().manual_seed(5))
    b = degrade.add_noise(batch, 0.1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    mid = torch.full((64, 1, 16, 16), 0.5)
    noisy = degrade.add_noise(mid, 0.1, generator=torch.Generator().manual_seed(0))
    assert abs((noisy - mid).std().item() - 0.1) < 0.01
    assert torch.equal(degrade.add_noise(batch, 0.0), batch)

    x = torch.full((8, 3, 20, 20), 0.5)
    y = degrade.occlude(x, size=0.25, value=0.0, generator=torch.Generator().manual_seed(3))
    hidden = (y == 0).all(dim=1)  # N×H×W
    assert hidden.sum(dim=(1, 2)).tolist() == [25] * 8  # a 5×5 square per image
    positions = {tuple(torch.nonzero(h)[0].tolist()) for h in hidden}
    assert len(positions) > 1  # per-image positions
    z = degrade.occlude(x, size=0.25, value=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y, z)


def test_colour_shift_values():
    x = torch.full((2, 3, 4, 4), 0.5)
    y = degrade.colour_shift(x, gain=(1.1, 0.9, 1.0), offset=(0.05, 0.0, -0.05))
    assert torch.allclose(y[:, :, 0, 0], torch.tensor([0.6, 0.45, 0.45]).expand(2, 3))
    g = degrade.colour_shift(x[:, :1], gain=(1.1, 0.9, 1.0), offset=(0.05, 0.0, -0.05))
    assert torch.allclose(g, torch.full_like(x[:, :1], 0.5))  # mean gain 1, mean offset 0
    assert degrade.colour_shift(torch.ones(1, 3, 2, 2), gain=(2, 2, 2), offset=(0, 0, 0)).max() == 1.0


def test_degradation_argument_errors(batch):
    with pytest.raises(ValueError, match="sigma"):
        degrade.gaussian_blur(batch, -1.0)
    with pytest.raises(ValueError, match="factor"):
        degrade.downsample(batch, 0)
    with pytest.raises(ValueError, match="factor"):
        degrade.downsample(batch, 1.5)
    with pytest.raises(ValueError, match="std"):
        degrade.add_noise(batch, -0.1)
    with pytest.raises(ValueError, match="size"):
        degrade.occlude(batch, 1.5)
    with pytest.raises(ValueError, match="gain"):
        degrade.colour_shift(batch[:, :2])
    for fn in degrade.DEGRADATIONS.values():
        with pytest.raises(ValueError, match="N×C×H×W"):
            fn(batch[0])
