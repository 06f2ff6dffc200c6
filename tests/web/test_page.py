"""The web page (ganinv.web.page): the tabs built over the tiny grey AEGAN run and wired to their handlers, the
page's own components, the committed gradio stub, then `ganinv serve` in a subprocess driven by headless Chromium
(Debian's /usr/bin/chromium through the Python playwright package).

The browser test is skipped, saying why, only where no Chromium or no playwright can be found; `.ci/run`
installs both. ``python tests/web/test_page.py --screenshot docs/web.png [--run RUN]`` makes the README's
screenshot with the same browser and the same steps, and
``python tests/web/test_page.py --screenshots DIR [--run RUN] [--index INDEX | --index-data SPEC]`` one PNG per
tab after its action (reconstruct, search, super-resolution, edit, random), as the browser test walks them.
"""
from __future__ import annotations

import gc
import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from webtools import Server, rgb_array, save, small_index

from ganinv.inference.model import InversionModel
from ganinv.web.handlers import to_display
from helpers import free_port

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HANDLERS = {"rec_from_upload", "rec_from_sample", "rec_again", "from_upload", "from_entry", "sr_from_upload",
            "sr_from_sample", "sr_again", "do_interpolate", "do_attribute", "do_random"}
LAYOUT_HANDLERS = {"show_slider"}  # change only what is shown, no model involved
ELEMENT_IDS = {"reconstruct-upload", "reconstruct-sample", "reconstruct-method", "reconstruct-original",
               "reconstruct-output", "reconstruct-metrics", "reconstruct-status", "search-upload", "search-query",
               "search-latent", "search-status", "superres-upload", "superres-degraded", "superres-inverted",
               "superres-bicubic", "superres-clean", "superres-status", "edit-upload-a", "edit-upload-b",
               "edit-interpolation", "edit-interp-status", "edit-attribute", "edit-attr-status", "random-run",
               "random-output", "random-status", "search-pick", "search-latent-table", "search-dhash-table",
               "superres-sample", "superres-run", "superres-kind", "superres-factor", "superres-sigma",
               "superres-table", "edit-interpolate", "edit-attribute-run", "edit-strength", "search-entry"}
TAB_SHOTS = ("reconstruct", "search", "super-resolution", "edit", "random")  # the screenshots, one per tab


@pytest.fixture(scope="module")
def page_blocks(aegan_run, tmp_path_factory):
    """The app over the tiny grey AEGAN run with a small digits index."""
    pytest.importorskip("gradio")
    from ganinv.web import build_app

    index = small_index(aegan_run, tmp_path_factory.mktemp("index"))
    return build_app(InversionModel.load(aegan_run), index)


def handlers_of(blocks) -> dict:
    """The page's handlers by name (each its endpoint's name in the page's API), with their inputs and outputs."""
    return {fn.fn.__name__: fn for fn in blocks.fns.values() if fn.fn is not None}


def test_page_components_are_drawn_by_gradios_own_widgets(page_blocks):
    """Images, galleries and uploads are ganinv's subclasses (result files of their own, see ResultFiles; no file
    left per upload), marked as templates so the browser draws them with gradio's Image, Gallery and File."""
    from ganinv.web.widgets import ResultGallery, ResultImage, UploadFile

    ours = {type(b).__name__: b for b in page_blocks.blocks.values()
            if type(b) in (ResultImage, ResultGallery, UploadFile)}
    assert set(ours) == {"ResultImage", "ResultGallery", "UploadFile"}
    assert {b.get_block_name() for b in ours.values()} == {"image", "gallery", "file"}
    config = page_blocks.get_config_file()
    types = {c["type"] for c in config["components"]}
    assert {"image", "gallery", "file"} <= types and not any(t.startswith(("result", "upload")) for t in types)
    assert ELEMENT_IDS <= {c["props"].get("elem_id") for c in config["components"]}
    assert page_blocks.results.paths() == []  # building the page writes nothing


def test_every_event_is_wired_to_a_handler_of_matching_shape(page_blocks):
    """Each event's handler takes one argument per input widget and, given nothing usable, answers one value per
    output widget with the message last: the page's layout and its handlers agree."""
    events = handlers_of(page_blocks)
    assert set(events) == HANDLERS | LAYOUT_HANDLERS
    for name, event in events.items():
        if name in LAYOUT_HANDLERS:
            continue
        assert len(inspect.signature(event.fn).parameters) == len(event.inputs), name
        answer = event.fn(*[None] * len(event.inputs))
        assert len(answer) == len(event.outputs), name
        assert "error" in answer[-1] and all(a is None for a in answer[:-1]), (name, answer[-1])


def test_superres_shows_only_the_chosen_degradations_slider(page_blocks):
    """The degradation radio shows the factor slider or the σ slider, never both; the factor stops where 2×2 pixels
    are left of the run's 16×16 images."""
    event = handlers_of(page_blocks)["show_slider"]
    factor, sigma = event.outputs
    assert (factor.elem_id, sigma.elem_id) == ("superres-factor", "superres-sigma")
    assert factor.visible is True and sigma.visible is False  # downsample is chosen first
    assert (factor.minimum, factor.maximum) == (2, 8)
    for kind, shown in (("blur", [False, True]), ("downsample", [True, False])):
        assert [update["visible"] for update in event.fn(kind)] == shown


def test_search_results_sit_in_a_table_beside_each_gallery(page_blocks):
    event = handlers_of(page_blocks)["from_entry"]
    answer = event.fn(5, 3)
    by_id = dict(zip((o.elem_id for o in event.outputs), answer))
    assert by_id["search-latent-table"].splitlines()[2].startswith("| 1 | `digits[train]#5` |")
    assert all(caption.startswith(f"#{rank + 1} · d=") for rank, (_, caption) in enumerate(by_id["search-latent"]))


def test_traversal_appears_for_a_run_with_a_latent_scale(aegan_run, monkeypatch):
    from ganinv.web import build_app

    model = InversionModel.load(aegan_run)
    scale = torch.linspace(1.0, 0.1, model.prior.dim)  # as a dlsgan run has
    monkeypatch.setattr(type(model.method), "latent_scale", property(lambda self: scale))
    events = handlers_of(build_app(model))
    grid, notes = events["do_traverse"].fn(None, 3, 4)
    assert grid is not None and "elements 0 (s=1.000), 1" in notes
    assert "from_entry" not in events and "do_attribute" not in events  # no index: no search, no attributes


def test_serve_checks_its_settings_before_loading_anything():
    from ganinv.cli.web import serve as serve_command
    from ganinv.core.errors import GaninvError
    from ganinv.web.page import check_serve_settings
    from ganinv.web.page import MIN_RESULT_MB
    from ganinv.web.widgets import KEEP_RESULTS, MAX_RESULT_MB, MIN_KEEP_RESULTS

    warnings = []
    check_serve_settings(host="127.0.0.1", port=free_port(), keep_results=MIN_KEEP_RESULTS, warn=warnings.append)
    assert warnings == []
    check_serve_settings(host="0.0.0.0", port=free_port(), keep_results=KEEP_RESULTS, warn=warnings.append)
    assert "not loopback" in warnings[0]
    with pytest.raises(GaninvError, match="--port"):
        check_serve_settings(host="127.0.0.1", port=0, keep_results=KEEP_RESULTS, warn=warnings.append)
    with pytest.raises(GaninvError, match="--keep-results must be at least"):
        check_serve_settings(host="127.0.0.1", port=80, keep_results=MIN_KEEP_RESULTS - 1, warn=warnings.append)
    with pytest.raises(GaninvError, match="--max-results-mb must be at least"):
        check_serve_settings(host="127.0.0.1", port=80, keep_results=KEEP_RESULTS, warn=warnings.append,
                             max_results_mb=MIN_RESULT_MB - 1)
    # `ganinv serve` writes the bounds out (importing them would load gradio for --help): they must be these
    options = inspect.signature(serve_command).parameters
    assert (options["keep_results"].default.default, options["keep_results"].default.min) == (KEEP_RESULTS,
                                                                                            MIN_KEEP_RESULTS)
    assert (options["max_results_mb"].default.default, options["max_results_mb"].default.min) == (MAX_RESULT_MB,
                                                                                                MIN_RESULT_MB)


STUB_WRITTEN_BY_GRADIO = "6.31.0"


def test_gradios_stub_of_the_widgets_is_committed_and_current(tmp_path):
    """gradio writes a .pyi beside any module defining component subclasses unless the one there matches: the
    committed widgets.pyi must be what gradio would write, so importing the package writes nothing."""
    gradio = pytest.importorskip("gradio")
    if gradio.__version__ != STUB_WRITTEN_BY_GRADIO:  # another gradio writes other stubs: nothing to compare
        pytest.skip(f"widgets.pyi was written by gradio {STUB_WRITTEN_BY_GRADIO}, this is {gradio.__version__}; "
                    "regenerate it (delete it, import ganinv.web.widgets once) and update STUB_WRITTEN_BY_GRADIO")
    import ganinv.web.widgets as widgets

    source = Path(widgets.__file__)
    copy = shutil.copy(source, tmp_path / "widgets_copy.py")
    spec = importlib.util.spec_from_file_location("widgets_copy", copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules["widgets_copy"] = module  # gradio finds the class's file through its module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["widgets_copy"], module
        gc.collect()  # drop the copied component classes from gradio's subclass lists
    assert (tmp_path / "widgets_copy.pyi").read_text() == source.with_suffix(".pyi").read_text(), (
        "src/ganinv/web/widgets.pyi is stale: delete it, import ganinv.web.widgets once and commit the new one")
    assert sorted(p.name for p in source.parent.glob("*.pyi")) == ["widgets.pyi"]


# ------------------------------------------------------------------------------------------------ the browser
def find_chromium() -> str | None:
    for candidate in (os.environ.get("GANINV_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def browser_or_skip() -> str:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run tries to)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    return chromium


def launch(playwright, chromium: str, user_data_dir: Path):
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 860})


def wait_text(page, selector: str, needle: str, timeout_ms: int = 30_000) -> str:
    page.wait_for_function("([sel, text]) => (document.querySelector(sel) || {innerText: ''}).innerText.includes(text)",
                           arg=[selector, needle], timeout=timeout_ms)
    return page.locator(selector).inner_text()


def upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def test_serve_in_headless_chromium(aegan_run, tmp_path):
    chromium = browser_or_skip()
    from playwright.sync_api import sync_playwright

    start = time.monotonic()
    good = save(tmp_path / "face.png", rgb_array(seed=1, h=48, w=40))
    other = save(tmp_path / "other.png", rgb_array(seed=3, h=48, w=40))
    grey = save(tmp_path / "grey.png", np.random.default_rng(2).integers(0, 255, (24, 24), dtype=np.uint8))
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image")
    index = small_index(aegan_run, tmp_path)
    server = Server(aegan_run, extra_args=["--index", str(index.root)])
    try:
        with sync_playwright() as p:
            context = launch(p, chromium, tmp_path / "profile")
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("#reconstruct-upload input[type=file]", state="attached", timeout=60_000)

            upload(page, "reconstruct-upload", text)
            status = wait_text(page, "#reconstruct-status", "error")
            assert "notes.txt is not an image" in status and "Traceback" not in page.content()
            assert page.locator("#reconstruct-output img").count() == 0

            upload(page, "reconstruct-upload", grey)  # the server keeps serving
            wait_text(page, "#reconstruct-metrics", "PSNR")
            assert "error" not in page.locator("#reconstruct-status").inner_text()
            page.wait_for_selector("#reconstruct-output img", timeout=10_000)

            shots = walk_tabs(page, tmp_path / "shots", good, other)  # every tab's action, a screenshot each
            assert [s.stem for s in shots] == list(TAB_SHOTS) and all(s.stat().st_size > 5000 for s in shots)
            metrics = page.locator("#reconstruct-metrics").inner_text()
            assert "SSIM" in metrics and "dHash similarity" in metrics and "ms" in metrics
            table = page.locator("#search-latent-table").inner_text()
            assert "digits[train]#5" in table and "(same)" in table  # in full, not cut
            check_degradation_sliders(page)
            context.close()
        assert server.proc.poll() is None, server.output()
    finally:
        server.close()
    assert "Traceback" not in server.output()
    assert time.monotonic() - start < 180


def check_degradation_sliders(page) -> None:
    """Only the chosen degradation's slider is shown."""
    page.get_by_role("tab", name="Super-resolve", exact=True).click()
    page.wait_for_selector("#superres-factor", state="visible")
    assert not page.locator("#superres-sigma").is_visible()
    page.locator("#superres-kind label", has_text="blur").click()
    page.wait_for_selector("#superres-sigma", state="visible")
    page.wait_for_selector("#superres-factor", state="hidden")


# ------------------------------------------------------------------------------------------------ screenshots
def walk_tabs(page, folder: Path, image_a: Path, image_b: Path) -> list[Path]:
    """Each tab's main action on a page just loaded, then a full-page screenshot of the tab: TAB_SHOTS in
    ``folder``. The Reconstruct and Edit tabs get ``image_a`` (and ``image_b``); Search (where the page has an index)
    looks for indexed entry 5; Super-resolve and Random use generated samples."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []

    def shoot(name: str) -> None:
        # scrolled through first, so images below the fold (loaded lazily) are in the full-page picture
        page.evaluate("async () => { for (let y = 0; y < document.body.scrollHeight; y += 600) {"
                      " window.scrollTo(0, y); await new Promise(r => setTimeout(r, 100)); } window.scrollTo(0, 0); }")
        page.wait_for_timeout(500)  # images fade in
        shots.append(folder / f"{name}.png")
        page.screenshot(path=str(shots[-1]), full_page=True)

    page.get_by_role("tab", name="Reconstruct", exact=True).click()
    before = page.evaluate("() => (document.querySelector('#reconstruct-output img') || {}).src || null")
    upload(page, "reconstruct-upload", image_a)
    page.wait_for_function("(old) => { const img = document.querySelector('#reconstruct-output img');"
                           " return img && img.src !== old; }", arg=before, timeout=120_000)  # this upload's
    shoot("reconstruct")

    page.get_by_role("tab", name="Search", exact=True).click()
    if page.locator("#search-pick").count():
        page.locator("#search-entry input").fill("5")
        page.locator("#search-entry input").press("Tab")  # gradio takes a number on blur
        page.locator("#search-pick").click()
        wait_text(page, "#search-latent-table", "distance", 120_000)
    shoot("search")

    page.get_by_role("tab", name="Super-resolve", exact=True).click()
    page.locator("#superres-sample").click()
    wait_any(page, [("#superres-table", "PSNR"), ("#superres-status", "error")])
    shoot("super-resolution")

    page.get_by_role("tab", name="Edit", exact=True).click()
    for elem_id, image in (("edit-upload-a", image_a), ("edit-upload-b", image_b)):
        upload(page, elem_id, image)
        wait_text(page, f"#{elem_id}", image.stem)  # uploaded: a click before would send no file
    for button, output in (("edit-interpolate", "edit-interpolation"), ("edit-attribute-run", "edit-attribute"),
                           ("edit-traverse-run", "edit-traversal")):
        if page.locator(f"#{button}").count():  # attributes need a labelled index, traversal a latent scale
            page.locator(f"#{button}").click()
            page.wait_for_selector(f"#{output} img", timeout=300_000)
    shoot("edit")

    page.get_by_role("tab", name="Random", exact=True).click()
    page.locator("#random-run").click()
    page.wait_for_selector("#random-output img", timeout=120_000)
    shoot("random")
    return shots


def wait_any(page, targets: list[tuple[str, str]], timeout_ms: int = 120_000) -> None:
    """Until one of the (selector, text) pairs shows its text."""
    page.wait_for_function(
        "(targets) => targets.some(([sel, text]) => ((document.querySelector(sel) || {innerText: ''}).innerText"
        " || '').includes(text))", arg=targets, timeout=timeout_ms)


def make_screenshot(out: Path, run: Path | None = None) -> Path:
    """The README's screenshot: the Reconstruct tab after an upload, taken in the same headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if run is None:
            run = tiny_rgb_run(tmp)
        image = sample_file(run, tmp / "sample.png", seed=7)
        server = Server(run)
        try:
            with sync_playwright() as p:
                context = launch(p, chromium, tmp / "profile")
                page = context.new_page()
                page.goto(server.url)
                page.wait_for_selector("#reconstruct-upload input[type=file]", state="attached", timeout=60_000)
                upload(page, "reconstruct-upload", image)
                wait_text(page, "#reconstruct-metrics", "PSNR")
                page.wait_for_timeout(800)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1280, "height": 780})
                context.close()
        finally:
            server.close()
    return out


def make_tab_screenshots(folder: Path, run: Path | None = None, index: Path | None = None,
                         index_data: str | None = None, index_limit: int = 1000) -> list[Path]:
    """One PNG per tab after its action (``walk_tabs``) in ``folder``, on ``run`` (default: a tiny RGB AEGAN made
    here, with an index of the bundled digits). The Search tab and the attribute edits need an index built from
    the run: ``index``, or one of the first ``index_limit`` images of ``index_data`` built here."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if run is None:
            run, index_data = tiny_rgb_run(tmp), index_data or "digits"
        if index is None and index_data is not None:
            from ganinv.apps.search import build_index

            index = build_index(run, index_data, tmp / "index", limit=index_limit, show_progress=False).root
        images = [sample_file(run, tmp / f"sample-{seed}.png", seed=seed) for seed in (7, 8)]
        server = Server(run, timeout_s=300, extra_args=[] if index is None else ["--index", str(index)])
        try:
            with sync_playwright() as p:
                context = launch(p, chromium, tmp / "profile")
                page = context.new_page()
                page.goto(server.url)
                page.wait_for_selector("#reconstruct-upload input[type=file]", state="attached", timeout=120_000)
                shots = walk_tabs(page, folder, *images)
                context.close()
        finally:
            server.close()
    return shots


def sample_file(run: Path, path: Path, seed: int) -> Path:
    """A generated sample of the run as a PNG file to upload."""
    model = InversionModel.load(run)
    with torch.inference_mode():
        sample = model.generate(model.sample(1, generator=torch.Generator().manual_seed(seed)))[0]
    Image.fromarray(to_display(sample, 64)).save(path)
    return path


def tiny_rgb_run(folder: Path) -> Path:
    """A 16 px RGB AEGAN trained for 60 steps on a tiny generator, made with the test suite's helpers."""
    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for its helpers module
    from helpers import make_generator_run, tiny_train

    make_generator_run(folder / "generator", channels=3)
    tiny_train("aegan", folder / "aegan", steps=60, generator=folder / "generator")
    return folder / "aegan"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--screenshot", type=Path, help="PNG to write, e.g. docs/web.png: the Reconstruct tab")
    target.add_argument("--screenshots", type=Path, metavar="DIR",
                        help=f"folder for one PNG per tab after its action: {', '.join(TAB_SHOTS)}")
    parser.add_argument("--run", type=Path, help="run directory to show [a tiny RGB AEGAN made here]")
    parser.add_argument("--index", type=Path, help="with --screenshots: a search index built from --run "
                        "(`ganinv index RUN --data SPEC --out INDEX`), for the Search tab and attribute edits")
    parser.add_argument("--index-data", metavar="SPEC", help="with --screenshots and no --index: build a temporary "
                        "index of this dataset (e.g. celeba:PATH) [digits for the tiny run; none for --run]")
    parser.add_argument("--index-limit", type=int, default=1000, help="images of --index-data to index [1000]")
    args = parser.parse_args()
    if args.screenshot is not None:
        print(make_screenshot(args.screenshot, args.run))
    else:
        for shot in make_tab_screenshots(args.screenshots, args.run, args.index, args.index_data, args.index_limit):
            print(shot)
