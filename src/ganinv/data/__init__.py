"""Datasets (bundled MNIST/digits, image folders, CelebA) and image degradations.

See :mod:`ganinv.data.datasets` for the dataset specs and split rules, and for how unreadable image files are
reported (:func:`read_image_files`, :class:`TolerantImages`, :class:`Skipped`), :mod:`ganinv.data.images` for
:func:`load_images` (files → one batch, strictly: the public API's reader), and :mod:`ganinv.data.degrade` for the
degradations.
"""

from ganinv.data import degrade
from ganinv.data.datasets import (
    ImageDataset,
    ImageFiles,
    Skipped,
    TolerantImages,
    display_path,
    expand_image_paths,
    load_image,
    no_usable_images,
    open_dataset,
    read_image,
    read_image_files,
)
from ganinv.data.images import load_images

__all__ = ["open_dataset", "load_image", "load_images", "read_image", "expand_image_paths", "read_image_files",
           "ImageFiles", "Skipped", "TolerantImages", "display_path", "no_usable_images", "ImageDataset", "degrade"]
