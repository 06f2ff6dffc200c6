"""``ganinv invert RUN PHOTO --align`` and ``invert_files(..., align=True)``: a face photo that is not an aligned
crop is found, aligned, written as inverted (aligned/) and reconstructed; a picture of no face is named and
skipped (exit status 3)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faces import drawn_face, pasted_photo, photo_path
from ganinv.apps.invert import invert_files
from helpers import assert_clean_error, run_cli




@pytest.fixture
def photo(tmp_path):
    """A face photo in a larger canvas, turned: matplotlib's sample portrait, or the drawn face without it."""
    image = pasted_photo(12) if photo_path() is not None else drawn_face(12)[0]
    image.save(tmp_path / "photo.jpg", quality=92)
    return tmp_path / "photo.jpg"


def test_invert_align_writes_the_aligned_photo_and_its_reconstruction(monkeypatch, capsys, tmp_path, rgb_aegan_run,
                                                                      photo):
    out = tmp_path / "inv"
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, photo, "--align", "--out", out)
    assert code == 0, err
    assert "face(s) aligned to the aligned-CelebA square at 16×16" in err
    aligned = Image.open(out / "aligned" / "00000-photo.png")
    assert aligned.size == (16, 16) and (out / "reconstructions" / "00000-photo.png").is_file()
    item = json.loads((out / "manifest.json").read_text())["items"][0]
    assert item["aligned"] == "aligned/00000-photo.png" and item["alignment"]["source"] == "eyes"
    assert -20 < item["alignment"]["angle_deg"] < -8  # turned 12°, plus the sitter's own tilt of a few degrees
    assert np.load(out / "latents.npy").shape == (1, 8)


def test_a_picture_of_no_face_is_named_and_skipped_with_status_3(monkeypatch, capsys, tmp_path, rgb_aegan_run, photo):
    Image.new("RGB", (300, 200), (40, 150, 60)).save(tmp_path / "lawn.png")
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, photo, tmp_path / "lawn.png", "--align",
                           "--out", tmp_path / "inv")
    assert code == 3 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "lawn.png" in line]
    assert len(lines) == 1 and "no face found" in lines[0]
    skipped = json.loads((tmp_path / "inv" / "manifest.json").read_text())["skipped"]
    assert [s["item"] for s in skipped] == [str(tmp_path / "lawn.png")]
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "lawn.png", "--align",
                           "--out", tmp_path / "none")
    assert_clean_error(code, err, "lawn.png", "no face found")
    assert not (tmp_path / "none").exists()


def test_align_is_for_image_files_and_a_landmark_model_is_checked_first(monkeypatch, capsys, tmp_path, rgb_aegan_run):
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, "--data", "digits", "--align",
                           "--out", tmp_path / "o")
    assert_clean_error(code, err, "--align works on IMAGES")
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "x.png", "--landmarks",
                           tmp_path / "lbfmodel.yaml", "--out", tmp_path / "o")
    assert code == 2 and ("opencv-contrib" in err or "does not exist" in err) and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_the_python_api_aligns_too(tmp_path, rgb_aegan_run):
    image, _ = drawn_face(-15, canvas=500)
    image.save(tmp_path / "drawn.png")
    result = invert_files(rgb_aegan_run, [tmp_path / "drawn.png"], tmp_path / "inv", align=True)
    assert result.n == 1 and (tmp_path / "inv" / "aligned" / "00000-drawn.png").is_file()
    plain = invert_files(rgb_aegan_run, [tmp_path / "drawn.png"], tmp_path / "plain")
    assert not (tmp_path / "plain" / "aligned").exists()
    assert "alignment" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())["items"][0]
    assert not np.allclose(result.latents, plain.latents)  # the run saw another picture
