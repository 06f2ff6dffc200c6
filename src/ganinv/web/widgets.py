"""The page's own gradio components and the files they serve: imported only when a page is built.

    ResultFiles     result images as PNG files, each written once under a new name; the newest ``keep`` kept,
                    and none deleted younger than ``min_age_s``: a disk bound refuses new work instead
    remove_stale_folders   result folders of servers that died without cleaning up (SIGKILL), removed
    ResultImage     gr.Image that hands gradio a file from its ``results`` for each image array
    ResultGallery   gr.Gallery, the same for each image of a gallery
    UploadFile      gr.File giving the uploaded file's path, leaving no empty file behind per upload

gradio's ComponentMeta writes a ``.pyi`` stub beside the module that defines a component subclass unless an
identical one is there: ``widgets.pyi`` is that stub, committed, so importing this module writes nothing. It is
a copy of this file with gradio's event typing added; after changing this file, delete widgets.pyi, import the
module once to let gradio write it again, and commit it (tests/web/test_page.py checks it is current).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import numpy as np
from gradio.data_classes import ListFiles
from gradio.utils import get_upload_folder
from PIL import Image

from ganinv.core.errors import GaninvError

KEEP_RESULTS = 1000                # result images kept on disk to be served (a few kB each at these sizes) …
MIN_KEEP_RESULTS = 128             # a search alone makes up to 81 images: fewer could delete some before they are seen
RESULT_MIN_AGE_S = 600             # … but none younger than this is ever deleted: a browser may still fetch it
MAX_RESULT_MB = 512                # results younger than that may fill this much disk; beyond it new work is refused
RESULTS_PREFIX = "ganinv-results-"  # ResultFiles' folders: ganinv-results-<owner's pid>-<random>
OWNED_FOLDER = re.compile(re.escape(RESULTS_PREFIX) + r"(\d+)-[a-z0-9_]+")


class ResultsFull(GaninvError):
    """New work refused: the results a browser may still fetch fill the disk bound."""


class ResultFiles:
    """The page's output images as PNG files, each written once under a name never used before, in a folder the
    app owns inside gradio's upload folder (so gradio serves it in place instead of copying it), and never
    rewritten. Beyond the newest ``keep`` the oldest are deleted, but only once they are ``min_age_s`` old: a
    client that got a result's link can always fetch it that long. Results that young may fill ``max_bytes``, at
    most; then ``check_room`` refuses new work (``ResultsFull``) rather than delete one.

    Why not let gradio save the arrays: gradio names each saved image by a hash of its bytes and rewrites that file
    on every request (``processing_utils.save_pil_to_cache``: ``Path.write_bytes``, which truncates first), so
    identical results of concurrent requests cut each other's downloads short (h11: "Too little data for declared
    Content-Length")."""

    def __init__(self, folder: str | Path | None = None, keep: int = KEEP_RESULTS,
                 min_age_s: float = RESULT_MIN_AGE_S, max_bytes: int = MAX_RESULT_MB * 2**20,
                 clock: Callable[[], float] = time.monotonic):
        if keep < 1 or min_age_s < 0 or max_bytes < 1:
            raise GaninvError(f"keep and max_bytes must be at least 1 and min_age_s at least 0, got keep={keep}, "
                              f"max_bytes={max_bytes}, min_age_s={min_age_s}")
        self.keep, self.min_age_s, self.max_bytes, self.clock = int(keep), float(min_age_s), int(max_bytes), clock
        self._folder = None if folder is None else Path(os.path.abspath(folder))
        self._kept: deque[Kept] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        """Made on first use, so building the page writes nothing; named after this process (so a later server can
        tell it is stale once this one is gone: ``remove_stale_folders``) and removed when the process exits."""
        with self._lock:
            if self._folder is None:
                parent = Path(os.path.abspath(get_upload_folder()))
                parent.mkdir(parents=True, exist_ok=True)
                self._folder = Path(tempfile.mkdtemp(prefix=f"{RESULTS_PREFIX}{os.getpid()}-", dir=parent))
                atexit.register(self.remove_all)
            else:
                self._folder.mkdir(parents=True, exist_ok=True)
            return self._folder

    def write_png(self, array: np.ndarray, served_paths: set | None = None) -> str:
        """The H×W×3 uint8 ``array`` as a new PNG file; its path. ``served_paths``: the gradio component's set of
        the files it has served, from which the path is removed again when the file is deleted (gradio only ever
        adds to it)."""
        folder = self.folder
        final = folder / f"{uuid.uuid4().hex}.png"
        staging = folder / f".{final.name}.part"
        try:
            Image.fromarray(array).save(staging, format="PNG")
            os.replace(staging, final)  # a file under its final name is always complete
        finally:
            staging.unlink(missing_ok=True)
        with self._lock:
            self._kept.append(Kept(final, served_paths, self.clock(), final.stat().st_size))
            self._bytes += self._kept[-1].n_bytes
        self._evict()
        return str(final)

    def check_room(self) -> None:
        """Refuse new work (``ResultsFull``, one line for the page) while results too young to delete fill
        ``max_bytes``; the caller checks before its work, so one request's images at most go beyond."""
        self._evict()
        with self._lock:
            n_bytes, n_files = self._bytes, len(self._kept)
        if n_bytes >= self.max_bytes:
            raise ResultsFull(f"the server is busy: {n_files} result images ({n_bytes / 2**20:.0f} MB, its limit) "
                              f"are younger than {self.min_age_s / 60:g} minutes and may still be fetched; "
                              "please try again in a few minutes")

    def _evict(self) -> None:
        """Delete the oldest results beyond the newest ``keep``, none younger than ``min_age_s``."""
        now, expired = self.clock(), []
        with self._lock:
            while len(self._kept) > self.keep and now - self._kept[0].created >= self.min_age_s:
                expired.append(self._kept.popleft())
                self._bytes -= expired[-1].n_bytes
        for old in expired:
            if old.served is not None:  # first, so gradio stops handing the file out before it goes
                old.served.discard(str(old.path))
            old.path.unlink(missing_ok=True)

    def paths(self) -> list[Path]:
        with self._lock:
            return [kept.path for kept in self._kept]

    def remove_all(self) -> None:
        with self._lock:
            folder, self._kept, self._bytes = self._folder, deque(), 0
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class Kept(NamedTuple):
    path: Path
    served: set | None      # the gradio component's record of the files it served
    created: float          # ResultFiles.clock() when written
    n_bytes: int


def remove_stale_folders(parent: str | Path | None = None) -> list[Path]:
    """Remove the result folders (``ganinv-results-<pid>-…``, in gradio's upload folder by default) whose owning
    process is gone: left by a server that was SIGKILLed or crashed, which no exit handler cleans. Nothing else is
    touched: not other names, links, files, other users' folders, nor the folders of live processes. The removed."""
    parent = Path(os.path.abspath(get_upload_folder() if parent is None else parent))
    removed = []
    for entry in parent.glob(f"{RESULTS_PREFIX}*") if parent.is_dir() else ():
        match = OWNED_FOLDER.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid() \
                and not process_alive(int(match[1])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of that id exists (another user's included); a reused id reads as alive, so its folder
    is kept: the safe way to be wrong."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an id no process can have (never ours)
        return True
    return True


# ``is_template``: the browser draws these with gradio's own Image, Gallery and File widgets.

class ResultImage(gr.Image):
    """gr.Image writing each image array to its ``results`` (set after construction) instead of gradio's cache."""
    is_template = True
    results: ResultFiles

    def postprocess(self, value):
        if isinstance(value, np.ndarray):
            value = self.results.write_png(value, self.temp_files)
        return super().postprocess(value)


class ResultGallery(gr.Gallery):
    """gr.Gallery writing each image array of a gallery (alone or with a caption) to its ``results``."""
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
    """gr.File(type="filepath") without gradio's File.preprocess, which (6.x) also creates an empty
    NamedTemporaryFile in its cache on every upload and never deletes it."""
    is_template = True

    def preprocess(self, payload):
        if isinstance(payload, ListFiles):
            payload = payload[0] if len(payload.root) else None
        return None if payload is None else payload.path
