"""The out-of-domain hint (ganinv.web.handlers.DomainCheck) is calibrated on the run's training images: held-out
images of the training distribution are not flagged, noise is; where the data cannot be read, the run's samples
stand in and the page says so once."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from ganinv.data import open_dataset
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import DomainCheck
from helpers import make_celeba, make_generator_run


def with_data(run, spec):
    """The run's config.json recording ``spec`` as its training data."""
    config = json.loads((run / "config.json").read_text())
    config["data"] = spec
    (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.fixture(scope="module")
def celeba_run(tmp_path_factory):
    """A colour generator run recorded as trained on a tiny CelebA (smooth colour fields: far more colourful than
    the untrained generator's samples, as real CelebA is than a trained generator's)."""
    root = tmp_path_factory.mktemp("celeba-run")
    spec = make_celeba(root / "celeba")
    make_generator_run(root / "g", channels=3)
    return with_data(root / "g", spec), spec


def held_out(spec, shape):
    test = open_dataset(spec, image_size=shape[1], channels=shape[0], split="test")
    return torch.stack([test[i][0] for i in range(len(test))])


def hints(check, images):
    return [check.hint(x[None]) for x in images]


def test_held_out_faces_are_in_domain_and_noise_is_not(celeba_run):
    run, spec = celeba_run
    model = InversionModel.load(run)
    check = DomainCheck(model)
    assert hints(check, held_out(spec, model.image_shape)) == [None] * 12  # the test split: never seen
    assert check.fallback is None
    noise = check.hint(torch.rand(1, *model.image_shape, generator=torch.Generator().manual_seed(0)))
    assert noise is not None and noise.startswith("out of domain: this image's fine detail is")
    assert "the run's training images have" in noise and "\n" not in noise


def test_held_out_digits_are_in_domain_and_noise_is_not(aegan_run):
    model = InversionModel.load(aegan_run)  # trained on digits (grey, 16 px)
    check = DomainCheck(model)
    digits = held_out("digits", model.image_shape)
    assert len(digits) > 100 and sum(h is not None for h in hints(check, digits)) == 0
    assert check.hint(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))) is not None
    assert check.fallback is None


def test_without_its_data_the_runs_samples_stand_in_and_the_page_says_so_once(celeba_run, tmp_path):
    run, spec = celeba_run
    moved = with_data(shutil.copytree(run, tmp_path / "run"), f"celeba:{tmp_path / 'moved-away'}")
    model = InversionModel.load(moved)
    logged = []
    check = DomainCheck(model, log=logged.append)
    check.reference()
    assert check.fallback.startswith("The out-of-domain hint compares uploads with this run's own samples")
    assert "(celeba)" in check.fallback and str(tmp_path) not in check.fallback  # the page names no path
    assert len(logged) == 1 and "moved-away" in logged[0]  # the server's log does
    with torch.inference_mode():
        samples = model.generate(model.sample(16, generator=torch.Generator().manual_seed(9)))
    assert hints(check, samples) == [None] * 16  # not the reference's seed
    assert "where the run's samples have" in check.hint(torch.ones(1, *model.image_shape))

    pytest.importorskip("gradio")
    from ganinv.web import build_app

    config = build_app(model).get_config_file()
    notes = [c for c in config["components"] if "compares uploads with this run's own samples"
             in str(c["props"].get("value", ""))]
    assert len(notes) == 1
    config = build_app(InversionModel.load(run)).get_config_file()
    assert not any("own samples" in str(c["props"].get("value", "")) for c in config["components"])
