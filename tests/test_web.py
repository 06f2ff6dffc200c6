"""The web page (issue 9): upload handling and every tab's handler without a browser, then `ganinv serve` in a
subprocess driven by headless Chromium (Debian's /usr/bin/chromium through the Python playwright package).

The browser test is skipped, saying why, only where no Chromium or no playwright can be found; `.ci/run`
installs both. ``python tests/test_web.py --screenshot docs/web.png [--run RUN]`` makes the README's screenshot
with the same browser and the same steps.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.web.page import (
    UploadError,
    error_markdown,
    guarded,
    is_loopback,
    read_upload,
    to_display,
)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHAPE_GREY, SHAPE_RGB = (1, 16, 16), (3, 16, 16)


def save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


def rgb_array(seed=0, h=40, w=30):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ uploads
def test_valid_upload_is_fit_to_the_run_with_notes(tmp_path):
    x, notes = read_upload(save(tmp_path / "a.png", rgb_array()), SHAPE_RGB)
    assert x.shape == (1, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
    assert notes == ["30×40 → centre-cropped and resized to 16×16"]
    x, notes = read_upload(save(tmp_path / "b.png", rgb_array(h=16, w=16)), SHAPE_GREY)
    assert x.shape == (1, 1, 16, 16) and notes == ["colour image → converted to grey for this run"]


def test_grey_and_rgba_uploads_are_converted_with_a_note(tmp_path):
    grey = save(tmp_path / "g.png", np.full((16, 16), 128, np.uint8))
    x, notes = read_upload(grey, SHAPE_RGB)
    assert x.shape == (1, 3, 16, 16) and torch.allclose(x[0, 0], x[0, 2])
    assert any("grey" in n for n in notes)
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black → white
    x, notes = read_upload(save(tmp_path / "t.png", rgba, "RGBA"), SHAPE_RGB)
    assert torch.allclose(x, torch.ones_like(x)) and any("transparency" in n for n in notes)


@pytest.mark.parametrize("content, needle", [
    (b"hello, I am not a picture", "is not an image"),
    (b"", "is empty"),
    ("truncated", "cannot"),  # the first bytes of a real PNG
])
def test_bad_uploads_raise_one_clear_line(tmp_path, content, needle):
    path = tmp_path / "upload.png"
    if content == "truncated":
        full = save(tmp_path / "full.png", rgb_array(h=64, w=64)).read_bytes()
        content = full[:len(full) // 2]
    path.write_bytes(content)
    with pytest.raises(UploadError, match=needle) as info:
        read_upload(path, SHAPE_RGB)
    assert str(tmp_path) not in str(info.value) and "\n" not in str(info.value)


def test_huge_uploads_are_refused_before_decoding(tmp_path):
    path = save(tmp_path / "big.png", rgb_array(h=64, w=64))
    with pytest.raises(UploadError, match="MB"):
        read_upload(path, SHAPE_RGB, max_bytes=100)
    with pytest.raises(UploadError, match="megapixels"):
        read_upload(path, SHAPE_RGB, max_pixels=64 * 63)
    with pytest.raises(UploadError, match="upload an image first"):
        read_upload(None, SHAPE_RGB)


def test_guarded_handlers_turn_any_exception_into_a_message():
    logged = []

    @guarded(3, log=logged.append)
    def broken(kind):
        raise GaninvError("bad thing") if kind == "ours" else ZeroDivisionError("boom")

    assert broken("ours") == (None, None, error_markdown("bad thing"))
    out = broken("other")
    assert out[:2] == (None, None) and "ZeroDivisionError: boom" in out[2] and "Traceback" not in out[2]
    assert "Traceback" in logged[0]


def test_display_and_loopback_helpers():
    assert to_display(torch.rand(1, 1, 16, 16)).shape == (192, 192, 3)
    assert to_display(torch.rand(3, 18, 180), min_side=96).shape == (108, 1080, 3)
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "example.org"]))


# ------------------------------------------------------------------------------------------------ handlers
@pytest.fixture(scope="module")
def page_blocks(aegan_run, tmp_path_factory):
    """The app over the tiny grey AEGAN run with a small digits index."""
    pytest.importorskip("gradio")
    from ganinv.apps.search import build_index
    from ganinv.web.page import build_app

    index = build_index(aegan_run, "digits", tmp_path_factory.mktemp("index") / "idx", limit=48,
                        show_progress=False)
    return build_app(InversionModel.load(aegan_run), index)


@pytest.fixture(scope="module")
def page(page_blocks):
    """The app's handlers by name."""
    return {fn.fn.__name__: fn.fn for fn in page_blocks.fns.values() if fn.fn is not None}


def test_page_components_are_drawn_by_gradios_own_widgets(page_blocks):
    """Images, galleries and uploads are ganinv's subclasses (result files of their own, see ResultFiles; no file
    left per upload), marked as templates so the browser draws them with gradio's Image, Gallery and File."""
    from ganinv.web.page import page_components

    ours = {type(b).__name__: b for b in page_blocks.blocks.values() if type(b) in page_components()}
    assert set(ours) == {"ResultImage", "ResultGallery", "UploadFile"}
    assert {b.get_block_name() for b in ours.values()} == {"image", "gallery", "file"}
    types = {c["type"] for c in page_blocks.get_config_file()["components"]}
    assert {"image", "gallery", "file"} <= types and not any(t.startswith(("result", "upload")) for t in types)
    assert page_blocks.results.paths() == []  # building the page writes nothing


def test_every_tab_handler_answers_and_bad_uploads_become_messages(page, tmp_path):
    good = save(tmp_path / "good.png", rgb_array())
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    state, original, recon, metrics, cleared, status = page["rec_from_upload"](str(good), "encoder", 0)
    assert recon.shape == original.shape == (192, 192, 3) and "PSNR" in metrics and "SSIM" in metrics
    assert "dHash" in metrics and " ms " in metrics and "converted to grey" in status
    *rest, status = page["rec_from_upload"](str(text), "encoder", 0)
    assert all(r is None for r in rest) and "not an image" in status
    _, _, _, metrics, _, _ = page["rec_again"](state, "hybrid", 5)
    assert "hybrid" in metrics
    assert "generated sample" in page["rec_from_sample"](3, "encoder", 0)[-1]

    out = page["from_entry"](5, 4)  # search with an indexed image: it finds itself first
    galleries = out[1:-2]
    assert len(galleries) == 4 and all(len(g) == 4 for g in galleries)
    assert galleries[0][0][1].startswith("#1 digits[train]#5") and "(same)" in galleries[0][0][1]
    assert "not an image" in page["from_upload"](str(text), 4)[-1]

    sr = page["sr_from_upload"](str(good), "downsample", 4, 1.0)
    assert all(img is not None for img in sr[1:5]) and "bicubic" in sr[5] and "inverted" in sr[5]
    assert page["sr_from_sample"]("blur", 4, 1.5)[3] is None  # no bicubic row for a blur

    strip_, notes = page["do_interpolate"](str(good), str(good), 5)
    assert strip_.shape[0] >= 96 and "A:" in notes
    assert "upload both" in page["do_interpolate"](str(good), None, 5)[-1]
    edited, notes = page["do_attribute"](None, "digit=3", 2.0, 5)
    assert edited is not None and "direction from 48 indexed latents" in notes

    grid, metrics, status = page["do_random"](0, 3)
    assert grid.shape[0] > grid.shape[1] / 6 and "PSNR" in metrics and status is None


def test_traversal_handler_on_a_run_with_a_latent_scale(aegan_run):
    pytest.importorskip("gradio")
    from ganinv.web.page import build_app

    model = InversionModel.load(aegan_run)
    model.method.latent_scale = torch.linspace(1.0, 0.1, model.prior.dim)  # as a dlsgan run has
    handlers = {fn.fn.__name__: fn.fn for fn in build_app(model).fns.values() if fn.fn is not None}
    grid, notes = handlers["do_traverse"](None, 3, 4)
    assert grid is not None and "elements 0 (s=1.000), 1" in notes
    assert "from_entry" not in handlers  # no index: no search handlers


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``ganinv serve RUN --port P [--host HOST] [EXTRA_ARGS]`` in a subprocess, waited for until the page answers;
    ``env`` adds to the server's environment (GRADIO_TEMP_DIR, to keep its files where a test can count them)."""

    def __init__(self, run, timeout_s=90.0, host: str | None = None, env: dict[str, str] | None = None,
                 extra_args: list[str] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        host_args = [] if host is None else ["--host", host]
        self.proc = subprocess.Popen([sys.executable, "-c", "from ganinv.cli import main; main()", "serve", str(run),
                                      "--port", str(self.port), *host_args, *extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ganinv serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise AssertionError(f"ganinv serve did not answer within {timeout_s:.0f} s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
    grey = save(tmp_path / "grey.png", np.random.default_rng(2).integers(0, 255, (24, 24), dtype=np.uint8))
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image")
    server = Server(aegan_run)
    try:
        with sync_playwright() as p:
            context = launch(p, chromium, tmp_path / "profile")
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("#reconstruct-upload input[type=file]", state="attached", timeout=60_000)

            upload(page, "reconstruct-upload", good)
            metrics = wait_text(page, "#reconstruct-metrics", "PSNR")
            assert "SSIM" in metrics and "dHash similarity" in metrics and "ms" in metrics
            page.wait_for_selector("#reconstruct-output img", timeout=10_000)
            assert page.locator("#reconstruct-original img").count() == 1

            upload(page, "reconstruct-upload", text)
            status = wait_text(page, "#reconstruct-status", "error")
            assert "notes.txt is not an image" in status and "Traceback" not in page.content()
            assert page.locator("#reconstruct-output img").count() == 0  # the old result is cleared

            upload(page, "reconstruct-upload", grey)  # the server keeps serving
            wait_text(page, "#reconstruct-metrics", "PSNR")
            assert "error" not in page.locator("#reconstruct-status").inner_text()
            page.wait_for_selector("#reconstruct-output img", timeout=10_000)
            context.close()
        assert server.proc.poll() is None, server.output()
    finally:
        server.close()
    assert "Traceback" not in server.output()
    assert time.monotonic() - start < 90


# ------------------------------------------------------------------------------------------------ screenshot
def make_screenshot(out: Path, run: Path | None = None) -> Path:
    """The README's screenshot: the Reconstruct tab after an upload, taken in the same headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if run is None:
            sys.path.insert(0, str(Path(__file__).parent))
            from conftest import make_generator_run, tiny_train

            make_generator_run(tmp / "generator", channels=3)
            tiny_train("aegan", tmp / "aegan", steps=60, generator=tmp / "generator")
            run = tmp / "aegan"
        model = InversionModel.load(run)
        with torch.inference_mode():
            sample = model.generate(model.sample(1, generator=torch.Generator().manual_seed(7)))[0]
        image = tmp / "sample.png"
        Image.fromarray(to_display(sample, 64)).save(image)
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


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG to write, e.g. docs/web.png")
    parser.add_argument("--run", type=Path, help="run directory to show [a tiny RGB AEGAN made here]")
    args = parser.parse_args()
    print(make_screenshot(args.screenshot, args.run))
