"""`ganinv edit` writes each mode's grid to a file of its own when --out is not given (a traversal used to overwrite
the interpolation's edit.png): ganinv-out/edit-MODE-STEM.png, the convention every command's default output follows
(cli.common.default_out); `search`, `superres` and `edit` all take --out and say their defaults in --help."""
from __future__ import annotations

import torch
from PIL import Image

from ganinv.cli.apps import edit_mode
from ganinv.cli.common import default_out
from ganinv.inference.model import InversionModel
from helpers import run_cli


def edit_default(*, interpolation=False, attribute=None, images=("samples",)) -> str:
    return str(default_out("edit", images, mode=edit_mode(interpolation, attribute), suffix=".png"))


def test_default_names_differ_by_mode():
    assert edit_default(interpolation=True) == "ganinv-out/edit-interpolate-samples.png"
    assert edit_default(attribute="Smiling") == "ganinv-out/edit-attribute-Smiling-samples.png"
    assert edit_default(attribute="digit=3") == "ganinv-out/edit-attribute-digit=3-samples.png"
    assert edit_default(attribute="../a b/c") == "ganinv-out/edit-attribute-.._a_b_c-samples.png"  # stays in the folder
    assert edit_default() == "ganinv-out/edit-traverse-samples.png"
    assert edit_default(interpolation=True, images=["x/a.png", "b.jpg"]) == "ganinv-out/edit-interpolate-a-and-1-more.png"


def test_each_mode_writes_its_own_file(monkeypatch, capsys, aegan_run, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--interpolate", "--steps", "3")
    assert code == 0, err
    interpolation = tmp_path / "ganinv-out" / "edit-interpolate-samples.png"
    assert "wrote ganinv-out/edit-interpolate-samples.png" in out and Image.open(interpolation).width > 0
    model = InversionModel.load(aegan_run)  # a latent scale, as a dlsgan run has, so --traverse runs
    scale = torch.linspace(1.0, 0.1, model.prior.dim)
    monkeypatch.setattr(type(model.method), "latent_scale", property(lambda self: scale))
    before = interpolation.read_bytes()
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--traverse", "2", "--steps", "3")
    assert code == 0, err
    assert "wrote ganinv-out/edit-traverse-samples.png" in out
    assert (tmp_path / "ganinv-out" / "edit-traverse-samples.png").is_file()
    assert interpolation.read_bytes() == before  # not overwritten
    assert not (tmp_path / "edit.png").exists()
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--interpolate", "--steps", "3",
                             "--out", tmp_path / "mine.png")
    assert code == 0 and (tmp_path / "mine.png").is_file(), err


def test_search_superres_edit_take_out_with_their_defaults_in_help(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    for command, default in (("search", "ganinv-out/search-QUERY.png"), ("superres", "ganinv-out/superres-IMAGE.png"),
                             ("edit", "ganinv-out/edit-MODE-IMAGE.png, MODE interpolate, attribute-ATTR or traverse"),
                             ("invert", "ganinv-out/invert-IMAGE/"), ("cluster", "ganinv-out/cluster-kK-DATA/")):
        code, out, _ = run_cli(monkeypatch, capsys, command, "--help")
        text = " ".join(out.replace("│", " ").split())
        assert code == 0 and "--out" in text and default in text, (command, text)
    code, out, _ = run_cli(monkeypatch, capsys, "superres", "--help")
    assert "[bicubic]" in out  # rich would take an unescaped "[bicubic]" for a style and drop it
