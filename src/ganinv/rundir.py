"""The run directory: the unit of persistence. Loading needs nothing but its path.

    config.json          the full RunConfig (method, nets, prior, data spec, seed, versions)
    weights.safetensors  every net as "<net>.<param>", extra tensors as "extra.<name>"; metadata: method, step
    state.pt             optimisers, step, RNG states — only what resuming needs (tensors and plain types only)
    metrics.jsonl, samples/*.png, tb/

Every file is written atomically; ``weights`` and ``state`` carry the same step so a resume can tell a
mismatched pair (a crash between the two renames) from a good one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .config import FORMAT_VERSION, RunConfig, read_config
from .errors import RunDirError
from .io import atomic_write, atomic_write_json

WEIGHTS, STATE, CONFIG = "weights.safetensors", "state.pt", "config.json"


def write_config(run_dir: Path, config: RunConfig) -> None:
    atomic_write_json(run_dir / CONFIG, config.to_dict())


def save_weights(run_dir: Path, nets: dict[str, nn.Module], extra: dict[str, Tensor], *, method: str, step: int):
    tensors = {f"{name}.{key}": value.detach().cpu().contiguous()
               for name, net in nets.items() for key, value in net.state_dict().items()}
    tensors.update({f"extra.{key}": value.detach().cpu().contiguous() for key, value in extra.items()})
    metadata = {"format": "ganinv-run", "format_version": str(FORMAT_VERSION), "method": method, "step": str(step)}
    atomic_write(run_dir / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_weights(run_dir: Path, expect_method: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {WEIGHTS}: the run never reached its first checkpoint")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors' error type moved between releases; any failure here is damage
        raise RunDirError(f"{path} is truncated or corrupt ({exc})") from exc
    if metadata.get("format") != "ganinv-run":
        raise RunDirError(f"{path} was not written by ganinv")
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise RunDirError(f"{path} has a newer format than this ganinv understands; upgrade ganinv")
    if metadata.get("method") != expect_method:
        raise RunDirError(f"{path} holds a {metadata.get('method')!r} checkpoint but config.json says {expect_method!r}")
    return tensors, metadata


def split_weights(tensors: dict[str, Tensor]) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor]]:
    nets: dict[str, dict[str, Tensor]] = {}
    extra: dict[str, Tensor] = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        (extra if head == "extra" else nets.setdefault(head, {}))[rest] = value
    return nets, extra


def load_net_weights(nets: dict[str, nn.Module], weights: dict[str, dict[str, Tensor]], where: Path) -> None:
    for name, net in nets.items():
        if name not in weights:
            raise RunDirError(f"{where / WEIGHTS} has no weights for the {name!r} net")
        try:
            net.load_state_dict(weights[name])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise RunDirError(f"{where / WEIGHTS}: the {name!r} weights do not fit this config ({first})") from exc


def save_state(run_dir: Path, state: dict) -> None:
    atomic_write(run_dir / STATE, lambda tmp: torch.save(state, tmp))


def read_state(run_dir: Path) -> dict:
    path = run_dir / STATE
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {STATE} to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as exc:  # torch raises several types for a damaged zip/pickle
        raise RunDirError(f"{path} is truncated or corrupt ({type(exc).__name__})") from exc


def open_run(run_dir: str | Path) -> tuple[Path, RunConfig]:
    run_dir = Path(run_dir)
    return run_dir, read_config(run_dir)
