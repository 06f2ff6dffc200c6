"""The one tolerant reader of user image files (read_image_files, load_image) on the bad-file corpus of
tests/badfiles.py: each bad file named once with its reason, every good one read, bombs refused from the header."""
from __future__ import annotations

import os
import time

import pytest

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
from ganinv.core.errors import DataError
from ganinv.data import display_path, load_image, read_image_files
from ganinv.data.datasets import MAX_IMAGE_PIXELS


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
