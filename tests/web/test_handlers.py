"""The logic behind the web page (ganinv.web.handlers), without a browser and without gradio: uploads, messages,
display helpers, and every tab's handlers over the tiny grey AEGAN run and a small digits index."""
from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from webtools import INDEX_SIZE, SHAPE_GREY, SHAPE_RGB, rgb_array, save, small_index

from ganinv.apps.edit import edit_attribute
from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import (
    MAX_SEED,
    MAX_UPLOAD_PIXELS,
    AttributeDirections,
    EditHandlers,
    RandomHandlers,
    ReconstructHandlers,
    SearchHandlers,
    SuperresHandlers,
    UploadError,
    check_seed,
    degradation_controls,
    error_markdown,
    guarded,
    is_loopback,
    label_text,
    max_factor,
    open_index,
    read_upload,
    results_markdown,
    to_display,
)


@pytest.fixture(scope="module")
def model(aegan_run):
    return InversionModel.load(aegan_run)


@pytest.fixture(scope="module")
def index(aegan_run, tmp_path_factory):
    return small_index(aegan_run, tmp_path_factory.mktemp("index"))


@pytest.fixture
def files(tmp_path):
    """A usable image (colour, 30×40: the grey run converts and resizes it) and a text file posing as one."""
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    return save(tmp_path / "good.png", rgb_array()), text


def test_handlers_import_without_gradio():
    code = "import sys, ganinv.web, ganinv.web.handlers; print(sorted(m for m in sys.modules if 'gradio' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------------ uploads
def test_valid_upload_is_fit_to_the_run_with_notes(tmp_path):
    x, notes = read_upload(save(tmp_path / "a.png", rgb_array()), SHAPE_RGB)
    assert x.shape == (1, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
    assert notes == ["30×40 → centre-cropped and resized to 16×16"]
    x, notes = read_upload(save(tmp_path / "b.png", rgb_array(h=16, w=16)), SHAPE_GREY)
    assert x.shape == (1, 1, 16, 16) and notes == ["colour image → converted to grey for this run"]


def test_grey_and_rgba_uploads_are_converted_with_a_note(tmp_path):
    grey = save(tmp_path / "g.png", np.full((16, 16), 128, np.uint8))
    x, notes = read_upload(grey, SHAPE_RGB)
    assert x.shape == (1, 3, 16, 16) and torch.allclose(x[0, 0], x[0, 2])
    assert any("grey" in n for n in notes)
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black → white
    x, notes = read_upload(save(tmp_path / "t.png", rgba, "RGBA"), SHAPE_RGB)
    assert torch.allclose(x, torch.ones_like(x)) and any("transparency" in n for n in notes)


@pytest.mark.parametrize("content, needle", [
    (b"hello, I am not a picture", "is not an image"),
    (b"", "is empty"),
    ("truncated", "cannot"),  # the first bytes of a real PNG
])
def test_bad_uploads_raise_one_clear_line(tmp_path, content, needle):
    path = tmp_path / "upload.png"
    if content == "truncated":
        full = save(tmp_path / "full.png", rgb_array(h=64, w=64)).read_bytes()
        content = full[:len(full) // 2]
    path.write_bytes(content)
    with pytest.raises(UploadError, match=needle) as info:
        read_upload(path, SHAPE_RGB)
    assert str(tmp_path) not in str(info.value) and "\n" not in str(info.value)


def test_huge_uploads_are_refused_before_decoding(tmp_path):
    path = save(tmp_path / "big.png", rgb_array(h=64, w=64))
    with pytest.raises(UploadError, match="MB"):
        read_upload(path, SHAPE_RGB, max_bytes=100)
    with pytest.raises(UploadError, match="megapixels"):
        read_upload(path, SHAPE_RGB, max_pixels=64 * 63)
    with pytest.raises(UploadError, match="upload an image first"):
        read_upload(None, SHAPE_RGB)
    with pytest.raises(UploadError, match="missing"):
        read_upload(tmp_path / "gone.png", SHAPE_RGB)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width×height RGB pixels, with one tiny data chunk: a decompression bomb's shape,
    made without allocating its pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [8000, 100_000])  # over our 50 megapixels; over Pillow's own bomb limit too
def test_decompression_bombs_are_refused_from_the_header_in_one_line(tmp_path, side):
    from PIL import Image

    assert side * side > MAX_UPLOAD_PIXELS and (side == 8000) == (side * side < Image.MAX_IMAGE_PIXELS)
    with pytest.raises(UploadError, match="megapixels") as info:
        read_upload(png_header_only(tmp_path / "bomb.png", side, side), SHAPE_RGB)
    assert "\n" not in str(info.value) and str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("seed", [1e300, -1, 1.5, float("nan"), float("inf"), "abc", MAX_SEED + 1])
def test_seeds_out_of_range_get_one_line_with_the_range(model, seed):
    expected = f"the seed must be a whole number from 0 to {MAX_SEED}"
    assert expected in ReconstructHandlers(model).rec_from_sample(seed, "encoder", 0)[-1]
    assert expected in RandomHandlers(model).do_random(seed, 2)[-1]
    assert check_seed(MAX_SEED) == MAX_SEED and check_seed(None) == 0 and check_seed(7.0) == 7


def test_guarded_handlers_turn_any_exception_into_a_message():
    logged = []

    @guarded(3, log=logged.append)
    def broken(kind):
        raise GaninvError("bad thing") if kind == "ours" else ZeroDivisionError("boom")

    assert broken("ours") == (None, None, error_markdown("bad thing"))
    out = broken("other")
    assert out[:2] == (None, None) and "ZeroDivisionError: boom" in out[2] and "Traceback" not in out[2]
    assert "Traceback" in logged[0]


def test_display_and_loopback_helpers():
    assert to_display(torch.rand(1, 1, 16, 16)).shape == (192, 192, 3)
    assert to_display(torch.rand(3, 18, 180), min_side=96).shape == (108, 1080, 3)
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "example.org"]))


# ------------------------------------------------------------------------------------------------ the tabs
def test_reconstruct_handlers(model, files):
    good, text = files
    handlers = ReconstructHandlers(model)
    state, original, recon, metrics, cleared, status = handlers.rec_from_upload(str(good), "encoder", 0)
    assert recon.shape == original.shape == (192, 192, 3) and "PSNR" in metrics and "SSIM" in metrics
    assert "dHash" in metrics and " ms " in metrics and "converted to grey" in status and cleared is None
    *rest, status = handlers.rec_from_upload(str(text), "encoder", 0)
    assert all(r is None for r in rest) and "not an image" in status
    _, _, _, metrics, _, _ = handlers.rec_again(state, "hybrid", 5)
    assert "hybrid" in metrics
    assert "generated sample" in handlers.rec_from_sample(3, "encoder", 0)[-1]
    assert "upload an image" in handlers.rec_again(None, "encoder", 0)[-1]
    assert "unknown method" in handlers.rec_again(state, "magic", 0)[-1]


def test_search_handlers_find_an_indexed_image_first(model, index, files):
    good, text = files
    handlers = SearchHandlers(model, index)
    assert handlers.from_entry.__name__ == "from_entry"  # its endpoint's name in the page's API
    out = handlers.from_entry(5, 4)
    n = len(index.methods)
    galleries, tables = out[1:1 + n], out[1 + n:1 + 2 * n]
    assert len(out) == handlers.n_outputs and n == 4
    assert all(len(g) == 4 for g in galleries)
    assert galleries[0][0][1].startswith("#1 · d=") and all(len(caption) <= 16 for _, caption in galleries[0])
    first = tables[0].splitlines()[2]  # header, rule, then rank 1: nothing of it cut
    assert first.startswith("| 1 | `digits[train]#5` | ") and "digit=" in first and first.endswith("(same) |")
    assert "shared with the query" in tables[0] and len(tables[0].splitlines()) == 2 + 4
    upload = handlers.from_upload(str(good), 3)
    assert len(upload[1]) == 3 and "| labels |" in upload[1 + n]  # an upload has no labels: the results' own
    assert "not an image" in handlers.from_upload(str(text), 4)[-1]
    assert f"0 … {INDEX_SIZE - 1}, not {INDEX_SIZE}" in handlers.from_entry(INDEX_SIZE, 4)[-1]


def test_search_labels_are_shown_in_full():
    names = [f"Attribute_{i}" for i in range(40)]
    query, result = np.zeros(40), np.zeros(40)
    query[:12] = result[:12] = 1  # twelve shared: none may be cut
    result[30] = 1
    text = label_text(result, names, query)
    assert text.startswith("39/40 agree; shared: ") and all(f"Attribute_{i}," in text for i in range(11))
    assert text.endswith("Attribute_11") and label_text(result, names).count("Attribute_") == 13
    table = results_markdown([(1, "/data/img|1.png", 0.5, text)], query_has_labels=True)
    assert "img\\|1.png" in table and text in table and "0.5" in table
    assert "labels" not in results_markdown([(1, "a.png", 0.5, "")], query_has_labels=False)


def test_superres_handlers(model, files):
    good, _ = files
    handlers = SuperresHandlers(model)
    sr = handlers.sr_from_upload(str(good), "downsample", 4, 1.0)
    assert all(img is not None for img in sr[1:5]) and "bicubic" in sr[5] and "inverted" in sr[5]
    assert "downsampled ×4: 16×16 → 4×4 pixels" in sr[-1]
    blur = handlers.sr_from_sample("blur", 4, 1.5)
    assert blur[3] is None and "bicubic applies to downsampling only" in blur[-1] and "σ = 1.5" in blur[-1]
    assert handlers.sr_again(sr[0], "blur", 4, 0.5)[2] is not None
    assert handlers.sr_again(sr[0], "downsample", 8, None)[1] is not None  # 16 px: ×8 leaves 2×2, the limit


@pytest.mark.parametrize("factor", [9, 16, 32, 1, 2.5, None])
def test_superres_factor_is_bounded_by_the_image_size(model, factor):
    *rest, status = SuperresHandlers(model).sr_from_sample("downsample", factor, 1.0)
    assert all(r is None for r in rest)
    assert "whole number from 2 to 8 for this run's 16×16 images (at least 2×2 pixels must be left)" in status


def test_superres_controls_show_only_the_chosen_degradations_slider(model):
    assert max_factor(16) == 8 and max_factor(64) == 32 and max_factor(3) == 2
    assert degradation_controls("downsample") == (True, False) and degradation_controls("blur") == (False, True)
    assert "unknown degradation 'noise'" in SuperresHandlers(model).sr_from_sample("noise", 2, 1.0)[-1]
    assert "blur σ must be a positive" in SuperresHandlers(model).sr_from_sample("blur", 2, 0)[-1]


def test_edit_handlers(model, index, files):
    good, _ = files
    handlers = EditHandlers(model, AttributeDirections(model, index))
    row, notes = handlers.do_interpolate(str(good), str(good), 5)
    assert row.shape[0] >= 64 and "A:" in notes
    assert "upload both" in handlers.do_interpolate(str(good), None, 5)[-1]
    edited, notes = handlers.do_attribute(None, "digit=3", 2.0, 5)
    assert edited is not None and f"direction from {INDEX_SIZE} labelled latents" in notes
    assert "--index" in EditHandlers(model).do_attribute(None, "digit=3", 2.0, 5)[-1]
    assert "latent scale" in handlers.do_traverse(None, 3, 4)[-1]  # an AEGAN run has none


def test_attribute_strength_sign_mirrors_the_edit(model, index, monkeypatch):
    """−s moves A the other way from +s: the latent offsets are exact opposites, both rows start at A itself, and
    the pictures differ (before, the sign was dropped and both gave the same row)."""
    import ganinv.web.handlers as handlers_module

    calls = []

    def recording(model_, z, direction, spread, strengths):
        calls.append(np.asarray(strengths, dtype=np.float64))
        return edit_attribute(model_, z, direction, spread, strengths)

    monkeypatch.setattr(handlers_module, "edit_attribute", recording)
    handlers = EditHandlers(model, AttributeDirections(model, index))
    plus, _ = handlers.do_attribute(None, "digit=3", 2.5, 5)
    minus, _ = handlers.do_attribute(None, "digit=3", -2.5, 5)
    assert np.allclose(calls[0], np.linspace(0, 2.5, 5)) and np.allclose(calls[1], -calls[0])
    direction, spread = handlers.directions.get("digit=3")
    z = handlers.latent_of(None)[0]
    both = edit_attribute(model, z, direction, spread, np.array([2.5, -2.5]))
    assert not torch.allclose(both[0], both[1])  # the two ends of the mirrored rows are different images
    assert plus.shape == minus.shape and not np.array_equal(plus, minus)


def test_result_grids_are_labelled(model, index, files, monkeypatch):
    """Every result of several images is a labelled grid (rows and columns named), never a bare strip."""
    import ganinv.web.handlers as handlers_module
    from ganinv.core.viz import labelled_grid

    seen = []

    def recording(rows, row_labels, **kwargs):
        seen.append((row_labels, kwargs.get("column_labels"), kwargs.get("title")))
        return labelled_grid(rows, row_labels, **kwargs)

    monkeypatch.setattr(handlers_module, "labelled_grid", recording)
    RandomHandlers(model).do_random(4, 3)
    EditHandlers(model).do_interpolate(str(files[0]), str(files[0]), 3)
    EditHandlers(model, AttributeDirections(model, index)).do_attribute(None, "digit=3", -2.0, 3)
    assert seen[0] == (["G(z)", "G(invert(G(z)))"], ["#1", "#2", "#3"], "samples of seed 4")
    assert seen[1][:2] == (["A -> B"], ["t=0.00", "t=0.50", "t=1.00"])
    assert seen[2] == (["A, digit=3"], ["+0.00", "-1.00", "-2.00"],
                       "A moved away from digit=3: 0 ... -2 std along its direction")
    assert all(text.isascii() for labels, columns, title in seen for text in [*labels, *columns, title])


def test_traversal_handler_on_a_run_with_a_latent_scale(model, monkeypatch):
    scale = torch.linspace(1.0, 0.1, model.prior.dim)  # as a dlsgan run has
    monkeypatch.setattr(type(model.method), "latent_scale", property(lambda self: scale))
    grid, notes = EditHandlers(model).do_traverse(None, 3, 4)
    assert grid is not None and "elements 0 (s=1.000), 1" in notes


def test_random_handler_shows_the_round_trip(model):
    grid, metrics, status = RandomHandlers(model).do_random(0, 3)
    assert grid.shape[0] > grid.shape[1] / 6 and "PSNR" in metrics and "latent MSE" in metrics and status is None


def test_an_index_of_another_shape_is_refused(model, index):
    assert open_index(model, None) is None and open_index(model, index) is index
    rgb_index = SimpleNamespace(search_images=index.search_images, image_shape=(3, 16, 16))
    with pytest.raises(GaninvError, match="3×16×16 images but the run makes 1×16×16"):
        open_index(model, rgb_index)
