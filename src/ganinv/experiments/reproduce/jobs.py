"""``reproduce --jobs N``: the parts in N processes at once, each with its share of the cores.

Parts that build on one another stay in one process, in order (``CHAINS``: AEGAN's Table 2 and Fig. 5 reuse Table
1's DCGAN; the projection network inverts the DLSGAN grid's best cell); the chains are dealt to the processes
longest first. Each process runs ``ganinv reproduce … --parts CHAIN`` with ``usable cores // N`` threads (or the
number ``--threads`` / OMP_NUM_THREADS chose) fixed before torch loads (``core.threads``), writes its output to ``DIR/jobs/K.log`` and its results to the same folder;
a process that fails is named with its log, and the same command continues what it left.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ganinv.core.errors import GaninvError
from ganinv.core.io import make_dir
from ganinv.core.threads import child_environment, chosen_threads, threads_per_process

CHAINS = (("aegan-table1", "aegan-table2", "aegan-superres"), ("dlsgan", "projection", "projection-finetune"),
          ("dedgan",))


def deal(parts: set[str], jobs: int) -> list[list[str]]:
    """The chosen parts as ``jobs`` (or fewer) lists, whole chains each, longest chains first to the least loaded."""
    chains = sorted(([p for p in chain if p in parts] for chain in CHAINS), key=len, reverse=True)
    buckets: list[list[str]] = [[] for _ in range(jobs)]
    for chain in (c for c in chains if c):
        min(buckets, key=len).extend(chain)
    return [b for b in buckets if b]


def run_jobs(args: list[str], out: Path, parts: set[str], jobs: int, log: Callable[[str], None]) -> None:
    """Run ``ganinv reproduce ARGS --parts …`` in ``jobs`` processes at once and wait for all of them."""
    groups = deal(parts, jobs)
    threads = chosen_threads() or threads_per_process(len(groups))  # --threads / OMP_NUM_THREADS win
    make_dir(out / "jobs")
    running = []
    for k, group in enumerate(groups, start=1):
        path = out / "jobs" / f"{k}.log"
        command = [sys.executable, "-m", "ganinv", "reproduce", *args, "--parts", ",".join(group)]
        with open(path, "ab") as output:
            running.append((k, group, path, subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                                             env=child_environment(threads))))
        log(f"job {k}: {', '.join(group)} ({threads} thread(s)); its log: {path}")
    failed = wait_all(running, log)
    if failed:
        raise GaninvError("; ".join(f"job {k} ({', '.join(g)}) exited with {rc}: see {p}" for k, g, p, rc in failed))


def wait_all(running: list, log: Callable[[str], None]) -> list:
    """Wait for every process, saying when each ends; returns (job, parts, log, exit code) of those that failed."""
    failed, pending = [], list(running)
    while pending:
        time.sleep(1.0)
        for item in [r for r in pending if r[3].poll() is not None]:
            k, group, path, process = item
            pending.remove(item)
            log(f"job {k} ({', '.join(group)}) " + ("finished" if process.returncode == 0 else
                                                    f"failed with exit code {process.returncode}"))
            if process.returncode:
                failed.append((k, group, path, process.returncode))
    return failed
