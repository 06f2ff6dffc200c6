"""Projection networks — "Unsupervised Projection Networks for Generative Adversarial Networks" (Arfeen & Zhang):
P (a ResNet18) regresses the W latent of the DLSGAN style generator from its samples (§4.1), then is fine-tuned
with λ·MSE reconstruction of real train images added to the latent loss (§4.3, which the paper reports smooths);
super-resolution PSNR against input size (Fig. 3) and Ward clustering of the real test faces with their closest
pairs and clusters (Figs. 7–8), scored by attribute purity against chance.

Two parts: ``projection`` trains P and measures it before the fine-tune (reconstruction, super-resolution,
clustering); ``projection-finetune`` extends the same run by the fine-tune steps and measures it again.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from ganinv.apps.cluster import cluster_dataset, purity
from ganinv.apps.superres import compare as superres_rows
from ganinv.apps.superres import evaluate_superres
from ganinv.core.io import atomic_write
from ganinv.data import open_dataset
from ganinv.experiments.reproduce.dlsgan import BEST, cell_run
from ganinv.experiments.reproduce.suite import Suite
from ganinv.inference.evaluate import evaluate, generated_batch
from ganinv.inference.model import InversionModel
from ganinv.methods.regression import backbone_init

FACTORS = (2, 4, 8)
SHUFFLES = 20
NAMED_ATTRIBUTES = ("Male", "Eyeglasses", "Blond_Hair", "Black_Hair", "Smiling", "Wearing_Hat")  # §4.4's traits


def options(s: Suite) -> dict:
    b = s.budget
    return {"space": "w", "backbone": "resnet18", "recon_weight": b.recon_weight, "recon_images": "real",
            "recon_loss": "mse", "recon_start_step": b.projection_steps}


def train_projection(s: Suite, steps: int):
    generator = cell_run(s, BEST)
    s.log(f"projection network (ResNet18, W space) on the DLSGAN {BEST} generator, {steps} steps")
    return s.trained("regression", s.runs / "projection", steps=steps, generator=generator, data=s.data,
                     options=options(s), train_overrides={"batch_size": s.budget.batch_size, "lr": 5e-4})


def projection(s: Suite) -> dict:
    b = s.budget
    run = train_projection(s, b.projection_steps)
    model = InversionModel.load(run)
    real = s.test_images(b.style_size)
    results = evaluate(model, n_generated=b.n_generated, real=real, seed=s.seed)
    results["sharpness"] = sharpness_of(model, real)
    keep_reconstructions(s, model, real)
    return {**results, "run": str(run), "backbone_init": backbone_init(model.config),
            "superres": superres(s, model, real), "clusters": clusters(s, run)}


def finetune(s: Suite) -> dict:
    b = s.budget
    run = train_projection(s, b.projection_steps + b.finetune_steps)
    model = InversionModel.load(run)
    real = s.test_images(b.style_size)
    results = evaluate(model, n_generated=b.n_generated, real=real, seed=s.seed)
    results["sharpness"] = sharpness_of(model, real)
    return {**results, "run": str(run), "figure": finetune_figure(s, model, real)}


def finetune_figure(s: Suite, model: InversionModel, real: torch.Tensor) -> str:
    """Test faces, P's reconstructions before the fine-tune (kept by ``projection``) and after it."""
    before = torch.load(s.out / "projection" / "before.pt", weights_only=True)  # our own tensor; still never code
    test = real[:s.budget.n_figure]
    with torch.no_grad():
        after = model.reconstruct(test)
    return s.save_grid("projection-fig5-finetune.png", [test, before, after],
                       ["test image", "P before fine-tune", f"P after {s.budget.finetune_steps} fine-tune steps"],
                       title="Projection networks Fig. 5: real-image reconstruction fine-tune (λ·MSE)")


def keep_reconstructions(s: Suite, model: InversionModel, real: torch.Tensor) -> None:
    """The test reconstructions before the fine-tune, for the after-figure (the run's checkpoint moves on)."""
    with torch.no_grad():
        before = model.reconstruct(real[:s.budget.n_figure]).cpu()
    path = s.out / "projection" / "before.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(before, tmp))


def sharpness_of(model: InversionModel, real: torch.Tensor) -> dict[str, float]:
    """Mean variance of the Laplacian (high-frequency energy) of test images and of their reconstructions: the
    paper's "smoothed" made a number."""
    with torch.no_grad():
        recon = model.reconstruct(real)
    return {"test_images": laplacian_variance(real), "reconstructions": laplacian_variance(recon)}


def laplacian_variance(images: torch.Tensor) -> float:
    grey = images.float().mean(1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(grey, kernel).flatten(1).var(1).mean())


def superres(s: Suite, model: InversionModel, real: torch.Tensor) -> dict:
    """Fig. 3: generated (and test) images downsampled ×2, ×4, ×8, projected and regenerated."""
    b = s.budget
    factors = tuple(f for f in FACTORS if b.style_size // f >= 2)
    rows = evaluate_superres(model, real=real, n=b.n_generated, seed=s.seed, sigmas=(), factors=factors)
    clean = generated_batch(model, b.n_figure, s.seed)
    grid, labels = [clean, model.reconstruct(clean)], [f"generated {b.style_size} px", "P, full size"]
    for f in factors:
        images = superres_rows(clean, factor=f, model=model)
        grid += [images["degraded"], images["bicubic"], images["inverted"]]
        labels += [f"input {b.style_size // f} px", "bicubic", f"P from {b.style_size // f} px"]
    figure = s.save_grid("projection-fig3-superres.png", grid, labels,
                         title="Projection networks Fig. 3: super-resolution against input size")
    return {"rows": rows, "factors": list(factors), "figure": figure}


def clusters(s: Suite, run) -> dict:
    """Figs. 7–8: Ward clustering of the projections of every test face; purity per attribute against a chance
    level measured by shuffling the cluster assignments (same cluster sizes)."""
    b = s.budget
    out = s.out / "projection" / "clusters"
    summary = cluster_dataset(run, s.data, b.clusters, out, split="test", n=10**9, show_progress=s.show_progress,
                              log=s.log)
    saved = json.loads((out / "clusters.json").read_text())
    assignments, rows = np.asarray(saved["assignments"]), np.asarray(saved["rows"])
    test = open_dataset(s.data, image_size=b.style_size, channels=s.channels, split="test")
    labels = test.labels.numpy()[rows]
    shuffled = shuffled_purity(assignments, labels, test.label_names, s.seed)
    gains = {name: summary.purity[name]["purity"] - shuffled[name] for name in test.label_names}
    return {"n": summary.n, "k": b.clusters, "sizes": summary.sizes, "silhouette": summary.silhouette,
            "purity": summary.purity, "shuffled_purity": shuffled, "gain": gains,
            "figures": cluster_figures(s, test, assignments, rows, saved["closest_pairs"])}


def shuffled_purity(assignments: np.ndarray, labels: np.ndarray, names: list[str], seed: int) -> dict[str, float]:
    """Mean purity over ``SHUFFLES`` random permutations of the assignments: what clusters of these sizes that
    knew nothing about the faces would score."""
    rng = np.random.default_rng(seed)
    runs = [purity(rng.permutation(assignments), labels, names) for _ in range(SHUFFLES)]
    return {name: float(np.mean([r[name]["purity"] for r in runs])) for name in names}


def cluster_figures(s: Suite, test, assignments: np.ndarray, rows: np.ndarray, pairs: list[dict]) -> list[str]:
    n = s.budget.n_figure
    members = [rows[np.flatnonzero(assignments == c)[:n]] for c in range(assignments.max() + 1)]
    images = [torch.stack([test[int(i)][0] for i in m]) for m in members]
    clusters_png = s.save_grid("projection-fig8-clusters.png", images,
                               [f"cluster {c + 1} ({int((assignments == c).sum())} faces)" for c in range(len(images))],
                               title="Projection networks Fig. 8: Ward clusters of test faces (first members)")
    pair_rows = [torch.stack([test[p[key]][0] for p in pairs[:n]]) for key in ("a", "b")]
    pairs_png = s.save_grid("projection-fig7-closest-pairs.png", pair_rows, ["face", "its closest face"],
                            title="Projection networks Fig. 7: closest pairs (Ward's first merges), one per column")
    return [clusters_png, pairs_png]
