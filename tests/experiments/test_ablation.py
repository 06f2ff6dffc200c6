"""Seed 003's ablation runner: the grid of cells writes its curves, figures and table; it is for dlsgan only."""
import json
import math

import pytest

from ganinv.core.errors import GaninvError
from ganinv.experiments.ablation import CELLS, Budget, run_ablation


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
        assert all(math.isfinite(v) for _, v in series["fd"] + series["kid"]) and len(series["kid"]) == 2
    no_dls_entropy = result["curves"]["N-noDLS-D"]["entropy"][-1][1]
    assert no_dls_entropy == pytest.approx(4 * math.log(math.sqrt(2 * math.pi * math.e)), rel=1e-6)  # s = 1
    for figure in result["figures"]:
        assert figure.stat().st_size > 1000
    table = result["table"].read_text()
    assert "U-noDLS-DG" in table and "FD-domain" in table and "KID-domain" in table
    assert (result["fd_fake_n"], result["fd_real_n"]) == (5000, 179)  # the default N; all of digits' test split
    config = json.loads((tmp_path / "abl" / "U-noDLS-DG" / "config.json").read_text())
    assert config["options"]["dls"] is False and config["net"]["prior"] == "uniform_sqrt3"


def fid_dataset(spec, kw):
    from ganinv.data import open_dataset

    return open_dataset(spec, kw["image_size"], kw["channels"], split="train")


def test_ablation_is_for_dlsgan_only(tmp_path):
    with pytest.raises(GaninvError, match="dlsgan only"):
        run_ablation("aegan", data="digits", out=tmp_path)
