"""Reconstruction quality of an InversionModel on generated samples and on real images (AEGAN (Luo et al.) table 1)."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.data import open_dataset
from ganinv.inference.model import InversionModel
from ganinv.methods.base import Method
from ganinv.metrics import reconstruction_metrics

# How many generated samples and real test images a report scores: one number for `ganinv eval`, the demo and the
# evaluations during training, so one run shows one PSNR wherever it is reported.
EVAL_IMAGES = 256


def generated_batch(model: InversionModel, n: int, seed: int = 0) -> Tensor:
    """The same n generated images for every method sharing a generator (a seeded generator, not global RNG)."""
    rng = torch.Generator().manual_seed(seed)
    return model.generate(model.sample(n, generator=rng))


def reconstruction_report(model: InversionModel, images: Tensor) -> tuple[dict[str, float], Tensor]:
    """Metrics of G(invert(x)) against x, plus the wall time of inversion per image (ms)."""
    start = time.perf_counter()
    latents = model.invert(images)
    elapsed = time.perf_counter() - start
    reconstructions = model.generate(latents)
    metrics = reconstruction_metrics(images, reconstructions)
    metrics["invert_ms_per_image"] = 1000.0 * elapsed / max(len(images), 1)
    metrics["n"] = len(images)
    return metrics, reconstructions


def latent_report(model: InversionModel, latents: Tensor, images: Tensor) -> dict[str, float]:
    """Latent-space metrics of generated images whose latents are known: ``Method.latent_metrics`` (e.g. dedgan's
    angle error in degrees); {} for methods that define none."""
    if type(model.method).latent_metrics is Method.latent_metrics:
        return {}  # the default adds nothing: skip the inversion
    with torch.no_grad():
        return model.method.latent_metrics(latents, model.invert(images))


def evaluate(model: InversionModel, *, n_generated: int = EVAL_IMAGES, real: Tensor | None = None, seed: int = 0):
    """{"generated": metrics[, "real": metrics]} — generated samples always, real images when given."""
    latents = model.sample(n_generated, generator=torch.Generator().manual_seed(seed))
    images = model.generate(latents)  # = generated_batch(model, n_generated, seed)
    metrics = reconstruction_report(model, images)[0]
    metrics.update(latent_report(model, latents, images))
    results = {"generated": metrics}
    if real is not None and len(real):
        results["real"] = reconstruction_report(model, real)[0]
    return results


def evaluate_run(run: str | Path, *, data: str | None = None, n: int = EVAL_IMAGES, seed: int = 0) -> dict:
    model = InversionModel.load(run)
    if not model.can_invert:
        raise GaninvError(
            f"{run} is a {model.config.method!r} run with no inverse network; evaluate an inverter trained on it "
            f"(ganinv train aegan --generator {run} --out RUN)"
        )
    real = None
    if data is not None:
        net = model.config.net
        test = open_dataset(data, image_size=net.image_size, channels=net.channels, split="test")
        real, _ = test.tensors(min(n, len(test)))
    results = evaluate(model, n_generated=n, real=real, seed=seed)
    return {"run": str(run), "method": model.config.method, **results}
