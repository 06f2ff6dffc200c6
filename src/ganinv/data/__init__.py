"""Datasets (bundled MNIST/digits, image folders, CelebA) and image degradations.

See :mod:`ganinv.data.datasets` for the dataset specs and split rules, :mod:`ganinv.data.images` (the one place that
opens image files) for which files are refused and how unreadable ones are reported (:func:`read_image_files`,
:class:`Skipped`; :class:`TolerantImages` for a dataset) and for :func:`load_images` (files → one batch, strictly: the
public API's reader), and :mod:`ganinv.data.degrade` for the degradations.
"""

from ganinv.data import degrade
from ganinv.data.datasets import ImageDataset, TolerantImages, open_dataset
from ganinv.data.images import (
    ImageFiles,
    Skipped,
    display_path,
    expand_image_paths,
    load_image,
    load_images,
    no_usable_images,
    read_image,
    read_image_files,
)

__all__ = ["open_dataset", "load_image", "load_images", "read_image", "expand_image_paths", "read_image_files",
           "ImageFiles", "Skipped", "TolerantImages", "display_path", "no_usable_images", "ImageDataset", "degrade"]
