"""Helpers the web tests share (``from webtools import …``; pytest puts tests/web on sys.path): image files to
upload, a small search index, and ``ganinv serve`` in a subprocess. No fixtures and no tests here."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run as a script (the README's screenshot command), not by pytest
    sys.path.insert(0, str(TESTS))
from helpers import free_port  # noqa: E402

SHAPE_GREY, SHAPE_RGB = (1, 16, 16), (3, 16, 16)
INDEX_SIZE = 48


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path)
    return path


def rgb_array(seed: int = 0, h: int = 40, w: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def small_index(run: Path, folder: Path):
    """A labelled index of the first INDEX_SIZE digits, built from ``run`` (all four search methods)."""
    from ganinv.apps.search import build_index

    return build_index(run, "digits", folder / "idx", limit=INDEX_SIZE, show_progress=False)


class Server:
    """``ganinv serve RUN --port P [--host HOST] [EXTRA_ARGS]`` in a subprocess, waited for until the page answers;
    ``env`` adds to the server's environment (GRADIO_TEMP_DIR, to keep its files where a test can count them)."""

    def __init__(self, run, timeout_s: float = 90.0, host: str | None = None, env: dict[str, str] | None = None,
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
