"""Inverting image files and whole collections: ``ganinv invert RUN IMAGES… --out DIR`` and ``ganinv invert RUN
--data SPEC --out DIR`` (the second streams to resumable latent shards: see ``ganinv.apps.collection``)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from ganinv.apps.collection import invert_collection
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write, atomic_write_json, atomic_write_text
from ganinv.core.viz import comparison_grid, save_png
from ganinv.data import display_path, read_image_files
from ganinv.inference.hybrid import REFINE_LR, OptimizingModel
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import check_settings
from ganinv.methods.spaces import latent_space, run_space


def invert_files(run: str | Path, images: list[str | Path], out: str | Path,
                 warn: Callable[[str], None] = lambda m: None, *, refine: int = 0, refine_lr: float | None = None,
                 refine_loss: str = "mse", space: str | None = None) -> dict:
    """Invert image files: latents.npy (row i = the i-th readable file), reconstructions/NNNNN-NAME.png (numbered by
    row, so two inputs named x.png never collide), manifest.json (each row's exact input path and output, and the
    skipped files with their reasons), paths.txt (the inputs, one printable line each) and grid.png.

    Each unreadable file is named through ``warn`` and skipped; the readable ones are all read before anything is
    written. When none is readable it is a DataError and nothing is written. ``refine`` > 0 adds that many
    optimisation steps after the encoder (the hybrid); on a run without an encoder it is optimisation from the
    prior's mean. ``space`` ("z" | "w" | "wplus"; None: the run's own) is where the latents are searched and what
    latents.npy holds (W+ flattened layer-major, N×(num_ws·w_dim): ``ganinv.methods.spaces``)."""
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss, warn=warn, space=space)
    channels, size, _ = model.image_shape
    read = read_image_files(images, size, channels, warn=warn)
    batch = read.batch()
    warn(f"images are centre-cropped and resized to {size}×{size} with {channels} channel(s) for this run")
    latents = model.invert(batch)
    reconstructions = model.generate(latents)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = [reconstruction_name(row, f) for row, f in enumerate(read.files)]
    for name, image in zip(outputs, reconstructions):
        save_png(image, out / name)
    atomic_write(out / "latents.npy", lambda tmp: np.save(open(tmp, "wb"), latents.cpu().numpy()))
    atomic_write_text(out / "paths.txt", "".join(f"{display_path(f)}\n" for f in read.files))
    atomic_write_json(out / "manifest.json", {
        "format": "ganinv-inverted-files", "format_version": 1, "run": str(run), "image_shape": [channels, size, size],
        "space": getattr(model, "space", run_space(model.method)), "latent_dim": int(latents.shape[1]),
        "items": [{"row": row, "input": os.fsdecode(f), "reconstruction": name}
                  for row, (f, name) in enumerate(zip(read.files, outputs))],
        "skipped": [s.to_json() for s in read.skipped]})
    save_png(comparison_grid([batch, reconstructions]), out / "grid.png")
    return {"n": len(read.files), "latents": latents, "outputs": outputs, "skipped": read.skipped}


def reconstruction_name(row: int, path: Path) -> str:
    """reconstructions/00012-NAME.png: the row number keeps names unique; NAME (the input's stem, letters, digits
    and - _ . only, at most 40 characters) keeps them readable in any shell and on any file system."""
    stem = "".join(ch if (ch.isalnum() and ch.isprintable()) or ch in "-_." else "_" for ch in path.stem)[:40]
    return f"reconstructions/{row:05d}-{stem}.png"


def inverting_model(run: str | Path, *, refine: int = 0, refine_lr: float | None = None, refine_loss: str = "mse",
                    device: str = "cpu", warn: Callable[[str], None] = lambda m: None,
                    space: str | None = None) -> InversionModel:
    """The run's encoder, or encoder + ``refine`` optimisation steps (the hybrid); on a run without an encoder,
    optimisation from the prior's mean. ``space`` (None: the run's own): search in z | w | wplus, from the
    encoder's answer converted up to that space (with ``refine`` 0: converted only) or from its prior's mean."""

    model = InversionModel.load(run, device=device)
    if refine < 0:
        raise GaninvError(f"--refine must be >= 0, got {refine}")
    own = run_space(model.method)
    if space is not None:
        latent_space(model.method, space)  # refuse w / wplus without a style generator before any work
    if not model.can_invert and not refine:
        raise GaninvError(f"{run} is a {model.config.method!r} run with no inverse network "
                          "(give --refine N to invert it by optimisation)")
    if not refine and space in (None, own):
        return model

    start = "encoder" if model.can_invert else "mean"
    lr = refine_lr or (REFINE_LR if start == "encoder" else 0.05)
    check_settings(refine, lr, refine_loss)
    where = f" in {space}" if space not in (None, own) else ""
    if start == "mean":
        warn(f"{run} has no encoder: searching each latent{where} from the prior's mean with {refine} optimisation "
             "steps")
    elif where and not refine:
        warn(f"the encoder's {own} latents are converted to {space} without optimisation (give --refine N to search)")
    return OptimizingModel(model, steps=refine, lr=lr, loss=refine_loss, start=start, space=space)


def invert_dataset(run: str | Path, data: str, out: str | Path, *, split: str = "all", batch_size: int = 256,
                   shard_size: int = 4096, workers: int = 0, device: str = "auto", refine: int = 0,
                   refine_lr: float | None = None, refine_loss: str = "mse", show_progress: bool = True,
                   warn: Callable[[str], None] = lambda m: None) -> dict:
    """A whole collection into latent shards (see ganinv.apps.collection); resumable, and rank-aware under
    ``accelerate launch``."""


    if device == "cuda" and not torch.cuda.is_available():
        raise GaninvError("--device cuda was asked for but no CUDA device is visible")
    use_cpu = device == "cpu" or not torch.cuda.is_available()
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss,
                            device=PartialState(cpu=use_cpu).device, warn=warn)
    return invert_collection(model, run, data, out, split=split, batch_size=batch_size, shard_size=shard_size,
                             workers=workers, refine=refine, show_progress=show_progress, log=warn)
