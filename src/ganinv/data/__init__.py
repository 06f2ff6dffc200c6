"""Datasets (bundled MNIST/digits, image folders, CelebA) and image degradations.

See :mod:`ganinv.data.datasets` for the dataset specs and split rules and
:mod:`ganinv.data.degrade` for the degradations.
"""

from ganinv.data import degrade
from ganinv.data.datasets import ImageDataset, expand_image_paths, load_image, open_dataset

__all__ = ["open_dataset", "load_image", "expand_image_paths", "ImageDataset", "degrade"]
