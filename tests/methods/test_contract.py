"""The method contract, checked for every registered method (the diffusers ``SchedulerCommonTest`` habit):

(a) a few training steps give finite losses (a method with nothing to train says so: its run directory is checked);
(b) save → load gives identical ``generate`` and ``invert`` outputs (a post-hoc run carries its generator untouched);
(c) a run interrupted after its first checkpoint and resumed ends bit-identical to one that never stopped;
(d) an unknown option and a wrong image batch raise ``GaninvError``;
(e) every encoder method (a post-hoc method that trains an ``encoder``) derives from ``EncoderMethod``, and the space
    object its option ``space`` names drives its prior, its generate and its encoder's width.

A new method gets all of it by registering in ``ganinv.methods.METHODS``. What differs between methods lives in
``TINY`` just below, and nowhere else: every other method trains on digits (joint methods) or on the session's tiny
generator run (post-hoc methods) with ``NET`` and ``TRAIN``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import latest_checkpoint
from ganinv.inference.model import InversionModel
from ganinv.inference.wrap import save_wrapped_run
from ganinv.methods import METHODS
from ganinv.methods.encoder import EncoderMethod
from ganinv.methods.spaces import CHAIN, Z, style_generator
from ganinv.nets.frozen import build_module
from ganinv.training.launch import (
    build_config,
    load_generator_run,
    new_method,
    open_training_data,
    posthoc_config,
    train_run,
)
from ganinv.training.loop import train
from helpers import tiny_stylegan, write_nvlabs_pickle

NET = {"image_size": 16, "width": 8, "latent_dim": 8}
TRAIN = {"steps": 6, "checkpoint_every": 2, "batch_size": 8, "log_every": 1, "sample_every": 100, "eval_every": 100,
         "eval_samples": 8}

# The one per-method table: tiny settings over NET / TRAIN (keys: net, train, options; wrap: made by wrap_generator).
TINY: dict[str, dict] = {
    "optimize": {"options": {"steps": 3}},  # Adam steps per inversion (500 by default)
    "iterative": {"options": {"steps": 2, "loss": "mse"}},  # refinement passes (5 by default), the MSE image term
    "dlsgan": {"options": {"encoder_loss_on": "DG", "scale_mode": "ema", "ema_decay": 0.5}},  # options a resume keeps
    "dedgan": {"options": {"lambda_switch_step": 3}},  # λ_emb switches inside the resumed part of the run
    "wrapped": {"wrap": {"factory": "helpers:tiny_wrapped_generator", "prior": "uniform", "image_range": (-1, 1)}},
    "stylegan": {"import": "stylegan2"},  # an NVlabs pickle written from our own tiny net, through the importer
}

NAMES = list(METHODS)


def settings(name: str) -> dict:
    tiny = TINY.get(name, {})
    return {"net": {**NET, **tiny.get("net", {})}, "train": {**TRAIN, **tiny.get("train", {})},
            "options": dict(tiny.get("options", {})), "wrap": tiny.get("wrap"), "import": tiny.get("import")}


def new_tiny_method(name: str, generator_run: Path):
    """The method's nets, built as `ganinv train` builds them from the tiny settings."""
    s = settings(name)
    if METHODS[name].provides_generator:
        return new_method(build_config(name, data="digits", net=s["net"], train=s["train"], options=s["options"]))
    generator = load_generator_run(generator_run)
    config = build_config(name, train=s["train"], options=s["options"])
    return new_method(posthoc_config(config, generator, generator_run), generator)


def train_tiny(method, out: Path) -> None:
    dataset, eval_images = open_training_data(method.config)
    train(method, out, dataset=dataset, eval_images=eval_images, show_progress=False)


def wrap_tiny(name: str, out: Path) -> InversionModel:
    """A user's module as a ``wrapped`` run: ``wrap_generator(module, …, factory=…)`` + ``save_wrapped_run``."""
    wrap = settings(name)["wrap"]
    torch.manual_seed(0)
    model = ganinv.wrap_generator(build_module(wrap["factory"]), wrap["prior"], wrap["image_range"],
                                  latent_dim=NET["latent_dim"], width=NET["width"], factory=wrap["factory"])
    save_wrapped_run(model, out)
    return model


def train_records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [record for record in map(json.loads, lines) if record["kind"] == "train"]


@dataclass
class TinyRun:
    name: str
    run: Path  # the run directory, trained TRAIN["steps"] steps without interruption
    model: InversionModel  # the very method that wrote it, still in memory


@pytest.fixture(scope="module", params=NAMES)
def tiny(request, tmp_path_factory, generator_run) -> TinyRun:
    name = request.param
    out = tmp_path_factory.mktemp("contract") / name
    if settings(name)["wrap"] is not None:
        return TinyRun(name, out, wrap_tiny(name, out))
    if settings(name)["import"] is not None:
        net, kwargs = tiny_stylegan(settings(name)["import"])
        snapshot = write_nvlabs_pickle(out.parent / f"{name}.pkl", net, kwargs)
        return TinyRun(name, out, ganinv.import_stylegan(snapshot, out))
    method = new_tiny_method(name, generator_run)
    train_tiny(method, out)
    return TinyRun(name, out, InversionModel(method))


# --- (a) a few steps give finite losses --------------------------------------------------------------------------

def test_a_few_training_steps_give_finite_losses(tiny):
    records = train_records(tiny.run)
    if not METHODS[tiny.name].trainable:
        # nothing to train (optimize, wrapped, stylegan): the run directory must still be complete, and log no losses
        assert json.loads((tiny.run / "config.json").read_text())["method"] == tiny.name
        checkpoint = latest_checkpoint(tiny.run)
        assert checkpoint is not None and checkpoint.weights.is_file() and load_file(checkpoint.weights)
        assert all(set(record) <= {"step", "kind"} for record in records), records
        return
    steps = settings(tiny.name)["train"]["steps"]
    assert [record["step"] for record in records] == list(range(1, steps + 1))
    losses = {key: value for record in records for key, value in record.items() if key not in ("step", "kind")}
    assert losses, "a method that trains logs its losses"
    for record in records:
        bad = {k: v for k, v in record.items() if k not in ("step", "kind") and not math.isfinite(v)}
        assert not bad, (record["step"], bad)
    assert latest_checkpoint(tiny.run).step == steps


# --- (b) save → load ----------------------------------------------------------------------------------------------

def test_save_then_load_gives_identical_generate_and_invert(tiny, generator_run):
    loaded, again, saved = load(tiny.run), load(tiny.run), tiny.model
    z = saved.sample(6, generator=torch.Generator().manual_seed(1))
    images = saved.generate(z)
    assert images.shape == (6, *saved.image_shape) and 0 <= images.min() and images.max() <= 1
    assert torch.equal(loaded.generate(z), images) and torch.equal(again.generate(z), images)
    if not METHODS[tiny.name].provides_generator:  # a post-hoc run carries its frozen generator: not one weight moved
        assert torch.equal(load(generator_run).generate(z), images)
    x = torch.cat([images, torch.rand(2, *saved.image_shape, generator=torch.Generator().manual_seed(2))])
    if not loaded.can_invert:
        with pytest.raises(GaninvError, match="no inverse network"):
            loaded.invert(x)
        return
    latents = saved.invert(x)
    assert latents.shape == (8, saved.prior.dim) and bool(torch.isfinite(latents).all())
    if saved.prior.bounds:  # inside the prior's support
        low, high = saved.prior.bounds
        assert low <= latents.min() and latents.max() <= high
    assert torch.equal(loaded.invert(x), latents) and torch.equal(again.invert(x), latents)
    assert torch.equal(loaded.reconstruct(x), loaded.generate(latents))
    # an image's latent does not depend on the batch it came in
    assert torch.allclose(loaded.invert(x[:2]), latents[:2], atol=1e-5)


# --- (c) exact resume ---------------------------------------------------------------------------------------------

class Killed(Exception):
    """Stands for a SIGKILL: raised by the step after the first checkpoint, caught by nobody in the loop."""


def test_a_run_interrupted_after_its_first_checkpoint_resumes_bit_identical(tiny, generator_run, tmp_path):
    if not METHODS[tiny.name].trainable:
        pytest.skip(f"{tiny.name} has nothing to train, so nothing to resume")
    method = new_tiny_method(tiny.name, generator_run)
    first = method.config.train.checkpoint_every
    calls, step = itertools.count(1), method.train_step

    def killed_after_first_checkpoint(batch):
        if next(calls) > first:
            raise Killed
        return step(batch)

    method.train_step = killed_after_first_checkpoint
    run = tmp_path / tiny.name
    with pytest.raises(Killed):
        train_tiny(method, run)
    assert latest_checkpoint(run).step == first
    train_run(tiny.name, run, resume=True, show_progress=False)  # as `ganinv train NAME --out RUN --resume`

    resumed, straight = latest_checkpoint(run), latest_checkpoint(tiny.run)
    assert resumed.step == straight.step == settings(tiny.name)["train"]["steps"]
    a, b = load_file(straight.weights), load_file(resumed.weights)
    assert a.keys() == b.keys()
    assert [key for key in a if not torch.equal(a[key], b[key])] == []


# --- (d) bad input raises our error -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_option_raises_our_error(name):
    with pytest.raises(GaninvError, match="no_such_option"):
        build_config(name, options={"no_such_option": 1})
    config = build_config(name)  # a config.json that names an option the method does not have
    with pytest.raises(GaninvError, match="no_such_option.*valid options"):
        METHODS[name](config.replace(options={**config.options, "no_such_option": 1}))


def test_a_wrong_image_batch_raises_our_error(tiny):
    model = load(tiny.run)
    c, h, w = model.image_shape
    other_channels = 3 if c == 1 else 1
    for bad in (torch.rand(2, other_channels, h, w), torch.rand(c, h, w), torch.full((2, c, h, w), 3.0),
                torch.full((2, c, h, w), float("nan")), torch.ones(2, c, h, w, dtype=torch.int64)):
        with pytest.raises(GaninvError):
            model.invert(bad)
    if model.can_invert:  # other sizes are resized to the run's, with a warning (issue 18: the API people expect)
        for other in (torch.rand(2, c, 2 * h, 2 * w), torch.rand(2, c, h, w + 1)):
            with pytest.warns(UserWarning, match="resized"):
                assert model.invert(other).shape == (2, model.prior.dim)


# --- (e) encoder methods: one base, the space object drives prior, generate and width -------------------------------

ENCODERS = [name for name, cls in METHODS.items() if "encoder" in cls.trainable and not cls.provides_generator]


def test_every_encoder_method_derives_from_the_encoder_base():
    assert {"aegan", "regression", "iterative"} <= set(ENCODERS)
    for name in ENCODERS:
        assert issubclass(METHODS[name], EncoderMethod), name
        assert "space" in {f.name for f in dataclasses.fields(METHODS[name].Options)}, name


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory) -> Path:
    """A tiny imported StyleGAN2 (a generator with a mapping network: z, W and W+)."""
    out = tmp_path_factory.mktemp("contract-spaces")
    net, kwargs = tiny_stylegan("stylegan2")
    ganinv.import_stylegan(write_nvlabs_pickle(out / "g.pkl", net, kwargs), out / "stylegan")
    return out / "stylegan"


def new_encoder(name: str, space: str, generator_run: Path):
    generator = load_generator_run(generator_run)
    config = build_config(name, train=TRAIN, options={**settings(name)["options"], "space": space})
    return new_method(posthoc_config(config, generator, generator_run), generator)


@pytest.mark.parametrize("name", ENCODERS)
def test_the_space_object_drives_an_encoders_prior_generate_and_width(name, stylegan_run, generator_run):
    for space in CHAIN:  # Z first: its latents and images are the reference
        method = new_encoder(name, space.name, stylegan_run)
        dim = space.dim(method.config.net, method.generator_spec)  # from the recorded spec, before G was built
        assert method.space is space and method.prior.dim == dim  # ... and from the built G: they agree
        model = InversionModel(method)
        latents = method.prior.sample(3, generator=torch.Generator().manual_seed(0))
        assert latents.shape == (3, dim) and model.invert(model.generate(latents)).shape == (3, dim)
        if space is Z:
            z, images_of_z = latents, model.generate(latents)
        with torch.no_grad():  # the same images from z converted up the chain (z → w → wplus)
            up = space.from_space(z, Z, style_generator(method))
        assert up.shape == (3, dim) and torch.allclose(model.generate(up), images_of_z, atol=1e-5)
    for space in CHAIN[1:]:  # the base class refuses w / wplus on a generator without a mapping network
        with pytest.raises(GaninvError, match=f"space={space} needs a style generator"):
            new_encoder(name, space.name, generator_run)
