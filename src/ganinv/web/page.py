"""The web page: a gradio app over one ``InversionModel`` for people who would rather look than read.

    build_app(model, index=None)        gr.Blocks with the tabs Reconstruct, Search (with an index),
                                        Super-resolve, Edit and Random: one function per tab below
    serve(run, index=..., host=..., port=..., keep_results=..., max_results_mb=...)
    ganinv serve RUN [--index INDEX] [--port 7860] [--host 127.0.0.1] [--keep-results 1000] [--max-results-mb 512]

This module lays the widgets out and wires them to the handlers of ``web.handlers`` (plain Python over tensors,
tested without a browser); ``web.widgets`` holds the page's own components and ``ResultFiles``. It imports gradio
at module level: it is imported only to build or serve the page (``ganinv.web`` loads it on first use).

Every handler turns a bad upload (not an image, empty, huge) or any other failure into a message on the page,
never a stack trace, and the server keeps serving; grey and RGBA uploads are converted with a note saying so.
Nothing phones home: gradio's analytics are off, there is no share link (so no frpc download) and the theme uses
system fonts instead of fetching Google Fonts. The server binds to loopback unless told otherwise (with a
warning), and serves no file outside gradio's own folders (no ``allowed_paths``), so a path like
``/gradio_api/file=../../etc/passwd`` is refused.

Result images are written by the page itself (``ResultFiles``), each once under a name of its own, never rewritten
while a browser downloads it. Beyond the newest ``keep_results`` the oldest are deleted, but never one younger than
ten minutes (a client that got its link can fetch it): when such young results fill ``max_results_mb``, new work
is refused with a message instead. Uploads are deleted an hour after they arrive. A server killed outright
(SIGKILL) leaves its result folder; the next ``serve`` removes it (the folder is named after its process, and only
folders of processes that are gone are removed). A client that disconnects mid-request is normal for a public page:
it leaves nothing in the log (``ClientDisconnectFilter``).

What the page accepts from clients, and how each is bounded: uploaded files (gradio refuses over
2 × MAX_UPLOAD_BYTES while receiving; the handlers refuse over MAX_UPLOAD_BYTES before decoding, then over
MAX_UPLOAD_PIXELS from the image header alone, before any pixel is decoded; only files in gradio's upload folder are
taken as inputs), numbers (sliders and the index entry bounded by gradio; seeds checked by the handler; NaN and
infinity refused before any handler), choices (gradio refuses values not offered).

The page's API (``/gradio_api/info``, "Use via API") lists one named endpoint per button or upload — the
handler's name, the Search tab's prefixed ``search_`` — and names every value (status, metrics, result tables);
the slider toggle of the Super-resolve tab is layout, not an endpoint (private).
"""
from __future__ import annotations

import functools
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from ganinv.apps.search import SearchIndex
from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import (
    DEGRADATIONS,
    MAX_SEED,
    MAX_UPLOAD_BYTES,
    AttributeDirections,
    EditHandlers,
    RandomHandlers,
    ReconstructHandlers,
    SearchHandlers,
    SuperresHandlers,
    check_index_matches,
    degradation_controls,
    describe_run,
    error_markdown,
    is_loopback,
    log_stderr,
    max_factor,
    method_choices,
    one_line,
    open_index,
)
from ganinv.web.widgets import (
    KEEP_RESULTS,
    MAX_RESULT_MB,
    MIN_KEEP_RESULTS,
    ResultFiles,
    ResultGallery,
    ResultImage,
    UploadFile,
    remove_stale_folders,
)

MIN_RESULT_MB = 16                 # --max-results-mb at least this: a search's 81 images fit many times over
UPLOAD_MAX_AGE_S = 3600            # uploads are deleted this long after they arrive …
UPLOAD_SWEEP_S = 600               # … by a sweep this often (gradio's delete_cache)
THEME_FONTS = ["system-ui", "sans-serif"]
CSS = ".status p { margin: 0.2em 0; } footer { display: none !important; }"


def theme() -> gr.themes.Base:
    # System fonts: the default theme would fetch Google Fonts, which this page must never do.
    return gr.themes.Default(font=[gr.themes.Font(f) for f in THEME_FONTS],
                             font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")])


class Parts:
    """The page's widgets, each kind made one way: result images and galleries writing to ``results``, uploads,
    status lines, and events that share the model."""

    def __init__(self, results: ResultFiles):
        self.results = results

    def image(self, label: str, elem_id: str, height: int = 220) -> ResultImage:
        component = ResultImage(label=label, elem_id=elem_id, type="numpy", format="png", interactive=False,
                                height=height)
        component.results = self.results
        return component

    def gallery(self, label: str, elem_id: str, **kwargs) -> ResultGallery:
        component = ResultGallery(label=label, elem_id=elem_id, format="png", **kwargs)
        component.results = self.results
        return component

    @staticmethod
    def upload(label: str, elem_id: str) -> UploadFile:
        return UploadFile(label=label, elem_id=elem_id, file_count="single", type="filepath", height=140)

    @staticmethod
    def status(elem_id: str) -> gr.Markdown:
        return gr.Markdown(elem_id=elem_id, elem_classes=["status"], label="status")

    @staticmethod
    def text(label: str, elem_id: str | None = None) -> gr.Markdown:
        """A markdown output; its label is not drawn, but names the value in the page's API (else "value_22")."""
        return gr.Markdown(elem_id=elem_id, label=label)

    def on(self, event, fn: Callable, inputs: list, outputs: list, api_name: str | None = None) -> None:
        """Wire ``fn`` to ``event`` as the API endpoint ``/api_name`` (by default the handler's name). One model,
        one event at a time: every handler shares the "model" concurrency slot."""
        event(self.admitted(fn, len(outputs)), inputs=inputs, outputs=outputs, concurrency_id="model",
              concurrency_limit=1, show_progress="minimal", api_name=api_name or fn.__name__)

    def admitted(self, fn: Callable, n_outputs: int) -> Callable:
        """``fn`` run only when its inputs hold no NaN or infinite number (a request sent by hand: gradio's slider
        bounds let NaN through) and there is room for its result images (``ResultFiles.check_room``); otherwise
        one message in its last output (the status line). Same name and signature: gradio's API shows ``fn``'s."""
        @functools.wraps(fn)
        def wrapper(*args):
            try:
                if any(isinstance(a, float) and not math.isfinite(a) for a in args):
                    raise GaninvError("numbers must be finite: NaN and infinity are refused")
                self.results.check_room()
            except GaninvError as exc:
                return (None,) * (n_outputs - 1) + (error_markdown(str(exc)),)
            return fn(*args)
        return wrapper


def build_app(model: InversionModel, index: SearchIndex | str | Path | None = None, *, title: str = "ganinv",
              results: ResultFiles | None = None) -> gr.Blocks:
    """The gradio page over one model (and, optionally, a ``SearchIndex`` or index directory built from it); its
    result images are written to ``results`` (by default a new ``ResultFiles``), kept as ``blocks.results``."""
    index = open_index(model, index)
    results = ResultFiles() if results is None else results
    parts = Parts(results)
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(UPLOAD_SWEEP_S, UPLOAD_MAX_AGE_S)) as blocks:
        gr.Markdown(f"# ganinv — see what inversion does to your image\n{describe_run(model)}")
        with gr.Tabs():
            reconstruct_tab(parts, model)
            search_tab(parts, model, index)
            superres_tab(parts, model)
            edit_tab(parts, model, AttributeDirections(model, index))
            random_tab(parts, model)
    blocks.results = results
    return blocks


def seed_field(label: str) -> gr.Number:
    """A seed, its range in the label; the handler checks it (``check_seed``) and says the range in the status line
    (gradio's own bounds would answer a corner toast, and with ``precision=0`` fail on NaN before the handler)."""
    return gr.Number(0, label=f"{label} (0 … {MAX_SEED})", precision=None, step=1)


# ------------------------------------------------------------------------------------------------ the tabs
def reconstruct_tab(parts: Parts, model: InversionModel) -> None:
    handlers, choices = ReconstructHandlers(model), method_choices(model)
    with gr.Tab("Reconstruct", id="reconstruct"):
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = parts.upload("upload an image", "reconstruct-upload")
                align = gr.Checkbox(False, label="align face: find the face and eyes in a photo and cut it as "
                                    "aligned CelebA's (for runs trained on CelebA)", elem_id="reconstruct-align")
                with gr.Row():
                    seed = seed_field("sample seed")
                    sample = gr.Button("use a generated sample", elem_id="reconstruct-sample")
                method = gr.Radio(choices, value=choices[0], label="method", elem_id="reconstruct-method")
                steps = gr.Slider(0, 500, value=50, step=10, label="refine steps (hybrid / optimisation)")
                again = gr.Button("reconstruct again", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    original = parts.image("original (at the run's size)", "reconstruct-original")
                    output = parts.image("reconstruction G(invert(x))", "reconstruct-output")
                metrics = parts.text("metrics", "reconstruct-metrics")
                status = parts.status("reconstruct-status")
                domain_note(handlers)
    outputs = [state, original, output, metrics, upload, status]
    parts.on(upload.upload, handlers.rec_from_upload, [upload, method, steps, align], outputs)
    parts.on(sample.click, handlers.rec_from_sample, [seed, method, steps], outputs)
    parts.on(again.click, handlers.rec_again, [state, method, steps], outputs)


def domain_note(handlers: ReconstructHandlers) -> None:
    """The out-of-domain hint's statistics, read at page start; where the run's training data cannot be read here,
    one line under the status saying that its samples stand in."""
    handlers.domain.reference()
    if handlers.domain.fallback:
        gr.Markdown(f"ℹ️ {handlers.domain.fallback}", elem_id="reconstruct-domain-note", elem_classes=["status"])


def search_tab(parts: Parts, model: InversionModel, index: SearchIndex | None) -> None:
    with gr.Tab("Search", id="search"):
        if index is None:
            gr.Markdown("Start the page with `--index INDEX` (built by `ganinv index RUN --data SPEC --out INDEX`) "
                        "to search a collection by latents and by the hash baselines.")
            return
        handlers = SearchHandlers(model, index)
        with gr.Row():
            with gr.Column(scale=1):
                upload = parts.upload("query image", "search-upload")
                entry = gr.Number(0, label="…or an indexed image by number", precision=0, minimum=0,
                                  maximum=len(index) - 1, elem_id="search-entry")
                pick = gr.Button("search with that indexed image", elem_id="search-pick")
                k = gr.Slider(1, min(20, len(index)), value=min(8, len(index)), step=1, label="k")
            query = parts.image("query", "search-query", height=180)
        galleries, tables = [], []
        for m in handlers.methods:
            # Gallery captions are cut to their image's width: the full results go in a table under each gallery,
            # as wide as the page, since CelebA's shared attributes make a long cell.
            galleries.append(parts.gallery(m + (" (latents)" if m == "latent" else " (baseline)"), f"search-{m}",
                                           columns=8, height=220))
            tables.append(parts.text(f"{m} results", f"search-{m}-table"))
        status = parts.status("search-status")
    outputs = [query, *galleries, *tables, upload, status]
    parts.on(upload.upload, handlers.from_upload, [upload, k], outputs, api_name="search_from_upload")
    parts.on(pick.click, handlers.from_entry, [entry, k], outputs, api_name="search_from_entry")


def superres_tab(parts: Parts, model: InversionModel) -> None:
    handlers, size = SuperresHandlers(model), model.image_shape[1]
    with gr.Tab("Super-resolve", id="superres"):
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = parts.upload("upload a clean image", "superres-upload")
                sample = gr.Button("use a generated sample", elem_id="superres-sample")
            with gr.Column(scale=1):
                kind, factor, sigma = degradation_widgets(size)
                run = gr.Button("degrade and super-resolve", variant="primary", elem_id="superres-run")
        with gr.Row():
            degraded = parts.image("degraded input", "superres-degraded", height=180)
            inverted = parts.image("reconstruction (inversion)", "superres-inverted", height=180)
            bicubic = parts.image("bicubic", "superres-bicubic", height=180)
            clean = parts.image("clean", "superres-clean", height=180)
        table = parts.text("scores against the clean image", "superres-table")
        status = parts.status("superres-status")
    outputs = [state, degraded, inverted, bicubic, clean, table, upload, status]
    parts.on(upload.upload, handlers.sr_from_upload, [upload, kind, factor, sigma], outputs)
    parts.on(sample.click, handlers.sr_from_sample, [kind, factor, sigma], outputs)
    parts.on(run.click, handlers.sr_again, [state, kind, factor, sigma], outputs)


def degradation_widgets(size: int) -> tuple[gr.Radio, gr.Slider, gr.Slider]:
    """The degradation radio and its two sliders, only the chosen one's shown; the factor is bounded so at least
    2×2 pixels are left of the run's size×size images (the handler checks it again)."""
    kind = gr.Radio(list(DEGRADATIONS), value="downsample", label="degradation", elem_id="superres-kind")
    top = max_factor(size)
    factor = gr.Slider(2, top, value=min(4, top), step=1, elem_id="superres-factor",
                       label=f"downsample factor × ({size}×{size} → at least 2×2 pixels)")
    sigma = gr.Slider(0.25, 4, value=1.5, step=0.25, label="blur σ (pixels)", visible=False, elem_id="superres-sigma")
    kind.change(show_slider, [kind], [factor, sigma], queue=False, show_progress="hidden",
                api_visibility="private")  # layout only: not an endpoint of the page's API
    return kind, factor, sigma


def show_slider(kind: str):
    """The slider of the chosen degradation shown, the other hidden (no model involved, so no queue)."""
    factor_shown, sigma_shown = degradation_controls(kind)
    return gr.update(visible=factor_shown), gr.update(visible=sigma_shown)


def edit_tab(parts: Parts, model: InversionModel, directions: AttributeDirections) -> None:
    handlers = EditHandlers(model, directions)
    with gr.Tab("Edit", id="edit"):
        gr.Markdown("Image **A** is edited (a generated sample when none is uploaded); **B** is the other end of the "
                    "interpolation.")
        with gr.Row():
            a = parts.upload("image A", "edit-upload-a")
            b = parts.upload("image B", "edit-upload-b")
            steps = gr.Slider(3, 12, value=8, step=1, label="images per row")
        interpolation_section(parts, handlers, a, b, steps)
        attribute_section(parts, handlers, a, steps)
        traversal_section(parts, handlers, a, steps)


def interpolation_section(parts: Parts, handlers: EditHandlers, a, b, steps) -> None:
    run = gr.Button("interpolate A → B", variant="primary", elem_id="edit-interpolate")
    output = parts.image("interpolation G((1−t)·z_A + t·z_B)", "edit-interpolation", height=200)
    status = parts.status("edit-interp-status")
    parts.on(run.click, handlers.do_interpolate, [a, b, steps], [output, status])


def attribute_section(parts: Parts, handlers: EditHandlers, a, steps) -> None:
    names = handlers.directions.names
    if not names:
        gr.Markdown("Attribute sliders appear when the page is started with `--index` on a labelled collection "
                    "(CelebA attributes, digit classes).")
        return
    with gr.Row():
        attribute = gr.Dropdown(names, value=handlers.directions.default, label="attribute")
        strength = gr.Slider(-3, 3, value=2, step=0.25, elem_id="edit-strength",
                             label="strength (std of the latents along the direction; negative: away from it)")
        run = gr.Button("edit A", elem_id="edit-attribute-run")
    output = parts.image("attribute edit: A … A + strength", "edit-attribute", height=200)
    status = parts.status("edit-attr-status")
    parts.on(run.click, handlers.do_attribute, [a, attribute, strength, steps], [output, status])


def traversal_section(parts: Parts, handlers: EditHandlers, a, steps) -> None:
    model = handlers.model
    if handlers.scale is None:
        gr.Markdown(f"The most-important-element traversal needs a run with a latent scale (dlsgan); this is a "
                    f"{model.config.method!r} run.")
        return
    with gr.Row():
        k = gr.Slider(1, min(8, model.prior.dim), value=min(4, model.prior.dim), step=1,
                      label="most important latent elements (largest scale s)")
        run = gr.Button("traverse A's elements from −2 to 2", elem_id="edit-traverse-run")
    output = parts.image("traversal: one row per element", "edit-traversal", height=300)
    status = parts.status("edit-trav-status")
    parts.on(run.click, handlers.do_traverse, [a, k, steps], [output, status])


def random_tab(parts: Parts, model: InversionModel) -> None:
    handlers = RandomHandlers(model)
    with gr.Tab("Random", id="random"):
        with gr.Row():
            seed = seed_field("seed")
            n = gr.Slider(1, 8, value=6, step=1, label="samples")
            run = gr.Button("sample z", variant="primary", elem_id="random-run")
        output = parts.image("top: G(z) · bottom: G(invert(G(z))) — the round trip", "random-output", height=300)
        metrics = parts.text("metrics", "random-metrics")
        status = parts.status("random-status")
    parts.on(run.click, handlers.do_random, [seed, n], [output, metrics, status])


# ------------------------------------------------------------------------------------------------ serving
def serve(run: str | Path, *, index: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
          keep_results: int = KEEP_RESULTS, max_results_mb: int = MAX_RESULT_MB,
          warn: Callable[[str], None] = log_stderr, log: Callable[[str], None] = print,
          block: bool = True) -> gr.Blocks:
    """Load the run (and index), build the page and serve it on host:port until interrupted (Ctrl-C or SIGTERM),
    keeping the newest ``keep_results`` result images on disk (more while they are young, up to
    ``max_results_mb``). Result folders left by servers that were killed are removed first."""
    check_serve_settings(host=host, port=port, keep_results=keep_results, warn=warn, max_results_mb=max_results_mb)
    model = InversionModel.load(run)
    search_index = check_index_matches(run, index) if index is not None else None
    stale = remove_stale_folders()
    if stale:
        log(f"removed {len(stale)} result folder(s) left by servers that were killed")
    blocks = build_app(model, search_index, title=f"ganinv — {Path(run).name}",
                       results=ResultFiles(keep=keep_results, max_bytes=max_results_mb * 2**20))
    try:
        blocks.launch(server_name=host, server_port=int(port), share=False, inbrowser=False, show_error=False,
                      quiet=True, ssr_mode=False, mcp_server=False, pwa=False, prevent_thread_lock=True,
                      max_file_size=2 * MAX_UPLOAD_BYTES, theme=theme(), css=CSS)
    except OSError as exc:
        blocks.results.remove_all()
        raise GaninvError(f"cannot serve on {host}:{port}: {one_line(str(exc))}") from None
    quiet_client_disconnects()
    log(f"serving {run} on http://{host}:{port}/ (Ctrl-C to stop)")
    if block:
        serve_until_stopped(blocks, log)
    return blocks


def check_serve_settings(*, host: str, port: int, keep_results: int, warn: Callable[[str], None],
                         max_results_mb: int = MAX_RESULT_MB) -> None:
    """Refuse a port or result bound out of range, or a host:port this machine cannot listen on; warn when the page
    is exposed beyond this machine."""
    if not 1 <= int(port) <= 65535:
        raise GaninvError(f"--port must be between 1 and 65535, got {port}")
    if int(keep_results) < MIN_KEEP_RESULTS:
        raise GaninvError(f"--keep-results must be at least {MIN_KEEP_RESULTS} (a search alone makes up to 81 "
                          f"images), got {keep_results}")
    if int(max_results_mb) < MIN_RESULT_MB:
        raise GaninvError(f"--max-results-mb must be at least {MIN_RESULT_MB}, got {max_results_mb}")
    check_can_listen(host, int(port))
    if not is_loopback(host):
        warn(f"serving on {host}, not loopback: anyone who can reach this machine on port {port} can use the page "
             "and upload files to it")


def check_can_listen(host: str, port: int) -> None:
    """One line when ``host`` does not resolve or ``host:port`` cannot be bound (in use, not this machine's
    address), instead of gradio's "Cannot find empty port in range"."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise GaninvError(f"--host {host}: cannot resolve this host name ({one_line(str(exc))})") from None
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closed server's port is free
            probe.bind(address)
    except OSError as exc:
        raise GaninvError(f"cannot listen on {host}:{port}: {exc.strerror or one_line(str(exc))}") from None


# ------------------------------------------------------------------------------------------------ quiet disconnects
CLIENT_GONE = ("ClientDisconnect", "ClientDisconnected", "ClosedResourceError", "BrokenResourceError",
               "EndOfStream", "ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError", "CancelledError")


class ClientDisconnectFilter(logging.Filter):
    """On uvicorn's error logger: "Exception in ASGI application" caused by the client (it went away mid-request,
    or asked for something refused after the answer had begun, such as an event stream read twice) is normal for a
    public page. A disconnect is dropped; a refusal becomes one line without a traceback. Any other exception keeps
    its traceback: that is a bug of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        chain = exception_chain(record.exc_info[1])
        if any(type(exc).__name__ in CLIENT_GONE for exc in chain):
            return False
        refusal = next((exc for exc in chain if type(exc).__name__ == "HTTPException"), None)
        if refusal is None:
            return True
        record.msg, record.args = "request refused after its response had begun: %s", (one_line(str(refusal)),)
        record.exc_info = record.exc_text = None
        return True


def exception_chain(exc: BaseException, limit: int = 32) -> list[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups among them (at most ``limit``)."""
    seen, todo = [], [exc]
    while todo and len(seen) < limit:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
    return seen


def quiet_client_disconnects() -> None:
    """Install ``ClientDisconnectFilter`` on uvicorn's error logger, once (after launch: uvicorn configures its
    loggers when the server is made)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ClientDisconnectFilter) for f in logger.filters):
        logger.addFilter(ClientDisconnectFilter())


def serve_until_stopped(blocks: gr.Blocks, log: Callable[[str], None]) -> None:
    """Sleep until Ctrl-C or SIGTERM, then close the server and remove its result files."""
    stop_on_sigterm()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        blocks.close()
        blocks.results.remove_all()


def stop_on_sigterm() -> None:
    """SIGTERM (kill, systemd, a test's terminate()) stops the server as Ctrl-C does, so it closes and removes its
    result files instead of dying on the spot."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
