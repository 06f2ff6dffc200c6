"""Mode collapse, measured: how many of a generator's samples are distinct pictures.

A collapsed GAN draws one picture (or a handful) whatever the latent; every per-image number then flatters it — an
inverter reconstructs the same blob 256 times with a high PSNR. The diversity figure is the fraction of distinct
dHashes among the samples (``metrics.hashes.distinct_fraction``: two samples within ``DISTINCT_BITS`` of 64 bits
are one picture).

Calibration (256 images at 32 px; the fraction at ``DISTINCT_BITS`` = 8, with 4 and 6 bits for comparison):

    real MNIST test digits                              0.77   (4 bits: 0.93, 6 bits: 0.86)
    the bundled 8×8 scikit-learn digits, upscaled       0.19-0.22  (0.56, 0.34): 64 pixels, few distinct hashes
    real MNIST training digits                          0.78
    CelebA faces                                        0.94   (1.0, 0.99)
    DCGAN on MNIST (lr 5e-4), healthy at steps 400-800  0.24-0.46  (0.68-0.90, 0.41-0.69)
    the same, collapsed onto one texture (steps 100-250
    of seeds 0-2; lr 2e-4 at step 600)                  0.008-0.039  (0.035-0.26, 0.016-0.086)
    an untrained DCGAN (one texture, as collapsed)      0.08   (0.46, —)
    one constant image                                  1/256

``COLLAPSE_BELOW`` = 0.1 sits between the two groups (roughly their geometric mean): a collapse onto a couple of
dozen pictures or fewer is one; every real data set and healthy generator measured is nearly twice above it or more.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ganinv.metrics.hashes import DISTINCT_BITS, distinct_fraction

COLLAPSE_BELOW = 0.1  # a distinct fraction under this is a collapse (see the calibration above)
DIVERSITY_SAMPLES = 256  # samples judged at once: the fraction is steady to a few points at this size
REAL_MNIST_DISTINCT = 0.77  # measured (above): what a message quotes as the healthy level


@dataclass(frozen=True)
class Diversity:
    """The distinct fraction of ``n`` samples and whether it is a collapse."""

    distinct: float
    n: int

    @property
    def collapsed(self) -> bool:
        return is_collapsed(self.distinct)

    def describe(self) -> str:
        """"38% distinct of 256 samples (dHash, > 8 of 64 bits apart)"."""
        return f"{self.distinct:.0%} distinct of {self.n} samples (dHash, > {DISTINCT_BITS} of 64 bits apart)"


def is_collapsed(distinct: float, threshold: float = COLLAPSE_BELOW) -> bool:
    """Whether a distinct fraction (``distinct_fraction`` of a generator's samples) says the generator collapsed."""
    return distinct < threshold


def sample_diversity(samples: Tensor) -> Diversity:
    """The diversity of a batch of generator samples (N×C×H×W in [0, 1]); judge ``DIVERSITY_SAMPLES`` of them."""
    return Diversity(distinct=distinct_fraction(samples), n=int(samples.shape[0]))
