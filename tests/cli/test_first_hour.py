"""What a new user meets first: `ganinv --version`, the one-line notice of missing ResNet18 weights, and the demo's
stated speed (the README and `ganinv demo --help` say the same)."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ganinv.nets.encoders import ResNetEncoder
from helpers import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"
DEMO_SPEED = ("≤ 10 minutes on 2 CPU cores", "≤ 2 minutes")  # the bounds demo.BUDGETS is sized for


def test_version_prints_the_installed_version_and_exits_0(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "--version")
    assert (code, out, err) == (0, f"ganinv {metadata.version('ganinv')}\n", "")
    assert re.fullmatch(r"ganinv \d+\.\d+\.\d+\S*\n", out)


def test_version_from_the_installed_command():
    done = subprocess.run([sys.executable, "-m", "ganinv", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ganinv {metadata.version('ganinv')}\n"


def assert_one_plain_notice(err: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("warning: ImageNet ResNet18 weights not found") and "RANDOM init" in line
    for developer_words in ("warnings.warn", "UserWarning", "Warning:", ".py", "encoders", "Traceback"):
        assert developer_words not in line


def test_missing_resnet18_weights_is_one_plain_line_from_the_cli(generator_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    code, _, err = run_cli(monkeypatch, capsys, "train", "regression", "--generator", generator_run,
                           "--out", tmp_path / "r18", "--steps", "1", "-o", "backbone=resnet18")
    assert code == 0, err
    assert_one_plain_notice(err)


def test_missing_resnet18_weights_is_one_plain_line_from_the_library_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    assert ResNetEncoder(latent_dim=4).load_imagenet() == "random"
    assert_one_plain_notice(capsys.readouterr().err)
    assert ResNetEncoder(latent_dim=4).load_imagenet() == "random"  # a second encoder: said already
    assert capsys.readouterr().err == ""


def words(text: str) -> str:
    """Text as a reader sees it: rich's box lines and wrapping gone."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_readme_and_demo_help_state_the_same_speed(monkeypatch, capsys):
    readme_line = next(line for line in README.read_text(encoding="utf-8").splitlines()
                       if line.startswith("ganinv demo "))
    code, out, _ = run_cli(monkeypatch, capsys, "demo", "--help")
    assert code == 0
    for bound in DEMO_SPEED:
        assert bound in readme_line and bound in words(out), bound
    assert "≈" not in readme_line
