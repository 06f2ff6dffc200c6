"""CLI commands for the baselines: ``ganinv compare`` (every inversion method on one generator) and ``ganinv
wrap`` (bring your own generator as a run directory); registered on ``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import COLUMNS, console, err_console, note
from ganinv.core.errors import GaninvError

app = typer.Typer()


@app.command()
def compare(
    generator: Path = typer.Option(..., help="generator run (gan, dlsgan, bigan or wrapped)"),
    data: Optional[str] = typer.Option(None, help="dataset spec: train split for bigan, test split for real images "
                                       "[the generator's]"),
    methods: str = typer.Option("aegan,regression,bigan,optimize,hybrid", help="comma-separated subset of "
                                "aegan, regression, bigan, optimize, hybrid"),
    out: Path = typer.Option(..., "--out", help="folder for runs/, results.json and grid.png (reused if present)"),
    train_steps: int = typer.Option(500, help="training steps of aegan / regression"),
    bigan_steps: int = typer.Option(1000, help="training steps of bigan (G, E and D from scratch)"),
    optimize_steps: int = typer.Option(200, help="Adam steps of optimisation inversion"),
    optimize_lr: float = typer.Option(0.05, help="Adam lr of optimisation inversion"),
    refine_steps: int = typer.Option(50, help="optimisation steps the hybrid adds to the encoder"),
    refine_lr: float = typer.Option(0.01, help="Adam lr of the hybrid's refinement"),
    loss: str = typer.Option("bce", help="image loss of optimize / hybrid: bce (eq. 2, the optimisation "
                             "baseline's) | mse | mse+lpips"),
    batch_size: Optional[int] = typer.Option(None, help="training batch size [preset's]"),
    lr: Optional[float] = typer.Option(None, help="training lr [preset's]"),
    n: int = typer.Option(64, help="generated samples to invert"),
    n_real: int = typer.Option(64, help="real test images to invert (at most)"),
    seed: int = typer.Option(0, help="seed of training and of the generated samples"),
    option: list[str] = typer.Option([], "--regression-option", "-r", help="regression option KEY=VALUE, "
                                     "repeatable (e.g. -r backbone=resnet18 -r space=w)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    quiet: bool = typer.Option(False, help="no progress bars"),
):
    """Every inversion method on one generator: same generated samples, same real images; one table and a grid."""

    from ganinv.experiments.compare import CompareSettings, parse_methods
    from ganinv.experiments.compare import compare as run_compare
    from ganinv.training.launch import parse_option_strings

    settings = CompareSettings(
        train_steps=train_steps, bigan_steps=bigan_steps, optimize_steps=optimize_steps, optimize_lr=optimize_lr,
        refine_steps=refine_steps, refine_lr=refine_lr, loss=loss, batch_size=batch_size, lr=lr, n_generated=n,
        n_real=n_real, seed=seed, regression_options=parse_option_strings("regression", option))
    log = (lambda m: None) if (quiet or as_json) else (lambda m: err_console.print(f"[dim]{m}[/]"))
    results = run_compare(generator, methods=parse_methods(methods), out=out, data=data, settings=settings,
                          show_progress=not (quiet or as_json), log=log)
    if as_json:
        print(json.dumps(json.loads((out / "results.json").read_text()), indent=2))
        return
    _print_comparison(results, generator, out)


def _print_comparison(results: dict, generator: Path, out: Path) -> None:
    from ganinv.metrics import lpips_status

    table = {name: r for name, r in results.items() if name != "summary"}
    _print_table(table, title=f"inversion methods on {generator} (same images for every method; bigan: its own G's "
                 "samples)")
    speed = results["summary"].get("speed_ratio")
    if speed:
        console.print(f"time per image, {speed['numerator']} / {speed['denominator']}: {speed['ratio']:.0f}×")
    console.print(f"grid: {out / 'grid.png'}   results: {out / 'results.json'}")
    available, message = lpips_status()
    if not available:
        note(message)


def _print_table(results: dict[str, dict], title: str) -> None:
    """The common results table with the loss each method used beside its name (a comparison of inverters that
    minimise different things must say so)."""
    from rich.table import Table

    table = Table(title=title)
    for header in ("method", "loss", "images"):
        table.add_column(header)
    shown = [k for k in COLUMNS if any(k in m for r in results.values() for m in r.values() if isinstance(m, dict))]
    for key in shown:
        table.add_column(COLUMNS[key], justify="right", no_wrap=True)
    for name, result in results.items():
        for split in ("generated", "real"):
            metrics = result.get(split)
            if isinstance(metrics, dict):
                table.add_row(name, result.get("loss", "?"), f"{split} ({metrics.get('n', '?')})",
                              *[f"{metrics[k]:.4f}" if k in metrics else "—" for k in shown])
    console.print(table)
    for name, result in results.items():  # a resnet18 projection network may have started from random init
        init = result.get("backbone_init", "not applicable")
        if not init.startswith("not applicable"):
            console.print(f"{name} backbone: {init}")


@app.command()
def wrap(
    module: str = typer.Option(..., "--generator-module", help="pkg.mod:factory — called with no arguments, returns "
                               "an nn.Module mapping N×latent_dim latents to N×C×H×W images"),
    out: Path = typer.Option(..., "--out", help="generator run directory to create"),
    latent_dim: int = typer.Option(..., help="the module's latent dimension"),
    weights: Optional[Path] = typer.Option(None, "--generator-weights", help="state dict (.safetensors or .pt)"),
    prior: str = typer.Option("uniform", help="latent prior: uniform | normal | uniform_sqrt3"),
    image_range: str = typer.Option("-1,1", help="what the module outputs: -1,1 (tanh) or 0,1 (sigmoid)"),
    width: int = typer.Option(32, help="width of the encoders post-hoc methods will train on it"),
):
    """Bring your own generator: a run directory every post-hoc method accepts (--generator RUN)."""

    from ganinv.inference.wrap import save_wrapped_run, wrap_factory

    try:
        low, high = (float(v) for v in image_range.split(","))
    except ValueError:
        raise GaninvError(f"--image-range must be -1,1 or 0,1, got {image_range!r}") from None
    model = wrap_factory(module, latent_dim=latent_dim, prior=prior, image_range=(low, high), weights=weights,
                         width=width)
    save_wrapped_run(model, out)
    c, s, _ = model.image_shape
    console.print(f"wrapped {module} ({c}×{s}×{s} images, {prior} prior, d={latent_dim}) → {out}; train an "
                  f"inverter with: ganinv train aegan --generator {out} --out RUN")
