"""Compare inversion methods on one generator: the same generated samples and the same real test images for
every method (seed 001 table 1, extended with the baselines of issue 6).

    compare(generator_run, data="celeba:PATH", methods=["aegan", "regression", "bigan", "optimize", "hybrid"],
            out="cmp/")

What each method name means here:
  aegan       AEGAN trained on the frozen generator (``train_steps``)                      runs/aegan
  regression  the direct / projection network, its options from ``regression_options``      runs/regression
  bigan       BiGAN trained jointly on the data's train split with its own G, same net shape  runs/bigan
              (``bigan_steps``); as seed 001 does for fairness, its "generated" row is its own G's samples
              from the same latent seed
  optimize    optimisation inversion from the prior's mean (``optimize_steps`` Adam steps), no training
  hybrid      the first trained encoder among aegan, regression (aegan trained if neither was asked for) +
              ``refine_steps`` optimisation steps

Trained runs go under ``out/runs/`` and are reused (or resumed) when ``compare`` runs again with the same out.
Writes ``out/results.json`` and ``out/grid.png`` (rows: originals, then each method's reconstructions; generated
samples first, then real images).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganinv.core.config import read_config
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json
from ganinv.core.rundir import finished_step
from ganinv.core.viz import comparison_grid, save_png
from ganinv.data import open_dataset
from ganinv.inference.evaluate import generated_batch, reconstruction_report
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import check_settings
from ganinv.training.launch import load_generator_run, train_run

METHODS = ("aegan", "regression", "bigan", "optimize", "hybrid")
ENCODERS = ("aegan", "regression")
GRID_COLUMNS = 8


@dataclass(frozen=True)
class CompareSettings:
    train_steps: int = 500  # aegan / regression
    bigan_steps: int = 1000
    optimize_steps: int = 200
    optimize_lr: float = 0.05
    refine_steps: int = 50
    refine_lr: float = 0.01
    loss: str = "mse"  # the image loss of optimize and hybrid: mse | bce | mse+lpips
    batch_size: int | None = None  # training batch size [the preset's]
    lr: float | None = None  # training lr [the preset's]
    n_generated: int = 64
    n_real: int = 64
    seed: int = 0
    regression_options: dict = field(default_factory=dict)


def parse_methods(text: str | list[str]) -> list[str]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise GaninvError(f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; choose from "
                          f"{', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def _train(method: str, out: Path, *, settings: CompareSettings, generator=None, data=None, net=None,
           steps: int, options=None, show_progress: bool) -> InversionModel:
    """Train (or resume / reuse) one run under out/runs and load it."""

    train = dict(steps=steps, batch_size=settings.batch_size, lr=settings.lr, checkpoint_every=max(steps // 4, 1),
                 sample_every=steps, eval_every=steps, eval_samples=min(64, settings.n_generated))
    resume = (out / "config.json").is_file()
    if resume and read_config(out).method != method:
        raise GaninvError(f"{out} holds a {read_config(out).method!r} run, not {method!r}; choose another --out")
    done = resume and finished_step(out) >= steps
    if not done:
        train_run(method, out, data=data, generator=generator, seed=settings.seed, resume=resume,
                  show_progress=show_progress, net_overrides=net, train_overrides=train, options=options)
    return InversionModel.load(out)


def real_test_images(data: str, model: InversionModel, n: int) -> torch.Tensor:
    net = model.config.net
    test = open_dataset(data, image_size=net.image_size, channels=net.channels, split="test")
    images, _ = test.tensors(min(n, len(test)))
    return images


def compare(generator: str | Path, *, methods, out: str | Path, data: str | None = None,
            settings: CompareSettings = CompareSettings(), show_progress: bool = True,
            log: Callable[[str], None] = lambda m: None) -> dict:
    """Train what needs training, invert the same images with every method, write results.json and grid.png.

    Returns {method: {"generated": metrics, "real": metrics, "run": path or None}, …, "summary": {…}}."""

    methods = parse_methods(methods)
    check_settings(settings.optimize_steps, settings.optimize_lr, settings.loss)
    check_settings(settings.refine_steps, settings.refine_lr, settings.loss)
    gen = load_generator_run(generator)
    data = data or gen.config.data
    if "bigan" in methods and data is None:
        raise GaninvError("bigan trains its own generator on real images: give --data")
    out = Path(out)
    real = real_test_images(data, gen, settings.n_real) if data else None  # opens (and checks) the data first
    runs = out / "runs"
    net = dataclasses.asdict(gen.config.net)

    models: dict[str, InversionModel] = {}
    run_dirs: dict[str, str | None] = {}
    for name in methods:
        if name in ENCODERS or (name == "hybrid" and not any(m in methods for m in ENCODERS)):
            encoder = name if name in ENCODERS else "aegan"
            if encoder not in models:
                log(f"training {encoder} on {generator} ({settings.train_steps} steps)")
                models[encoder] = _train(encoder, runs / encoder, settings=settings, generator=generator,
                                         steps=settings.train_steps, show_progress=show_progress,
                                         options=settings.regression_options if encoder == "regression" else None)
                run_dirs[encoder] = str(runs / encoder)
        if name == "bigan":
            log(f"training bigan on {data} ({settings.bigan_steps} steps, its own generator)")
            models["bigan"] = _train("bigan", runs / "bigan", settings=settings, data=data, net=net,
                                     steps=settings.bigan_steps, show_progress=show_progress)
            run_dirs["bigan"] = str(runs / "bigan")
        elif name == "optimize":
            models["optimize"] = OptimizingModel(gen, steps=settings.optimize_steps, lr=settings.optimize_lr,
                                                 loss=settings.loss, start="mean")
            run_dirs["optimize"] = None
        elif name == "hybrid":
            start = next(m for m in ENCODERS if m in models)
            models["hybrid"] = with_refinement(models[start], steps=settings.refine_steps, lr=settings.refine_lr,
                                               loss=settings.loss)
            run_dirs["hybrid"] = run_dirs[start]

    generated = generated_batch(gen, settings.n_generated, settings.seed)
    results: dict[str, dict] = {}
    gen_rows, real_rows, own_rows = [generated], [real] if real is not None else [], []
    for name in methods:
        model = models[name]
        log(f"inverting with {name}")
        own = generated_batch(model, settings.n_generated, settings.seed) if name == "bigan" else generated
        metrics_g, recon_g = reconstruction_report(model, own)
        entry = {"generated": metrics_g, "run": run_dirs[name]}
        if name == "bigan":
            entry["generated_from"] = "bigan's own generator (same latent seed)"
            own_rows += [own, recon_g]
        else:
            gen_rows.append(recon_g)
        if real is not None:
            entry["real"], recon_r = reconstruction_report(model, real)
            real_rows.append(recon_r)
        results[name] = entry

    rows = [r[:GRID_COLUMNS] for r in gen_rows + own_rows + real_rows]
    save_png(comparison_grid(rows), out / "grid.png")
    summary = {"generator": str(generator), "data": data, "methods": methods, "settings": dataclasses.asdict(settings),
               "grid_rows": ["generated originals"] + [f"{m} (generated)" for m in methods if m != "bigan"]
               + (["bigan's own samples", "bigan (own samples)"] if "bigan" in methods else [])
               + (["real originals"] + [f"{m} (real)" for m in methods] if real is not None else [])}
    encoders = [m for m in ("aegan", "regression", "bigan") if m in results]
    if "optimize" in results and encoders:
        opt = results["optimize"]["generated"]["invert_ms_per_image"]
        enc = results[encoders[0]]["generated"]["invert_ms_per_image"]
        summary["speed_ratio"] = {"numerator": f"optimize ({settings.optimize_steps} steps)", "denominator":
                                  encoders[0], "ratio": opt / max(enc, 1e-9)}
    results["summary"] = summary
    atomic_write_json(out / "results.json", _jsonable(results))
    return results


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return str(obj)
    return obj


__all__ = ["compare", "CompareSettings", "parse_methods", "METHODS"]
