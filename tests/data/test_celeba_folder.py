"""``celeba:PATH`` names CelebA's top folder or its img_align_celeba folder: the same images, labels and splits."""
import pytest
import torch

from ganinv.core.errors import DataError
from ganinv.data import open_dataset
from helpers import make_celeba


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_the_image_folder_itself_reads_as_its_parent(tmp_path, split):
    make_celeba(tmp_path / "celeba")
    top = open_dataset(f"celeba:{tmp_path / 'celeba'}", image_size=8, split=split)
    inner = open_dataset(f"celeba:{tmp_path / 'celeba' / 'img_align_celeba'}", image_size=8, split=split)
    assert inner.paths == top.paths and inner.label_names == top.label_names
    assert torch.equal(inner.tensors()[1], top.tensors()[1])  # the attributes of the parent's list file


def test_a_folder_with_neither_layout_says_what_to_give(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match="img_align_celeba"):
        open_dataset(f"celeba:{tmp_path / 'photos'}")
