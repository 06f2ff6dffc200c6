"""Editing in latent space: interpolation between two images, attribute directions from a linear classifier on
latents of labelled images, and the most-important-element traversal of runs with a latent scale (DLSGAN
(Cho & Krzyzak) fig. 17: the k elements with the largest s, each swept from −2 to 2). ``edit_run`` is the whole
``ganinv edit`` workflow (one of the three, on images or on sampled latents → a grid)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganinv.apps import (
    Warn,
    iterate_readable,
    labels_matrix,
    latent_scale,
    load_inverter,
    parse_range,
    progress_bar,
    read_images,
    silent,
)
from ganinv.apps.directions import Direction, DirectionKey, saved_or_learned
from ganinv.apps.invert import check_paste_back, pasted_photo, read_inputs, reconstruction_name
from ganinv.core.bounds import MAX_GRID_COLUMNS, MAX_GRID_ROWS
from ganinv.core.errors import GaninvError
from ganinv.core.viz import check_grid_size, labelled_grid, rows_of, save_png
from ganinv.data import ImageFiles, Skipped, display_path, no_usable_images, open_dataset
from ganinv.inference.model import InversionModel


def interpolate(model: InversionModel, z_a: Tensor, z_b: Tensor, steps: int = 8) -> Tensor:
    """G along the straight line z_a → z_b (both ends included): ``steps`` images per pair, (N·steps)×C×H×W
    ordered pair by pair."""
    check_columns(steps)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    z = (z_a[:, None, :] * (1 - t) + z_b[:, None, :] * t).reshape(-1, z_a.shape[1])
    with torch.inference_mode():
        return model.generate(z)


# Labelled latents an attribute direction is learned from, by ``ganinv edit --attribute`` and the web page alike:
# the same edit in both, and each reuses the other's saved direction (``apps.directions``).
DIRECTION_TRAIN_N = 2000
MAX_STRENGTH = 100.0  # in std of the latents along a direction: far beyond it the latent has left the prior


def check_columns(steps: int) -> None:
    """Images per grid row: at least 2, at most MAX_GRID_COLUMNS — each column costs a generated image and a tile
    of the grid (``--steps 100000`` grew to 21 GB before the kernel killed it)."""
    if isinstance(steps, bool) or int(steps) != steps or not 2 <= steps <= MAX_GRID_COLUMNS:
        raise GaninvError(f"--steps must be from 2 to {MAX_GRID_COLUMNS} images per row, got {steps} (a wider row is "
                          "unreadable, and its grid's memory grows with every column)")


def parse_strength(strength: str) -> tuple[float, float]:
    """``--strength`` "-2..2" → (-2.0, 2.0): finite, and within ±MAX_STRENGTH std (NaN or inf made a grid of NaN)."""
    low, high = parse_range(strength, "--strength")
    if not all(np.isfinite(v) and abs(v) <= MAX_STRENGTH for v in (low, high)):
        raise GaninvError(f"--strength must be finite numbers from {-MAX_STRENGTH:g} to {MAX_STRENGTH:g} (std along "
                          f"the direction), got {strength!r}")
    return low, high


def attribute_columns(label_names: list[str] | None, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Binary targets by name: each CelebA attribute; ``digit=3`` etc. for a class label."""
    if not label_names:
        return {}
    if label_names == ["digit"] or (labels.shape[1] == 1 and len(np.unique(labels)) > 2):
        name = label_names[0]
        return {f"{name}={int(v)}": labels[:, 0] == v for v in np.unique(labels[:, 0])}
    return {name: labels[:, j] > 0.5 for j, name in enumerate(label_names)}


def check_attribute(attribute: str, names: list[str]) -> None:
    if attribute not in names:
        raise GaninvError(f"unknown attribute {attribute!r}; valid names: {', '.join(names)}")


def attribute_direction(latents: np.ndarray, target: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """(unit direction, std of the latents along it, training accuracy) from a logistic regression
    (scikit-learn) separating latents with the attribute from those without."""
    from sklearn.linear_model import LogisticRegression  # deferred: slow to import

    target = np.asarray(target, dtype=bool)
    if target.all() or not target.any():
        raise GaninvError("the attribute is constant on these images: it needs positive and negative examples")
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(latents, target)
    w = clf.coef_[0].astype(np.float64)
    direction = w / max(np.linalg.norm(w), 1e-12)
    spread = float((latents @ direction).std())
    return direction.astype(np.float32), spread, float(clf.score(latents, target))


def labelled_latents(model: InversionModel, data: str, n: int, split: str = "train", batch_size: int = 256,
                     show_progress: bool = False, *, skipped: list[Skipped] | None = None,
                     warn: Warn = silent) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Latents (in the prior's units: editing acts on z itself) and labels of the readable ones of the first n
    images of a split; each unreadable one is named through ``warn`` and appended to ``skipped``."""
    net = model.config.net
    dataset = open_dataset(data, image_size=net.image_size, channels=net.channels, split=split)
    n = min(n, len(dataset))
    skipped = [] if skipped is None else skipped
    latents, labels = [], []
    with torch.inference_mode(), progress_bar("inverting labelled images", n, show_progress) as advance:
        for _, images, batch_labels in iterate_readable(dataset, 0, n, batch_size, skipped=skipped, warn=warn):
            latents.append(model.invert(images).float().cpu().numpy())
            labels.append(labels_matrix(batch_labels))
            advance(len(images))
    if not latents:
        raise no_usable_images(skipped, f"first {n} images of {data}")
    return np.concatenate(latents), np.concatenate(labels), dataset.label_names


def learned_direction(model: InversionModel, attribute: str, data: str, *, train_n: int = DIRECTION_TRAIN_N,
                      seed: int = 0, show_progress: bool = False, skipped: list[Skipped] | None = None,
                      warn: Warn = silent) -> tuple[Direction, bool]:
    """(direction, reused): the attribute's direction learned on the first ``train_n`` labelled images of ``data``
    and saved beside the run — or read back from there when the same attribute, count and data (by kind) were
    asked before, inverting nothing."""
    def learn() -> Direction:
        latents, labels, names = labelled_latents(model, data, train_n, show_progress=show_progress,
                                                  skipped=skipped, warn=warn)
        columns = attribute_columns(names, labels)
        if not columns:
            raise GaninvError(f"{data} has no labels to learn an attribute direction from")
        check_attribute(attribute, list(columns))
        return Direction(*attribute_direction(latents, columns[attribute], seed), n_latents=len(latents))

    return saved_or_learned(model.source, DirectionKey(attribute, data, int(train_n)), learn, dim=model.prior.dim,
                            warn=warn)


def edit_attribute(model: InversionModel, z: Tensor, direction: np.ndarray, spread: float,
                   strengths: np.ndarray) -> Tensor:
    """G(z + strength·spread·direction) for every z (rows) and strength (columns), clamped to the prior's support;
    strength is in standard deviations of the labelled latents along the direction."""
    d = torch.from_numpy(np.asarray(direction, dtype=np.float32)).to(z)
    s = torch.as_tensor(np.asarray(strengths, dtype=np.float32)).to(z)
    edited = z[:, None, :] + (s[None, :, None] * spread) * d[None, None, :]
    with torch.inference_mode():
        return model.generate(model.prior.clamp(edited.reshape(-1, z.shape[1])))


def top_elements(model: InversionModel, k: int, run: str | Path = "this run") -> np.ndarray:
    """Indices of the k latent elements with the largest scale s, largest first."""
    scale = latent_scale(model)
    if scale is None:
        raise GaninvError(f"--traverse needs a run with a latent scale (dlsgan); {run} is a "
                          f"{model.config.method!r} run without one")
    if not 1 <= k <= scale.numel():
        raise GaninvError(f"--traverse k must be between 1 and the latent dimension {scale.numel()}, got {k}")
    return np.argsort(-scale.numpy(), kind="stable")[:k]


def traverse(model: InversionModel, z: Tensor, elements: np.ndarray, steps: int = 9,
             low: float = -2.0, high: float = 2.0) -> Tensor:
    """For one latent z (1×d): a row per element, sweeping that element from low to high (others fixed)."""
    values = torch.linspace(low, high, steps)
    rows = z.repeat(len(elements) * steps, 1).view(len(elements), steps, -1).clone()
    for r, e in enumerate(elements):
        rows[r, :, int(e)] = values
    with torch.inference_mode():
        return model.generate(rows.view(-1, z.shape[1]))


# ------------------------------------------------------------------------------------------------ the workflow
@dataclass(frozen=True)
class EditResult:
    """What ``edit_run`` made: the grid (one row per latent or element), a line describing it, the skipped files."""
    grid: Tensor
    description: str
    skipped: list[Skipped] = field(default_factory=list)
    pasted: list[Path] = field(default_factory=list)  # with ``paste_to``: each edit pasted back into its photo


def edit_run(run: str | Path, images: list[str | Path] | None = None, *, interpolation: bool = False,
             attribute: str | None = None, traversal: int | None = None, data: str | None = None,
             train_n: int | None = None, strength: str = "-2..2", steps: int = 9, samples: int = 4, seed: int = 0,
             align: bool | str = False, landmarks: str | Path | None = None, paste_to: str | Path | None = None,
             show_progress: bool = True, warn: Warn = silent) -> EditResult:
    """``ganinv edit``: exactly one of ``interpolation`` (between two images' latents), ``attribute`` (moved along
    a direction learned on the labelled images of ``data``, ``strength`` a range in std) or ``traversal`` (the K
    elements with the largest latent scale, each swept from −2 to 2), applied to the latents of ``images`` — or,
    without images, to latents sampled from the prior (``samples``, ``seed``). ``steps`` images per row.

    ``align`` and ``landmarks`` as ``apps.invert.invert_files``'s: each photo's face is found and cut as the run's
    faces were before it is inverted. ``paste_to`` (with ``align`` and ``attribute``): a folder where every edit
    (each strength) is pasted back into its photo, NNNNN-NAME-ATTRIBUTE±S.png at the photo's size."""
    modes = [name for name, on in (("--interpolate", interpolation), ("--attribute", attribute is not None),
                                   ("--traverse", traversal is not None)) if on]
    if len(modes) != 1:
        raise GaninvError("choose exactly one of --interpolate, --attribute NAME, --traverse K")
    if attribute is not None and data is None:
        raise GaninvError("--attribute needs --data SPEC: the labelled images its direction is learned from")
    check_request(steps=steps, samples=samples, strength=strength if attribute is not None else None)
    align = align or landmarks is not None
    check_faces(images, align=align, paste=paste_to is not None, attribute=attribute)
    model = load_inverter(run) if (images or attribute is not None) else InversionModel.load(run)
    elements = top_elements(model, traversal, run) if traversal is not None else None  # fail before inverting
    start = starting_latents(model, images, samples=2 if interpolation else samples, seed=seed, align=align,
                             landmarks=landmarks, warn=warn)
    rows = 1 if interpolation else len(start.z) * (len(elements) if elements is not None else 1)
    columns = steps + (2 if interpolation else 1)  # the originals: at both ends of an interpolation, else first
    check_grid_size(rows, columns, model.image_shape[-1], "ask for fewer rows (images, --samples, --traverse K) "
                    "or columns (--steps)")
    if interpolation:
        return EditResult(interpolation_grid(model, start, steps), f"{steps}-step interpolation", start.skipped)
    if attribute is not None:
        edit = attribute_edit(model, start, attribute, data, train_n=train_n, strength=strength, steps=steps,
                              seed=seed, show_progress=show_progress, warn=warn)
        pasted = paste_edits(start, edit, paste_to) if paste_to is not None else []
        return EditResult(attribute_grid(start, edit), edit.description, start.skipped, pasted)
    return EditResult(*traversal_grid(model, start.z, elements, steps, start=start), start.skipped)


def check_faces(images, *, align, paste: bool, attribute: str | None) -> None:
    """--align needs photos, and --paste-back an alignment and an attribute's edits to paste: each refused in one
    line before the run is loaded."""
    check_paste_back(paste, align)
    if align and not images:
        raise GaninvError("--align needs IMAGES: latents sampled from the prior have no photo to find a face in")
    if paste and attribute is None:
        raise GaninvError("--paste-back pastes the --attribute edits (each strength) back into their photos: give "
                          "--attribute NAME")


def check_request(*, steps: int, samples: int, strength: str | None) -> None:
    """The sizes and numbers of an edit, refused in one line before the run is loaded."""
    check_columns(steps)
    if isinstance(samples, bool) or int(samples) != samples or not 1 <= samples <= MAX_GRID_ROWS:
        raise GaninvError(f"--samples must be from 1 to {MAX_GRID_ROWS}, got {samples}")
    if strength is not None:
        parse_strength(strength)


def interpolation_grid(model: InversionModel, start: Start, steps: int) -> Tensor:
    """One row: the first original, G along the line between the two latents (t = 0 … 1), the second original."""
    if len(start.z) != 2:
        raise GaninvError(f"--interpolate needs exactly two readable images, got {len(start.z)}"
                          + (f" ({len(start.skipped)} skipped, named above)" if start.skipped else ""))
    line = interpolate(model, start.z[:1], start.z[1:], steps)
    first, second = start.names
    ends = start.originals.to(line)
    return labelled_grid([torch.cat([ends[:1], line, ends[1:]])], ["first → second"],
                         column_labels=[first, *(f"t={t:.2f}" for t in np.linspace(0, 1, steps)), second],
                         title=f"{steps}-step interpolation between the two latents")


@dataclass(frozen=True)
class Start:
    """The latents an edit starts from, with what each came from: the input image (``originals``, named by its file)
    or, for a latent sampled from the prior, G(z) ("sample N")."""
    z: Tensor
    originals: Tensor
    names: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    read: ImageFiles | None = None  # the files read (with --align, ``AlignedFiles``: how each face was cut)


def starting_latents(model: InversionModel, images: list[str | Path] | None, *, samples: int, seed: int,
                     align: bool | str = False, landmarks: str | Path | None = None, warn: Warn = silent) -> Start:
    """The inverted readable images (the others named through ``warn`` and skipped; with ``align``, each photo's
    face cut as ``invert --align`` cuts it), or ``samples`` seeded draws from the prior, with their originals and
    names (``Start``)."""
    if not images:
        z = model.sample(samples, generator=torch.Generator().manual_seed(seed)).float()
        with torch.inference_mode():
            originals = model.generate(z).float().cpu()
        return Start(z, originals, [f"sample {i + 1}" for i in range(len(z))])
    channels, size, _ = model.image_shape
    read = (read_inputs(images, size, channels, align=align, landmarks=landmarks, warn=warn,
                        trained_on=model.config.data) if align else read_images(images, model.image_shape, warn=warn))
    batch = read.batch()
    with torch.inference_mode():
        z = model.invert(batch).float()
    return Start(z, batch, [display_path(f.name) for f in read.files], list(read.skipped), read)


@dataclass(frozen=True)
class AttributeEdit:
    """Each starting latent moved along an attribute's direction: ``edited`` holds (N·steps)×C×H×W, latent by latent,
    a column per strength (in std of the labelled latents along the direction)."""
    attribute: str
    edited: Tensor
    strengths: np.ndarray
    description: str


def attribute_edit(model: InversionModel, start: Start, attribute: str, data: str, *, train_n: int | None,
                   strength: str, steps: int, seed: int, show_progress: bool, warn: Warn = silent) -> AttributeEdit:
    """Every latent of ``start`` moved along the attribute's direction over the ``strength`` range ("-2..2"),
    ``steps`` strengths. The direction is learned on the first ``train_n`` (None: DIRECTION_TRAIN_N) labelled
    images of ``data``, or reused from beside the run (``learned_direction``); unreadable files are added to
    ``start.skipped``."""
    d, reused = learned_direction(model, attribute, data, train_n=train_n or DIRECTION_TRAIN_N, seed=seed,
                                  show_progress=show_progress, skipped=start.skipped, warn=warn)
    if reused:
        warn(f"the {attribute} direction learned before on {train_n or DIRECTION_TRAIN_N} images of this data was "
             "reused from the run's directions folder")
    low, high = parse_strength(strength)
    strengths = np.linspace(low, high, steps)
    edited = edit_attribute(model, start.z, d.direction, d.spread, strengths)
    description = (f"{attribute} from {low:g} to {high:g} std (direction from {d.n_latents} labelled latents, "
                   f"training accuracy {d.accuracy:.3f})")
    return AttributeEdit(attribute, edited, strengths, description)


def attribute_grid(start: Start, edit: AttributeEdit) -> Tensor:
    """Each latent a row, its original first, then a column per strength of the edit."""
    rows = [torch.cat([original[None].to(row), row])
            for original, row in zip(start.originals, rows_of(edit.edited, len(edit.strengths)))]
    return labelled_grid(rows, start.names, column_labels=["original", *(f"{v:+.2g}σ" for v in edit.strengths)],
                         title=f"{edit.description}; strength in std along the direction")


def paste_edits(start: Start, edit: AttributeEdit, folder: str | Path) -> list[Path]:
    """Every edit (each strength) of each aligned photo pasted back into that photo (``apps.invert.pasted_photo``)
    as FOLDER/NNNNN-NAME-ATTRIBUTE±S.png (row number, the photo's stem, the strength in std) at the photo's size;
    the paths written."""
    folder, read = Path(folder), start.read
    written = []
    for row, (f, info, edits) in enumerate(zip(read.files, read.infos, rows_of(edit.edited, len(edit.strengths)))):
        for image, strength in zip(edits, edit.strengths):
            path = folder.parent / reconstruction_name(row, f, folder=folder.name,
                                                       tag=f"-{edit.attribute}{strength:+.4g}")
            save_png(pasted_photo(f, image, info), path)
            written.append(path)
    return written


def traversal_grid(model: InversionModel, z: Tensor, elements: np.ndarray, steps: int,
                   start: Start | None = None) -> tuple[Tensor, str]:
    """(grid, description): for each latent, a row per element swept from −2 to 2 — after the latent's original
    (``start``: the input image or G(z)), when given; the description names each element with its scale s."""
    rows = rows_of(torch.cat([traverse(model, z[i:i + 1], elements, steps) for i in range(len(z))]), steps)
    scale = latent_scale(model)
    names = start.names if start is not None else [f"latent {i + 1}" for i in range(len(z))]
    labels = [f"{names[i]}, element {int(e)} (s={float(scale[e]):.2f})" for i in range(len(z)) for e in elements]
    description = "traversal of elements " + ", ".join(f"{int(e)} (s={float(scale[e]):.3f})" for e in elements)
    columns = [f"{v:+.1f}" for v in np.linspace(-2, 2, steps)]
    if start is not None:
        rows = [torch.cat([start.originals[i // len(elements)][None].to(row), row]) for i, row in enumerate(rows)]
        columns = ["original", *columns]
    return labelled_grid(rows, labels, column_labels=columns, title=f"{description}; each element's value on the "
                         "columns"), description
