"""d_features as a training option (ganinv.methods.discriminator): psp's ``-o d_features=W`` and iterative's
``-o loss=mse+d_features`` bind the --generator run's discriminator, keep a frozen copy in the encoder run (loadable
without the generator run), log the term and record it; a generator run without a discriminator is refused in one
line before anything is written. Tiny nets on the tests' tiny DCGAN run (tests/helpers.py) and the digits."""
import json
import shutil

import pytest
import torch

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import read_config, read_weights, split_weights
from ganinv.data import open_dataset
from ganinv.inference.wrap import save_wrapped_run
from ganinv.nets.frozen import build_module
from helpers import (assert_clean_error, make_generator_run, run_cli, tiny_stylegan, tiny_stylegan_d, tiny_train,
                     write_nvlabs_pickle)

QUIET = {"sample_every": 1000, "eval_every": 1000, "log_every": 1}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return make_generator_run(tmp_path_factory.mktemp("runs") / "gan")


@pytest.fixture(scope="module")
def wrapped_run(tmp_path_factory):
    torch.manual_seed(0)
    wrapped = ganinv.wrap_generator(build_module("helpers:tiny_wrapped_generator"), "uniform", (-1, 1),
                                    latent_dim=8, width=8, factory="helpers:tiny_wrapped_generator")
    out = tmp_path_factory.mktemp("runs") / "wrapped"
    save_wrapped_run(wrapped, out)
    return out


def digits(n=8):
    images, _ = open_dataset("digits", image_size=16, channels=1, split="test").tensors(n)
    return images


def train_records(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def net_tensors(run, method: str, net: str) -> dict[str, torch.Tensor]:
    return split_weights(read_weights(run, method)[0])[0][net]


def test_psp_trains_with_the_generator_runs_discriminator_and_keeps_it(gan_run, tmp_path):
    steps = 4
    tiny_train("psp", tmp_path / "psp", steps=steps, generator=gan_run, options={"d_features": 0.5},
               train_overrides={**QUIET, "checkpoint_every": steps})
    records = train_records(tmp_path / "psp")
    values = [r["recon_d_features"] for r in records]
    assert len(values) == steps and all(0 < v <= 4 for v in values)  # each map's distance lies in [0, 4]
    options = read_config(tmp_path / "psp").options
    assert (options["d_features"], options["discriminator_method"]) == (0.5, "gan")
    kept, original = net_tensors(tmp_path / "psp", "psp", "discriminator"), net_tensors(gan_run, "gan",
                                                                                        "discriminator")
    assert kept.keys() == original.keys() and all(torch.equal(kept[k], original[k]) for k in kept)
    x = digits()
    before = load(tmp_path / "psp").invert(x)
    moved = tmp_path / "gan-moved"
    shutil.move(str(gan_run), moved)  # the encoder run needs nothing of its generator run to load
    try:
        model = load(tmp_path / "psp")
    finally:
        shutil.move(str(moved), gan_run)
    assert torch.equal(model.invert(x), before)
    assert not any(p.requires_grad for p in model.method.nets["discriminator"].parameters())


def test_the_term_changes_what_psp_learns_and_is_named_with_its_run(gan_run, tmp_path):
    """Same seed and data, d_features on and off: different encoders (the term is computed, not just recorded);
    the bound loss's description names whose discriminator it reads."""
    for name, options in (("plain", {}), ("features", {"d_features": 1.0})):
        tiny_train("psp", tmp_path / name, steps=2, generator=gan_run, options=options,
                   train_overrides={**QUIET, "checkpoint_every": 2})
    plain, features = (net_tensors(tmp_path / n, "psp", "encoder") for n in ("plain", "features"))
    assert any(not torch.equal(plain[k], features[k]) for k in plain)
    assert "discriminator" not in load(tmp_path / "plain").method.nets
    method = load(tmp_path / "features").method
    described = method.bound(method.options.image_loss()).describe()
    assert described.startswith("mse + d_features (the discriminator of the gan run ") and str(gan_run) in described


def test_iterative_offers_mse_plus_d_features(gan_run, tmp_path):
    tiny_train("iterative", tmp_path / "it", steps=2, generator=gan_run,
               options={"loss": "mse+d_features", "steps": 2}, train_overrides={**QUIET, "checkpoint_every": 2})
    records = train_records(tmp_path / "it")
    assert len(records) == 2 and all(0 < r["d_features_last"] <= 4 for r in records)
    assert read_config(tmp_path / "it").options["discriminator_method"] == "gan"
    x = digits(4)
    assert torch.equal(load(tmp_path / "it").invert(x), load(tmp_path / "it").invert(x))


def test_a_generator_run_without_a_discriminator_is_refused_before_anything_is_written(wrapped_run, tmp_path):
    with pytest.raises(GaninvError, match=r"has none \(its nets: generator\)"):
        tiny_train("psp", tmp_path / "psp", steps=2, generator=wrapped_run, options={"d_features": 0.5})
    with pytest.raises(GaninvError, match=r"has none \(its nets: generator\)"):
        tiny_train("iterative", tmp_path / "it", steps=2, generator=wrapped_run,
                   options={"loss": "mse+d_features"})
    assert not (tmp_path / "psp").exists() and not (tmp_path / "it").exists()


def test_the_cli_refusal_is_one_line(wrapped_run, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", "psp", "--generator", wrapped_run, "--out",
                           tmp_path / "psp", "-o", "d_features=0.5", "--steps", "2")
    assert_clean_error(code, err, "d_features", "has none (its nets: generator)", "wrapped")
    assert not (tmp_path / "psp").exists()


def test_a_hand_edited_discriminator_method_is_refused(gan_run, tmp_path):
    with pytest.raises(GaninvError, match="discriminator_method must be"):
        tiny_train("psp", tmp_path / "psp", steps=2, generator=gan_run,
                   options={"d_features": 0.5, "discriminator_method": "aegan"})


def test_an_imported_stylegan_lends_its_discriminator_and_one_without_is_refused(tmp_path):
    """psp on G's own samples (generated_fraction=1: no data) of a tiny imported NVlabs StyleGAN2: with its D the
    term trains and the run reloads D as the import rebuilt it; imported without D, the one-line refusal."""
    net, kwargs = tiny_stylegan("stylegan2")
    d, d_kwargs = tiny_stylegan_d()
    ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "d.pkl", net, kwargs, discriminator=(d, d_kwargs)),
                           tmp_path / "with-d")
    options = {"d_features": 0.5, "generated_fraction": 1.0}
    tiny_train("psp", tmp_path / "psp", steps=2, generator=tmp_path / "with-d", options=options,
               train_overrides={**QUIET, "checkpoint_every": 2})
    assert all(0 < r["recon_d_features"] <= 4 for r in train_records(tmp_path / "psp"))
    kept, original = net_tensors(tmp_path / "psp", "psp", "discriminator"), net_tensors(tmp_path / "with-d",
                                                                                        "stylegan", "discriminator")
    assert kept.keys() == original.keys() and all(torch.equal(kept[k], original[k]) for k in kept)
    ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs), tmp_path / "no-d")
    with pytest.raises(GaninvError, match=r"the stylegan run .* has none \(its nets: generator\)"):
        tiny_train("psp", tmp_path / "psp2", steps=2, generator=tmp_path / "no-d", options=options)
    assert not (tmp_path / "psp2").exists()


def test_refinement_offers_mse_plus_d_features_on_the_runs_own_discriminator(gan_run, wrapped_run):
    """``invert --refine N --refine-loss mse+d_features`` (apps.invert.inverting_model): on a gan run the search
    reads the run's D (and lands elsewhere than with mse alone); a run without D is refused before any work."""
    from ganinv.apps.invert import inverting_model

    x = digits(4)
    refined = inverting_model(gan_run, refine=3, refine_loss="mse+d_features")
    assert refined.image_loss.describe().startswith(f"mse + d_features (the gan run {gan_run}")
    with_features = refined.invert(x)
    assert torch.isfinite(with_features).all()
    assert not torch.equal(with_features, inverting_model(gan_run, refine=3, refine_loss="mse").invert(x))
    with pytest.raises(GaninvError, match=r"has none \(its nets: generator\)"):
        inverting_model(wrapped_run, refine=3, refine_loss="mse+d_features")
