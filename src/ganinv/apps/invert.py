"""Inverting image files and whole collections: ``ganinv invert RUN IMAGES… --out DIR`` and ``ganinv invert RUN
--data SPEC --out DIR`` (the second streams to resumable latent shards: see ``ganinv.apps.collection``)."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from ganinv.apps.collection import CollectionSummary, invert_collection
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_save_npy, atomic_write_json, atomic_write_text
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import ImageFiles, display_path, read_image_files
from ganinv.data.align import TARGET_EYE_DISTANCE, AlignedFiles, read_aligned_files
from ganinv.data.ffhq_align import FFHQ_EYE_DISTANCE, choose_aligner, read_ffhq_files
from ganinv.data.images import decode_image
from ganinv.data.paste import paste_back
from ganinv.inference.hybrid import REFINE_LR, OptimizingModel
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import REFINE_LOSSES, check_settings
from ganinv.metrics import psnr, ssim
from ganinv.methods.spaces import latent_space, parse_space

GRID_COLUMNS = 8  # the grid shows the first rows; every reconstruction is its own PNG


@dataclass(frozen=True)
class InvertedFiles:
    """What ``invert_files`` wrote: ``n`` readable files, their latents (row i = the i-th), the reconstruction PNG of
    each row (relative to the output folder) and the files skipped with their reasons."""

    n: int
    latents: torch.Tensor
    outputs: list[str]
    skipped: list
    psnr: list[float]  # each row's reconstruction against its input, dB
    ssim: list[float]
    inputs: list[str]  # each row's input path as one printable line (``display_path``)


def invert_files(run: str | Path, images: list[str | Path], out: str | Path,
                 warn: Callable[[str], None] = lambda m: None, *, refine: int = 0, refine_lr: float | None = None,
                 refine_loss: str = "mse", space: str | None = None, align: bool | str = False,
                 landmarks: str | Path | None = None, paste: bool = False) -> InvertedFiles:
    """Invert image files: latents.npy (row i = the i-th readable file), reconstructions/NNNNN-NAME.png (numbered by
    row, so two inputs named x.png never collide), manifest.json (each row's exact input path, output, PSNR and
    SSIM, and the skipped files with their reasons), paths.txt (the inputs, one printable line each) and grid.png
    (each input over its reconstruction, under the file's name). Returns the PSNR / SSIM of each row too.

    Each unreadable file is named through ``warn`` and skipped; the readable ones are all read before anything is
    written. When none is readable it is a DataError and nothing is written. ``refine`` > 0 adds that many
    optimisation steps after the encoder (the hybrid); on a run without an encoder it is optimisation from the
    prior's mean. ``space`` ("z" | "w" | "wplus"; None: the run's own) is where the latents are searched and what
    latents.npy holds (W+ flattened layer-major, N×(num_ws·w_dim): ``ganinv.methods.spaces``).

    ``align`` (True or "auto": ``ganinv.data.ffhq_align.choose_aligner``; "haar": the aligned-CelebA square,
    ``ganinv.data.align``; "ffhq": FFHQ's crop from dlib's 68 landmarks): each face is found and cut before it is
    inverted, written to aligned/NNNNN-NAME.png, its alignment to the manifest; a file without one is skipped.
    ``landmarks``: the landmark model (haar: OpenCV LBF, implies ``align``; ffhq: dlib's). ``paste``: each
    reconstruction also pasted back into its photo (``ganinv.data.paste``) as pasted/NNNNN-NAME.png."""
    check_paste_back(paste, align or landmarks is not None)
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss, warn=warn, space=space)
    channels, size, _ = model.image_shape
    read = read_inputs(images, size, channels, align=align or landmarks is not None, landmarks=landmarks, warn=warn,
                       trained_on=model.config.data)
    batch = read.batch()
    latents = model.invert(batch)
    reconstructions = model.generate(latents)
    scores = {"psnr": psnr(reconstructions, batch).tolist(), "ssim": ssim(reconstructions, batch).tolist()}
    out = Path(out)
    outputs = write_reconstructions(out, read.files, reconstructions)
    alignments = write_aligned(out, read, batch, pasted=reconstructions if paste else None)
    atomic_save_npy(out / "latents.npy", latents.cpu().numpy())
    write_manifest(out, run, model, latents, read, outputs, scores, alignments)
    save_png(inversion_grid(batch, reconstructions, names=[f.name for f in read.files], psnrs=scores["psnr"]),
             out / "grid.png")
    return InvertedFiles(len(read.files), latents, outputs, read.skipped, scores["psnr"], scores["ssim"],
                         [display_path(f) for f in read.files])


def write_reconstructions(out: Path, files: list, reconstructions: torch.Tensor) -> list[str]:
    """Each reconstruction as reconstructions/NNNNN-NAME.png (the folder created); their names."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = [reconstruction_name(row, f) for row, f in enumerate(files)]
    for name, image in zip(outputs, reconstructions):
        save_png(image, out / name)
    return outputs


def write_manifest(out: Path, run, model: InversionModel, latents: torch.Tensor, read: ImageFiles,
                   outputs: list[str], scores: dict[str, list[float]], alignments: list[dict]) -> None:
    """paths.txt (the inputs, one printable line each) and manifest.json (each row's input, output, PSNR and SSIM;
    the skipped files with their reasons)."""
    channels, size, _ = model.image_shape
    atomic_write_text(out / "paths.txt", "".join(f"{display_path(f)}\n" for f in read.files))
    items = [{"row": row, "input": os.fsdecode(f), "reconstruction": name, "psnr": p, "ssim": q, **alignment}
             for row, (f, name, p, q, alignment) in enumerate(zip(read.files, outputs, scores["psnr"], scores["ssim"],
                                                                   alignments))]
    atomic_write_json(out / "manifest.json", {
        "format": "ganinv-inverted-files", "format_version": 1, "run": str(run), "image_shape": [channels, size, size],
        "space": model.space.name, "latent_dim": int(latents.shape[1]), "items": items,
        "skipped": [s.to_json() for s in read.skipped]})


def inversion_grid(batch: torch.Tensor, reconstructions: torch.Tensor, names: list[str] | None = None,
                   psnrs: list[float] | None = None) -> torch.Tensor:
    """Inputs over their reconstructions, the first GRID_COLUMNS, each column under its file's name and each
    reconstruction over its PSNR against the input."""
    shown = min(len(batch), GRID_COLUMNS)
    title = f"inverted {len(batch)} image(s)" + (f", first {shown} shown" if len(batch) > shown else "")
    names = [display_name(n) for n in names] if names is not None else [f"image {i + 1}" for i in range(len(batch))]
    captions = None if psnrs is None else [[""] * shown, [f"{p:.2f} dB" for p in psnrs[:shown]]]
    return labelled_grid([batch[:shown], reconstructions[:shown]], ["input", "reconstruction"],
                         column_labels=names[:shown], captions=captions, title=title)


def display_name(name) -> str:
    """A file name as a grid shows it: printable (``display_path``'s escapes), whole."""
    return display_path(Path(os.fsdecode(name)).name)


def read_inputs(images, size: int, channels: int, *, align: bool | str, landmarks, warn,
                trained_on: str | None = None) -> ImageFiles:
    """The files as the run sees them: centre-cropped and resized, or (``align``) faces aligned to aligned-CelebA's
    square or (``align`` "ffhq", or auto's choice: ``trained_on`` is the run's data spec) cut as FFHQ's, each
    alignment told through ``warn`` when it was a guess from the face box or had a choice of faces."""
    if not align:
        read = read_image_files(images, size, channels, warn=warn)
        warn(f"images are centre-cropped and resized to {size}×{size} with {channels} channel(s) for this run")
        return read
    why: list[str] = []  # auto's choice is said with the result: a photo without a face stays one error line
    aligner = choose_aligner("auto" if align is True else align, landmarks=landmarks, trained_on=trained_on,
                             say=why.append)
    read = (read_ffhq_inputs if aligner == "ffhq" else read_haar_inputs)(images, size, channels, landmarks, warn)
    for line in why:
        warn(line)
    return read


def read_haar_inputs(images, size: int, channels: int, landmarks, warn) -> AlignedFiles:
    """Faces aligned to aligned-CelebA's square (``ganinv.data.align``), each told when it was a guess from the
    face box, had a choice of faces or reaches past the photo's edge."""
    read = read_aligned_files(images, size, channels, landmarks=landmarks, warn=warn)
    for f, info in zip(read.files, read.infos):
        if info.source == "face box" or info.faces > 1 or info.padded:
            warn(f"{display_path(f)}: {info.describe()}")
    warn(f"{len(read.files)} face(s) aligned to the aligned-CelebA square at {size}×{size} (eyes level, "
         f"{TARGET_EYE_DISTANCE * size:.1f} px apart) with {channels} channel(s) for this run")
    return read


def read_ffhq_inputs(images, size: int, channels: int, model, warn) -> AlignedFiles:
    """Faces cut as FFHQ's crop (``ganinv.data.ffhq_align``), each told when the photo had a choice of faces or the
    crop reaches past its edge."""
    read = read_ffhq_files(images, size, channels, model=model, warn=warn)
    for f, info in zip(read.files, read.infos):
        if info.faces > 1 or info.padded:
            warn(f"{display_path(f)}: {info.describe()}")
    warn(f"{len(read.files)} face(s) cut as FFHQ's crop at {size}×{size} (dlib's 68 landmarks; eyes about "
         f"{FFHQ_EYE_DISTANCE * size:.1f} px apart) with {channels} channel(s) for this run")
    return read


def check_paste_back(paste: bool, align) -> None:
    """--paste-back needs an alignment to invert: refused in one line (invert and edit alike) before any work."""
    if paste and not align:
        raise GaninvError("--paste-back needs --align: it puts the face back where the alignment cut it from")


def pasted_photo(path, image: torch.Tensor, info) -> torch.Tensor:
    """``image`` (C×s×s in [0, 1]: an aligned face's reconstruction or an edit of it) pasted back into the photo at
    ``path`` where ``info`` (its ``AlignInfo``) cut the face from (``ganinv.data.paste``): 3×H×W in [0, 1] at the
    photo's size, the photo's own pixels outside the square."""
    photo, _ = decode_image(path, 3)  # as it was read for aligning: EXIF-upright RGB, the matrix's pixels
    crop = (image.detach().float().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    pasted = paste_back(np.asarray(photo), crop, np.array(info.matrix), size=info.size)
    return torch.from_numpy(pasted).permute(2, 0, 1).float().div(255)


def write_pasted(out: Path, read: AlignedFiles, reconstructions: torch.Tensor, records: list[dict]) -> None:
    """With --paste-back: each reconstruction pasted back into its photo as pasted/NNNNN-NAME.png at the photo's
    size, named in its manifest record."""
    for row, (f, image, info) in enumerate(zip(read.files, reconstructions, read.infos)):
        name = reconstruction_name(row, f, folder="pasted")
        save_png(pasted_photo(f, image, info), out / name)
        records[row]["pasted"] = name


def write_aligned(out: Path, read: ImageFiles, batch, pasted: torch.Tensor | None = None) -> list[dict]:
    """With --align: each aligned input as aligned/NNNNN-NAME.png (what was inverted, for the user to check) and
    the manifest's record of how it was aligned (and with ``pasted``, the reconstructions: each pasted back into
    its photo, pasted/NNNNN-NAME.png); without: an empty record per row."""
    if not isinstance(read, AlignedFiles):
        return [{} for _ in read.files]
    records = []
    for row, (f, image, info) in enumerate(zip(read.files, batch, read.infos)):
        name = reconstruction_name(row, f, folder="aligned")
        save_png(image, out / name)
        records.append({"aligned": name, "alignment": info.to_json()})
    if pasted is not None:
        write_pasted(out, read, pasted, records)
    return records


def reconstruction_name(row: int, path: Path, folder: str = "reconstructions", tag: str = "") -> str:
    """reconstructions/00012-NAME.png (with ``tag``, e.g. an edit's "-Smiling+1.00": 00012-NAMETAG.png): the row
    number keeps names unique; NAME (the input's stem, letters, digits and - _ . only, at most 40 characters) and TAG
    (+ = allowed too) keep them readable in any shell and on any file system."""
    return f"{folder}/{row:05d}-{_file_safe(path.stem, '-_.')[:40]}{_file_safe(tag, '-_.+=')}.png"


def _file_safe(text: str, allowed: str) -> str:
    return "".join(ch if (ch.isalnum() and ch.isprintable()) or ch in allowed else "_" for ch in text)


def inverting_model(run: str | Path, *, refine: int = 0, refine_lr: float | None = None, refine_loss: str = "mse",
                    device: str = "cpu", warn: Callable[[str], None] = lambda m: None,
                    space: str | None = None) -> InversionModel:
    """The run's encoder, or encoder + ``refine`` optimisation steps (the hybrid); on a run without an encoder,
    optimisation from the prior's mean. ``space`` (None: the run's own): search in z | w | wplus, from the
    encoder's answer converted up to that space (with ``refine`` 0: converted only) or from its prior's mean."""

    model = InversionModel.load(run, device=device)
    if refine < 0:
        raise GaninvError(f"--refine must be >= 0, got {refine}")
    own = model.space
    # parsed once, and w / wplus without a style generator refused, before any work
    view = latent_space(model.method, None if space is None else parse_space(space, f"--space {space}"))
    if not model.can_invert and not refine:
        raise GaninvError(f"{run} is a {model.config.method!r} run with no inverse network "
                          "(give --refine N to invert it by optimisation)")
    if not refine and view.space == own:
        return model

    start = "encoder" if model.can_invert else "mean"
    lr = refine_lr or (REFINE_LR if start == "encoder" else 0.05)
    check_settings(refine, lr, refine_loss, REFINE_LOSSES)  # d_features: OptimizingModel binds the run's D
    where = f" in {view.space}" if view.space != own else ""
    if start == "mean":
        warn(f"{run} has no encoder: searching each latent{where} from the prior's mean with {refine} optimisation "
             "steps")
    elif where and not refine:
        warn(f"the encoder's {own} latents are converted to {view.space} without optimisation (give --refine N to "
             "search)")
    return OptimizingModel(model, steps=refine, lr=lr, loss=refine_loss, start=start, space=view)


def invert_dataset(run: str | Path, data: str, out: str | Path, *, split: str = "all", batch_size: int = 256,
                   shard_size: int = 4096, workers: int = 0, device: str = "auto", refine: int = 0,
                   refine_lr: float | None = None, refine_loss: str = "mse", show_progress: bool = True,
                   warn: Callable[[str], None] = lambda m: None) -> CollectionSummary:
    """A whole collection into latent shards (see ganinv.apps.collection); resumable, and rank-aware under
    ``accelerate launch``."""


    if device == "cuda" and not torch.cuda.is_available():
        raise GaninvError("--device cuda was asked for but no CUDA device is visible")
    use_cpu = device == "cpu" or not torch.cuda.is_available()
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss,
                            device=PartialState(cpu=use_cpu).device, warn=warn)
    return invert_collection(model, run, data, out, split=split, batch_size=batch_size, shard_size=shard_size,
                             workers=workers, refine=refine, show_progress=show_progress, log=warn)
