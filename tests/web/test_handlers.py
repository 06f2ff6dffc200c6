"""The logic behind the web page (ganinv.web.handlers), without a browser and without gradio: uploads, messages,
display helpers, and every tab's handlers over the tiny grey AEGAN run and a small digits index."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from webtools import INDEX_SIZE, SHAPE_GREY, SHAPE_RGB, rgb_array, save, small_index

from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import (
    AttributeDirections,
    EditHandlers,
    RandomHandlers,
    ReconstructHandlers,
    SearchHandlers,
    SuperresHandlers,
    UploadError,
    error_markdown,
    guarded,
    is_loopback,
    open_index,
    read_upload,
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
    galleries = out[1:-2]
    assert len(out) == handlers.n_outputs and len(galleries) == len(index.methods) == 4
    assert all(len(g) == 4 for g in galleries)
    assert galleries[0][0][1].startswith("#1 digits[train]#5") and "(same)" in galleries[0][0][1]
    assert len(handlers.from_upload(str(good), 3)[1]) == 3
    assert "not an image" in handlers.from_upload(str(text), 4)[-1]
    assert f"0 … {INDEX_SIZE - 1}, not {INDEX_SIZE}" in handlers.from_entry(INDEX_SIZE, 4)[-1]


def test_superres_handlers(model, files):
    good, _ = files
    handlers = SuperresHandlers(model)
    sr = handlers.sr_from_upload(str(good), "downsample", 4, 1.0)
    assert all(img is not None for img in sr[1:5]) and "bicubic" in sr[5] and "inverted" in sr[5]
    blur = handlers.sr_from_sample("blur", 4, 1.5)
    assert blur[3] is None and "bicubic applies to downsampling only" in blur[-1]
    assert handlers.sr_again(sr[0], "blur", 4, 0.5)[2] is not None


def test_edit_handlers(model, index, files):
    good, _ = files
    handlers = EditHandlers(model, AttributeDirections(model, index))
    row, notes = handlers.do_interpolate(str(good), str(good), 5)
    assert row.shape[0] >= 96 and "A:" in notes
    assert "upload both" in handlers.do_interpolate(str(good), None, 5)[-1]
    edited, notes = handlers.do_attribute(None, "digit=3", 2.0, 5)
    assert edited is not None and f"direction from {INDEX_SIZE} indexed latents" in notes
    assert "--index" in EditHandlers(model).do_attribute(None, "digit=3", 2.0, 5)[-1]
    assert "latent scale" in handlers.do_traverse(None, 3, 4)[-1]  # an AEGAN run has none


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
