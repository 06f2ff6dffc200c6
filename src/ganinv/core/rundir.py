"""The run directory: the unit of persistence. Loading needs nothing but its path.

    config.json                     the full RunConfig (method, nets, prior, data spec, seed, versions)
    checkpoint.json                 THE commit point: the step and folder of the newest complete checkpoint
    checkpoints/step-NNNNNNN-XXXX/  one checkpoint: weights.safetensors + state.pt
        weights.safetensors         every net as "<net>.<param>", extra tensors as "extra.<name>"; metadata:
                                    method, step
        state.pt                    optimisers, step, RNG states — only what resuming needs (tensors and plain
                                    types only, read with ``weights_only``)
    weights.safetensors             the newest checkpoint's weights again (an independent copy, written atomically:
                                    damaging one never damages the other), for people and tools that open the file
                                    directly; readers of this package use the checkpoint's own file
    metrics.jsonl, samples/*.png, tb/

Every file here is read as hostile (a run directory may come from anyone): JSON files are bounded in size before
they are read and checked field by field (``CONFIG_MAX_BYTES``, ``POINTER_MAX_BYTES``), state.pt is bounded (its
zip entries stored, uncompressed, summing to at most ``state_limit``) and read with ``weights_only``, and the
weights are safetensors. ganinv deletes only what it wrote, recognised by name: checkpoint folders named
``step-NNNNNNN-XXXXXX`` inside ``checkpoints/``, its own ``.NAME.XXXX.tmp`` files, and the state.pt of a run of
the older layout once it has been superseded; a new run refuses a folder that is not empty and holds no run.

How a checkpoint commits as one unit: both files are written (and fsynced) into a fresh folder that nothing
points to yet; then ``checkpoint.json`` is replaced atomically to name it. A kill, a full disk or any I/O error
at any instant before that rename leaves the previous pointer — and the previous checkpoint's folder, which is
only deleted once the next one has committed — so every reader (``ganinv.load``, ``--resume``, every command
that reads a run) sees the newest *complete* checkpoint and ignores half-written folders; the next save cleans
them. ``checkpoint.json`` records each file's size and the previous complete checkpoint too, so a checkpoint
damaged after its commit (a truncated copy, a full disk in a later tool) is skipped with a one-line warning and the
previous one is used. Runs written before this layout (weights.safetensors + state.pt at the top, no
checkpoint.json) still load and resume.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from ganinv.core import io as fs
from ganinv.core import safe_files
from ganinv.core.config import FORMAT_VERSION, RunConfig, config_from_dict, current_versions
from ganinv.core.errors import GaninvError, RunDirError, describe_os_error

WEIGHTS, STATE, CONFIG = "weights.safetensors", "state.pt", "config.json"
POINTER, CHECKPOINTS = "checkpoint.json", "checkpoints"
METRICS, SAMPLES, TENSORBOARD = "metrics.jsonl", "samples", "tb"

CONFIG_MAX_BYTES = 4 << 20  # a real config.json is a few kB; a bigger one is not ours and is refused unread
POINTER_MAX_BYTES = 64 << 10  # checkpoint.json: a few hundred bytes
STATE_SLACK_BYTES = 64 << 20  # state.pt: optimiser moments (2 per weight) + RNG states; see state_limit
CHECKPOINT_NAME = re.compile(r"step-\d{7,}-[0-9a-f]{6}")  # commit_checkpoint's folder names: all it ever deletes
OWN_TEMPORARY = re.compile(r"\.(config\.json|checkpoint\.json|weights\.safetensors|metrics\.jsonl)\.\w+\.tmp")


class RunDirWarning(UserWarning):
    """A run directory ganinv could read, but not all of it: e.g. a damaged newest checkpoint was skipped."""


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
    return config_from_dict(read_json_bounded(path, CONFIG_MAX_BYTES), where=str(path))  # checks every field


def read_json_bounded(path: Path, limit: int) -> Any:
    """The JSON value in ``path``, refused unread (one line) past ``limit`` bytes (``safe_files.read_json_bounded``)."""
    return safe_files.read_json_bounded(path, limit, RunDirError)


def has_config(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run at all: its config is written before step 0, so a directory without one
    was never started (or was killed before writing anything)."""
    return (Path(run_dir) / CONFIG).is_file()


def open_run(run_dir: str | Path) -> tuple[Path, RunConfig]:
    run_dir = Path(run_dir)
    return run_dir, read_config(run_dir)


# ------------------------------------------------------------------------------------------------ finding
def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint, or None when the run never reached its first one. A newest checkpoint
    whose files are no longer what was committed (truncated, missing) is skipped for the previous one, with a
    one-line ``RunDirWarning`` naming the damaged file."""
    run_dir = Path(run_dir)
    pointer = _read_pointer(run_dir)
    if pointer is None:
        if (run_dir / WEIGHTS).is_file():  # the layout before checkpoint.json: one pair of files at the top
            return Checkpoint(step=_legacy_step(run_dir), folder=run_dir)
        return None
    damage = _damage(run_dir, pointer)
    if damage is None:
        return Checkpoint(step=pointer["step"], folder=run_dir / pointer["folder"])
    previous = pointer.get("previous")
    if previous is None or _damage(run_dir, previous) is not None:
        raise RunDirError(f"{damage}, and no earlier complete checkpoint is left in {run_dir}")
    warnings.warn(f"{damage}; using the previous checkpoint (step {previous['step']}) instead", RunDirWarning,
                  stacklevel=2)
    return Checkpoint(step=previous["step"], folder=run_dir / previous["folder"])


def _damage(run_dir: Path, entry: dict) -> str | None:
    """What is wrong with the files of one checkpoint entry of checkpoint.json (None: they are as committed)."""
    folder = run_dir / entry["folder"]
    for name, size in (entry.get("sizes") or {WEIGHTS: None}).items():
        try:
            found = (folder / name).stat().st_size
        except OSError:
            return f"{folder / name}, named by {run_dir / POINTER}, is missing"
        if size is not None and found != size:
            return f"{folder / name} is damaged ({found} bytes, {size} when it was written)"
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
    """checkpoint.json, checked: every value of the right type, folders only ever ``checkpoints/step-…``."""
    path = run_dir / POINTER
    if not path.is_file():
        return None
    pointer = read_json_bounded(path, POINTER_MAX_BYTES)
    problem = _entry_problem(pointer)
    if problem is None and pointer.get("previous") is not None:
        problem = _entry_problem(pointer["previous"])
    if problem is not None:
        raise RunDirError(f"{path} is damaged ({problem}); it is replaced atomically, so something other than "
                          "ganinv wrote it")
    return pointer


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    step, folder, sizes = entry.get("step"), entry.get("folder"), entry.get("sizes")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 1 << 62:
        return f"step {step!r:.30} is not a step number"
    parts = folder.split("/") if isinstance(folder, str) else []
    if len(parts) != 2 or parts[0] != CHECKPOINTS or not CHECKPOINT_NAME.fullmatch(parts[1]):
        return f"folder {folder!r:.60} is not a checkpoint folder of this run"
    if sizes is not None and not (isinstance(sizes, dict) and set(sizes) <= {WEIGHTS, STATE} and WEIGHTS in sizes
                                  and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes.values())):
        return "sizes is not a map of its file names to byte counts"
    return None


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
    if _metadata_int(metadata, "format_version", path) > FORMAT_VERSION:
        raise RunDirError(f"{path} has a newer format than this ganinv understands; upgrade ganinv")
    if metadata.get("method") != expect_method:
        raise RunDirError(f"{path} holds a {metadata.get('method')!r} checkpoint but {CONFIG} says {expect_method!r}")
    return tensors, metadata


def _metadata_int(metadata: dict[str, str], key: str, path: Path) -> int:
    value = metadata.get(key, "0")
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19):
        raise RunDirError(f"{path}: its metadata {key!r} is {value!r:.30}, not a number; not a file ganinv wrote")
    return int(value)


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    header_size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_size]).get("__metadata__") or {}


def state_limit(weights_size: int) -> int:
    """The most bytes a state.pt beside ``weights_size`` bytes of weights may unpack to: Adam keeps two moments per
    weight, plus RNG states and small change."""
    return 4 * weights_size + STATE_SLACK_BYTES


def read_state(checkpoint: Checkpoint) -> dict:
    """state.pt, bounded (``state_limit``; torch.save's zip entries are never compressed, so a compressed one is
    refused as not ours) and read with ``weights_only`` (tensors and plain types; never code), then checked."""
    path = checkpoint.state
    if not path.is_file():
        raise RunDirError(f"{checkpoint.folder} has no {STATE} to resume from")
    limit = state_limit(checkpoint.weights.stat().st_size)
    if path.stat().st_size > limit:
        raise RunDirError(f"{path} is larger than a training state of these weights can be; refusing to read it")
    # stored zip entries that fit the file, no TorchScript, then weights_only: never code
    state = safe_files.torch_load_tensors(path, "training state", max_bytes=limit, error=RunDirError)
    _check_state(state, path)
    return state


def _check_state(state: Any, path: Path) -> None:
    ok = (isinstance(state, dict) and isinstance(state.get("step"), int) and state["step"] >= 0
          and isinstance(state.get("optimizers"), dict) and isinstance(state.get("rng_cpu"), Tensor)
          and state["rng_cpu"].dtype == torch.uint8 and isinstance(state.get("rng_cuda", []), (list, tuple)))
    if not ok:
        raise RunDirError(f"{path} is not a ganinv training state (step, optimizers, RNG states)")


def read_checkpoint(run_dir: Path, expect_method: str) -> tuple[dict[str, Tensor], dict]:
    """(tensors, state) of the newest complete checkpoint, checked to hold the same step."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise RunDirError(f"{run_dir} has no checkpoint to resume from")
    tensors, metadata = read_weights_file(checkpoint.weights, expect_method)
    state = read_state(checkpoint)
    step = _metadata_int(metadata, "step", checkpoint.weights)
    if step != state["step"]:  # only possible in the layout before checkpoint.json
        raise RunDirError(f"{checkpoint.folder}: {WEIGHTS} is at step {step} but {STATE} at step "
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
    current = latest_checkpoint(run_dir)  # the newest *complete* one: it stays until this one has committed
    previous = _pointer_entry(run_dir, current) if current is not None and current.folder != run_dir else None
    legacy = current is not None and current.folder == run_dir
    folder = run_dir / CHECKPOINTS / f"step-{step:07d}-{secrets.token_hex(3)}"
    pointer = {"format": "ganinv-checkpoint", "step": step, "folder": folder.relative_to(run_dir).as_posix(),
               "sizes": {WEIGHTS: len(weights), STATE: len(state)}, "previous": previous}
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
        raise CheckpointWriteError(_write_failure(step, exc, run_dir, current)) from None
    checkpoint = Checkpoint(step=step, folder=folder)
    try:
        fs.fsync_dir(run_dir)
        _publish_weights(run_dir, weights)
    except OSError as exc:
        raise CheckpointWriteError(f"the checkpoint of step {step} is saved in {folder}, but "
                                   f"{describe_os_error(exc)}") from None
    remove_stale_files(run_dir, keep={folder, current.folder} if current else {folder}, legacy=legacy)
    return checkpoint


def _pointer_entry(run_dir: Path, checkpoint: Checkpoint) -> dict:
    """checkpoint.json's entry of an already committed checkpoint (its sizes as they are: it was checked)."""
    sizes = {name: (checkpoint.folder / name).stat().st_size for name in (WEIGHTS, STATE)
             if (checkpoint.folder / name).is_file()}
    return {"step": checkpoint.step, "folder": checkpoint.folder.relative_to(run_dir).as_posix(), "sizes": sizes}


def _write_failure(step: int, exc: OSError, run_dir: Path, current: Checkpoint | None) -> str:
    kept = f"the checkpoint of step {current.step} is kept" if current else "no earlier checkpoint exists"
    return f"could not write the checkpoint of step {step}: {describe_os_error(exc)}; {kept}"


def _publish_weights(run_dir: Path, weights: bytes) -> None:
    """The top-level weights.safetensors becomes (atomically) a copy of the committed checkpoint's weights: its own
    file, not a link, so damaging one of the two leaves the other intact."""
    target = run_dir / WEIGHTS
    tmp = fs.temporary_name(target)
    try:
        fs.write_durable(tmp, weights)
        fs.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_files(run_dir: Path, keep: set[Path], legacy: bool = False) -> None:
    """Delete what this project wrote and no longer needs: checkpoint folders (named by ``CHECKPOINT_NAME``)
    nothing points to, our leftover temporary files (``OWN_TEMPORARY``) and — only when ``legacy``, i.e. this
    commit superseded a run of the older layout — its top-level state.pt. Anything else is never touched. Best
    effort: what cannot be removed now is removed by a later save."""
    checkpoints = run_dir / CHECKPOINTS
    for folder in checkpoints.iterdir() if checkpoints.is_dir() else ():
        if folder not in keep and CHECKPOINT_NAME.fullmatch(folder.name) and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
    for path in run_dir.iterdir():
        if OWN_TEMPORARY.fullmatch(path.name) and not path.is_dir():
            path.unlink(missing_ok=True)
    if legacy:
        (run_dir / STATE).unlink(missing_ok=True)


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
    check_fresh_folder(run_dir)
    return config.replace(versions=current_versions())


def check_fresh_folder(run_dir: Path) -> None:
    """A new run goes into a missing or empty folder — or one holding only our temporary files (a run killed
    before its config was written). Anything else is someone's data: refused, and left untouched."""
    try:
        names = sorted(entry.name for entry in os.scandir(run_dir))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise GaninvError(f"{run_dir} is a file, not a folder; choose another --out") from None
    except OSError as exc:
        raise RunDirError(f"cannot use the run directory: {describe_os_error(exc)}") from None
    foreign = [name for name in names if not OWN_TEMPORARY.fullmatch(name)]
    if foreign:
        raise GaninvError(f"{run_dir} exists and is not empty ({len(foreign)} entries, e.g. {foreign[0]!r}) but holds "
                          "no ganinv run; choose another --out (nothing in it was touched)")


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
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        return 0
    tensors, state = read_checkpoint(run_dir, method.name)
    weights, extra = split_weights(tensors)
    load_net_weights(method.unwrapped_nets(), weights, run_dir)
    method.load_extra_state(extra)
    check_frozen_generator(method, run_dir)
    restore_training_state(method, state, checkpoint.state)
    return int(state["step"])


def restore_training_state(method: Checkpointable, state: dict, path: Path) -> None:
    """Optimisers and RNG states from a checked state.pt; one that does not fit these optimisers is one line."""
    try:
        for name, opt in method.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        torch.set_rng_state(state["rng_cpu"])
        if state.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(f"{path} does not fit this run's optimisers ({detail:.120})") from None


def check_frozen_generator(method: Checkpointable, run_dir: Path) -> None:
    """A post-hoc method must go on with the generator it started on: its fingerprint was recorded then."""
    expected = method.config.generator_fingerprint
    if method.trains_generator or not expected:
        return
    found = generator_fingerprint(method.unwrapped_nets()["generator"])
    if found != expected:
        raise GaninvError(f"{run_dir}: the frozen generator's weights (fingerprint {found}) are not the ones this "
                          f"run started on ({expected}); refusing to continue against another generator")
