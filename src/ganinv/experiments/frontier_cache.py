"""The rows an interrupted ``ganinv bench frontier`` had finished, so that running the same command again measures
only the rest: a CPU frontier runs for the better part of an hour, and a kill (or an out-of-memory end) should not
cost what was done.

After each row, ``RowCache.put`` writes two files in the report folder, each atomically: ``.frontier-partial.json``
(the command's key and every finished row) and ``.frontier-partial.safetensors`` (each row's first FACES
reconstructions, for the faces picture). ``RowCache.open`` reads them back only when their key — generator,
data, encoders, budget, seed and options — is the one asked for now; otherwise the rows belong to another command
and are set aside with one line. The finished report removes them (``clear``).

Rows measured in an earlier process were timed then, beside the same warm-up; rows measured now after a fresh
warm-up of the inverters still to run; frontier.json records how many rows were reused.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor

from ganinv.core import safe_files
from ganinv.core.io import atomic_write, atomic_write_json

PARTIAL_JSON, PARTIAL_TENSORS = ".frontier-partial.json", ".frontier-partial.safetensors"
MAX_PARTIAL_BYTES = 64 << 20  # rows are a few hundred bytes; the faces 8 small images a row


class RowCache:
    def __init__(self, out: Path, key: dict):
        self.out, self.key = Path(out), key
        self.rows: dict[str, dict] = {}  # "SET\tINVERTER" -> row
        self.faces: dict[str, Tensor] = {}
        self.reused = 0

    @classmethod
    def open(cls, out: Path, key: dict, log=lambda message: None) -> RowCache:
        """The cache of ``out``: the finished rows of an earlier run of this same command, or none."""
        cache = cls(out, key)
        path = cache.out / PARTIAL_JSON
        if not path.is_file():
            return cache
        saved = safe_files.read_json_bounded(path, MAX_PARTIAL_BYTES)
        if not isinstance(saved, dict) or saved.get("key") != json.loads(json.dumps(key)):
            log(f"{path} is from another frontier command: starting over")
            return cache
        tensors, _ = safe_files.read_safetensors(cache.out / PARTIAL_TENSORS, "frontier partial faces",
                                                 max_bytes=MAX_PARTIAL_BYTES)
        cache.rows = {k: v for k, v in saved.get("rows", {}).items() if k in tensors}
        cache.faces = {k: tensors[k] for k in cache.rows}
        log(f"reusing {len(cache.rows)} finished rows from {path}")
        return cache

    def get(self, images: str, inverter: str) -> tuple[dict, Tensor] | None:
        name = f"{images}\t{inverter}"
        if name not in self.rows:
            return None
        self.reused += 1
        return self.rows[name], self.faces[name]

    def put(self, images: str, inverter: str, row: dict, faces: Tensor) -> None:
        name = f"{images}\t{inverter}"
        self.rows[name], self.faces[name] = row, faces.contiguous()
        atomic_write(self.out / PARTIAL_TENSORS, lambda tmp: save_file(dict(self.faces), tmp))
        atomic_write_json(self.out / PARTIAL_JSON, {"key": self.key, "rows": self.rows})

    def clear(self) -> None:
        for name in (PARTIAL_JSON, PARTIAL_TENSORS):
            (self.out / name).unlink(missing_ok=True)
