"""DLSGAN's latent scale tracker (seed 003): s from the latent variances by window or EMA, its norm, its
entropy, non-finite batches kept out, and its state round trip."""
import math

import numpy as np
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.latent import LatentScale, scaled_latent_entropy


def numpy_scale(v):
    root = np.sqrt(v)
    return math.sqrt(len(v)) * root / np.linalg.norm(root)


def test_scale_starts_at_one_keeps_norm_sqrt_d_and_is_one_for_constant_variance():
    tracker = LatentScale(8, window_batches=4)
    assert torch.equal(tracker.scale, torch.ones(8))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        tracker.update(torch.randn(16, 8, generator=gen) * torch.linspace(0.1, 3.0, 8))
    assert torch.isclose(tracker.scale.norm(), torch.tensor(math.sqrt(8)), atol=1e-5)
    assert tracker.scale[-1] > tracker.scale[0]  # more variance, more scale
    for mode in ("window", "ema"):
        constant = LatentScale(8, mode=mode, window_batches=2)
        for c in (0.3, 0.3, 0.3):
            constant.update(torch.full((4, 8), c))
        assert torch.allclose(constant.scale, torch.ones(8), atol=1e-6)
    zero = LatentScale(4, window_batches=1)
    zero.update(torch.zeros(3, 4))  # degenerate v = 0: no direction to prefer
    assert torch.equal(zero.scale, torch.ones(4))


def test_window_and_ema_updates_match_numpy():
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(16, 6)) * rng.uniform(0.1, 2.0, size=6) for _ in range(7)]
    window = LatentScale(6, mode="window", window_batches=4)
    ema = LatentScale(6, mode="ema", decay=0.9)
    v_ema = np.ones(6)
    means = [np.ones(6)] * 4  # the ring starts full of the initial variance, as the authors' var_vectors
    for k, b in enumerate(batches):
        window.update(torch.tensor(b, dtype=torch.float32))
        ema.update(torch.tensor(b, dtype=torch.float32))
        means = means[1:] + [(b**2).mean(0)]
        v_ema = 0.9 * v_ema + 0.1 * (b**2).mean(0)
        np.testing.assert_allclose(window.variance.numpy(), np.mean(means, axis=0), rtol=1e-5)
        np.testing.assert_allclose(window.scale.numpy(), numpy_scale(np.mean(means, axis=0)), rtol=1e-5)
        np.testing.assert_allclose(ema.variance.numpy(), v_ema, rtol=1e-5)
        np.testing.assert_allclose(ema.scale.numpy(), numpy_scale(v_ema), rtol=1e-5)
    assert window.updates == ema.updates == 7


def test_entropy_matches_hand_computation():
    tracker = LatentScale(2, window_batches=1)
    tracker.update(torch.tensor([[1.0, 2.0]]))  # v = (1, 4) → s = √2·(1, 2)/√5
    s1, s2 = math.sqrt(2 / 5), 2 * math.sqrt(2 / 5)
    assert torch.allclose(tracker.scale, torch.tensor([s1, s2]))
    assert tracker.entropy("normal") == pytest.approx(math.log(s1 * math.sqrt(2 * math.pi * math.e))
                                                      + math.log(s2 * math.sqrt(2 * math.pi * math.e)), rel=1e-6)
    assert tracker.entropy("uniform_sqrt3") == pytest.approx(math.log(s1 * 2 * math.sqrt(3))
                                                             + math.log(s2 * 2 * math.sqrt(3)), rel=1e-6)
    # at s = 1: the prior's own entropy, d · ½log(2πe) for N(0,1)
    assert scaled_latent_entropy(torch.ones(5), "normal") == pytest.approx(5 * 0.5 * math.log(2 * math.pi * math.e))
    with pytest.raises(GaninvError):
        tracker.entropy("cauchy")


@pytest.mark.parametrize("mode", ["window", "ema"])
def test_non_finite_batch_never_reaches_the_scale(mode):
    tracker = LatentScale(4, mode=mode, window_batches=3)
    tracker.update(torch.randn(8, 4) * torch.tensor([0.5, 1.0, 2.0, 3.0]))
    before = {k: v.clone() for k, v in tracker.state().items()}
    s = tracker.scale.clone()
    for bad in (float("nan"), float("inf")):
        batch = torch.randn(8, 4)
        batch[3, 1] = bad
        assert tracker.update(batch) is False
    assert tracker.update(torch.full((2, 4), 1e30)) is False  # finite, but its square overflows float32
    assert torch.equal(tracker.scale, s) and torch.isfinite(tracker.scale).all()
    assert all(torch.equal(before[k], v) for k, v in tracker.state().items())


def test_tracker_state_round_trips_and_rejects_another_mode():
    a = LatentScale(5, window_batches=3)
    for _ in range(4):
        a.update(torch.randn(6, 5) * torch.arange(1.0, 6.0))
    b = LatentScale(5, window_batches=3)
    b.load_state(a.state())
    assert torch.equal(a.scale, b.scale)
    nxt = torch.randn(6, 5)
    a.update(nxt), b.update(nxt)
    assert torch.equal(a.scale, b.scale)  # the ring position came back too
    with pytest.raises(GaninvError):
        LatentScale(5, mode="ema").load_state(a.state())
    with pytest.raises(GaninvError):
        LatentScale(5, mode="median")
