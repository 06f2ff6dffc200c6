"""The direction-embedding discriminator GAN — "Inverting generator of GAN through direction embedding
discriminator" (Cho): reconstruction of generated and test images (Figs. 3–4) with PSNR/SSIM and the angle
error between the latent's and the embedding's directions, beside its chance level.

Two budgets, so that a verdict says whether training longer moves the angle: a short run of ``style_epochs`` (as
many as each DLSGAN cell) and a long one of ``dedgan_epochs``; the angle error of each against its steps (the train
log's ``angle_deg`` and ``angle_chance_deg``) is drawn in one figure. The verdict is the long run's."""
from __future__ import annotations

import json

import torch

from ganinv.core.rundir import METRICS
from ganinv.experiments.reproduce.suite import Suite
from ganinv.inference.evaluate import evaluate, generated_batch
from ganinv.inference.model import InversionModel


def steps(s: Suite, epochs: int | None = None) -> int:
    """``epochs`` (default: as many as each DLSGAN cell) at the DLSGAN cells' batch size."""
    return (epochs or s.budget.style_epochs) * (s.train_size(s.budget.style_size) // s.budget.style_batch)


def dedgan(s: Suite) -> dict:
    short = trained_and_evaluated(s, "dedgan-short", steps(s))
    long = trained_and_evaluated(s, "dedgan", steps(s, s.budget.dedgan_epochs))
    model = InversionModel.load(long["run"])
    return {**long, "short": short, "figure": figure(s, model, s.test_images(s.budget.style_size)),
            "curves": curve_figure(s, {"short": short, "long": long})}


def trained_and_evaluated(s: Suite, name: str, n_steps: int) -> dict:
    b = s.budget
    # the paper switches λ_emb from 1 to 10 "after some training": here half-way through the run
    switch = n_steps // 2
    s.log(f"direction-embedding GAN ({name}) {b.style_size} px, width {b.style_width}, {b.style_latent - 1} angles, "
          f"{n_steps} steps (λ_emb 1 → 10 at step {switch})")
    run = s.trained("dedgan", s.runs / name, steps=n_steps, data=s.data, preset="small",
                    net_overrides={"image_size": b.style_size, "width": b.style_width,
                                   "latent_dim": b.style_latent - 1, "prior": "spherical"},
                    train_overrides={"batch_size": b.style_batch}, options={"lambda_switch_step": switch})
    model = InversionModel.load(run)
    results = evaluate(model, n_generated=b.n_generated, real=s.test_images(b.style_size), seed=s.seed)
    return {**results, "run": str(run), "steps": n_steps, "lambda_switch_step": switch,
            "angle_curve": angle_curve(run)}


def angle_curve(run) -> list[tuple[int, float, float]]:
    """(step, angle_deg, angle_chance_deg) of every train line of the run's metrics.jsonl."""
    lines = (json.loads(line) for line in (run / METRICS).read_text().splitlines() if line.strip())
    return [(d["step"], d["angle_deg"], d["angle_chance_deg"]) for d in lines
            if d.get("kind") == "train" and "angle_deg" in d]


def smoothed(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` log lines (each line is one batch's angle: noisy)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def curve_figure(s: Suite, runs: dict[str, dict]) -> str:
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, r in runs.items():
        xs, angle, chance = zip(*r["angle_curve"]) if r["angle_curve"] else ((), (), ())
        ax.plot(xs, smoothed(list(angle), 20), label=f"{label} run ({r['steps']} steps): angle error")
        ax.axvline(r["lambda_switch_step"], ls=":", lw=0.8, color=ax.lines[-1].get_color())
    if chance:
        ax.axhline(sum(chance) / len(chance), color="k", ls="--", lw=1, label="chance (best constant guess)")
        ax.axhline(sum(chance) / len(chance) / 2, color="grey", ls="--", lw=1, label="half chance")
    ax.set(xlabel="training step (dotted: λ_emb 1 → 10)", ylabel="angle ∠(z_c, D(G(z))) in degrees",
           title="Direction-embedding GAN: angle error of the training batches (mean of 20 log lines)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = s.figure("dedgan-angle-vs-steps.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"{path.parent.name}/{path.name}"


def figure(s: Suite, model: InversionModel, real: torch.Tensor) -> str:
    generated = generated_batch(model, s.budget.n_figure, s.seed)
    test = real[:s.budget.n_figure]
    with torch.no_grad():
        rows = [generated, model.reconstruct(generated), test, model.reconstruct(test)]
    return s.save_grid("dedgan-fig3-4-reconstructions.png", rows,
                       ["generated", "reconstruction", "test image", "reconstruction"],
                       title="Direction-embedding GAN Figs. 3-4: reconstructions of generated and test images")
