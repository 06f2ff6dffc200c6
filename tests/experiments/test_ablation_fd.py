"""The ablation's FD and KID: fd_samples generated images against up to as many real test images (the log and
ablation.md say when the test split has fewer), KID-domain beside FD-domain at every evaluation, several
evaluations per epoch on fractional-epoch axes, generated images in batches, and a finished grid reused."""
import inspect
import json
import math

import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.experiments import ablation
from ganinv.experiments.ablation import Budget, generated_features, run_ablation
from ganinv.inference.evaluate import generated_batch
from ganinv.inference.model import InversionModel
from ganinv.metrics.fid import FeatureExtractor, train_domain_classifier


@pytest.fixture
def quick_domain_features(tmp_path, monkeypatch):
    """FD-domain features from a 5-step classifier (the real one trains 400 steps), cached nowhere shared."""
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))
    from ganinv.data import open_dataset
    from ganinv.metrics import fid

    def extractor(spec, **kw):
        train = open_dataset(spec, kw["image_size"], kw["channels"], split="train")
        return FeatureExtractor("FD-domain", train_domain_classifier(train, steps=5))

    monkeypatch.setattr(fid, "domain_extractor", extractor)


def test_fd_and_kid_per_half_epoch_with_sample_sizes_said(tmp_path, quick_domain_features):
    assert inspect.signature(run_ablation).parameters["fd_samples"].default == 5000
    budget = Budget(epochs=2, image_size=8, width=4, latent_dim=4, batch_size=256)  # digits: 6 steps per epoch
    logs = []
    kwargs = {"data": "digits", "out": tmp_path / "abl", "budget": budget, "show_progress": False,
              "log": logs.append, "cells": [("normal", True, "D")], "fd_samples": 300, "evals_per_epoch": 2}
    result = run_ablation("dlsgan", **kwargs)
    assert (result["fd_name"], result["kid_name"]) == ("FD-domain", "KID-domain")
    assert (result["fd_fake_n"], result["fd_real_n"]) == (300, 179)  # digits' test split has 179 images
    said = "FD-domain and KID-domain from 300 generated vs 179 real test images (all the test split has)"
    assert said in logs
    series = result["curves"]["N-DLS-D"]
    assert [x for x, _ in series["fd"]] == [0.5, 1.0, 1.5, 2.0] == [x for x, _ in series["kid"]]
    assert [x for x, _ in series["enc_loss"]] == [1.0, 2.0]  # epoch means stay per epoch
    assert all(math.isfinite(v) for _, v in series["fd"] + series["kid"])
    evals = [json.loads(line) for line in (tmp_path / "abl" / "N-DLS-D" / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in evals if e["kind"] == "eval"]
    assert len(evals) == 4 and all({"fd_domain", "kid_domain", "kid_domain_std"} <= set(e) for e in evals)
    table = result["table"].read_text()
    assert "| kid |" in table and "KID-domain" in table and said in table and "FID/KID)" in table
    assert (tmp_path / "abl" / "kid.png").stat().st_size > 1000

    logs.clear()  # a finished grid is reused, not trained again
    again = run_ablation("dlsgan", **kwargs)
    assert any("reusing finished" in m for m in logs) and again["curves"] == result["curves"]


class Recorder(torch.nn.Module):
    """Features = the first 3 pixels; records the batch sizes it is given."""

    def __init__(self):
        super().__init__()
        self.device_marker = torch.nn.Parameter(torch.zeros(1))  # FeatureExtractor asks its net for a device
        self.seen = []

    def forward(self, x):
        self.seen.append(len(x))
        return x.flatten(1)[:, :3]


def test_generated_images_are_made_in_batches(generator_run):
    model = InversionModel.load(generator_run)
    recorder = Recorder()
    features = generated_features(model, FeatureExtractor("FD-domain", recorder), 20, seed=0, batch_size=7)
    assert recorder.seen == [7, 7, 6]
    assert torch.allclose(features, generated_batch(model, 20, seed=0).flatten(1)[:, :3].double(), atol=1e-6)
    assert ablation.FD_BATCH <= 1000  # bounded at any fd_samples


def test_refuses_nonsense_settings(tmp_path):
    with pytest.raises(GaninvError, match="evals_per_epoch"):
        run_ablation("dlsgan", data="digits", out=tmp_path, evals_per_epoch=0)
