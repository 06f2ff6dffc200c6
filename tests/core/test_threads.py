"""core.threads: processes side by side never ask for more cores than there are; an explicit choice wins."""
import os

import torch

from ganinv.core import threads


def test_a_share_of_the_cores_per_process_minus_workers_and_at_least_one(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 8)
    assert threads.threads_per_process(1) == 8
    assert threads.threads_per_process(2) == 4
    assert threads.threads_per_process(2, workers=1) == 3
    assert threads.threads_per_process(16) == 1 and threads.threads_per_process(1, workers=20) == 1
    monkeypatch.setattr(threads, "TORCH_DEFAULT", 4)  # torch's physical-core default caps the logical count
    assert threads.threads_per_process(1) == 4


def test_the_launchers_local_world_size_counts_the_processes(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert threads.processes_on_this_machine() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "x")
    assert threads.processes_on_this_machine() == 1


def test_omp_num_threads_wins_and_training_restores_the_count(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    monkeypatch.setattr(threads, "threads_per_process", lambda *a, **k: 1)
    with threads.threads_for("cpu", workers=0) as n:
        assert n == before  # the user's (or launcher's) choice is left alone
    monkeypatch.delenv("OMP_NUM_THREADS")
    with threads.threads_for("cpu", workers=0) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_fix_threads_reaches_the_processes_it_starts(monkeypatch):
    before = torch.get_num_threads()
    for name in threads.THREADS_ENV:
        monkeypatch.delenv(name, raising=False)
    try:
        threads.fix_threads(1)
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        assert threads.child_environment(2)["MKL_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)


def test_an_explicit_count_reaches_the_reproduction_jobs(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.chosen_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert threads.chosen_threads() is None
