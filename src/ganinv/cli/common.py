"""What every command shares: the consoles, the exit statuses, warnings on stderr, the cheap path checks and the
results table. Only typer, rich and core.errors here: library imports stay inside the command functions, so
``ganinv --help`` never loads torch, and a bad path is refused before they run."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from ganinv.core import names
from ganinv.core.bounds import MAX_SEED, check_memory, image_bytes
from ganinv.core.errors import GaninvError

console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 2
EXIT_SKIPPED = 3  # finished, but some inputs were skipped and named on stderr


def exit_if_skipped(skipped: int) -> None:
    """End a command that read user files: status 3 when any was skipped (each already named on stderr)."""
    if skipped:
        err_console.print(f"[yellow]note:[/] {skipped} input(s) skipped (named above); exit status {EXIT_SKIPPED}")
        raise typer.Exit(EXIT_SKIPPED)


RUN_CONFIG = "config.json"  # core.rundir.CONFIG, spelled out: importing core.rundir loads torch
PATH_SPECS = {"folder": "image folder", "celeba": "CelebA folder"}  # the dataset specs that name a path


def check_paths(*, runs=(), data: str | None = None, images=()) -> None:
    """Refuse a path a command needs but cannot have, in one line, before the command's deferred imports (torch and
    its friends take seconds): a run directory that is missing or holds no run, a --data folder that is missing,
    a missing image. ``None`` entries are skipped. Only what is cheap is checked here; the library checks the rest
    (and again, since a path can change between the two)."""
    for run in runs:
        if run is not None:
            _check_run(Path(run))
    if data is not None:
        _check_data(data)
    for image in images:
        if not os.path.lexists(image):
            raise GaninvError(f"image not found: {image}")


def _check_run(run: Path) -> None:
    if not os.path.lexists(run):
        raise GaninvError(f"run directory {run} does not exist")
    if run.is_dir() and not (run / RUN_CONFIG).is_file():
        raise GaninvError(f"{run} is not a ganinv run directory (no {RUN_CONFIG})")


def _check_data(spec: str) -> None:
    kind, sep, raw = spec.strip().partition(":")
    what = PATH_SPECS.get(kind.lower())
    if what is None or not sep or not raw.strip():
        return  # mnist, digits, or a malformed spec: open_dataset explains those
    path = os.path.expanduser(raw.strip())
    if not os.path.lexists(path):
        raise GaninvError(f"{what} not found: {path} (--data {spec})")
    if os.path.exists(path) and not os.path.isdir(path):
        raise GaninvError(f"{what} {path} is a file, not a folder (--data {spec})")


# ------------------------------------------------------------------------------------------ names at parse time
# A name outside an option's set (``ganinv.core.names``), refused as the library words it: one error line, exit 2
REFUSALS: dict[type[Enum], str] = {
    names.MethodName: "unknown method {value!r}; choose one of {choices}",
    names.SpaceName: "--space {value}: the space must be one of {choices}",
    names.PriorName: "--prior must be one of {choices}, got {value!r}",
    names.PresetName: "unknown preset {value!r}; choose one of {choices}",
    names.Precision: "--precision must be one of {choices}, got {value!r}",
    names.DeviceName: "--device must be one of {choices}, got {value!r}",
    names.Split: "--split must be one of {choices}, got {value!r}",
    names.Tracker: "--log-with {value!r}: choose one of {choices}",
    names.RefineLoss: "--refine-loss must be one of {choices}, got {value!r}",
    names.EncoderTarget: "encoder_loss_on must be one of {choices}, got {value!r}",
}


def _named(process_value, enum: type[Enum], ctx, value):
    """A parameter's own processing, after refusing a name outside ``enum`` in REFUSALS' words; the command gets the
    plain name (a ``str``), as config.json and the library's messages spell it."""
    if isinstance(value, str) and not isinstance(value, Enum) and value not in {m.value for m in enum}:
        raise GaninvError(REFUSALS[enum].format(value=value, choices=names.listed(enum)))
    value = process_value(ctx, value)
    return value.value if isinstance(value, Enum) else value


class GaninvCommand(TyperCommand):
    """A command whose ``StrEnum``-typed parameters (``ganinv.core.names``) are checked when the command line is
    parsed — typer lists their choices in ``--help`` — and refused in one ``error:`` line in the library's words
    rather than typer's usage box. The command receives the plain name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            enum = param.type_descriptor.annotation
            if enum in REFUSALS:
                param.process_value = partial(_named, param.process_value, enum)


# ------------------------------------------------------------------------------------------ exclusive modes
@dataclass(frozen=True)
class Modes:
    """A command's mutually exclusive modes, declared: how the user selects each (``labels``), which mode a parsed
    command line is in (``select``), and the modes each mode-specific parameter works in (``flags``). A parameter
    given on the command line outside its modes is refused when the command line is parsed, in one line:
    "--FLAG works on MODE, not with MODE" — or in ``says``' words for that parameter."""

    labels: dict[str, str]
    select: Callable[[dict], str]
    flags: dict[str, tuple[str, ...]]
    says: dict[str, str] = field(default_factory=dict)

    def check(self, ctx) -> str:
        """The mode of ``ctx``'s parsed parameters, after refusing any flag given outside its modes."""
        mode = self.select(ctx.params)
        flags = {param.name: param.opts[0] for param in ctx.command.params}
        for name, modes in self.flags.items():
            given = ctx.get_parameter_source(name).name in ("COMMANDLINE", "ENVIRONMENT")
            if given and mode not in modes:
                flag = flags[name]
                where = " / ".join(self.labels[m] for m in modes)
                raise GaninvError(self.says.get(name, f"{flag} works on {where}, not with {self.labels[mode]}"))
        return mode


class ModalCommand(GaninvCommand):
    """A command with exclusive modes (``modes``, set by a subclass): checked when the command line is parsed."""

    modes: Modes

    def parse_args(self, ctx, args):
        rest = super().parse_args(ctx, args)
        if not ctx.resilient_parsing:
            self.modes.check(ctx)
        return rest


# ------------------------------------------------------------------------------------------ bounds at parse time
def seed_option(help: str):
    """--seed, bounded at parse time to what every consumer takes (numpy and scikit-learn: 0..2**32-1)."""
    return typer.Option(0, min=0, max=MAX_SEED, help=help)


def at_most(limit: int, why: str):
    """A typer callback refusing a value above ``limit`` at parse time, saying why (typer's own max says only that
    it is too large)."""
    def check(value):
        if value is not None and value > limit:
            raise typer.BadParameter(f"at most {limit} ({why}), got {value}")
        return value

    return check


def check_images_fit(run: Path, n: int, copies: int, what: str, advice: str) -> None:
    """Refuse in one line, before the heavy imports, a request for ``n`` images of RUN's size that would not fit in
    memory (``copies`` batches of them live at once). Read from config.json with json alone; a file that cannot be
    read is left to the library, which names what is wrong with it."""
    try:
        net = json.loads((Path(run) / RUN_CONFIG).read_text(encoding="utf-8"))["net"]
        side, channels = int(net["image_size"]), int(net["channels"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if 0 < side <= 65_536 and 0 < channels <= 4:
        check_memory(image_bytes(n, channels, side, copies), f"{what} ({n} images of {side} px)", advice)


def warn(message: str) -> None:
    """One line on stderr whatever the terminal's width; a file name in it is never read as markup."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    err_console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


COLUMNS = {"dhash_similarity": "dHash sim ↑", "psnr": "PSNR dB ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓",
           "angle_error_deg": "angle err °", "angle_chance_deg": "chance °", "invert_ms_per_image": "ms/image"}


def print_results_table(results: dict[str, dict], title: str) -> None:
    """One row per result and split; a "loss" column when the results say what each method minimised (a comparison
    of inverters that minimise different things must say so)."""
    table = Table(title=title)
    with_loss = any("loss" in r for r in results.values())
    for header in ("run / method", *(["loss"] if with_loss else []), "images"):
        table.add_column(header, no_wrap=header == "images")
    shown = [k for k in COLUMNS if any(k in m for r in results.values() for m in r.values() if isinstance(m, dict))]
    for key in shown:
        table.add_column(COLUMNS[key], justify="right", no_wrap=True)
    for name, result in results.items():
        for split in ("generated", "real"):
            metrics = result.get(split)
            if isinstance(metrics, dict):
                loss = [result.get("loss", "?")] if with_loss else []
                table.add_row(name, *loss, f"{split} ({metrics.get('n', '?')})",
                              *[f"{metrics[k]:.4f}" if k in metrics else "—" for k in shown])
    console.print(table)
    for name, result in results.items():  # a resnet18 projection network may have started from random init
        init = result.get("backbone_init", "not applicable")
        if not init.startswith("not applicable"):
            console.print(f"{name} backbone: {init}")
