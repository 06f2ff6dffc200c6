"""The one training loop for every method.

It knows nothing method-specific: it feeds batches, calls ``method.train_step``, guards against NaN, logs
(progress bar, ``metrics.jsonl``, and TensorBoard, Weights & Biases or MLflow through Accelerate's trackers), writes
sample grids, evaluates, checkpoints and resumes.
Device and precision come from Accelerate (CPU here, CUDA when present, ``accelerate launch`` for several GPUs).

Resuming is exact: the data order is a pure function of (seed, step) and the RNG and optimiser states are
saved with the weights, so a run killed and resumed ends with the same weights as one that never stopped.

Ctrl-C (SIGINT) never saves half a step: the first one is deferred to the end of the step in flight (and of what
falls due after it), which is then checkpointed; a second one stops at once and saves nothing more (the last
checkpoint is kept). Either way ``train`` raises ``KeyboardInterrupt`` whose message says which step is kept.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganinv.core.config import RunConfig
from ganinv.core.distributed import check_batch_split, mean_across_ranks, rank_slice
from ganinv.core.errors import GaninvError, TrainingDiverged
from ganinv.core.extras import available, install_hint
from ganinv.core.io import atomic_write
from ganinv.core.progress import progress
from ganinv.core.rundir import (
    METRICS,
    SAMPLES,
    TENSORBOARD,
    latest_checkpoint,
    prepare_run_dir,
    restore_checkpoint,
    save_checkpoint,
)
from ganinv.core.threads import threads_for
from ganinv.core.viz import labelled_grid, rows_of, save_png
from ganinv.inference.evaluate import evaluate
from ganinv.inference.model import InversionModel
from ganinv.methods import Method
from ganinv.training.collapse import CollapseWatch

SAMPLE_COUNT = 64  # an 8×8 grid of samples
SAMPLE_COLUMNS = 8


class ResumableBatchSampler:
    """Endless shuffled batches whose order depends only on (seed, batch index): resumable at any step.

    ``batch_size`` is the global batch; with ``world`` processes each rank yields its contiguous slice of it, so
    the data a step sees is the same for any number of processes (and a run resumes under another N)."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start_batch: int = 0, rank: int = 0,
                 world: int = 1):
        if n_items < batch_size:
            raise GaninvError(f"the dataset has {n_items} images, fewer than one batch of {batch_size}")
        check_batch_split(batch_size, world)
        self.n_items, self.batch_size, self.seed, self.start_batch = n_items, batch_size, seed, start_batch
        self.rank, self.world = rank, world
        self.per_epoch = n_items // batch_size  # drop the last partial batch, as every GAN trainer does

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.start_batch, self.per_epoch)
        while True:
            order = torch.randperm(self.n_items, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            for b in range(offset, self.per_epoch):
                batch = order[b * self.batch_size:(b + 1) * self.batch_size].tolist()
                yield rank_slice(batch, self.rank, self.world)
            epoch, offset = epoch + 1, 0


def real_batches(dataset: Dataset, config: RunConfig, start_step: int, rank: int = 0, world: int = 1) -> Iterator:
    sampler = ResumableBatchSampler(len(dataset), config.train.batch_size, config.seed, start_step, rank, world)
    # a private generator keeps DataLoader from drawing worker seeds off the global RNG
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.train.num_workers,
                        generator=torch.Generator().manual_seed(config.seed))
    return iter(loader)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    logs: dict[str, float] = field(default_factory=dict)
    already_finished: bool = False  # resumed at or past its steps: nothing was trained (extend with a larger steps)


# Accelerate's trackers we offer, with the package each needs (Accelerate skips a missing one without a word).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def check_tracker(log_with: str | None, warn=None) -> str | None:
    """The tracker to log with: ``log_with`` when we offer it and its package is installed; None (no tracker, said
    in one line through ``warn``) for TensorBoard without its package — the track extra, the default tracker, so
    training never fails for want of it; else a one-line error saying what to install."""
    if log_with is None:
        return None
    if log_with not in TRACKERS:
        raise GaninvError(f"--log-with {log_with!r}: choose one of {', '.join(TRACKERS)}")
    if available(TRACKERS[log_with]):
        return log_with
    if log_with == "tensorboard":
        (warn or warnings.warn)(f"training without a TensorBoard log (RUN/tb): tensorboard is not installed "
                                f"({install_hint('track')}); metrics.jsonl has every number")
        return None
    raise GaninvError(f"--log-with {log_with} needs the {TRACKERS[log_with]} package: pip install "
                      f"{TRACKERS[log_with]} (or log with tensorboard)")


def make_accelerator(config: RunConfig, *, log_with: str | None = None, run_dir: Path | None = None):
    """The run's Accelerator; with ``log_with``, its tracker logs under ``run_dir`` (TensorBoard: run_dir/tb)."""
    t = config.train
    cpu = t.device == "cpu" or (t.device == "auto" and not torch.cuda.is_available())
    if t.device == "cuda" and not torch.cuda.is_available():
        raise GaninvError("--device cuda was asked for but no CUDA device is visible")
    return Accelerator(cpu=cpu, mixed_precision=t.precision, log_with=log_with, project_dir=run_dir)


class RunLogger:
    """metrics.jsonl (append-only, one JSON object a line) and the numbers to the accelerator's tracker, main
    process only."""

    def __init__(self, run_dir: Path, accelerator, *, log_with: str | None, config: RunConfig):
        self.enabled, self.accelerator = accelerator.is_main_process, accelerator
        self.path = run_dir / METRICS
        if log_with is not None:  # the accelerator was made with it (make_accelerator)
            # config.json records the config; TensorBoard's hparams would only add a timestamped sub-run to tb/
            hparams = None if log_with == "tensorboard" else config.to_dict()
            accelerator.init_trackers(TENSORBOARD, config=hparams)  # the run's name; TensorBoard writes run_dir/tb

    def log(self, step: int, kind: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
        numbers = {f"{kind}/{k}": v for k, v in values.items() if isinstance(v, (int, float))}
        self.accelerator.log(numbers, step=step)

    def forget_after(self, step: int) -> None:
        """Drop the lines logged after ``step`` (streamed: the file is never read whole, and a line longer than
        ``MAX_LOG_LINE`` — not one of ours — is dropped unread past that length)."""
        if not self.path.exists():
            return

        def write(tmp: str) -> None:
            with open(self.path, "rb") as source, open(tmp, "wb") as kept:
                for line in _bounded_lines(source):
                    if _line_step(line) <= step:
                        kept.write(line.rstrip(b"\n") + b"\n")

        atomic_write(self.path, write)

    def close(self) -> None:
        for tracker in self.accelerator.trackers:  # not end_training(): it also ends the process group of DDP
            tracker.finish()


MAX_LOG_LINE = 1 << 20  # a metrics.jsonl line is a few hundred bytes


def _bounded_lines(f) -> Iterator[bytes]:
    """The lines of ``f``; one longer than MAX_LOG_LINE comes out as an empty line (dropped by its caller)."""
    while line := f.readline(MAX_LOG_LINE):
        if len(line) == MAX_LOG_LINE and not line.endswith(b"\n"):
            while (rest := f.readline(MAX_LOG_LINE)) and not rest.endswith(b"\n"):
                pass
            line = b""
        yield line


def _line_step(line: bytes) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return 1 << 62  # a half-written last line from a killed run (or not a line of ours): drop it


def write_samples(method: Method, run_dir: Path, step: int, fixed_z: Tensor, real: Tensor | None) -> None:
    """samples/step-NNNNNNN.png: 8×8 samples of the same fixed latents at every step; for runs that invert, the
    first row's reconstructions, then real test images and theirs — every row labelled."""
    model = InversionModel(method)
    with method.eval_mode():
        generated = method.generate(fixed_z.to(method.device)).float()
        rows = rows_of(generated, SAMPLE_COLUMNS)
        labels = [f"samples {i * SAMPLE_COLUMNS + 1}–{(i + 1) * SAMPLE_COLUMNS}" for i in range(len(rows))]
        if method.can_invert:
            rows.append(model.reconstruct(rows[0]))
            labels.append("reconstruction of row 1")
            if real is not None:
                real = real[:SAMPLE_COLUMNS].to(method.device)
                rows += [real, model.reconstruct(real)]
                labels += ["real test images", "their reconstruction"]
    grid = labelled_grid(rows, labels, title=f"{method.name}, step {step}")
    save_png(grid, run_dir / SAMPLES / f"step-{step:07d}.png")


def evaluate_during_training(method: Method, eval_images: Tensor | None, evaluators=()) -> dict[str, float]:
    """Reconstruction metrics (generated/…, real/…) plus whatever the caller's evaluators add (e.g. FD)."""

    model = InversionModel(method)
    values: dict[str, float] = {}
    if method.can_invert:
        n = method.config.train.eval_samples
        results = evaluate(model, n_generated=n, real=eval_images)
        values = {f"{split}/{k}": v for split, metrics in results.items() for k, v in metrics.items()}
    for evaluator in evaluators:
        values.update(evaluator(model))
    return values


def train(
    method: Method, run_dir: str | Path, *, dataset: Dataset | None = None, eval_images: Tensor | None = None,
    resume: bool = False, show_progress: bool = True, evaluators=(), warn=None, log_with: str | None = "tensorboard",
) -> TrainResult:
    """Train ``method`` into ``run_dir`` (fresh, or continuing its last checkpoint when ``resume``).

    ``evaluators``: callables ``InversionModel -> dict[str, float]`` run at every evaluation (e.g. an FD).
    ``warn``: where warnings go (default: Python's ``warnings``), e.g. losses past ``EXPLOSION_BOUND``.
    ``log_with``: the Accelerate tracker that gets the scalars besides metrics.jsonl (``TRACKERS``; None: none).
    """
    run_dir = Path(run_dir)
    if method.needs_real_data(method.options) and dataset is None:
        raise GaninvError(f"method {method.name!r} trains on real images: give --data")
    log_with = check_tracker(log_with, warn)
    accelerator = make_accelerator(method.config, log_with=log_with, run_dir=run_dir)
    step = start_or_resume(method, run_dir, accelerator, resume)
    logger = RunLogger(run_dir, accelerator, log_with=log_with, config=method.config)
    if resume and accelerator.is_main_process:
        logger.forget_after(step)  # lines logged after the checkpoint will be logged again
    logger.log(step, "launch", launch_record(accelerator, method.config, resume))
    loop = LoopPass(method, run_dir, accelerator, logger, step=step, dataset=dataset, eval_images=eval_images,
                    evaluators=evaluators, warn=warn)
    try:
        with StopAtStepBoundary() as stop, threads_for(accelerator.device, workers=method.config.train.num_workers):
            loop.run(show_progress=show_progress and accelerator.is_main_process, stop=stop)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(loop.checkpoint_on_interrupt()) from None  # Ctrl-C keeps the steps completed
    else:
        loop.log_speed()
    finally:
        logger.close()
    accelerator.wait_for_everyone()  # no rank returns before the main one has written the last checkpoint
    return TrainResult(run_dir=run_dir, step=loop.step, logs=loop.logs)


def start_or_resume(method: Method, run_dir: Path, accelerator, resume: bool) -> int:
    """Ready ``method`` to train in ``run_dir``: the directory prepared (a fresh run's config recorded before step 0;
    a resumed run's saved config wins), this rank seeded, nets on the device, the last checkpoint restored when
    resuming. Returns the step training starts from."""
    check_batch_split(method.config.train.batch_size, accelerator.num_processes)  # before anything is written
    method.config = prepare_run_dir(run_dir, method.config, resume, accelerator)
    torch.manual_seed(method.config.seed + accelerator.process_index)  # per-rank offset, recorded in the launch line
    method.configure(accelerator)
    t = method.config.train
    apply_speed_options(method.nets, channels_last=t.channels_last, compile=t.compile)
    return restore_checkpoint(method, run_dir) if resume else 0


class LoopPass:
    """One process's pass of the loop, from the step it starts at to ``train.steps``: it feeds batches, takes steps
    and does what falls due after each (logs, samples, evaluation, checkpoint). It keeps the step and the last
    losses, so an interrupted pass can still save its work. (The method's ``session``, ``ganinv.methods.session``,
    is the runtime that applies a step's losses; this pass tells it where each step begins and ends.)"""

    def __init__(self, method: Method, run_dir: Path, accelerator, logger: RunLogger, *, step: int,
                 dataset: Dataset | None, eval_images: Tensor | None, evaluators, warn):
        config = method.config
        self.method, self.run_dir, self.accelerator, self.logger = method, run_dir, accelerator, logger
        self.eval_images, self.evaluators = eval_images, evaluators
        self.main = accelerator.is_main_process
        self.step = self.first_step = self.last_checkpoint = step
        self.in_flight = False  # inside a step (or what falls due after it): its state is half-changed
        self.logs: dict[str, float] = {}
        # the same latents (and real images) in every sample grid, so grids of different steps compare
        self.fixed_z = method.prior.sample(SAMPLE_COUNT, generator=torch.Generator().manual_seed(config.seed))
        self.sample_real = eval_images[:SAMPLE_COUNT] if eval_images is not None else None
        self.batches = (real_batches(dataset, config, step, accelerator.process_index, accelerator.num_processes)
                        if method.needs_real_data(method.options) else None)
        self.steps_per_epoch = max(len(dataset) // config.train.batch_size, 1) if dataset is not None else None
        self.epoch_logs = EpochAverager(self.steps_per_epoch)
        self.explosion = ExplosionWarning(warn, enabled=self.main)
        self.collapse = CollapseWatch(method, run_dir, logger.log, warn, enabled=self.main)  # generator trainers
        self.started = time.perf_counter()
        self.threads = torch.get_num_threads()

    def run(self, show_progress: bool, stop: StopAtStepBoundary | None = None) -> None:
        """Steps until ``train.steps``; a Ctrl-C ``stop`` has deferred ends the run (KeyboardInterrupt) between
        steps, never inside one: ``in_flight`` is true from a step's first change to the end of its checkpoint."""
        total = self.method.config.train.steps
        self.threads = torch.get_num_threads()  # what this pass computes with (core.threads chose it), for log_speed
        with _progress(show_progress) as progress:
            task = progress.add_task(f"{self.method.name}", total=total, completed=self.step, info="")
            self.method.train_mode()
            while self.step < total:
                self.in_flight = True
                self.take_step()
                progress.update(task, advance=1, info="  ".join(f"{k} {v:.4f}" for k, v in self.logs.items()))
                self.after_step()
                self.in_flight = False
                if stop is not None and stop.requested_on_any_rank(self.accelerator):
                    raise KeyboardInterrupt

    def take_step(self) -> None:
        """One ``train_step`` on the next batch; stops the run at the first non-finite loss."""
        method, accelerator = self.method, self.accelerator
        batch = None
        if self.batches is not None:
            batch = [b.to(accelerator.device, non_blocking=True) for b in next(self.batches)]
        set_learning_rates(method, method.config, self.step, self.steps_per_epoch)
        method.session.begin_step(self.step, seed=method.config.seed)
        with accelerator.autocast():
            logs = method.train_step(batch)
        method.session.end_step()
        self.logs = mean_across_ranks(accelerator, logs)  # the global batch's losses, on every rank
        self.step += 1
        check_finite(self.logs, self.step, self.run_dir)
        self.explosion.check(self.logs, self.step)

    def after_step(self) -> None:
        """What falls due after this step. Each also happens at the last step, so a finished run always ends with
        its final losses, samples, evaluation and checkpoint; files are written by the main process alone."""
        t, step, logger = self.method.config.train, self.step, self.logger
        last = step == t.steps
        if step % t.log_every == 0 or last:
            logger.log(step, "train", self.logs)
        averages = self.epoch_logs.add(step, self.logs)
        if averages:
            logger.log(step, "epoch", averages)
        if self.main and (step % t.sample_every == 0 or last):
            write_samples(self.method, self.run_dir, step, self.fixed_z, self.sample_real)
            self.collapse.check(step, last=last)
        if self.main and (step % t.eval_every == 0 or last):
            logger.log(step, "eval", evaluate_during_training(self.method, self.eval_images, self.evaluators))
        if step % t.checkpoint_every == 0 or last:
            if self.main:
                save_checkpoint(self.method, self.run_dir, step)
            self.last_checkpoint = step

    def checkpoint_on_interrupt(self) -> str:
        """Save the steps completed since the last checkpoint — never a step interrupted in flight (its nets,
        batch-norm buffers and optimisers are half-updated), nor one with non-finite losses. Returns the line that
        says what is kept."""
        saved = not self.in_flight and self.step > self.last_checkpoint and not logs_are_bad(self.logs)
        if saved:
            if self.main:
                save_checkpoint(self.method, self.run_dir, self.step)
            self.last_checkpoint = self.step
        if self.last_checkpoint == 0 and latest_checkpoint(self.run_dir) is None:
            return f"interrupted before the first checkpoint of {self.run_dir}; nothing to resume yet"
        lost = " (the step in flight was discarded)" if self.in_flight else ""
        return (f"interrupted; the checkpoint of step {self.last_checkpoint} is kept in {self.run_dir}{lost} "
                "(continue with --resume)")

    def log_speed(self) -> None:
        """This pass's throughput in metrics.jsonl (its samples, evaluations and checkpoints included)."""
        steps = self.step - self.first_step
        if steps <= 0:
            return
        seconds = time.perf_counter() - self.started
        images = steps * self.method.config.train.batch_size
        self.logger.log(self.step, "speed", {"steps": steps, "seconds": round(seconds, 3),
                                             "steps_per_s": steps / seconds, "images_per_s": images / seconds,
                                             "threads": self.threads})


class StopAtStepBoundary:
    """While entered (in the main thread): the first SIGINT only sets ``requested``, for the loop to stop after
    the step in flight; a second raises KeyboardInterrupt at once. A SIGINT that was ignored stays ignored."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> StopAtStepBoundary:
        if threading.current_thread() is threading.main_thread():
            handler = signal.getsignal(signal.SIGINT)
            if handler not in (signal.SIG_IGN, None):
                self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, discarding the step in flight
        self.requested = True

    def requested_on_any_rank(self, accelerator) -> bool:
        """Whether any process was interrupted; under several, one tiny all-reduce so that all stop together."""
        if accelerator is None or accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def launch_record(accelerator, config: RunConfig, resume: bool) -> dict:
    """What metrics.jsonl records about each (re)start: how many processes, and each rank's seed and batch."""
    world = accelerator.num_processes
    return {"world_size": world, "rank_seeds": [config.seed + r for r in range(world)],
            "local_batch_size": config.train.batch_size // world, "global_batch_size": config.train.batch_size,
            "distributed": str(accelerator.distributed_type).rsplit(".", 1)[-1], "device": str(accelerator.device),
            "resumed": resume}


def native_bf16() -> bool:
    """Whether this machine's training device runs bf16 in hardware (CUDA: Ampere or later; CPU: oneDNN's AVX-512
    bf16 / AMX path). Elsewhere bf16 autocast is emulated and slower than fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def apply_speed_options(nets: dict, *, channels_last: bool = False, compile: bool = False) -> None:
    """The GPU path's two net-level options, in place: NHWC memory format and ``torch.compile``. Both keep the
    parameters' names (``nn.Module.compile`` compiles the forward without a wrapper), so checkpoints do not
    change."""
    for net in nets.values():
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile:
            net.compile()


def set_learning_rates(method: Method, config: RunConfig, step: int, steps_per_epoch: int | None) -> None:
    """lr · (1 − d)^epoch — a pure function of the step, so a resumed run follows the same schedule."""
    decay = config.train.lr_decay_per_epoch
    if not decay or not steps_per_epoch:
        return
    factor = (1.0 - decay) ** (step // steps_per_epoch)
    for optimizer in method.optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


class EpochAverager:
    """Means of the training logs over each epoch of real data (the per-epoch curves of DLSGAN (Cho & Krzyzak)).

    Only full epochs observed in this process are reported: a resumed run restarts the average at its epoch.
    """

    def __init__(self, steps_per_epoch: int | None):
        self.steps_per_epoch = steps_per_epoch
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, step: int, logs: dict[str, float]) -> dict[str, float] | None:
        if not self.steps_per_epoch:
            return None
        for key, value in logs.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1
        if step % self.steps_per_epoch:
            return None
        complete = self.count == self.steps_per_epoch  # not the partial epoch a resume starts in
        averages = {k: v / self.count for k, v in self.sums.items()}
        averages["epoch"] = step // self.steps_per_epoch
        self.sums, self.count = {}, 0
        return averages if complete else None


EXPLOSION_BOUND = 1e4  # |loss| past this: a GAN, encoder or image loss has left any sane range (they start near 1)


def check_finite(logs: dict[str, float], step: int, run_dir: Path) -> None:
    """Stop at the first NaN/inf loss, saying truthfully what is kept (nothing is written after it)."""
    bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
    if not bad:
        return
    checkpoint = latest_checkpoint(run_dir)
    kept = (f"The last good checkpoint (step {checkpoint.step}) is kept in {run_dir}; lower --lr and continue it with "
            "--resume" if checkpoint is not None else
            f"No checkpoint was written before it, so there is nothing to resume: delete {run_dir} and start again "
            "with a lower --lr")
    raise TrainingDiverged(f"{', '.join(f'{k}={v}' for k, v in bad.items())} at step {step}; stopped. {kept}")


class ExplosionWarning:
    """One warning (then one per tenfold growth) when a loss passes ``EXPLOSION_BOUND`` in magnitude: such a run is
    finite but no longer learning (e.g. --lr 1e9 gives losses near 1e18), and would otherwise end without a word."""

    def __init__(self, warn=None, enabled: bool = True):
        self.warn = warn or (lambda message: warnings.warn(message, stacklevel=2))
        self.enabled, self.next_bound = enabled, EXPLOSION_BOUND

    def check(self, logs: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        name, value = max(logs.items(), key=lambda kv: abs(kv[1]), default=(None, 0.0))
        if abs(value) > self.next_bound:
            self.warn(f"{name} = {value:.3g} at step {step}: past {EXPLOSION_BOUND:g}, training has probably "
                      "diverged; lower --lr")
            self.next_bound = abs(value) * 10


def logs_are_bad(logs: dict[str, float]) -> bool:
    return any(not math.isfinite(v) for v in logs.values())


def _progress(enabled: bool):
    return progress(enabled, TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
