"""The page's own gradio components and the files they serve: imported only when a page is built.

    ResultFiles     result images as PNG files, each written once under a new name, only the newest ``keep`` kept
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
import shutil
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.data_classes import ListFiles
from gradio.utils import get_upload_folder
from PIL import Image

from ganinv.core.errors import GaninvError

KEEP_RESULTS = 1000                # result images kept on disk to be served (a few kB each at these sizes)
MIN_KEEP_RESULTS = 128             # a search alone makes up to 81 images: fewer could delete some before they are seen


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


# ``is_template``: the browser draws these with gradio's own Image, Gallery and File widgets.
from gradio.events import Dependency

class ResultImage(gr.Image):
    """gr.Image writing each image array to its ``results`` (set after construction) instead of gradio's cache."""
    is_template = True
    results: ResultFiles

    def postprocess(self, value):
        if isinstance(value, np.ndarray):
            value = self.results.write_png(value, self.temp_files)
        return super().postprocess(value)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


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
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class UploadFile(gr.File):
    """gr.File(type="filepath") without gradio's File.preprocess, which (6.x) also creates an empty
    NamedTemporaryFile in its cache on every upload and never deletes it."""
    is_template = True

    def preprocess(self, payload):
        if isinstance(payload, ListFiles):
            payload = payload[0] if len(payload.root) else None
        return None if payload is None else payload.path
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component