"""Editing in latent space: interpolation between two images, attribute directions from a linear classifier on
latents of labelled images, and the most-important-element traversal of runs with a latent scale (seed 003
fig. 17: the k elements with the largest s, each swept from −2 to 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganinv.apps import (
    Warn,
    _quiet,
    iterate_readable,
    labels_matrix,
    latent_scale,
    progress_bar,
)
from ganinv.core.errors import GaninvError
from ganinv.data import Skipped, no_usable_images, open_dataset
from ganinv.inference.model import InversionModel


def interpolate(model: InversionModel, z_a: Tensor, z_b: Tensor, steps: int = 8) -> Tensor:
    """G along the straight line z_a → z_b (both ends included): ``steps`` images per pair, (N·steps)×C×H×W
    ordered pair by pair."""
    if steps < 2:
        raise GaninvError(f"--steps must be at least 2, got {steps}")
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    z = (z_a[:, None, :] * (1 - t) + z_b[:, None, :] * t).reshape(-1, z_a.shape[1])
    with torch.inference_mode():
        return model.generate(z)


def attribute_columns(label_names: list[str] | None, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Binary targets by name: each CelebA attribute; ``digit=3`` etc. for a class label."""
    if not label_names:
        return {}
    if label_names == ["digit"] or (labels.shape[1] == 1 and len(np.unique(labels)) > 2):
        name = label_names[0]
        return {f"{name}={int(v)}": labels[:, 0] == v for v in np.unique(labels[:, 0])}
    return {name: labels[:, j] > 0.5 for j, name in enumerate(label_names)}


def check_attribute(attribute: str, names: list[str]) -> None:
    if attribute not in names:
        raise GaninvError(f"unknown attribute {attribute!r}; valid names: {', '.join(names)}")


def attribute_direction(latents: np.ndarray, target: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """(unit direction, std of the latents along it, training accuracy) from a logistic regression
    (scikit-learn) separating latents with the attribute from those without."""
    from sklearn.linear_model import LogisticRegression

    target = np.asarray(target, dtype=bool)
    if target.all() or not target.any():
        raise GaninvError("the attribute is constant on these images: it needs positive and negative examples")
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(latents, target)
    w = clf.coef_[0].astype(np.float64)
    direction = w / max(np.linalg.norm(w), 1e-12)
    spread = float((latents @ direction).std())
    return direction.astype(np.float32), spread, float(clf.score(latents, target))


def labelled_latents(model: InversionModel, data: str, n: int, split: str = "train", batch_size: int = 256,
                     show_progress: bool = False, *, skipped: list[Skipped] | None = None,
                     warn: Warn = _quiet) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Latents (in the prior's units: editing acts on z itself) and labels of the readable ones of the first n
    images of a split; each unreadable one is named through ``warn`` and appended to ``skipped``."""
    net = model.config.net
    dataset = open_dataset(data, image_size=net.image_size, channels=net.channels, split=split)
    n = min(n, len(dataset))
    skipped = [] if skipped is None else skipped
    latents, labels = [], []
    with torch.inference_mode(), progress_bar("inverting labelled images", n, show_progress) as advance:
        for _, images, batch_labels in iterate_readable(dataset, 0, n, batch_size, skipped=skipped, warn=warn):
            latents.append(model.invert(images).float().cpu().numpy())
            labels.append(labels_matrix(batch_labels))
            advance(len(images))
    if not latents:
        raise no_usable_images(skipped, f"first {n} images of {data}")
    return np.concatenate(latents), np.concatenate(labels), dataset.label_names


def edit_attribute(model: InversionModel, z: Tensor, direction: np.ndarray, spread: float,
                   strengths: np.ndarray) -> Tensor:
    """G(z + strength·spread·direction) for every z (rows) and strength (columns), clamped to the prior's support;
    strength is in standard deviations of the labelled latents along the direction."""
    d = torch.from_numpy(np.asarray(direction, dtype=np.float32)).to(z)
    s = torch.as_tensor(np.asarray(strengths, dtype=np.float32)).to(z)
    edited = z[:, None, :] + (s[None, :, None] * spread) * d[None, None, :]
    with torch.inference_mode():
        return model.generate(model.prior.clamp(edited.reshape(-1, z.shape[1])))


def top_elements(model: InversionModel, k: int, run: str | Path = "this run") -> np.ndarray:
    """Indices of the k latent elements with the largest scale s, largest first."""
    scale = latent_scale(model)
    if scale is None:
        raise GaninvError(f"--traverse needs a run with a latent scale (dlsgan); {run} is a "
                          f"{model.config.method!r} run without one")
    if not 1 <= k <= scale.numel():
        raise GaninvError(f"--traverse k must be between 1 and the latent dimension {scale.numel()}, got {k}")
    return np.argsort(-scale.numpy(), kind="stable")[:k]


def traverse(model: InversionModel, z: Tensor, elements: np.ndarray, steps: int = 9,
             low: float = -2.0, high: float = 2.0) -> Tensor:
    """For one latent z (1×d): a row per element, sweeping that element from low to high (others fixed)."""
    values = torch.linspace(low, high, steps)
    rows = z.repeat(len(elements) * steps, 1).view(len(elements), steps, -1).clone()
    for r, e in enumerate(elements):
        rows[r, :, int(e)] = values
    with torch.inference_mode():
        return model.generate(rows.view(-1, z.shape[1]))
