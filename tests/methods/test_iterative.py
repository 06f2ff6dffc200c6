"""The iterative refinement encoder (ReStyle's idea; ganinv.methods.iterative) beyond the contract: T passes beat one
pass of the same encoder, the number of passes is chosen at inference, it starts from another encoder run on the same
generator only, and it sits on wrapped generators. W / W+ runs: tests/methods/test_spaces.py."""
import json
import shutil

import pytest
import torch

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.inference.wrap import save_wrapped_run
from ganinv.methods.iterative import invert_steps
from ganinv.nets.frozen import build_module
from helpers import make_generator_run, tiny_train

FAST = {"eval_every": 1000, "sample_every": 1000, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def iterative_run(tmp_path_factory, generator_run):
    out = tmp_path_factory.mktemp("runs") / "iterative"
    tiny_train("iterative", out, steps=80, generator=generator_run, options={"steps": 3, "loss": "mse"},
               train_overrides={"lr": 1e-3, **FAST})
    return out


def image_mse(model, latents, images) -> float:
    return float((model.generate(latents) - images).square().mean())


def test_t_passes_reconstruct_better_than_one_pass_of_the_same_encoder(iterative_run):
    model = load(iterative_run)
    x = model.generate(model.sample(64, generator=torch.Generator().manual_seed(7)))
    start, one, _, three = invert_steps(model, x, 3)
    errors = [image_mse(model, z, x) for z in (start, one, three)]
    assert errors[1] < 0.5 * errors[0], errors  # a pass refines the mean's image
    assert errors[2] < 0.8 * errors[1], errors  # and T = 3 passes beat one (measured: ≈ 0.5×)


def test_the_number_of_passes_is_chosen_at_inference(iterative_run):
    model = load(iterative_run)
    x = model.generate(model.sample(5, generator=torch.Generator().manual_seed(3)))
    passes = invert_steps(model, x, 6)  # beyond the trained T = 3 as well
    assert len(passes) == 7 and all(z.shape == (5, 8) for z in passes)
    assert torch.equal(passes[0], torch.zeros(5, 8))  # the uniform prior's mean
    assert torch.allclose(model.invert(x), passes[3], atol=1e-6)  # the Options' steps by default
    with model.method.eval_mode():
        assert torch.allclose(model.method.invert(x, steps=2), passes[2], atol=1e-6)
    model.method.inference_steps = 5  # every InversionModel.invert (and so every app) runs 5
    assert torch.allclose(model.invert(x), passes[5], atol=1e-6)
    with pytest.raises(GaninvError, match="integer >= 0"):
        invert_steps(model, x, -1)
    with pytest.raises(GaninvError, match="needs an iterative run"):
        invert_steps(load(model.config.generator_run), x, 2)


def test_bad_options_raise_our_error(generator_run):
    for options, needle in (({"steps": 0}, "steps"), ({"loss": "lpips"}, "loss"), ({"latent_weight": -1}, "latent"),
                            ({"start": "/no/such/run"}, "does not exist"), ({"space": "q"}, "z, w, wplus")):
        with pytest.raises(GaninvError, match=needle):
            tiny_train("iterative", "unused", steps=1, generator=generator_run, options=options)


def test_start_from_an_encoder_run_on_the_same_generator(aegan_run, generator_run, tmp_path):
    start = tmp_path / "aegan"
    shutil.copytree(aegan_run, start)
    tiny_train("iterative", tmp_path / "it", steps=4, generator=generator_run, options={"start": str(start),
                                                                                          "steps": 2})
    options = json.loads((tmp_path / "it" / "config.json").read_text())["options"]
    assert options["start_method"] == "aegan" and options["start"] == str(start.resolve())
    encoder = load(start)
    shutil.rmtree(start)  # the run keeps a copy of the start encoder: it loads from its own directory
    model = load(tmp_path / "it")
    x = model.generate(model.sample(4, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(invert_steps(model, x, 0)[0], encoder.invert(x), atol=1e-6)  # ẑ_0 = the AEGAN answer
    assert model.invert(x).shape == (4, 8)


def test_a_start_run_on_another_generator_or_of_another_method_is_refused(generator_run, gan_run, tmp_path):
    other = make_generator_run(tmp_path / "other-generator", seed=1)
    tiny_train("aegan", tmp_path / "other-aegan", steps=2, generator=other)
    with pytest.raises(GaninvError, match="another generator"):
        tiny_train("iterative", tmp_path / "it", steps=2, generator=generator_run,
                   options={"start": str(tmp_path / "other-aegan")})
    with pytest.raises(GaninvError, match="is a 'gan' run"):
        tiny_train("iterative", tmp_path / "it2", steps=2, generator=generator_run, options={"start": str(gan_run)})


def test_it_sits_on_a_wrapped_generator(tmp_path):
    torch.manual_seed(0)
    wrapped = ganinv.wrap_generator(build_module("helpers:tiny_wrapped_generator"), "uniform", (-1, 1),
                                    latent_dim=8, width=8, factory="helpers:tiny_wrapped_generator")
    save_wrapped_run(wrapped, tmp_path / "wrapped")
    tiny_train("iterative", tmp_path / "it", steps=3, generator=tmp_path / "wrapped", options={"steps": 2})
    model = load(tmp_path / "it")
    z = wrapped.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.generate(z), wrapped.generate(z))
    latents = model.invert(wrapped.generate(z))
    assert latents.shape == (3, 8) and latents.abs().max() <= 1  # inside the uniform prior's support
