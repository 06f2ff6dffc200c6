"""``ganinv reproduce``: the four papers' claims on CelebA (ganinv.experiments.reproduce), registered on ``cli.app``.
Library imports stay inside the command function, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console, err_console, seed_option, threads_option

app = typer.Typer()


def timestamped(message: str) -> None:
    """One progress line on stderr, timestamped and flushed, readable in a terminal and in a log file alike."""
    err_console.print(f"{time.strftime('%H:%M:%S')} {message}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def reproduce(
    data: str = typer.Option(..., help="celeba:PATH — PATH/img_align_celeba/, list_attr_celeba.txt "
                                       "[, list_eval_partition.txt]"),
    out: Path = typer.Option(..., "--out", help="folder for the runs, progress.json, reproduction.md and its "
                                                "figures; run the same command again to continue"),
    budget: str = typer.Option("cpu", help="smoke (a minute, for tests) | cpu (≤ 150 min on 2 cores) | gpu "
                                           "(the papers' sizes, ~10 min on an H100) | full (the papers' epochs)"),
    seed: int = seed_option("seed of every run and sample"),
    parts: str = typer.Option("", help="only these parts, comma-separated: aegan-table1, aegan-table2, "
                                       "aegan-superres, dlsgan, dedgan, projection, projection-finetune (default: all). To run "
                                       "parts in several processes at once use --jobs (each gets its share of the "
                                       "cores), or give each process --threads cores÷N"),
    jobs: int = typer.Option(1, min=1, max=3, help="run the parts in this many processes at once (dependent parts "
                                                   "stay together), each with usable cores ÷ N torch threads; their "
                                                   "logs in OUT/jobs/"),
    threads: Optional[int] = threads_option(),
):
    """Reproduce AEGAN (Luo et al.), DLSGAN (Cho & Krzyzak), the direction-embedding GAN (Cho) and projection
    networks (Arfeen & Zhang) on CelebA: train on the train split, evaluate on the test split, and write
    OUT/reproduction.md — one verdict row per claim (reproduced / partly / refuted), then the tables and labelled
    figures. Resumable at any point; progress in OUT/progress.json and on stderr."""

    from ganinv.core.threads import fix_threads
    from ganinv.experiments.reproduce import reproduce as run

    fix_threads(threads)  # before torch starts its thread pool

    command = "ganinv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    chosen = [p.strip() for p in parts.split(",") if p.strip()] or None
    report = run(data, out, budget=budget, seed=seed, show_progress=True, log=timestamped, command=command,
                 parts=chosen, jobs=jobs)
    console.print(f"report: {report}")
