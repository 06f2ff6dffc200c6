"""CLI command ``ganinv compare``: every inversion method on one generator, the same images for each; registered on
``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console, err_console, note, print_results_table, seed_option
from ganinv.core.bounds import MAX_BATCH, MAX_OPT_STEPS, MAX_STEPS

app = typer.Typer()


@app.command()
def compare(
    generator: Path = typer.Option(..., help="generator run (gan, dlsgan, bigan, wrapped or stylegan)"),
    data: Optional[str] = typer.Option(None, help="dataset spec: train split for bigan, test split for real images "
                                       "[the generator's]"),
    methods: str = typer.Option("aegan,regression,bigan,optimize,hybrid", help="comma-separated subset of "
                                "aegan, regression, bigan, optimize, hybrid"),
    out: Path = typer.Option(..., "--out", help="folder for runs/, results.json and grid.png (reused if present)"),
    train_steps: int = typer.Option(500, min=1, max=MAX_STEPS, help="training steps of aegan / regression"),
    bigan_steps: int = typer.Option(1000, min=1, max=MAX_STEPS, help="training steps of bigan (G, E and D from "
                                    "scratch)"),
    optimize_steps: int = typer.Option(200, min=1, max=MAX_OPT_STEPS, help="Adam steps of optimisation inversion"),
    optimize_lr: float = typer.Option(0.05, help="Adam lr of optimisation inversion"),
    refine_steps: int = typer.Option(50, min=0, max=MAX_OPT_STEPS, help="optimisation steps the hybrid adds to the "
                                     "encoder"),
    refine_lr: float = typer.Option(0.01, help="Adam lr of the hybrid's refinement"),
    loss: str = typer.Option("bce", help="image loss of optimize / hybrid: bce (eq. 2, the optimisation "
                             "baseline's) | mse | mse+lpips"),
    batch_size: Optional[int] = typer.Option(None, min=1, max=MAX_BATCH, help="training batch size [preset's]"),
    lr: Optional[float] = typer.Option(None, help="training lr [preset's]"),
    n: int = typer.Option(64, min=1, max=MAX_BATCH, help="generated samples to invert"),
    n_real: int = typer.Option(64, min=0, max=MAX_BATCH, help="real test images to invert (at most)"),
    seed: int = seed_option("seed of training and of the generated samples"),
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
    print_results_table(table, title=f"inversion methods on {generator} (same images for every method; bigan: its own G's "
                 "samples)")
    speed = results["summary"].get("speed_ratio")
    if speed:
        console.print(f"time per image, {speed['numerator']} / {speed['denominator']}: {speed['ratio']:.0f}×")
    console.print(f"grid: {out / 'grid.png'}   results: {out / 'results.json'}")
    available, message = lpips_status()
    if not available:
        note(message)
