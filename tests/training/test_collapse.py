"""The collapse watch of `train gan`: one warning line when the samples collapse (saying at which step and what can be
done about it), nothing while they are varied, and one line when a collapse passes."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import torch

from ganinv.core.rundir import METRICS
from ganinv.data import open_dataset
from ganinv.methods.gan import GAN
from ganinv.training import collapse
from ganinv.training.collapse import CollapseWatch
from helpers import tiny_train

BLOB = torch.zeros(1, 1, 16, 16)
BLOB[..., 4:12, 6:10] = 1.0


def test_train_gan_warns_once_when_its_samples_stay_one_picture(monkeypatch, tmp_path):
    monkeypatch.setattr(collapse, "WARM_UP_STEPS", 0)  # a tiny run: judge from its first sample step
    monkeypatch.setattr(GAN, "generate", lambda self, z: BLOB.expand(len(z), -1, -1, -1))  # a forced collapse
    messages = []
    tiny_train("gan", tmp_path / "run", steps=15, data="digits", warn=messages.append)

    # sample steps 5, 10, 15: one collapsed check is not yet news, the second is; the third says nothing more
    assert len(messages) == 1, messages
    line = messages[0]
    assert "\n" not in line and line.startswith("mode collapse from step 5, still at step 10: 0% distinct of 256")
    assert str(tmp_path / "run" / "samples" / "step-0000010.png") in line
    # resuming an earlier checkpoint is not possible: the line says what is
    assert "--resume only continues the newest checkpoint" in line and "another --seed or a lower --lr" in line
    logged = [json.loads(x) for x in (tmp_path / "run" / METRICS).read_text().splitlines()]
    checks = [(x["step"], x["collapsed"]) for x in logged if x["kind"] == "diversity"]
    assert checks == [(5, True), (10, True), (15, True)]


def fake_method(outputs: list[torch.Tensor]):
    """A generator-training method whose successive samples are ``outputs`` (one batch per check)."""
    batches = iter(outputs)
    prior = SimpleNamespace(sample=lambda n, generator: torch.rand(n, 4, generator=generator))
    return SimpleNamespace(trains_generator=True, config=SimpleNamespace(seed=0), prior=prior, device="cpu",
                           eval_mode=contextlib.nullcontext, generate=lambda z: next(batches))


def test_varied_digits_never_warn_and_a_passing_collapse_says_so():
    digits, _ = open_dataset("mnist", image_size=16, channels=1, split="test").tensors(256)
    blobs = BLOB.expand(256, -1, -1, -1)
    method = fake_method([digits, digits, blobs, blobs, blobs, digits, digits])
    messages, logged = [], []
    watch = CollapseWatch(method, Path("run"), lambda step, kind, values: logged.append((step, values)),
                          warn=messages.append)
    for step in range(100, 800, 100):
        watch.check(step)
    assert [values["collapsed"] for _, values in logged] == [False, False, True, True, True, False, False]
    assert len(messages) == 2
    assert messages[0].startswith("mode collapse from step 300, still at step 400")
    assert "to get the generator of step 200 (the last diverse one)" in messages[0] and "--steps 200" in messages[0]
    assert messages[1].startswith("the generator's samples are diverse again at step 600")


def test_a_collapse_at_the_last_step_warns_at_once_and_warm_up_is_not_judged():
    method = fake_method([BLOB.expand(256, -1, -1, -1)])
    messages = []
    watch = CollapseWatch(method, Path("run"), lambda *args: None, warn=messages.append)
    assert watch.check(collapse.WARM_UP_STEPS - 1, last=True) is None  # an untrained generator: not judged
    assert watch.check(collapse.WARM_UP_STEPS, last=True).collapsed
    assert len(messages) == 1 and "No earlier sample step of this training was diverse" in messages[0]


def test_post_hoc_methods_are_not_watched():
    method = fake_method([])
    method.trains_generator = False
    assert CollapseWatch(method, Path("run"), lambda *args: None).check(500, last=True) is None
