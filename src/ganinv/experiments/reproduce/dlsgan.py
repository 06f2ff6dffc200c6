"""DLSGAN — "Dynamic Latent Scale for GAN Inversion" (Cho & Krzyzak): the ablation grid (priors × DLS / no DLS ×
encoder loss on D / DG) with L_enc, differential entropy, PSNR/SSIM of generated and test reconstructions, FD and
KID per epoch (Figs. 1–15), reconstructions (Figs. 11, 16) and the most-important-element traversal (Fig. 17)."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ganinv.apps.edit import top_elements, traverse
from ganinv.experiments.ablation import CELLS, Budget, cell_name, run_ablation
from ganinv.experiments.reproduce.suite import Suite
from ganinv.inference.evaluate import generated_batch
from ganinv.inference.model import InversionModel

BEST = "N-DLS-DG"  # the paper's headline variant (N(0, 1) prior), also the projection part's generator
CONTRAST = "N-noDLS-D"  # ICGAN / Controllable-GAN style encoders, the paper's baseline
TRAVERSED = 3


def cells(s: Suite) -> list[tuple]:
    return [c for c in CELLS if c[0] in s.budget.priors]


def ablation_dir(s: Suite) -> Path:
    return s.out / "dlsgan"


def cell_run(s: Suite, name: str) -> Path:
    return ablation_dir(s) / name


def ablation(s: Suite) -> dict:
    b = s.budget
    budget = Budget(epochs=b.style_epochs, image_size=b.style_size, width=b.style_width, latent_dim=b.style_latent,
                    batch_size=b.style_batch)
    r = run_ablation("dlsgan", data=s.data, out=ablation_dir(s), budget=budget, cells=cells(s), seed=s.seed,
                     fd_samples=b.fd_samples, evals_per_epoch=b.evals_per_epoch, show_progress=s.show_progress,
                     log=s.log, speed=s.speed("dlsgan"))
    figures = []
    for path in r["figures"]:
        name = f"dlsgan-{Path(path).name}"
        shutil.copyfile(path, s.figure(name))
        figures.append(f"{s.figure(name).parent.name}/{name}")
    curves = r["curves"]
    return {"curves": curves, "figures": figures, "reconstructions": reconstruction_figure(s),
            "traversal": traversal_figure(s), "names": [cell_name(*c) for c in cells(s)],
            **{k: r[k] for k in ("fd_name", "kid_name", "fd_real_n", "fd_fake_n") if k in r}}


def reconstruction_figure(s: Suite) -> str:
    """Figs. 11 and 16: generated and test images reconstructed by the best cell and by the paper's baseline."""
    test = s.test_images(s.budget.style_size, n=s.budget.n_figure)
    rows, labels = [], []
    for name in (BEST, CONTRAST):
        model = InversionModel.load(cell_run(s, name))
        generated = generated_batch(model, s.budget.n_figure, s.seed)
        with torch.no_grad():
            rows += [generated, model.reconstruct(generated), test, model.reconstruct(test)]
        labels += [f"{name}: generated", f"{name}: reconstruction", f"{name}: test image",
                   f"{name}: reconstruction"]
    return s.save_grid("dlsgan-fig11-16-reconstructions.png", rows, labels,
                       title="DLSGAN Figs. 11, 16: reconstructions, with DLS and DG vs no DLS and D")


def traversal_figure(s: Suite) -> str:
    """Fig. 17: the elements with the largest latent scale s swept from −2 to 2 (others fixed), best cell."""
    model = InversionModel.load(cell_run(s, BEST))
    elements = top_elements(model, min(TRAVERSED, s.budget.style_latent))
    z = model.sample(1, generator=torch.Generator().manual_seed(s.seed))
    steps = s.budget.n_figure
    images = traverse(model, z, elements, steps=steps)
    scale = model.method.latent_scale
    rows = [images[i * steps:(i + 1) * steps] for i in range(len(elements))]
    labels = [f"element {int(e)} (s={float(scale[int(e)]):.2f})" for e in elements]
    return s.save_grid("dlsgan-fig17-traversal.png", rows, labels,
                       title=f"DLSGAN Fig. 17: the most important elements swept from -2 to 2 ({BEST})")
