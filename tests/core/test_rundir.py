"""The run directory: the files a trained run holds, the checkpoint they point at, and every reader of it facing
hostile or damaged files. Its readers and their bounds (the threat model's list):

    config.json      read_config: at most CONFIG_MAX_BYTES, then every field checked (core.config)
    checkpoint.json  _read_pointer: at most POINTER_MAX_BYTES; step an int, folders only checkpoints/step-…,
                     file sizes recorded (a truncated newest checkpoint falls back to the previous one)
    state.pt         read_state: stored zip entries summing to at most state_limit(weights), weights_only
    weights          read_weights_file: safetensors (no code), metadata numbers checked
"""
import json
import os
import shutil
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganinv.core.rundir as rundir
from ganinv import load
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.core.rundir import (
    CONFIG_MAX_BYTES,
    POINTER_MAX_BYTES,
    Checkpoint,
    RunDirWarning,
    latest_checkpoint,
    read_config,
    read_state,
)
from helpers import assert_clean_error, run_cli, tiny_train


def test_run_directory_layout(gan_run, aegan_run, generator_run):
    for run in (gan_run, aegan_run):
        for name in ("config.json", "checkpoint.json", "weights.safetensors", "metrics.jsonl"):
            assert (run / name).is_file(), name
        checkpoint = latest_checkpoint(run)
        assert checkpoint.step == 10 and checkpoint.state.is_file()
        assert checkpoint.weights.read_bytes() == (run / "weights.safetensors").read_bytes()
        folders = list((run / "checkpoints").iterdir())  # the newest, and the one before it until the next commit
        assert checkpoint.folder in folders and len(folders) <= 2
        assert list((run / "samples").glob("step-*.png"))
        assert list((run / "tb").iterdir())
    config = json.loads((aegan_run / "config.json").read_text())
    assert config["method"] == "aegan" and config["generator_run"] == str(generator_run.resolve())
    assert config["net"]["image_size"] == 16 and config["versions"]["torch"] == torch.__version__
    lines = [json.loads(line) for line in (aegan_run / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if line["kind"] == "eval"]
    assert evals and "generated/psnr" in evals[-1] and "real/dhash_similarity" in evals[-1]


# ------------------------------------------------------------------------------------------------ hostile folders
def copy_run(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "run"))


def foreign_folder(root):
    """The issue's repro: a folder someone else wrote, shaped like a run of another tool."""
    (root / "checkpoints" / "epoch=3").mkdir(parents=True)
    (root / "checkpoints" / "epoch=3" / "model.ckpt").write_text("w")
    (root / "state.pt").write_text("s")
    return root


def snapshot(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None) for p in root.rglob("*"))


def test_a_new_run_refuses_a_folder_that_is_not_a_run_and_touches_nothing(tmp_path, monkeypatch, capsys):
    root = foreign_folder(tmp_path / "P")
    before = snapshot(root)
    with pytest.raises(GaninvError, match="exists and is not empty .* holds no ganinv run"):
        tiny_train("gan", root, steps=3, data="digits", train_overrides={"checkpoint_every": 1})
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--image-size", 16, "--width",
                           8, "--steps", 3, "--checkpoint-every", 1, "--quiet", "--out", root)
    assert_clean_error(code, err, str(root), "holds no ganinv run", "nothing in it was touched")
    assert snapshot(root) == before


def test_a_folder_with_only_our_temporary_files_starts_a_run(tmp_path):
    """A run killed while writing its config leaves .config.json.XXXX.tmp: starting it again is allowed."""
    root = tmp_path / "run"
    root.mkdir()
    (root / ".config.json.abc123.tmp").write_text("{")
    tiny_train("gan", root, steps=1, data="digits")
    assert latest_checkpoint(root).step == 1 and not list(root.glob(".*.tmp"))


def test_a_save_deletes_only_what_ganinv_wrote(gan_run, tmp_path):
    run = copy_run(gan_run, tmp_path)
    ours_stale = run / "checkpoints" / "step-0000099-abcdef"  # our name, nothing points to it: removed
    ours_stale.mkdir()
    (run / ".checkpoint.json.x1y2.tmp").write_text("half")
    theirs = [run / "checkpoints" / "epoch=3", run / "checkpoints" / "step-12-notours", run / ".notes.tmp",
              run / "state.pt", run / "checkpoints" / "step-0000098-ABCDEF"]
    for path in theirs:
        path.mkdir() if "checkpoints" in str(path) else path.write_text("keep me")
    tiny_train("gan", run, steps=11, resume=True)
    assert latest_checkpoint(run).step == 11
    assert not ours_stale.exists() and not list(run.glob(".checkpoint.json.*.tmp"))
    assert all(path.exists() for path in theirs), [p for p in theirs if not p.exists()]


def test_top_level_weights_are_an_independent_copy(gan_run, tmp_path):
    run = copy_run(gan_run, tmp_path)  # copytree makes copies anyway: check the original run's files
    top, inner = gan_run / "weights.safetensors", latest_checkpoint(gan_run).weights
    assert os.stat(top).st_ino != os.stat(inner).st_ino and os.stat(inner).st_nlink == 1
    assert top.read_bytes() == inner.read_bytes()
    with open(run / "weights.safetensors", "r+b") as f:  # damaging one leaves the other (and the run) intact
        f.write(b"\0" * 64)
    assert load(run).trained_steps == 10


def truncate(path, keep: int = 100):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


@pytest.mark.parametrize("damaged", ["weights.safetensors", "state.pt"])
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damaged):
    """Checkpoints at 3 and 6; the step-6 one truncated after its commit: a one-line warning naming the file, the
    step-3 checkpoint loads, and resuming retrains steps 4-6 to the same weights as the straight run."""
    train = {"checkpoint_every": 3, "sample_every": 100, "eval_every": 100}
    torch.manual_seed(0)
    tiny_train("gan", tmp_path / "straight", steps=6, data="digits", train_overrides=train)
    torch.manual_seed(0)
    run = tmp_path / "run"
    tiny_train("gan", run, steps=6, data="digits", train_overrides=train)
    newest = latest_checkpoint(run)
    truncate(newest.folder / damaged)
    with pytest.warns(RunDirWarning) as caught:
        assert latest_checkpoint(run).step == 3
        load(run)
    message = str(caught[0].message)
    assert "\n" not in message and str(newest.folder / damaged) in message and "step 3" in message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunDirWarning)
        tiny_train("gan", run, steps=6, resume=True)
    expected, found = load_file(latest_checkpoint(tmp_path / "straight").weights), load_file(latest_checkpoint(run).weights)
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert not newest.folder.exists()  # the damaged one was ours: cleaned once superseded


def test_both_checkpoints_damaged_is_one_line(gan_run, tmp_path):
    run = copy_run(gan_run, tmp_path)
    for folder in (run / "checkpoints").iterdir():
        truncate(folder / "weights.safetensors")
    with pytest.raises(RunDirError, match="no earlier complete checkpoint") as failure:
        latest_checkpoint(run)
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("pointer, needle", [
    ({"step": 10, "folder": "../../etc"}, "not a checkpoint folder"),
    ({"step": 10, "folder": "/etc/passwd"}, "not a checkpoint folder"),
    ({"step": "10", "folder": "checkpoints/step-0000010-abcdef"}, "not a step number"),
    ({"step": True, "folder": "checkpoints/step-0000010-abcdef"}, "not a step number"),
    ([1, 2], "not a JSON object"),
    ({"step": 10, "folder": "checkpoints/step-0000010-abcdef", "sizes": {"weights.safetensors": "big"}}, "sizes"),
    ({"step": 10, "folder": "checkpoints/step-0000010-abcdef", "previous": {"step": 1, "folder": ".."}},
     "not a checkpoint folder"),
])
def test_a_hostile_checkpoint_json_is_one_line(gan_run, tmp_path, pointer, needle):
    run = copy_run(gan_run, tmp_path)
    (run / "checkpoint.json").write_text(json.dumps(pointer))
    with pytest.raises(RunDirError, match=needle) as failure:
        latest_checkpoint(run)
    assert "\n" not in str(failure.value) and "checkpoint.json" in str(failure.value)


def test_oversized_json_files_are_refused_unread(gan_run, tmp_path):
    run = copy_run(gan_run, tmp_path)
    with open(run / "checkpoint.json", "a") as f:
        f.write(" " * POINTER_MAX_BYTES)  # valid JSON, but no pointer is this big
    with pytest.raises(RunDirError, match="checkpoint.json is larger than"):
        latest_checkpoint(run)
    with open(run / "config.json", "a") as f:
        f.write(" " * CONFIG_MAX_BYTES)
    with pytest.raises(RunDirError, match="config.json is larger than"):
        read_config(run)


@pytest.mark.parametrize("change", [
    lambda c: c["train"].update(steps="many"), lambda c: c["net"].update(image_size=True),
    lambda c: c.update(net=5), lambda c: c.update(seed=[1]),
])
def test_a_config_json_with_wrong_types_is_one_line(gan_run, tmp_path, change):
    run = copy_run(gan_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirError, match="config.json") as failure:
        read_config(run)
    assert "\n" not in str(failure.value)


class RunsCode:
    """Pickled as a call of os.system: what a hostile state.pt would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_state_pt_never_runs_code_and_is_bounded(gan_run, tmp_path, monkeypatch):
    assert read_state(latest_checkpoint(gan_run))["step"] == 10
    with zipfile.ZipFile(latest_checkpoint(gan_run).state) as archive:  # torch.save stores entries, uncompressed
        assert {e.compress_type for e in archive.infolist()} == {zipfile.ZIP_STORED}
    checkpoint = Checkpoint(step=10, folder=tmp_path / "checkpoint")
    checkpoint.folder.mkdir()
    shutil.copy(latest_checkpoint(gan_run).weights, checkpoint.weights)

    marker = tmp_path / "pwned"
    torch.save({"step": 10, "evil": RunsCode(marker)}, checkpoint.state)
    with pytest.raises(RunDirError, match="state.pt is truncated or corrupt, or holds more than tensors"):
        read_state(checkpoint)
    assert not marker.exists()

    torch.save({"step": 10}, checkpoint.state)  # loads, but is not a training state
    with pytest.raises(RunDirError, match="not a ganinv training state"):
        read_state(checkpoint)

    with zipfile.ZipFile(checkpoint.state, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 1000)  # a zip bomb needs compression: refused unread
    with pytest.raises(RunDirError, match="compressed entries"):
        read_state(checkpoint)

    torch.save({"step": 10, "blob": torch.zeros(2 << 20, dtype=torch.uint8)}, checkpoint.state)
    monkeypatch.setattr(rundir, "STATE_SLACK_BYTES", 1 << 20)  # the bound: 4 × the weights + this
    assert os.path.getsize(checkpoint.state) > rundir.state_limit(checkpoint.weights.stat().st_size)
    with pytest.raises(RunDirError, match="larger than a training state"):
        read_state(checkpoint)
