"""What every command shares: the consoles, the exit statuses, warnings on stderr, the cheap path checks and the
results table. Only typer, rich and core.errors here: library imports stay inside the command functions, so
``ganinv --help`` never loads torch, and a bad path is refused before they run."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
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


THREADS_HELP = ("torch threads on a CPU, for this process and those it starts (as OMP_NUM_THREADS, which is also "
                "read); default: usable cores ÷ processes side by side, minus data-loader workers")


def threads_option():
    """--threads as a default value (``threads: Optional[int] = threads_option()``)."""
    return typer.Option(None, min=1, max=1024, help=THREADS_HELP)


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


# ------------------------------------------------------------------------------------- face alignment (invert, edit)
# One definition of --align / --aligner / --landmarks / --paste-back and of how they combine, for every command that
# reads face photos: ``invert RUN IMAGES`` (and --tune) and ``edit RUN IMAGES``.
class AlignerName(str, Enum):
    auto = "auto"
    haar = "haar"
    ffhq = "ffhq"


def align_option(scope: str, writes: str = ""):
    """--align, ``scope`` saying where it applies (e.g. "with IMAGES") and ``writes`` what it adds to the output."""
    return typer.Option("--align", help=f"{scope}: find each photo's face and cut it as the run's training faces "
                        f"were cut{writes}; a file with no face is named and skipped. Which cut is --aligner's auto "
                        "(said in one line)")


AlignerOpt = Annotated[Optional[AlignerName], typer.Option(
    "--aligner", help="implies --align: haar — OpenCV's Haar face/eye cascades, the aligned-CelebA square (offline); "
    "ffhq — dlib's 68 landmarks and FFHQ's crop (StyleGAN, pSp, e4e; the landmark model is downloaded to "
    "~/.cache/ganinv/dlib/ on first use); auto (--align alone) — haar for a run trained on CelebA, else ffhq when "
    "dlib and its model are here, else haar")]
LandmarksOpt = Annotated[Optional[str], typer.Option(
    "--landmarks", metavar="PATH", help="with --align (implied): an OpenCV LBF facial-landmark model (lbfmodel.yaml) "
    "for better eye centres (needs opencv-contrib-python-headless); with --aligner ffhq: dlib's "
    "shape_predictor_68_face_landmarks.dat")]


def paste_back_option(what: str, where: str):
    """--paste-back: ``what`` is pasted back into each photo, into ``where``."""
    return typer.Option("--paste-back", help=f"with --align: also paste {what} back into its photo (inverse of the "
                        f"alignment, feathered edge): {where}")


def chosen_aligner(align: bool, aligner: AlignerName | None, landmarks) -> str | bool:
    """--align / --aligner / --landmarks as the library takes them: "auto" | "haar" | "ffhq", or False (none)."""
    return aligner.value if aligner is not None else "auto" if align or landmarks is not None else False


def face_alignment(align: bool, aligner: AlignerName | None, landmarks, images) -> str | bool:
    """``chosen_aligner``, its landmark model checked when there are photos to align (without, the library refuses
    --align in one line: nothing to fetch a model for)."""
    chosen = chosen_aligner(align, aligner, landmarks)
    if images:
        check_landmark_model(landmarks, chosen)
    return chosen


def check_landmark_model(landmarks, align: str | bool = False) -> None:
    """A landmark model that cannot be used is refused in one line before the run is loaded: --landmarks' OpenCV
    model, or with --aligner ffhq dlib's (fetched now on first use, or its one line when it cannot be)."""
    if align == "ffhq" or landmarks is not None:
        from ganinv.data.ffhq_align import check_landmark_model as check

        check(align, landmarks, say=note)


# ------------------------------------------------------------------------------------------ tables and outputs
# Every result table goes through ``print_table``: names and numbers are never cut. Piped or redirected (stdout not a
# terminal) a table is plain TSV — a "# title" line, a header row, one row per line, full values; on a terminal it is
# a rich table whose cells fold onto a second line rather than end in "…", with short headers (and a legend where
# a header is abbreviated) so that the usual tables fit 80 columns. ``--json`` prints the same results for programs.
@dataclass(frozen=True)
class Column:
    """A table column: ``name`` (the TSV header: full words), ``short`` (the terminal header; default ``name``),
    ``numeric`` (right-aligned), ``terminal`` (False: a long free-text column a caller explains below the table
    instead, on a terminal only)."""

    name: str
    short: str | None = None
    numeric: bool = False
    terminal: bool = True


def plain_output() -> bool:
    """True when stdout is not a terminal (a pipe, a file, a test's runner): tables are TSV."""
    return not console.is_terminal


def print_table(title: str, columns: list[Column], rows: list[list[str]], legend: list[str] = ()) -> None:
    """One table, TSV when piped and a rich table on a terminal (see above); ``legend``: lines printed under the
    terminal table (abbreviations and the columns left out of it); the TSV has every column and needs none."""
    if plain_output():
        console.file.write(tsv_table(title, [c.name for c in columns], rows))
        console.file.flush()
        return
    shown = [j for j, c in enumerate(columns) if c.terminal]
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for j in shown:
        cells = [str(row[j]) for row in rows]
        table.add_column(Text(columns[j].short or columns[j].name), justify="right" if columns[j].numeric else "left",
                         overflow="fold", min_width=unbroken_width(columns[j], cells))
    for row in rows:
        table.add_row(*(Text(str(row[j])) for j in shown))
    needed = console.measure(table).minimum  # narrower than its minimum, rich would cut cells: let the terminal wrap
    console.print(table, width=max(console.width, needed), crop=False)
    for line in legend:
        say(line)


FOLD_AFTER = 24  # a name longer than this may fold onto the next line on a terminal; a number never does


def unbroken_width(column: Column, cells: list[str]) -> int:
    """The narrowest a column may become on a terminal: its longest number (or header word) whole; in a text column
    its longest word, up to FOLD_AFTER characters (a longer path folds onto more lines, never cut)."""
    words = [w for text in [column.short or column.name, *cells] for w in text.split()]
    longest = max((len(w) for w in words), default=1)
    if column.numeric:
        return max(len(c) for c in cells) if cells else longest
    return min(longest, FOLD_AFTER)


def tsv_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """"# title", the header and the rows, tab-separated; a tab or line break inside a value is written as \\t or
    \\n (as ``display_path`` writes a file name's) so that every row stays one line of as many fields as the
    header."""
    def field(value) -> str:
        return str(value).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    lines = [f"# {field(title)}", "\t".join(map(field, header))] + ["\t".join(map(field, row)) for row in rows]
    return "\n".join(lines) + "\n"


def say(line: str) -> None:
    """A line on stdout as it is: never wrapped at the terminal's width, never read as markup."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def wrote(path) -> None:
    """The one line every command that writes files ends with: "wrote PATH"."""
    say(f"wrote {path}")


OUT_FOLDER = Path("ganinv-out")  # where a command writes when --out is not given (see ``default_out``)
OUT_HELP = "\\[default: ganinv-out/{name}]"  # "\\[": rich would take "[default: …]" for a style


def default_out(command: str, inputs=(), *, mode: str = "", suffix: str = "") -> Path:
    """The output path of a command run without --out: ganinv-out/COMMAND[-MODE][-STEM][SUFFIX] in the current
    folder, STEM the first input's name without its extension (``-and-N-more`` for more inputs). Every character
    but letters, digits and ``._=+-`` becomes ``_``, so the name stays inside ganinv-out/ and types in any shell."""
    inputs = [Path(os.fsdecode(i)) for i in inputs]
    stem = inputs[0].stem if inputs and inputs[0].suffix else (inputs[0].name if inputs else "")
    if len(inputs) > 1:
        stem += f"-and-{len(inputs) - 1}-more"
    parts = [safe_name(part) for part in (command, mode, stem) if part]
    return OUT_FOLDER / ("-".join(parts) + suffix)


def safe_name(text: str, limit: int = 60) -> str:
    name = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)[:limit].strip(".")
    return name or "_"


COLUMNS = {"dhash_similarity": ("dHash similarity", "dHash↑"), "psnr": ("PSNR dB", "PSNR↑"),
           "ssim": ("SSIM", "SSIM↑"), "lpips": ("LPIPS", "LPIPS↓"),
           "angle_error_deg": ("angle error deg", "angle°"),
           "angle_chance_deg": ("chance angle deg", "chance°"), "invert_ms_per_image": ("ms per image", "ms/img")}
RESULTS_LEGEND = ("↑ higher is better, ↓ lower; PSNR in dB; angle°: the latent's angle error in degrees beside "
                  "chance°; ms/img: inversion time per image")


def print_results_table(results: dict[str, dict], title: str) -> None:
    """One row per result and split; a "loss" column when the results say what each method minimised (a comparison
    of inverters that minimise different things must say so: on a terminal, listed under the table)."""
    with_loss = any("loss" in r for r in results.values())
    shown = [k for k in COLUMNS if any(k in m for r in results.values() for m in r.values() if isinstance(m, dict))]
    columns = [Column("run / method"), *([Column("loss", terminal=False)] if with_loss else []), Column("images"),
               Column("n", numeric=True), *(Column(*COLUMNS[k], numeric=True) for k in shown)]
    rows = []
    for name, result in results.items():
        for split in ("generated", "real"):
            metrics = result.get(split)
            if isinstance(metrics, dict):
                loss = [result.get("loss", "?")] if with_loss else []
                rows.append([name, *loss, split, metrics.get("n", "?"),
                             *[f"{metrics[k]:.4f}" if k in metrics else "—" for k in shown]])
    losses = [f"{name} minimised: {r['loss']}" for name, r in results.items() if "loss" in r]
    print_table(title, columns, rows, legend=[*losses, RESULTS_LEGEND])
    for name, result in results.items():  # a resnet18 projection network may have started from random init
        init = result.get("backbone_init", "not applicable")
        if not init.startswith("not applicable"):
            say(f"{name} backbone: {init}")
