"""The baselines beyond the contract (tests/methods/test_contract.py): optimisation inversion recovers a known
latent, the optimize method as a run, encoders that learn, projection networks (z/w space, ResNet18 backbone), and
post-hoc methods on dlsgan and bigan generators. Tiny nets, data the tests make themselves."""
import json

import pytest
import torch

from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.metrics import psnr
from ganinv.training.launch import build_config, new_method
from helpers import TINY_NET, TINY_TRAIN, tiny_train


@pytest.fixture(scope="module")
def dlsgan_run(tmp_path_factory):
    """An untrained tiny dlsgan run (style generator + scale), saved as a run directory: a generator to sit on."""
    from ganinv.core.config import current_versions
    from ganinv.core.rundir import save_checkpoint, write_config

    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    config = build_config("dlsgan", data="digits", net={**TINY_NET, "prior": "normal"}, train=TINY_TRAIN)
    method = new_method(config.replace(versions=current_versions()))
    method._scale = torch.linspace(0.5, 1.5, 8)  # a non-trivial s, which post-hoc runs must carry
    out.mkdir(parents=True)
    write_config(out, method.config)
    save_checkpoint(method, out, step=0)
    return out


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


def test_optimize_method_is_a_loadable_run(generator_run, tmp_path):
    from ganinv.training.launch import load_generator_run, materialise_run, posthoc_config

    g = load_generator_run(generator_run)
    config = posthoc_config(build_config("optimize", options={"steps": 10}), g, generator_run)
    run = materialise_run(config, tmp_path / "opt", g)
    model = load(run)
    x = g.generate(g.sample(2, generator=torch.Generator().manual_seed(0)))
    assert model.can_invert and model.invert(x).shape == (2, 8)


@pytest.mark.parametrize("method", ["aegan", "regression"])
def test_encoder_loss_falls_and_beats_a_random_encoder(generator_run, tmp_path, method):
    torch.manual_seed(0)
    tiny_train(method, tmp_path / method, steps=40, generator=generator_run,
                        train_overrides={"lr": 1e-3, "log_every": 1, "eval_every": 1000})
    losses = [json.loads(line) for line in (tmp_path / method / "metrics.jsonl").read_text().splitlines()]
    losses = [v for line in losses if line["kind"] == "train" for k, v in line.items() if k not in ("step", "kind")]
    assert len(losses) == 40
    early, late = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # BCE cannot fall below the entropy of G's grey-level pixels (~0.6 here), so AEGAN's margin is smaller
    assert late < (0.97 if method == "aegan" else 0.8) * early
    trained = load(tmp_path / method)
    x = trained.generate(trained.sample(64, generator=torch.Generator().manual_seed(9)))
    random_encoder = new_method(trained.config, load(generator_run))  # untrained IG, same G
    with random_encoder.eval_mode():
        random_error = torch.nn.functional.mse_loss(random_encoder.generate(random_encoder.invert(x)), x)
    assert torch.nn.functional.mse_loss(trained.reconstruct(x), x) < random_error


def train_bigan(out, steps, **train):
    from ganinv.training.launch import train_run

    return train_run("bigan", out, data="digits", show_progress=False, net_overrides=TINY_NET,
                     train_overrides={**TINY_TRAIN, "steps": steps, **train})


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


def test_resnet18_backbone_warns_without_imagenet_weights(generator_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    tiny_train("regression", tmp_path / "r18", steps=2, generator=generator_run,
               options={"backbone": "resnet18", "recon_weight": 0.5})
    assert "RANDOM init" in capsys.readouterr().err  # one plain line (tests/cli/test_first_hour.py checks its form)
    model = load(tmp_path / "r18")
    x = model.generate(model.sample(2))
    assert model.invert(x).abs().max() <= 1  # tanh head scaled to U(-1,1)
    with pytest.raises(GaninvError, match="does not exist"):
        tiny_train("regression", tmp_path / "r18b", steps=2, generator=generator_run,
                   options={"backbone": "resnet18", "backbone_weights": str(tmp_path / "absent.pth")})
    assert not (tmp_path / "r18b").exists()
