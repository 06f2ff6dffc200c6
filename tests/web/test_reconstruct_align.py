"""The Reconstruct tab's "align face" box and its out-of-domain hint (ganinv.web.handlers): a face photo is aligned
before it is inverted, a picture of no face gets a message, and an image unlike what the run generates (a colour
photo on a grey digit run) gets a one-line hint."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from webtools import SHAPE_GREY

from faces import drawn_face
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import DomainCheck, ReconstructHandlers, UploadError, image_statistics, read_upload
from helpers import make_generator_run, tiny_train


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    make_generator_run(root / "g", channels=3)
    tiny_train("aegan", root / "e", steps=3, generator=root / "g")
    return InversionModel.load(root / "e")


@pytest.fixture
def uploads(tmp_path):
    """A face photo (the drawn face, turned, in a larger canvas) and a picture of no face."""
    drawn_face(-10, canvas=500)[0].save(tmp_path / "face.jpg")
    Image.new("RGB", (300, 200), (40, 150, 60)).save(tmp_path / "lawn.png")
    return tmp_path / "face.jpg", tmp_path / "lawn.png"


class DigitRun:
    """Stands in for a run trained on grey digits: its samples are scikit-learn's real 8×8 digits at 16 px."""

    def __init__(self):
        from sklearn.datasets import load_digits

        digits = torch.tensor(load_digits().images / 16.0, dtype=torch.float32)[:, None]
        self.images = F.interpolate(digits, size=16, mode="bilinear", align_corners=False).clamp(0, 1)

    def sample(self, n, generator=None):
        return torch.randperm(1000, generator=generator)[:n]

    def generate(self, z):
        return self.images[z]


def test_an_aligned_upload_says_how_it_was_aligned(uploads):
    face, lawn = uploads
    x, notes = read_upload(face, (3, 32, 32), align=True)
    assert x.shape == (1, 3, 32, 32) and notes[0].startswith("face aligned as in aligned CelebA (face and eyes found")
    with pytest.raises(UploadError, match="lawn.png: no face found") as caught:
        read_upload(lawn, (3, 32, 32), align=True)
    assert str(lawn.parent) not in str(caught.value) and "\n" not in str(caught.value)


def test_the_reconstruct_tab_aligns_when_asked(rgb_model, uploads):
    face, lawn = uploads
    handlers = ReconstructHandlers(rgb_model)
    _, original, recon, metrics, _, status = handlers.rec_from_upload(str(face), "encoder", 0, True)
    assert original.shape == recon.shape == (192, 192, 3) and "PSNR" in metrics and "face aligned" in status
    plain = handlers.rec_from_upload(str(face), "encoder", 0)[-1]
    assert "face aligned" not in plain and "centre-cropped" in plain
    *rest, status = handlers.rec_from_upload(str(lawn), "encoder", 0, True)
    assert all(r is None for r in rest) and "no face found" in status


def test_a_colour_photo_on_a_grey_digit_run_gets_the_hint(uploads):
    check = DomainCheck(DigitRun())
    photo, _ = read_upload(uploads[0], SHAPE_GREY)  # converted to grey, as the page does for a grey run
    hint = check.hint(photo)
    assert hint is not None and hint.startswith("out of domain: this image's") and "\n" not in hint
    held_out = DigitRun().images[1500:1600]  # digits the reference did not see
    assert sum(check.hint(digit[None]) is not None for digit in held_out) == 0


def test_the_hint_leads_the_status_and_spares_the_runs_own_samples(rgb_model, tmp_path):
    handlers = ReconstructHandlers(rgb_model)
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tmp_path / "white.png")
    status = handlers.rec_from_upload(str(tmp_path / "white.png"), "encoder", 0)[-1]
    assert status.startswith("⚠️ out of domain")
    assert "out of domain" not in handlers.rec_from_sample(3, "encoder", 0)[-1]  # the run's own image: not checked
    names, stats = image_statistics(torch.rand(4, 3, 16, 16))
    assert names == ["brightness", "contrast", "fine detail", "colourfulness"] and stats.shape == (4, 4)


def test_the_page_has_the_align_box_wired_to_the_upload(rgb_model):
    pytest.importorskip("gradio")
    from ganinv.web import build_app

    blocks = build_app(rgb_model)
    boxes = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "reconstruct-align"]
    assert len(boxes) == 1 and type(boxes[0]).__name__ == "Checkbox"
    event = next(fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "rec_from_upload")
    assert event.inputs[-1] is boxes[0]
