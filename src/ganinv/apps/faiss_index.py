"""FAISS indexes, built the same way wherever latents are searched: exact flat L2, or IVF-PQ with SQ8 re-ranking for
collections of millions (sizes from ``ivf_params``); written atomically, read with a clear error when damaged."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ganinv.core import safe_files
from ganinv.core.errors import GaninvError
from ganinv.core.extras import require
from ganinv.core.io import atomic_write


def faiss_module():
    """faiss, imported when first needed (it is heavy and only search needs it), or one line naming the extra."""
    return require("faiss", "search", "image search (ganinv index / search)")


FAISS_ARRAY_FLOOR_BYTES = 1 << 30  # IVF-PQ's precomputed table for ~4 million 100-d latents (4√n lists × 50 × 256)
POINTS_PER_CENTROID = 39  # FAISS's k-means warns (once per PQ sub-quantizer) when it gets fewer per centroid


def ivf_params(n: int, dim: int) -> dict:
    """IVF-PQ sizes fitted to a collection of ``n`` latents: nlist ≈ 4√n lists, PQ with 2 dimensions per
    sub-quantizer, SQ8 re-ranking of 4k candidates, an eighth of the lists probed (at least 16). Both k-means get
    at least 39 training points per centroid: nlist ≤ n/39, and 8-bit PQ codes (256 centroids) only from 9,984
    latents on, fewer bits below — else FAISS prints one warning per sub-quantizer (50 for 100-d latents)."""
    nlist = max(1, min(int(4 * math.sqrt(max(n, 1))), n // POINTS_PER_CENTROID))
    m = max(d for d in range(1, dim + 1) if dim % d == 0 and d <= max(1, dim // 2))
    bits = max(1, min(8, (n // POINTS_PER_CENTROID).bit_length() - 1))  # 2^bits centroids, 39 points each
    return {"nlist": nlist, "pq_m": m, "pq_bits": bits, "nprobe": max(1, min(nlist, max(16, nlist // 8))),
            "k_factor": 4}


def new_float_index(dim: int, kind: str, params: dict | None = None):
    faiss = faiss_module()
    if kind == "flat":
        return faiss.IndexFlatL2(dim)
    p = params
    index = faiss.index_factory(dim, f"IVF{p['nlist']},PQ{p['pq_m']}x{p['pq_bits']}np,Refine(SQ8)")
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.niter = 10  # coarse k-means: 10 iterations are plenty for assignment, and 2.5× faster to train
    ivf.pq.cp.niter = 10
    ivf.pq.cp.max_points_per_centroid = 64  # PQ codebooks from at most 16k residuals
    ivf.pq.cp.min_points_per_centroid = 16  # 4k+ residuals train 256 centroids of 2-d sub-vectors well
    return index


def set_search_params(index, params: dict | None, nprobe: int | None = None) -> None:
    if params is None:
        return
    faiss = faiss_module()
    faiss.extract_index_ivf(index).nprobe = int(nprobe or params["nprobe"])
    index.k_factor = float(params["k_factor"])


def train_ivf(vectors: np.ndarray, params: dict):
    index = new_float_index(vectors.shape[1], "ivfpq", params)
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_faiss(index, path: Path, binary: bool) -> None:
    """Write an index atomically. FAISS reports a failed write (a full disk, a quota) as a RuntimeError naming its
    temporary file; it becomes one line naming ``path``."""
    faiss = faiss_module()
    try:
        atomic_write(path, lambda tmp: (faiss.write_index_binary if binary else faiss.write_index)(index, tmp))
    except RuntimeError as exc:
        raise GaninvError(f"cannot write the FAISS index {path} ({faiss_reason(exc)}); free some space (or choose "
                          "another --out) and run the same command again: the shards already written are "
                          "kept") from None


def faiss_reason(exc: RuntimeError) -> str:
    """FAISS's message cut to its reason ("No space left on device"): it names C++ files and temporary names."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    reason = re.search(r"\(([^()]+)\)\s*$", text)  # write errors end with strerror in parentheses
    return reason.group(1) if reason else text.split("' failed: ", 1)[-1][:160]


def read_faiss(path: Path, binary: bool, max_bytes: int):
    """A FAISS index file of at most ``max_bytes`` (the caller's bound from what the index should hold). FAISS
    allocates each array its file declares before reading it; while it reads, its per-array limit is set to the
    file's own size (an array read from the file cannot be longer), or ``FAISS_ARRAY_FLOOR_BYTES`` for the tables
    FAISS computes on load (IVF-PQ's precomputed table: nlist × M × 2^bits floats), so a crafted length is one
    line, not a huge allocation. Any FAISS error is one line naming the file."""
    faiss = faiss_module()
    if not path.is_file():
        raise GaninvError(f"{path} is missing: the index is incomplete (run `ganinv index` again to finish it)")
    size = safe_files.check_size(path, "FAISS index", max_bytes)
    limit = getattr(faiss, "set_deserialization_vector_byte_limit", None)  # recent FAISS; older: the size bound only
    previous = faiss.get_deserialization_vector_byte_limit() if limit else None
    if limit:  # FAISS allows arrays of up to a quarter of it
        limit(4 * max(size, FAISS_ARRAY_FLOOR_BYTES))
    try:
        return (faiss.read_index_binary if binary else faiss.read_index)(str(path))
    except RuntimeError as exc:  # "Error in <function> at <file>: Error: '<check>' failed": keep the check
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rsplit("Error: ", 1)[-1]
        raise GaninvError(f"{path} is truncated or corrupt ({reason[:120]})") from None
    finally:
        if limit:
            limit(previous)
