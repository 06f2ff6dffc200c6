"""One output convention (issue 26, item 7): without --out every command writes to ganinv-out/COMMAND-…-STEM in the
current folder and ends with one line "wrote PATH"; grids name their columns after the input files; invert prints
each image's PSNR / SSIM; superres scores a degraded known image against it; edit shows each original first.
Also `invert --split valid` and `invert --tune`'s one note (item 9)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganinv.apps import edit as edit_module
from ganinv.apps import invert as invert_module
from ganinv.apps import superres as superres_module
from ganinv.apps.tune import read_tuning_inputs
from ganinv.cli import app
from ganinv.cli.common import default_out
from ganinv.core.viz import fold, label_font, labelled_grid
from helpers import assert_clean_error, make_celeba, run_cli


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80", "GANINV_OFFLINE": "1"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """Two 20×20 grey images with long names, and the current folder set to tmp_path."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    paths = [tmp_path / f"holiday-photo-number-{i}-of-a-long-series.png" for i in range(2)]
    for p in paths:
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(p)
    return paths


@pytest.fixture
def grids(monkeypatch):
    """Every labelled_grid call of the apps, recorded: (rows, row labels, keyword arguments)."""
    calls = []

    def recording(rows, row_labels, **kwargs):
        calls.append((rows, row_labels, kwargs))
        return labelled_grid(rows, row_labels, **kwargs)

    for module in (invert_module, superres_module, edit_module):
        monkeypatch.setattr(module, "labelled_grid", recording)
    return calls


def test_default_out_is_named_after_the_command_and_the_input():
    assert default_out("invert", ["a/b/photo.jpg"]) == default_out("invert", ["photo.png"])
    assert str(default_out("invert", ["a/b/photo.jpg"])) == "ganinv-out/invert-photo"
    assert str(default_out("search", ["q.png", "r.png", "s.png"], suffix=".png")) == "ganinv-out/search-q-and-2-more.png"
    assert str(default_out("superres", ["faces/"], mode="x4", suffix=".png")) == "ganinv-out/superres-x4-faces.png"
    assert str(default_out("edit", ["../../etc/pass wd.png"], mode="attribute-a/b")) == \
        "ganinv-out/edit-attribute-a_b-pass_wd"  # nothing leaves ganinv-out/


def test_invert_without_out_writes_prints_scores_and_wrote(aegan_run, photos, grids, tmp_path):
    out, err = invoke("invert", aegan_run, *photos)
    folder = "ganinv-out/invert-holiday-photo-number-0-of-a-long-series-and-1-more"
    assert out.splitlines()[-1] == f"wrote {folder}"
    manifest = json.loads((tmp_path / folder / "manifest.json").read_text())
    lines = out.splitlines()
    for item in manifest["items"]:  # each image's scores, as the manifest records them
        assert f"{item['input']}\t{item['psnr']:.2f}\t{item['ssim']:.4f}" in lines
    assert any(line.startswith("mean PSNR ") and "SSIM" in line for line in lines)
    _, _, kwargs = grids[-1]
    assert kwargs["column_labels"] == [p.name for p in photos]  # not "row 0", "row 1"
    assert all(c.endswith(" dB") for c in kwargs["captions"][1])
    assert err.count("centre-cropped") == 1


def test_superres_of_a_degraded_known_image_scores_it(aegan_run, photos, grids, tmp_path):
    out, _ = invoke("superres", aegan_run, *photos, "--factor", "2")
    assert out.splitlines()[-1] == "wrote ganinv-out/superres-x2-holiday-photo-number-0-of-a-long-series-and-1-more.png"
    assert (tmp_path / out.splitlines()[-1].removeprefix("wrote ")).is_file()
    rows = [line.split("\t") for line in out.splitlines() if line.count("\t") == 2]
    assert [r[0] for r in rows] == ["row", "degraded", "bicubic", "inverted"]
    assert all(float(r[1]) > 0 and -1 <= float(r[2]) <= 1 for r in rows[1:])
    grid_rows, labels, kwargs = grids[-1]
    assert labels == ["clean", "degraded", "bicubic", "inverted"]
    assert kwargs["column_labels"] == [p.name for p in photos]
    assert kwargs["captions"][0] == ["", ""] and all(c.count("\n") == 1 and " dB\n" in c for c in kwargs["captions"][1])
    out, _ = invoke("superres", aegan_run, photos[0])  # a low-resolution input as it is: nothing to score against
    assert "PSNR" not in out and out.splitlines()[-1] == "wrote ganinv-out/superres-holiday-photo-number-0-of-a-long-series.png"


def test_edit_shows_each_original_first(aegan_run, photos, grids):
    out, _ = invoke("edit", aegan_run, *photos, "--interpolate", "--steps", "3")
    assert out.splitlines()[-1] == "wrote ganinv-out/edit-interpolate-holiday-photo-number-0-of-a-long-series-and-1-more.png"
    rows, _, kwargs = grids[-1]
    assert kwargs["column_labels"] == [photos[0].name, "t=0.00", "t=0.50", "t=1.00", photos[1].name]
    assert len(rows[0]) == 5
    out, _ = invoke("edit", aegan_run, photos[0], "--attribute", "digit=3", "--data", "digits", "--train-n", "60",
                    "--steps", "3", "--strength", "-1..1")
    rows, labels, kwargs = grids[-1]
    assert labels == [photos[0].name] and len(rows[0]) == 4
    assert kwargs["column_labels"] == ["original", "-1σ", "+0σ", "+1σ"]
    assert out.splitlines()[-1] == "wrote ganinv-out/edit-attribute-digit=3-holiday-photo-number-0-of-a-long-series.png"


def test_cluster_and_search_without_out(aegan_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, _ = invoke("cluster", aegan_run, "--data", "digits", "--k", "2", "--n", "30", "--quiet")
    assert out.splitlines()[-1] == "wrote ganinv-out/cluster-k2-digits"
    assert (tmp_path / "ganinv-out" / "cluster-k2-digits" / "clusters.json").is_file()
    assert "label\tpurity\tchance" in out.splitlines()


def test_grid_labels_fold_and_keep_every_character():
    font = label_font()
    name = "holiday-photo-number-0-of-a-long-series.png"
    lines = fold(name, font, 64)
    assert len(lines) > 1 and "".join(lines) == name
    assert all(font.getlength(line) <= 64 for line in lines)
    assert fold("12.34 dB\nSSIM 0.5", font, 200) == ["12.34 dB", "SSIM 0.5"]
    import torch

    tiles = [torch.zeros(2, 1, 16, 16)]
    short = labelled_grid(tiles, ["a"], column_labels=["x", "y"])
    long = labelled_grid(tiles, ["a"], column_labels=[name, "y"])
    assert long.shape[1] > short.shape[1] and long.shape[2] == short.shape[2]  # taller, never cut


def test_invert_split_valid(aegan_run, tmp_path, monkeypatch, capsys):
    spec = make_celeba(tmp_path / "celeba", n_train=6, n_valid=3, n_test=2)
    code, out, err = run_cli(monkeypatch, capsys, "invert", aegan_run, "--data", spec, "--split", "valid",
                             "--out", tmp_path / "v", "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["n"] == 3  # CelebA's partition 1 only
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, "--data", "digits", "--split", "valid",
                           "--out", tmp_path / "d")
    assert_clean_error(code, err, "digits has no 'valid' split")


def test_tune_notes_the_resizing_once(photos):
    notes = []
    read = read_tuning_inputs(photos, (1, 16, 16), align=False, landmarks=None, warn=notes.append)
    assert len(read.files) == 2 and len(notes) == 1 and "centre-cropped and resized to 16×16" in notes[0]
