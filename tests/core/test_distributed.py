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
LR = 2e-4  # the runs' Adam lr (TrainConfig's default; β1 0.5)
# What two processes change is the order of float32 sums: half-batch convolutions and matmuls (their kernels block
# differently at batch 4 and 8), DDP's sum of the two ranks' mean gradients, the BatchNorm sums. Measured on these
# nets (batch 8 vs two batches of 4), gradients agree to 1.6e-6 of each tensor's largest element (≈ 30 ulps).
#
# After ONE step, Adam moves each weight by lr·g/(|g| + 1e-8) (bias-corrected: m̂ = g, v̂ = g²): the same step in
# both runs unless g lies within rounding of zero (|g| ≲ 30·2⁻²⁴·max|g| ≈ 2e-6·max|g|), where its sign may flip and
# the weight move up to 2·lr apart. Taking max|g| as at most ~100× the typical |g| (a generous spread),
# that band holds about 2·2e-6·100 = 4e-4 of them: ONE_STEP_FLIPS, with no other difference beyond lr/2.
# A wrong split (both ranks reading the same images) moves 3.8 % of the weights by more than lr/2 after one step.
ONE_STEP_TOLERANCE = LR / 2
ONE_STEP_FLIPS = 1e-3
# Over several steps those rounding-level differences are fed back by the GAN (G learns against D's flipped weights)
# and by Adam's sign-like early steps; their growth depends on the CPU's kernels and is no float32 bound — 0 % of
# the weights beyond lr/2 after 10 steps on AVX-512 oneDNN kernels, 0.007 % with DNNL_MAX_CPU_ISA=AVX2, 1.37 % on an
# AMD EPYC. So the exact claim is the one-step one; after 10 and 14 steps the runs need only stay far closer than a
# wrongly split run, which has 72 % of its weights beyond lr/2 after 10 steps.
TOLERANCE = LR / 2
FLIPS_ALLOWED = 0.15  # fraction of weights allowed beyond TOLERANCE after several steps


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


def assert_equal_within_tolerance(run: Path, reference: Path, tolerance: float = TOLERANCE,
                                  flips_allowed: float = FLIPS_ALLOWED) -> None:
    ours, theirs = weights(run), weights(reference)
    beyond = (differences(ours, theirs) > tolerance).double().mean().item()
    assert beyond <= flips_allowed, f"{beyond:.2%} of {run}'s weights differ from one process's by > {tolerance}"
    start = initial_weights(reference)
    moved = max_difference({k: theirs[k] for k in start}, start)
    assert moved > tolerance, f"training moved the weights by only {moved}: the comparison would be vacuous"


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
    """One-process references: gan and dlsgan at 1 and 10 steps, resumed to 14, and a dlsgan stopped at 5."""
    root = tmp_path_factory.mktemp("single")
    runs = {}
    for method in ("gan", "dlsgan"):
        runs[method, 1] = train_single(method, root / f"{method}-1", 1)
        runs[method, 10] = train_single(method, root / f"{method}-10", 10)
        runs[method, 14] = root / f"{method}-14"
        shutil.copytree(runs[method, 10], runs[method, 14])
        train_single(method, runs[method, 14], 14, resume=True)
    runs["dlsgan", 5] = train_single("dlsgan", root / "dlsgan-5", 5)
    return runs


def scale_tensors(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights(run).items() if "latent_scale" in k or "latent_trace" in k}


@pytest.mark.parametrize("method", ["gan", "dlsgan"])
def test_one_step_of_two_processes_is_one_step_of_one_to_float32_rounding(method, single_runs, tmp_path):
    run = tmp_path / method
    launch(2, method, str(run), "1")
    assert records(run, "launch")[0]["world_size"] == 2
    assert_equal_within_tolerance(run, single_runs[method, 1], ONE_STEP_TOLERANCE, ONE_STEP_FLIPS)
    ours, theirs = records(run, "train")[0], records(single_runs[method, 1], "train")[0]
    # step 1's D losses come from the initial D on the same images and latents: the same sums in another order
    # (a mean of 8 terms each a few ulps off: 1e-5 relative is ~100 ulps)
    assert ours["d_loss"] == pytest.approx(theirs["d_loss"], rel=1e-5)
    if method == "dlsgan":  # the DLS trace saw both ranks' latents: z' of the same D on the same inputs
        ours, theirs = scale_tensors(run), scale_tensors(single_runs[method, 1])
        assert ours and max_difference(ours, theirs) < 1e-5
        assert not torch.allclose(ours["extra.latent_scale"], torch.ones_like(ours["extra.latent_scale"]))


@pytest.mark.parametrize("method", ["gan", "dlsgan"])
def test_two_processes_equal_one_on_the_same_global_batch_and_resume_in_one(method, single_runs, tmp_path):
    run = tmp_path / method
    launch(2, method, str(run), "10")

    launched = records(run, "launch")[0]
    assert launched["world_size"] == 2 and launched["rank_seeds"] == [0, 1] and launched["local_batch_size"] == 4
    assert_ranks_split_the_global_batch(run, single_runs[method, 10])
    assert_equal_within_tolerance(run, single_runs[method, 10])
    assert_one_writer(run, 10)
    if method == "dlsgan":  # the trace was saved and moved (its one-step equality is checked above)
        scale = scale_tensors(run)["extra.latent_scale"]
        assert not torch.allclose(scale, torch.ones_like(scale))

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
