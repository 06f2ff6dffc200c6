"""Seed 003's measurement machinery: Fréchet distance, FD-domain, lr decay, epoch curves, the ablation runner."""
import json
import math

import numpy as np
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.experiments.ablation import CELLS, Budget, run_ablation
from ganinv.metrics.fid import domain_extractor, frechet_distance, inception_extractor
from ganinv.training.loop import EpochAverager, set_learning_rates


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


def test_lr_decays_two_percent_per_epoch():
    from types import SimpleNamespace

    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    method = SimpleNamespace(optimizers={"g": opt})
    config = SimpleNamespace(train=SimpleNamespace(lr_decay_per_epoch=0.02))
    for step, epoch in ((0, 0), (99, 0), (100, 1), (350, 3)):
        set_learning_rates(method, config, step, steps_per_epoch=100)
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.98**epoch)


def test_epoch_averages_skip_a_partial_epoch():
    averager = EpochAverager(steps_per_epoch=3)
    assert averager.add(2, {"loss": 1.0}) is None
    assert averager.add(3, {"loss": 3.0}) is None  # a resumed run's partial first epoch is not reported
    for step, value in ((4, 1.0), (5, 2.0)):
        assert averager.add(step, {"loss": value}) is None
    assert averager.add(6, {"loss": 6.0}) == {"loss": 3.0, "epoch": 2}


def test_ablation_grid_writes_figures_and_table(tmp_path, monkeypatch):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))
    import ganinv.metrics.fid as fid

    monkeypatch.setattr(fid, "domain_extractor",
                        lambda spec, **kw: fid.FeatureExtractor("FD-domain", fid.train_domain_classifier(
                            fid_dataset(spec, kw), steps=5)))
    budget = Budget(epochs=2, image_size=8, width=4, latent_dim=4, batch_size=256)
    cells = [("normal", True, "D"), ("normal", False, "D"), ("uniform_sqrt3", False, "DG")]  # of the 8
    assert len(CELLS) == 8 and set(cells) < set(CELLS)
    result = run_ablation("dlsgan", data="digits", out=tmp_path / "abl", budget=budget, show_progress=False,
                          log=lambda m: None, cells=cells)
    assert list(result["curves"]) == ["N-DLS-D", "N-noDLS-D", "U-noDLS-DG"]
    for name, series in result["curves"].items():
        assert [x for x, _ in series["enc_loss"]] == [1.0, 2.0], name
        assert len(series["psnr_test"]) == 2 and len(series["fd"]) == 2
        assert all(math.isfinite(v) for _, v in series["fd"])
    no_dls_entropy = result["curves"]["N-noDLS-D"]["entropy"][-1][1]
    assert no_dls_entropy == pytest.approx(4 * math.log(math.sqrt(2 * math.pi * math.e)), rel=1e-6)  # s = 1
    for figure in result["figures"]:
        assert figure.stat().st_size > 1000
    table = result["table"].read_text()
    assert "U-noDLS-DG" in table and "FD-domain" in table
    config = json.loads((tmp_path / "abl" / "U-noDLS-DG" / "config.json").read_text())
    assert config["options"]["dls"] is False and config["net"]["prior"] == "uniform_sqrt3"


def fid_dataset(spec, kw):
    from ganinv.data import open_dataset

    return open_dataset(spec, kw["image_size"], kw["channels"], split="train")


def test_ablation_is_for_dlsgan_only(tmp_path):
    with pytest.raises(GaninvError, match="dlsgan only"):
        run_ablation("aegan", data="digits", out=tmp_path)
