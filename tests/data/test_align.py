"""Aligning face photos (ganinv.data.align): a drawn face with known eye centres and a real photo shipped with
matplotlib, each turned inside a larger canvas, come out with level eyes at the aligned-CelebA positions; a
picture of no face is refused with one clear line."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faces import drawn_face, pasted_photo, photo_path, turned_point
from ganinv.core.errors import DataError, GaninvError
from ganinv.data import align
from ganinv.data.align import TARGET_EYES, align_face, check_landmarks, read_aligned_files

SIZE = 128
TARGET = np.array(TARGET_EYES) * SIZE


def mapped(info, points) -> np.ndarray:
    """Photo points through the alignment's matrix: where they are in the aligned image."""
    matrix = np.array(info.matrix)
    return np.array([matrix @ np.array([x, y, 1.0]) for x, y in points])


def test_the_target_is_aligned_celebas_square():
    """The eyes of img_align_celeba (178×218, eyes at (68, 111.5) and (108, 111.5)) in the 178×178 centre square
    the CelebA loader cuts (rows 20…197): level, 40 px apart, either side of the middle."""
    (lx, ly), (rx, ry) = np.array(TARGET_EYES) * 178
    assert (lx, rx) == (68, 108) and ly == ry == pytest.approx(91.5)


@pytest.mark.parametrize("angle", [0, 12, -20])
def test_a_turned_drawn_face_is_levelled_onto_the_target(angle):
    image, eyes = drawn_face(angle)
    aligned, info = align_face(image, size=SIZE)
    assert aligned.size == (SIZE, SIZE) and aligned.mode == "RGB"
    assert info.source == "eyes" and info.faces == 1
    assert info.angle_deg == pytest.approx(-angle, abs=3)  # PIL turns counter-clockwise: the right eye rises
    assert np.abs(mapped(info, eyes) - TARGET).max() < 3  # the true eye centres land on the target (px)
    _, again = align_face(aligned, size=SIZE)  # found again in the aligned picture itself: level, in place
    assert abs(again.angle_deg) < 3 and np.abs(np.array(again.eyes) - TARGET).max() < 4


def test_a_face_turned_past_the_detectors_tolerance_is_found_by_turning_the_photo():
    image, eyes = drawn_face(35)
    _, info = align_face(image, size=SIZE)
    assert info.angle_deg == pytest.approx(-35, abs=3) and np.abs(mapped(info, eyes) - TARGET).max() < 4


def test_a_real_photo_in_a_larger_turned_canvas():
    """Grace Hopper's portrait (glasses: the eye cascades' hard case) turned by 14° in a 1000×900 canvas: her eyes,
    as found in the upright canvas and carried through the known turn, land on the target."""
    if photo_path() is None:
        pytest.skip("matplotlib's sample photo grace_hopper.jpg is not installed")
    upright_image, upright = align_face(pasted_photo(0), size=SIZE)
    aligned, info = align_face(pasted_photo(14), size=SIZE)
    assert upright.source == info.source == "eyes" and info.faces == 1
    assert info.angle_deg - upright.angle_deg == pytest.approx(-14, abs=3)
    eyes = [turned_point(p, 14, 1000, 900) for p in upright.eyes]
    assert np.abs(mapped(info, eyes) - TARGET).max() < 0.03 * SIZE
    difference = np.abs(np.asarray(aligned, float) - np.asarray(upright_image, float)).mean() / 255
    assert difference < 0.1  # the same picture as the upright photo's (a mirrored one differs by 0.23)


@pytest.mark.parametrize("picture", ["noise", "flat"])
def test_no_face_is_one_clear_error(picture):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) if picture == "noise" else \
        np.full((240, 320, 3), 180, np.uint8)
    with pytest.raises(DataError, match="no face found") as caught:
        align_face(pixels, size=SIZE)
    assert "\n" not in str(caught.value) and "--align" in str(caught.value)


def test_without_eyes_the_face_box_places_them(monkeypatch):
    monkeypatch.setattr(align, "best_eye_pair", lambda grey, box: None)
    image, eyes = drawn_face(0)
    _, info = align_face(image, size=SIZE)
    assert info.source == "face box" and "face box" in info.describe()
    assert np.abs(mapped(info, eyes) - TARGET).max() < 0.1 * SIZE  # the box's usual eye places: roughly right


def test_arrays_and_any_mode_are_accepted():
    image, _ = drawn_face(0, canvas=400)
    grey = np.asarray(image.convert("L"))
    for given in (np.asarray(image), grey, image.convert("RGBA"), Image.fromarray(grey)):
        aligned, info = align_face(given, size=32)
        assert aligned.size == (32, 32) and info.source == "eyes"
    with pytest.raises(DataError, match="uint8"):
        align_face(np.zeros((40, 40, 3), np.float32), size=32)
    with pytest.raises(DataError, match="size"):
        align_face(image, size=2)


def test_files_without_a_face_are_named_and_skipped(tmp_path):
    image, _ = drawn_face(10, canvas=400)
    image.save(tmp_path / "face.jpg")
    Image.new("RGB", (200, 160), (30, 140, 60)).save(tmp_path / "field.png")
    (tmp_path / "notes.png").write_text("not a picture")
    warnings = []
    read = read_aligned_files([tmp_path], 32, 3, warn=warnings.append)
    assert [f.name for f in read.files] == ["face.jpg"] and read.batch().shape == (1, 3, 32, 32)
    assert read.infos[0].source == "eyes"
    assert sorted(s.item.rsplit("/", 1)[-1] for s in read.skipped) == ["field.png", "notes.png"]
    assert any("field.png: no face found" in w for w in warnings) and len(warnings) == 2
    with pytest.raises(DataError, match="field.png: no face found"):
        read_aligned_files([tmp_path / "field.png"], 32, 3)


def test_a_landmark_model_needs_opencvs_contrib_modules(tmp_path):
    import cv2

    model = tmp_path / "lbfmodel.yaml"
    model.write_text("%YAML:1.0\n")
    if hasattr(cv2, "face"):
        with pytest.raises(DataError, match="does not exist"):
            check_landmarks(tmp_path / "absent.yaml")
        return
    with pytest.raises(GaninvError, match="opencv-contrib-python-headless"):
        check_landmarks(model)
