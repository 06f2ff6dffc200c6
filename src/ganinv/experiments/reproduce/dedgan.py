"""The direction-embedding discriminator GAN — "Inverting generator of GAN through direction embedding
discriminator" (Cho): reconstruction of generated and test images (Figs. 3–4) with PSNR/SSIM and the angle
error between the latent's and the embedding's directions, beside its chance level."""
from __future__ import annotations

import torch

from ganinv.experiments.reproduce.suite import Suite
from ganinv.inference.evaluate import evaluate, generated_batch
from ganinv.inference.model import InversionModel


def steps(s: Suite) -> int:
    """The same number of epochs as each DLSGAN cell, at the same batch size."""
    return s.budget.style_epochs * (s.train_size(s.budget.style_size) // s.budget.style_batch)


def dedgan(s: Suite) -> dict:
    b, n_steps = s.budget, steps(s)
    # the paper switches λ_emb from 1 to 10 "after some training": here half-way through the run
    switch = n_steps // 2
    s.log(f"direction-embedding GAN {b.style_size} px, width {b.style_width}, {b.style_latent - 1} angles, "
          f"{n_steps} steps (λ_emb 1 → 10 at step {switch})")
    run = s.trained("dedgan", s.runs / "dedgan", steps=n_steps, data=s.data, preset="small",
                    net_overrides={"image_size": b.style_size, "width": b.style_width,
                                   "latent_dim": b.style_latent - 1, "prior": "spherical"},
                    train_overrides={"batch_size": b.style_batch}, options={"lambda_switch_step": switch})
    model = InversionModel.load(run)
    real = s.test_images(b.style_size)
    results = evaluate(model, n_generated=b.n_generated, real=real, seed=s.seed)
    return {**results, "run": str(run), "steps": n_steps, "lambda_switch_step": switch,
            "figure": figure(s, model, real)}


def figure(s: Suite, model: InversionModel, real: torch.Tensor) -> str:
    generated = generated_batch(model, s.budget.n_figure, s.seed)
    test = real[:s.budget.n_figure]
    with torch.no_grad():
        rows = [generated, model.reconstruct(generated), test, model.reconstruct(test)]
    return s.save_grid("dedgan-fig3-4-reconstructions.png", rows,
                       ["generated", "reconstruction", "test image", "reconstruction"],
                       title="Direction-embedding GAN Figs. 3-4: reconstructions of generated and test images")
