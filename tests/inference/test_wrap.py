"""Bring your own generator: `ganinv.wrap_generator` and `ganinv wrap`, bad modules refused with a reason, and a
wrapped module through train, invert and eval."""
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from helpers import run_cli

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
