"""The logic behind the web page's widgets: plain functions over tensors, importable and tested without a browser
and without gradio (nothing here imports it).

    read_upload(path, shape, align=)    an upload as a 1×C×H×W batch at the run's shape (``align``: its face cut as
                                        aligned CelebA's), plus notes on what changed; ``UploadError`` with a
                                        one-line reason for anything unusable (no face, with ``align``). The file is
                                        read by ``ganinv.data.images``, as every image file is
    DomainCheck                         a one-line hint when an image is unlike the run's training images (its
                                        own samples when its data cannot be read here: ``fallback`` says so)
    AttributeDirections                 the Edit tab's attribute directions, on the index's first
                                        DIRECTION_TRAIN_N latents as ``ganinv edit`` learns them, saved beside the
                                        run and reused by both (``apps.directions``)
    to_display(x)                       an image as H×W×3 uint8, tiny images enlarged pixel by pixel; every result
                                        of several images is a ``labelled_grid`` (rows and columns named)
    label_text, results_markdown        a search result's labels in full and the ranked results as a table, since
                                        gradio cuts gallery captions to their image's width
    degradation_args, max_factor        the Super-resolve tab's factor (≥ 2, at least 2×2 pixels left) or σ, checked
    run_inversion / reconstruct_image   encoder, hybrid or optimisation; G(invert(x)) with metrics and time
    guarded(n_outputs)                  any exception → a message in the handler's last output, never a trace
    ReconstructHandlers, SearchHandlers, SuperresHandlers, EditHandlers, RandomHandlers
                                        one class per tab: the functions its buttons and uploads call, each
                                        answering a tuple in the order of the tab's output widgets

A handler's name is its endpoint's name in gradio's API (``/rec_from_upload``; the Search tab's two are
``/search_from_upload`` and ``/search_from_entry``): rename with care.
"""
from __future__ import annotations

import functools
import ipaddress
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganinv.apps import latent_scale
from ganinv.apps.directions import Direction, DirectionKey, data_kind, saved_or_learned
from ganinv.apps.edit import (
    DIRECTION_TRAIN_N,
    attribute_columns,
    attribute_direction,
    check_attribute,
    edit_attribute,
    interpolate,
    top_elements,
    traversal_grid,
)
from ganinv.apps.search import SearchIndex, check_k
from ganinv.apps.superres import compare
from ganinv.core.errors import DataError, GaninvError
from ganinv.core.rundir import read_config, run_fingerprint
from ganinv.core.viz import labelled_grid
from ganinv.data import TolerantImages, open_dataset
from ganinv.data.align import align_file
from ganinv.data.images import MAX_IMAGE_PIXELS, ImageHeader, display_path, load_image, read_header
from ganinv.inference.hybrid import refine
from ganinv.inference.model import InversionModel
from ganinv.methods.optimize import invert_by_optimization
from ganinv.metrics import psnr, reconstruction_metrics, ssim

MAX_UPLOAD_BYTES = 20 * 2**20      # larger uploads are refused with a message
MAX_UPLOAD_PIXELS = MAX_IMAGE_PIXELS  # so are images of more pixels (decompression bombs among them)
DISPLAY_SIDE = 192                 # tiny run images are shown enlarged (nearest neighbour) to at least this side
STRIP_SIDE = 96                    # … and a search gallery's images to at least this side
METHODS = ("encoder", "hybrid")    # runs with an inverse network; a generator-only run gets "optimisation"
EDIT_STEPS = 100                   # optimisation steps that invert an upload to edit, for runs without an encoder
DOMAIN_TRAIN_IMAGES = 256          # the run's training images an upload's statistics are compared with …
DOMAIN_SAMPLES = 32                # … or its own samples, when its training data cannot be read here …
DOMAIN_Z = 4.0                     # … and how many of their spreads away counts as out of domain
DOMAIN_MIN_SPREAD = 0.02           # a spread floor, so a run whose samples barely vary does not flag everything
# The attribute menu's first choice when the labels have it: common and plain to see (CelebA's alphabetical first,
# 5_o_Clock_Shadow, is neither)
PREFERRED_ATTRIBUTES = ("Smiling", "Eyeglasses", "Male", "Blond_Hair")
MAX_SEED = 2**32 - 1               # seeds are whole numbers 0 … MAX_SEED (torch takes 64 bits; 32 are plenty)


class UploadError(GaninvError):
    """An upload that cannot be used; its message is shown on the page."""


# ------------------------------------------------------------------------------------------------ uploads
def read_upload(path: str | Path | None, shape: tuple[int, int, int], *, align: bool = False,
                max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS) -> tuple[Tensor, list[str]]:
    """An uploaded file as a 1×C×H×W batch at the run's shape, plus notes on what was changed (size, alignment,
    channels, transparency). ``align``: the face is found and cut as aligned CelebA's (``ganinv.data.align``).
    Raises ``UploadError`` with a one-line reason for anything that is not a usable image (or shows no face): over
    ``max_bytes`` or ``max_pixels`` it is refused from the file's size and header, before any pixel is decoded."""
    path = check_upload_file(path)
    channels, size, _ = shape
    try:
        header = read_header(path, max_bytes=max_bytes, max_pixels=max_pixels)
        x, notes = fit_upload(path, header, size, channels, align)
    except DataError as exc:  # the reader names the file by its path: the page shows its name alone
        raise UploadError(str(exc).replace(display_path(path), display_path(path.name))) from None
    if header.alpha:
        notes.append("transparency flattened onto white")
    grey = header.channels == 1
    if grey and channels == 3:
        notes.append("grey image → its grey level repeated in R, G and B")
    elif not grey and channels == 1:
        notes.append("colour image → converted to grey for this run")
    return x.unsqueeze(0), notes


def fit_upload(path: Path, header: ImageHeader, size: int, channels: int, align: bool) -> tuple[Tensor, list]:
    """The upload at the run's size: its face aligned, or its centre square resized; and a note saying which."""
    if align:
        x, info = align_file(path, size, channels)
        return x, [f"face aligned as in aligned CelebA ({info.describe()})"]
    x = load_image(path, image_size=size, channels=channels)
    w, h = header.width, header.height
    return x, ([f"{w}×{h} → centre-cropped and resized to {size}×{size}"] if (w, h) != (size, size) else [])


def check_upload_file(path: str | Path | None) -> Path:
    """The upload's path, refused when none was given or gradio's copy is gone (its size, emptiness and contents are
    checked by ``read_header``)."""
    if path is None or str(path) == "":
        raise UploadError("no file: upload an image first")
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"{path.name}: the upload is missing; please upload it again")
    return path


def one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------------ display and state
def to_display(x: Tensor, min_side: int = DISPLAY_SIDE, max_width: int = 1600) -> np.ndarray:
    """A C×H×W (or 1×C×H×W) image in [0,1] as H×W×3 uint8, enlarged by an integer factor (nearest neighbour) to at
    least ``min_side`` pixels high (at most ``max_width`` wide) so tiny run images are visible pixel by pixel."""
    if x.ndim == 4:
        x = x[0]
    x = x.detach().float().cpu().clamp(0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    h, w = x.shape[-2:]
    factor = max(1, min(-(-min_side // h), max_width // w))
    if factor > 1:
        x = torch.nn.functional.interpolate(x[None], scale_factor=factor, mode="nearest")[0]
    return (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def grid_display(grid: Tensor) -> np.ndarray:
    """A ``labelled_grid`` ready to display: not enlarged again, since enlarging would blur its labels' text (its
    tiles are already enlarged pixel by pixel)."""
    return to_display(grid, min_side=1)


def from_state(value) -> Tensor | None:
    """The image kept in a page's state (a float32 array) back as a 1×C×H×W tensor."""
    return None if value is None else torch.from_numpy(np.asarray(value, dtype=np.float32))


def to_state(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def metrics_markdown(metrics: dict[str, float], seconds: float | None = None, method: str | None = None) -> str:
    rows = [("PSNR", f"{metrics['psnr']:.2f} dB"), ("SSIM", f"{metrics['ssim']:.4f}"),
            ("dHash similarity", f"{metrics['dhash_similarity']:.4f}")]
    if "lpips" in metrics:
        rows.append(("LPIPS", f"{metrics['lpips']:.4f}"))
    if seconds is not None:
        rows.append(("time", f"{seconds * 1000:.0f} ms" + (f" ({method})" if method else "")))
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def notes_markdown(notes: list[str], warning: str | None = None) -> str:
    """Notes one per line; a warning (the out-of-domain hint) first."""
    return "  \n".join(([f"⚠️ {warning}"] if warning else []) + [f"ℹ️ {n}" for n in notes])


def error_markdown(message: str) -> str:
    return f"⚠️ **error:** {message}"


def describe_run(model: InversionModel) -> str:
    """One line about the run for the page's header."""
    channels, size, _ = model.image_shape
    return (f"**{model.config.method}** run · {size}×{size} px · {channels} channel(s) · latent dimension "
            f"{model.prior.dim}" + ("" if model.can_invert else " · no encoder: inversion by optimisation"))


def guarded(n_outputs: int, log: Callable[[str], None] | None = None):
    """Wrap a handler whose last output is a status message: any exception becomes a message there (GaninvError:
    its own line; anything else: its type and message, the traceback only in the server's log) and the other
    outputs are cleared. The server never sees the exception, so it keeps serving."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except GaninvError as exc:
                message = str(exc)
            except Exception as exc:  # noqa: BLE001 - the page must get a message, not a trace
                (log or log_stderr)(traceback.format_exc())
                message = f"something went wrong ({type(exc).__name__}: {one_line(str(exc))})"
            return (None,) * (n_outputs - 1) + (error_markdown(message),)
        return wrapper
    return decorate


def log_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ inversion
def method_choices(model: InversionModel) -> list[str]:
    return list(METHODS) if model.can_invert else ["optimisation"]


def run_inversion(model: InversionModel, x: Tensor, method: str = "encoder", steps: int = 50) -> Tensor:
    """Latents of x by the encoder, the hybrid (encoder + ``steps`` refinement steps) or, for a run without an
    inverse network, optimisation from the prior's mean."""
    steps = int(steps)
    if method == "encoder":
        if not model.can_invert:
            raise GaninvError(f"this {model.config.method!r} run has no encoder; choose optimisation")
        with torch.inference_mode():
            return model.invert(x)
    if method == "hybrid":
        return refine(model, x, steps=steps).detach()
    if method == "optimisation":
        return invert_by_optimization(model, x, steps=max(steps, 1), start="mean").detach()
    raise GaninvError(f"unknown method {method!r}; choose one of {', '.join(METHODS + ('optimisation',))}")


def reconstruct_image(model: InversionModel, x: Tensor, method: str = "encoder", steps: int = 50) -> dict:
    """G(invert(x)) with its metrics against x and the time taken."""
    start = time.perf_counter()
    z = run_inversion(model, x, method, steps)
    with torch.inference_mode():
        recon = model.generate(z).float().cpu()
    seconds = time.perf_counter() - start
    return {"reconstruction": recon, "latent": z, "seconds": seconds,
            "metrics": reconstruction_metrics(x.float().cpu(), recon)}


def check_seed(seed) -> int:
    """A seed from the page (a number typed or sent by hand, None for an empty field: 0) as an int, refused in one
    line with the allowed range unless it is a whole number 0 … MAX_SEED."""
    if seed is None or seed == "":
        return 0
    try:
        value = float(seed)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0 <= value <= MAX_SEED and value == int(value)):
        raise GaninvError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return int(value)


def sample_latent(model: InversionModel, seed: int, n: int = 1) -> Tensor:
    with torch.inference_mode():
        return model.sample(int(n), generator=torch.Generator().manual_seed(int(seed)))


def sample_image(model: InversionModel, seed: int) -> Tensor:
    with torch.inference_mode():
        return model.generate(sample_latent(model, seed)).float().cpu()


# ------------------------------------------------------------------------------------------------ search and editing
def result_caption(rank: int, distance: float) -> str:
    """A gallery caption: short, because gradio cuts captions to the width of their image; the item's name and its
    labels go to the table beside the gallery (``results_markdown``)."""
    return f"#{rank} · d={distance:.3g}"


def label_text(labels: np.ndarray | None, names: list[str] | None, query_labels: np.ndarray | None = None) -> str:
    """A result's labels, in full: for a class label its value and whether the query has it too; for binary
    attributes (CelebA's 40) how many agree with the query and every one both have, or, when the query has no
    labels (an upload), the result's own."""
    if labels is None or not names:
        return ""
    if len(names) == 1:
        value = f"{names[0]}={labels[0]:g}"
        if query_labels is None:
            return value
        return f"{value} ({'same' if labels[0] == query_labels[0] else 'differs'})"
    positive = labels > 0.5
    if query_labels is None:
        return ", ".join(n for n, p in zip(names, positive) if p) or "no attributes"
    shared = [n for n, a, b in zip(names, positive, query_labels > 0.5) if a and b]
    agree = int((positive == (query_labels > 0.5)).sum())
    return f"{agree}/{len(names)} agree; shared: {', '.join(shared) or 'none'}"


def results_markdown(rows: list[tuple[int, str, float, str]], query_has_labels: bool) -> str:
    """The ranked results as a table — rank, item, distance, labels — shown beside a search gallery so that
    nothing is cut."""
    labels_header = "shared with the query" if query_has_labels else "labels"
    has_labels = any(text for *_, text in rows)
    header = "| rank | item | distance |" + (f" {labels_header} |" if has_labels else "")
    lines = [header, "|---:|---|---:|" + ("---|" if has_labels else "")]
    for rank, item, distance, text in rows:
        name = (Path(item).name or item).replace("`", "'")
        cells = [str(rank), f"`{markdown_cell(name)}`", f"{distance:.4g}"] + ([markdown_cell(text)] if has_labels else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_cell(text: str) -> str:
    # GitHub-flavoured tables split cells at every "|", code spans included, unless it is escaped
    return text.replace("|", "\\|")


class AttributeDirections:
    """Attribute directions on an index's first ``limit`` latents and labels (``ganinv edit`` learns on as many
    labelled images: DIRECTION_TRAIN_N), each learned on first use (one logistic regression) — or read back from
    the run's directions folder, where ``ganinv edit`` finds it too (``apps.directions``, keyed by attribute, data
    kind, split and count). Latents in the prior's units (an index stores z∘s for runs with a latent scale)."""

    def __init__(self, model: InversionModel, index: SearchIndex | None, limit: int = DIRECTION_TRAIN_N,
                 warn: Callable[[str], None] = log_stderr):
        self.model, self.warn = model, warn
        self.columns: dict[str, np.ndarray] = {}
        self.latents = None
        self._cache: dict[str, Direction] = {}
        if index is None or index.labels is None or "latent" not in index.methods:
            return
        latents = index.vectors("latent")[:limit].astype(np.float32)
        scale = latent_scale(model)
        if scale is not None:
            latents = latents / np.maximum(scale.numpy(), 1e-8)
        columns = attribute_columns(index.label_names, index.labels[:limit])
        self.columns = {k: v for k, v in columns.items() if 0 < v.sum() < len(v)}
        self.latents = latents
        self.data, self.split = str(index.manifest.get("data")), str(index.manifest.get("split", "train"))

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def default(self) -> str | None:
        """The menu's first choice: a common, visible attribute when the labels have one, else the first."""
        return next((n for n in PREFERRED_ATTRIBUTES if n in self.columns), self.names[0] if self.names else None)

    def direction(self, name: str) -> Direction:
        check_attribute(name, self.names)
        if name not in self._cache:
            def learn() -> Direction:
                return Direction(*attribute_direction(self.latents, self.columns[name]), n_latents=len(self.latents))

            key = DirectionKey(name, self.data, len(self.latents), self.split)
            self._cache[name], _ = saved_or_learned(getattr(self.model, "source", None), key, learn,
                                                    dim=self.latents.shape[1], warn=self.warn)
        return self._cache[name]

    def get(self, name: str) -> tuple[np.ndarray, float]:
        """(unit direction, spread of the latents along it)."""
        d = self.direction(name)
        return d.direction, d.spread


# ------------------------------------------------------------------------------------------------ out of domain
def image_statistics(x: Tensor) -> tuple[list[str], Tensor]:
    """Per image of an N×C×H×W batch: brightness (mean grey level), contrast (its standard deviation), fine detail
    (the mean grey difference between neighbouring pixels: photos and digits are smooth at their size, noise is
    not) and, for colour, colourfulness (Hasler & Süsstrunk 2003, on [0, 1] values) — what a reader would call an
    image "unlike" a run's: a colour photo against grey digits, a dark or flat image against bright faces, noise."""
    x = x.detach().float().cpu()
    grey = x.mean(dim=1) if x.shape[1] == 1 else (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    detail = 0.5 * ((grey[:, 1:] - grey[:, :-1]).abs().flatten(1).mean(1)
                    + (grey[:, :, 1:] - grey[:, :, :-1]).abs().flatten(1).mean(1))
    columns = [grey.flatten(1).mean(1), grey.flatten(1).std(1), detail]
    if x.shape[1] == 1:
        return ["brightness", "contrast", "fine detail"], torch.stack(columns, dim=1)
    rg, yb = (x[:, 0] - x[:, 1]).flatten(1), (0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]).flatten(1)
    colourfulness = torch.hypot(rg.std(1), yb.std(1)) + 0.3 * torch.hypot(rg.mean(1), yb.mean(1))
    return ["brightness", "contrast", "fine detail", "colourfulness"], torch.stack(columns + [colourfulness], dim=1)


def training_data_spec(model: InversionModel) -> str | None:
    """The data spec the run was trained on: its own, or its frozen generator's run's; None when neither says."""
    config = getattr(model, "config", None)
    if config is None or config.data:
        return None if config is None else config.data
    try:
        return read_config(config.generator_run).data if config.generator_run else None
    except (GaninvError, OSError):
        return None


def training_images(model: InversionModel, n: int = DOMAIN_TRAIN_IMAGES) -> Tensor:
    """Up to n readable images spread evenly over the run's training split (a folder sorted by class is not
    one class), at the run's size and channels; a GaninvError when its data cannot be read here."""
    spec = training_data_spec(model)
    if spec is None:
        raise GaninvError("the run records no training data")
    net = model.config.net
    dataset = TolerantImages(open_dataset(spec, image_size=net.image_size, channels=net.channels, split="train"))
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().astype(int))
    images = [image for _, image, _, reason in (dataset[int(i)] for i in picks) if not reason]
    if len(images) < 2:
        raise GaninvError(f"{len(images)} readable training images")
    return torch.stack(images)


class DomainCheck:
    """Whether an image is far from the run's domain: its :func:`image_statistics` against those of
    DOMAIN_TRAIN_IMAGES of the run's training images (read once, on first use or at page start: ``reference``).
    Where its data cannot be read here (moved, or a run imported without it), DOMAIN_SAMPLES of the run's own
    samples stand in, and ``fallback`` says so in a line for the page — a generator's samples are a poor stand-in
    (a CelebA generator's faces are far less colourful than CelebA's). Far means more than DOMAIN_Z spreads
    (standard deviations, at least DOMAIN_MIN_SPREAD) from the mean in any statistic. It is a hint, not a verdict:
    it sees pixel statistics, not content."""

    def __init__(self, model: InversionModel, n: int = DOMAIN_SAMPLES, n_train: int = DOMAIN_TRAIN_IMAGES,
                 log: Callable[[str], None] | None = None):
        self.model, self.n, self.n_train, self.log = model, n, n_train, log or log_stderr
        self._reference: tuple[list[str], Tensor, Tensor] | None = None
        self.against = "training images"
        self.fallback: str | None = None  # why the run's samples stand in for its training images

    def reference(self) -> tuple[list[str], Tensor, Tensor]:
        if self._reference is None:
            names, stats = image_statistics(self.calibration_images())
            self._reference = names, stats.mean(0), stats.std(0).clamp_min(DOMAIN_MIN_SPREAD)
        return self._reference

    def calibration_images(self) -> Tensor:
        """The run's training images, or (saying why in ``fallback`` and, with the data's path, in the log) its
        samples."""
        try:
            return training_images(self.model, self.n_train)
        except (GaninvError, OSError) as exc:
            spec = training_data_spec(self.model)
            self.log(f"out-of-domain hint: the training data {spec or ''} cannot be read here ({one_line(str(exc))});"
                     " comparing uploads with the run's own samples instead")
            self.against = "samples"
            self.fallback = (f"The out-of-domain hint compares uploads with this run's own samples: its training "
                             f"data{f' ({data_kind(spec)})' if spec else ''} cannot be read here, so the hint may "
                             "flag images of the training distribution.")
        z = sample_latent(self.model, 0, self.n)
        with torch.inference_mode():  # in chunks: a large imported generator's batch of 32 is gigabytes
            return torch.cat([self.model.generate(chunk).float().cpu() for chunk in z.split(8)])

    def hint(self, x: Tensor) -> str | None:
        """One line when ``x`` (1×C×H×W) is out of the run's domain, else None."""
        names, mean, spread = self.reference()
        value = image_statistics(x)[1][0]
        z = (value - mean) / spread
        worst = int(z.abs().argmax())
        if float(z[worst].abs()) < DOMAIN_Z:
            return None
        return (f"out of domain: this image's {names[worst]} is {float(value[worst]):.2f} where the run's "
                f"{self.against} have {float(mean[worst]):.2f} ± {float(spread[worst]):.2f} — it is unlike what "
                "this run was trained on, so expect a poor reconstruction")


# ------------------------------------------------------------------------------------------------ the tabs' handlers
class ReconstructHandlers:
    """The Reconstruct tab. Outputs: (state, original, reconstruction, metrics, upload, status); the upload is
    cleared (None) so the same file can be uploaded again. The status leads with a hint when the image is out of
    the run's domain (``DomainCheck``)."""
    n_outputs = 6

    def __init__(self, model: InversionModel):
        self.model = model
        self.domain = DomainCheck(model)

    def answer(self, x: Tensor, method: str, steps: int, notes=(), check_domain: bool = True) -> tuple:
        result = reconstruct_image(self.model, x, method, steps)
        hint = self.domain.hint(x) if check_domain else None
        return (to_state(x), to_display(x), to_display(result["reconstruction"]),
                metrics_markdown(result["metrics"], result["seconds"], method), None,
                notes_markdown(list(notes), hint))

    @guarded(n_outputs)
    def rec_from_upload(self, path, method, steps, align=False):
        x, notes = read_upload(path, self.model.image_shape, align=bool(align))
        return self.answer(x, method, steps, notes)

    @guarded(n_outputs)
    def rec_from_sample(self, seed, method, steps):
        seed = check_seed(seed)
        return self.answer(sample_image(self.model, seed), method, steps, [f"a generated sample G(z), seed {seed}"],
                           check_domain=False)  # the run's own image

    @guarded(n_outputs)
    def rec_again(self, state, method, steps):
        if state is None:
            raise UploadError("upload an image or use a generated sample first")
        return self.answer(from_state(state), method, steps)


class SearchHandlers:
    """The Search tab. Outputs: (query, one gallery per index method, one results table per index method, upload,
    status); a gallery is a list of (image, short caption: rank and distance), its table the same results in full
    (item, distance, labels shared with the query)."""

    def __init__(self, model: InversionModel, index: SearchIndex):
        self.model, self.index = model, index
        self.methods = list(index.methods)
        # The number of outputs depends on the index, so the handlers are guarded here rather than at definition.
        self.n_outputs = 2 * len(self.methods) + 3
        self.from_upload = guarded(self.n_outputs)(self.from_upload)
        self.from_entry = guarded(self.n_outputs)(self.from_entry)

    def answer(self, x: Tensor, k: int, query_labels: np.ndarray | None, notes: list[str]) -> tuple:
        check_k(int(k), len(self.index))
        found = [self.results(x, int(k), method, query_labels) for method in self.methods]
        return (to_display(x), *(gallery for gallery, _ in found), *(table for _, table in found), None,
                notes_markdown(notes))

    def results(self, x: Tensor, k: int, method: str, query_labels: np.ndarray | None) -> tuple[list[tuple], str]:
        """(gallery, table) of the k nearest by one method."""
        index = self.index
        result = index.search_images(x, k=k, method=method, model=self.model)
        ids, items, distances = result.ids[0], result.items[0], result.distances[0]
        rows = [(rank + 1, item, float(d),
                 label_text(None if index.labels is None else index.labels[i], index.label_names, query_labels))
                for rank, (item, d, i) in enumerate(zip(items, distances, ids))]
        gallery = [(to_display(image, STRIP_SIDE), result_caption(rank, d))
                   for image, (rank, _, d, _) in zip(index.images(ids), rows)]
        return gallery, results_markdown(rows, query_labels is not None)

    def from_upload(self, path, k):
        x, notes = read_upload(path, self.index.image_shape)
        return self.answer(x, k, None, notes)

    def from_entry(self, i, k):
        index, i = self.index, int(i or 0)
        if not 0 <= i < len(index):
            raise UploadError(f"the index has entries 0 … {len(index) - 1}, not {i}")
        labels = None if index.labels is None else index.labels[i]
        return self.answer(index.images([i]), k, labels,
                           [f"query: indexed entry {i} ({index.items[i]}) — it finds itself first"])


DEGRADATIONS = ("downsample", "blur")


def max_factor(size: int) -> int:
    """The largest downsampling factor that leaves at least 2×2 pixels of a size×size image: below that there is
    nothing left to super-resolve."""
    return max(2, size // 2)


def degradation_controls(kind: str) -> tuple[bool, bool]:
    """Which slider the chosen degradation uses: (factor shown, σ shown)."""
    return kind == "downsample", kind == "blur"


def degradation_args(kind: str, factor, sigma, size: int) -> dict:
    """``factor=`` or ``sigma=`` for ``apps.superres.compare``, checked here so a value the slider should not allow
    (a request sent by hand, a typed-in number) gets one clear line instead of an error from deep inside."""
    if kind == "downsample":
        if factor is None or float(factor) != int(float(factor)) or not 2 <= int(float(factor)) <= max_factor(size):
            raise GaninvError(f"the downsampling factor must be a whole number from 2 to {max_factor(size)} for this "
                              f"run's {size}×{size} images (at least 2×2 pixels must be left), got {factor}")
        return {"factor": int(float(factor))}
    if kind == "blur":
        if sigma is None or not (0 < float(sigma) < float("inf")):
            raise GaninvError(f"the blur σ must be a positive number of pixels, got {sigma}")
        return {"sigma": float(sigma)}
    raise GaninvError(f"unknown degradation {kind!r}; choose {' or '.join(DEGRADATIONS)}")


class SuperresHandlers:
    """The Super-resolve tab. Outputs: (state, degraded, inverted, bicubic, clean, table, upload, status). The
    degradation is ``kind`` ("downsample" by ``factor`` or "blur" by ``sigma``); the other value is ignored."""
    n_outputs = 8

    def __init__(self, model: InversionModel):
        self.model = model

    def answer(self, clean: Tensor, kind: str, factor, sigma, notes=()) -> tuple:
        if not self.model.can_invert:
            raise GaninvError("super-resolution needs a run with an encoder")
        size = clean.shape[-1]
        args = degradation_args(kind, factor, sigma, size)
        rows = compare(clean, model=self.model, **args)
        table = "| vs clean | PSNR dB | SSIM |\n|---|---|---|\n" + "\n".join(
            f"| {name} | {float(psnr(clean, img).mean()):.2f} | {float(ssim(clean, img).mean()):.4f} |"
            for name, img in rows.items() if name != "clean")
        bicubic = rows.get("bicubic")
        done = (f"downsampled ×{args['factor']}: {size}×{size} → {size // args['factor']}×{size // args['factor']} "
                "pixels" if "factor" in args else f"blurred with σ = {args['sigma']:g} pixels")
        notes = list(notes) + [done] + ([] if bicubic is not None else ["bicubic applies to downsampling only"])
        return (to_state(clean), to_display(rows["degraded"]), to_display(rows["inverted"]),
                None if bicubic is None else to_display(bicubic), to_display(clean), table, None,
                notes_markdown(notes))

    @guarded(n_outputs)
    def sr_from_upload(self, path, kind, factor, sigma):
        x, notes = read_upload(path, self.model.image_shape)
        return self.answer(x, kind, factor, sigma, notes)

    @guarded(n_outputs)
    def sr_from_sample(self, kind, factor, sigma):
        return self.answer(sample_image(self.model, 0), kind, factor, sigma, ["a generated sample, seed 0"])

    @guarded(n_outputs)
    def sr_again(self, state, kind, factor, sigma):
        if state is None:
            raise UploadError("upload an image or use a generated sample first")
        return self.answer(from_state(state), kind, factor, sigma)


class EditHandlers:
    """The Edit tab: interpolation A → B, attribute edits of A (with an index on labelled data) and the traversal
    of A's most important elements (runs with a latent scale). Outputs of each: (image, status)."""

    def __init__(self, model: InversionModel, directions: AttributeDirections | None = None):
        self.model = model
        self.directions = directions
        self.scale = latent_scale(model)

    def latent_of(self, path, fallback_seed: int = 0) -> tuple[Tensor, list[str]]:
        """The upload's latent (by the encoder, or optimisation) with its notes; a sample's when none is given."""
        if path is None:
            return sample_latent(self.model, fallback_seed), []
        x, notes = read_upload(path, self.model.image_shape)
        return run_inversion(self.model, x, "encoder" if self.model.can_invert else "optimisation", EDIT_STEPS), notes

    @guarded(2)
    def do_interpolate(self, a, b, steps):
        if a is None or b is None:
            raise UploadError("upload both image A and image B")
        (za, notes_a), (zb, notes_b) = self.latent_of(a), self.latent_of(b)
        steps = int(steps)
        # ASCII labels: the grid's font (PIL's default) has no "→", "−" or "σ"
        grid = labelled_grid([interpolate(self.model, za, zb, steps)], ["A -> B"],
                             column_labels=[f"t={t:.2f}" for t in np.linspace(0, 1, steps)],
                             title=f"G((1-t)*z_A + t*z_B), {steps} steps")
        return grid_display(grid), notes_markdown([f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b])

    @guarded(2)
    def do_attribute(self, a, name, strength, steps):
        """A moved along the attribute's direction from 0 to ``strength`` std: the sign says which way (negative:
        away from the attribute), so −s and +s give mirrored rows that both start at A."""
        if self.directions is None or not self.directions.names:
            raise GaninvError("attribute edits need the page started with --index on a labelled collection")
        z, notes = self.latent_of(a)
        direction, spread = self.directions.get(name)
        strengths = np.linspace(0.0, float(strength), int(steps))
        edited = edit_attribute(self.model, z, direction, spread, strengths)
        way = "towards" if float(strength) >= 0 else "away from"
        grid = labelled_grid([edited], [f"A, {name}"], column_labels=[f"{v:+.2f}" for v in strengths],
                             title=f"A moved {way} {name}: 0 ... {float(strength):+g} std along its direction")
        return grid_display(grid), notes_markdown(
            notes + [f"{name}: direction from {self.directions.direction(name).n_latents} labelled latents"])

    @guarded(2)
    def do_traverse(self, a, k, steps):
        z, notes = self.latent_of(a)
        grid, description = traversal_grid(self.model, z, top_elements(self.model, int(k)), int(steps))
        return grid_display(grid), notes_markdown(notes + [description])


class RandomHandlers:
    """The Random tab: G(z) for n seeded samples and, for runs with an encoder, the round trip G(invert(G(z))).
    Outputs: (grid, metrics, status)."""

    def __init__(self, model: InversionModel):
        self.model = model

    @guarded(3)
    def do_random(self, seed, n):
        model = self.model
        seed = check_seed(seed)
        z = sample_latent(model, seed, n)
        with torch.inference_mode():
            g = model.generate(z).float().cpu()
        if not model.can_invert:
            return grid_display(random_grid([g], ["G(z)"], seed)), None, notes_markdown(
                ["this run has no encoder: G(z) only"])
        start = time.perf_counter()
        with torch.inference_mode():
            z_hat = model.invert(g)
            rec = model.generate(z_hat).float().cpu()
        seconds = time.perf_counter() - start
        latent_mse = float(((z_hat.cpu() - z.cpu()) ** 2).mean())
        md = metrics_markdown(reconstruction_metrics(g, rec), seconds, "encoder")
        md += f"\n| latent MSE ‖ẑ − z‖² / d | {latent_mse:.4f} |"
        return grid_display(random_grid([g, rec], ["G(z)", "G(invert(G(z)))"], seed)), md, None


def random_grid(rows: list[Tensor], labels: list[str], seed: int) -> Tensor:
    return labelled_grid(rows, labels, column_labels=[f"#{i + 1}" for i in range(len(rows[0]))],
                         title=f"samples of seed {seed}")


# ------------------------------------------------------------------------------------------------ serving checks
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_index(model: InversionModel, index: SearchIndex | str | Path | None) -> SearchIndex | None:
    """The index (loaded when given as a directory), refused when its images are not the run's shape."""
    if index is not None and not hasattr(index, "search_images"):  # a directory, not a loaded index
        index = SearchIndex.load(index)
    if index is not None and tuple(index.image_shape) != tuple(model.image_shape):
        raise GaninvError(f"the index holds {'×'.join(map(str, index.image_shape))} images but the run makes "
                          f"{'×'.join(map(str, model.image_shape))}; was it built from another run?")
    return index


def check_index_matches(run: str | Path, index_dir: str | Path) -> SearchIndex:
    """The index at ``index_dir``, refused with a clear message when another run built it."""
    index = SearchIndex.load(index_dir)
    if run_fingerprint(run) != index.manifest.get("run_fingerprint"):
        raise GaninvError(f"{index_dir} was built by another run ({index.manifest.get('run')}); its latents mean "
                          f"nothing to {run}. Rebuild it: ganinv index {run} --data {index.manifest.get('data')} "
                          f"--out NEW_INDEX")
    return index
