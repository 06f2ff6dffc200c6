"""The run directory: the unit of persistence. Loading needs nothing but its path.

    config.json                     the full RunConfig (method, nets, prior, data spec, seed, versions)
    checkpoint.json                 THE commit point: the step and folder of the newest complete checkpoint
    checkpoints/step-NNNNNNN-XXXX/  one checkpoint: weights.safetensors + state.pt
        weights.safetensors         every net as "<net>.<param>", extra tensors as "extra.<name>"; metadata:
                                    method, step
        state.pt                    optimisers, step, RNG states — only what resuming needs (tensors and plain
                                    types only, read with ``weights_only``)
    weights.safetensors             the newest checkpoint's weights again (a hard link), for people and tools that
                                    open the file directly
    metrics.jsonl, samples/*.png, tb/

How a checkpoint commits as one unit: both files are written (and fsynced) into a fresh folder that nothing
points to yet; then ``checkpoint.json`` is replaced atomically to name it. A kill, a full disk or any I/O error
at any instant before that rename leaves the previous pointer — and the previous checkpoint's folder, which is
only deleted once the next one has committed — so every reader (``ganinv.load``, ``--resume``, every command
that reads a run) sees the newest *complete* checkpoint and ignores half-written folders; the next save cleans
them. Runs written before this layout (weights.safetensors + state.pt at the top, no checkpoint.json) still load
and resume.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from ganinv.core import io as fs
from ganinv.core.config import FORMAT_VERSION, RunConfig, config_from_dict, current_versions
from ganinv.core.errors import GaninvError, RunDirError, describe_os_error

WEIGHTS, STATE, CONFIG = "weights.safetensors", "state.pt", "config.json"
POINTER, CHECKPOINTS = "checkpoint.json", "checkpoints"
METRICS, SAMPLES, TENSORBOARD = "metrics.jsonl", "samples", "tb"


class Checkpointable(Protocol):
    """What a checkpoint saves and restores of a method (``ganinv.methods.base.Method`` is one)."""
    name: str
    config: RunConfig
    trains_generator: bool
    world_size: int
    optimizers: dict[str, torch.optim.Optimizer]

    def unwrapped_nets(self) -> dict[str, nn.Module]: ...
    def extra_state(self) -> dict[str, Tensor]: ...
    def load_extra_state(self, tensors: dict[str, Tensor]) -> None: ...


class CheckpointWriteError(RunDirError):
    """A checkpoint could not be written (disk full, permission, a vanished folder); the previous one is kept."""


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint: where its two files are and the step they hold."""
    step: int
    folder: Path

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS

    @property
    def state(self) -> Path:
        return self.folder / STATE


def write_config(run_dir: Path, config: RunConfig) -> None:
    fs.atomic_write_json(run_dir / CONFIG, config.to_dict())


def read_config(run_dir: str | Path) -> RunConfig:
    """The run's saved RunConfig; a missing directory, a directory that is no run or a damaged file is a
    RunDirError naming it."""
    path = Path(run_dir) / CONFIG
    try:
        os.stat(run_dir)
    except FileNotFoundError:
        raise RunDirError(f"run directory {run_dir} does not exist") from None
    except OSError as exc:  # a symbolic link loop, a permission: say which, not "does not exist"
        raise RunDirError(f"run directory {describe_os_error(exc)}") from None
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a ganinv run directory (no {CONFIG})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is truncated or not JSON ({exc})") from exc
    return config_from_dict(data, where=str(path))


def has_config(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run at all: its config is written before step 0, so a directory without one
    was never started (or was killed before writing anything)."""
    return (Path(run_dir) / CONFIG).is_file()


def open_run(run_dir: str | Path) -> tuple[Path, RunConfig]:
    run_dir = Path(run_dir)
    return run_dir, read_config(run_dir)


# ------------------------------------------------------------------------------------------------ finding
def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint, or None when the run never reached its first one."""
    run_dir = Path(run_dir)
    pointer = _read_pointer(run_dir)
    if pointer is not None:
        folder = run_dir / pointer["folder"]
        if not (folder / WEIGHTS).is_file():
            raise RunDirError(f"{run_dir / POINTER} names {folder}, which is missing its {WEIGHTS}")
        return Checkpoint(step=int(pointer["step"]), folder=folder)
    if (run_dir / WEIGHTS).is_file():  # the layout before checkpoint.json: one pair of files at the top
        return Checkpoint(step=_legacy_step(run_dir), folder=run_dir)
    return None


def finished_step(run_dir: str | Path) -> int:
    """The step of the newest complete checkpoint (0 when there is none): "is this run trained far enough?"."""
    checkpoint = latest_checkpoint(run_dir) if (Path(run_dir) / CONFIG).is_file() else None
    return checkpoint.step if checkpoint is not None else 0


def weights_file(run_dir: str | Path) -> Path:
    """The weights file of the newest checkpoint (what identifies a run's latents)."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RunDirError(f"{run_dir} has no {WEIGHTS}: the run never reached its first checkpoint")
    return checkpoint.weights


def _read_pointer(run_dir: Path) -> dict | None:
    path = run_dir / POINTER
    if not path.is_file():
        return None
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
        int(pointer["step"]), str(pointer["folder"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is damaged ({type(exc).__name__}); it is replaced atomically, so something "
                          "other than ganinv wrote it") from None
    return pointer


def _legacy_step(run_dir: Path) -> int:

    try:
        with safe_open(str(run_dir / WEIGHTS), framework="pt") as f:
            return int((f.metadata() or {}).get("step", 0))
    except Exception as exc:  # safetensors' error type moved between releases; any failure here is damage
        raise RunDirError(f"{run_dir / WEIGHTS} is truncated or corrupt ({exc})") from exc


# ------------------------------------------------------------------------------------------------ reading
def read_weights(run_dir: Path, expect_method: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RunDirError(f"{run_dir} has no {WEIGHTS}: the run never reached its first checkpoint")
    return read_weights_file(checkpoint.weights, expect_method)


def read_weights_file(path: Path, expect_method: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        data = path.read_bytes()
        tensors = load_safetensors(data)
        metadata = _safetensors_metadata(data)
    except OSError:
        raise
    except Exception as exc:  # safetensors' error type moved between releases; any failure here is damage
        raise RunDirError(f"{path} is truncated or corrupt ({exc})") from exc
    if metadata.get("format") != "ganinv-run":
        raise RunDirError(f"{path} was not written by ganinv")
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise RunDirError(f"{path} has a newer format than this ganinv understands; upgrade ganinv")
    if metadata.get("method") != expect_method:
        raise RunDirError(f"{path} holds a {metadata.get('method')!r} checkpoint but {CONFIG} says {expect_method!r}")
    return tensors, metadata


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    header_size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_size]).get("__metadata__") or {}


def read_state(checkpoint: Checkpoint) -> dict:
    path = checkpoint.state
    if not path.is_file():
        raise RunDirError(f"{checkpoint.folder} has no {STATE} to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as exc:  # torch raises several types for a damaged zip/pickle
        raise RunDirError(f"{path} is truncated or corrupt ({type(exc).__name__})") from exc


def read_checkpoint(run_dir: Path, expect_method: str) -> tuple[dict[str, Tensor], dict]:
    """(tensors, state) of the newest complete checkpoint, checked to hold the same step."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RunDirError(f"{run_dir} has no checkpoint to resume from")
    tensors, metadata = read_weights_file(checkpoint.weights, expect_method)
    state = read_state(checkpoint)
    if int(metadata["step"]) != int(state["step"]):  # only possible in the layout before checkpoint.json
        raise RunDirError(f"{checkpoint.folder}: {WEIGHTS} is at step {metadata['step']} but {STATE} at step "
                          f"{state['step']} (written by an older ganinv, interrupted between the two files)")
    return tensors, state


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


# ------------------------------------------------------------------------------------------------ writing
def weights_bytes(nets: dict[str, nn.Module], extra: dict[str, Tensor], *, method: str, step: int) -> bytes:
    tensors = {f"{name}.{key}": value.detach().cpu().contiguous()
               for name, net in nets.items() for key, value in net.state_dict().items()}
    tensors.update({f"extra.{key}": value.detach().cpu().contiguous() for key, value in extra.items()})
    metadata = {"format": "ganinv-run", "format_version": str(FORMAT_VERSION), "method": method, "step": str(step)}
    return save_safetensors(tensors, metadata=metadata)


def state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)  # serialised in memory, so a full disk is an OSError with a reason, not a zip error
    return buffer.getvalue()


def commit_checkpoint(run_dir: Path, step: int, weights: bytes, state: bytes) -> Checkpoint:
    """Write one checkpoint and make it the newest, as one unit (see the module docstring).

    Raises ``CheckpointWriteError`` (one line: the path, the reason, which checkpoint is kept) on any I/O error;
    the previous checkpoint then stays the newest."""
    run_dir = Path(run_dir)
    previous = _read_pointer(run_dir)
    folder = run_dir / CHECKPOINTS / f"step-{step:07d}-{secrets.token_hex(3)}"
    pointer = {"format": "ganinv-checkpoint", "step": step, "folder": folder.relative_to(run_dir).as_posix()}
    pending = fs.temporary_name(run_dir / POINTER)
    try:
        fs.make_dir(folder)
        fs.write_durable(folder / WEIGHTS, weights)
        fs.write_durable(folder / STATE, state)
        fs.fsync_dir(folder)
        fs.write_durable(pending, (json.dumps(pointer, indent=2) + "\n").encode())
        fs.replace(pending, run_dir / POINTER)  # the commit: before it the previous checkpoint is the newest
    except OSError as exc:
        pending.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        raise CheckpointWriteError(_write_failure(step, exc, run_dir, previous)) from None
    checkpoint = Checkpoint(step=step, folder=folder)
    try:
        fs.fsync_dir(run_dir)
        _publish_weights(run_dir, checkpoint)
    except OSError as exc:
        raise CheckpointWriteError(f"the checkpoint of step {step} is saved in {folder}, but "
                                   f"{describe_os_error(exc)}") from None
    remove_stale_files(run_dir, keep={folder, run_dir / previous["folder"]} if previous else {folder})
    return checkpoint


def _write_failure(step: int, exc: OSError, run_dir: Path, previous: dict | None) -> str:
    kept = (f"the checkpoint of step {previous['step']} is kept" if previous else
            "no earlier checkpoint exists" if not (run_dir / WEIGHTS).is_file() else "the earlier checkpoint is kept")
    return f"could not write the checkpoint of step {step}: {describe_os_error(exc)}; {kept}"


def _publish_weights(run_dir: Path, checkpoint: Checkpoint) -> None:
    """The top-level weights.safetensors becomes (atomically) the committed checkpoint's weights."""
    target = run_dir / WEIGHTS
    tmp = fs.temporary_name(target)
    try:
        fs.link_or_copy(checkpoint.weights, tmp)
        fs.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_files(run_dir: Path, keep: set[Path]) -> None:
    """Delete checkpoint folders nothing points to (half-written or superseded), leftover temporary files and a
    state.pt of the older layout. Best effort: what cannot be removed now is removed by a later save."""
    checkpoints = run_dir / CHECKPOINTS
    for folder in checkpoints.iterdir() if checkpoints.is_dir() else ():
        if folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)
    for tmp in [*run_dir.glob(".*.tmp"), run_dir / STATE]:
        tmp.unlink(missing_ok=True)


def generator_fingerprint(generator: nn.Module) -> str:
    """sha256 of a generator's tensors (names, dtypes, shapes, values): which generator a post-hoc run sits on."""
    digest = hashlib.sha256()
    for name, value in sorted(generator.state_dict().items()):
        value = value.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def run_fingerprint(run: str | Path) -> str:
    """sha256 of the run's config.json and newest weights: the identity of the latents it produces."""
    run = Path(run)
    if not (run / CONFIG).is_file():
        raise RunDirError(f"{run} is not a run directory (no {CONFIG})")
    digest = hashlib.sha256()
    for path in (run / CONFIG, weights_file(run)):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ the run's life
def prepare_run_dir(run_dir: Path, config: RunConfig, resume: bool, accelerator=None) -> RunConfig:
    """Fresh run: refuse to overwrite, record the config before step 0. Resume: the saved config wins.

    Under several processes every rank checks (so all raise the same error, none waits forever), then the main
    process alone writes, and all go on once it has."""
    config = resolve_run_config(run_dir, config, resume)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if accelerator is None or accelerator.is_main_process:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_config(run_dir, config)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory: {describe_os_error(exc)}") from None
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return config


def resolve_run_config(run_dir: Path, config: RunConfig, resume: bool) -> RunConfig:
    """The config a (re)started run goes on with; raises, writing nothing, when the directory does not fit."""
    if resume:
        saved = read_config(run_dir)
        if saved.method != config.method:
            raise GaninvError(f"{run_dir} holds a {saved.method!r} run, not {config.method!r}; cannot resume it")
        # extending a finished run is the one change allowed
        return saved.replace(train=dataclasses.replace(saved.train, steps=config.train.steps))
    if (run_dir / CONFIG).exists():
        raise GaninvError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    return config.replace(versions=current_versions())


def save_checkpoint(method: Checkpointable, run_dir: Path, step: int) -> None:
    """Weights, optimisers and RNG states of ``step``, committed as one unit (see this module's docstring)."""
    state = {
        "step": step,
        "world_size": method.world_size,  # informational: a run resumes under any number of processes
        "optimizers": {name: opt.state_dict() for name, opt in method.optimizers.items()},
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    weights = weights_bytes(method.unwrapped_nets(), method.extra_state(), method=method.name, step=step)
    commit_checkpoint(run_dir, step, weights, state_bytes(state))


def restore_checkpoint(method: Checkpointable, run_dir: Path) -> int:
    """Load the newest complete checkpoint into ``method``; 0 when the run was killed before its first one (a
    post-hoc method then already holds its real frozen generator: see ``training.launch.resumed_method``)."""
    if latest_checkpoint(run_dir) is None:
        return 0
    tensors, state = read_checkpoint(run_dir, method.name)
    weights, extra = split_weights(tensors)
    load_net_weights(method.unwrapped_nets(), weights, run_dir)
    method.load_extra_state(extra)
    check_frozen_generator(method, run_dir)
    for name, opt in method.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])


def check_frozen_generator(method: Checkpointable, run_dir: Path) -> None:
    """A post-hoc method must go on with the generator it started on: its fingerprint was recorded then."""
    expected = method.config.generator_fingerprint
    if method.trains_generator or not expected:
        return
    found = generator_fingerprint(method.unwrapped_nets()["generator"])
    if found != expected:
        raise GaninvError(f"{run_dir}: the frozen generator's weights (fingerprint {found}) are not the ones this "
                          f"run started on ({expected}); refusing to continue against another generator")
