"""Compare inversion methods on one generator: the same generated samples and the same real test images for
every method (AEGAN (Luo et al.) table 1, extended with the baselines of issue 6).

    compare(generator_run, data="celeba:PATH", methods=["aegan", "regression", "bigan", "optimize", "hybrid"],
            out="cmp/")

What each method name means here:
  aegan       AEGAN trained on the frozen generator (``train_steps``)                      runs/aegan
  regression  the direct / projection network, its options from ``regression_options``      runs/regression
  bigan       BiGAN trained jointly on the data's train split with its own G, same net shape  runs/bigan
              (``bigan_steps``); as the AEGAN paper does for fairness, its "generated" row is its own G's samples
              from the same latent seed
  optimize    optimisation inversion from the prior's mean (``optimize_steps`` Adam steps), no training
  hybrid      the first trained encoder among aegan, regression (aegan trained if neither was asked for) +
              ``refine_steps`` optimisation steps

optimize and hybrid use ``settings.loss``, BCE by default: the optimisation baseline's loss (Creswell & Bharath;
eq. 2 of "Learning Inverse Mapping by AutoEncoder based Generative Adversarial Nets", Luo et al.). Every method's
entry in results.json says which loss it used (``loss``), so a table never leaves it implicit.

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

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import open_dataset
from ganinv.inference.evaluate import generated_batch, reconstruction_report
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import check_settings
from ganinv.methods.regression import RegressionOptions, backbone_init
from ganinv.training.launch import ensure_trained, load_generator_run

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
    refine_lr: float = 0.05  # the optimisation's own (ganinv.inference.hybrid: why)
    loss: str = "bce"  # the image loss of optimize and hybrid: bce (eq. 2, the baseline's) | mse | mse+lpips
    batch_size: int | None = None  # training batch size [the preset's]
    lr: float | None = None  # training lr [the preset's]
    n_generated: int = 64
    n_real: int = 64
    seed: int = 0
    regression_options: dict = field(default_factory=dict)
    precision: str = "no"  # how every run trains (mixed precision, NHWC; compile where the method allows it)
    channels_last: bool = False
    compile: bool = False


def parse_methods(text: str | list[str]) -> list[str]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise GaninvError(f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; choose from "
                          f"{', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def settings_train_overrides(settings: CompareSettings, steps: int) -> dict:
    """The training settings every run of a comparison shares: its batch size and lr, checkpoints four times a run,
    samples and an evaluation at the end."""
    return dict(steps=steps, batch_size=settings.batch_size, lr=settings.lr, checkpoint_every=max(steps // 4, 1),
                sample_every=steps, eval_every=steps, eval_samples=min(64, settings.n_generated),
                precision=settings.precision, channels_last=settings.channels_last, compile=settings.compile)


def trained_model(method: str, out: Path, *, settings: CompareSettings, steps: int, show_progress: bool,
                  log: Callable[[str], None] = lambda m: None, **train_run_kwargs) -> InversionModel:
    """``ensure_trained`` with the comparison's training settings, loaded: the run in ``out`` is reused, resumed
    or trained."""
    ensure_trained(method, out, steps=steps, log=log, seed=settings.seed, show_progress=show_progress,
                   train_overrides=settings_train_overrides(settings, steps), **train_run_kwargs)
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

    Returns {method: {"loss": what it minimised, "generated": metrics, "real": metrics, "run": path or None}, …,
    "summary": {…}}; regression's entry also has ``backbone_init``."""

    methods = parse_methods(methods)
    check_settings(settings.optimize_steps, settings.optimize_lr, settings.loss)
    check_settings(settings.refine_steps, settings.refine_lr, settings.loss)
    gen = load_generator_run(generator)
    data = data or gen.config.data
    if "bigan" in methods and data is None:
        raise GaninvError("bigan trains its own generator on real images: give --data")
    out = Path(out)
    real = real_test_images(data, gen, settings.n_real) if data else None  # opens (and checks) the data first
    models, run_dirs = build_inverters(methods, generator, gen, data=data, runs=out / "runs", settings=settings,
                                       show_progress=show_progress, log=log)
    generated = generated_batch(gen, settings.n_generated, settings.seed)
    warm_up(models, generated)
    results, grid_rows = invert_with_each(methods, models, run_dirs, generated, real, settings, log)
    results["summary"] = summarise(results, methods, generator, data, settings, has_real=real is not None)
    save_png(labelled_grid([r[:GRID_COLUMNS] for r in grid_rows], results["summary"]["grid_rows"],
                           title="originals and each method's reconstructions"), out / "grid.png")
    atomic_write_json(out / "results.json", results)
    return results


def build_inverters(methods: list[str], generator: str | Path, gen: InversionModel, *, data: str | None, runs: Path,
                    settings: CompareSettings, show_progress: bool,
                    log: Callable[[str], None]) -> tuple[dict[str, InversionModel], dict[str, str | None]]:
    """({method: what inverts}, {method: its run directory or None}), training (or reusing) what needs it."""
    models: dict[str, InversionModel] = {}
    run_dirs: dict[str, str | None] = {}
    for name in methods:
        # hybrid refines a trained encoder: aegan is trained for it when no encoder was asked for
        if name in ENCODERS or (name == "hybrid" and not any(m in methods for m in ENCODERS)):
            encoder = name if name in ENCODERS else "aegan"
            if encoder not in models:
                log(f"training {encoder} on {generator} ({settings.train_steps} steps)")
                options = settings.regression_options if encoder == "regression" else None
                models[encoder] = trained_model(encoder, runs / encoder, settings=settings, generator=generator,
                                                steps=settings.train_steps, show_progress=show_progress,
                                                options=options, log=log)
                run_dirs[encoder] = str(runs / encoder)
        if name == "bigan":
            log(f"training bigan on {data} ({settings.bigan_steps} steps, its own generator)")
            models["bigan"] = trained_model("bigan", runs / "bigan", settings=settings, data=data, log=log,
                                            net_overrides=dataclasses.asdict(gen.config.net),
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
    return models, run_dirs


def warm_up_optimiser() -> None:
    """Pay Adam's one-off cost before anything is timed: the first Adam a process builds imports torch's compiler
    module (~13 s measured on a CPU), which would otherwise be charged to the first optimisation inverter timed
    and inflate its time against an encoder's."""
    z = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.Adam([z])
    z.square().sum().backward()
    optimizer.step()


def warm_up(models: dict, images: torch.Tensor) -> None:
    """``warm_up_optimiser``, then every inverter once on 2 images (autograd's and each net's first-call costs),
    untimed; on a forked RNG, so the timed runs draw what they would have drawn without it."""
    with torch.random.fork_rng(devices=[]):
        warm_up_optimiser()
        for model in models.values():
            model.invert(images[:2])


def invert_with_each(methods: list[str], models: dict, run_dirs: dict, generated: torch.Tensor,
                     real: torch.Tensor | None, settings: CompareSettings,
                     log: Callable[[str], None]) -> tuple[dict[str, dict], list[torch.Tensor]]:
    """(results by method, grid rows): every method inverts the same generated and real images. The rows are the
    generated originals and each method's reconstructions, then bigan's own samples and their reconstructions
    (bigan cannot invert another generator's samples fairly), then the real originals and reconstructions."""
    results: dict[str, dict] = {}
    gen_rows, real_rows, own_rows = [generated], [real] if real is not None else [], []
    for name in methods:
        model = models[name]
        log(f"inverting with {name}")
        own = generated_batch(model, settings.n_generated, settings.seed) if name == "bigan" else generated
        metrics_g, recon_g = reconstruction_report(model, own)
        entry = {"loss": method_loss(name, model, settings), "generated": metrics_g, "run": run_dirs[name]}
        if name == "regression":  # the projection network's ResNet18 may have started from random init
            entry["backbone_init"] = backbone_init(model.config)
        if name == "bigan":
            entry["generated_from"] = "bigan's own generator (same latent seed)"
            own_rows += [own, recon_g]
        else:
            gen_rows.append(recon_g)
        if real is not None:
            entry["real"], recon_r = reconstruction_report(model, real)
            real_rows.append(recon_r)
        results[name] = entry
    return results, gen_rows + own_rows + real_rows


def method_loss(name: str, model: InversionModel, settings: CompareSettings) -> str:
    """What the row's inverter minimised, in words: the loss each method was trained or optimised with."""
    if name == "regression":
        return regression_loss(model.method.options)
    return {
        "aegan": "BCE reconstruction through G (trained)",
        "bigan": "adversarial (BiGAN)",
        "optimize": f"{settings.loss} image loss, {settings.optimize_steps} Adam steps",
        "hybrid": f"encoder + {settings.refine_steps} steps of {settings.loss}",
    }[name]


def regression_loss(options: RegressionOptions) -> str:
    """"latent MSE (trained)", plus the §4.3 reconstruction term when the run had one."""
    if not options.recon_weight > 0:
        return "latent MSE (trained)"
    start = f" from step {options.recon_start_step}" if options.recon_start_step else ""
    return (f"latent MSE + {options.recon_weight:g}·{options.recon_loss} recon on {options.recon_images} "
            f"images{start} (trained)")


def summarise(results: dict, methods: list[str], generator, data: str | None, settings: CompareSettings, *,
              has_real: bool) -> dict:
    """What was compared, the grid's row labels, and how many times slower optimisation is than an encoder."""
    summary = {"generator": str(generator), "data": data, "methods": methods, "settings": dataclasses.asdict(settings),
               "grid_rows": ["generated originals"] + [f"{m} (generated)" for m in methods if m != "bigan"]
               + (["bigan's own samples", "bigan (own samples)"] if "bigan" in methods else [])
               + (["real originals"] + [f"{m} (real)" for m in methods] if has_real else [])}
    encoders = [m for m in ("aegan", "regression", "bigan") if m in results]
    if "optimize" in results and encoders:
        opt = results["optimize"]["generated"]["invert_ms_per_image"]
        enc = results[encoders[0]]["generated"]["invert_ms_per_image"]
        summary["speed_ratio"] = {"numerator": f"optimize ({settings.optimize_steps} steps)", "denominator":
                                  encoders[0], "ratio": opt / max(enc, 1e-9)}
    return summary


__all__ = ["compare", "CompareSettings", "parse_methods", "METHODS", "warm_up", "warm_up_optimiser"]
