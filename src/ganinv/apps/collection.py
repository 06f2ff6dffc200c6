"""Inverting whole collections: ``ganinv invert RUN --data SPEC --out DIR``.

Images stream through one DataLoader (workers, batches), latents go to disk in shards, and nothing else is kept:
memory is one shard of latents plus the loader's prefetched batches, whatever the collection's size. A *latent
directory* holds

``manifest.json``          the run (path, weights fingerprint, method), data spec and split, ``n``, ``shard_size``,
                           ``shards``, the latent size and scale, ``complete``
``shards/NNNNN.json``      the items of shard NNNNN (file paths, or ``SPEC[SPLIT]#i``) and any that failed to read
``shards/NNNNN.npy``       their latents, float32 ``rows × d`` (z units; NaN rows for images that failed) — written
                           last and atomically, so its presence means the shard is done
``preview.png``            the first images beside their reconstructions

A killed run resumes by skipping finished shards (same command, same ``--out``). Under ``accelerate launch`` rank r
takes shards r, r + N, r + 2N, … and the main process writes the manifest, so N processes write disjoint files.
Shards are cut at the same image boundaries and batches never straddle them, so a resumed run's latents equal an
uninterrupted run's.
"""
from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from ganinv.apps import Warn, item_name, latent_scale, progress_bar, silent
from ganinv.apps.faiss_index import faiss_module, ivf_params, read_faiss
from ganinv.core import safe_files
from ganinv.core.errors import DataError, GaninvError
from ganinv.core.io import atomic_save_npy, atomic_write, atomic_write_json
from ganinv.core.rundir import run_fingerprint
from ganinv.core.threads import threads_for
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import TolerantImages, open_dataset
from ganinv.inference.model import InversionModel

FORMAT = "ganinv-latents"
FORMAT_VERSION = 1
DEFAULT_SHARD_SIZE = 4096
MANIFEST_MAX_BYTES = 4 << 20  # a manifest is ~1 kB; anything bigger is not ours and is refused unread
ITEM_MAX_BYTES = 8 << 10  # one item's name (a path) and any failure record, in a shard's JSON
FAISS_SLACK_BYTES = 64 << 20  # a FAISS file's header, IVF centroids and PQ codebooks beside its entries
FAISS_MAX_BYTES = 256 << 30
IDENTITY = ("run_fingerprint", "data", "split", "n", "shard_size", "refine")  # what a resumed run must share


# ------------------------------------------------------------------------------------------------ shards
def shard_bounds(i: int, n: int, shard_size: int) -> tuple[int, int]:
    return i * shard_size, min(n, (i + 1) * shard_size)


def shard_length(i: int, n: int, shard_size: int) -> int:
    start, stop = shard_bounds(i, n, shard_size)
    return stop - start


def shards_of_rank(shards: int, rank: int, world: int) -> list[int]:
    """Round-robin: every rank gets every world-th shard (disjoint files, balanced work)."""
    return list(range(rank, shards, world))


def latent_shard(out: Path, i: int) -> Path:
    return out / "shards" / f"{i:05d}.npy"


def items_shard(out: Path, i: int) -> Path:
    return out / "shards" / f"{i:05d}.json"


class ShardBatches(torch.utils.data.Sampler):
    """Batches of dataset indices, shard by shard, never straddling a shard boundary."""

    def __init__(self, shards: list[int], n: int, shard_size: int, batch_size: int):
        self.shards, self.n, self.shard_size, self.batch_size = shards, n, shard_size, batch_size

    def __iter__(self) -> Iterator[list[int]]:
        for i in self.shards:
            start, stop = shard_bounds(i, self.n, self.shard_size)
            for b in range(start, stop, self.batch_size):
                yield list(range(b, min(b + self.batch_size, stop)))

    def __len__(self) -> int:
        return sum(math.ceil(shard_length(i, self.n, self.shard_size) / self.batch_size) for i in self.shards)


# ------------------------------------------------------------------------------------------------ inverting
@dataclass(frozen=True)
class CollectionSummary:
    """One process's account of ``invert_collection``: images inverted now and by earlier sessions, failures now and
    before, speed and peak memory; ``to_json()`` is what ``ganinv invert --data --json`` prints."""

    out: str
    n: int  # images in the collection
    inverted_now: int
    done_before: int
    shards: int
    rank: int
    processes: int
    failed: int
    failed_before: int
    seconds: float
    images_per_s: float | None
    peak_rss_mib: float

    def to_json(self) -> dict:
        return asdict(self)


def invert_collection(
    model: InversionModel, run: str | Path, data: str, out: str | Path, *, split: str = "all",
    batch_size: int = 256, shard_size: int = DEFAULT_SHARD_SIZE, workers: int = 0, refine: int = 0,
    show_progress: bool = True, log: Warn = silent,
) -> CollectionSummary:
    """Invert every image of ``data`` (``split``) into latent shards under ``out``; resumable; rank-aware.

    ``model`` is what inverts (an encoder, or an encoder + ``refine`` optimisation steps); ``run`` names it in the
    manifest. Each unreadable image is named through ``log`` (those of shards finished by an earlier session too)
    and recorded in its shard's JSON. Returns a summary: images done now and before, seconds, images/s, failures
    now and before, peak RSS. A single process that could read none of its images raises DataError.
    """

    if batch_size < 1 or shard_size < 1:
        raise GaninvError(f"--batch-size and --shard-size must be at least 1, got {batch_size} and {shard_size}")
    state = PartialState(cpu=model.device.type == "cpu")
    out = Path(out)
    channels, size, _ = model.image_shape
    dataset = open_dataset(data, image_size=size, channels=channels, split=split)
    manifest = collection_manifest(model, run, data, split=split, n=len(dataset), shard_size=shard_size,
                                   refine=refine)
    start_latent_dir(out, manifest, state, log)
    shards = RankShards.of(out, manifest, state.process_index, state.num_processes)
    failed_before = _name_earlier_failures(out, shards.finished, manifest, log)
    started = time.perf_counter()
    # the DataLoader's workers decode on cores of their own; the caller's thread count comes back after (core.threads)
    with threads_for(model.device, workers=workers), progress_bar(
            "inverting", shards.images(shards.mine), show_progress and state.is_main_process,
            completed=shards.images(shards.finished), unit="images") as advance:
        failed = invert_shards(model, dataset, out, shards.todo, manifest, batch_size=batch_size, workers=workers,
                               preview=state.is_main_process and not (out / "preview.png").exists(), log=log,
                               advance=advance)
    seconds = time.perf_counter() - started
    mark_complete(out, manifest, state)
    return collection_summary(out, data, manifest, shards, state, failed=failed, failed_before=failed_before,
                              seconds=seconds)


def collection_summary(out: Path, data: str, manifest: dict, shards: RankShards, state, *, failed: int,
                       failed_before: int, seconds: float) -> CollectionSummary:
    """This process's summary — or DataError when a single process could read none of its images ("finished with
    some skipped" would hide that nothing was inverted)."""
    mine_total, done = shards.images(shards.mine), shards.images(shards.todo)
    if state.num_processes == 1 and mine_total and failed + failed_before == mine_total:
        raise DataError(f"none of the {mine_total} images of {data} could be read (each is named above and "
                        f"recorded in {out}/shards/*.json)")
    return CollectionSummary(
        out=str(out), n=manifest["n"], inverted_now=done, done_before=shards.images(shards.finished),
        shards=manifest["shards"], rank=state.process_index, processes=state.num_processes, failed=failed,
        failed_before=failed_before, seconds=round(seconds, 3),
        images_per_s=round(done / seconds, 1) if done and seconds > 0 else None, peak_rss_mib=peak_rss_mib())


def collection_manifest(model: InversionModel, run: str | Path, data: str, *, split: str, n: int, shard_size: int,
                        refine: int) -> dict:
    """The manifest of a latent directory (see the module docstring), not yet complete."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "run": str(Path(run).resolve()),
        "run_fingerprint": run_fingerprint(run), "method": model.config.method, "data": data, "split": split,
        "n": n, "shard_size": shard_size, "shards": math.ceil(n / shard_size), "latent_dim": model.prior.dim,
        "prior": model.prior.name, "refine": refine, "latent_scale": _scale_list(model), "complete": False,
    }


def start_latent_dir(out: Path, manifest: dict, state, log: Warn) -> None:
    """Create ``out`` (or check that it holds latents of the same inputs, to resume) and write its manifest. Every
    rank checks, so every rank raises the same error; only the main process writes, and all wait for it."""
    check_resumable(out, manifest)
    state.wait_for_everyone()
    if state.is_main_process:
        if (out / "manifest.json").is_file():
            log(f"resuming the inversion in {out}")
        (out / "shards").mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "manifest.json", manifest)
    state.wait_for_everyone()


def mark_complete(out: Path, manifest: dict, state) -> None:
    """Once every rank is done, the main process marks the directory complete if every shard is on disk (a rank
    killed under ``accelerate launch`` leaves it incomplete: the same command finishes it)."""
    state.wait_for_everyone()
    if state.is_main_process and all(latent_shard(out, i).is_file() for i in range(manifest["shards"])):
        atomic_write_json(out / "manifest.json", {**manifest, "complete": True})


@dataclass(frozen=True)
class RankShards:
    """One rank's share of a latent directory: its shards, those an earlier session finished, those left to do,
    and the number of images in each."""
    mine: list[int]
    todo: list[int]
    sizes: dict[int, int]

    @classmethod
    def of(cls, out: Path, manifest: dict, rank: int, world: int) -> RankShards:
        mine = shards_of_rank(manifest["shards"], rank, world)
        todo = [i for i in mine if not latent_shard(out, i).is_file()]  # a shard's .npy is written last
        return cls(mine, todo, {i: shard_length(i, manifest["n"], manifest["shard_size"]) for i in mine})

    @property
    def finished(self) -> list[int]:
        return [i for i in self.mine if i not in self.todo]

    def images(self, shards: list[int]) -> int:
        return sum(self.sizes[i] for i in shards)


def invert_shards(model: InversionModel, dataset, out: Path, shards: list[int], manifest: dict, *, batch_size: int,
                  workers: int, preview: bool, log: Warn, advance) -> int:
    """Invert the images of ``shards`` batch by batch, writing each shard as soon as it is complete, and the
    preview from the first readable batch when ``preview``. Returns how many images could not be read (each named
    through ``log``, recorded in its shard's JSON, its latent row NaN)."""
    n, shard_size = manifest["n"], manifest["shard_size"]
    loader = torch.utils.data.DataLoader(
        TolerantImages(dataset), batch_sampler=ShardBatches(shards, n, shard_size, batch_size), num_workers=workers,
        persistent_workers=False)
    pending = _PendingShard(out, dataset, shard_size, n)
    failed = 0
    # no inference_mode here: --refine optimises latents with autograd (the encoder alone runs under no_grad)
    for indices, images, _, errors in loader:
        ok = torch.tensor([not e for e in errors])
        for e in filter(None, errors):
            log(e)
        latents = torch.full((len(images), model.prior.dim), float("nan"))
        if ok.any():
            latents[ok] = model.invert(images[ok]).float().cpu()
            if preview:
                _write_preview(model, images[ok][:16], latents[ok][:16], out / "preview.png")
                preview = False
        failed += int((~ok).sum())
        pending.add(indices.tolist(), latents, errors)
        advance(len(images))
    pending.flush()
    return failed


def _name_earlier_failures(out: Path, shards: list[int], manifest: dict, log: Warn) -> int:
    """Name again the unreadable images of shards an earlier session finished (a resumed run reports all of its
    skipped inputs, and counts them in its exit status); returns how many."""
    count = 0
    for i in shards:
        try:
            failed = read_items_shard(out, i, manifest)["failed"]
        except GaninvError:
            continue  # a shard whose items file is unreadable still holds its latents; nothing to name
        for failure in failed:
            log(failure["error"])
        count += len(failed)
    return count


class _PendingShard:
    """Collects one shard's latents batch by batch and writes it (items JSON, then latents) when it is full."""

    def __init__(self, out: Path, dataset, shard_size: int, n: int):
        self.out, self.dataset, self.shard_size, self.n = out, dataset, shard_size, n
        self.shard, self.indices, self.latents, self.failures = None, [], [], []

    def add(self, indices: list[int], latents: torch.Tensor, errors) -> None:
        shard = indices[0] // self.shard_size
        if shard != self.shard:
            self.flush()
            self.shard = shard
        self.indices += indices
        self.latents.append(latents)
        self.failures += [{"index": i, "error": e} for i, e in zip(indices, errors) if e]
        if len(self.indices) == shard_length(shard, self.n, self.shard_size):
            self.flush()

    def flush(self) -> None:
        if self.shard is None or not self.indices:
            return
        items = {"shard": self.shard, "first": self.indices[0], "items": [item_name(self.dataset, i) for i in self.indices],
                 "failed": self.failures}
        atomic_write_json(items_shard(self.out, self.shard), items)
        array = torch.cat(self.latents).numpy()
        atomic_save_npy(latent_shard(self.out, self.shard), array)
        self.shard, self.indices, self.latents, self.failures = None, [], [], []


def check_resumable(out: Path, manifest: dict) -> None:
    if (out / "manifest.json").is_file():
        try:
            old = safe_files.read_json_bounded(out / "manifest.json", MANIFEST_MAX_BYTES)
        except GaninvError as exc:
            raise GaninvError(f"{exc}; choose another --out") from None
        if not isinstance(old, dict) or old.get("format") != FORMAT:
            raise GaninvError(f"{out} holds a {old.get('format', 'non-ganinv')!r} directory, not inverted latents; "
                              "choose another --out")
        changed = [key for key in IDENTITY if old.get(key) != manifest[key]]
        if changed:
            raise GaninvError(f"{out} already holds latents of other inputs (from {old.get('run')} on "
                              f"{old.get('data')}; differs in {', '.join(changed)}); choose another --out or delete it")
    elif out.exists() and any(out.iterdir()):
        raise GaninvError(f"{out} exists and is not a latent directory; choose another --out")


def _scale_list(model: InversionModel) -> list[float] | None:
    """The run's latent scale for the manifest (JSON numbers), or None."""
    scale = latent_scale(model)
    return None if scale is None else [float(v) for v in scale]


def _write_preview(model: InversionModel, images: torch.Tensor, latents: torch.Tensor, path: Path) -> None:
    reconstructions = model.generate(latents.to(model.device)).cpu()
    save_png(labelled_grid([images, reconstructions], ["input", "reconstruction"], title="first shard: a preview"),
             path)


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------------------------ reading
def read_latents(out: str | Path) -> tuple[np.ndarray, list[str]]:
    """All latents (n × d, in item order) and their item names, from a complete latent directory. For collections
    too big for memory, read ``shards/NNNNN.npy`` one at a time (or ``np.load(..., mmap_mode="r")``)."""
    out = Path(out)
    manifest = _complete_manifest(out)
    latents, items = [], []
    for i in range(manifest["shards"]):
        latents.append(read_latent_shard(out, i, manifest))
        items += read_items_shard(out, i, manifest)["items"]
    return np.concatenate(latents), items


# ------------------------------------------------------------------------------------------------ indexing
def _training_sample(out: Path, manifest: dict, want: int) -> np.ndarray:
    """The first ``want`` finite latents in item order (what an IVF index is trained on), read shard by shard."""
    sample, have, i = [], 0, 0
    while have < want and i < manifest["shards"]:
        rows = _finite_rows(read_latent_shard(out, i, manifest))[1][: want - have]
        sample.append(rows)
        have += len(rows)
        i += 1
    return np.ascontiguousarray(np.concatenate(sample))


def index_latents(out: str | Path, *, ivf: bool | None = None, log: Warn = silent) -> dict:
    """A FAISS index of a complete latent directory, streamed shard by shard: ``out/latents.faiss`` (row ids =
    positions in item order; rows of unreadable images are left out) and ``out/latents.index.json``.

    ``ivf``: IVF-PQ (``faiss_index.ivf_params``: ≈4√n lists, PQ codes of up to 8 bits, both fitted to n) trained on
    the first ≤ 64·nlist latents, or an exact flat index; default IVF-PQ from 100,000 latents on. With GPUs and
    faiss-gpu, training and adding run on all of them (``index_cpu_to_all_gpus``); the file written is a CPU index
    either way."""

    faiss = faiss_module()
    out = Path(out)
    manifest = _complete_manifest(out)
    n, d, shards = manifest["n"], manifest["latent_dim"], manifest["shards"]
    ivf = n >= 100_000 if ivf is None else ivf
    params = ivf_params(n, d) if ivf else None
    if params and params["nlist"] < 2:
        raise GaninvError(f"an IVF index needs at least 78 latents; {out} has {n}")
    # "np": no polysemous training — it only serves Hamming-filtered search, which we never turn on, and took ~60 s
    # of the ~65 s of training on 5,000 latents
    index = (faiss.index_factory(d, f"IVF{params['nlist']},PQ{params['pq_m']}x{params['pq_bits']}np")
             if params else faiss.IndexIDMap2(faiss.IndexFlatL2(d)))
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    working = faiss.index_cpu_to_all_gpus(index) if gpus else index
    if params:
        sample = _training_sample(out, manifest, min(n, 64 * params["nlist"]))
        log(f"training IVF{params['nlist']},PQ{params['pq_m']} on {len(sample)} latents"
            f"{f' on {gpus} GPU(s)' if gpus else ''}")
        working.train(sample)
    for i in range(shards):
        ids, rows = _finite_rows(read_latent_shard(out, i, manifest))
        working.add_with_ids(np.ascontiguousarray(rows), ids + i * manifest["shard_size"])
    index = faiss.index_gpu_to_cpu(working) if gpus else working
    if params:
        faiss.extract_index_ivf(index).nprobe = params["nprobe"]
    atomic_write(out / "latents.faiss", lambda tmp: faiss.write_index(index, tmp))
    info = {"kind": "ivfpq" if params else "flat", "params": params, "indexed": int(index.ntotal), "n": n,
            "gpus": gpus}
    atomic_write_json(out / "latents.index.json", info)
    return info


def search_latents(out: str | Path, queries: np.ndarray, k: int = 10, nprobe: int | None = None):
    """(distances Q×k, item names Q×k) of the k nearest indexed latents of each query (z units)."""

    out = Path(out)
    manifest = _complete_manifest(out)
    index = read_faiss(out / "latents.faiss", binary=False, max_bytes=min(
        2 * manifest["n"] * (manifest["latent_dim"] * 4 + 16) + FAISS_SLACK_BYTES, FAISS_MAX_BYTES))
    if index.d != manifest["latent_dim"]:
        raise GaninvError(f"{out}/latents.faiss holds latents of {index.d} dimensions, not the manifest's "
                          f"{manifest['latent_dim']}; run `ganinv invert ... --index` again")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != index.d:
        raise GaninvError(f"queries must be N×{index.d} latents, got shape {queries.shape}")
    if nprobe:
    
        faiss_module().extract_index_ivf(index).nprobe = int(nprobe)
    distances, ids = index.search(queries, k)
    shard_items: dict[int, list[str]] = {}

    def name(row: int) -> str:
        shard = row // manifest["shard_size"]
        if not 0 <= shard < manifest["shards"]:
            raise GaninvError(f"{out}/latents.faiss returned entry {row}, beyond the {manifest['n']} latents")
        if shard not in shard_items:
            shard_items[shard] = read_items_shard(out, shard, manifest)["items"]
        return shard_items[shard][row - shard * manifest["shard_size"]]

    return distances, [[name(int(r)) if r >= 0 else None for r in row] for row in ids]


def _finite_rows(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(latents).all(axis=1)
    return np.flatnonzero(keep).astype(np.int64), latents[keep].astype(np.float32)


def _complete_manifest(out: Path) -> dict:
    """manifest.json of a complete latent directory, bounded and type-checked (it may come from anyone: every
    other reader's bounds are computed from it)."""
    if not (out / "manifest.json").is_file():
        raise GaninvError(f"{out} is not a latent directory (no manifest.json)")
    manifest = safe_files.read_json_bounded(out / "manifest.json", MANIFEST_MAX_BYTES)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GaninvError(f"{out} is not a latent directory from `ganinv invert --data`")
    for key, high in (("n", 1 << 31), ("shard_size", 1 << 31), ("shards", 1 << 31), ("latent_dim", 1 << 16)):
        value = manifest.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high):
            raise GaninvError(f"{out}/manifest.json is damaged ({key} must be a whole number from 1 to {high})")
    if manifest["shards"] != math.ceil(manifest["n"] / manifest["shard_size"]):
        raise GaninvError(f"{out}/manifest.json is damaged (shards does not match n and shard_size)")
    if manifest.get("complete") is not True:
        raise GaninvError(f"{out} is incomplete; finish it by running the same `ganinv invert` command again")
    return manifest


def read_latent_shard(out: Path, i: int, manifest: dict) -> np.ndarray:
    """shards/NNNNN.npy: float32, rows × latent_dim exactly, its header checked before anything is allocated."""
    rows, dim = shard_length(i, manifest["n"], manifest["shard_size"]), manifest["latent_dim"]
    path = latent_shard(out, i)
    latents = safe_files.load_npy(path, "latent shard", max_bytes=rows * dim * 4 + 4096, ndim=2)
    if latents.shape != (rows, dim) or latents.dtype != np.float32:
        raise GaninvError(f"{path} holds {latents.dtype} latents of shape {latents.shape}; the manifest says "
                          f"{rows}×{dim} float32")
    return latents


def read_items_shard(out: Path, i: int, manifest: dict) -> dict:
    """shards/NNNNN.json, bounded and checked: ``items`` (one name per row) and ``failed`` (records)."""
    path, rows = items_shard(out, i), shard_length(i, manifest["n"], manifest["shard_size"])
    data = safe_files.read_json_bounded(path, rows * ITEM_MAX_BYTES + (1 << 20))
    items = data.get("items") if isinstance(data, dict) else None
    failed = data.get("failed", []) if isinstance(data, dict) else None
    if not (isinstance(items, list) and len(items) == rows and all(isinstance(x, str) for x in items)
            and isinstance(failed, list) and all(isinstance(f, dict) and isinstance(f.get("error"), str)
                                                 for f in failed)):
        raise GaninvError(f"{path} is damaged: it must name the shard's {rows} items and its failures")
    return data
