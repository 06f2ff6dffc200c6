"""Clustering of images by their latents (Arfeen & Zhang §4.4): Ward agglomerative clustering, its closest pairs,
silhouette, and — where the data has labels — purity of the clusters per attribute beside chance."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ganinv.apps import (
    Warn,
    item_name,
    iterate_readable,
    labels_matrix,
    latent_features,
    load_inverter,
    progress_bar,
    silent,
)
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import no_usable_images, open_dataset

SILHOUETTE_SAMPLE = 5000


@dataclass
class Clustering:
    assignments: np.ndarray        # N cluster ids in 0..k-1, ordered by cluster size (0 = largest)
    pairs: list[tuple[int, int, float]]  # the closest pairs: Ward's first merges of two single images
    silhouette: float


def ward(latents: np.ndarray, k: int, n_pairs: int = 8, seed: int = 0) -> Clustering:
    """Ward agglomerative clustering of N×d latents into k clusters (scikit-learn)."""
    from sklearn.cluster import AgglomerativeClustering  # deferred: slow to import
    from sklearn.metrics import silhouette_score  # deferred: slow to import

    n = len(latents)
    if k < 2:
        raise GaninvError(f"--k must be at least 2, got {k}")
    if k > n:
        raise GaninvError(f"--k {k} is larger than the number of images ({n})")
    model = AgglomerativeClustering(n_clusters=k, linkage="ward", compute_distances=True).fit(latents)
    sizes = np.bincount(model.labels_, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    assignments = np.empty(k, dtype=np.int64)
    assignments[order] = np.arange(k)
    assignments = assignments[model.labels_]
    pairs = []
    for (a, b), d in zip(model.children_, model.distances_):
        if a < n and b < n:
            pairs.append((int(a), int(b), float(d)))
            if len(pairs) == n_pairs:
                break
    silhouette = float("nan")
    if k < n:
        silhouette = float(silhouette_score(latents, assignments, sample_size=min(n, SILHOUETTE_SAMPLE),
                                            random_state=seed))
    return Clustering(assignments, pairs, silhouette)


def purity(assignments: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """Per label column: purity (Σ over clusters of its most common value's count / N) and chance (the most
    common value's share overall — what one cluster would score)."""
    out = {}
    for j, name in enumerate(names):
        column = labels[:, j]
        values, coded = np.unique(column, return_inverse=True)
        table = np.zeros((assignments.max() + 1, len(values)), dtype=np.int64)
        np.add.at(table, (assignments, coded), 1)
        out[name] = {"purity": float(table.max(1).sum() / len(column)),
                     "chance": float(np.bincount(coded).max() / len(column))}
    return out


@dataclass(frozen=True)
class ClusterSummary:
    """What ``cluster_dataset`` found: ``n`` clustered images in ``k`` clusters of ``sizes``, the silhouette, the
    closest pairs (dataset rows), the skipped files and — on a labelled dataset — each label's purity;
    ``to_json()`` is clusters.json's summary and ``ganinv cluster --json``'s output."""

    run: str
    data: str
    split: str
    n: int
    k: int
    sizes: list[int]
    silhouette: float
    closest_pairs: list[dict]
    skipped: list[dict]
    purity: dict[str, dict[str, float]] | None = None

    def to_json(self) -> dict:
        summary = asdict(self)
        return summary if self.purity is not None else {k: v for k, v in summary.items() if k != "purity"}


def cluster_dataset(run: str | Path, data: str, k: int, out: str | Path, *, split: str = "train", n: int = 2000,
                    per_cluster: int = 16, batch_size: int = 256, show_progress: bool = True,
                    log: Warn = silent) -> ClusterSummary:
    """Invert the readable ones of the first n images of a split (each unreadable one is named through ``log`` and
    listed in ``skipped``), Ward-cluster their latents, write a PNG grid per cluster, a grid of the closest pairs
    and clusters.json (with each clustered item's exact name); return the summary. Indices in ``closest_pairs``
    are dataset rows."""
    model = load_inverter(run)
    net = model.config.net
    dataset = open_dataset(data, image_size=net.image_size, channels=net.channels, split=split)
    n = min(n, len(dataset))
    if k > n:
        raise GaninvError(f"--k {k} is larger than the number of images ({n})")
    latents, labels, rows, skipped = _invert_readable(model, dataset, n, batch_size, show_progress, log)
    result = ward(latents, k)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = np.bincount(result.assignments, minlength=k)
    pairs = write_grids(out, dataset, result, rows, sizes, per_cluster)
    summary = ClusterSummary(
        run=str(run), data=data, split=split, n=len(rows), k=k, sizes=sizes.tolist(), silhouette=result.silhouette,
        closest_pairs=[{"a": a, "b": b, "ward_distance": d} for a, b, d in pairs],
        skipped=[s.to_json() for s in skipped],
        purity=purity(result.assignments, labels, dataset.label_names) if dataset.label_names else None)
    items = [item_name(dataset, int(r)) for r in rows]
    atomic_write_json(out / "clusters.json", {**summary.to_json(), "assignments": result.assignments.tolist(),
                                              "rows": rows.tolist(), "items": items})
    log(f"wrote {k} cluster grids, closest-pairs.png and clusters.json to {out}")
    return summary


def write_grids(out: Path, dataset, result: Clustering, rows: np.ndarray, sizes: np.ndarray,
                per_cluster: int) -> list[tuple[int, int, float]]:
    """cluster-NN.png (each cluster's first members) and closest-pairs.png; the closest pairs as dataset rows."""
    for c in range(len(sizes)):
        members = rows[np.flatnonzero(result.assignments == c)[:per_cluster]]
        images = torch.stack([dataset[int(i)][0] for i in members])
        save_png(labelled_grid([images], [f"cluster {c} ({sizes[c]} images)"], title=f"cluster {c}: its first "
                               f"{len(images)} members"), out / f"cluster-{c:02d}.png")
    pairs = [(int(rows[a]), int(rows[b]), d) for a, b, d in result.pairs]
    if pairs:
        left = torch.stack([dataset[a][0] for a, _, _ in pairs])
        right = torch.stack([dataset[b][0] for _, b, _ in pairs])
        save_png(labelled_grid([left, right], ["image", "its closest image"],
                               captions=[[f"row {a}" for a, _, _ in pairs], [f"d={d:.3g}" for _, _, d in pairs]],
                               title="closest pairs (Ward's first merges), one pair per column"),
                 out / "closest-pairs.png")
    return pairs


def _invert_readable(model, dataset, n: int, batch_size: int, show_progress: bool, log: Warn):
    """(latent features, labels, dataset rows, skipped) of the readable ones of the first n items."""
    features, labels, rows, skipped = [], [], [], []
    with torch.inference_mode(), progress_bar("inverting", n, show_progress) as advance:
        for indices, images, batch_labels in iterate_readable(dataset, 0, n, batch_size, skipped=skipped, warn=log):
            features.append(latent_features(model, images))
            labels.append(labels_matrix(batch_labels))
            rows.append(indices.numpy())
            advance(len(images))
    if not features:
        raise no_usable_images(skipped, f"first {n} images of {dataset.spec}")
    return np.concatenate(features), np.concatenate(labels), np.concatenate(rows), skipped
