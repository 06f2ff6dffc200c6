"""CLI command ``ganinv compare``: every inversion method on one generator, the same images for each; registered on
``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ganinv.cli.common import err_console, note, print_results_table, say, seed_option, wrote
from ganinv.core.bounds import MAX_BATCH, MAX_OPT_STEPS, MAX_STEPS

app = typer.Typer()


# compare's flags, one alias each (typer reads them from the annotations), so the signature is a few lines
GeneratorRun = Annotated[Path, typer.Option(help="generator run (gan, dlsgan, bigan, wrapped or stylegan)")]
DataSpec = Annotated[Optional[str], typer.Option(help="dataset spec: train split for bigan, test split for real "
                                                 "images [the generator's]")]
Methods = Annotated[str, typer.Option(help="comma-separated subset of aegan, regression, bigan, optimize, hybrid")]
Out = Annotated[Path, typer.Option("--out", help="folder for runs/, results.json and grid.png (reused if present)")]
TrainSteps = Annotated[int, typer.Option(min=1, max=MAX_STEPS, help="training steps of aegan / regression")]
BiganSteps = Annotated[int, typer.Option(min=1, max=MAX_STEPS, help="training steps of bigan (G, E and D from "
                                         "scratch)")]
OptimizeSteps = Annotated[int, typer.Option(min=1, max=MAX_OPT_STEPS, help="Adam steps of optimisation inversion")]
OptimizeLr = Annotated[float, typer.Option(help="Adam lr of optimisation inversion")]
RefineSteps = Annotated[int, typer.Option(min=0, max=MAX_OPT_STEPS, help="optimisation steps the hybrid adds to the "
                                          "encoder")]
RefineLr = Annotated[float, typer.Option(help="Adam lr of the hybrid's refinement")]
Loss = Annotated[str, typer.Option(help="image loss of optimize / hybrid: bce (eq. 2, the optimisation baseline's) | "
                                   "mse | mse+lpips")]
BatchSize = Annotated[Optional[int], typer.Option(min=1, max=MAX_BATCH, help="training batch size [preset's]")]
Lr = Annotated[Optional[float], typer.Option(help="training lr [preset's]")]
Generated = Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="generated samples to invert")]
Real = Annotated[int, typer.Option(min=0, max=MAX_BATCH, help="real test images to invert (at most)")]
RegressionOption = Annotated[list[str], typer.Option("--regression-option", "-r", help="regression option "
                                                     "KEY=VALUE, repeatable (e.g. -r backbone=resnet18 -r space=w)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Quiet = Annotated[bool, typer.Option(help="no progress bars")]


@app.command()
def compare(generator: GeneratorRun, out: Out, data: DataSpec = None,
            methods: Methods = "aegan,regression,bigan,optimize,hybrid", train_steps: TrainSteps = 500,
            bigan_steps: BiganSteps = 1000, optimize_steps: OptimizeSteps = 200, optimize_lr: OptimizeLr = 0.05,
            refine_steps: RefineSteps = 50, refine_lr: RefineLr = 0.05, loss: Loss = "bce",
            batch_size: BatchSize = None, lr: Lr = None, n: Generated = 64, n_real: Real = 64,
            seed: int = seed_option("seed of training and of the generated samples"), option: RegressionOption = [],
            as_json: AsJson = False, quiet: Quiet = False):
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
    print_results_table(table, title=f"inversion methods on {generator} (same images for every method; bigan: its "
                        "own G's samples)")
    speed = results["summary"].get("speed_ratio")
    if speed:
        say(f"time per image, {speed['numerator']} / {speed['denominator']}: {speed['ratio']:.0f}×")
    wrote(out)  # grid.png, results.json and runs/
    available, message = lpips_status()
    if not available:
        note(message)
