"""The one reader of user image files (ganinv.data.images): read_image_files and load_image on the bad-file corpus of
tests/badfiles.py (each bad file named once with its reason, every good one read, bombs refused from the header);
every grey mode, "I;16N" included, giving the same tensor through a folder dataset, face alignment and a web upload;
and datasets, align and the web handlers all reading through it."""
from __future__ import annotations

import ast
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import ganinv
from badfiles import (
    NAMED_ONLY,
    NEWLINE,
    NON_UTF8,
    REASONS,
    assert_reported,
    assert_skipped_records,
    folder_names,
    split_corpus,
)
from faces import drawn_face
from ganinv.core.errors import DataError
from ganinv.data import display_path, images, load_image, open_dataset, read_image_files
from ganinv.data.align import align_file, read_aligned_files
from ganinv.data.images import MAX_IMAGE_PIXELS, read_header
from ganinv.web.handlers import read_upload


# ------------------------------------------------------------------------------------------------ the library
def test_read_image_files_names_each_bad_file_and_reads_every_good_one(bad_corpus):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, corpus)
    notes = []
    read = read_image_files([root / n for n in corpus], 16, 3, warn=notes.append)
    assert [os.fsdecode(f) for f in read.files] == [os.fsdecode(root / n) for n in good]
    assert read.batch().shape == (len(good), 3, 16, 16)
    assert_skipped_records([s.to_json() for s in read.skipped], root, bad)
    assert len(notes) == len(bad) and all("\n" not in note for note in notes)
    assert_reported("\n".join(notes), root, corpus, bad, good)


def test_a_folder_is_read_like_a_folder_dataset(bad_corpus):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, folder_names(root, corpus))
    read = read_image_files([root], 16, 1)
    assert sorted(os.fsdecode(f) for f in read.files) == sorted(os.fsdecode(root / n) for n in good)
    assert_skipped_records([s.to_json() for s in read.skipped], root, bad)
    assert not set(bad) & set(NAMED_ONLY)  # a folder scan does not see an absent path or a folder


def test_load_image_raises_one_line_data_errors(bad_corpus):
    root, corpus = bad_corpus
    for name, expected in corpus.items():
        if expected == "bad" and name not in NAMED_ONLY:
            with pytest.raises(DataError, match=REASONS[name]) as info:
                load_image(root / name, 16, 3)
            assert "\n" not in str(info.value)
        elif expected == "ok":
            assert load_image(root / name, 16, 3).shape == (3, 16, 16)


def test_a_decompression_bomb_is_refused_from_its_header(bad_corpus):
    root, _ = bad_corpus
    started = time.perf_counter()
    with pytest.raises(DataError, match=f"above {MAX_IMAGE_PIXELS // 10**6} megapixels"):
        load_image(root / "bomb.png", 16, 1)
    assert time.perf_counter() - started < 1.0  # nothing was decoded


def test_display_path_keeps_one_printable_line():
    assert display_path("/a/b c/ü.png") == "/a/b c/ü.png"
    assert display_path("/a/" + NEWLINE) == "/a/new\\nline.png"
    assert display_path(os.fsencode("/a/" + NON_UTF8)) == "/a/bytes-\\xff\\xfe.png"


def test_nothing_usable_is_an_error(bad_corpus):
    root, _ = bad_corpus
    with pytest.raises(DataError, match="does not exist"):
        read_image_files([root / "missing.png"], 16, 1)
    with pytest.raises(DataError, match="none of the inputs is a usable image .3 skipped"):
        read_image_files([root / "missing.png", root / "empty.png", root / "loop.png"], 16, 1)


# ---------------------------------------------------------------------------------------------- grey modes, every path
class NativeGrey16(ImageFile.ImageFile):
    """Pillow opens no file format as "I;16N" (native-endian 16-bit grey; libtiff decodes into it, other code makes
    it in memory), so this test-only format does: b"I16N", width and height (uint32), then the pixels."""

    format = "I16N"
    format_description = "native-endian 16-bit grey (tests only)"

    def _open(self):
        _, width, height = struct.unpack("<4sII", self.fp.read(12))
        self._mode, self._size = "I;16N", (width, height)
        self.tile = [ImageFile._Tile("raw", (0, 0, width, height), 12, ("I;16N", 0, 1))]


@pytest.fixture
def native_grey16(monkeypatch):
    """Pillow reads NativeGrey16 files for the test's duration."""
    monkeypatch.setitem(Image.OPEN, NativeGrey16.format, (NativeGrey16, lambda prefix: prefix[:4] == b"I16N"))
    monkeypatch.setattr(Image, "ID", [NativeGrey16.format, *Image.ID])


def save_grey(path: Path, grey: np.ndarray, mode: str) -> Path:
    """The 8-bit picture ``grey`` stored in ``mode`` at that mode's full scale (16-bit: ×257; "F": ÷255), as a file
    named .png whatever its format (a folder scan lists it; the reader goes by the contents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wide = grey.astype(np.uint16) * 257
    if mode == "I;16N":
        path.write_bytes(struct.pack("<4sII", b"I16N", grey.shape[1], grey.shape[0]) + wide.astype("=u2").tobytes())
    elif mode in ("L", "I;16"):
        Image.fromarray(grey if mode == "L" else wide).save(path, format="PNG")
    else:
        pixels = {"I;16B": wide.astype(">u2"), "I": wide.astype(np.int32), "F": grey.astype(np.float32) / 255}[mode]
        Image.fromarray(pixels).save(path, format="TIFF")
    assert read_header(path).mode == mode  # the file really is stored in this mode
    return path


def every_path(path: Path, channels: int) -> dict:
    """The tensor a grey file gives through each reader, and the web page's notes."""
    upload, notes = read_upload(path, (channels, 16, 16))
    aligned, _ = align_file(path, 32, channels)
    return {"folder": open_dataset(f"folder:{path.parent}", 16, channels, split="all")[0][0],
            "upload": upload[0], "aligned": aligned, "notes": notes}


@pytest.fixture(scope="module")
def grey_face():
    return np.asarray(drawn_face(-10, canvas=300)[0].convert("L"))


@pytest.fixture(scope="module")
def from_8_bit(grey_face, tmp_path_factory):
    """every_path of the face stored as plain 8-bit grey ("L"), for 1 and 3 channels."""
    path = save_grey(tmp_path_factory.mktemp("L") / "face.png", grey_face, "L")
    return {channels: every_path(path, channels) for channels in (1, 3)}


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16N", "I", "F"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_grey_mode_gives_the_8_bit_tensor_through_every_path(tmp_path, native_grey16, grey_face, from_8_bit,
                                                                   mode, channels):
    reference = from_8_bit[channels]
    got = every_path(save_grey(tmp_path / "deep" / "face.png", grey_face, mode), channels)
    for where in ("folder", "upload", "aligned"):
        assert torch.equal(got[where], reference[where]), where
    assert torch.equal(got["folder"], got["upload"])  # the page reads an upload as a folder dataset reads a file
    assert reference["aligned"].std() > 0.05  # a face was found and cut, not a blank
    # the web page's notes: grey for every grey mode (its own copy of the grey modes lacked "I;16N")
    assert got["notes"] == reference["notes"]
    assert any("grey image" in n for n in got["notes"]) == (channels == 3)
    assert not any("colour image" in n for n in got["notes"])


# ------------------------------------------------------------------------------------------------ one reader
def test_datasets_align_and_the_web_page_read_through_the_shared_reader(tmp_path, grey_face, monkeypatch):
    opened = []
    bounded = images.open_bounded

    def spy(path, **bounds):
        opened.append(os.path.basename(os.fsdecode(path)))
        return bounded(path, **bounds)

    monkeypatch.setattr(images, "open_bounded", spy)
    face = save_grey(tmp_path / "f" / "face.png", grey_face, "L")
    opened.clear()  # save_grey's own check
    open_dataset(f"folder:{face.parent}", 16, 3, split="all")[0]
    assert opened == ["face.png"]
    read_aligned_files([face], 32, 1)
    assert opened == ["face.png"] * 2
    read_upload(face, (3, 16, 16))
    read_upload(face, (1, 32, 32), align=True)
    assert opened == ["face.png"] * 6  # each upload: its header, then its pixels


def test_only_the_shared_reader_opens_image_files_and_no_module_imports_private_helpers():
    package = Path(ganinv.__file__).parent
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        if source != package / "data" / "images.py":
            assert "Image.open(" not in text, source
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganinv"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, (source, node.module, private)
