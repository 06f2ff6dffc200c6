"""``ganinv edit RUN photo --attribute NAME --data SPEC --align --paste-back`` (issue 26): the photo's face is aligned as
``invert --align`` aligns it, and every strength of the edit is pasted back into the photo — at the photo's size,
the photo's own pixels outside the aligned square bit for bit; --paste-back without --align (or without photos, or
without an attribute to paste) is refused in one line."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faces import drawn_face
from ganinv.data.align import read_aligned_files
from helpers import assert_clean_error, make_celeba, run_cli

SIZE = 16  # rgb_aegan_run's side


@pytest.fixture
def photo(tmp_path):
    drawn_face(10)[0].save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def outside_square(matrix, size: int, shape) -> np.ndarray:
    """The photo pixels that map outside the aligned size×size square (more than half a pixel past its outermost
    pixel centres), computed here without OpenCV: where the paste-back mask is 0."""
    height, width = shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    u, v = (matrix[i, 0] * x + matrix[i, 1] * y + matrix[i, 2] for i in (0, 1))
    return (np.minimum(u, v) < -0.5) | (np.maximum(u, v) > size - 0.5)


def test_edit_align_paste_back_keeps_the_photo_outside_the_square(monkeypatch, capsys, tmp_path, rgb_aegan_run,
                                                                   photo):
    spec = make_celeba(tmp_path / "celeba", n_train=30, n_valid=0, n_test=2)
    grid = tmp_path / "edit.png"
    code, out, err = run_cli(monkeypatch, capsys, "edit", rgb_aegan_run, photo, "--attribute", "Smiling", "--data",
                             spec, "--train-n", "30", "--steps", "3", "--strength", "-1..1", "--align", "--aligner",
                             "haar", "--paste-back", "--out", grid)
    assert code == 0, err
    assert "face(s) aligned to the aligned-CelebA square at 16×16" in err
    folder = tmp_path / "edit-pasted"
    assert out.strip().splitlines()[-2:] == [f"wrote {folder}", f"wrote {grid}"] and grid.is_file()
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"00000-photo-Smiling{s}.png" for s in ("-1", "+0", "+1"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    info = read_aligned_files([photo], SIZE, 3).infos[0]  # the alignment edit made, made again: it is deterministic
    outside = outside_square(info.matrix, info.size, original.shape)
    assert 0.5 < outside.mean() < 0.999  # the square is part of the photo, not all of it
    pasted = [np.asarray(Image.open(folder / name).convert("RGB")) for name in names]
    for image in pasted:
        assert image.shape == original.shape
        assert np.array_equal(image[outside], original[outside]) and not np.array_equal(image, original)
    assert not np.array_equal(pasted[0], pasted[2])  # the strengths differ inside the square


def test_paste_back_needs_align_photos_and_an_attribute(monkeypatch, capsys, tmp_path, rgb_aegan_run, photo):
    code, _, err = run_cli(monkeypatch, capsys, "edit", rgb_aegan_run, photo, "--attribute", "Smiling", "--data",
                           "digits", "--paste-back", "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "--paste-back needs --align")
    code, _, err = run_cli(monkeypatch, capsys, "edit", rgb_aegan_run, "--traverse", "1", "--align",
                           "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "--align needs IMAGES")
    code, _, err = run_cli(monkeypatch, capsys, "edit", rgb_aegan_run, photo, photo, "--interpolate", "--align",
                           "--paste-back", "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "--paste-back pastes the --attribute edits")
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "e-pasted").exists()
