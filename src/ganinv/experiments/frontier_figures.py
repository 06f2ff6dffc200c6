"""The frontier's pictures besides its PSNR-against-time plot: each encoder run's training curves, and the same test
faces through every inverter.

Training curves plot what the run's ``metrics.jsonl`` recorded, nothing recomputed (a run keeps only its last
checkpoint, so earlier steps cannot be evaluated afterwards): every numeric value of its ``train`` lines (the loss
terms, as the method names them) and the ``real/psnr`` of its ``eval`` lines — the training loop's evaluation on the
first test-split images, which no method trains on (``ganinv.training.launch.open_training_data``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from ganinv.core.io import atomic_write
from ganinv.core.viz import labelled_grid, save_png
from ganinv.metrics import psnr

FACES = 8  # columns of the faces picture
FACE_SIDE = 128  # larger images are shown shrunk to this (PSNR is the full size's): 40 rows of 1024 px would not fit
MAX_METRICS_BYTES = 256 << 20  # a metrics.jsonl of ours is a few hundred bytes a step; larger is not read
HELD_OUT = "real/psnr"


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display), imported on first use: the frontier's plots share it."""
    import matplotlib  # deferred: slow to import; only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: see above

    return plt


def read_curves(run: Path) -> tuple[dict[str, list[tuple[int, float]]], list[tuple[int, float]]]:
    """({loss name: [(step, value)]}, [(step, held-out real PSNR)]) from RUN/metrics.jsonl (empty when absent)."""
    path = Path(run) / "metrics.jsonl"
    losses: dict[str, list[tuple[int, float]]] = {}
    held_out: list[tuple[int, float]] = []
    if not path.is_file() or path.stat().st_size > MAX_METRICS_BYTES:
        return losses, held_out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            step = int(record["step"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            continue  # a half-written last line of a killed run, or not a line of ours
        if record.get("kind") == "train":
            for key, value in record.items():
                if key not in ("step", "kind") and isinstance(value, (int, float)):
                    losses.setdefault(key, []).append((step, float(value)))
        elif record.get("kind") == "eval" and isinstance(record.get(HELD_OUT), (int, float)):
            held_out.append((step, float(record[HELD_OUT])))
    return losses, held_out


def plot_training_curves(path: Path, run: Path, label: str) -> bool:
    """OUT/PATH: the run's loss terms (left) and held-out real PSNR (right) by step; False when it logged none."""
    losses, held_out = read_curves(run)
    if not losses and not held_out:
        return False
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, points in losses.items():
        left.plot(*zip(*points), lw=1, label=name)
    left.set(xlabel="training step", ylabel="loss (metrics.jsonl 'train')", title=f"{label}: training loss")
    if held_out:
        right.plot(*zip(*held_out), "o-", label="real/psnr (test split, never trained on)")
    right.set(xlabel="training step", ylabel="PSNR (dB)", title=f"{label}: held-out real PSNR (loop's eval)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return True


def shown(images: Tensor) -> Tensor:
    """The images as drawn: at most FACE_SIDE px a side."""
    images = images.float().cpu()
    if images.shape[-1] <= FACE_SIDE:
        return images
    return torch.nn.functional.interpolate(images, size=(FACE_SIDE, FACE_SIDE), mode="area")


def save_faces(path: Path, images: Tensor, rows: list[dict], reconstructions: list[Tensor]) -> None:
    """The first FACES test images (top row) and every inverter's reconstruction of them, one row each, labelled
    with the inverter and its mean PSNR on the whole set; each image captioned with its own PSNR."""
    x = images[:FACES].float().cpu()
    captions = [[""] * len(x)]
    for recon in reconstructions:
        captions.append([f"{v:.1f}" for v in psnr(x, recon[:FACES].float().cpu()).tolist()])
    labels = ["input"] + [f"{r['inverter']} ({r['psnr']:.1f} dB)" for r in rows]
    grid = labelled_grid([shown(t[:FACES]) for t in [x, *reconstructions]], labels, captions=captions,
                         title=f"{len(x)} real test images through every inverter (caption: PSNR dB)")
    save_png(grid, path)
