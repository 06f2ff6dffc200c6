"""CelebA's list_eval_partition.txt decides the splits as its authors meant: test = partition 2 only, valid =
partition 1, train = 0 (and unlisted images); without the file, test is the last 10 % and valid does not exist."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganinv.core.errors import DataError
from ganinv.data import open_dataset
from ganinv.data.datasets import SPLITS

PARTITION = [0, 0, 0, 1, 0, 2, 0, 1, 0, 2]  # 000001..000010; 000011 is unlisted (train)


def make_celeba(root, n=11, partition=PARTITION):
    """A tiny CelebA layout: img_align_celeba/*.jpg, list_attr_celeba.txt (2 attributes), optionally the
    partition file."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(images / name)
    rows = [f"{name} {1 if i % 2 else -1} -1" for i, name in enumerate(names)]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(n), "Smiling Male", *rows]) + "\n")
    if partition is not None:
        (root / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, p in zip(names, partition)))
    return root


def names(dataset):
    return [p[-10:] for p in dataset.paths]


def test_partition_file_test_is_partition_2_and_valid_is_1(tmp_path):
    spec = f"celeba:{make_celeba(tmp_path / 'celeba')}"
    assert "valid" in SPLITS
    assert names(open_dataset(spec, 8, split="test")) == ["000006.jpg", "000010.jpg"]
    assert names(open_dataset(spec, 8, split="valid")) == ["000004.jpg", "000008.jpg"]
    train = open_dataset(spec, 8, split="train")
    assert names(train) == ["000001.jpg", "000002.jpg", "000003.jpg", "000005.jpg", "000007.jpg", "000009.jpg",
                            "000011.jpg"]
    assert train.label_names == ["Smiling", "Male"] and len(open_dataset(spec, 8, split="all")) == 11
    valid = open_dataset(spec, 8, split="valid")
    assert valid.tensors()[0].shape == (2, 3, 8, 8) and valid.split == "valid"


def test_without_partition_file_test_is_the_last_tenth_and_valid_is_refused(tmp_path):
    spec = f"celeba:{make_celeba(tmp_path / 'celeba', partition=None)}"
    assert names(open_dataset(spec, 8, split="test")) == ["000011.jpg"]
    assert len(open_dataset(spec, 8, split="train")) == 10
    with pytest.raises(DataError, match="list_eval_partition.txt"):
        open_dataset(spec, 8, split="valid")


def test_valid_split_of_sets_without_one_is_a_clear_error():
    with pytest.raises(DataError, match="no 'valid' split"):
        open_dataset("digits", 8, split="valid")
    with pytest.raises(DataError, match="unknown split 'val'.*valid"):
        open_dataset("digits", 8, split="val")
