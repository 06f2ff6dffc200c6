"""`ganinv compare` says which loss each row used, and its optimisation baseline defaults to eq. 2's BCE; bench
table1 prints the same, and how the projection network's ResNet18 started."""
import json

from ganinv.cli import common
from ganinv.experiments.bench import TABLE_BUDGETS, table1_report
from ganinv.experiments.compare import CompareSettings, regression_loss
from ganinv.methods.regression import RANDOM_INIT, RegressionOptions
from helpers import run_cli


def test_the_optimisation_baseline_defaults_to_bce():
    assert CompareSettings().loss == "bce"


def test_every_row_says_its_loss(monkeypatch, capsys, tmp_path, generator_run):
    monkeypatch.setattr(common.console, "width", 250)  # one line per row, so the loss reads whole
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--generator", generator_run, "--data", "digits",
                             "--methods", "aegan,regression,optimize,hybrid", "--out", tmp_path / "cmp",
                             "--train-steps", "2", "--optimize-steps", "3", "--refine-steps", "2", "--n", "4",
                             "--n-real", "4", "--batch-size", "4", "--quiet")
    assert code == 0, err
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert results["summary"]["settings"]["loss"] == "bce"  # the CLI's default too
    assert results["aegan"]["loss"] == "BCE reconstruction through G (trained)"
    assert results["regression"]["loss"] == "latent MSE (trained)"
    assert results["regression"]["backbone_init"] == "not applicable (dcgan backbone)"
    assert results["optimize"]["loss"] == "bce image loss, 3 Adam steps"
    assert results["hybrid"]["loss"] == "encoder + 2 steps of bce"
    assert "loss" in out
    for name in ("aegan", "regression", "optimize", "hybrid"):
        assert any(name in line and results[name]["loss"] in line for line in out.splitlines()), name


def test_regression_loss_names_the_recon_term():
    assert regression_loss(RegressionOptions()) == "latent MSE (trained)"
    text = regression_loss(RegressionOptions(recon_weight=0.5, recon_start_step=100))
    assert text == "latent MSE + 0.5·mse recon on real images from step 100 (trained)"


def test_table1_report_prints_losses_and_the_projection_backbone(tmp_path):
    metrics = {"psnr": 20.0, "ssim": 0.5, "dhash_similarity": 0.9, "invert_ms_per_image": 0.1, "n": 4}
    results = {
        "projection": {"loss": "latent MSE (trained)", "backbone_init": RANDOM_INIT, "generated": metrics,
                       "real": metrics},
        "optimize": {"loss": "bce image loss, 3 Adam steps", "generated": metrics, "real": metrics},
    }
    text = table1_report(results, tmp_path / "generator", TABLE_BUDGETS["test"], n_real=4)
    assert f"Projection network backbone (ResNet18): {RANDOM_INIT}." in text
    assert "| method | loss |" in text
    assert "| projection | latent MSE (trained) |" in text and "| optimize | bce image loss, 3 Adam steps |" in text
