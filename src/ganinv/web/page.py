"""The web page: a gradio app over one ``InversionModel`` for people who would rather look than read.

    build_app(model, index=None)        gr.Blocks with the tabs Reconstruct, Search (with an index),
                                        Super-resolve, Edit and Random
    serve(run, index=..., host=..., port=..., keep_results=...)
    ganinv serve RUN [--index INDEX] [--port 7860] [--host 127.0.0.1] [--keep-results 1000]

Every handler turns a bad upload (not an image, empty, huge) or any other failure into a message on the page,
never a stack trace, and the server keeps serving; grey and RGBA uploads are converted with a note saying so.
Nothing phones home: gradio's analytics are off, there is no share link (so no frpc download) and the theme uses
system fonts instead of fetching Google Fonts.

Result images are written by the page itself (``ResultFiles``), each once under a name of its own, never rewritten
while a browser downloads it, and only the newest ``keep_results`` are kept on disk; uploads are deleted an hour
after they arrive.

The logic behind the widgets (``read_upload``, ``run_inversion``, ``reconstruct_image``, ``to_display``, …) is
plain Python over tensors, importable and testable without a browser.
"""
from __future__ import annotations

import atexit
import functools
import ipaddress
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

# Before gradio is imported anywhere: no analytics, no version check, no hub telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from ganinv.apps import edit as E
from ganinv.apps import latent_scale
from ganinv.apps.edit import attribute_columns, attribute_direction, check_attribute
from ganinv.apps.search import SearchIndex, check_k
from ganinv.apps.superres import compare
from ganinv.core.errors import DataError, GaninvError  # noqa: E402
from ganinv.core.rundir import run_fingerprint
from ganinv.core.viz import comparison_grid
from ganinv.data import load_image
from ganinv.inference.hybrid import refine
from ganinv.inference.model import InversionModel  # noqa: E402
from ganinv.methods.optimize import invert_by_optimization
from ganinv.metrics import psnr, reconstruction_metrics, ssim

MAX_UPLOAD_BYTES = 20 * 2**20      # larger uploads are refused with a message
MAX_UPLOAD_PIXELS = 50_000_000     # so are images of more pixels (decompression bombs among them)
DISPLAY_SIDE = 192                 # tiny run images are shown enlarged (nearest neighbour) to at least this side
METHODS = ("encoder", "hybrid")    # runs with an inverse network; a generator-only run gets "optimisation"
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L")
KEEP_RESULTS = 1000                # result images kept on disk to be served (a few kB each at these sizes)
MIN_KEEP_RESULTS = 128             # a search alone makes up to 81 images: fewer could delete some before they are seen
UPLOAD_MAX_AGE_S = 3600            # uploads are deleted this long after they arrive …
UPLOAD_SWEEP_S = 600               # … by a sweep this often (gradio's delete_cache)


class UploadError(GaninvError):
    """An upload that cannot be used; its message is shown on the page."""


# ------------------------------------------------------------------------------------------------ uploads
def read_upload(path: str | Path | None, shape: tuple[int, int, int], *, max_bytes: int = MAX_UPLOAD_BYTES,
                max_pixels: int = MAX_UPLOAD_PIXELS) -> tuple[Tensor, list[str]]:
    """An uploaded file as a 1×C×H×W batch at the run's shape, plus notes on what was changed (size, channels,
    transparency). Raises ``UploadError`` with a one-line reason for anything that is not a usable image."""
    from PIL import Image, UnidentifiedImageError


    if path is None or str(path) == "":
        raise UploadError("no file: upload an image first")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise UploadError(f"{name}: the upload is missing; please upload it again")
    n_bytes = path.stat().st_size
    if n_bytes == 0:
        raise UploadError(f"{name} is empty")
    if n_bytes > max_bytes:
        raise UploadError(f"{name} is {n_bytes / 2**20:.1f} MB; uploads are limited to {max_bytes / 2**20:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                (w, h), mode = im.size, im.mode
                alpha = mode in ALPHA_MODES or (mode == "P" and "transparency" in im.info)
    except UnidentifiedImageError:
        raise UploadError(f"{name} is not an image: upload a PNG, JPEG, WebP, BMP or GIF file") from None
    except Image.DecompressionBombError:
        raise UploadError(f"{name} is far too large (a decompression bomb?); the limit is "
                          f"{max_pixels / 1e6:.0f} megapixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(f"{name} cannot be read as an image: {' '.join(str(exc).split()) or type(exc).__name__}"
                          ) from None
    if w * h > max_pixels:
        raise UploadError(f"{name} is {w}×{h} ({w * h / 1e6:.0f} megapixels); the limit is "
                          f"{max_pixels / 1e6:.0f} megapixels")
    channels, size, _ = shape
    try:
        x = load_image(path, image_size=size, channels=channels)
    except DataError as exc:
        raise UploadError(str(exc).replace(str(path), name)) from None
    notes = []
    if (w, h) != (size, size):
        notes.append(f"{w}×{h} → centre-cropped and resized to {size}×{size}")
    if alpha:
        notes.append("transparency flattened onto white")
    grey = mode in GREY_MODES
    if grey and channels == 3:
        notes.append("grey image → its grey level repeated in R, G and B")
    elif not grey and channels == 1:
        notes.append("colour image → converted to grey for this run")
    return x.unsqueeze(0), notes


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


def from_state(value) -> Tensor | None:
    """The image kept in a page's state (a float32 array) back as a 1×C×H×W tensor."""
    return None if value is None else torch.from_numpy(np.asarray(value, dtype=np.float32))


def to_state(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


# ------------------------------------------------------------------------------------------------ the logic
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


def metrics_markdown(metrics: dict[str, float], seconds: float | None = None, method: str | None = None) -> str:
    rows = [("PSNR", f"{metrics['psnr']:.2f} dB"), ("SSIM", f"{metrics['ssim']:.4f}"),
            ("dHash similarity", f"{metrics['dhash_similarity']:.4f}")]
    if "lpips" in metrics:
        rows.append(("LPIPS", f"{metrics['lpips']:.4f}"))
    if seconds is not None:
        rows.append(("time", f"{seconds * 1000:.0f} ms" + (f" ({method})" if method else "")))
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def notes_markdown(notes: list[str]) -> str:
    return "  \n".join(f"ℹ️ {n}" for n in notes)


def error_markdown(message: str) -> str:
    return f"⚠️ **error:** {message}"


def sample_image(model: InversionModel, seed: int) -> Tensor:
    with torch.inference_mode():
        return model.generate(model.sample(1, generator=torch.Generator().manual_seed(int(seed)))).float().cpu()


def strip(images: Tensor) -> Tensor:
    """A batch as one row (C×H×W) with white gaps."""

    return comparison_grid([images])


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
                (log or _log_stderr)(traceback.format_exc())
                message = f"something went wrong ({type(exc).__name__}: {' '.join(str(exc).split())})"
            return (None,) * (n_outputs - 1) + (error_markdown(message),)
        return wrapper
    return decorate


def _log_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ search and editing
def result_caption(rank: int, item: str, distance: float, labels: np.ndarray | None, names: list[str] | None,
                   query_labels: np.ndarray | None = None) -> str:
    """"#1 name · d=0.123" plus, where labels exist, the attributes shared with the query (or the result's own
    when the query has none)."""
    text = f"#{rank} {Path(item).name or item} · d={distance:.3g}"
    if labels is None or not names:
        return text
    if len(names) == 1:
        value = f"{names[0]}={labels[0]:g}"
        if query_labels is not None:
            return f"{text} · {value} ({'same' if labels[0] == query_labels[0] else 'differs'})"
        return f"{text} · {value}"
    positive = labels > 0.5
    if query_labels is not None:
        shared = [n for n, a, b in zip(names, positive, query_labels > 0.5) if a and b]
        agree = int((positive == (query_labels > 0.5)).sum())
        return f"{text} · {agree}/{len(names)} attributes agree; shared: {', '.join(shared[:6]) or 'none'}"
    own = [n for n, p in zip(names, positive) if p]
    return f"{text} · {', '.join(own[:6]) or 'no attributes'}"


class AttributeDirections:
    """Attribute directions learned lazily (one logistic regression each, cached) on an index's latents and
    labels; latents in the prior's units (an index stores z∘s for runs with a latent scale)."""

    def __init__(self, model: InversionModel, index, limit: int = 5000):

        self.columns: dict[str, np.ndarray] = {}
        self.latents = None
        if index is None or index.labels is None or "latent" not in index.methods:
            return
        latents = index.vectors("latent")[:limit].astype(np.float32)
        scale = latent_scale(model)
        if scale is not None:
            latents = latents / np.maximum(scale.numpy(), 1e-8)
        columns = attribute_columns(index.label_names, index.labels[:limit])
        self.columns = {k: v for k, v in columns.items() if 0 < v.sum() < len(v)}
        self.latents = latents
        self._cache: dict[str, tuple[np.ndarray, float]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def get(self, name: str) -> tuple[np.ndarray, float]:

        check_attribute(name, self.names)
        if name not in self._cache:
            direction, spread, _ = attribute_direction(self.latents, self.columns[name])
            self._cache[name] = (direction, spread)
        return self._cache[name]


# ------------------------------------------------------------------------------------------------ result files
class ResultFiles:
    """The page's output images as PNG files, each written once under a name never used before, in a folder the
    app owns inside gradio's upload folder (so gradio serves it in place instead of copying it), and never
    rewritten; beyond the newest ``keep`` the oldest are deleted.

    Why not let gradio save the arrays: gradio names each saved image by a hash of its bytes and rewrites that file
    on every request (``processing_utils.save_pil_to_cache``: ``Path.write_bytes``, which truncates first), so
    identical results of concurrent requests cut each other's downloads short (h11: "Too little data for declared
    Content-Length")."""

    def __init__(self, folder: str | Path | None = None, keep: int = KEEP_RESULTS):
        if keep < 1:
            raise GaninvError(f"keep must be at least 1, got {keep}")
        self.keep = int(keep)
        self._folder = None if folder is None else Path(os.path.abspath(folder))
        self._kept: deque[tuple[Path, set | None]] = deque()
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        """Made on first use, so building the page writes nothing; removed when the process exits."""
        with self._lock:
            if self._folder is None:
                from gradio.utils import get_upload_folder

                parent = Path(os.path.abspath(get_upload_folder()))
                parent.mkdir(parents=True, exist_ok=True)
                self._folder = Path(tempfile.mkdtemp(prefix="ganinv-results-", dir=parent))
                atexit.register(self.remove_all)
            else:
                self._folder.mkdir(parents=True, exist_ok=True)
            return self._folder

    def write_png(self, array: np.ndarray, served_paths: set | None = None) -> str:
        """The H×W×3 uint8 ``array`` as a new PNG file; its path. ``served_paths``: the gradio component's set of
        the files it has served, from which the path is removed again when the file is deleted (gradio only ever
        adds to it)."""
        from PIL import Image

        folder = self.folder
        final = folder / f"{uuid.uuid4().hex}.png"
        staging = folder / f".{final.name}.part"
        try:
            Image.fromarray(array).save(staging, format="PNG")
            os.replace(staging, final)  # a file under its final name is always complete
        finally:
            staging.unlink(missing_ok=True)
        self._remember(final, served_paths)
        return str(final)

    def _remember(self, path: Path, served_paths: set | None) -> None:
        with self._lock:
            self._kept.append((path, served_paths))
            expired = [self._kept.popleft() for _ in range(len(self._kept) - self.keep)]
        for old, served in expired:
            old.unlink(missing_ok=True)
            if served is not None:
                served.discard(str(old))

    def paths(self) -> list[Path]:
        with self._lock:
            return [path for path, _ in self._kept]

    def remove_all(self) -> None:
        with self._lock:
            folder, self._kept = self._folder, deque()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def page_components() -> tuple[type, type, type]:
    """gr.Image and gr.Gallery that give gradio a file from their ``results`` (a ``ResultFiles``) for each image
    array instead of letting gradio save it (see ResultFiles for why), and a gr.File that leaves no file behind per
    upload. ``is_template`` has the page draw them with gradio's own Image, Gallery and File widgets."""
    import gradio as gr
    from gradio.data_classes import ListFiles

    class ResultImage(gr.Image):
        is_template = True
        results: ResultFiles

        def postprocess(self, value):
            if isinstance(value, np.ndarray):
                value = self.results.write_png(value, self.temp_files)
            return super().postprocess(value)

    class ResultGallery(gr.Gallery):
        is_template = True
        results: ResultFiles

        def postprocess(self, value):
            if isinstance(value, (list, tuple)):
                value = [self._as_file(item) for item in value]
            return super().postprocess(value)

        def _as_file(self, item):
            image, caption = item if isinstance(item, (tuple, list)) else (item, None)
            if isinstance(image, np.ndarray):
                image = self.results.write_png(image, self.temp_files)
            return image if caption is None else (image, caption)

    class UploadFile(gr.File):
        is_template = True

        def preprocess(self, payload):
            # The uploaded file's path, as gr.File(type="filepath") gives, without gradio's File.preprocess, which
            # (6.x) also creates an empty NamedTemporaryFile in its cache on every upload and never deletes it.
            if isinstance(payload, ListFiles):
                payload = payload[0] if len(payload.root) else None
            return None if payload is None else payload.path

    return ResultImage, ResultGallery, UploadFile


# ------------------------------------------------------------------------------------------------ the page
THEME_FONTS = ["system-ui", "sans-serif"]
CSS = ".status p { margin: 0.2em 0; } footer { display: none !important; }"


def theme():
    import gradio as gr

    # System fonts: the default theme would fetch Google Fonts, which this page must never do.
    return gr.themes.Default(font=[gr.themes.Font(f) for f in THEME_FONTS],
                             font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")])


def build_app(model: InversionModel, index=None, *, title: str = "ganinv",
              results: ResultFiles | None = None) -> "gr.Blocks":  # noqa: F821
    """The gradio page over one model (and, optionally, a ``SearchIndex`` or index directory built from it); its
    result images are written to ``results`` (by default a new ``ResultFiles``), kept as ``blocks.results``."""
    import gradio as gr


    if index is not None and not hasattr(index, "search_images"):

        index = SearchIndex.load(index)
    if index is not None and tuple(index.image_shape) != tuple(model.image_shape):
        raise GaninvError(f"the index holds {'×'.join(map(str, index.image_shape))} images but the run makes "
                          f"{'×'.join(map(str, model.image_shape))}; was it built from another run?")
    channels, size, _ = model.image_shape
    scale = latent_scale(model)
    directions = AttributeDirections(model, index)
    choices = method_choices(model)
    describe = (f"**{model.config.method}** run · {size}×{size} px · {channels} channel(s) · latent dimension "
                f"{model.prior.dim}" + ("" if model.can_invert else " · no encoder: inversion by optimisation"))

    results = ResultFiles() if results is None else results
    ResultImage, ResultGallery, UploadFile = page_components()

    def image(label, elem_id, **kw):
        component = ResultImage(label=label, elem_id=elem_id, type="numpy", format="png", interactive=False,
                                height=kw.pop("height", 220), **kw)
        component.results = results
        return component

    def gallery(label, elem_id, **kw):
        component = ResultGallery(label=label, elem_id=elem_id, format="png", **kw)
        component.results = results
        return component

    def status(elem_id):
        return gr.Markdown(elem_id=elem_id, elem_classes=["status"])

    def upload(label, elem_id):
        return UploadFile(label=label, elem_id=elem_id, file_count="single", type="filepath", height=140)

    def on(event, fn, inputs, outputs):
        # One model, one event at a time: every handler shares the "model" concurrency slot.
        return event(fn, inputs=inputs, outputs=outputs, concurrency_id="model", concurrency_limit=1,
                     show_progress="minimal")

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(UPLOAD_SWEEP_S, UPLOAD_MAX_AGE_S)) as blocks:
        gr.Markdown(f"# ganinv — see what inversion does to your image\n{describe}")
        with gr.Tabs():
            # ---------------------------------------------------------------------------- Reconstruct
            with gr.Tab("Reconstruct", id="reconstruct"):
                current = gr.State(None)
                with gr.Row():
                    with gr.Column(scale=1):
                        rec_file = upload("upload an image", "reconstruct-upload")
                        with gr.Row():
                            rec_seed = gr.Number(0, label="sample seed", precision=0, minimum=0)
                            rec_sample = gr.Button("use a generated sample", elem_id="reconstruct-sample")
                        rec_method = gr.Radio(choices, value=choices[0], label="method", elem_id="reconstruct-method")
                        rec_steps = gr.Slider(0, 500, value=50, step=10, label="refine steps (hybrid / optimisation)")
                        rec_run = gr.Button("reconstruct again", variant="primary")
                    with gr.Column(scale=2):
                        with gr.Row():
                            rec_original = image("original (at the run's size)", "reconstruct-original")
                            rec_output = image("reconstruction G(invert(x))", "reconstruct-output")
                        rec_metrics = gr.Markdown(elem_id="reconstruct-metrics")
                        rec_status = status("reconstruct-status")

                def _reconstruct(x, method, steps, notes=()):
                    result = reconstruct_image(model, x, method, steps)
                    return (to_state(x), to_display(x), to_display(result["reconstruction"]),
                            metrics_markdown(result["metrics"], result["seconds"], method), None,
                            notes_markdown(list(notes)))

                @guarded(6)
                def rec_from_upload(path, method, steps):
                    x, notes = read_upload(path, model.image_shape)
                    return _reconstruct(x, method, steps, notes)

                @guarded(6)
                def rec_from_sample(seed, method, steps):
                    return _reconstruct(sample_image(model, seed or 0), method, steps,
                                        [f"a generated sample G(z), seed {int(seed or 0)}"])

                @guarded(6)
                def rec_again(state, method, steps):
                    if state is None:
                        raise UploadError("upload an image or use a generated sample first")
                    return _reconstruct(from_state(state), method, steps)

                outs = [current, rec_original, rec_output, rec_metrics, rec_file, rec_status]
                on(rec_file.upload, rec_from_upload, [rec_file, rec_method, rec_steps], outs)
                on(rec_sample.click, rec_from_sample, [rec_seed, rec_method, rec_steps], outs)
                on(rec_run.click, rec_again, [current, rec_method, rec_steps], outs)

            # ---------------------------------------------------------------------------- Search
            with gr.Tab("Search", id="search"):
                if index is None:
                    gr.Markdown("Start the page with `--index INDEX` (built by `ganinv index RUN --data SPEC "
                                "--out INDEX`) to search a collection by latents and by the hash baselines.")
                else:
                    _search_tab(gr, model, index, image, gallery, upload, status, on)

            # ---------------------------------------------------------------------------- Super-resolve
            with gr.Tab("Super-resolve", id="superres"):
                sr_state = gr.State(None)
                with gr.Row():
                    with gr.Column(scale=1):
                        sr_file = upload("upload a clean image", "superres-upload")
                        sr_sample = gr.Button("use a generated sample")
                        sr_kind = gr.Radio(["downsample", "blur"], value="downsample", label="degradation")
                        sr_factor = gr.Slider(1, max(1, size // 2), value=min(4, max(1, size // 2)), step=1,
                                              label="downsample factor ×")
                        sr_sigma = gr.Slider(0, 4, value=1.5, step=0.25, label="blur σ (pixels)")
                        sr_run = gr.Button("degrade and super-resolve", variant="primary")
                with gr.Row():
                    sr_degraded = image("degraded input", "superres-degraded", height=180)
                    sr_inverted = image("reconstruction (inversion)", "superres-inverted", height=180)
                    sr_bicubic = image("bicubic", "superres-bicubic", height=180)
                    sr_clean = image("clean", "superres-clean", height=180)
                sr_metrics = gr.Markdown()
                sr_status = status("superres-status")

                def _superres(clean, kind, factor, sigma, notes=()):

                    if not model.can_invert:
                        raise GaninvError("super-resolution needs a run with an encoder")
                    args = dict(factor=int(factor)) if kind == "downsample" else dict(sigma=float(sigma))
                    rows = compare(clean, model=model, **args)
                    table = "| vs clean | PSNR dB | SSIM |\n|---|---|---|\n" + "\n".join(
                        f"| {name} | {float(psnr(clean, img).mean()):.2f} | {float(ssim(clean, img).mean()):.4f} |"
                        for name, img in rows.items() if name != "clean")
                    bicubic = rows.get("bicubic")
                    return (to_state(clean), to_display(rows["degraded"]), to_display(rows["inverted"]),
                            None if bicubic is None else to_display(bicubic), to_display(clean), table, None,
                            notes_markdown(list(notes) + ([] if bicubic is not None else
                                                          ["bicubic applies to downsampling only"])))

                @guarded(8)
                def sr_from_upload(path, kind, factor, sigma):
                    x, notes = read_upload(path, model.image_shape)
                    return _superres(x, kind, factor, sigma, notes)

                @guarded(8)
                def sr_from_sample(kind, factor, sigma):
                    return _superres(sample_image(model, 0), kind, factor, sigma, ["a generated sample, seed 0"])

                @guarded(8)
                def sr_again(state, kind, factor, sigma):
                    if state is None:
                        raise UploadError("upload an image or use a generated sample first")
                    return _superres(from_state(state), kind, factor, sigma)

                outs = [sr_state, sr_degraded, sr_inverted, sr_bicubic, sr_clean, sr_metrics, sr_file, sr_status]
                on(sr_file.upload, sr_from_upload, [sr_file, sr_kind, sr_factor, sr_sigma], outs)
                on(sr_sample.click, sr_from_sample, [sr_kind, sr_factor, sr_sigma], outs)
                on(sr_run.click, sr_again, [sr_state, sr_kind, sr_factor, sr_sigma], outs)

            # ---------------------------------------------------------------------------- Edit
            with gr.Tab("Edit", id="edit"):
                gr.Markdown("Image **A** is edited (a generated sample when none is uploaded); **B** is the other "
                            "end of the interpolation.")
                with gr.Row():
                    ed_a = upload("image A", "edit-upload-a")
                    ed_b = upload("image B", "edit-upload-b")
                    ed_steps = gr.Slider(3, 12, value=8, step=1, label="images per row")
                ed_interp = gr.Button("interpolate A → B", variant="primary")
                ed_interp_out = image("interpolation G((1−t)·z_A + t·z_B)", "edit-interpolation", height=160)
                ed_interp_status = status("edit-interp-status")

                def _latent_of(path, fallback_seed=0):
                    if path is None:
                        with torch.inference_mode():
                            return model.sample(1, generator=torch.Generator().manual_seed(fallback_seed)), []
                    x, notes = read_upload(path, model.image_shape)
                    return run_inversion(model, x, "encoder" if model.can_invert else "optimisation", 100), notes

                @guarded(2)
                def do_interpolate(a, b, steps):
                    if a is None or b is None:
                        raise UploadError("upload both image A and image B")
                    za, na = _latent_of(a)
                    zb, nb = _latent_of(b)
                    row = E.interpolate(model, za, zb, int(steps))
                    return to_display(strip(row), 96), notes_markdown([f"A: {n}" for n in na] + [f"B: {n}" for n in nb])

                on(ed_interp.click, do_interpolate, [ed_a, ed_b, ed_steps], [ed_interp_out, ed_interp_status])

                with gr.Row():
                    if directions.names:
                        ed_attr = gr.Dropdown(directions.names, value=directions.names[0], label="attribute")
                        ed_strength = gr.Slider(-3, 3, value=2, step=0.25,
                                                label="strength (std of the latents along the direction)")
                        ed_attr_run = gr.Button("edit A")
                    else:
                        gr.Markdown("Attribute sliders appear when the page is started with `--index` on a "
                                    "labelled collection (CelebA attributes, digit classes).")
                if directions.names:
                    ed_attr_out = image("attribute edit: −strength … A … +strength", "edit-attribute", height=160)
                    ed_attr_status = status("edit-attr-status")

                    @guarded(2)
                    def do_attribute(a, name, strength, steps):
                        z, notes = _latent_of(a)
                        direction, spread = directions.get(name)
                        s = abs(float(strength))
                        edited = E.edit_attribute(model, z, direction, spread, np.linspace(-s, s, int(steps)))
                        return to_display(strip(edited), 96), notes_markdown(
                            notes + [f"{name}: direction from {len(directions.latents)} indexed latents"])

                    on(ed_attr_run.click, do_attribute, [ed_a, ed_attr, ed_strength, ed_steps],
                       [ed_attr_out, ed_attr_status])

                with gr.Row():
                    if scale is not None:
                        ed_k = gr.Slider(1, min(8, model.prior.dim), value=min(4, model.prior.dim), step=1,
                                         label="most important latent elements (largest scale s)")
                        ed_trav = gr.Button("traverse A's elements from −2 to 2")
                    else:
                        gr.Markdown(f"The most-important-element traversal needs a run with a latent scale "
                                    f"(dlsgan); this is a {model.config.method!r} run.")
                if scale is not None:
                    ed_trav_out = image("traversal: one row per element", "edit-traversal", height=260)
                    ed_trav_status = status("edit-trav-status")

                    @guarded(2)
                    def do_traverse(a, k, steps):

                        z, notes = _latent_of(a)
                        elements = E.top_elements(model, int(k))
                        rows = E.traverse(model, z, elements, int(steps))
                        grid = comparison_grid(list(rows.split(int(steps))))
                        return to_display(grid), notes_markdown(
                            notes + ["rows: elements " + ", ".join(f"{int(e)} (s={float(scale[e]):.3f})"
                                                                   for e in elements)])

                    on(ed_trav.click, do_traverse, [ed_a, ed_k, ed_steps], [ed_trav_out, ed_trav_status])

            # ---------------------------------------------------------------------------- Random
            with gr.Tab("Random", id="random"):
                with gr.Row():
                    rnd_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    rnd_n = gr.Slider(1, 8, value=6, step=1, label="samples")
                    rnd_run = gr.Button("sample z", variant="primary", elem_id="random-run")
                rnd_out = image("top: G(z) · bottom: G(invert(G(z))) — the round trip", "random-output", height=260)
                rnd_metrics = gr.Markdown()
                rnd_status = status("random-status")

                @guarded(3)
                def do_random(seed, n):

                    with torch.inference_mode():
                        z = model.sample(int(n), generator=torch.Generator().manual_seed(int(seed or 0)))
                        g = model.generate(z).float().cpu()
                    if not model.can_invert:
                        return to_display(strip(g), 96), None, notes_markdown(["this run has no encoder: G(z) only"])
                    start = time.perf_counter()
                    with torch.inference_mode():
                        z_hat = model.invert(g)
                        rec = model.generate(z_hat).float().cpu()
                    seconds = time.perf_counter() - start
                    latent_mse = float(((z_hat.cpu() - z.cpu()) ** 2).mean())
                    md = metrics_markdown(reconstruction_metrics(g, rec), seconds, "encoder")
                    md += f"\n| latent MSE ‖ẑ − z‖² / d | {latent_mse:.4f} |"
                    return to_display(comparison_grid([g, rec])), md, None

                on(rnd_run.click, do_random, [rnd_seed, rnd_n], [rnd_out, rnd_metrics, rnd_status])
    blocks.results = results
    return blocks


def _search_tab(gr, model, index, image, gallery, upload, status, on) -> None:

    methods = list(index.methods)
    names = index.label_names
    with gr.Row():
        with gr.Column(scale=1):
            q_file = upload("query image", "search-upload")
            q_entry = gr.Number(0, label="…or an indexed image by number", precision=0, minimum=0,
                                maximum=len(index) - 1)
            q_pick = gr.Button("search with that indexed image")
            q_k = gr.Slider(1, min(20, len(index)), value=min(8, len(index)), step=1, label="k")
        q_image = image("query", "search-query", height=180)
    galleries = [gallery(f"{m}" + (" (latents)" if m == "latent" else " (baseline)"), f"search-{m}", columns=8,
                         height=220) for m in methods]
    q_status = status("search-status")

    def run(x, k, query_labels, notes):
        check_k(int(k), len(index))
        out = []
        for m in methods:
            result = index.search_images(x, k=int(k), method=m, model=model)
            found = index.images(result.ids[0])
            out.append([(to_display(img, 96), result_caption(r + 1, item, d, None if index.labels is None else
                                                             index.labels[i], names, query_labels))
                        for r, (img, item, d, i) in enumerate(zip(found, result.items[0], result.distances[0],
                                                                  result.ids[0]))])
        return (to_display(x), *out, None, notes_markdown(notes))

    n_out = len(methods) + 3

    @guarded(n_out)
    def from_upload(path, k):
        x, notes = read_upload(path, index.image_shape)
        return run(x, k, None, notes)

    @guarded(n_out)
    def from_entry(i, k):
        i = int(i or 0)
        if not 0 <= i < len(index):
            raise UploadError(f"the index has entries 0 … {len(index) - 1}, not {i}")
        x = index.images([i])
        labels = None if index.labels is None else index.labels[i]
        return run(x, k, labels, [f"query: indexed entry {i} ({index.items[i]}) — it finds itself first"])

    outs = [q_image, *galleries, q_file, q_status]
    on(q_file.upload, from_upload, [q_file, q_k], outs)
    on(q_pick.click, from_entry, [q_entry, q_k], outs)


# ------------------------------------------------------------------------------------------------ serving
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_index_matches(run: str | Path, index_dir: str | Path):
    """The index at ``index_dir``, refused with a clear message when another run built it."""

    index = SearchIndex.load(index_dir)
    if run_fingerprint(run) != index.manifest.get("run_fingerprint"):
        raise GaninvError(f"{index_dir} was built by another run ({index.manifest.get('run')}); its latents mean "
                          f"nothing to {run}. Rebuild it: ganinv index {run} --data {index.manifest.get('data')} "
                          f"--out NEW_INDEX")
    return index


def serve(run: str | Path, *, index: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
          keep_results: int = KEEP_RESULTS, warn: Callable[[str], None] = _log_stderr,
          log: Callable[[str], None] = print, block: bool = True):
    """Load the run (and index), build the page and serve it on host:port until interrupted (Ctrl-C or SIGTERM),
    keeping the newest ``keep_results`` result images on disk."""
    if not 1 <= int(port) <= 65535:
        raise GaninvError(f"--port must be between 1 and 65535, got {port}")
    if int(keep_results) < MIN_KEEP_RESULTS:
        raise GaninvError(f"--keep-results must be at least {MIN_KEEP_RESULTS} (a search alone makes up to 81 "
                          f"images), got {keep_results}")
    if not is_loopback(host):
        warn(f"serving on {host}, not loopback: anyone who can reach this machine on port {port} can use the page "
             "and upload files to it")
    model = InversionModel.load(run)
    search_index = check_index_matches(run, index) if index is not None else None
    blocks = build_app(model, search_index, title=f"ganinv — {Path(run).name}",
                       results=ResultFiles(keep=keep_results))
    try:
        blocks.launch(server_name=host, server_port=int(port), share=False, inbrowser=False, show_error=False,
                      quiet=True, ssr_mode=False, mcp_server=False, pwa=False, prevent_thread_lock=True,
                      max_file_size=2 * MAX_UPLOAD_BYTES, theme=theme(), css=CSS)
    except OSError as exc:
        blocks.results.remove_all()
        raise GaninvError(f"cannot serve on {host}:{port}: {' '.join(str(exc).split())}") from None
    log(f"serving {run} on http://{host}:{port}/ (Ctrl-C to stop)")
    if block:
        stop_on_sigterm()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            log("stopped")
        finally:
            blocks.close()
            blocks.results.remove_all()
    return blocks


def stop_on_sigterm() -> None:
    """SIGTERM (kill, systemd, a test's terminate()) stops the server as Ctrl-C does, so it closes and removes its
    result files instead of dying on the spot."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
