"""Issue 6: optimisation inversion, the hybrid, BiGAN, projection networks (z/w space, ResNet18 backbone),
bring-your-own generator, and `ganinv compare`. Tiny nets, data the tests make themselves."""
import json
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_NET, TINY_TRAIN, tiny_train
from PIL import Image
from safetensors.torch import save_file
from test_cli import assert_clean_error, run_cli

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.metrics import psnr


@pytest.fixture(scope="module")
def dlsgan_run(tmp_path_factory):
    """An untrained tiny dlsgan run (style generator + scale), saved as a run directory: a generator to sit on."""
    from ganinv.core.config import current_versions
    from ganinv.core.rundir import save_checkpoint, write_config
    from ganinv.training.launch import build_config, new_method

    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    config = build_config("dlsgan", data="digits", net={**TINY_NET, "prior": "normal"}, train=TINY_TRAIN)
    method = new_method(config.replace(versions=current_versions()))
    method._scale = torch.linspace(0.5, 1.5, 8)  # a non-trivial s, which post-hoc runs must carry
    out.mkdir(parents=True)
    write_config(out, method.config)
    save_checkpoint(method, out, step=0)
    return out


# --- optimisation inversion and the hybrid ---------------------------------------------------------------------

def test_optimisation_recovers_a_known_latent(generator_run):
    from ganinv.methods.optimize import invert_by_optimization

    model = load(generator_run)
    z = model.sample(4, generator=torch.Generator().manual_seed(3)) * 0.8
    x = model.generate(z)
    found = invert_by_optimization(model, x, steps=300, lr=0.05, loss="mse")
    assert found.shape == z.shape and found.abs().max() <= 1  # kept inside U(-1,1)
    assert psnr(x, model.generate(found)).min() >= 30
    # batched: an image's answer does not depend on its batch
    alone = invert_by_optimization(model, x[:1], steps=300, lr=0.05, loss="mse")
    assert torch.allclose(alone, found[:1], atol=1e-4)


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


def test_optimize_method_is_a_loadable_run(generator_run, tmp_path):
    from ganinv.training.launch import (
        build_config,
        load_generator_run,
        materialise_run,
        posthoc_config,
    )

    g = load_generator_run(generator_run)
    config = posthoc_config(build_config("optimize", options={"steps": 10}), g, generator_run)
    run = materialise_run(config, tmp_path / "opt", g)
    model = load(run)
    x = g.generate(g.sample(2, generator=torch.Generator().manual_seed(0)))
    assert model.can_invert and model.invert(x).shape == (2, 8)


# --- BiGAN -----------------------------------------------------------------------------------------------------

def train_bigan(out, steps, **train):
    from ganinv.training.launch import train_run

    return train_run("bigan", out, data="digits", show_progress=False, net_overrides=TINY_NET,
                     train_overrides={**TINY_TRAIN, "steps": steps, **train})


def test_bigan_trains_with_finite_losses_and_inverts(tmp_path):
    train_bigan(tmp_path / "bigan", steps=20, log_every=1, eval_every=20, sample_every=20, checkpoint_every=20)
    lines = [json.loads(line) for line in (tmp_path / "bigan" / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["kind"] == "train"]
    assert len(train) == 20 and all(np.isfinite([l["d_loss"], l["ge_loss"]]).all() for l in train)
    model = load(tmp_path / "bigan")
    assert set(model.method.nets) == {"generator", "encoder", "discriminator"}
    x = model.generate(model.sample(4))
    assert model.invert(x).shape == (4, model.prior.dim)


def test_joint_discriminator_matches_table_6():
    from ganinv.nets.bigan import JointDiscriminator

    D = JointDiscriminator(latent_dim=100, image_size=64, width=64, channels=3)
    widths = [m.out_channels for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 512, 512]
    assert D.joint_body[0][0].in_channels == 256 + 100
    assert D(torch.rand(2, 3, 64, 64), torch.rand(2, 100)).shape == (2,)


# --- projection networks ------------------------------------------------------------------------------------------

def test_projection_in_w_space_on_a_dlsgan_generator(dlsgan_run, tmp_path):
    from ganinv.methods.regression import MappedPrior

    tiny_train("regression", tmp_path / "proj", steps=4, generator=dlsgan_run, options={"space": "w"})
    config = json.loads((tmp_path / "proj" / "config.json").read_text())
    assert config["options"]["space"] == "w" and config["generator"]["kind"] == "style"
    g, p = load(dlsgan_run), load(tmp_path / "proj")
    z = g.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(g.generate(z), p.method.nets["generator"](z), atol=1e-6)  # G(z∘s), s carried over
    assert isinstance(p.prior, MappedPrior)
    w = p.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(w, p.method.nets["generator"].mapping(z), atol=1e-6)  # latents are w = F(z∘s)
    assert torch.allclose(p.generate(w), g.generate(z), atol=1e-5)
    assert p.invert(g.generate(z)).shape == (3, 8)


def test_posthoc_methods_sit_on_dlsgan_and_bigan_generators(dlsgan_run, tmp_path):
    tiny_train("aegan", tmp_path / "a", steps=2, generator=dlsgan_run)
    g, a = load(dlsgan_run), load(tmp_path / "a")
    z = g.sample(2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(g.generate(z), a.generate(z), atol=1e-6)
    train_bigan(tmp_path / "b", steps=2)
    tiny_train("regression", tmp_path / "r", steps=2, generator=tmp_path / "b")
    b, r = load(tmp_path / "b"), load(tmp_path / "r")
    assert torch.equal(b.generate(z), r.generate(z))


def test_resnet18_backbone_warns_without_imagenet_weights(generator_run, tmp_path, monkeypatch):
    from ganinv.nets.encoders import BackboneWeightsWarning

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    with pytest.warns(BackboneWeightsWarning, match="RANDOM init"):
        tiny_train("regression", tmp_path / "r18", steps=2, generator=generator_run,
                   options={"backbone": "resnet18", "recon_weight": 0.5})
    model = load(tmp_path / "r18")
    x = model.generate(model.sample(2))
    assert model.invert(x).abs().max() <= 1  # tanh head scaled to U(-1,1)
    with pytest.raises(GaninvError, match="does not exist"):
        tiny_train("regression", tmp_path / "r18b", steps=2, generator=generator_run,
                   options={"backbone": "resnet18", "backbone_weights": str(tmp_path / "absent.pth")})
    assert not (tmp_path / "r18b").exists()


# --- bring your own generator ------------------------------------------------------------------------------------

GEN_MODULE = '''
import torch.nn as nn

def make():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))

def wrong_shape():
    return nn.Sequential(nn.Linear(8, 300))

def wrong_range():
    return nn.Sequential(nn.Linear(8, 256), nn.Unflatten(1, (1, 16, 16)))
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "usergen.py").write_text(GEN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usergen", None)
    import usergen

    torch.manual_seed(0)
    module = usergen.make()
    save_file(module.state_dict(), tmp_path / "g.safetensors")
    return module


def test_wrapped_sequential_goes_through_train_invert_eval(monkeypatch, capsys, tmp_path, user_module):
    code, out, err = run_cli(monkeypatch, capsys, "wrap", "--generator-module", "usergen:make", "--generator-weights",
                             tmp_path / "g.safetensors", "--latent-dim", "8", "--width", "8", "--out", tmp_path / "g")
    assert code == 0, err
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["method"] == "wrapped" and config["options"]["factory"] == "usergen:make"
    assert config["options"]["weights"].endswith("g.safetensors")
    z = torch.rand(2, 8) * 2 - 1
    assert torch.allclose(load(tmp_path / "g").generate(z), (user_module(z) + 1) / 2, atol=1e-6)
    code, _, err = run_cli(monkeypatch, capsys, "train", "aegan", "--generator", tmp_path / "g", "--out",
                           tmp_path / "e", "--steps", "3", "--batch-size", "8", "--quiet")
    assert code == 0, err
    img = tmp_path / "x.png"
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(img)
    code, _, err = run_cli(monkeypatch, capsys, "invert", tmp_path / "e", img, "--out", tmp_path / "inv")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "eval", tmp_path / "e", "--data", "digits", "--n", "8", "--json")
    assert code == 0, err
    assert {"generated", "real"} <= json.loads(out).keys()


def test_wrap_generator_api_and_bad_modules(user_module, tmp_path):
    import usergen

    model = ganinv.wrap_generator(user_module, "uniform", (-1, 1), latent_dim=8)
    x = model.generate(model.sample(2))
    assert x.shape == (2, 1, 16, 16) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(GaninvError, match="shape"):
        ganinv.wrap_generator(usergen.wrong_shape(), "uniform", latent_dim=8)
    bad = usergen.wrong_range()
    torch.nn.init.constant_(bad[0].bias, 3.0)
    with pytest.raises(GaninvError, match="outside image_range"):
        ganinv.wrap_generator(bad, "uniform", (0, 1), latent_dim=8)
    with pytest.raises(GaninvError, match="latent"):
        ganinv.wrap_generator(user_module, "uniform", latent_dim=5)
    with pytest.raises(GaninvError, match="image_range"):
        ganinv.wrap_generator(user_module, "uniform", (0, 255), latent_dim=8)
    from ganinv.inference.wrap import save_wrapped_run

    with pytest.raises(GaninvError, match="factory"):
        save_wrapped_run(model, tmp_path / "nofactory")


# --- compare and its errors ---------------------------------------------------------------------------------------

def test_compare_end_to_end(monkeypatch, capsys, tmp_path, generator_run):
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--generator", generator_run, "--data", "digits",
                             "--methods", "aegan,regression,bigan,optimize,hybrid", "--out", tmp_path / "cmp",
                             "--train-steps", "3", "--bigan-steps", "3", "--optimize-steps", "5", "--refine-steps",
                             "3", "--n", "8", "--n-real", "8", "--batch-size", "8", "--json")
    assert code == 0, err
    results = json.loads(out)
    for name in ("aegan", "regression", "bigan", "optimize", "hybrid"):
        for split in ("generated", "real"):
            assert {"psnr", "ssim", "dhash_similarity", "invert_ms_per_image"} <= results[name][split].keys()
    assert results["summary"]["speed_ratio"]["ratio"] > 1
    assert Image.open(tmp_path / "cmp" / "grid.png").size[1] > 16 * 10


def test_bad_compare_and_generator_inputs(monkeypatch, capsys, tmp_path, aegan_run, generator_run):
    code, _, err = run_cli(monkeypatch, capsys, "compare", "--generator", generator_run, "--methods", "aegan,vae",
                           "--out", tmp_path / "c")
    assert_clean_error(code, err, "unknown method(s) vae")
    code, _, err = run_cli(monkeypatch, capsys, "compare", "--generator", aegan_run, "--methods", "optimize",
                           "--out", tmp_path / "c")
    assert_clean_error(code, err, "'aegan' run", "trained a generator")
    assert not (tmp_path / "c").exists()
    code, _, err = run_cli(monkeypatch, capsys, "train", "regression", "--generator", generator_run, "--out",
                           tmp_path / "w", "-o", "space=w")
    assert_clean_error(code, err, "space=w needs a style generator")
    assert not (tmp_path / "w").exists()
