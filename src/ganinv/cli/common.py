"""What every command shares: the consoles, the exit statuses, warnings on stderr and the results table.
Only typer and rich here: library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 2
EXIT_SKIPPED = 3  # finished, but some inputs were skipped and named on stderr


def exit_if_skipped(skipped: int) -> None:
    """End a command that read user files: status 3 when any was skipped (each already named on stderr)."""
    if skipped:
        err_console.print(f"[yellow]note:[/] {skipped} input(s) skipped (named above); exit status {EXIT_SKIPPED}")
        raise typer.Exit(EXIT_SKIPPED)


def warn(message: str) -> None:
    """One line on stderr whatever the terminal's width; a file name in it is never read as markup."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    err_console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


COLUMNS = {"dhash_similarity": "dHash sim ↑", "psnr": "PSNR dB ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓",
           "angle_error_deg": "angle err °", "angle_chance_deg": "chance °", "invert_ms_per_image": "ms/image"}


def print_results_table(results: dict[str, dict], title: str) -> None:
    table = Table(title=title)
    table.add_column("run / method")
    table.add_column("images", no_wrap=True)
    shown = [k for k in COLUMNS if any(k in m for r in results.values() for m in r.values() if isinstance(m, dict))]
    for key in shown:
        table.add_column(COLUMNS[key], justify="right", no_wrap=True)
    for name, result in results.items():
        for split in ("generated", "real"):
            metrics = result.get(split)
            if isinstance(metrics, dict):
                table.add_row(name, f"{split} ({metrics.get('n', '?')})",
                              *[f"{metrics[k]:.4f}" if k in metrics else "—" for k in shown])
    console.print(table)
