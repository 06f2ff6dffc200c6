"""Several processes under `accelerate launch` (gloo on CPU) compute what one process computes on the same global
batch: same data split across ranks, same latents, DDP-averaged gradients, BatchNorm over the global batch, the DLS
trace over every rank's latents — and a run resumes under another number of processes.

Accelerate 1.15's `accelerate launch --cpu --num_processes 2` starts only one process (its CPU multi-process path is
mpirun's); `--multi_gpu --num_processes 2` starts two through torchrun, and on a machine without CUDA (or with the
run's `device="cpu"`, as here) they talk over gloo. The tests check that two processes really ran.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganinv.core.rundir import latest_checkpoint, read_config
from ganinv.methods import method_class
from helpers import free_port

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

WORKER = Path(__file__).parent / "ddp_worker.py"
# float32 sums in another order: one process and two agree to rounding, except that Adam's first steps move each
# weight by ≈ lr·sign(g), so a gradient element within rounding of zero may flip sign and move its weight by up to
# 2·lr. Measured here: at most 3e-5 after 10 steps (0.1 % of dlsgan's weights beyond 1e-5); at 32 px, batch 64,
# 1 step: 2 weights in 10^5 differ by > 1e-6.
TOLERANCE = 1e-4
FLIPS_ALLOWED = 1e-3  # fraction of weights allowed beyond TOLERANCE


def launch(processes: int, *args: str) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(WORKER), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "weights.safetensors")


def differences(a: dict, b: dict) -> torch.Tensor:
    assert a.keys() == b.keys()
    return torch.cat([(a[k].double() - b[k].double()).abs().flatten() for k in a])


def max_difference(a: dict, b: dict) -> float:
    return differences(a, b).max().item()


def initial_weights(run: Path) -> dict[str, torch.Tensor]:
    method = method_class(read_config(run).method)(read_config(run))
    return {f"{name}.{k}": v for name, net in method.nets.items() for k, v in net.state_dict().items()}


def assert_equal_within_tolerance(run: Path, reference: Path) -> None:
    ours, theirs = weights(run), weights(reference)
    beyond = (differences(ours, theirs) > TOLERANCE).double().mean().item()
    assert beyond <= FLIPS_ALLOWED, f"{beyond:.2%} of {run}'s weights differ from one process's by > {TOLERANCE}"
    start = initial_weights(reference)
    moved = max_difference({k: theirs[k] for k in start}, start)
    assert moved > 100 * TOLERANCE, f"training moved the weights by only {moved}: the comparison would be vacuous"


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def seen_by_rank(run: Path, rank: int) -> list[int]:
    return json.loads((run / f"seen-rank{rank}.jsonl").read_text().splitlines()[0])


def assert_one_writer(run: Path, steps: int) -> None:
    """One checkpoint, one log: every step logged once, one sample grid per sampling step, no stray temp files."""
    assert [r["step"] for r in records(run, "train")] == list(range(1, steps + 1))
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step-{s:07d}.png" for s in (5, 10)]
    names = {p.name for p in run.iterdir()}
    assert {"weights.safetensors", "checkpoint.json", "config.json"} <= names
    assert not [n for n in names if "tmp" in n], names
    state = torch.load(latest_checkpoint(run).state, weights_only=True)
    assert state["step"] == steps and state["world_size"] == 2


def assert_ranks_split_the_global_batch(run: Path, reference: Path) -> None:
    rank0, rank1, single = seen_by_rank(run, 0), seen_by_rank(run, 1), seen_by_rank(reference, 0)
    per_rank = ddp_worker.TRAIN["batch_size"] // 2
    for step in range(len(single) // (2 * per_rank)):
        mine = slice(step * per_rank, (step + 1) * per_rank)
        global_batch = single[2 * step * per_rank:2 * (step + 1) * per_rank]
        assert not set(rank0[mine]) & set(rank1[mine]), f"both ranks read the same images at step {step}"
        assert rank0[mine] + rank1[mine] == global_batch


def train_single(method: str, out: Path, steps: int, resume: bool = False) -> Path:
    ddp_worker.main(method, str(out), steps, resume)
    return out


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    """One-process references: gan and dlsgan at 10 steps, resumed to 14, and a dlsgan stopped at 5."""
    root = tmp_path_factory.mktemp("single")
    runs = {}
    for method in ("gan", "dlsgan"):
        runs[method, 10] = train_single(method, root / f"{method}-10", 10)
        runs[method, 14] = root / f"{method}-14"
        shutil.copytree(runs[method, 10], runs[method, 14])
        train_single(method, runs[method, 14], 14, resume=True)
    runs["dlsgan", 5] = train_single("dlsgan", root / "dlsgan-5", 5)
    return runs


@pytest.mark.parametrize("method", ["gan", "dlsgan"])
def test_two_processes_equal_one_on_the_same_global_batch_and_resume_in_one(method, single_runs, tmp_path):
    run = tmp_path / method
    launch(2, method, str(run), "10")

    launched = records(run, "launch")[0]
    assert launched["world_size"] == 2 and launched["rank_seeds"] == [0, 1] and launched["local_batch_size"] == 4
    assert_ranks_split_the_global_batch(run, single_runs[method, 10])
    assert_equal_within_tolerance(run, single_runs[method, 10])
    assert_one_writer(run, 10)
    if method == "dlsgan":  # the DLS trace saw both ranks' latents: the scale is the one-process scale
        ours, theirs = weights(run), weights(single_runs[method, 10])
        scale_keys = [k for k in ours if "latent_scale" in k or "latent_trace" in k]
        assert scale_keys and max_difference({k: ours[k] for k in scale_keys},
                                             {k: theirs[k] for k in scale_keys}) < TOLERANCE
        assert not torch.allclose(ours[scale_keys[0]], torch.ones_like(ours[scale_keys[0]]))

    train_single(method, run, 14, resume=True)  # a two-process run goes on in one process
    assert records(run, "launch")[-1]["world_size"] == 1
    assert_equal_within_tolerance(run, single_runs[method, 14])


def test_a_one_process_run_resumes_under_two(single_runs, tmp_path):
    run = tmp_path / "dlsgan"
    shutil.copytree(single_runs["dlsgan", 5], run)
    launch(2, "dlsgan", str(run), "10", "--resume")
    assert [r["world_size"] for r in records(run, "launch")] == [1, 2]
    assert_equal_within_tolerance(run, single_runs["dlsgan", 10])


def test_rank_slices_tile_the_one_process_batches_and_odd_batches_are_refused():
    from ganinv.core.errors import GaninvError
    from ganinv.training.loop import ResumableBatchSampler

    def first(sampler, n=12):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    single = first(ResumableBatchSampler(50, 8, seed=3, start_batch=4))
    ranks = [first(ResumableBatchSampler(50, 8, seed=3, start_batch=4, rank=r, world=4)) for r in range(4)]
    assert [sum((r[i] for r in ranks), []) for i in range(12)] == single
    with pytest.raises(GaninvError, match="must split evenly over the 2 processes"):
        ResumableBatchSampler(50, 7, seed=0, world=2)
