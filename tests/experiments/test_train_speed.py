"""`ganinv bench train-speed`: every mode of a training step measured side by side, the FLOP count and the choice
of the cpu budget's mode; the budget's choice reaches every sub-run."""
import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.experiments.bench import bench_train_speed
from ganinv.experiments.reproduce.suite import BUDGETS, Suite
from ganinv.experiments.train_speed import CountFlops, Mode, SpeedSettings, best_mode
from ganinv.training.launch import build_config


def test_the_flop_count_of_a_linear_layer_forward_and_backward():
    layer, x = torch.nn.Linear(16, 8), torch.randn(4, 16, requires_grad=True)
    with CountFlops() as counter:
        layer(x).sum().backward()
    assert counter.total == 3 * 2 * 4 * 16 * 8  # y = xW: forward, then ∂x and ∂W, each 2·n·in·out


def test_each_mode_is_timed_and_checked_against_fp32_eager(tmp_path):
    r = bench_train_speed(tmp_path, quick=True, budget="smoke",  # quick: every mode but torch.compile
                          settings=SpeedSettings(warmup=1, seconds=0.0, min_steps=2, peak_size=64))
    rows = r["rows"]
    modes = [Mode(), Mode(bf16=True), Mode(channels_last=True), Mode(channels_last=True, bf16=True)]
    assert [row["mode"] for row in rows] == [m.name for m in modes] * 3  # three workloads, every mode
    assert all(row["steps/s"] > 0 and 0 < row["fraction of peak"] for row in rows)
    assert all(row["× fp32 eager"] == 1.0 and row["step-1 loss rel. diff"] == 0.0 for row in rows[::4])
    # NHWC reorders the sums of float32 convolutions, nothing else: their losses agree to float32 rounding
    assert all(row["step-1 loss rel. diff"] < 1e-4 for row in rows[2::4])
    assert all(row["step-1 loss rel. diff"] < 0.05 for row in rows[1::4] + rows[3::4])  # bf16: 8-bit mantissas
    assert r["best"] in modes and "train-speed.md" in str(r["report"]) and "fraction of peak" in r["text"]


def test_the_best_mode_runs_every_workload_within_tolerance():
    rows = [{"mode": "fp32 eager", "× fp32 eager": 1.0, "step-1 loss rel. diff": 0.0},
            {"mode": "compile", "× fp32 eager": 3.0, "step-1 loss rel. diff": 0.0},
            {"mode": "compile", "note": "fails: RuntimeError"},  # on another workload
            {"mode": "bf16 autocast", "× fp32 eager": 2.0, "step-1 loss rel. diff": 0.5}]
    assert best_mode(rows, tolerance=0.05) == (Mode(), 1.0)
    assert best_mode(rows, tolerance=1.0)[0] == Mode(bf16=True)


def test_compile_is_refused_in_one_line_where_a_method_differentiates_twice():
    with pytest.raises(GaninvError, match="R1 penalty.*without --compile"):
        build_config("dedgan", net={"prior": "spherical"}, train={"compile": True})
    assert build_config("gan", train={"compile": True}).train.compile


def test_the_cpu_budget_trains_in_bf16_and_channels_last_and_compiles_only_where_it_can(tmp_path, monkeypatch):
    import ganinv.experiments.reproduce.suite as suite_module

    suite = Suite(data="celeba:x", out=tmp_path, budget=BUDGETS["cpu"])
    monkeypatch.setattr(suite_module, "native_bf16", lambda: False)  # a CPU that would emulate bf16: fp32
    assert suite.speed("dedgan")["precision"] == "no"
    monkeypatch.setattr(suite_module, "native_bf16", lambda: True)
    assert suite.speed("dedgan") == {"precision": "bf16", "channels_last": True, "compile": False}
    compiled = Suite(data="celeba:x", out=tmp_path, budget=BUDGETS["cpu"].__class__(
        **{**BUDGETS["cpu"].__dict__, "compile": True}))
    assert compiled.speed("gan")["compile"] and not compiled.speed("dlsgan")["compile"]
