"""Attribute directions saved beside the run (ganinv.apps.directions) and reused by ``ganinv edit --attribute``
(apps.edit.learned_direction): the second ask inverts nothing and gives the identical direction; a damaged or
hostile file is named in one line and learned again; the CLI's default count is the page's."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import ganinv.apps.edit as edit
from ganinv.apps.directions import DIRECTIONS_DIR, DirectionKey, direction_path
from ganinv.apps.edit import DIRECTION_TRAIN_N, learned_direction
from ganinv.inference.model import InversionModel
from helpers import run_cli


@pytest.fixture
def model(aegan_run, tmp_path):
    """The tiny AEGAN run, copied: the directions it saves stay in this test."""
    return InversionModel.load(shutil.copytree(aegan_run, tmp_path / "run"))


def no_inverting(monkeypatch):
    monkeypatch.setattr(edit, "labelled_latents", lambda *a, **k: pytest.fail("inverted the labelled images again"))


def test_a_direction_is_saved_and_reused_without_inverting(model, monkeypatch):
    first, reused = learned_direction(model, "digit=3", "digits", train_n=40)
    path = direction_path(model.source, DirectionKey("digit=3", "digits", 40))
    assert not reused and path.is_file() and path.parent.name == DIRECTIONS_DIR
    assert path.name == "digit=3.digits-train-40.npz" and not list(path.parent.glob(".*.tmp"))
    no_inverting(monkeypatch)
    again, reused = learned_direction(model, "digit=3", "digits", train_n=40)
    assert reused and np.array_equal(again.direction, first.direction)
    assert (again.spread, again.accuracy, again.n_latents) == (first.spread, first.accuracy, 40)
    with pytest.raises(pytest.fail.Exception):  # another count is another direction: learned, not reused
        learned_direction(model, "digit=3", "digits", train_n=41)


@pytest.mark.parametrize("damage", ["garbage", "pickle", "truncated", "renamed"])
def test_a_damaged_direction_file_is_one_line_and_learned_again(model, damage):
    first, _ = learned_direction(model, "digit=3", "digits", train_n=40)
    path = direction_path(model.source, DirectionKey("digit=3", "digits", 40))
    if damage == "garbage":
        path.write_bytes(b"not a numpy file at all")
    elif damage == "pickle":  # an object array: np.load(allow_pickle=True) would run its code
        with open(path, "wb") as f:
            np.savez(f, direction=np.array([{"a": 1}], dtype=object))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:  # another attribute's file under this name
        learned_direction(model, "digit=5", "digits", train_n=40)
        shutil.copy(direction_path(model.source, DirectionKey("digit=5", "digits", 40)), path)
    lines = []
    again, reused = learned_direction(model, "digit=3", "digits", train_n=40, warn=lines.append)
    assert not reused and np.allclose(again.direction, first.direction, atol=1e-6)
    assert len(lines) == 1 and "is damaged" in lines[0] and "learning the digit=3 direction again" in lines[0]
    assert "\n" not in lines[0]
    assert learned_direction(model, "digit=3", "digits", train_n=40)[1]  # the file was written anew


def test_a_direction_of_other_weights_is_learned_again_quietly(model):
    """A run trained further (its fingerprint changed) moves its latents: the saved direction is stale, not damaged."""
    learned_direction(model, "digit=3", "digits", train_n=40)
    (model.source / "config.json").write_text((model.source / "config.json").read_text() + "\n")
    lines = []
    assert not learned_direction(model, "digit=3", "digits", train_n=40, warn=lines.append)[1] and lines == []
    assert learned_direction(model, "digit=3", "digits", train_n=40)[1]


def test_the_cli_reuses_the_direction_and_defaults_to_the_pages_count(model, monkeypatch, capsys, tmp_path):
    args = ("edit", model.source, "--attribute", "digit=3", "--data", "digits", "--train-n", "40", "--steps", "3",
            "--samples", "1")
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "a.png")
    assert code == 0 and "direction from 40 labelled latents" in out, err
    no_inverting(monkeypatch)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "b.png")
    assert code == 0 and "direction from 40 labelled latents" in out and "reused" in err, err
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    from typer.main import get_command

    from ganinv.cli import app

    train_n = next(p for p in get_command(app).commands["edit"].params if p.name == "train_n")
    assert train_n.default is None and train_n.show_default == str(DIRECTION_TRAIN_N)  # None: the page's count
