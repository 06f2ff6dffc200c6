"""Applications of latents: search (search.py), super-resolution (superres.py), clustering (cluster.py) and
editing (edit.py).

This module holds the helpers they share: loading a run that can invert, reading query images at a run's shape
(saying when they are resized or converted), latents as features (scaled by s for runs with a latent scale),
channel conversion, batched reading of a dataset through a DataLoader, and a progress bar. Unreadable image files
never stop a command: each is named with its reason (one line, through ``warn``/``log``), returned as a
``ganinv.data.Skipped`` record and left out; the CLI then ends with exit status 3."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.core.progress import progress
from ganinv.data import ImageFiles, Skipped, TolerantImages, display_path, no_usable_images, read_image_files
from ganinv.inference.model import InversionModel
from ganinv.methods.spaces import Z

Warn = Callable[[str], None]


def silent(_message: str) -> None:
    """The default ``warn``/``log``: messages go nowhere (the CLI passes one that prints them)."""


def load_inverter(run: str | Path) -> InversionModel:
    """An InversionModel that can invert, or a one-line error saying what to train."""
    model = InversionModel.load(run)
    if not model.can_invert:
        raise GaninvError(
            f"{run} is a {model.config.method!r} run with no inverse network; train one on it with "
            f"`ganinv train aegan --generator {run} --out RUN`"
        )
    return model


def latent_scale(model: InversionModel) -> Tensor | None:
    """The run's latent scale s (dlsgan), or None for runs without one."""
    scale = model.method.latent_scale
    return None if scale is None else scale.detach().float().cpu()


def latent_features(model: InversionModel, images: Tensor) -> np.ndarray:
    """Latents as float32 feature vectors. For runs with a latent scale, z∘s: distances then weigh each element by
    its importance (DLSGAN), so the elements the generator ignores do not add noise to a search or a clustering.
    W and W+ latents (a run in space w / wplus, or a model optimising in one) are used as they are — s weighs z's
    elements, not w's — a W+ latent as its layer-major concatenation (ganinv.methods.spaces)."""
    z = model.invert(images).float().cpu()
    scale = latent_scale(model) if model.space == Z else None
    if scale is not None:
        z = z * scale
    return np.ascontiguousarray(z.numpy(), dtype=np.float32)




def read_images(paths: list[str | Path], shape: tuple[int, int, int], warn: Warn = silent) -> ImageFiles:
    """Read image files at a run's C×H×W (``read_image_files``: unreadable ones are named and skipped); every file
    of another size or channel count is resized / converted and the user is told so (one line per file)."""
    channels, size, _ = shape
    read = read_image_files(paths, size, channels, warn=warn)
    for f, header in zip(read.files, read.headers):
        changes = []
        if (header.width, header.height) != (size, size):
            changes.append(f"{header.width}×{header.height} → centre-cropped and resized to {size}×{size}")
        if header.channels != channels:
            changes.append(f"{header.channels} → {channels} channel(s)")
        if changes:
            warn(f"{display_path(f)}: {'; '.join(changes)} for this run")
    return read


def convert_channels(x: Tensor, channels: int) -> Tensor:
    """1 ↔ 3 channels: grey is replicated; RGB becomes luma (ITU-R 601, as PIL's "L")."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise GaninvError(f"cannot convert {x.shape[1]}-channel images to {channels} channel(s)")


def resize(x: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize a batch to H×W (antialiased when shrinking), clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    kwargs = {} if mode in ("nearest", "area") else dict(align_corners=False, antialias=True)
    return F.interpolate(x, size=tuple(size), mode=mode, **kwargs).clamp(0.0, 1.0)


def fit_to_run(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Any N×C×H×W batch to the run's image shape (channels converted, bicubic resize)."""
    channels, h, w = shape
    return resize(convert_channels(x, channels), (h, w))


def iterate_readable(dataset, start: int, stop: int, batch_size: int, workers: int = 0, *,
                     skipped: list[Skipped], warn: Warn = silent) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """The readable images of items [start, stop) of a dataset in batches through a DataLoader, as (dataset indices,
    images, labels); memory is one batch, whatever the size. Each unreadable item is named through ``warn`` and
    appended to ``skipped``; a batch with nothing readable is not yielded."""
    subset = torch.utils.data.Subset(TolerantImages(dataset), range(start, stop))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers)
    for indices, images, labels, reasons in loader:
        ok = torch.tensor([not r for r in reasons])
        for i, reason in zip(indices.tolist(), reasons):
            if reason:
                skipped.append(Skipped(item_name(dataset, i), reason))
                warn(reason)
        if ok.any():
            yield indices[ok], images[ok], labels[ok]


def item_name(dataset, i: int) -> str:
    """An item's exact name: its file path, or ``SPEC[SPLIT]#i`` for in-memory sets."""
    return dataset.paths[i] if dataset.paths is not None else f"{dataset.spec}[{dataset.split}]#{i}"


def read_dataset_images(dataset, n: int, warn: Warn = silent,
                        what: str = "images") -> tuple[Tensor, Tensor, list[Skipped]]:
    """The readable ones of the first ``n`` items of a dataset: (images, labels, skipped); none readable is a
    DataError."""
    skipped: list[Skipped] = []
    batches = list(iterate_readable(dataset, 0, min(n, len(dataset)), 256, skipped=skipped, warn=warn))
    if not batches:
        raise no_usable_images(skipped, what)
    return torch.cat([b[1] for b in batches]), torch.cat([b[2] for b in batches]), skipped


@contextlib.contextmanager
def progress_bar(description: str, total: int, show: bool = True, completed: int = 0, unit: str | None = None):
    """A rich progress bar; yields ``advance(n)``. Hidden (a no-op) when ``show`` is False. With ``unit`` it also
    shows the rate ("412 images/s")."""
    if not show:
        yield lambda n=1: None
        return
    columns = ["[progress.description]{task.description}", BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(TextColumn(f"{{task.fields[rate]}} {unit}/s"))
    with progress(True, *columns, TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(description, total=total, completed=completed, rate="")

        def advance(n=1):
            bar.advance(task, n)
            if unit and isinstance(bar, Progress) and bar.tasks[0].speed:  # a log file's lines carry their own eta
                bar.update(task, rate=f"{bar.tasks[0].speed:,.0f}")

        yield advance


def parse_range(text: str, name: str) -> tuple[float, float]:
    """"-2..2" → (-2.0, 2.0); a single number x → (x, x)."""
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            return float(a), float(b)
        v = float(text)
        return v, v
    except ValueError:
        raise GaninvError(f"{name} must be a number or a range like -2..2, got {text!r}") from None


def labels_matrix(labels: Tensor | np.ndarray) -> np.ndarray:
    """Dataset labels as an N×A float32 matrix (a class label becomes one column)."""
    arr = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.astype(np.float32)
