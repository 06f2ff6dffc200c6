"""``ganinv bench train-speed``: how fast this machine trains the reproduction's nets, mode by mode, in one run.

For each workload (the cpu budget's 64 px DCGAN of AEGAN's Table 1, its 32 px DLSGAN and direction-embedding GAN,
each at the budget's batch size) and each mode — fp32 eager, channels_last, bf16 autocast, ``torch.compile`` and
their combinations — it times ``train_step`` after a warm-up (compilation included there, not in the timing),
counts the step's FLOPs once (``torch.utils.flop_counter``: convolutions and matmuls, forward and backward) and
divides the achieved FLOP/s by this CPU's peak, measured by a matmul benchmark in the same process (fp32 for fp32
modes, bf16 for bf16 modes). It also checks each mode's first step against fp32 eager from the same weights and
noise: the largest relative difference of the step's losses, the figure the cpu budget's choice rests on.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from accelerate.state import AcceleratorState, GradientState
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganinv.methods import method_class
from ganinv.training.launch import build_config
from ganinv.training.loop import apply_speed_options, make_accelerator

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Mode:
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False

    @property
    def name(self) -> str:
        parts = [p for p, on in (("compile", self.compile), ("channels_last", self.channels_last),
                                 ("bf16 autocast", self.bf16)) if on]
        return " + ".join(parts) or "fp32 eager"


MODES = tuple(Mode(cl, bf, co) for co in (False, True) for cl in (False, True) for bf in (False, True))


@dataclasses.dataclass(frozen=True)
class Workload:
    label: str
    method: str
    preset: str
    net: dict
    batch_size: int
    options: dict = dataclasses.field(default_factory=dict)


def workloads(budget) -> list[Workload]:
    """The reproduction budget's three training workloads (``experiments.reproduce.suite.Budget``)."""
    b = budget
    style = dict(image_size=b.style_size, width=b.style_width, channels=3)
    return [
        Workload(f"DCGAN {b.image_size} px (AEGAN Table 1)", "gan", "paper",
                 dict(image_size=b.image_size, width=b.width), b.batch_size),
        Workload(f"DLSGAN {b.style_size} px", "dlsgan", "small", {**style, "latent_dim": b.style_latent},
                 b.style_batch),
        Workload(f"DED-GAN {b.style_size} px", "dedgan", "small",
                 {**style, "latent_dim": b.style_latent - 1, "prior": "spherical"}, b.style_batch),
    ]


# ---------------------------------------------------------------- one workload in one mode
def prepared_step(w: Workload, mode: Mode, seed: int) -> Callable[[], dict]:
    """One train_step of a freshly initialised method (the same weights in every mode: seeded), on the CPU, in
    ``mode``, as a function of nothing."""
    cls = method_class(w.method)
    config = build_config(cls, preset=w.preset, seed=seed, net=w.net, options=w.options,
                          train=dict(batch_size=w.batch_size, device="cpu", precision="bf16" if mode.bf16 else "no",
                                     channels_last=mode.channels_last, compile=mode.compile))
    torch.manual_seed(seed)
    method = cls(config)
    accelerator = fresh_accelerator(config)
    method.configure(accelerator)
    apply_speed_options(method.nets, channels_last=mode.channels_last, compile=mode.compile)
    method.train_mode()
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(w.batch_size, config.net.channels, config.net.image_size, config.net.image_size, generator=gen)
    if mode.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    batch = [real, torch.zeros(w.batch_size, dtype=torch.long)] if cls.uses_real_data else None

    def step() -> dict[str, float]:
        with accelerator.autocast():
            return method.train_step(batch)

    return step


def fresh_accelerator(config):
    """An Accelerator with this config's precision: Accelerate keeps one process-wide state, fixed by the first
    Accelerator, so a single-process bench forgets it before each mode (and after the last: ``forget_accelerator``)."""
    forget_accelerator()
    return make_accelerator(config)


def forget_accelerator() -> None:
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def first_losses(step: Callable[[], dict], seed: int) -> dict[str, float]:
    torch.manual_seed(seed + 1)  # the same latents and noise in every mode
    return {k: float(v) for k, v in step().items()}


def steps_per_second(step: Callable[[], dict], *, warmup: int, seconds: float, min_steps: int = 3) -> tuple[float, int]:
    """(steps/s, steps timed): ``warmup`` untimed steps (compilation happens there), then at least ``min_steps``
    and until ``seconds`` have passed."""
    for _ in range(warmup):
        step()
    start, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start), n


def step_flops(w: Workload, seed: int) -> float:
    """FLOPs of one fp32 eager train_step (convolutions and matmuls, forward and backward)."""
    step = prepared_step(w, Mode(), seed)
    step()  # lazily built state (optimisers' moments, EMA copies) stays out of the count
    with CountFlops() as counter:
        step()
    return counter.total


class CountFlops(TorchDispatchMode):
    """torch.utils.flop_counter's per-operator formulas without FlopCounterMode's module tracker, whose backward
    hooks refuse the double backward of R1 penalties (``autograd.grad(create_graph=True)``)."""

    total = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += float(formula(*args, **kwargs, out_val=out))
        return out


def relative_difference(logs: dict[str, float], reference: dict[str, float]) -> float:
    keys = [k for k in reference if k in logs]
    return max((abs(logs[k] - reference[k]) / max(abs(reference[k]), 1e-3) for k in keys), default=float("nan"))


# ---------------------------------------------------------------- the CPU's peak
def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of a square ``size`` matmul in ``dtype``, best of the calls after one warm-up: the ceiling the
    training steps' FLOP/s is compared with."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best


# ---------------------------------------------------------------- the suite
@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    warmup: int = 3
    seconds: float = 20.0  # timed per (workload, mode)
    min_steps: int = 3
    peak_size: int = 2048


def measure_workload(w: Workload, modes, s: SpeedSettings, peaks: dict, seed: int, log: Log) -> list[dict]:
    flops = step_flops(w, seed)
    rows, reference, base_rate = [], None, None
    for mode in modes:
        log(f"train-speed: {w.label}, {mode.name}")
        row = {"workload": w.label, "mode": mode.name, "GFLOP/step": flops / 1e9}
        try:
            step = prepared_step(w, mode, seed)
            losses = first_losses(step, seed)
            rate, n = steps_per_second(step, warmup=s.warmup, seconds=s.seconds, min_steps=s.min_steps)
        except Exception as e:  # noqa: BLE001 — a mode this method cannot run in is a row of the table, not a crash
            rows.append({**row, "note": f"fails: {first_line(e)}"})
            continue
        reference, base_rate = reference or losses, base_rate or rate
        rows.append({**row, "steps/s": rate, "images/s": rate * w.batch_size, "× fp32 eager": rate / base_rate,
                     "GFLOP/s": rate * flops / 1e9, "fraction of peak": rate * flops / peaks["bf16" if mode.bf16
                                                                                              else "fp32"],
                     "step-1 loss rel. diff": relative_difference(losses, reference), "timed steps": n})
    return rows


def first_line(error: Exception) -> str:
    """The error's first clause, short enough for a table cell."""
    text = (str(error).strip().splitlines() or [""])[0].split(";")[0]
    return f"{type(error).__name__}: {text}"[:160]


def best_mode(rows: list[dict], tolerance: float) -> tuple[Mode, float]:
    """The mode with the highest geometric mean speed-up over the workloads among those whose step-1 losses stay
    within ``tolerance`` of fp32 eager on every workload; returns it and its speed-up."""
    by_mode: dict[str, list[dict]] = {}
    for r in rows:
        by_mode.setdefault(r["mode"], []).append(r)
    fine = {m: rs for m, rs in by_mode.items()
            if all(r.get("step-1 loss rel. diff", float("inf")) <= tolerance for r in rs)}
    gains = {m: float(torch.tensor([r["× fp32 eager"] for r in rs]).log().mean().exp()) for m, rs in fine.items()}
    name = max(gains, key=gains.get)
    return next(m for m in MODES if m.name == name), gains[name]


def measure_train_speed(*, budget, modes=MODES, settings: SpeedSettings | None = None, seed: int = 0,
                        tolerance: float = 0.05, log: Log = lambda m: None) -> dict:
    """Every workload of ``budget`` in every mode (one process, so the ratios are side by side), the peaks, and
    the best mode within ``tolerance``."""
    s = settings or SpeedSettings()
    peaks = {"fp32": matmul_peak(torch.float32, s.peak_size), "bf16": matmul_peak(torch.bfloat16, s.peak_size)}
    log(f"train-speed: matmul peak fp32 {peaks['fp32'] / 1e9:.1f}, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    try:
        rows = [r for w in workloads(budget) for r in measure_workload(w, modes, s, peaks, seed, log)]
    finally:
        forget_accelerator()  # the next Accelerator of this process chooses its own precision again
    best, gain = best_mode(rows, tolerance)
    return {"rows": rows, "peaks": peaks, "best": best, "gain": gain, "settings": s, "tolerance": tolerance,
            "threads": torch.get_num_threads()}
