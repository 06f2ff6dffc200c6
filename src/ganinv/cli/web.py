"""``ganinv serve``: the web page over a run; registered on ``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console, err_console

app = typer.Typer()


@app.command()
def serve(
    run: Path = typer.Argument(..., help="run directory (an inverter: aegan, regression, dlsgan, …; a generator-only "
                               "run inverts by optimisation)"),
    index: Optional[Path] = typer.Option(None, "--index", help="index directory built from this run (`ganinv index`): "
                                         "adds the Search tab and attribute sliders on labelled data"),
    port: int = typer.Option(7860, min=1, max=65535, help="port to listen on"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback exposes the page (a warning "
                             "is printed)"),
    # web.widgets.KEEP_RESULTS, MIN_KEEP_RESULTS, MAX_RESULT_MB and web.page.MIN_RESULT_MB, written out (importing
    # them would load gradio for --help)
    keep_results: int = typer.Option(1000, "--keep-results", min=128, help="result images kept on disk for the page "
                                     "to serve; older ones are deleted, but none younger than 10 minutes"),
    max_results_mb: int = typer.Option(512, "--max-results-mb", min=16, help="disk the result images younger than "
                                       "10 minutes may fill; beyond it new requests are refused with a message"),
):
    """Serve a web page over the run: reconstruct, search, super-resolve, edit and sample, in the browser.

    One model call runs at a time (the page queues the others), so that call has every core: torch keeps its
    default threads (or OMP_NUM_THREADS) and the server's own threads only wait on the network."""

    from ganinv.web import serve as serve_web  # through web/__init__: its settings, then gradio or one line

    serve_web(run, index=index, host=host, port=port, keep_results=keep_results, max_results_mb=max_results_mb,
              warn=lambda m: err_console.print(f"[bold yellow]warning:[/] {m}", highlight=False, soft_wrap=True),
              log=lambda m: console.print(m, highlight=False, soft_wrap=True))
