"""Image search by latents (AEGAN paper §4.2), with dHash, pHash and colour-histogram baselines in the same interface.

An *index directory* holds:

``manifest.json``   what was indexed and how: the run (path and a fingerprint of its weights), the data spec and
                    split, the image shape, label names, the feature methods, the FAISS index kind, ``complete``
``items.json``      per entry (FAISS id), its exact name — the file path (folder/celeba) or ``SPEC[SPLIT]#i`` for
                    in-memory sets — and its row in the dataset: ``{"items": [...], "rows": [...]}``. JSON, so any
                    legal file name round-trips (a newline; bytes that are not UTF-8 as \\udcXX escapes, which
                    ``os.fsencode`` turns back into the bytes). Indexes of format 1 have ``items.txt`` (a line each)
                    instead, and are still read.
``failures.json``   the images that could not be read (``[{"item", "reason"}]``): left out of the index, named on
                    stderr, counted in ``manifest.json`` (``indexed``, ``failed``)
``shards/*.npz``    features of every method, the labels and the dataset rows of the readable images among
                    ``shard_size`` items each, written atomically after ``shards/*.json`` (that shard's failures);
                    a killed ``ganinv index`` resumes by skipping the shards already on disk
``labels.npy``      N×A float32 labels (written when the index is complete; absent for unlabelled data)
``METHOD.faiss``    one FAISS index per method: latents (L2; exact ``IndexFlatL2`` or trained IVF-PQ with SQ8
                    re-ranking), dHash / pHash (64-bit codes, Hamming, ``IndexBinaryFlat``), colour histogram
                    (L2 between square-rooted normalised histograms, i.e. √2 × the Hellinger distance)

Latent features are ``z∘s`` for runs with a latent scale (dlsgan), plain ``z`` otherwise.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganinv.apps import (
    Warn,
    item_name,
    iterate_readable,
    labels_matrix,
    latent_features,
    load_inverter,
    progress_bar,
    read_dataset_images,
    read_images,
    silent,
)
from ganinv.apps.collection import shard_bounds, shard_length
from ganinv.apps.faiss_index import faiss_module, ivf_params, read_faiss, set_search_params, train_ivf, write_faiss
from ganinv.core import safe_files
from ganinv.core.errors import DataError, GaninvError
from ganinv.core.io import atomic_save_npy, atomic_save_npz, atomic_write_json
from ganinv.core.rundir import run_fingerprint
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import Skipped, degrade, display_path, load_image, no_usable_images, open_dataset
from ganinv.inference.model import InversionModel
from ganinv.metrics import colour_histogram, dhash_bits, phash_bits

FORMAT = "ganinv-index"
FORMAT_VERSION = 2  # 2: items.json (+ dataset rows) and failures.json instead of items.txt
METHODS = ("latent", "dhash", "phash", "colour")
BINARY_METHODS = ("dhash", "phash")
DEFAULT_SHARD_SIZE = 4096
# bounds for reading an index folder from anyone (each checked before the file is parsed or allocated)
MANIFEST_MAX_BYTES = 4 << 20  # a manifest is ~1 kB (label names included)
MAX_ENTRIES = 1 << 31
MAX_LABELS = 1 << 12
NAME_MAX_BYTES = 8 << 10  # one entry's name (a path) and row in items.json, or a failure and its reason
JSON_MAX_BYTES = 8 << 30
ROW_MAX_BYTES = 256 << 10  # one entry's features of every method, its labels and row, in a shard
FAISS_SLACK_BYTES = 64 << 20  # a FAISS file's header, IVF centroids and PQ codebooks beside its entries
FAISS_MAX_BYTES = 256 << 30


# ------------------------------------------------------------------------------------------------ features
def embed(method: str, images: Tensor, model: InversionModel | None = None) -> np.ndarray:
    """Feature vectors of one method: float32 for latent/colour, packed uint8 hash codes for dhash/phash."""
    if method == "latent":
        if model is None:
            raise GaninvError("latent search needs the run the index was built from")
        return latent_features(model, images)
    if method == "dhash":
        return np.packbits(dhash_bits(images), axis=1)
    if method == "phash":
        return np.packbits(phash_bits(images), axis=1)
    if method == "colour":
        return np.sqrt(colour_histogram(images)).astype(np.float32)
    raise GaninvError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")


def check_methods(methods) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise GaninvError(f"unknown search method(s) {', '.join(bad) or '(none)'}; choose from {', '.join(METHODS)}")
    return methods


# ------------------------------------------------------------------------------------------------ the index
@dataclass
class SearchResult:
    """Neighbours of each query: ``ids``/``distances`` are Q×k; ``items`` the entries' paths."""
    method: str
    ids: np.ndarray
    distances: np.ndarray
    items: list[list[str]]


class SearchIndex:
    """A built index directory: FAISS indexes per method, the manifest, items (with their dataset rows), labels and
    the images that could not be read (``failures``: dicts with ``item`` and ``reason``)."""

    def __init__(self, root: Path, manifest: dict, indexes: dict, items: list[str], labels: np.ndarray | None,
                 rows: list[int] | None = None, failures: list[dict] | None = None):
        self.root, self.manifest, self.indexes, self.items, self.labels = root, manifest, indexes, items, labels
        self.rows = list(range(len(items))) if rows is None else rows
        self.failures = failures or []

    # --- loading ---
    @classmethod
    def load(cls, root: str | Path) -> SearchIndex:
        root = Path(root)
        manifest = read_manifest(root)
        if not manifest.get("complete"):
            raise GaninvError(f"{root} is an unfinished index ({manifest.get('shards_done', 0)} shard(s) so far); "
                              "run the same `ganinv index` command again to finish it")
        items, rows = read_items(root, manifest)
        indexes = read_indexes(root, manifest, len(items))
        return cls(root, manifest, indexes, items, read_labels(root, manifest, len(items)), rows,
                   read_failures(root, manifest))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.manifest["methods"])

    @property
    def label_names(self) -> list[str] | None:
        return self.manifest.get("label_names")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        m = self.manifest
        return (m["channels"], m["image_size"], m["image_size"])

    # --- the run behind the latents ---
    def open_model(self, run: str | Path | None = None) -> InversionModel:
        """The run the index was built from (or ``run``, which must be that same run: same fingerprint)."""
        built_from = self.manifest["run"]
        run = Path(run) if run is not None else Path(built_from)
        if not run.exists():
            raise GaninvError(f"the run this index was built from ({built_from}) is gone; pass it with --run")
        if run_fingerprint(run) != self.manifest["run_fingerprint"]:
            raise GaninvError(
                f"{self.root} was built by another run ({built_from}, fingerprint "
                f"{self.manifest['run_fingerprint']}); {run} would give other latents — rebuild the index with "
                f"`ganinv index {run} --data {self.manifest['data']} --out NEW_INDEX`"
            )
        return load_inverter(run)

    # --- searching ---
    def search(self, features: np.ndarray, k: int, method: str = "latent", nprobe: int | None = None) -> SearchResult:
        if method not in self.indexes:
            raise GaninvError(f"{self.root} has no {method!r} index; it holds {', '.join(self.methods)}")
        check_k(k, len(self))
        index = self.indexes[method]
        if method == "latent" and nprobe is not None:
            set_search_params(index, self.manifest.get("ivf"), nprobe)
        distances, ids = index.search(np.ascontiguousarray(features), k)
        if method == "latent" and nprobe is not None:
            set_search_params(index, self.manifest.get("ivf"))
        distances = distances.astype(np.float64)
        if method not in BINARY_METHODS:
            distances = np.sqrt(np.maximum(distances, 0.0))  # FAISS L2 indexes return squared distances
        return SearchResult(method, ids, distances, [[self.items[i] if i >= 0 else "" for i in row] for row in ids])

    def search_images(self, images: Tensor, k: int = 10, method: str = "latent", model: InversionModel | None = None,
                      nprobe: int | None = None) -> SearchResult:
        if tuple(images.shape[1:]) != self.image_shape:
            raise GaninvError(f"queries must be N×{'×'.join(map(str, self.image_shape))} for this index, "
                              f"got {tuple(images.shape)}")
        if method == "latent" and model is None:
            model = self.open_model()
        return self.search(embed(method, images, model), k, method, nprobe)

    def vectors(self, method: str) -> np.ndarray:
        """Every entry's features for one method (from the shards), in index order."""
        return np.concatenate([shard[method] for shard in self._shards() if method in shard])

    def _shards(self):
        for i in range(self.manifest["shards"]):
            yield read_shard(self.root, i, self.manifest)

    def images(self, ids, warn: Warn = silent) -> Tensor:
        """The indexed images with these ids (read again), for result grids. Files are read by their recorded path
        (listing the folder again would shift every row after a file added or deleted since); one that can no
        longer be read is named through ``warn`` and shown as a mid-grey square."""
        m = self.manifest
        if m["data"].split(":", 1)[0].lower() in ("folder", "celeba"):
            def read(i):
                return load_image(self.items[i], m["image_size"], m["channels"])
        else:  # an in-memory set (mnist, digits): its rows never move
            dataset = open_dataset(m["data"], image_size=m["image_size"], channels=m["channels"], split=m["split"])

            def read(i):
                return dataset[self.rows[i]][0]
        return torch.stack([self._image(read, int(i), warn) for i in ids])

    def _image(self, read, i: int, warn: Warn) -> Tensor:
        try:
            return read(i)
        except DataError as exc:
            warn(f"indexed entry {i}: {exc}")
            return torch.full(self.image_shape, 0.5)


def search_files(index_dir: str | Path, images: list[str | Path], out: str | Path, *, k: int = 10,
                 method: str = "latent", run: str | Path | None = None, nprobe: int | None = None,
                 warn: Warn = silent) -> dict:
    """``ganinv search``: the k nearest indexed images of each readable query file (the others are named through
    ``warn`` and skipped), and a grid PNG at ``out`` (each query, then its results). Returns the JSON summary:
    ``{"index", "method", "k", "grid", "queries": [{"query", "results": [{"rank", "item", "distance"}]}],
    "skipped"}``. ``run``: the run the index was built from, when it has moved since."""
    index = SearchIndex.load(index_dir)
    check_k(k, len(index))
    model = index.open_model(run) if method == "latent" else None
    read = read_images(images, index.image_shape, warn=warn)
    queries = read.batch()
    result = index.search_images(queries, k=k, method=method, model=model, nprobe=nprobe)
    found = index.images(result.ids.reshape(-1), warn=warn).view(len(read.files), k, *index.image_shape)
    save_png(labelled_grid([torch.cat([q.unsqueeze(0), f]) for q, f in zip(queries, found)],
                           [f"query {i + 1}: {display_path(f)[-24:]}" for i, f in enumerate(read.files)],
                           column_labels=["query"] + [f"#{r}" for r in range(1, k + 1)],
                           captions=[[""] + [f"d={d:.3g}" for d in dists] for dists in result.distances],
                           title=f"search by {method}: each query and its {k} nearest indexed images"), out)
    payload = [{"query": os.fsdecode(f), "results": [{"rank": r + 1, "item": item, "distance": float(d)}
                                                     for r, (item, d) in enumerate(zip(items, dists))]}
               for f, items, dists in zip(read.files, result.items, result.distances)]
    return {"index": str(index_dir), "method": method, "k": k, "grid": str(out), "queries": payload,
            "skipped": [s.to_json() for s in read.skipped]}


def check_k(k: int, n: int) -> None:
    if k < 1:
        raise GaninvError(f"k must be at least 1, got {k}")
    if k > n:
        raise GaninvError(f"k={k} is larger than the index ({n} entries); ask for at most {n}")


def read_manifest(root: Path) -> dict:
    """manifest.json, bounded (``MANIFEST_MAX_BYTES``) and every field type-checked: an index folder may come from
    anyone, and every other reader's bounds are computed from it."""
    path = root / "manifest.json"
    if not path.is_file():
        raise GaninvError(f"{root} is not a search index (no manifest.json); build one with `ganinv index RUN "
                          f"--data SPEC --out {root}`")
    manifest = read_json_bounded(path, MANIFEST_MAX_BYTES)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GaninvError(f"{path} is not a ganinv index manifest")
    version = manifest.get("format_version", 0)
    if _is_int(version) and version > FORMAT_VERSION:
        raise GaninvError(f"{path} has format version {version}; this ganinv reads up to {FORMAT_VERSION} — "
                          "upgrade ganinv")
    problem = manifest_problem(manifest)
    if problem:
        raise GaninvError(f"{path} is damaged or not written by ganinv ({problem})")
    return manifest


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_problem(m: dict) -> str | None:
    """What is wrong with a manifest's fields (type, range, consistency), or None."""
    for key, low, high in (("format_version", 0, 1 << 20), ("n", 1, MAX_ENTRIES), ("image_size", 1, 1 << 14),
                           ("channels", 1, 4), ("shard_size", 1, MAX_ENTRIES), ("shards", 1, MAX_ENTRIES)):
        if not (_is_int(m.get(key)) and low <= m[key] <= high):
            return f"{key} must be a whole number from {low} to {high}, got {m.get(key)!r:.40}"
    if m["shards"] != math.ceil(m["n"] / m["shard_size"]):
        return f"shards is {m['shards']}, but {m['n']} entries in shards of {m['shard_size']} make " \
               f"{math.ceil(m['n'] / m['shard_size'])}"
    for key in ("indexed", "failed"):
        if key in m and not (_is_int(m[key]) and 0 <= m[key] <= m["n"]):
            return f"{key} must be a whole number from 0 to n, got {m[key]!r:.40}"
    for key in ("run", "run_fingerprint", "data", "split"):
        if not isinstance(m.get(key), str):
            return f"{key} must be a string"
    methods, names = m.get("methods"), m.get("label_names")
    if not (isinstance(methods, list) and methods and all(x in METHODS for x in methods)
            and len(set(methods)) == len(methods)):
        return f"methods must be a list of distinct {', '.join(METHODS)}"
    if names is not None and not (isinstance(names, list) and len(names) <= MAX_LABELS
                                  and all(isinstance(x, str) for x in names)):
        return f"label_names must be a list of at most {MAX_LABELS} strings"
    if any(key in m and not isinstance(m[key], bool) for key in ("complete", "latent_scaled")):
        return "complete and latent_scaled must be true or false"
    return _ivf_problem(m.get("ivf"))


def _ivf_problem(ivf) -> str | None:
    if ivf is None:
        return None
    keys = ("nlist", "pq_m", "pq_bits", "nprobe", "k_factor")
    if not (isinstance(ivf, dict) and set(ivf) == set(keys)
            and all(_is_int(ivf[k]) and 1 <= ivf[k] <= (1 << 20) for k in keys) and ivf["pq_bits"] <= 16):
        return f"ivf must hold {', '.join(keys)} as whole numbers from 1 to 2^20"
    return None


def read_json_bounded(path: Path, limit: int):
    """``safe_files.read_json_bounded`` with the hint every damaged index file gets."""
    try:
        return safe_files.read_json_bounded(path, limit)
    except GaninvError as exc:
        raise GaninvError(f"{exc}; rebuild the index") from None


def json_limit(manifest: dict) -> int:
    """The most bytes items.json / failures.json / items.txt may have: a name and a row per entry, plus change."""
    return min(manifest["n"] * NAME_MAX_BYTES + (1 << 20), JSON_MAX_BYTES)


def shard_path(root: Path, i: int) -> Path:
    return root / "shards" / f"{i:05d}.npz"


def shard_failures_path(root: Path, i: int) -> Path:
    return root / "shards" / f"{i:05d}.json"


def read_shard(root: Path, i: int, manifest: dict) -> dict[str, np.ndarray]:
    """One shard's arrays, each header checked against the bytes present before anything is allocated."""
    limit = manifest["shard_size"] * ROW_MAX_BYTES + (1 << 20)
    return safe_files.load_npz(shard_path(root, i), "index shard", max_bytes=limit)


def read_items(root: Path, manifest: dict) -> tuple[list[str], list[int]]:
    """(names, dataset rows) of the entries, from items.json, or from a format-1 index's items.txt (every row)."""
    path, count = root / "items.json", manifest.get("indexed", manifest["n"])
    if path.is_file():
        data = read_json_bounded(path, json_limit(manifest))
        items, rows = (data.get("items"), data.get("rows")) if isinstance(data, dict) else (None, None)
        if not (isinstance(items, list) and isinstance(rows, list) and len(items) == len(rows) == count
                and all(isinstance(x, str) for x in items)
                and all(_is_int(r) and 0 <= r < manifest["n"] for r in rows)):
            raise GaninvError(f"{path} is damaged: it must hold {count} item names and their dataset rows "
                              f"(0 to {manifest['n'] - 1}); rebuild the index")
        return items, rows
    text = _read_text_bounded(root / "items.txt", json_limit(manifest))
    items = text.splitlines()
    return items, list(range(len(items)))


def _read_text_bounded(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise GaninvError(f"{path} is larger than {limit >> 10} KiB; refusing to read it")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GaninvError(f"{path} is unreadable ({type(exc).__name__}); rebuild the index") from None


def read_failures(root: Path, manifest: dict) -> list[dict]:
    path = root / "failures.json"
    return _checked_failures(read_json_bounded(path, json_limit(manifest)), path) if path.is_file() else []


def _checked_failures(failures, path: Path) -> list[dict]:
    """A list of {"item", "reason"} strings, or one line naming the damaged file."""
    if not (isinstance(failures, list) and all(isinstance(f, dict) and isinstance(f.get("item"), str)
                                               and isinstance(f.get("reason"), str) for f in failures)):
        raise GaninvError(f"{path} is damaged (not a list of items and reasons); rebuild the index")
    return failures


def read_labels(root: Path, manifest: dict, count: int) -> np.ndarray | None:
    """labels.npy (count × labels, numbers), its header checked before loading, or None for unlabelled data."""
    path = root / "labels.npy"
    if not path.is_file():
        return None
    width = len(manifest.get("label_names") or [])
    labels = safe_files.load_npy(path, "index labels", max_bytes=count * max(width, 1) * 8 + 4096, ndim=2)
    if labels.shape != (count, width) or labels.dtype.kind not in "biuf":
        raise GaninvError(f"{path} holds {labels.dtype} labels of shape {labels.shape}; the index has {count} "
                          f"entries and {width} label names")
    return labels


def read_indexes(root: Path, manifest: dict, count: int) -> dict:
    """Every method's FAISS index, each file bounded by the shards' size before FAISS reads it, and checked to hold
    ``count`` entries of the shards' width (a query of another width would fail inside FAISS)."""
    widths = feature_widths(root, manifest)
    indexes = {}
    for method in manifest["methods"]:
        binary = method in BINARY_METHODS
        row = widths.get(method, 0) * (1 if binary else 4)
        path = root / f"{method}.faiss"
        index = read_faiss(path, binary, max_bytes=min(2 * count * (row + 16) + FAISS_SLACK_BYTES, FAISS_MAX_BYTES))
        if index.ntotal != count or index.d != widths.get(method, 0) * (8 if binary else 1):
            raise GaninvError(f"{path} holds {index.ntotal} entries of width {index.d}, but the index has {count} "
                              f"entries of width {widths.get(method, 0) * (8 if binary else 1)}; rebuild the index")
        if method == "latent":
            set_search_params(index, manifest.get("ivf"))
        indexes[method] = index
    return indexes


def feature_widths(root: Path, manifest: dict) -> dict[str, int]:
    """Each method's feature width (columns), read from the shards' headers alone."""
    widths: dict[str, int] = {}
    limit = manifest["shard_size"] * ROW_MAX_BYTES + (1 << 20)
    for i in range(manifest["shards"]):
        if len(widths) == len(manifest["methods"]):
            break
        layout = safe_files.npz_layout(shard_path(root, i), "index shard", max_bytes=limit)
        for method, (shape, _) in layout.items():
            if method in manifest["methods"] and len(shape) == 2:
                widths.setdefault(method, shape[1])
    return widths


def _item_names(dataset) -> list[str]:
    """Absolute paths (folder/celeba) or ``SPEC[SPLIT]#i``: names that stay valid from any working folder."""
    if dataset.paths is not None:
        return [_absolute(p) for p in dataset.paths]
    return [item_name(dataset, i) for i in range(len(dataset))]


def _failure_name(dataset, item: str) -> str:
    """An unreadable item's name: absolute like the items, but without following links (it may be a dangling link
    or a loop)."""
    return os.path.abspath(item) if dataset.paths is not None else item


def _absolute(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symbolic link loop: Python 3.11 raises RuntimeError from resolve()
        return os.path.abspath(path)


# ------------------------------------------------------------------------------------------------ building
def build_index(
    run: str | Path, data: str, out: str | Path, *, split: str = "train", methods=METHODS, ivf: bool = False,
    limit: int | None = None, batch_size: int = 256, shard_size: int = DEFAULT_SHARD_SIZE, workers: int = 0,
    show_progress: bool = True, log: Warn = silent,
) -> SearchIndex:
    """Invert a collection into ``out`` (see the module doc). Streams batch by batch through a DataLoader; features
    are kept per shard on disk, so a killed build resumes where it stopped (same command, same ``out``)."""
    methods = check_methods(methods)
    faiss_module()  # the search extra missing: one line now, not after the whole collection is inverted
    out = Path(out)
    model = load_inverter(run) if "latent" in methods else None
    fingerprint = run_fingerprint(run)
    net = InversionModel.load(run).config.net if model is None else model.config.net
    dataset = open_dataset(data, image_size=net.image_size, channels=net.channels, split=split)
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n < 1:
        raise GaninvError("nothing to index: --limit must be at least 1")
    shards = math.ceil(n / shard_size)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "run": str(Path(run).resolve()),
        "run_fingerprint": fingerprint, "run_method": (model.config.method if model else None),
        "data": data, "split": split, "n": n, "image_size": net.image_size, "channels": net.channels,
        "label_names": dataset.label_names, "methods": list(methods), "shard_size": shard_size, "shards": shards,
        "kind": "ivfpq" if ivf else "flat",
        "latent_scaled": model is not None and model.method.latent_scale is not None,
    }
    start_index_dir(out, manifest, log)
    todo = [i for i in range(shards) if not shard_path(out, i).is_file()]
    done_images = n - sum(shard_length(i, n, shard_size) for i in todo)
    with torch.inference_mode(), progress_bar("inverting", n, show_progress, completed=done_images) as advance:
        for i in range(shards):
            if i in todo:
                _index_shard(out, i, dataset, shard_bounds(i, n, shard_size), methods, model, batch_size, workers,
                             advance, log)
            else:  # finished by an earlier session: its failures are named again, as this run's skipped inputs
                for failure in _shard_failures(out, i, manifest):
                    log(failure["reason"])
    return finish_index(out, manifest, ivf=ivf, names=_item_names(dataset)[:n], log=log)


def start_index_dir(out: Path, manifest: dict, log: Warn = silent) -> None:
    """Write the (incomplete) manifest into a new ``out``, or into one that holds an unfinished index of the same
    inputs (to resume it); anything else in ``out`` is an error, never overwritten."""
    identity = ("run_fingerprint", "data", "split", "n", "image_size", "channels", "methods", "shard_size")
    if (out / "manifest.json").is_file():
        old = read_manifest(out)
        changed = [key for key in identity if old.get(key) != manifest[key]]
        if changed:
            raise GaninvError(
                f"{out} already holds an index of other inputs (it was built from {old.get('run')} on "
                f"{old.get('data')}; differs in {', '.join(changed)}); choose another --out or delete it"
            )
        log(f"resuming the index in {out}")
    elif out.exists() and any(out.iterdir()):
        raise GaninvError(f"{out} exists and is not an index; choose another --out")
    manifest["complete"] = False
    atomic_write_json(out / "manifest.json", manifest)


def _index_shard(out: Path, i: int, dataset, bounds: tuple[int, int], methods, model, batch_size: int,
                 workers: int, advance, log: Warn) -> None:
    """Features, labels and dataset rows of the readable images of one shard; its failures (named through ``log``)
    go to shards/NNNNN.json, written before the .npz whose presence marks the shard done."""
    parts: dict[str, list] = {m: [] for m in methods}
    rows, labels, skipped = [], [], []
    start, stop = bounds
    for indices, images, batch_labels in iterate_readable(dataset, start, stop, batch_size, workers,
                                                          skipped=skipped, warn=log):
        for method in methods:
            parts[method].append(embed(method, images, model))
        labels.append(labels_matrix(batch_labels))
        rows.append(indices.numpy().astype(np.int64))
        advance(len(images))
    advance(len(skipped))
    # a shard with no readable image stores no features: its methods' arrays would have no known width
    arrays = {m: np.concatenate(p) for m, p in parts.items() if p}
    arrays["labels"] = np.concatenate(labels) if labels else np.zeros((0, 0), np.float32)
    arrays["rows"] = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    failed = [{"item": _failure_name(dataset, s.item), "reason": s.reason} for s in skipped]
    atomic_write_json(shard_failures_path(out, i), {"failed": failed})
    atomic_save_npz(shard_path(out, i), **arrays)


def _shard_failures(out: Path, i: int, manifest: dict) -> list[dict]:
    path = shard_failures_path(out, i)
    if not path.is_file():
        return []  # format 1 shards failed nothing
    data = read_json_bounded(path, manifest["shard_size"] * NAME_MAX_BYTES + (1 << 20))
    return _checked_failures(data.get("failed", []) if isinstance(data, dict) else None, path)


def _shard_rows(shard: dict, i: int, manifest: dict) -> np.ndarray:
    """The dataset rows of a shard's entries (format 1 shards hold every row of their range)."""
    if "rows" in shard:
        return shard["rows"]
    start, stop = shard_bounds(i, manifest["n"], manifest["shard_size"])
    return np.arange(start, stop, dtype=np.int64)


def finish_index(out: Path, manifest: dict, *, ivf: bool, names: list[str], log: Warn = silent) -> SearchIndex:
    """Build the FAISS indexes from the shards (one shard in memory at a time, beyond the index itself), then
    items.json, failures.json and labels.npy. No readable image at all is a DataError."""
    shards = manifest["shards"]

    def load_shard(i):
        return read_shard(out, i, manifest)

    rows = [_shard_rows(load_shard(i), i, manifest) for i in range(shards)]
    failures = [f for i in range(shards) for f in _shard_failures(out, i, manifest)]
    filled = [i for i in range(shards) if len(rows[i])]
    if not filled:
        raise no_usable_images([Skipped(f["item"], f["reason"]) for f in failures],
                               f"{manifest['n']} images of {manifest['data']}")
    indexed = sum(len(r) for r in rows)
    for method in manifest["methods"]:
        features = [lambda i=i, m=method: load_shard(i)[m] for i in filled]  # one shard in memory at a time
        index, params = _empty_index(method, features, indexed, ivf=ivf, log=log)
        if params:
            manifest["ivf"] = params
        for shard_features in features:
            index.add(np.ascontiguousarray(shard_features()))
        write_faiss(index, out / f"{method}.faiss", method in BINARY_METHODS)
    labels = np.concatenate([load_shard(i)["labels"] for i in filled])
    if manifest.get("label_names"):
        atomic_save_npy(out / "labels.npy", labels)
    all_rows = [int(r) for i in filled for r in rows[i]]
    atomic_write_json(out / "items.json", {"items": [names[r] for r in all_rows], "rows": all_rows})
    atomic_write_json(out / "failures.json", failures)
    manifest.update(complete=True, indexed=indexed, failed=len(failures))
    atomic_write_json(out / "manifest.json", manifest)
    return SearchIndex.load(out)


def _empty_index(method: str, features: list, indexed: int, *, ivf: bool, log: Warn) -> tuple[object, dict | None]:
    """(an index for ``method``'s features, with nothing added yet; the IVF parameters or None). ``features``:
    one loader per non-empty shard. Hash codes get a binary flat index; latents an exact flat index or, with
    ``ivf``, IVF-PQ trained on the first shards (up to 64 points per list, at least 16,384, or all)."""
    faiss = faiss_module()
    width = features[0]().shape[1]
    if method in BINARY_METHODS:
        return faiss.IndexBinaryFlat(width * 8), None
    if method != "latent" or not ivf:
        return faiss.IndexFlatL2(width), None
    params = ivf_params(indexed, width)
    if params["nlist"] < 2:
        raise GaninvError(f"--ivf needs at least 78 images to train on; this collection has {indexed} readable ones")
    sample, have = [], 0
    want = min(indexed, max(64 * params["nlist"], 256 * 64))
    for shard_features in features:
        if have >= want:
            break
        part = shard_features()[: want - have]
        sample.append(part)
        have += len(part)
    log(f"training IVF{params['nlist']},PQ{params['pq_m']}x8 with SQ8 re-ranking on {have} latents")
    return train_ivf(np.concatenate(sample), params), params


# ------------------------------------------------------------------------------------------------ evaluation
PERTURBATIONS = ("colour", "occlude", "blur")


def perturb(images: Tensor, kind: str, seed: int = 0) -> Tensor:
    """The robustness perturbations of AEGAN (Luo et al.) fig. 3: a colour transform, an occluding patch (a quarter
    of the side, like sunglasses), a gaussian blur (σ = 1 px at 32 px, scaled with the image size)."""
    if kind == "colour":
        return degrade.colour_shift(images, gain=(1.2, 0.85, 0.9), offset=(0.05, 0.0, -0.05))
    if kind == "occlude":
        return degrade.occlude(images, size=0.25, value=0.0, generator=torch.Generator().manual_seed(seed))
    if kind == "blur":
        return degrade.gaussian_blur(images, sigma=images.shape[-1] / 32)
    raise GaninvError(f"unknown perturbation {kind!r}; choose from {', '.join(PERTURBATIONS)}")


def _distances(method: str, queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    if method in BINARY_METHODS:  # Q×N Hamming distances: popcount of XORed bytes, one query at a time
        popcount = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
        return np.stack([popcount[np.bitwise_xor(q[None, :], base)].sum(1) for q in queries]).astype(np.float64)
    q, b = queries.astype(np.float64), base.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * q @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def rank_of_original(method: str, perturbed: np.ndarray, originals: np.ndarray, base: np.ndarray) -> np.ndarray:
    """1-based rank of each query's clean original among the database plus all clean originals, when searching
    with its perturbed version. Ties count half (the expected rank under random tie-breaking)."""
    database = np.concatenate([base, originals])
    d = _distances(method, perturbed, database)
    own = d[np.arange(len(perturbed)), len(base) + np.arange(len(perturbed))]
    closer = (d < own[:, None]).sum(1)
    ties = (d == own[:, None]).sum(1) - 1
    return 1 + closer + ties / 2


def label_similarity(query_labels: np.ndarray, result_labels: np.ndarray) -> float:
    """AEGAN (Luo et al.) table 2: mean over queries and their top-k results of the fraction of labels they share
    (``result_labels`` is Q×k×A; for a class label: the fraction of results of the same class)."""
    return float((query_labels[:, None, :] == result_labels).mean())


PAPER_DATABASE = 20_000  # AEGAN (Luo et al.) table 2 searches "the first 20,000 images"


def evaluate_search(
    run: str | Path, data: str, *, index_dir: str | Path | None = None, queries: int = 64, k: int = 10,
    database: int | None = PAPER_DATABASE, limit: int | None = None, methods=METHODS, seed: int = 0,
    show_progress: bool = True, log: Warn = silent,
) -> dict:
    """AEGAN (Luo et al.) table 2 (label similarity of the top-k, per method, beside random picks) and robustness
    (rank of the original under each perturbation, recall@1/@10), by the paper's protocol: a database of the first
    ``database`` train images (all when fewer, or when None), indexed into ``index_dir`` (reused and resumable, or
    a temporary folder), searched with the readable ones of the first ``queries`` test images — outside the
    database by construction (another split). ``limit`` is the old name of ``database`` (still accepted; it wins
    when given). The result says what was used: ``indexed`` (entries), ``database_note`` (in words, beside the
    paper's 20,000) and ``queries``; ``skipped`` lists every unreadable image (indexed or query), each also named
    through ``log``."""
    database = limit if limit is not None else database
    if database is not None and database < 1:
        raise GaninvError(f"the search database must hold at least 1 image, got {database}")
    methods = check_methods(methods)
    with index_folder(index_dir) as index_dir:
        index = complete_index(run, data, index_dir, methods=methods, limit=database, show_progress=show_progress,
                               log=log)
        methods = tuple(m for m in methods if m in index.methods)
        model = index.open_model(run) if "latent" in methods else None
        if index.labels is None:
            raise GaninvError(f"{data} has no labels: label similarity needs labelled data (mnist, digits, celeba)")
        check_k(k, len(index))
        shape = {"image_size": index.image_shape[1], "channels": index.image_shape[0]}
        note = searched_database(index, index_dir, data, database, shape, log)
        test = open_dataset(data, split="test", **shape)
        q_images, q_labels, q_skipped = read_dataset_images(test, queries, log, f"test images of {data}")
        with torch.inference_mode():
            features = {m: embed(m, q_images, model) for m in methods}
            similarity = label_similarities(index, features, labels_matrix(q_labels), k=k, seed=seed)
            robustness = {m: robustness_of(index, m, q_images, features[m], model, seed) for m in methods}
    return {"run": str(run), "data": data, "queries": len(q_images), "k": k, "indexed": len(index),
            "database": database, "database_note": note, "label_names": index.label_names,
            "label_similarity": similarity, "robustness": robustness,
            "skipped": index.failures + [s.to_json() for s in q_skipped]}


@contextlib.contextmanager
def index_folder(index_dir: str | Path | None):
    """``index_dir`` (reused and resumable), or a temporary folder removed afterwards."""
    if index_dir is not None:
        yield Path(index_dir)
        return
    tmp = tempfile.mkdtemp(prefix="ganinv-eval-index-")
    try:
        yield Path(tmp) / "index"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def searched_database(index: SearchIndex, index_dir: Path, data: str, database: int | None, shape: dict,
                      log: Warn) -> str:
    """The database searched, in words (``database_note``), told through ``log`` — with a line when a reused
    index holds another number of images than asked (it is used as it is)."""
    available = len(open_dataset(data, split=index.manifest["split"], **shape))
    wanted = available if database is None else min(database, available)
    if index.manifest["n"] != wanted:
        log(f"the index in {index_dir} holds {index.manifest['n']} images, not the {wanted} asked; delete it to "
            "index those")
    note = database_note(index, available)
    log(f"search database: {note}")
    return note


def database_note(index: SearchIndex, available: int) -> str:
    """The database in words, beside the paper's: e.g. "the first 9000 train images (all there are; the paper used
    20,000)". ``available``: the images of the indexed split (a reused index may hold fewer than were asked)."""
    n, split = index.manifest["n"], index.manifest["split"]
    if n >= available:
        text = f"the first {n} {split} images (all there are; the paper used 20,000)"
        if n >= PAPER_DATABASE:
            text = f"all {n} {split} images (the paper used the first 20,000)"
    else:
        paper = "as the paper" if n == PAPER_DATABASE else "the paper used 20,000"
        text = f"the first {n} of {available} {split} images ({paper})"
    unreadable = n - len(index)
    return text + (f"; {unreadable} of them unreadable, left out" if unreadable else "")


def complete_index(run: str | Path, data: str, index_dir: Path, *, methods, limit: int | None, show_progress: bool,
                   log: Warn = silent) -> SearchIndex:
    """The complete index in ``index_dir`` (its unreadable images named again, as this run's skipped inputs), or
    one built (or finished) there from the train split."""
    if (index_dir / "manifest.json").is_file() and read_manifest(index_dir).get("complete"):
        index = SearchIndex.load(index_dir)
        log(f"using the index in {index_dir} ({len(index)} entries)")
        for failure in index.failures:
            log(failure["reason"])
        return index
    return build_index(run, data, index_dir, methods=methods, limit=limit, show_progress=show_progress, log=log)


def label_similarities(index: SearchIndex, features: dict[str, np.ndarray], query_labels: np.ndarray, *, k: int,
                       seed: int) -> dict[str, float]:
    """Per method, the labels the top-k results share with their query; "random": k random picks (chance)."""
    similarity = {}
    for method, query_features in features.items():
        result = index.search(query_features, k, method)
        similarity[method] = label_similarity(query_labels, index.labels[result.ids])
    random_ids = np.random.default_rng(seed).integers(0, len(index), size=(len(query_labels), k))
    similarity["random"] = label_similarity(query_labels, index.labels[random_ids])
    return similarity


def robustness_of(index: SearchIndex, method: str, images: Tensor, features: np.ndarray, model, seed: int) -> dict:
    """Per perturbation: recall@1, recall@10 and the median rank of each original when searching with its
    perturbed copy among the originals and the indexed images."""
    base = index.vectors(method)
    results = {}
    for kind in PERTURBATIONS:
        perturbed = embed(method, perturb(images, kind, seed), model)
        ranks = rank_of_original(method, perturbed, features, base)
        results[kind] = {"recall@1": float((ranks <= 1).mean()), "recall@10": float((ranks <= 10).mean()),
                         "median_rank": float(np.median(ranks))}
    return results
