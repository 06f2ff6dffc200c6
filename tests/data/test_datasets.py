"""Datasets by spec: MNIST, digits, folders (every kind of image file, the split rule), CelebA (labels, the
partition file), spec errors, bad files and load_image."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.core.errors import DataError, GaninvError
from ganinv.data import ImageDataset, load_image, open_dataset


def _save(path, array, mode=None, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path, format=fmt)
    return path


def _solid(h, w, rgb):
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:] = rgb
    return a


def _jpeg_bytes(h=48, w=48, seed=0):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _check_images(x, n, c, s):
    assert x.shape == (n, c, s, s)
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.parametrize("image_size,channels", [(32, 1), (32, 3), (16, 1), (16, 3)])
def test_mnist_splits_shapes_labels(image_size, channels):
    train = open_dataset("mnist", image_size=image_size, channels=channels, split="train")
    test = open_dataset("mnist", image_size=image_size, channels=channels, split="test")
    assert isinstance(train, ImageDataset)
    assert (len(train), len(test)) == (4500, 500)
    assert train.label_names == ["digit"] and train.paths is None
    assert (train.spec, train.split, train.image_size, train.channels) == ("mnist", "train", image_size, channels)
    for ds, n in ((train, 4500), (test, 500)):
        x, y = ds.tensors()
        _check_images(x, n, channels, image_size)
        assert y.dtype == torch.int64 and y.shape == (n,)
        # every digit present, equally often, in both splits
        assert torch.bincount(y, minlength=10).tolist() == [n // 10] * 10
        if channels == 3:
            assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
        # digits are bright strokes on black
        assert 0.05 < x.mean().item() < 0.25
        assert x.amax(dim=(1, 2, 3)).min() > 0.3
    img, label = train[3]
    assert img.shape == (channels, image_size, image_size) and img.dtype == torch.float32
    assert label.dtype == torch.int64 and label.dim() == 0
    assert torch.equal(img, train.tensors(4)[0][3]) and label == train.tensors(4)[1][3]
    # the first few images mix the digits (the bundled file is sorted by digit)
    assert len(set(train.tensors(50)[1].tolist())) >= 5


def test_mnist_padding_pixels_and_label_consistency():
    train = open_dataset("mnist", image_size=32, channels=1, split="train")
    test = open_dataset("mnist", image_size=32, channels=1, split="test")
    xtr, ytr = train.tensors()
    xte, yte = test.tensors()
    # 2-pixel zero border from padding 28 -> 32, pixel values are k/255 (no resampling at 32)
    for x in (xtr, xte):
        assert x[:, :, :2].abs().max() == 0 and x[:, :, -2:].abs().max() == 0
        assert x[:, :, :, :2].abs().max() == 0 and x[:, :, :, -2:].abs().max() == 0
        assert torch.allclose(x * 255, (x * 255).round(), atol=1e-3)
    # train and test are disjoint
    train_keys = {bytes((r * 255).round().to(torch.uint8).numpy()) for r in xtr}
    assert not any(bytes((r * 255).round().to(torch.uint8).numpy()) in train_keys for r in xte)
    # labels belong to their images: a nearest-centroid classifier fit on train works on test
    cents = torch.stack([xtr[ytr == d].mean(0) for d in range(10)]).flatten(1)
    pred = torch.cdist(xte.flatten(1), cents).argmin(1)
    assert (pred == yte).float().mean() > 0.7
    # resizing to 16 is an antialiased downscale of the 32-pixel images
    x16, y16 = open_dataset("mnist", image_size=16, channels=1, split="test").tensors()
    assert torch.equal(y16, yte)
    assert (x16 - torch.nn.functional.avg_pool2d(xte, 2)).abs().mean() < 0.03


def test_mnist_all_split_and_getitem_copy():
    ds = open_dataset("mnist", image_size=32, channels=1, split="all")
    assert len(ds) == 5000
    x0, _ = ds[0]
    x0 += 1.0  # callers may modify what they get without corrupting the dataset
    assert ds[0][0].max() <= 1.0
    with pytest.raises(IndexError):
        ds[5000]
    assert ds[-1][0].shape == (1, 32, 32)


def test_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    train = open_dataset("digits", image_size=8, channels=1, split="train")
    test = open_dataset("digits", image_size=8, channels=1, split="test")
    assert (len(train), len(test)) == (1797 - 179, 179)
    x, y = test.tensors()
    _check_images(x, 179, 1, 8)
    assert y.dtype == torch.int64 and torch.equal(y, torch.as_tensor(d.target[-179:]))
    assert torch.allclose(x[:, 0], torch.as_tensor(d.images[-179:] / 16.0, dtype=torch.float32))
    big = open_dataset("digits", image_size=24, channels=3, split="all")
    xb, yb = big.tensors(10)
    _check_images(xb, 10, 3, 24)
    assert big.label_names == ["digit"] and yb.tolist() == list(range(10))
    assert torch.equal(xb[:, 0], xb[:, 2])


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "imgs"
    wide = _solid(30, 60, (255, 0, 0))
    wide[:, 15:45] = (0, 0, 255)  # blue centre square, red margins
    _save(root / "a_wide.png", wide)
    _save(root / "b_photo.JPG", _solid(50, 30, (0, 200, 0)))
    _save(root / "c_grey.png", np.full((20, 20), 128), mode="L")
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent -> white
    _save(root / "d_rgba.png", rgba, mode="RGBA")
    _save(root / "sub" / "deeper" / "e_nested.jpeg", _solid(24, 24, (10, 20, 30)))
    _save(root / "f_pic.webp", _solid(20, 20, (200, 100, 50)))
    _save(root / "g_pic.BMP", _solid(20, 20, (50, 100, 200)), fmt="BMP")
    (root / "notes.txt").write_text("not an image")
    _save(root / ".hidden.png", _solid(8, 8, (0, 0, 0)))
    return root


def test_folder_all_kinds_of_images(image_folder):
    ds = open_dataset(f"folder:{image_folder}", image_size=16, channels=3, split="all")
    names = [p.replace("\\", "/").split("imgs/")[1] for p in ds.paths]
    assert names == ["a_wide.png", "b_photo.JPG", "c_grey.png", "d_rgba.png", "f_pic.webp", "g_pic.BMP",
                     "sub/deeper/e_nested.jpeg"]
    assert ds.label_names is None and len(ds) == 7
    x, y = ds.tensors()
    _check_images(x, 7, 3, 16)
    assert y.dtype == torch.int64 and y.tolist() == [-1] * 7
    img, label = ds[2]
    assert label.dtype == torch.int64 and label.dim() == 0 and label.item() == -1
    # centre square crop keeps only the blue part of the wide image
    assert torch.allclose(x[0], torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 16, 16), atol=0.02)
    # grey replicated to three channels
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert torch.allclose(img, torch.full_like(img, 128 / 255), atol=0.01)
    # transparent RGBA composited on white
    assert torch.allclose(x[3], torch.ones(3, 16, 16), atol=0.01)
    assert torch.allclose(x[6][:, 8, 8], torch.tensor([10, 20, 30]) / 255.0, atol=0.03)

    grey = open_dataset(f"folder:{image_folder}", image_size=8, channels=1, split="all")
    xg, _ = grey.tensors()
    _check_images(xg, 7, 1, 8)
    # RGB -> L uses PIL's luma: pure green (0,200,0) -> about 0.587*200
    assert abs(xg[1].mean().item() * 255 - 0.587 * 200) < 3


def test_folder_default_split_rule(image_folder):
    all_ = open_dataset(f"folder:{image_folder}", image_size=8, split="all")
    train = open_dataset(f"folder:{image_folder}", image_size=8, split="train")
    test = open_dataset(f"folder:{image_folder}", image_size=8, split="test")
    # 7 files: 10% rounds down to 0, but there is always at least one test image
    assert test.paths == all_.paths[-1:]
    assert train.paths == all_.paths[:-1]


def test_folder_split_rule_at_scale(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(1, 10001):  # opening must not decode, so empty files are fine
        os.close(os.open(root / f"{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
    test = open_dataset(f"folder:{root}", image_size=8, split="test")
    train = open_dataset(f"folder:{root}", image_size=8, split="train")
    assert len(test) == 1000 and len(train) == 9000
    assert test.paths[0].endswith("009001.jpg") and test.paths[-1].endswith("010000.jpg")
    assert train.paths[-1].endswith("009000.jpg")
    with pytest.raises(DataError, match="000001.jpg"):
        train[0]  # an empty file is not an image, and the error names it


def test_folder_single_image_and_partition_file(tmp_path):
    root = tmp_path / "one"
    _save(root / "only.png", _solid(8, 8, (1, 2, 3)))
    assert len(open_dataset(f"folder:{root}", image_size=8, split="train")) == 1
    with pytest.raises(DataError, match="empty"):
        open_dataset(f"folder:{root}", image_size=8, split="test")

    root = tmp_path / "part"
    for i in range(1, 7):
        _save(root / f"{i:06d}.jpg", _solid(8, 8, (i, i, i)))
    (root / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 1\n000003.jpg 0\n000004.jpg 2\n000005.jpg 0\n"  # 000006 unlisted -> train
    )
    test = open_dataset(f"folder:{root}", image_size=8, split="test")
    train = open_dataset(f"folder:{root}", image_size=8, split="train")
    assert [p[-10:] for p in test.paths] == ["000004.jpg"]  # partition 2 only; 1 is the valid split
    assert [p[-10:] for p in open_dataset(f"folder:{root}", image_size=8, split="valid").paths] == ["000002.jpg"]
    assert [p[-10:] for p in train.paths] == ["000001.jpg", "000003.jpg", "000005.jpg", "000006.jpg"]


def _make_celeba(tmp_path, n_images=12, partition=None):
    root = tmp_path / "celeba"
    imgs = root / "img_align_celeba"
    rng = np.random.default_rng(1)
    for i in range(1, n_images + 1):
        _save(imgs / f"{i:06d}.jpg", rng.integers(0, 256, (24, 20, 3)))  # 20 wide, 24 tall
    names = [f"Attr_{k}" for k in range(40)]
    table = rng.choice([-1, 1], size=(n_images + 1, 40))  # one extra row without an image
    lines = [str(n_images + 1), " ".join(names)]
    for i in range(n_images + 1):
        lines.append(f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in table[i]))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    if partition is not None:
        (root / "list_eval_partition.txt").write_text(
            "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partition))
        )
    return root, names, table


def test_celeba_labels_and_split(tmp_path):
    root, names, table = _make_celeba(tmp_path)
    train = open_dataset(f"celeba:{root}", image_size=16, channels=3, split="train")
    test = open_dataset(f"celeba:{root}", image_size=16, channels=3, split="test")
    all_ = open_dataset(f"celeba:{root}", image_size=16, channels=3, split="all")
    assert len(all_) == 12  # the row for 000013.jpg has no image
    assert [p[-10:] for p in test.paths] == ["000012.jpg"]
    assert [p[-10:] for p in train.paths] == [f"{i:06d}.jpg" for i in range(1, 12)]
    assert train.label_names == names and len(train.label_names) == 40
    x, y = all_.tensors()
    _check_images(x, 12, 3, 16)
    assert y.dtype == torch.float32 and y.shape == (12, 40)
    assert torch.equal(y, torch.as_tensor((table[:12] == 1).astype(np.float32)))
    img, label = test[0]
    assert img.shape == (3, 16, 16) and torch.equal(label, y[11])
    grey = open_dataset(f"celeba:{root}", image_size=8, channels=1, split="test")
    assert grey[0][0].shape == (1, 8, 8)


def test_celeba_partition_file(tmp_path):
    root, _, _ = _make_celeba(tmp_path, partition=[0, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 2])
    test = open_dataset(f"celeba:{root}", image_size=8, split="test")
    assert [p[-10:] for p in test.paths] == ["000005.jpg", "000012.jpg"]
    valid = open_dataset(f"celeba:{root}", image_size=8, split="valid")
    assert [p[-10:] for p in valid.paths] == ["000003.jpg", "000009.jpg"]
    assert len(open_dataset(f"celeba:{root}", image_size=8, split="train")) == 8


def test_spec_and_argument_errors(tmp_path, image_folder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.png").write_bytes(_jpeg_bytes())
    cases = [
        (dict(spec="imagenet"), "unknown dataset"),
        (dict(spec="folder:"), "needs a path"),
        (dict(spec="folder"), "needs a path"),
        (dict(spec=f"folder:{tmp_path / 'nope'}"), "nope"),
        (dict(spec=f"folder:{tmp_path / 'empty'}"), "no images"),
        (dict(spec=f"folder:{tmp_path / 'file.png'}"), "is a file"),
        (dict(spec=f"celeba:{tmp_path / 'nope'}"), "not found"),
        (dict(spec=f"celeba:{image_folder}"), "img_align_celeba"),
        (dict(spec="mnist", split="validation"), "split"),
        (dict(spec="mnist", image_size=3), "image_size"),
        (dict(spec="digits", channels=2), "channels"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(DataError, match=pattern) as info:
            open_dataset(**kwargs)
        assert isinstance(info.value, GaninvError)
        assert "\n" not in str(info.value)


def test_celeba_missing_attribute_file(tmp_path):
    root, _, _ = _make_celeba(tmp_path, n_images=3)
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(DataError, match="list_attr_celeba.txt"):
        open_dataset(f"celeba:{root}", image_size=8)


def test_celeba_bad_attribute_row(tmp_path):
    root, _, _ = _make_celeba(tmp_path, n_images=3)
    with open(root / "list_attr_celeba.txt", "a") as f:
        f.write("000004.jpg 1 -1\n")
    with pytest.raises(DataError, match="line 7"):
        open_dataset(f"celeba:{root}", image_size=8)


def test_bad_image_files(tmp_path):
    good = _jpeg_bytes(64, 64)
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a_ok.jpg").write_bytes(good)
    (root / "b_truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "c_text.png").write_text("this is not a png\n" * 10)
    # opening lists files only: no error yet
    ds = open_dataset(f"folder:{root}", image_size=16, split="all")
    assert len(ds) == 3
    assert ds[0][0].shape == (3, 16, 16)
    with pytest.raises(DataError, match="b_truncated.jpg"):
        ds[1]
    with pytest.raises(DataError, match="c_text.png"):
        ds[2]
    with pytest.raises(DataError, match="b_truncated.jpg"):
        ds.tensors()
    with pytest.raises(DataError, match="b_truncated.jpg"):
        load_image(root / "b_truncated.jpg", 16, 3)
    with pytest.raises(DataError, match="c_text.png"):
        load_image(str(root / "c_text.png"), 16, 1)
    with pytest.raises(DataError, match="missing.png"):
        load_image(root / "missing.png", 16, 3)
    with pytest.raises(DataError, match="image_size"):
        load_image(root / "a_ok.jpg", 2, 3)


def test_load_image_crop_and_resize(tmp_path):
    tall = _solid(90, 30, (0, 255, 0))
    tall[:30] = (255, 255, 255)
    tall[60:] = (0, 0, 0)  # white top, green centre square, black bottom
    path = _save(tmp_path / "tall.png", tall)
    x = load_image(path, 8, 3)
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32
    assert torch.allclose(x, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 8, 8), atol=0.02)
    # a large JPEG (decoded at reduced scale) still gives the right picture
    big = np.zeros((400, 600, 3), dtype=np.uint8)
    big[:, 300:] = 255  # left half black, right half white
    _save(tmp_path / "big.jpg", big)
    y = load_image(tmp_path / "big.jpg", 16, 1)
    assert y.shape == (1, 16, 16)
    assert y[0, :, :6].max() < 0.1 and y[0, :, 10:].min() > 0.9
