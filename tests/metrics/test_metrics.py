"""Tests for ganinv.metrics (CPU, a few seconds, no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ganinv.metrics as M
from ganinv.metrics import image as image_mod
from ganinv.metrics.hashes import colour_histogram, dhash_bits, phash_bits, to_pil


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def gradient_image(n: int = 2, c: int = 3, size: int = 32) -> torch.Tensor:
    """Left-to-right ramp with a vertical twist so that flipping changes every dHash row."""
    xs = torch.linspace(0.0, 1.0, size)
    ys = torch.linspace(0.0, 0.3, size)
    img = (xs[None, :] * 0.7 + ys[:, None]).clamp(0, 1)
    return img.expand(n, c, size, size).clone()


# ------------------------------------------------------------------------------------------ PSNR


def test_psnr_identical_is_inf_or_huge(rng):
    x = torch.rand(3, 3, 16, 16, generator=rng)
    p = M.psnr(x, x)
    assert p.shape == (3,)
    assert bool(torch.all(torch.isinf(p) | (p > 100)))


@pytest.mark.parametrize("c,size", [(1, 16), (3, 32)])
def test_psnr_constant_offset_is_20db(rng, c, size):
    x = torch.rand(4, c, size, size, generator=rng) * 0.9
    p = M.psnr(x, x + 0.1)
    assert p.shape == (4,)
    assert torch.allclose(p.double(), torch.full((4,), 20.0, dtype=torch.float64), atol=1e-3)


def test_psnr_is_per_image(rng):
    x = torch.rand(2, 1, 16, 16, generator=rng) * 0.5
    y = x.clone()
    y[0] += 0.1  # 20 dB
    y[1] += 0.01  # 40 dB
    p = M.psnr(x, y)
    assert p[0].item() == pytest.approx(20.0, abs=1e-3)
    assert p[1].item() == pytest.approx(40.0, abs=1e-3)


# ------------------------------------------------------------------------------------------ SSIM


@pytest.mark.parametrize("c,size", [(1, 16), (3, 32)])
def test_ssim_identical_one_noisy_less(rng, c, size):
    x = torch.rand(3, c, size, size, generator=rng)
    s_same = M.ssim(x, x)
    assert s_same.shape == (3,)
    assert torch.allclose(s_same, torch.ones(3), atol=1e-5)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=rng)).clamp(0, 1)
    s_noisy = M.ssim(x, noisy)
    assert s_noisy.shape == (3,)
    assert bool(torch.all(s_noisy < 0.99))
    assert bool(torch.all(s_noisy > -1.0))


def test_ssim_more_noise_is_worse(rng):
    x = torch.rand(2, 3, 32, 32, generator=rng)
    noise = torch.randn(x.shape, generator=rng)
    a = M.ssim(x, (x + 0.05 * noise).clamp(0, 1))
    b = M.ssim(x, (x + 0.3 * noise).clamp(0, 1))
    assert bool(torch.all(a > b))


def test_shape_mismatch_raises_in_psnr_ssim(rng):
    x = torch.rand(2, 3, 16, 16, generator=rng)
    with pytest.raises(ValueError):
        M.psnr(x, x[:1])
    with pytest.raises(ValueError):
        M.ssim(x, x[:, :1])


# ---------------------------------------------------------------------------------------- hashes


def test_to_pil_modes_and_values():
    grey = torch.zeros(2, 1, 16, 16)
    grey[1] = 1.0
    ims = to_pil(grey)
    assert [im.mode for im in ims] == ["L", "L"]
    assert ims[0].size == (16, 16)
    assert np.asarray(ims[0]).max() == 0 and np.asarray(ims[1]).min() == 255
    rgb = torch.zeros(1, 3, 20, 16)
    rgb[:, 0] = 1.0
    (im,) = to_pil(rgb)
    assert im.mode == "RGB" and im.size == (16, 20)
    assert tuple(np.asarray(im)[0, 0]) == (255, 0, 0)
    with pytest.raises(ValueError):
        to_pil(torch.zeros(1, 2, 16, 16))


def test_hash_bits_shapes_and_dtype(rng):
    x = torch.rand(3, 3, 16, 16, generator=rng)
    for fn in (dhash_bits, phash_bits):
        b = fn(x)
        assert b.shape == (3, 64) and b.dtype == np.bool_
    assert dhash_bits(x, hash_size=4).shape == (3, 16)


def test_dhash_similarity_identical_flip_and_range(rng):
    x = gradient_image(2, 3, 32)
    same = M.dhash_similarity(x, x)
    assert same.shape == (2,)
    assert np.all(same == 1.0)
    flipped = torch.flip(x, dims=[3])
    sim_flip = M.dhash_similarity(x, flipped)
    assert np.all(sim_flip < 1.0)
    assert np.all((sim_flip >= 0.0) & (sim_flip <= 1.0))
    # a left-to-right ramp and its mirror have opposite horizontal gradients everywhere
    assert np.all(sim_flip < 0.5)
    r = torch.rand(5, 1, 16, 16, generator=rng)
    s = torch.rand(5, 1, 16, 16, generator=rng)
    rand_sim = M.dhash_similarity(r, s)
    assert np.all((rand_sim >= 0.0) & (rand_sim <= 1.0))
    # value is exactly 1 - hamming / 64
    expected = 1.0 - (dhash_bits(r) != dhash_bits(s)).sum(1) / 64.0
    np.testing.assert_allclose(rand_sim, expected)


def test_colour_histogram_rows_sum_to_one_and_distinguish_colours():
    red = torch.zeros(2, 3, 16, 16)
    red[:, 0] = 1.0
    blue = torch.zeros(2, 3, 16, 16)
    blue[:, 2] = 1.0
    h_red, h_blue = colour_histogram(red), colour_histogram(blue)
    assert h_red.shape == (2, 512) and h_red.dtype == np.float32
    np.testing.assert_allclose(h_red.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(h_blue.sum(1), 1.0, rtol=1e-6)
    assert not np.allclose(h_red, h_blue)
    # all mass in one cell each: red = (7,0,0), blue = (0,0,7)
    assert h_red[0, 7 * 64] == pytest.approx(1.0)
    assert h_blue[0, 7] == pytest.approx(1.0)


def test_colour_histogram_grey_and_bins(rng):
    g = torch.rand(3, 1, 16, 16, generator=rng)
    h = colour_histogram(g, bins=4)
    assert h.shape == (3, 4)
    np.testing.assert_allclose(h.sum(1), 1.0, rtol=1e-6)
    half = torch.cat([torch.zeros(1, 1, 8, 16), torch.ones(1, 1, 8, 16)], dim=2)
    np.testing.assert_allclose(colour_histogram(half, bins=4)[0], [0.5, 0, 0, 0.5])


# ------------------------------------------------------------------------- reconstruction_metrics


def test_reconstruction_metrics_keys_and_types(rng):
    x = torch.rand(3, 3, 32, 32, generator=rng)
    y = (x + 0.05 * torch.randn(x.shape, generator=rng)).clamp(0, 1)
    out = M.reconstruction_metrics(x, y)
    available, _ = M.lpips_status()
    expected = {"psnr", "ssim", "dhash_similarity"} | ({"lpips"} if available else set())
    assert set(out) == expected
    assert all(type(v) is float for v in out.values())
    assert 15.0 < out["psnr"] < 40.0
    assert out["psnr"] == pytest.approx(float(M.psnr(x, y).mean()), rel=1e-5)
    assert 0.0 < out["ssim"] < 1.0
    assert 0.0 <= out["dhash_similarity"] <= 1.0


def test_reconstruction_metrics_identical_grey(rng):
    x = torch.rand(2, 1, 16, 16, generator=rng)
    out = M.reconstruction_metrics(x, x.clone())
    assert math.isinf(out["psnr"]) or out["psnr"] > 100
    assert out["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert out["dhash_similarity"] == 1.0


@pytest.mark.parametrize(
    "a,b,match",
    [
        (torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 32, 32), "shape"),
        (torch.zeros(2, 3, 16, 16), torch.zeros(3, 3, 16, 16), "shape"),
        (torch.zeros(3, 16, 16), torch.zeros(3, 16, 16), "4-D"),
        (torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16), "empty"),
    ],
)
def test_reconstruction_metrics_rejects_bad_shapes(a, b, match):
    with pytest.raises(ValueError, match=match):
        M.reconstruction_metrics(a, b)


def test_reconstruction_metrics_rejects_non_finite():
    x = torch.rand(2, 3, 16, 16)
    y = x.clone()
    y[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        M.reconstruction_metrics(x, y)
    x2 = x.clone()
    x2[0, 2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="original"):
        M.reconstruction_metrics(x2, x)


def test_reconstruction_metrics_error_is_ganinv_error():
    from ganinv.core.errors import GaninvError

    with pytest.raises(GaninvError):
        M.reconstruction_metrics(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 8, 8))


# ----------------------------------------------------------------------------------------- LPIPS


def test_lpips_status_matches_local_file(rng):
    available, msg = M.lpips_status()
    assert isinstance(available, bool) and isinstance(msg, str) and msg
    x = torch.rand(2, 3, 32, 32, generator=rng)
    weights = image_mod.lpips_weights_path()
    if not weights.is_file():
        assert available is False
        assert weights.name in msg and str(weights) in msg
        assert M.lpips(x, x) is None
    else:
        assert available is True, msg
        d = M.lpips(x, x)
        assert d is not None and d.shape == (2,)
        assert float(d.abs().max()) < 1e-4


def _block_downloads(monkeypatch):
    def no_download(*args, **kwargs):  # pragma: no cover - only reached on a bug
        raise AssertionError("metrics tried to download something")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(image_mod, "download_file", no_download)  # ganinv's one fetcher (off anyway: conftest)


def test_lpips_missing_in_empty_hub_dir(tmp_path, monkeypatch, rng):
    _block_downloads(monkeypatch)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    available, msg = M.lpips_status()
    assert available is False
    expected = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert "alexnet-owt-7be5be79.pth" in msg and str(expected) in msg
    assert M.lpips(torch.rand(1, 3, 32, 32, generator=rng), torch.rand(1, 3, 32, 32, generator=rng)) is None
    assert "lpips" not in M.reconstruction_metrics(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_lpips_computes_when_weights_file_present(tmp_path, monkeypatch, rng):
    """End to end through torchvision + torchmetrics with a stand-in checkpoint (random AlexNet)."""
    import torchvision

    _block_downloads(monkeypatch)
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    ckpt = image_mod.lpips_weights_path()
    assert ckpt.parent == hub / "checkpoints"
    ckpt.parent.mkdir(parents=True)
    # random conv features; the (unused by LPIPS) 58M-parameter classifier as stride-0 views so the file stays tiny
    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.AlexNet().state_dict().items()}
    state = {}
    for k, shape in shapes.items():
        if k.startswith("features."):
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            state[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        else:
            state[k] = torch.zeros(1).expand(shape)
    torch.save(state, ckpt)

    available, msg = M.lpips_status()
    assert available is True, msg
    x = torch.rand(3, 3, 32, 32, generator=rng)
    y = torch.rand(3, 3, 32, 32, generator=rng)
    same = M.lpips(x, x)
    assert same is not None and same.shape == (3,)
    assert float(same.abs().max()) < 1e-5
    diff = M.lpips(x, y)
    assert diff.shape == (3,) and bool(torch.all(diff > 1e-4))
    # per-image: the batch result equals image-by-image results
    one = M.lpips(x[1:2], y[1:2])
    assert one.shape == (1,) and one.item() == pytest.approx(diff[1].item(), rel=1e-4, abs=1e-6)
    # grey 16x16 (repeated to RGB, upsampled to AlexNet's minimum) works too
    g = torch.rand(2, 1, 16, 16, generator=rng)
    assert float(M.lpips(g, g).abs().max()) < 1e-5
    out = M.reconstruction_metrics(g, (g + 0.1).clamp(0, 1))
    assert "lpips" in out and type(out["lpips"]) is float and out["lpips"] > 0


def test_lpips_corrupt_weights_reports_unavailable(tmp_path, monkeypatch):
    _block_downloads(monkeypatch)
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    ckpt = image_mod.lpips_weights_path()
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    available, msg = M.lpips_status()
    assert available is False
    assert str(ckpt) in msg
    assert M.lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)) is None
