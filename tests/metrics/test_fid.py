"""Fréchet distance and its fallbacks: the closed form on Gaussians, Inception weights missing → FD-domain,
and FD-domain (a small classifier trained on the domain) separating real images from noise."""
import numpy as np
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.metrics.fid import domain_extractor, frechet_distance, inception_extractor


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(0, 1, (20000, 3)))
    b = torch.from_numpy(rng.normal(0, 2, (20000, 3)) + np.array([1.0, 0, 0]))
    # ‖μ‖² + Σ (1 + 4 − 2·√4) = 1 + 3·1
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(GaninvError):
        frechet_distance(a[:1], b)


def test_missing_inception_weights_fall_back_with_a_message(tmp_path):
    extractor, note = inception_extractor(str(tmp_path / "absent.pth"))
    assert extractor is None and "absent.pth" in note and "FD-domain" in note


def test_fd_domain_separates_real_from_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    from ganinv.data import open_dataset

    extractor = domain_extractor("digits", image_size=16, channels=1, steps=60)
    assert extractor.name == "FD-domain" and list(tmp_path.rglob("*.safetensors"))  # cached
    test, _ = open_dataset("digits", 16, 1, split="test").tensors()
    train, _ = open_dataset("digits", 16, 1, split="train").tensors(len(test))
    real = extractor(test)
    assert frechet_distance(real, extractor(train)) < 0.2 * frechet_distance(real, extractor(torch.rand_like(test)))
    again = domain_extractor("digits", image_size=16, channels=1, steps=60)  # from the cache: same features
    assert torch.allclose(again(test[:8]), extractor(test[:8]))
