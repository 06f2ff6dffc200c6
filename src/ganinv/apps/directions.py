"""Attribute directions kept beside the run, as InterFaceGAN users keep theirs: learning one inverts thousands of
labelled images, so ``ganinv edit --attribute`` and the web page's attribute edit both reuse a saved one when the
same attribute is asked of the same count of the same data.

    RUN/directions/ATTRIBUTE.KIND-SPLIT-N.npz    one file per (attribute, data kind, split, train_n); it holds the
                                                 unit direction, the latents' spread along it, the classifier's
                                                 training accuracy, the latents it was learned from, and the
                                                 fingerprint of the run that made them (``run_fingerprint``)

The data is keyed by its kind ("celeba", "digits", …), not its path, so a data set moved elsewhere (or absent)
still finds its directions. A file of another run's weights (the run was trained further) is stale and learned
again; a damaged one is named in one line and learned again; a run folder that cannot be written is named in one
line and the direction used unsaved. Files are written atomically and read back by ``core.safe_files``
(bounded, never unpickled).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_save_npz
from ganinv.core.rundir import run_fingerprint
from ganinv.core.safe_files import load_npz

DIRECTIONS_DIR = "directions"
MAX_DIRECTION_BYTES = 1 << 20  # a 65,536-element float32 direction is 256 kB; anything larger is not ours
SAFE_NAME = re.compile(r"[A-Za-z0-9_=+.-]{1,64}")


@dataclass(frozen=True)
class Direction:
    """An attribute's unit ``direction`` in latent space, the latents' ``spread`` (std) along it, the training
    ``accuracy`` of its classifier and ``n_latents``, the labelled latents it was learned from."""
    direction: np.ndarray
    spread: float
    accuracy: float
    n_latents: int


@dataclass(frozen=True)
class DirectionKey:
    """What a direction was learned from: the attribute, the data's kind and split, and the count asked for."""
    attribute: str
    data: str
    train_n: int
    split: str = "train"

    @property
    def kind(self) -> str:
        return data_kind(self.data)

    def file_name(self) -> str:
        name = self.attribute if SAFE_NAME.fullmatch(self.attribute) else (
            "attribute-" + hashlib.sha256(self.attribute.encode()).hexdigest()[:16])
        return f"{name}.{self.kind}-{self.split}-{int(self.train_n)}.npz"


def data_kind(spec: str) -> str:
    """A data spec's kind: "celeba" for "celeba:/data/celeba", "digits" for "digits"."""
    kind = str(spec).split(":", 1)[0].strip().lower()
    return kind if SAFE_NAME.fullmatch(kind) else "data"


def direction_path(run: str | Path, key: DirectionKey) -> Path:
    return Path(run) / DIRECTIONS_DIR / key.file_name()


def saved_or_learned(run: str | Path | None, key: DirectionKey, learn: Callable[[], Direction], *,
                     dim: int | None = None, warn: Callable[[str], None]) -> tuple[Direction, bool]:
    """(direction, reused): the one saved beside ``run`` for ``key`` when it is intact and of this run's weights,
    else ``learn()``'s, saved there for next time. ``run`` None (a model built in memory) or a folder that is no
    run directory (``save_pretrained``'s): learned, not saved."""
    try:
        fingerprint = run_fingerprint(run) if run is not None else None
    except (GaninvError, OSError):  # a folder of another layout (save_pretrained's): nothing to key the file by
        fingerprint = None
    if fingerprint is None:
        return learn(), False
    saved = read_direction(direction_path(run, key), key, fingerprint, dim, warn)
    if saved is not None:
        return saved, True
    direction = learn()
    write_direction(direction_path(run, key), key, direction, fingerprint, warn)
    return direction, False


def write_direction(path: Path, key: DirectionKey, d: Direction, fingerprint: str,
                    warn: Callable[[str], None]) -> None:
    """Save atomically; a folder that cannot be written (a read-only run) is one line, and the edit goes on."""
    try:
        atomic_save_npz(path, direction=np.asarray(d.direction, dtype=np.float32),
                        spread=np.float64(d.spread), accuracy=np.float64(d.accuracy),
                        n_latents=np.int64(d.n_latents), train_n=np.int64(key.train_n),
                        attribute=np.str_(key.attribute), data_kind=np.str_(key.kind), split=np.str_(key.split),
                        run_fingerprint=np.str_(fingerprint))
    except OSError as exc:
        warn(f"could not save the {key.attribute} direction to {path} ({exc.strerror or exc}); it will be learned "
             "again next time")


def read_direction(path: Path, key: DirectionKey, fingerprint: str, dim: int | None,
                   warn: Callable[[str], None]) -> Direction | None:
    """The saved direction, or None when there is none, it is another run's (stale), or it is damaged (named in
    one line through ``warn``)."""
    if not path.is_file():
        return None
    try:
        arrays = load_npz(path, "saved direction", max_bytes=MAX_DIRECTION_BYTES)
        direction, problem = parse_direction(arrays, key, dim)
    except GaninvError as exc:
        direction, problem = None, str(exc).replace(f"saved direction {path} ", "")
    except (ValueError, TypeError) as exc:  # a field of the wrong type: a string where a count belongs
        direction, problem = None, f"{type(exc).__name__}: {exc}"[:120]
    if direction is not None and str(arrays["run_fingerprint"]) != fingerprint:
        return None  # learned on other weights of this run: its latents have moved
    if problem is not None:
        warn(f"{path} is damaged ({problem}); learning the {key.attribute} direction again")
    return direction


def parse_direction(arrays: dict[str, np.ndarray], key: DirectionKey,
                    dim: int | None) -> tuple[Direction | None, str | None]:
    """(Direction, None) from a file's arrays when every field is there, of its kind and finite; else (None,
    what is wrong)."""
    fields = ("direction", "spread", "accuracy", "n_latents", "train_n", "attribute", "data_kind", "split",
              "run_fingerprint")
    missing = [f for f in fields if f not in arrays or (f != "direction" and arrays[f].ndim != 0)]
    if missing:
        return None, f"missing or malformed fields: {', '.join(missing)}"
    direction = arrays["direction"]
    if direction.ndim != 1 or direction.dtype != np.float32 or (dim is not None and len(direction) != dim):
        return None, f"its direction is {direction.dtype} of shape {direction.shape}, not {dim} float32 numbers"
    if (str(arrays["attribute"]), str(arrays["data_kind"]), str(arrays["split"]), int(arrays["train_n"])) != (
            key.attribute, key.kind, key.split, int(key.train_n)):
        return None, "it holds another attribute, data or count than its name says"
    spread, accuracy = float(arrays["spread"]), float(arrays["accuracy"])
    if not (np.isfinite(direction).all() and np.isfinite(spread) and spread > 0 and 0 <= accuracy <= 1):
        return None, "its numbers are not finite or out of range"
    return Direction(direction, spread, accuracy, int(arrays["n_latents"])), None
