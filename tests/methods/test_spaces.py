"""Latent spaces z | w | wplus (ganinv.methods.spaces): the style generator's W+ (one w per modulated layer), encoders
that predict W / W+ (aegan, regression, iterative with -o space=…) run through the method contract's checks, and
optimisation in W+ reaching at least W's PSNR. Tiny nets on an untrained tiny dlsgan generator."""
import itertools
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import latest_checkpoint
from ganinv.inference.hybrid import OptimizingModel
from ganinv.inference.model import InversionModel
from ganinv.methods.spaces import WPlusPrior, latent_space, repeat_w, unflatten_wplus
from ganinv.metrics import psnr
from ganinv.nets.style import StyleGenerator, num_ws_for
from ganinv.training.launch import (
    build_config,
    load_generator_run,
    new_method,
    open_training_data,
    posthoc_config,
    train_run,
)
from ganinv.training.loop import train
from helpers import TINY_NET, TINY_TRAIN, tiny_train

NUM_WS = num_ws_for(TINY_NET["image_size"])  # 16 px: 4, 8, 16 → 3 ToRGB + 5 SynthesisLayers
WPLUS_DIM = NUM_WS * TINY_NET["latent_dim"]
TRAIN = {"steps": 4, "checkpoint_every": 2, "batch_size": 8, "log_every": 1, "sample_every": 100, "eval_every": 100,
         "eval_samples": 8}


@pytest.fixture(scope="module")
def dlsgan_run(tmp_path_factory):
    """An untrained tiny dlsgan run (style generator + a non-trivial scale s) to sit on."""
    from ganinv.core.config import current_versions
    from ganinv.core.rundir import save_checkpoint, write_config

    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    config = build_config("dlsgan", data="digits", net={**TINY_NET, "prior": "normal"}, train=TINY_TRAIN)
    method = new_method(config.replace(versions=current_versions()))
    method._scale = torch.linspace(0.5, 1.5, 8)
    out.mkdir(parents=True)
    write_config(out, method.config)
    save_checkpoint(method, out, step=0)
    return out


# --- the W+ of the style generator ----------------------------------------------------------------------------------

def test_each_modulated_layer_takes_its_own_w():
    torch.manual_seed(0)
    G = StyleGenerator(latent_dim=8, image_size=16, width=8, channels=1, mapping_layers=2)
    assert G.num_ws == NUM_WS == len(G.layers) + len(G.to_rgb) == 8
    w = torch.randn(2, 8)
    ws = w[:, None].repeat(1, NUM_WS, 1)
    assert torch.equal(G.synthesis_wplus(ws), G.synthesis(w))  # W ⊂ W+
    for i in range(NUM_WS):  # every layer's w matters
        moved = ws.clone()
        moved[:, i] += 1.0
        assert not torch.allclose(G.synthesis_wplus(moved), G.synthesis(w), atol=1e-4), i
    with pytest.raises(ValueError, match="N×8×8"):
        G.synthesis_wplus(ws[:, :-1])


def test_wplus_latents_are_flattened_layer_major(dlsgan_run):
    model = load(dlsgan_run)
    space = latent_space(model.method, "wplus")
    assert isinstance(space.prior, WPlusPrior) and space.prior.dim == WPLUS_DIM
    z = model.sample(3, generator=torch.Generator().manual_seed(0))
    w = model.method.nets["generator"].mapping(z * model.method.latent_scale).detach()
    wp = space.from_run(z)
    assert wp.shape == (3, WPLUS_DIM) and torch.allclose(unflatten_wplus(wp, NUM_WS)[:, 5], w)  # columns 40..47
    assert torch.equal(repeat_w(w, NUM_WS)[:, 8:16], w)
    with torch.no_grad():
        assert torch.allclose(space.generate(wp), model.generate(z), atol=1e-5)  # the same image, in three spaces
        assert torch.allclose(latent_space(model.method, "w").generate(w), model.generate(z), atol=1e-5)
    sample = space.prior.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample[:, :8], sample[:, 8:16])  # the prior of W+: the W prior repeated at every layer


def test_w_and_wplus_need_a_style_generator(generator_run, aegan_run, dlsgan_run):
    for name in ("aegan", "regression", "iterative"):
        with pytest.raises(GaninvError, match="space=wplus needs a style generator"):
            tiny_train(name, "unused", steps=1, generator=generator_run, options={"space": "wplus"})
    with pytest.raises(GaninvError, match="--space w needs a style generator"):
        OptimizingModel(load(aegan_run), steps=1, space="w")
    with pytest.raises(GaninvError, match="must be one of z, w, wplus"):
        build_config("aegan", options={"space": "x"})
    regression_in_w = build_config("regression", options={"space": "w"})
    w_run = InversionModel(new_method(posthoc_config(regression_in_w, load(dlsgan_run), dlsgan_run),
                                      load_generator_run(dlsgan_run)))
    with pytest.raises(GaninvError, match="cannot be turned into z"):
        OptimizingModel(w_run, steps=1, space="z")


# --- optimisation in W and W+ -----------------------------------------------------------------------------------

def test_wplus_optimisation_reaches_at_least_w_psnr(dlsgan_run):
    """Same images, same steps, the same start (w̄; in W+ w̄ at every layer): W+ contains W, and reaches more —
    on real digits (outside the untrained generator's reach) and on style-mixed images (inside W+, outside W)."""
    from ganinv.data import open_dataset

    model = load(dlsgan_run)
    digits, _ = open_dataset("digits", image_size=16, channels=1, split="test").tensors(8)
    with torch.no_grad():
        layers = latent_space(model.method, "w").prior.sample(8 * NUM_WS, generator=torch.Generator().manual_seed(1))
        mixed = latent_space(model.method, "wplus").generate(layers.reshape(8, WPLUS_DIM))  # a w per layer
    for images, margin in ((digits, 0.0), (mixed, 3.0)):
        found = {}
        for space in ("w", "wplus"):
            optimiser = OptimizingModel(model, steps=40, lr=0.05, start="mean", space=space)
            latents = optimiser.invert(images)
            assert latents.shape == (8, 8 if space == "w" else WPLUS_DIM)
            found[space] = psnr(images, optimiser.generate(latents))
        assert found["wplus"].mean() >= found["w"].mean() + margin, found


# --- encoders that predict W+ pass the method contract's checks ----------------------------------------------------

WPLUS_OPTIONS = {"aegan": {"space": "wplus"}, "regression": {"space": "wplus"},
                 "iterative": {"space": "wplus", "steps": 2, "loss": "mse"}}


def new_wplus_method(name: str, dlsgan_run):
    generator = load_generator_run(dlsgan_run)
    config = build_config(name, train=TRAIN, options=WPLUS_OPTIONS[name])
    return new_method(posthoc_config(config, generator, dlsgan_run), generator)


def train_wplus(method, out) -> None:
    dataset, eval_images = open_training_data(method.config)
    train(method, out, dataset=dataset, eval_images=eval_images, show_progress=False)


@pytest.mark.parametrize("name", list(WPLUS_OPTIONS))
def test_wplus_encoders_pass_the_contract_checks(name, dlsgan_run, tmp_path):
    method = new_wplus_method(name, dlsgan_run)
    train_wplus(method, tmp_path / "run")
    saved, loaded = InversionModel(method), load(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["options"]["space"] == "wplus"

    # (a) finite losses at every step
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in losses] == list(range(1, TRAIN["steps"] + 1))
    assert all(math.isfinite(v) for r in losses for k, v in r.items() if k not in ("step", "kind"))

    # (b) save → load: the same W+ latents and images; latents N×(num_ws·w_dim); G untouched
    wp = saved.sample(4, generator=torch.Generator().manual_seed(1))
    z = load(dlsgan_run).sample(4, generator=torch.Generator().manual_seed(1))
    assert wp.shape == (4, WPLUS_DIM)
    assert torch.allclose(loaded.generate(wp), load(dlsgan_run).generate(z), atol=1e-5)
    x = torch.cat([saved.generate(wp), torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))])
    latents = saved.invert(x)
    assert latents.shape == (6, WPLUS_DIM) and bool(torch.isfinite(latents).all())
    assert torch.equal(loaded.invert(x), latents) and torch.equal(loaded.generate(latents), saved.generate(latents))
    assert torch.allclose(loaded.invert(x[:2]), latents[:2], atol=1e-5)

    # (c) interrupted after its first checkpoint and resumed: bit-identical to the straight run
    again = new_wplus_method(name, dlsgan_run)
    calls, step = itertools.count(1), again.train_step
    again.train_step = lambda batch: step(batch) if next(calls) <= TRAIN["checkpoint_every"] else 1 / 0
    with pytest.raises(ZeroDivisionError):
        train_wplus(again, tmp_path / "resumed")
    train_run(name, tmp_path / "resumed", resume=True, show_progress=False)
    a = load_file(latest_checkpoint(tmp_path / "run").weights)
    b = load_file(latest_checkpoint(tmp_path / "resumed").weights)
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []

    # (d) bad input: our error
    with pytest.raises(GaninvError):
        loaded.invert(torch.rand(2, 3, 16, 16))
    with pytest.raises(GaninvError, match=f"N×{WPLUS_DIM}"):
        loaded.generate(torch.zeros(2, 8))


def test_an_iterative_run_starts_from_a_lower_space_only(dlsgan_run, tmp_path):
    tiny_train("aegan", tmp_path / "aegan-z", steps=2, generator=dlsgan_run)
    tiny_train("iterative", tmp_path / "it", steps=2, generator=dlsgan_run,
               options={"space": "wplus", "steps": 1, "start": str(tmp_path / "aegan-z")})
    from ganinv.methods.iterative import invert_steps

    model, start = load(tmp_path / "it"), load(tmp_path / "aegan-z")
    x = start.generate(start.sample(3, generator=torch.Generator().manual_seed(0)))
    expected = latent_space(start.method, "wplus").from_run(start.invert(x)).detach()  # z → w = F(z∘s) → every layer
    assert torch.allclose(invert_steps(model, x, 0)[0], expected, atol=1e-5)
    tiny_train("regression", tmp_path / "reg-w", steps=2, generator=dlsgan_run, options={"space": "w"})
    with pytest.raises(GaninvError, match="cannot be turned into this run's space z"):
        tiny_train("iterative", tmp_path / "it-z", steps=2, generator=dlsgan_run,
                   options={"start": str(tmp_path / "reg-w")})
