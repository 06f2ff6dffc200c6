"""FFHQ-style alignment (ganinv.data.ffhq_align) and paste-back (ganinv.data.paste): the quad's geometry on hand-made
landmarks; dlib's real loader and predictor on a tiny 68-point model each test trains on drawn faces; the model
fetched into the cache (a bz2 stream served locally: no test touches the network) or refused in one line offline;
the aligned crop pasted back into its photo; ``ganinv invert --aligner ffhq --paste-back`` end to end."""
from __future__ import annotations

import bz2
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from faces import drawn_face
from ganinv.core import offline
from ganinv.core.errors import DataError, GaninvError
from ganinv.data import ffhq_align
from ganinv.data.align import warp
from ganinv.data.ffhq_align import align_face_ffhq, choose_aligner, ffhq_quad, landmark_model, quad_transform
from ganinv.data.paste import feather_mask, paste_back
from helpers import assert_clean_error, run_cli

dlib = pytest.importorskip("dlib")

# FFHQ's eyes for an upright face with |eyes→mouth| = |eye→eye| (this template): x = 0.5 ∓ 1/8 of the side, y = 0.5 −
# 0.1·|m| / (2·2|e|) = 0.475, in PIL's edge coordinates (pixel centres at +0.5)
FFHQ_EYES_OF_SIDE = np.array([[0.375, 0.475], [0.625, 0.475]])


def template() -> np.ndarray:
    """68 landmarks in dlib's (iBUG) order of a frontal face in a unit frame: eye centres (−0.5, 0) and (0.5, 0),
    mouth corners (∓0.45, 1), so |e| = |m| = 1."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([-1.1 * np.cos(t), 1.4 * np.sin(t) - 0.1], axis=1)
    brows = [(x, -0.45) for c in (-0.5, 0.5) for x in np.linspace(c - 0.35, c + 0.35, 5)]
    nose = [(0.0, -0.1 + 0.15 * i) for i in range(4)] + [(x, 0.55) for x in np.linspace(-0.25, 0.25, 5)]

    def ring(cx, cy, rx, ry, n):  # n points from the image-left corner, as iBUG's contours start
        a = np.pi + np.arange(n) * 2 * np.pi / n
        return list(zip(cx + rx * np.cos(a), cy - ry * np.sin(a)))
    eyes = ring(-0.5, 0, 0.22, 0.1, 6) + ring(0.5, 0, 0.22, 0.1, 6)
    mouth = ring(0, 1.0, 0.45, 0.18, 12) + ring(0, 1.0, 0.3, 0.08, 8)
    return np.array(list(jaw) + brows + nose + eyes + mouth, dtype=np.float64)


def placed(centre, scale: float, angle_deg: float) -> np.ndarray:
    """The template turned by ``angle_deg`` (positive: clockwise on screen, the right eye lower), scaled, moved."""
    th = np.radians(angle_deg)
    turn = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return template() @ turn.T * scale + np.asarray(centre, dtype=np.float64)


def drawn(points: np.ndarray, canvas=(240, 200)) -> Image.Image:
    """A cartoon face over its landmarks: skin inside the jaw and brows, dark eyes, a red mouth."""
    im = Image.new("RGB", canvas, (70, 90, 80))
    draw = ImageDraw.Draw(im)
    outline = [tuple(p) for p in points[0:17]] + [tuple(p) for p in points[26:16:-1]]
    draw.polygon(outline, fill=(205, 170, 150))
    for part, colour in ((slice(36, 42), (30, 25, 25)), (slice(42, 48), (30, 25, 25)), (slice(48, 60), (140, 50, 60))):
        draw.polygon([tuple(p) for p in points[part]], fill=colour)
    return im.filter(ImageFilter.GaussianBlur(1))


def box_of(points) -> tuple[int, int, int, int]:
    return tuple(int(v) for v in (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()))


FACES = [((120, 90), 30, 0), ((110, 95), 28, 18), ((128, 88), 32, -25), ((118, 92), 30, 9)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real dlib shape predictor (.dat) trained on the drawn FACES: on them it gives their landmarks back to
    dlib's integer pixels (±0.5 px)."""
    images, objects = [], []
    for centre, scale, angle in FACES:
        points = placed(centre, scale, angle)
        images.append(np.asarray(drawn(points)))
        objects.append([dlib.full_object_detection(dlib.rectangle(*box_of(points)),
                                                   [dlib.point(int(round(x)), int(round(y))) for x, y in points])])
    options = dlib.shape_predictor_training_options()
    options.oversampling_amount, options.cascade_depth, options.tree_depth = 10, 10, 3
    options.num_trees_per_cascade_level, options.nu, options.num_threads = 50, 0.1, 1
    predictor = dlib.train_shape_predictor(images, objects, options)
    path = tmp_path_factory.mktemp("dlib") / "tiny_68.dat"
    predictor.save(str(path))
    return path


def stub_detector(points):
    """Stands in for dlib's HOG detector (which finds no cartoon): the box the model was trained with."""
    return lambda pixels: [box_of(points)]


# ------------------------------------------------------------------------------------------------ the quad
@pytest.mark.parametrize("angle", [0.0, 17.0, -40.0])
def test_the_quad_levels_the_eyes_at_ffhqs_places(angle):
    """Any turn, scale and place: the eyes land level, a quarter of the side apart, at FFHQ's positions."""
    points = placed((300.0, 200.0), 57.0, angle)
    size = 256
    matrix = quad_transform(ffhq_quad(points), size)
    eyes = np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])
    mapped = eyes @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, FFHQ_EYES_OF_SIDE * size - 0.5, atol=1e-9)
    assert np.hypot(*matrix[:, 0]) == pytest.approx(size / (4 * 57.0))  # the side is 4·|e|: 2·|e| each way


def test_the_quad_is_a_square_sized_by_the_longer_of_eyes_and_mouth():
    points = placed((0.0, 0.0), 10.0, 30.0)
    quad = ffhq_quad(points)
    sides = np.hypot(*(np.roll(quad, -1, axis=0) - quad).T)
    np.testing.assert_allclose(sides, 40.0, atol=1e-9)  # 2 · 2|e|, |e| = 10
    long_face = points.copy()
    long_face[48:68, 1] += 15.0 * np.cos(np.radians(30.0))  # the mouth 1.5 × further down the face's axis …
    long_face[48:68, 0] -= 15.0 * np.sin(np.radians(30.0))
    side = np.hypot(*(ffhq_quad(long_face)[1] - ffhq_quad(long_face)[0]))
    assert side == pytest.approx(2 * 1.8 * np.hypot(*(long_face[[48, 54]].mean(axis=0) - points[36:48].mean(axis=0))))


def test_bad_landmarks_are_one_clear_error():
    with pytest.raises(DataError, match="68 finite"):
        ffhq_quad(np.zeros((5, 2)))
    with pytest.raises(DataError, match="degenerate"):
        ffhq_quad(np.zeros((68, 2)))


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.parametrize("face", range(len(FACES)))
def test_a_drawn_face_is_cut_with_its_eyes_where_ffhq_puts_them(tiny_model, face):
    centre, scale, angle = FACES[face]
    points = placed(centre, scale, angle)
    size = 64
    aligned, info = align_face_ffhq(drawn(points), size=size, model=tiny_model, detector=stub_detector(points))
    assert aligned.size == (size, size) and info.source == "ffhq" and info.faces == 1
    assert info.angle_deg == pytest.approx(angle, abs=2.5)  # from landmarks rounded to whole pixels
    # each landmark is off by at most 0.5 px (dlib's integer points): each derived point by 0.5, the crop's centre
    # and axes by about 1 px more — 1.5 photo px, at size / (4·scale) crop px per photo px
    tolerance = 1.5 * size / (4 * scale)
    matrix = np.array(info.matrix)
    truth = np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])
    np.testing.assert_allclose(truth @ matrix[:, :2].T + matrix[:, 2], FFHQ_EYES_OF_SIDE * size - 0.5, atol=tolerance)
    # and the picture was cut by that matrix: the dark eyes sit there in the crop (blur and resampling: 1 px more)
    dark = 255 - np.asarray(aligned.convert("L"), dtype=np.float64)
    for (x, y) in FFHQ_EYES_OF_SIDE * size - 0.5:
        window = np.ix_(range(int(y) - 4, int(y) + 6), range(int(x) - 5, int(x) + 7))
        weights = np.clip(dark[window] - 120, 0, None)  # the eye (≈225 dark) against skin (≈85)
        rows, cols = np.meshgrid(window[0].ravel(), window[1].ravel(), indexing="ij")
        found = (weights * cols).sum() / weights.sum(), (weights * rows).sum() / weights.sum()
        assert np.hypot(found[0] - x, found[1] - y) < tolerance + 1.0


def test_no_face_is_one_clear_error(tiny_model):
    with pytest.raises(DataError, match="no face found"):  # dlib's real HOG detector on a plain picture
        align_face_ffhq(Image.new("RGB", (120, 100), (40, 150, 60)), size=32, model=tiny_model)


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "fake.dat").write_bytes(b"not a shape predictor" * 10)
    with pytest.raises(DataError, match="cannot load the landmark model"):
        ffhq_align.shape_predictor(str(tmp_path / "fake.dat"))
    with pytest.raises(DataError, match="does not exist"):
        landmark_model(tmp_path / "missing.dat")


# ------------------------------------------------------------------------------------------------ the model file
def test_offline_the_missing_model_is_one_line_naming_it_and_where(monkeypatch, tmp_path):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    monkeypatch.setenv("GANINV_OFFLINE", "1")
    monkeypatch.setattr(offline.urllib.request, "urlopen", lambda *a, **k: pytest.fail("went online"))
    with pytest.raises(GaninvError) as caught:
        landmark_model()
    line = str(caught.value)
    assert "\n" not in line and "GANINV_OFFLINE=1" in line and ffhq_align.DLIB_MODEL_URL in line
    assert str(tmp_path / "dlib" / "shape_predictor_68_face_landmarks.dat") in line


def test_first_use_downloads_and_decompresses_into_the_cache_once(monkeypatch, tmp_path, tiny_model):
    served = bz2.compress(tiny_model.read_bytes())
    calls, said = [], []
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    monkeypatch.delenv("GANINV_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(offline.urllib.request, "urlopen", lambda url, timeout: calls.append(url) or
                        io.BytesIO(served))
    path = landmark_model(say=said.append)
    assert path == tmp_path / "dlib" / "shape_predictor_68_face_landmarks.dat"
    assert path.read_bytes() == tiny_model.read_bytes() and calls == [ffhq_align.DLIB_MODEL_URL]
    assert len(said) == 1 and "downloading" in said[0] and str(path) in said[0]
    assert landmark_model(say=said.append) == path and len(calls) == 1  # cached: no second download


def test_a_failed_or_oversized_download_leaves_nothing_and_says_where_to_place_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    monkeypatch.delenv("GANINV_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(ffhq_align, "MODEL_MAX_BYTES", 1000)
    monkeypatch.setattr(offline.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(bz2.compress(
        bytes(5000))))
    with pytest.raises(GaninvError, match="more than 1000 bytes.*place it there"):
        landmark_model(say=lambda m: None)
    assert list((tmp_path / "dlib").iterdir()) == []  # no partial file left behind


def test_auto_says_which_aligner_and_why(monkeypatch, tmp_path):
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    said = []
    assert choose_aligner("auto", trained_on="celeba:/data", say=said.append) == "haar"
    assert choose_aligner("auto", say=said.append) == "haar"  # the model is not in the cache
    (tmp_path / "dlib").mkdir()
    (tmp_path / "dlib" / "shape_predictor_68_face_landmarks.dat").write_bytes(b"x")
    assert choose_aligner("auto", say=said.append) == "ffhq"
    assert choose_aligner("haar", say=said.append) == "haar" and choose_aligner("ffhq", say=said.append) == "ffhq"
    assert len(said) == 3 and "celeba:/data" in said[0] and "not in" in said[1] and "FFHQ" in said[2]


# ------------------------------------------------------------------------------------------------ paste-back
def smooth_photo(height=200, width=240) -> np.ndarray:
    """Band-limited colour waves (periods ≥ 30 px, up to ~20 levels a pixel): resampling is nearly exact, a shift
    of half a pixel is not (≈ 10 levels)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [128 + 100 * np.sin(x / 5.0 + k) * np.cos(y / 6.5 - k) for k in range(3)]
    return np.clip(np.rint(np.stack(channels, axis=2)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [96, 160])  # the crop at 0.8× and 1.33× the photo's resolution
def test_pasting_the_aligned_crop_back_gives_the_photo_back(size):
    photo = smooth_photo()
    matrix = quad_transform(ffhq_quad(placed((120, 100), 30, 20)), size)
    crop = np.asarray(warp(Image.fromarray(photo), matrix, size))
    pasted = paste_back(photo, crop, matrix)
    inside = mask_in_photo(matrix, size, photo.shape, feather=size / 16)
    assert (inside == 1).sum() > 8000
    error = np.abs(pasted.astype(int) - photo.astype(int))
    assert np.percentile(error[inside == 1], 99) <= 2 and error[inside == 1].max() <= 4  # cubic twice, 2 roundings
    outside = inside == 0
    assert outside.sum() > 20000 and np.array_equal(pasted[outside], photo[outside])  # bit for bit
    shifted = paste_back(photo, crop, matrix + np.array([[0, 0, 0.5], [0, 0, 0]]))
    assert np.percentile(np.abs(shifted.astype(int) - photo.astype(int))[inside == 1], 99) > 6  # placement matters


def mask_in_photo(matrix, size, shape, feather) -> np.ndarray:
    """Where the crop's feather mask lands in the photo, independently: each photo pixel mapped into the crop,
    its mask there (linear from 0 at the outermost pixel centres, so bilinear sampling is exact), without cv2."""
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
    v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
    ramp = lambda t: np.clip(np.minimum(t, size - 1 - t) / feather, 0, 1)  # noqa: E731
    mask = ramp(u) * ramp(v)
    return np.where(mask >= 1 - 1e-9, 1, np.where(mask <= 0, 0, 0.5))


def test_the_feather_mask_is_one_inside_and_falls_to_the_edge():
    mask = feather_mask(32, 4)
    assert mask[4:28, 4:28].min() == 1 and mask[0].max() == 0 and mask[:, 31].max() == 0
    assert mask[1, 16] == pytest.approx(0.25) and mask[1, 1] == pytest.approx(1 / 16)


# ------------------------------------------------------------------------------------------------ the CLI
def test_invert_aligner_ffhq_paste_back(monkeypatch, capsys, tmp_path, rgb_aegan_run, tiny_model):
    points = placed((110, 95), 28, 18)
    drawn(points).save(tmp_path / "face.png")
    monkeypatch.setattr(ffhq_align, "hog_detector", lambda: stub_detector(points))
    out = tmp_path / "inv"
    code, stdout, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "face.png", "--aligner",
                                "ffhq", "--landmarks", tiny_model, "--paste-back", "--out", out)
    assert code == 0, err
    assert "face(s) cut as FFHQ's crop at 16×16" in err and f"wrote {out}" in stdout + err
    item = json.loads((out / "manifest.json").read_text())["items"][0]
    assert item["alignment"]["source"] == "ffhq" and item["pasted"] == "pasted/00000-face.png"
    pasted, photo = (np.asarray(Image.open(p).convert("RGB")) for p in (out / item["pasted"], tmp_path / "face.png"))
    assert pasted.shape == photo.shape
    matrix = np.array(item["alignment"]["matrix"])
    outside = mask_in_photo(matrix, 16, photo.shape, feather=1) == 0
    assert np.array_equal(pasted[outside], photo[outside]) and not np.array_equal(pasted, photo)


def test_paste_back_with_haar_and_without_align(monkeypatch, capsys, tmp_path, rgb_aegan_run):
    drawn_face(10)[0].save(tmp_path / "photo.png")
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "photo.png", "--paste-back",
                           "--out", tmp_path / "o")
    assert_clean_error(code, err, "--paste-back needs --align")
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "photo.png", "--aligner", "haar",
                           "--paste-back", "--out", tmp_path / "h")
    assert code == 0, err
    assert Image.open(tmp_path / "h" / "pasted" / "00000-photo.png").size == (600, 600)
