"""How many threads each process ganinv starts gives torch on a CPU, so that processes running side by side never
ask for more cores than there are.

OpenMP threads that outnumber the cores spin against each other: beside two one-thread jobs on 2 cores, 60 steps of
a 16 px ``train gan`` took 2.62 s with two threads and 0.91 s with one (docs/benchmarks.md). The rule,
everywhere: a process gets ``usable cores // processes running side by side``, minus one per data-loader worker
of its own (a worker runs torch with one thread, as PyTorch sets it, and decodes images on a core of its own),
and at least one. An explicit choice wins: ``--threads N``, or ``OMP_NUM_THREADS`` set by the user or by a
launcher (torchrun and ``accelerate launch`` set it to 1 for several processes).

Where it applies: training on the CPU (``training.loop.train``: processes = the launcher's ``LOCAL_WORLD_SIZE``);
``reproduce --jobs N`` (each part process gets cores // N); ``invert --data --workers W`` and the DataLoader of
training (the main process leaves W cores to its workers); the web page (one model call at a time: every core).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ganinv.core.errors import GaninvError

THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
TORCH_DEFAULT = torch.get_num_threads()  # torch's own choice (physical cores), before anything here changes it


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_process(processes: int = 1, workers: int = 0) -> int:
    """Intra-op threads for one of ``processes`` processes sharing this machine, each with ``workers`` data-loader
    workers of its own."""
    return max(1, min(TORCH_DEFAULT, usable_cores() // max(1, processes)) - max(0, workers))


def processes_on_this_machine() -> int:
    """How many ranks a launcher started on this machine (torchrun's and Accelerate's LOCAL_WORLD_SIZE), else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def chosen_threads() -> int | None:
    """The thread count OMP_NUM_THREADS (or ``--threads``) fixed, when it is a positive number."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return None


def use_threads(*, processes: int | None = None, workers: int = 0) -> int:
    """Set torch's intra-op threads by the rule above, unless OMP_NUM_THREADS (or ``--threads``, which sets it)
    chose them. Returns the number in use."""
    if chosen_threads() is None:
        torch.set_num_threads(threads_per_process(processes or processes_on_this_machine(), workers))
    return torch.get_num_threads()


@contextmanager
def threads_for(device, *, workers: int = 0) -> Iterator[int]:
    """On a CPU device, ``use_threads`` for the block and torch's previous count after it (a notebook that trains
    keeps its own setting); elsewhere nothing changes."""
    before = torch.get_num_threads()
    try:
        yield use_threads(workers=workers) if torch.device(device).type == "cpu" else before
    finally:
        torch.set_num_threads(before)


def fix_threads(threads: int | None) -> None:
    """``--threads N``: this process and every process it starts use N threads (as OMP_NUM_THREADS=N would);
    None: leave the choice to the rule above."""
    if threads is None:
        return
    if threads < 1:
        raise GaninvError(f"--threads must be at least 1, got {threads}")
    os.environ.update(child_environment(threads))
    torch.set_num_threads(threads)


def child_environment(threads: int) -> dict[str, str]:
    """The environment of a process ganinv starts, with its thread count fixed before torch loads."""
    return {**os.environ, **{name: str(threads) for name in THREADS_ENV}}
