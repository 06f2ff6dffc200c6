"""Pivotal tuning of image files — "Pivotal Tuning for Latent-based Editing of Real Images" (Roich, Mokady, Bermano,
Cohen-Or): invert the images to pivots, tune a copy of the run's generator on them (ganinv.inference.tuning), and
write the tuned generator as a run directory that ``reconstruct``, ``superres`` and ``edit`` load by path.

    tune_files(run, ["a.png", "faces/"], "out")     out/tuned-run/, out/before/, out/after/, grid.png, manifest.json
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from torch import Tensor

from ganinv.apps import Warn, progress_bar, read_images, silent
from ganinv.apps.invert import display_name, read_inputs, reconstruction_name, write_aligned
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json, atomic_write_text
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import display_path
from ganinv.inference.model import InversionModel
from ganinv.inference.tuning import (
    BATCH_SIZE,
    DEFAULT_STEPS,
    PAPER,
    PTI_LOCALITY_WEIGHT,
    PTI_LR,
    PTI_PIVOT_LR,
    PTI_PIVOT_STEPS,
    TunedModel,
    check_tuning_settings,
    pivotal_tuning,
)
from ganinv.metrics import psnr

TUNED_RUN = "tuned-run"
GRID_COLUMNS = 16  # grid.png shows the first images; before/ and after/ hold them all


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """What ``tune_files`` did: PSNR before → after per image and on average, the locality drift, where the tuned run
    is (``summary``: all of it as manifest.json records it), the rows written, the files skipped and the pivots."""

    n: int
    tuned_run: str
    psnr_before: list[float]
    psnr_after: list[float]
    mean_psnr_before: float
    mean_psnr_after: float
    locality_drift: float  # G's mean squared change on fresh random latents …
    drift_scale: float  # … and how much G's images differ between two latents
    drift: dict  # PSNR(G, tuned G) on fresh latents and held-out images' pivots (inference.tuning.drift_report)
    pivot_sources: list[str]  # per image: PTI's search or the encoder, whichever reconstructed it better
    summary: dict
    outputs: list[tuple[str, str]]  # (before/NAME.png, after/NAME.png) per row
    skipped: list
    pivots: Tensor

    @classmethod
    def of(cls, summary: dict, **rest) -> TuneResult:
        fields = {f.name for f in dataclasses.fields(cls)} - set(rest) - {"summary"}
        return cls(**{name: summary[name] for name in fields}, summary=summary, **rest)


def tune_files(run: str | Path, images: list[str | Path], out: str | Path, *, steps: int = DEFAULT_STEPS,
               lr: float = PTI_LR, locality_weight: float = PTI_LOCALITY_WEIGHT, refine_steps: int = 0,
               batch_size: int = BATCH_SIZE, seed: int = 0, pivot_steps: int = PTI_PIVOT_STEPS,
               pivot_lr: float = PTI_PIVOT_LR, held_out: list[str | Path] | None = None, warn: Warn = silent,
               show_progress: bool = True, align: bool = False, landmarks: str | Path | None = None) -> TuneResult:
    """Tune one generator on every readable image file and write into ``out``:

        tuned-run/                 the tuned run directory (see ganinv.inference.tuning.save_tuned_run)
        before/NNNNN-NAME.png      the source generator at each pivot (what inversion alone gives)
        after/NNNNN-NAME.png       the tuned generator at each pivot (row-numbered names, as ``ganinv invert``)
        grid.png                   input / before / after, labelled; manifest.json (rows, PSNRs, skipped files, the
                                   tuned run, each pivot's source, the drift) and paths.txt (the inputs, one
                                   printable line each)

    ``held_out``: image files the tuning does not see; the drift is also measured on them (their pivots, found on
    the source generator, through G and the tuned G).

    ``align``: each photo's face is first found and cut to the aligned-CelebA square, as ``ganinv invert --align``
    does (the same aligner and notes; aligned/NNNNN-NAME.png and each alignment in the manifest), and the tuning
    sees the aligned crops; a file without a face is skipped like an unreadable one. ``landmarks``: an OpenCV LBF
    landmark model for better eye centres (implies ``align``).

    Each unreadable file is named through ``warn`` and skipped. Everything is checked before tuning starts; the
    tuned run appears complete or not at all, and manifest.json is written last. Returns a ``TuneResult`` (its
    summary is also in manifest.json)."""
    out = Path(out)
    settings = dict(steps=steps, lr=lr, locality_weight=locality_weight, refine_steps=refine_steps,
                    batch_size=batch_size, seed=seed, pivot_steps=pivot_steps, pivot_lr=pivot_lr)
    check_tuning_settings(**settings)
    if (out / TUNED_RUN).exists():
        raise GaninvError(f"{out / TUNED_RUN} already exists; choose another --out")
    model = InversionModel.load(run)
    read = read_tuning_inputs(images, model.image_shape, align=align or landmarks is not None, landmarks=landmarks,
                              warn=warn)
    batch = read.batch()
    others = read_images(held_out, model.image_shape, warn=warn).batch() if held_out else None
    with progress_bar("pivotal tuning", steps, show_progress) as advance:
        tuned = pivotal_tuning(model, batch, **settings, held_out=others, progress=advance, warn=warn)
    return write_tuning_outputs(out, run, model, read, batch, tuned)


def write_tuning_outputs(out: Path, run: str | Path, model: InversionModel, read, batch: Tensor,
                         tuned) -> TuneResult:
    """The tuned run, before/ and after/ images, the aligned crops, grid.png and — last — manifest.json."""
    before, after = model.generate(tuned.pivots), tuned.pivot_reconstructions()
    tuned_run = tuned.save(out / TUNED_RUN, names=[os.fsdecode(f) for f in read.files], source_run=run)
    rows = write_images(out, read.files, before, after)
    alignments = write_aligned(out, read, batch)  # with align: the crops that were tuned on; without: no record
    summary = tuning_summary(run, tuned, tuned_run, batch, before, after)
    save_png(comparison(batch, before, after, summary, names=[f.name for f in read.files]), out / "grid.png")
    write_manifest(out, read, rows, summary, alignments)
    return TuneResult.of(summary, outputs=rows, skipped=read.skipped, pivots=tuned.pivots)


def read_tuning_inputs(images, shape: tuple[int, int, int], *, align: bool, landmarks, warn: Warn):
    """The files at the run's C×H×W, or (``align``) faces aligned as ``invert --align`` aligns them: read as
    ``ganinv invert`` reads them (ganinv.apps.invert.read_inputs), so the resizing is told in one note for the
    command, not one per image."""
    channels, size, _ = shape
    return read_inputs(images, size, channels, align=align, landmarks=landmarks, warn=warn)


def write_manifest(out: Path, read, rows: list[tuple[str, str]], summary: dict,
                   alignments: list[dict]) -> None:
    """paths.txt, then manifest.json — last: its presence says every output is complete."""
    items = [{"row": row, "input": os.fsdecode(f), "before": b, "after": a, "psnr_before": pb, "psnr_after": pa,
              **alignment}
             for row, (f, (b, a), pb, pa, alignment) in enumerate(zip(read.files, rows, summary["psnr_before"],
                                                                       summary["psnr_after"], alignments))]
    atomic_write_text(out / "paths.txt", "".join(f"{display_path(f)}\n" for f in read.files))
    atomic_write_json(out / "manifest.json", {
        "format": "ganinv-tuned-files", "format_version": 1, **summary, "items": items,
        "skipped": [s.to_json() for s in read.skipped]})


def write_images(out: Path, files: list[Path], before: Tensor, after: Tensor) -> list[tuple[str, str]]:
    """before/NNNNN-NAME.png and after/NNNNN-NAME.png for every row; their names, row by row."""
    rows = []
    for row, f in enumerate(files):
        name = Path(reconstruction_name(row, f)).name  # the row keeps names unique, the stem keeps them readable
        rows.append((f"before/{name}", f"after/{name}"))
        save_png(before[row], out / rows[-1][0])
        save_png(after[row], out / rows[-1][1])
    return rows


def tuning_summary(run: str | Path, tuned: TunedModel, tuned_run: Path, images: Tensor, before: Tensor,
                   after: Tensor) -> dict:
    """PSNR before → after per image and on average, the locality drift and where the tuned run is."""
    psnr_before, psnr_after = psnr(before, images).tolist(), psnr(after, images).tolist()
    return {
        "paper": PAPER, "run": str(run), "tuned_run": str(tuned_run), "n": len(images),
        "psnr_before": psnr_before, "psnr_after": psnr_after,
        "mean_psnr_before": sum(psnr_before) / len(psnr_before), "mean_psnr_after": sum(psnr_after) / len(psnr_after),
        # G's mean squared change on fresh random latents, and how much G's images differ between two latents
        "locality_drift": tuned.locality_drift, "drift_scale": tuned.drift_scale,
        "drift": tuned.drift, "pivot_sources": tuned.pivot_sources,  # PSNR(G, G') off the tuned images; pivots' origin
        "settings": dataclasses.asdict(tuned.settings),
    }


def comparison(images: Tensor, before: Tensor, after: Tensor, summary: dict,
               names: list[str] | None = None) -> Tensor:
    """Input / G(pivot) / tuned G(pivot) rows, a column per file under its name, each PSNR under its image."""
    n = min(len(images), GRID_COLUMNS)
    names = [display_name(f) for f in names] if names is not None else [str(i) for i in range(len(images))]
    captions = [[""] * n, *([f"{p:.2f} dB" for p in summary[key][:n]] for key in ("psnr_before", "psnr_after"))]
    title = (f"pivotal tuning (Roich et al.): mean PSNR {summary['mean_psnr_before']:.1f} -> "
             f"{summary['mean_psnr_after']:.1f} dB" + (f", first {n} of {len(images)}" if len(images) > n else ""))
    return labelled_grid([images[:n], before[:n], after[:n]], ["input", "G(pivot)", "tuned G(pivot)"],
                         column_labels=names[:n], captions=captions, title=title)
