"""The command line's rough edges of issue 18: a bad path refused before the heavy imports, the real defaults in
--help, resuming a finished run, and the tracker of --log-with."""
import importlib.util
import sys

import pytest

from ganinv.cli.common import RUN_CONFIG, check_paths
from ganinv.cli.train import preset_defaults
from ganinv.core.config import PRESETS
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import CONFIG
from ganinv.inference.evaluate import EVAL_IMAGES
from helpers import assert_clean_error, run_cli, tiny_train

BAD_PATHS = [  # (arguments, what the error says, the module the command imports after its path check)
    (["eval", "{tmp}/no-run"], "does not exist", "ganinv.inference.evaluate"),
    (["eval", "{tmp}"], f"no {CONFIG}", "ganinv.inference.evaluate"),
    (["eval", "{run}", "--data", "celeba:{tmp}/no-celeba"], "CelebA folder not found", "ganinv.inference.evaluate"),
    (["train", "gan", "--data", "folder:{tmp}/no-folder", "--out", "{tmp}/r"], "image folder not found",
     "ganinv.training.launch"),
    (["train", "aegan", "--generator", "{tmp}/no-run", "--out", "{tmp}/r"], "does not exist", "ganinv.training.launch"),
    (["ablate", "dlsgan", "--data", "folder:{tmp}/no-folder"], "image folder not found", "ganinv.experiments.ablation"),
]


@pytest.mark.parametrize("args, needle, deferred", BAD_PATHS)
def test_a_bad_path_is_refused_before_the_heavy_imports(monkeypatch, capsys, tmp_path, args, needle, deferred):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CONFIG).write_text("{}")
    monkeypatch.setitem(sys.modules, deferred, None)  # importing it now fails: the check has to come first
    code, _, err = run_cli(monkeypatch, capsys, *[a.format(tmp=tmp_path, run=tmp_path / "run") for a in args])
    assert_clean_error(code, err, needle)
    assert not (tmp_path / "r").exists()


def test_check_paths_names_a_missing_image_and_lets_good_paths_through(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    check_paths(runs=[None], data="mnist", images=[tmp_path / "a.png"])  # the library judges what is there
    check_paths(data=f"celeba:{tmp_path}")
    with pytest.raises(GaninvError, match="image not found: .*b.png"):
        check_paths(images=[tmp_path / "b.png"])
    with pytest.raises(GaninvError, match="is a file, not a folder"):
        check_paths(data=f"folder:{tmp_path / 'a.png'}")
    assert RUN_CONFIG == CONFIG  # spelled out in cli.common so that it need not import core.rundir (torch)


def test_help_shows_the_defaults_the_presets_apply(monkeypatch, capsys):
    small, paper = PRESETS["small"][1], PRESETS["paper"][1]
    assert preset_defaults("batch_size").startswith(f"small: {small.batch_size}; paper: {paper.batch_size}")
    assert preset_defaults("lr").startswith(f"small: {small.lr:g}; paper: {paper.lr:g}")
    assert "dlsgan" in preset_defaults("batch_size")  # a method whose own paper sets it
    assert preset_defaults("steps") == f"{small.steps}"  # one value where every preset and method agrees
    monkeypatch.setenv("COLUMNS", "400")  # one line per option, whatever the terminal
    code, out, _ = run_cli(monkeypatch, capsys, "train", "--help")
    assert code == 0 and f"[{preset_defaults('batch_size')}]" in out and "{default:" not in out
    code, out, _ = run_cli(monkeypatch, capsys, "eval", "--help")
    assert code == 0 and f"[{EVAL_IMAGES}," in out


def test_resuming_a_finished_run_says_so_and_how_to_extend_it(monkeypatch, capsys, tmp_path):
    tiny_train("gan", tmp_path / "r", steps=3, data="digits")
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    code, out, err = run_cli(monkeypatch, capsys, "train", "gan", "--out", tmp_path / "r", "--resume")
    assert code == 0, err
    text = " ".join(out.split())
    assert "already finished at step 3" in text and "--resume --steps M (M > 3)" in text
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before  # nothing trained, nothing logged
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "r" / "tb"))  # TensorBoard, through Accelerate: the default tracker
    events.Reload()
    assert {"train/g_loss", "train/d_loss"} <= set(events.Tags()["scalars"])


def test_a_tracker_that_is_not_installed_is_one_clear_line(monkeypatch, capsys, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name, *a))
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--out", tmp_path / "r",
                           "--log-with", "mlflow")
    assert_clean_error(code, err, "--log-with mlflow needs the mlflow package", "pip install mlflow")
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--out", tmp_path / "r",
                           "--log-with", "comet")
    assert_clean_error(code, err, "tensorboard, wandb, mlflow")
    assert not (tmp_path / "r").exists()
