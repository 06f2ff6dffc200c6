"""experiments.editability: the attribute judge, attribute agreement, and edits along W directions applied to an
encoder's W+ latents — with a judge whose answers the test knows (brightness of a colour channel), so the signs of
every step can be checked; and the frontier's section on tiny CelebA-like data."""
import json

import pytest
import torch
from torch import nn

from ganinv import load
from ganinv.core.config import current_versions
from ganinv.core.rundir import save_checkpoint, write_config
from ganinv.data import open_dataset
from ganinv.experiments.editability import (AttributeJudge, attribute_agreement, attribute_judge, editability,
                                            judge_accuracy, w_directions)
from ganinv.training.launch import build_config, new_method
from helpers import CELEBA_ATTRIBUTES, TINY_NET, TINY_TRAIN, make_celeba, run_cli, tiny_train


@pytest.fixture(scope="module")
def colour_runs(tmp_path_factory):
    """An untrained tiny colour dlsgan generator, a psp encoder trained 3 steps on it, and the tiny CelebA."""
    root = tmp_path_factory.mktemp("edit")
    faces = make_celeba(root / "celeba")
    torch.manual_seed(0)
    config = build_config("dlsgan", data=faces, net={**TINY_NET, "channels": 3, "prior": "normal"}, train=TINY_TRAIN)
    method = new_method(config.replace(versions=current_versions()))
    (root / "style").mkdir()
    write_config(root / "style", method.config)
    save_checkpoint(method, root / "style", step=0)
    tiny_train("psp", root / "psp", steps=3, generator=root / "style", data=faces)
    return root, faces


class ChannelBrightness(nn.Module):
    """A judge whose attribute j is 'channel j % 3 is brighter than threshold j'."""

    def __init__(self, thresholds: torch.Tensor):
        super().__init__()
        self.head = nn.Linear(3, len(thresholds))
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(3)[torch.arange(len(thresholds)) % 3])
            self.head.bias.copy_(-thresholds)

    def forward(self, x):
        return x.mean((2, 3))


def brightness_judge(generator) -> AttributeJudge:
    """Thresholds at the median of the generator's samples: each attribute on about half of them."""
    with torch.no_grad():
        means = generator.generate(generator.prior.sample(256, generator=torch.Generator().manual_seed(3)))
    medians = means.mean((2, 3)).median(0).values
    thresholds = medians[torch.arange(len(CELEBA_ATTRIBUTES)) % 3]
    return AttributeJudge(ChannelBrightness(thresholds), list(CELEBA_ATTRIBUTES), multi_label=True)


def test_edits_along_w_directions_flip_the_attribute_and_nothing_moves_at_strength_0(colour_runs):
    root, faces = colour_runs
    gen, model = load(root / "style"), load(root / "psp")
    judge = brightness_judge(gen)
    directions = w_directions(gen, judge, attributes=("Male", "Eyeglasses", "Young"), n=512)
    assert [d.name for d in directions] == ["Male", "Eyeglasses"]  # Young: not among the data's attributes
    assert all(d.accuracy > 0.7 and d.spread > 0 for d in directions), directions
    x, _ = open_dataset(faces, image_size=16, channels=3, split="test").tensors()
    still = editability(model, judge, directions, x, strength=0.0)
    assert still["flipped"] == 0.0 and still["kept"] == 1.0
    pushed = editability(model, judge, directions, x, strength=8.0)
    assert pushed["Male flipped"] > 0.5 and pushed["Eyeglasses flipped"] > 0.5, pushed
    assert attribute_agreement(judge, x, x) == 1.0


def test_the_judge_learns_the_train_splits_labels(colour_runs):
    _, faces = colour_runs
    judge = attribute_judge(faces, image_size=16, channels=3, steps=5)
    assert judge.multi_label and judge.names == list(CELEBA_ATTRIBUTES)
    x, labels = open_dataset(faces, image_size=16, channels=3, split="test").tensors()
    assert judge.predict(x).shape == (len(x), len(CELEBA_ATTRIBUTES)) and judge.predict(x).dtype == torch.bool
    found = judge_accuracy(judge, x, labels)
    assert 0 <= found["accuracy"] <= 1 and 0.5 <= found["majority baseline"] <= 1
    digits = attribute_judge("digits", image_size=16, channels=1, steps=5)
    assert not digits.multi_label and digits.predict(torch.rand(3, 1, 16, 16)).shape == (3, 1)


def test_the_frontier_reports_attributes_kept_and_editability(colour_runs, tmp_path, monkeypatch, capsys):
    root, faces = colour_runs
    out = tmp_path / "frontier"
    code, _, err = run_cli(monkeypatch, capsys, "bench", "frontier", "--generator", root / "style", "--data", faces,
                           "--encoders", root / "psp", "--budget", "smoke", "--out", out, "--real-only",
                           "--spaces", "w")
    assert code == 0, err
    saved = json.loads((out / "frontier.json").read_text())
    assert list(saved["results"]) == ["real"]  # --real-only: no generated-sample rows
    optimised = {r["space"] for r in saved["results"]["real"] if r["family"] == "optimisation"}
    assert optimised == {"w", "wplus"}  # --spaces w, and W+: the reference's
    assert all(0 <= r["attributes kept"] <= 1 for r in saved["results"]["real"])
    assert saved["edits"]["judge"]["n"] == 12
    report = (out / "frontier.md").read_text()
    assert "## Attributes and editability" in report and "attributes kept" in report
    for row in saved["edits"]["encoders"]:  # directions exist when the judge's answers vary on G's samples
        assert row["inverter"] == "psp (wplus)" and 0 <= row["flipped"] <= 1 and 0 <= row["kept"] <= 1
