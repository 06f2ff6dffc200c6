"""The ``ganinv`` command line: one module per command group, each command a thin wrapper over a library function.

Exit status (every command):

    0   everything asked for was done
    2   an error of ours (``GaninvError``) or of the operating system (a path that cannot be read or written, a
        full disk): one line on stderr, and nothing is written half-way
    3   done, but some inputs were skipped (unreadable or odd image files): each is named on stderr with its reason
    130 interrupted (Ctrl-C); a training run keeps its last checkpoint

Library imports stay inside the command functions, so ``ganinv --help`` never loads torch.
"""
from __future__ import annotations

import sys
import warnings
from importlib import metadata

import typer

from ganinv.cli import apps, bench, compare, generators, reproduce, train, web
from ganinv.cli.common import EXIT_ERROR, err_console, warn
from ganinv.core.errors import GaninvError, describe_os_error

app = typer.Typer(
    help="GAN inversion: train generators and their inverters, invert images, evaluate, run the demo.",
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
)
for group in (train, generators, apps, compare, reproduce, bench, web):  # the order of `ganinv --help`
    app.add_typer(group.app)


def print_version(asked: bool) -> None:
    if asked:
        # the installed distribution's version (what pip and a bug report see), read without importing torch
        print(f"ganinv {metadata.version('ganinv')}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                      help="print `ganinv X.Y.Z` and exit")) -> None:
    """Options of ``ganinv`` itself (the app's help= above is what ``ganinv --help`` shows)."""


def main() -> None:
    from rich.markup import escape

    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_: warn(str(message))  # one line, not Python's file:line form
            app()
    except GaninvError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_ERROR)
    except OSError as exc:  # a path we could not read or write (permission, full disk, /proc, a symlink loop)
        err_console.print(f"[bold red]error:[/] {escape(describe_os_error(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt as exc:
        err_console.print(escape(interrupted_line(exc)), highlight=False, soft_wrap=True)
        sys.exit(130)
    except SystemExit as exc:  # typer turns Ctrl-C into a silent exit 130: say what the interrupted work kept
        if exc.code == 130:
            err_console.print(escape(interrupted_line(exc)), highlight=False, soft_wrap=True)
        raise
    finally:
        leave_process_group()


def leave_process_group() -> None:
    """Leave the process group ``accelerate launch`` made, when this process joined one: a rank that exits without
    it can abort in the collective library's threads at interpreter shutdown ("terminate called without an active
    exception", SIGABRT) although its work was done. torch is looked up, not imported: without it, no group."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def interrupted_line(exc: BaseException | None) -> str:
    """The message of the KeyboardInterrupt behind ``exc`` (training's says which checkpoint is kept), or the
    generic line."""
    while exc is not None and not isinstance(exc, KeyboardInterrupt):
        exc = exc.__cause__ or exc.__context__
    if exc is not None and str(exc):
        return str(exc)
    return "interrupted; the last checkpoint is kept (continue with --resume)"


if __name__ == "__main__":  # pragma: no cover
    main()
