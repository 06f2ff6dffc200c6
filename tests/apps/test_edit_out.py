"""`ganinv edit` writes each mode's grid to a file of its own when --out is not given (a traversal used to overwrite
the interpolation's edit.png); `search`, `superres` and `edit` all take --out and say their defaults in --help."""
from __future__ import annotations

import torch
from PIL import Image

from ganinv.apps.edit import default_out
from ganinv.inference.model import InversionModel
from helpers import run_cli


def test_default_names_differ_by_mode():
    assert str(default_out(interpolation=True)) == "edit-interpolate.png"
    assert str(default_out(attribute="Smiling")) == "edit-attribute-Smiling.png"
    assert str(default_out(attribute="digit=3")) == "edit-attribute-digit=3.png"
    assert str(default_out(attribute="../a b/c")) == "edit-attribute-.._a_b_c.png"  # stays in the folder
    assert str(default_out(traversal=4)) == "edit-traverse.png"


def test_each_mode_writes_its_own_file(monkeypatch, capsys, aegan_run, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--interpolate", "--steps", "3")
    assert code == 0, err
    assert "edit-interpolate.png" in out and Image.open(tmp_path / "edit-interpolate.png").width > 0
    model = InversionModel.load(aegan_run)  # a latent scale, as a dlsgan run has, so --traverse runs
    scale = torch.linspace(1.0, 0.1, model.prior.dim)
    monkeypatch.setattr(type(model.method), "latent_scale", property(lambda self: scale))
    before = (tmp_path / "edit-interpolate.png").read_bytes()
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--traverse", "2", "--steps", "3")
    assert code == 0, err
    assert "edit-traverse.png" in out and (tmp_path / "edit-traverse.png").is_file()
    assert (tmp_path / "edit-interpolate.png").read_bytes() == before  # not overwritten
    assert not (tmp_path / "edit.png").exists()
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--interpolate", "--steps", "3",
                             "--out", tmp_path / "mine.png")
    assert code == 0 and (tmp_path / "mine.png").is_file(), err


def test_search_superres_edit_take_out_with_their_defaults_in_help(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    for command, default in (("search", "search.png"), ("superres", "superres.png"),
                             ("edit", "edit-interpolate.png, edit-attribute-ATTR.png, edit-traverse.png")):
        code, out, _ = run_cli(monkeypatch, capsys, command, "--help")
        text = " ".join(out.replace("│", " ").split())
        assert code == 0 and "--out" in text and default in text, (command, text)
    code, out, _ = run_cli(monkeypatch, capsys, "superres", "--help")
    assert "[bicubic]" in out  # rich would take an unescaped "[bicubic]" for a style and drop it
