"""Nothing is lost at any instant: a failed filesystem operation at every point of a checkpoint, and SIGKILLs at
random instants, leave a run that resumes to the weights of a run that never stopped."""
from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import ganinv.core.io as fs
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import CHECKPOINTS, latest_checkpoint
from ganinv.training.launch import train_run
from helpers import TINY_NET

FS_OPERATIONS = ("make_dir", "write_durable", "fsync_dir", "replace")
STEPS, EVERY = 4, 2  # checkpoints at steps 2 and 4: the failures hit the second, which has a previous one


class FailingFilesystem:
    """Counts the checkpoint's filesystem operations and makes the ``fail_at``-th one raise (a full disk)."""

    def __init__(self, monkeypatch, fail_at: int | None = None, reason: int = errno.ENOSPC):
        self.count, self.fail_at, self.reason = 0, fail_at, reason
        for name in FS_OPERATIONS:
            monkeypatch.setattr(fs, name, self._counted(getattr(fs, name)))

    def _counted(self, operation):
        def wrapper(*args, **kwargs):
            self.count += 1
            if self.count == self.fail_at:
                raise OSError(self.reason, os.strerror(self.reason), str(args[0]))
            return operation(*args, **kwargs)
        return wrapper


def train_tiny(method: str, out, generator_run=None, steps: int = STEPS, resume: bool = False):
    net = dict(TINY_NET) if method != "aegan" else None
    train = dict(steps=steps, batch_size=16, checkpoint_every=EVERY, sample_every=100, eval_every=100,
                 eval_samples=16)
    return train_run(method, out, data="digits" if method != "aegan" else None, resume=resume,
                     generator=generator_run if method == "aegan" and not resume else None, show_progress=False, net_overrides=net,
                     train_overrides=train)


def final_weights(run) -> dict[str, torch.Tensor]:
    return load_file(latest_checkpoint(run).weights)


def assert_same_weights(a, b) -> None:
    x, y = final_weights(a), final_weights(b)
    assert x.keys() == y.keys()
    assert all(torch.equal(x[k], y[k]) for k in x), [k for k in x if not torch.equal(x[k], y[k])]


def operations_per_checkpoint(monkeypatch, tmp_path, method, generator_run) -> int:
    with monkeypatch.context() as patch:
        counter = FailingFilesystem(patch)
        train_tiny(method, tmp_path / "counted", generator_run, steps=EVERY)  # exactly one checkpoint
    return counter.count


@pytest.mark.parametrize("method", ["gan", "aegan", "dlsgan"])
def test_a_failure_at_every_operation_of_a_checkpoint_loses_nothing(monkeypatch, tmp_path, method, generator_run):
    torch.manual_seed(0)
    train_tiny(method, tmp_path / "straight", generator_run)
    per_checkpoint = operations_per_checkpoint(monkeypatch, tmp_path, method, generator_run)
    assert per_checkpoint >= 5
    for k in range(1, per_checkpoint + 1):
        run = tmp_path / f"fail-{k}"
        with monkeypatch.context() as patch:
            FailingFilesystem(patch, fail_at=per_checkpoint + k)  # the k-th operation of the second checkpoint
            with pytest.raises(GaninvError, match=r"checkpoint of step 4.*(No space left on device)"):
                train_tiny(method, run, generator_run)
        assert latest_checkpoint(run).step in (EVERY, STEPS)  # the previous one, or the new one if it committed
        load(run)  # loadable as it is
        train_tiny(method, run, resume=True)
        assert_same_weights(run, tmp_path / "straight")
        assert not list(run.glob(".*.tmp")) and len(list((run / CHECKPOINTS).iterdir())) <= 2


def test_a_failed_write_says_which_checkpoint_is_kept(monkeypatch, tmp_path, generator_run):
    with monkeypatch.context() as patch:
        FailingFilesystem(patch, fail_at=2, reason=errno.EACCES)  # the first checkpoint's weights file
        with pytest.raises(GaninvError) as failure:
            train_tiny("gan", tmp_path / "run")
    message = str(failure.value)
    assert "\n" not in message and "Permission denied" in message and "no earlier checkpoint" in message
    assert latest_checkpoint(tmp_path / "run") is None


def test_a_half_written_checkpoint_folder_is_ignored_and_cleaned(tmp_path):
    run = tmp_path / "run"
    train_tiny("gan", run, steps=EVERY)
    stray = run / CHECKPOINTS / "step-0000004-deadbe"
    stray.mkdir()
    (stray / "weights.safetensors").write_bytes(b"half")
    (run / ".weights.safetensors.x.tmp").write_bytes(b"half")
    assert latest_checkpoint(run).step == EVERY
    load(run)
    train_tiny("gan", run, resume=True)
    assert not stray.exists() and not list(run.glob(".*.tmp"))


def test_a_run_of_the_older_layout_loads_and_resumes(tmp_path):
    """weights.safetensors + state.pt at the top, no checkpoint.json: what ganinv wrote before."""
    import shutil

    torch.manual_seed(0)
    train_tiny("gan", tmp_path / "straight")
    run = tmp_path / "old"
    train_tiny("gan", run, steps=EVERY)
    checkpoint = latest_checkpoint(run)
    shutil.copy(checkpoint.state, run / "state.pt")
    (run / "checkpoint.json").unlink()
    shutil.rmtree(run / CHECKPOINTS)
    assert latest_checkpoint(run).step == EVERY
    train_tiny("gan", run, resume=True)
    assert_same_weights(run, tmp_path / "straight")
    assert not (run / "state.pt").exists()


def test_a_posthoc_run_refuses_a_changed_generator(tmp_path, generator_run):
    import shutil

    generator = tmp_path / "generator"
    shutil.copytree(generator_run, generator)
    run = tmp_path / "aegan"
    train_tiny("aegan", run, generator, steps=1)
    shutil.rmtree(run / CHECKPOINTS)  # as if killed before its first checkpoint …
    (run / "checkpoint.json").unlink()
    (run / "weights.safetensors").unlink()
    weights = latest_checkpoint(generator).weights  # … and the generator run retrained meanwhile
    tensors = load_file(weights)
    tensors = {k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()}
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(weights), framework="pt") as f:
        metadata = f.metadata()
    weights.unlink()
    save_file(tensors, weights, metadata=metadata)
    with pytest.raises(GaninvError, match="has changed since this run started"):
        train_tiny("aegan", run, resume=True)


# --------------------------------------------------------------------------------------------- SIGKILL
def ganinv(*args) -> list[str]:
    return [sys.executable, "-m", "ganinv", *map(str, args)]


TRAIN_GAN = ("train", "gan", "--data", "digits", "--image-size", 16, "--width", 8, "--latent-dim", 8, "--steps", 12,
             "--checkpoint-every", 1, "--sample-every", 100, "--eval-every", 100, "--batch-size", 16, "--seed", 3,
             "--quiet")


def run_killed(command: list[str], wait_for) -> None:
    """Start ``command`` and SIGKILL it as soon as ``wait_for()`` holds (or when it ends first)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and not wait_for() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def finish(command: list[str]) -> None:
    result = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def checkpoint_reached(run, step: int, delay: float):
    """True once the run has committed ``step``, after a further ``delay``: the kill then lands before, inside or
    after the next checkpoint's write."""
    def reached():
        if (run / "checkpoint.json").exists() and latest_checkpoint(run).step >= step:
            time.sleep(delay)
            return True
        return False
    return reached


@pytest.mark.slow
def test_sigkill_at_random_instants_then_resume_matches(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(ganinv(*TRAIN_GAN, "--out", reference), check=True, timeout=300)
    chooser = random.Random(14)
    run = tmp_path / "killed"
    command = ganinv(*TRAIN_GAN, "--out", run)
    for target_step in sorted(chooser.sample(range(1, 12), 3)):  # three kills of one run, each resumed
        run_killed(command + (["--resume"] if run.exists() else []),
                   checkpoint_reached(run, target_step, chooser.uniform(0, 0.05)))
    finish(command)
    assert_same_weights(run, reference)


@pytest.mark.slow
def test_posthoc_run_killed_before_its_first_checkpoint_resumes_with_its_real_generator(tmp_path, generator_run):
    command = ganinv("train", "aegan", "--generator", generator_run, "--steps", 6, "--checkpoint-every", 3,
                     "--sample-every", 100, "--eval-every", 100, "--batch-size", 16, "--seed", 3, "--quiet")
    reference = tmp_path / "reference"
    subprocess.run(command + ["--out", str(reference)], check=True, timeout=300)
    run = tmp_path / "killed"
    run_killed(command + ["--out", str(run)], lambda: (run / "config.json").exists())
    assert latest_checkpoint(run) is None
    finish(command + ["--out", str(run)])
    assert_same_weights(run, reference)
    generator = load(generator_run).method.nets["generator"].state_dict()
    resumed = load(run).method.nets["generator"].state_dict()
    assert all(torch.equal(generator[k], resumed[k]) for k in generator)
