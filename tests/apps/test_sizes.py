"""Issue 23, below the command line: datasets that do not grow with the image size, refusals that come before the
allocation, config fields checked on load, and output images in the format their suffix names."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import save_image

import ganinv.core.bounds as bounds
from ganinv.apps.edit import check_columns, interpolate, parse_strength
from ganinv.apps.superres import check_conditions
from ganinv.core.config import RunConfig, config_from_dict
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.core.viz import MAX_GRID_PIXELS, check_grid_size, labelled_grid, save_png
from ganinv.data import open_dataset
from ganinv.inference.model import InversionModel


# ------------------------------------------------------------------------------------- streamed resizing
def held_bytes(dataset) -> int:
    """Bytes of every tensor the dataset object holds."""
    return sum(v.nelement() * v.element_size() for v in vars(dataset).values() if isinstance(v, torch.Tensor))


@pytest.mark.parametrize("spec", ["mnist", "digits"])
def test_in_memory_sets_hold_the_same_bytes_whatever_the_image_size(spec):
    small = open_dataset(spec, image_size=16, channels=1, split="test")
    large = open_dataset(spec, image_size=256, channels=3, split="test")
    assert held_bytes(large) == held_bytes(small) < 4 * len(small) * 32 * 32 + 1e6  # the 32 px originals at most
    image, _ = large[3]
    assert image.shape == (3, 256, 256) and 0 <= image.min() and image.max() <= 1


def test_lazy_resizing_gives_what_resizing_everything_up_front_gave():
    """The same antialiased bilinear resize, per item: equal to float32 rounding to the old all-at-once result."""
    dataset = open_dataset("mnist", image_size=64, channels=3, split="test")
    raw = dataset._data[:40]  # the 32 px originals it holds
    upfront = F.interpolate(raw, size=(64, 64), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    images, labels = dataset.tensors(40)
    assert images.shape == (40, 3, 64, 64) and len(labels) == 40
    torch.testing.assert_close(images, upfront.expand(-1, 3, -1, -1), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.stack([dataset[k][0] for k in range(40)]), images, rtol=0, atol=0)


def test_tensors_refuses_a_request_larger_than_memory_before_allocating(monkeypatch):
    dataset = open_dataset("digits", image_size=64, channels=3, split="test")
    monkeypatch.setattr(bounds, "physical_memory", lambda: 8 * 2**20)  # an 8 MiB machine: 4 MiB may be asked for
    with pytest.raises(GaninvError, match=r"179 images of 64 px would need about 8 MiB of memory.*fewer images"):
        dataset.tensors()
    assert dataset.tensors(20)[0].shape == (20, 3, 64, 64)  # 1 MiB is fine


@pytest.mark.parametrize("size", [2, 8192])
def test_open_dataset_bounds_the_image_size(size):
    with pytest.raises(GaninvError, match=f"image_size must be from 4 to {bounds.MAX_IMAGE_SIZE}, got {size}"):
        open_dataset("digits", image_size=size)


# -------------------------------------------------------------------------------------- config.json fields
GOOD = RunConfig(method="gan").to_dict()


@pytest.mark.parametrize("field, value, needle", [
    ("net.image_size", -16, "field net.image_size must be from 4 to 4096, got -16"),
    ("net.image_size", 65536, "field net.image_size must be from 4 to 4096"),
    ("net.image_size", "16", "field net.image_size must be an integer, got '16'"),
    ("net.image_size", 16.0, "field net.image_size must be an integer"),
    ("net.channels", 2, "field net.channels must be one of 1, 3"),
    ("train.steps", True, "field train.steps must be an integer, got True"),
    ("train.steps", 10**20, "field train.steps must be from 1 to"),
    ("train.lr", float("nan"), "field train.lr must be from"),
    ("train.lr", float("inf"), "field train.lr must be from"),
    ("train.num_workers", -1, "field train.num_workers must be from 0 to 256"),
    ("train.device", "tpu", "field train.device must be one of auto, cpu, cuda"),
    ("seed", 1180591620717411303424, "field seed must be from 0 to 4294967295"),
    ("seed", -1, "field seed must be from 0"),
    ("data", 3, "field data must be a string or null"),
    ("options", [], "field options must be an object"),
    ("net", [16], "field net must be an object"),
])
def test_config_fields_are_checked_on_load(field, value, needle):
    data = copy.deepcopy(GOOD)
    *section, name = field.split(".")
    (data[section[0]] if section else data)[name] = value
    with pytest.raises(RunDirError) as info:
        config_from_dict(data, where="RUN/config.json")
    assert str(info.value).startswith("RUN/config.json: ") and needle in str(info.value)
    assert "\n" not in str(info.value)


def test_a_good_config_loads_and_a_float_field_may_be_written_as_an_integer():
    assert config_from_dict(copy.deepcopy(GOOD)) == RunConfig(method="gan")
    data = copy.deepcopy(GOOD)
    data["train"]["lr"] = 1  # JSON from another tool
    assert config_from_dict(data).train.lr == 1


def test_an_interval_past_the_runs_length_means_never_and_loads():
    """The demo (and runs written before fields were checked) record eval_every = 10**9: "never"."""
    data = copy.deepcopy(GOOD)
    data["train"].update(eval_every=10**9, sample_every=10**9, checkpoint_every=10**9)
    assert config_from_dict(data).train.eval_every == 10**9
    data["train"]["eval_every"] = 0
    with pytest.raises(RunDirError, match="field train.eval_every must be from 1"):
        config_from_dict(data)


# ------------------------------------------------------------------------------------------------ grids
def test_a_grid_beyond_pillows_limit_is_refused_before_it_is_drawn():
    check_grid_size(1, 64, 1024, "fewer")  # a 64-column interpolation of 1024 px images is drawn
    with pytest.raises(GaninvError, match=r"4 rows × 64 images of 1024 px would have 269 megapixels \(at most 89\)"):
        check_grid_size(4, 64, 1024, "fewer")
    too_many = math.ceil(MAX_GRID_PIXELS / (66 * 66)) + 1  # 16 px tiles are drawn at 64 px (+2 px padding)
    with pytest.raises(GaninvError, match="show fewer images"):
        labelled_grid([torch.zeros(too_many, 1, 16, 16)], ["row"])


def test_edit_columns_and_strengths(aegan_run):
    for steps in (1, 65, 100_000, 2.5, True):
        with pytest.raises(GaninvError, match=f"from 2 to {bounds.MAX_GRID_COLUMNS} images per row"):
            check_columns(steps)
    model = InversionModel.load(aegan_run)
    z = model.sample(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(GaninvError, match="--steps must be from 2 to 64"):
        interpolate(model, z[:1], z[1:], steps=100_000)  # the library bounds it too (the web page calls it)
    assert parse_strength("-2..2") == (-2.0, 2.0) and parse_strength("100") == (100.0, 100.0)
    for bad in ("nan..inf", "-inf..0", "0..101"):
        with pytest.raises(GaninvError, match="--strength must be finite numbers"):
            parse_strength(bad)


def test_superres_conditions():
    assert check_conditions([0, 1.5], [1, 2.0, 16], side=16) == ([0.0, 1.5], [1, 2, 16])
    for sigmas, factors, needle in (([float("nan")], [], "--sigmas"), ([-1], [], "--sigmas"), ([], [0], "got 0"),
                                    ([], [2.5], "got 2.5"), ([], [17], "got 17"), ([], [float("inf")], "got inf")):
        with pytest.raises(GaninvError, match=needle):
            check_conditions(sigmas, factors, side=16)


# ---------------------------------------------------------------------------------------- output formats
def test_save_png_writes_the_pixels_torchvision_wrote_and_the_format_of_the_suffix(tmp_path):
    grid = torch.rand(3, 1, 10, 12)
    save_image(grid, tmp_path / "torchvision.png")
    save_png(grid, tmp_path / "ours.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")),
                          np.asarray(Image.open(tmp_path / "torchvision.png")))
    for suffix, fmt in ((".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP"), (".tiff", "TIFF")):
        save_png(grid, tmp_path / f"g{suffix}")
        with Image.open(tmp_path / f"g{suffix}") as image:
            assert image.format == fmt


@pytest.mark.parametrize("name, needle", [("g.gif", "suffix '.gif'"), ("g", "no suffix"), ("g.png.txt", "'.txt'")])
def test_save_png_refuses_a_suffix_it_cannot_honour_and_writes_nothing(tmp_path, name, needle):
    with pytest.raises(GaninvError, match=needle):
        save_png(torch.rand(3, 8, 8), tmp_path / name)
    assert not any(tmp_path.iterdir())
