"""The one training loop: resume forgets log lines past the checkpoint, the NaN guard, the exploding-loss
warning, no overwriting, the resumable batch sampler, lr decay per epoch and epoch averages. (Exact resume and
finite losses for every method: tests/methods/test_contract.py.)"""
import json
import math

import pytest
import torch

from ganinv import load
from ganinv.core.errors import GaninvError, TrainingDiverged
from ganinv.core.rundir import latest_checkpoint
from ganinv.training.launch import build_config, new_method
from ganinv.training.loop import EpochAverager, ResumableBatchSampler, set_learning_rates, train
from helpers import TINY_NET, TINY_TRAIN, tiny_train


def test_a_resumed_run_forgets_the_log_lines_past_its_checkpoint(tmp_path):
    """A run stopped after its step-5 checkpoint, having logged a step past it and half a line, resumes with a
    clean metrics.jsonl. (Its weights end bit-identical to a run that never stopped: tests/methods/test_contract.py.)"""
    part = tmp_path / "part"
    tiny_train("gan", part, steps=5, data="digits")  # as if killed right after the step-5 checkpoint
    with open(part / "metrics.jsonl", "a") as f:  # ... having logged a step past it and half a line
        f.write('{"step": 6, "kind": "train", "d_loss": 1.0}\n{"step": 7, "ki')
    config = json.loads((part / "config.json").read_text())
    config["train"]["steps"] = 10
    (part / "config.json").write_text(json.dumps(config))
    tiny_train("gan", part, steps=10, resume=True)
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 10 and steps.count(6) == 0  # no duplicate lines from the killed part


def poisoned_method(monkeypatch, at_call: int, value: float):
    """A tiny gan whose ``at_call``-th step reports d_loss = value."""
    config = build_config("gan", data="digits", net=TINY_NET, train={**TINY_TRAIN, "steps": 20})
    method = new_method(config)
    original = method.train_step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        logs = original(batch)
        return {**logs, "d_loss": value} if calls["n"] == at_call else logs

    monkeypatch.setattr(method, "train_step", poisoned)
    return method


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 8, math.nan)
    with pytest.raises(TrainingDiverged, match=r"d_loss=nan at step 8.*step 5"):
        train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False)
    assert latest_checkpoint(tmp_path / "run").step == 5
    load(tmp_path / "run")  # still a loadable run


def test_nan_before_the_first_checkpoint_says_nothing_is_kept(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 3, math.inf)
    with pytest.raises(TrainingDiverged, match=r"d_loss=inf at step 3.*No checkpoint was written") as failure:
        train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False)
    assert "step 0" not in str(failure.value) and latest_checkpoint(tmp_path / "run") is None


def test_an_exploding_loss_warns_once(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 4, 3e7)
    warnings = []
    train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False,
          warn=warnings.append)
    assert len(warnings) == 1 and "d_loss = 3e+07 at step 4" in warnings[0] and "--lr" in warnings[0]


def test_fresh_run_refuses_to_overwrite(gan_run):
    with pytest.raises(GaninvError, match="already holds a run"):
        tiny_train("gan", gan_run, data="digits")


def test_batch_sampler_resumes_mid_epoch():
    full = ResumableBatchSampler(50, 8, seed=3)
    it = iter(full)
    expected = [next(it) for _ in range(14)]  # crosses the 6-batch epoch boundary twice
    resumed = iter(ResumableBatchSampler(50, 8, seed=3, start_batch=9))
    assert [next(resumed) for _ in range(5)] == expected[9:]
    assert sorted(sum(expected[:6], [])) == sorted(set(sum(expected[:6], [])))  # no repeats inside an epoch


def test_lr_decays_two_percent_per_epoch():
    from types import SimpleNamespace

    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    method = SimpleNamespace(optimizers={"g": opt})
    config = SimpleNamespace(train=SimpleNamespace(lr_decay_per_epoch=0.02))
    for step, epoch in ((0, 0), (99, 0), (100, 1), (350, 3)):
        set_learning_rates(method, config, step, steps_per_epoch=100)
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.98**epoch)


def test_epoch_averages_skip_a_partial_epoch():
    averager = EpochAverager(steps_per_epoch=3)
    assert averager.add(2, {"loss": 1.0}) is None
    assert averager.add(3, {"loss": 3.0}) is None  # a resumed run's partial first epoch is not reported
    for step, value in ((4, 1.0), (5, 2.0)):
        assert averager.add(step, {"loss": value}) is None
    assert averager.add(6, {"loss": 6.0}) == {"loss": 3.0, "epoch": 2}
