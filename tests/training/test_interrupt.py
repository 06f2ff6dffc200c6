"""Ctrl-C never saves half a step: the first SIGINT is deferred to the end of the step in flight, which is then
checkpointed under its own number (a second one discards it); the CLI says which step is kept and exits 130; and
the run resumes to exactly the weights of a run that never stopped."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ganinv.core.rundir import latest_checkpoint
from ganinv.training.launch import build_config, new_method, open_training_data
from ganinv.training.loop import train
from helpers import TINY_NET, TINY_TRAIN, tiny_train

SETTINGS = {**TINY_TRAIN, "steps": 8, "checkpoint_every": 4, "sample_every": 100, "eval_every": 100}


def tiny_method(monkeypatch=None, at_call: int = 0, signals: int = 0):
    """A tiny gan; with ``signals``, its ``at_call``-th step sends SIGINT that many times after updating every net
    (batch-norm buffers included) but before the loop has counted the step — the instant the issue's runs lost."""
    torch.manual_seed(0)
    config = build_config("gan", data="digits", net=TINY_NET, train=SETTINGS)
    method = new_method(config)
    if signals:
        original, calls = method.train_step, {"n": 0}

        def interrupted(batch):
            logs = original(batch)
            calls["n"] += 1
            if calls["n"] == at_call:
                for _ in range(signals):
                    os.kill(os.getpid(), signal.SIGINT)
            return logs

        monkeypatch.setattr(method, "train_step", interrupted)
    return method


def run(method, out):
    dataset, eval_images = open_training_data(method.config)
    return train(method, out, dataset=dataset, eval_images=eval_images, show_progress=False, log_with=None)


def weights(out) -> dict[str, torch.Tensor]:
    return load_file(latest_checkpoint(out).weights)


def assert_same(a, b) -> None:
    x, y = weights(a), weights(b)
    assert x.keys() == y.keys() and any("running_mean" in k for k in x)  # batch-norm buffers are compared too
    assert all(torch.equal(x[k], y[k]) for k in x), [k for k in x if not torch.equal(x[k], y[k])]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupt") / "straight"
    run(tiny_method(), out)
    return out


def test_ctrl_c_mid_step_finishes_the_step_and_checkpoints_it(monkeypatch, tmp_path, straight):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted; the checkpoint of step 6 is kept in .*--resume"):
        run(tiny_method(monkeypatch, at_call=6, signals=1), out)
    assert latest_checkpoint(out).step == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    tiny_train("gan", out, steps=8, resume=True)
    assert_same(out, straight)


def test_a_second_ctrl_c_discards_the_step_in_flight(monkeypatch, tmp_path, straight):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match=r"checkpoint of step 4 is kept .*step in flight was discarded"):
        run(tiny_method(monkeypatch, at_call=6, signals=2), out)
    assert latest_checkpoint(out).step == 4
    tiny_train("gan", out, steps=8, resume=True)
    assert_same(out, straight)


# ------------------------------------------------------------------------------------------------ the CLI
def ganinv(*args) -> list[str]:
    return [sys.executable, "-m", "ganinv", *map(str, args)]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny nets: a second thread only contends on shared cores


TRAIN_GAN = ("train", "gan", "--data", "digits", "--image-size", 16, "--width", 8, "--latent-dim", 8, "--steps", 30,
             "--checkpoint-every", 1000, "--sample-every", 1000, "--eval-every", 1000, "--batch-size", 16, "--seed", 3,
             "--quiet")


def train_lines(out) -> int:
    path = out / "metrics.jsonl"
    text = path.read_text() if path.exists() else ""
    return sum('"kind": "train"' in line for line in text.splitlines())


@pytest.mark.slow
def test_sigint_to_ganinv_train_says_what_is_kept_and_resumes_exactly(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(ganinv(*TRAIN_GAN, "--out", reference), check=True, timeout=300, capture_output=True,
                   env=ONE_THREAD)
    out = tmp_path / "run"
    process = subprocess.Popen(ganinv(*TRAIN_GAN, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=ONE_THREAD)
    deadline = time.monotonic() + 120
    while process.poll() is None and train_lines(out) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)  # past step 10 (the first log line): mid-run, and no checkpoint before step 30
    time.sleep(random.Random(23).uniform(0, 0.05))
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    kept = latest_checkpoint(out).step
    assert process.returncode == 130, err
    assert 10 <= kept < 30, kept
    assert f"interrupted; the checkpoint of step {kept} is kept in {out} (continue with --resume)" in " ".join(
        err.split()), err
    assert "Traceback" not in err
    assert json.loads((out / "checkpoint.json").read_text())["step"] == kept
    finish = subprocess.run(ganinv(*TRAIN_GAN, "--out", out, "--resume"), capture_output=True, text=True, timeout=300,
                            env=ONE_THREAD)
    assert finish.returncode == 0, finish.stderr
    assert_same(out, reference)
