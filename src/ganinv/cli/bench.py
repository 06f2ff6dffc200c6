"""``ganinv bench SUITE``: the benchmark suites (ganinv.experiments.bench, .frontier), one subcommand each, registered
on ``cli.app``. Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console, err_console, seed_option, threads_option

app = typer.Typer()
bench_app = typer.Typer(help="Measure one claim and write OUT/SUITE.md (machine, versions, seed and the command at "
                             "the top) with its plots.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

SUITE_HELP = {
    "speed": "inversion by encoder vs optimisation vs hybrid, training steps vs a naive loop, memory, growth",
    "table1": "AEGAN (Luo et al.) table 1: reconstruction by every method on one frozen generator",
    "table2": "AEGAN (Luo et al.) table 2: label similarity of search results",
    "dlsgan": "the DLSGAN (Cho & Krzyzak) ablation grid",
    "scale": "search latency and recall, flat vs IVF, at growing collection sizes",
    "train-speed": "a training step of the cpu-budget nets in fp32 / channels_last / bf16 / compile and their "
                   "combinations, as a fraction of this CPU's matmul peak",
}


def _command() -> str:
    return "ganinv " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(quiet: bool):
    return (lambda m: None) if quiet else (lambda m: err_console.print(f"[dim]{m}[/]"))


def _suite_command(suite: str):
    def command(
        data: Optional[str] = typer.Option(None, help="dataset spec (table1, table2, dlsgan), e.g. mnist"),
        out: Path = typer.Option(Path("bench"), "--out", help="folder for SUITE.md, plots and runs (reused)"),
        quick: bool = typer.Option(False, help="the ≤ 10-minute CPU variant"),
        seed: int = seed_option("seed of every run and sample"),
        quiet: bool = typer.Option(False, help="no progress messages"),
        threads: Optional[int] = threads_option(),
    ):
        from ganinv.core.threads import fix_threads
        from ganinv.experiments.bench import run_suite

        fix_threads(threads)  # before torch starts its thread pool
        result = run_suite(suite, data=data, out=out, quick=quick, seed=seed, command=_command(), log=_log(quiet))
        console.print(result["text"], markup=False, highlight=False)
        console.print(f"report: {result['report']}")

    command.__doc__ = SUITE_HELP[suite][0].upper() + SUITE_HELP[suite][1:] + "."
    return command


for _suite in SUITE_HELP:
    bench_app.command(_suite)(_suite_command(_suite))


@bench_app.command(short_help="Speed against fidelity of every inverter (encoders incl. psp, iterative, hybrid, "
                              "optimisation in z / W / W+, pivotal tuning) with its Pareto front and targets")
def frontier(
    generator: Path = typer.Option(..., help="the generator run (gan, dlsgan, bigan, wrapped, stylegan) every row inverts"),
    data: str = typer.Option(..., help="dataset spec of the real test images, e.g. celeba:PATH"),
    encoders: str = typer.Option(..., help="comma-separated encoder runs of that generator: psp / e4e, aegan, "
                                           "regression, iterative (any -o data=; measured at T = 1…10), or the "
                                           "generator run itself when it inverts (dlsgan, dedgan); each also starts "
                                           "a hybrid, and each run's metrics.jsonl gives its training curves"),
    out: Path = typer.Option(Path("bench"), "--out", help="folder for frontier.md, frontier.json and the plots"),
    budget: str = typer.Option("cpu", help="smoke (tests) | quick (16 images) | cpu (64 images; both: optimisation "
                                           "100/300/1000 steps, tuning 300) | gpu (256 images)"),
    seed: int = seed_option("seed of the generated samples"),
    generated: bool = typer.Option(True, "--generated/--real-only", help="also measure every inverter on as many "
                                   "of the generator's own samples (--real-only: the real test images alone, half the "
                                   "time)"),
    spaces: str = typer.Option("", help="comma-separated spaces to optimise in (z, w, wplus; default: every one the "
                                        "generator has; the reference's, W+ on a style generator, always runs)"),
    quiet: bool = typer.Option(False, help="no progress messages"),
):
    """Speed against fidelity of every inverter on the same real and generated images: encoders, the iterative
    encoder at T = 1…10, hybrid with 10/50/200 steps, optimisation in z (and W, W+ for a style generator) for
    100/300/1000 steps, pivotal tuning; PSNR, SSIM, LPIPS (when its weights are on disk), dHash, ms/image, peak
    memory, and each row as a ratio of the longest W+ optimisation's PSNR and time; a PSNR-against-time plot with its
    Pareto front, each encoder's training curves, 8 test images through every inverter; the issue's three targets
    (single pass ≥ 0.90× PSNR at ≤ 1 % time; iterative/refined ≥ 0.95× at ≤ 5 %; pivotal tuning ≥ +4 dB, with its
    drift), met or missed."""
    from ganinv.experiments.frontier import frontier as run

    runs = [Path(e.strip()) for e in encoders.split(",") if e.strip()]
    result = run(generator, data, out, encoders=runs, budget=budget, seed=seed, command=_command(), log=_log(quiet),
                 generated=generated, spaces=tuple(x.strip() for x in spaces.split(",") if x.strip()) or None)
    console.print(result["text"], markup=False, highlight=False)
    console.print(f"report: {result['report']}")
