"""Applications in W and W+ (ganinv.methods.spaces): `ganinv invert RUN IMAGES --refine N --space z|w|wplus`, the
hybrid in W+, and search features, clustering and interpolation on W+ latents (traversal needs a latent scale, which W
and W+ runs do not have). Tiny nets; the style generator is a one-step dlsgan run."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv import load
from ganinv.apps import latent_features
from ganinv.apps.cluster import ward
from ganinv.apps.edit import interpolate, top_elements
from ganinv.core.errors import GaninvError
from ganinv.inference.hybrid import OptimizingModel, in_space, refine
from ganinv.nets.style import num_ws_for
from ganinv.training.launch import train_run
from helpers import TINY_NET, TINY_TRAIN, assert_clean_error, run_cli, tiny_train

WPLUS_DIM = num_ws_for(TINY_NET["image_size"]) * TINY_NET["latent_dim"]


@pytest.fixture(scope="module")
def style_runs(tmp_path_factory):
    """(dlsgan run, aegan run in z on it, regression run in wplus on it)."""
    root = tmp_path_factory.mktemp("runs")
    train_run("dlsgan", root / "dlsgan", data="digits", show_progress=False,
              net_overrides={**TINY_NET, "prior": "normal"}, train_overrides={**TINY_TRAIN, "steps": 1})
    tiny_train("aegan", root / "aegan", steps=2, generator=root / "dlsgan")
    tiny_train("regression", root / "wplus", steps=2, generator=root / "dlsgan", options={"space": "wplus"})
    return root / "dlsgan", root / "aegan", root / "wplus"


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).save(path)
    return path


def test_invert_cli_refines_in_w_and_wplus(monkeypatch, capsys, tmp_path, style_runs, image):
    _, aegan, _ = style_runs
    for space, width in (("w", 8), ("wplus", WPLUS_DIM)):
        out = tmp_path / space
        code, _, err = run_cli(monkeypatch, capsys, "invert", aegan, image, "--out", out, "--refine", "3",
                               "--space", space)
        assert code == 0, err
        assert np.load(out / "latents.npy").shape == (1, width)
        assert json.loads((out / "manifest.json").read_text())["space"] == space
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan, image, "--out", tmp_path / "conv", "--space", "w")
    assert code == 0 and "without optimisation" in err  # --refine 0: the encoder's z converted to w
    assert np.load(tmp_path / "conv" / "latents.npy").shape == (1, 8)


def test_space_w_on_a_dcgan_run_is_one_error_line(monkeypatch, capsys, tmp_path, aegan_run, image):
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, image, "--out", tmp_path / "o", "--refine", "2",
                           "--space", "w")
    assert_clean_error(code, err, "--space w needs a style generator", "kind 'dcgan'")
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, "--data", "digits", "--out", tmp_path / "d",
                           "--space", "w")
    assert_clean_error(code, err, "--space is for IMAGES")


def test_the_hybrid_in_wplus_ends_no_worse_than_its_start(style_runs):
    _, aegan, _ = style_runs
    model = load(aegan)
    x = model.generate(model.sample(6, generator=torch.Generator().manual_seed(4)))
    start = in_space(model, model.invert(x), "wplus")
    refined = refine(model, x, steps=15, space="wplus")
    wplus = OptimizingModel(model, steps=0, start="encoder", space="wplus")
    def err(z):
        return (wplus.generate(z) - x).square().flatten(1).mean(1)

    assert refined.shape == (6, WPLUS_DIM) and (err(refined) <= err(start) + 1e-7).all()
    assert torch.allclose(wplus.invert(x), start, atol=1e-6)  # 0 steps: the converted start itself


def test_search_clustering_and_interpolation_on_wplus_latents(style_runs):
    dlsgan, _, wplus_run = style_runs
    model = load(wplus_run)
    wp = model.sample(6, generator=torch.Generator().manual_seed(0))
    images = model.generate(wp)
    features = latent_features(model, images)
    assert features.shape == (6, WPLUS_DIM) and np.allclose(features, model.invert(images).numpy())
    assert sorted(set(ward(features, 2).assignments.tolist())) == [0, 1]
    assert interpolate(model, wp[:1], wp[1:2], 4).shape == (4, 1, 16, 16)
    with pytest.raises(GaninvError, match="latent scale"):
        top_elements(model, 2, wplus_run)  # the traversal of important elements is for runs with a scale s (of z)
    generator = load(dlsgan)  # a dlsgan run's features are z∘s; its W latents are used as they are
    in_w = OptimizingModel(generator, steps=0, start="encoder", space="w")
    assert np.allclose(latent_features(in_w, images), in_w.invert(images).numpy())
    assert np.allclose(latent_features(generator, images), (generator.invert(images) * generator.method.latent_scale)
                       .numpy(), atol=1e-6)
