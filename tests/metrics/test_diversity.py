"""The diversity figure (distinct dHash fraction) and the collapse detector: fires on one picture drawn again and
again, not on real digits."""
from __future__ import annotations

import pytest
import torch

from ganinv.data import open_dataset
from ganinv.metrics.diversity import COLLAPSE_BELOW, is_collapsed, sample_diversity
from ganinv.metrics.hashes import DISTINCT_BITS, dhash_bits, distinct_fraction


def digit_batch(spec: str, n: int = 256) -> torch.Tensor:
    images, _ = open_dataset(spec, image_size=32, channels=1, split="train").tensors(n)
    return images


def test_one_picture_repeated_is_one_distinct_picture_and_a_collapse():
    blob = torch.zeros(1, 1, 32, 32)
    blob[..., 8:24, 10:20] = 1.0
    same = blob.expand(256, -1, -1, -1).clone()
    assert distinct_fraction(same) == pytest.approx(1 / 256)
    noisy = (same + 0.01 * torch.randn(same.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    diversity = sample_diversity(noisy)  # a collapsed GAN's blob is never bit-identical
    assert diversity.n == 256 and diversity.collapsed and diversity.distinct < 0.15  # flat regions flip a few bits
    assert "of 256 samples" in diversity.describe()


def test_a_few_modes_count_as_that_many_pictures():
    modes = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    batch = modes.repeat(64, 1, 1, 1)  # 4 pictures, 256 images
    assert distinct_fraction(batch) == pytest.approx(4 / 256)
    assert is_collapsed(distinct_fraction(batch))


@pytest.mark.parametrize("spec, at_least", [("mnist", 0.7), ("digits", 0.15)])
def test_real_digits_are_not_a_collapse(spec, at_least):
    # measured: 256 MNIST digits 0.77-0.78; the 8×8 scikit-learn digits, upscaled, 0.19-0.22 (few pixels)
    distinct = distinct_fraction(digit_batch(spec))
    assert distinct >= at_least and not is_collapsed(distinct)
    assert COLLAPSE_BELOW < at_least  # the threshold leaves room under every real set


def test_near_duplicates_within_the_threshold_are_one_picture():
    images = digit_batch("mnist", 64)
    bits = dhash_bits(images)
    distance = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    far = [i for i in range(1, 64) if distance[0, i] > DISTINCT_BITS]
    pair = torch.stack([images[0], images[far[0]]])
    assert distinct_fraction(pair) == 1.0
    assert distinct_fraction(torch.stack([images[0], images[0]])) == 0.5
    assert distinct_fraction(images[:0]) == 0.0
