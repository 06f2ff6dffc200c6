"""Optimisation inversion as an InversionModel, and the hybrid (an encoder's answer refined by optimisation),
from the library and from `ganinv invert --refine`."""
import numpy as np
import torch
from PIL import Image

from ganinv import load
from helpers import assert_clean_error, run_cli


def test_bce_loss_and_sample_start_run(generator_run):
    from ganinv.inference.hybrid import OptimizingModel

    model = OptimizingModel(load(generator_run), steps=20, loss="bce", start="sample")
    x = model.generate(model.sample(3, generator=torch.Generator().manual_seed(1)))
    assert model.invert(x).shape == (3, 8)


def test_hybrid_ends_no_worse_than_its_encoder(aegan_run):
    from ganinv.inference.hybrid import refine

    model = load(aegan_run)
    x = model.generate(model.sample(8, generator=torch.Generator().manual_seed(4)))
    start = model.invert(x)
    refined = refine(model, x, start, steps=30)
    err = lambda z: (model.generate(z) - x).square().flatten(1).mean(1)  # noqa: E731
    assert (err(refined) <= err(start) + 1e-7).all()
    assert err(refined).mean() < err(start).mean()


def test_invert_cli_refine(monkeypatch, capsys, tmp_path, aegan_run, generator_run):
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).save(img)
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, img, "--out", tmp_path / "o", "--refine", "5")
    assert code == 0, err
    assert np.load(tmp_path / "o" / "latents.npy").shape == (1, 8)
    code, _, err = run_cli(monkeypatch, capsys, "invert", generator_run, img, "--out", tmp_path / "g", "--refine", "5")
    assert code == 0 and "prior's mean" in err
    code, _, err = run_cli(monkeypatch, capsys, "invert", generator_run, img, "--out", tmp_path / "n")
    assert_clean_error(code, err, "no inverse network", "--refine")
