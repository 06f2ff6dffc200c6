"""``ganinv reproduce``: the four papers' claims on CelebA in one resumable command.

    reproduce("celeba:PATH", "DIR", budget="cpu")

runs, in order, each part once (a rerun with the same DIR skips finished parts and resumes the sub-run that was
interrupted): AEGAN Table 1, Table 2 and Fig. 5 (``aegan``); the DLSGAN ablation grid (``dlsgan``); the
direction-embedding GAN (``dedgan``); the projection network and its real-image fine-tune (``projection``). It
writes ``DIR/progress.json`` as it goes and ``DIR/reproduction.md`` (a verdict row per claim, then the tables)
with labelled figures under ``DIR/reproduction/``. Budgets: ``suite.BUDGETS``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json, make_dir
from ganinv.data import open_dataset
from ganinv.experiments.reproduce import aegan, dedgan, dlsgan, projection
from ganinv.experiments.reproduce.jobs import run_jobs
from ganinv.experiments.reproduce.report import write_report
from ganinv.experiments.reproduce.suite import BUDGETS, FIGURES, Budget, Progress, Suite, budget_named

PARTS: list[tuple[str, Callable[[Suite], dict]]] = [
    ("aegan-table1", aegan.table1), ("aegan-table2", aegan.table2), ("aegan-superres", aegan.superres),
    ("dlsgan", dlsgan.ablation), ("dedgan", dedgan.dedgan),
    ("projection", projection.projection), ("projection-finetune", projection.finetune),
]


def reproduce(data: str, out: str | Path, *, budget: str = "cpu", seed: int = 0, show_progress: bool = False,
              log: Callable[[str], None] = print, command: str = "", parts: list[str] | None = None,
              jobs: int = 1) -> Path:
    """Run (or continue) every part — or only ``parts`` — then write the report of what is finished; returns the
    path of reproduction.md. ``jobs`` > 1: the unfinished parts in that many processes at once (``jobs.run_jobs``:
    dependent parts together, each process with its share of the cores)."""
    check_data(data)
    chosen = check_parts(parts)
    if jobs > 1:
        todo = {p for p in chosen if not (Path(out) / "results" / f"{p}.json").is_file()}
        run_jobs(["--data", data, "--out", str(out), "--budget", budget, "--seed", str(seed)], Path(out), todo, jobs,
                 log)
    suite = Suite(data=data, out=Path(out), budget=budget_named(budget), seed=seed, log=log,
                  show_progress=show_progress, command=command)
    make_dir(suite.out / FIGURES)
    make_dir(suite.out / "results")
    progress = Progress(suite, [name for name, _ in PARTS])
    results = {}
    for i, (name, part) in enumerate(PARTS, start=1):
        path = suite.results_path(name)
        if path.is_file():
            log(f"[{i}/{len(PARTS)}] {name}: finished earlier")
        elif name in chosen:
            log(f"[{i}/{len(PARTS)}] {name}")
            started = progress.start(name)
            atomic_write_json(path, part(suite))
            progress.finish(name, started)
        if path.is_file():
            results[name] = suite.result(name)
    write_report(suite, results, progress.read() or progress.state)
    log(f"wrote {suite.out / 'reproduction.md'}")
    return suite.out / "reproduction.md"


def check_parts(parts: list[str] | None) -> set[str]:
    names = [name for name, _ in PARTS]
    unknown = sorted(set(parts or []) - set(names))
    if unknown:
        raise GaninvError(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(names)}")
    return set(parts) if parts else set(names)


def check_data(data: str) -> None:
    """CelebA with its attributes and both splits, checked before anything is written."""
    if not data.startswith("celeba:"):
        raise GaninvError(f"--data must be celeba:PATH (the papers' faces and their 40 attributes), got {data!r}")
    for split in ("train", "test"):
        open_dataset(data, image_size=16, channels=3, split=split)


__all__ = ["reproduce", "BUDGETS", "Budget", "PARTS"]
