"""Perceptual hashes and colour histograms of image batches.

AEGAN compares images by dHash; the latent-search baselines use dHash, pHash and a joint colour
histogram.  Inputs are float tensors ``N x C x H x W`` in ``[0, 1]`` with C = 1 or 3.
"""

from __future__ import annotations

import imagehash
import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["to_pil", "dhash_bits", "phash_bits", "dhash_similarity", "distinct_fraction", "colour_histogram",
           "DISTINCT_BITS"]

# Two images whose 64-bit dHashes differ in at most this many bits count as one picture. dHash compares neighbouring
# pixels, so the flat, noisy regions of a collapsed GAN's one texture flip a few bits from sample to sample: at 4 bits
# such a texture still read as 26 % distinct, at 8 bits as 4 % or less, while 256 real MNIST digits stay 77 % distinct
# (metrics/diversity.py has the whole calibration).
DISTINCT_BITS = 8


def _check_batch(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D N x C x H x W tensor, got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected 1 or 3 channels, got {x.shape[1]} (shape {tuple(x.shape)})")


def _to_uint8(x: Tensor) -> np.ndarray:
    """N x C x H x W float in [0,1] -> N x H x W x C uint8 (values clamped, NaN -> 0)."""
    x = torch.nan_to_num(x.detach().float(), nan=0.0).clamp(0.0, 1.0)
    return (x * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_pil(x: Tensor) -> list[Image.Image]:
    """Batch -> list of PIL images (``'L'`` for 1 channel, ``'RGB'`` for 3), uint8, values clamped to [0,1]."""
    _check_batch(x, "to_pil")
    arr = _to_uint8(x)
    if x.shape[1] == 1:
        return [Image.fromarray(np.ascontiguousarray(a[:, :, 0])) for a in arr]
    return [Image.fromarray(np.ascontiguousarray(a)) for a in arr]


def _hash_bits(x: Tensor, hash_size: int, fn, name: str) -> np.ndarray:
    _check_batch(x, name)
    if hash_size < 2:
        raise ValueError(f"{name}: hash_size must be >= 2, got {hash_size}")
    bits = hash_size * hash_size
    rows = [np.asarray(fn(img, hash_size=hash_size).hash, dtype=bool).reshape(bits) for img in to_pil(x)]
    if not rows:
        return np.zeros((0, bits), dtype=bool)
    return np.stack(rows)


def dhash_bits(x: Tensor, hash_size: int = 8) -> np.ndarray:
    """``N x hash_size**2`` bool array of difference hashes (``imagehash.dhash``; 64 bits by default)."""
    return _hash_bits(x, hash_size, imagehash.dhash, "dhash_bits")


def phash_bits(x: Tensor, hash_size: int = 8) -> np.ndarray:
    """``N x hash_size**2`` bool array of DCT perceptual hashes (``imagehash.phash``; 64 bits by default)."""
    return _hash_bits(x, hash_size, imagehash.phash, "phash_bits")


def dhash_similarity(x: Tensor, y: Tensor) -> np.ndarray:
    """Per pair ``1 - hamming(dhash(x_i), dhash(y_i)) / 64``, float64 array of shape ``N`` in [0, 1]."""
    _check_batch(x, "dhash_similarity")
    _check_batch(y, "dhash_similarity")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"dhash_similarity: batch sizes differ: {x.shape[0]} vs {y.shape[0]}")
    a, b = dhash_bits(x), dhash_bits(y)
    return 1.0 - (a != b).sum(axis=1).astype(np.float64) / a.shape[1]


def distinct_fraction(x: Tensor, threshold: int = DISTINCT_BITS) -> float:
    """The fraction of distinct pictures in a batch, by dHash: 1.0 when no two images are near-duplicates, 1/N when
    all are one picture. Greedy, in batch order: an image is new when its dHash is more than ``threshold`` of its 64
    bits away from every new image before it; the result is the number of new images over N (0.0 for N = 0).
    Memory: one N x N matrix of distances (256 generator samples: 256 kB)."""
    bits = dhash_bits(x).astype(np.float32)
    distance = bits @ (1.0 - bits).T + (1.0 - bits) @ bits.T  # Hamming distance of every pair, by two products
    new: list[int] = []
    for i in range(len(bits)):
        if not new or distance[i, new].min() > threshold:
            new.append(i)
    return len(new) / len(bits) if len(bits) else 0.0


def colour_histogram(x: Tensor, bins: int = 8) -> np.ndarray:
    """Normalised joint colour histogram, ``N x bins**C`` float32, each row sums to 1.

    Each channel is quantised to ``bins`` equal bins over [0, 1] (1.0 falls in the last bin);
    the joint bin index is ``r * bins**2 + g * bins + b`` (just the grey bin for C = 1).
    """
    _check_batch(x, "colour_histogram")
    if bins < 1:
        raise ValueError(f"colour_histogram: bins must be >= 1, got {bins}")
    n, c = x.shape[:2]
    n_cells = bins**c
    q = torch.nan_to_num(x.detach().float(), nan=0.0).clamp(0.0, 1.0).cpu()
    q = (q * bins).floor().clamp_(max=bins - 1).long()  # N x C x H x W in [0, bins)
    idx = torch.zeros_like(q[:, 0])
    for ch in range(c):
        idx = idx * bins + q[:, ch]
    idx = idx.reshape(n, -1)
    if n == 0 or idx.shape[1] == 0:
        return np.zeros((n, n_cells), dtype=np.float32)
    flat = (idx + torch.arange(n).unsqueeze(1) * n_cells).reshape(-1)
    counts = torch.bincount(flat, minlength=n * n_cells).reshape(n, n_cells).double()
    hist = counts / counts.sum(dim=1, keepdim=True)
    return hist.numpy().astype(np.float32)
