"""``ganinv bench SUITE``: the benchmark suites (ganinv.experiments.bench), registered on ``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console, err_console

app = typer.Typer()


@app.command()
def bench(
    suite: str = typer.Argument(..., help="speed | table1 | table2 | dlsgan | scale"),
    data: Optional[str] = typer.Option(None, help="dataset spec (table1, table2, dlsgan), e.g. mnist"),
    out: Path = typer.Option(Path("bench"), "--out", help="folder for SUITE.md, plots and runs (reused)"),
    quick: bool = typer.Option(False, help="the ≤ 10-minute CPU variant"),
    seed: int = typer.Option(0, help="seed of every run and sample"),
    quiet: bool = typer.Option(False, help="no progress messages"),
):
    """Measure one suite and write OUT/SUITE.md (machine, versions, seed and this command at the top)."""

    from ganinv.experiments.bench import run_suite

    command = "ganinv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log = (lambda m: None) if quiet else (lambda m: err_console.print(f"[dim]{m}[/]"))
    result = run_suite(suite, data=data, out=out, quick=quick, seed=seed, command=command, log=log)
    console.print(result["text"], markup=False, highlight=False)
    console.print(f"report: {result['report']}")
