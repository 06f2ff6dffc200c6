"""``ganinv bench SUITE``: one rerunnable command per claim — the papers' tables and our own speed, side by side.

Suites (each writes ``OUT/SUITE.md`` headed by the machine, versions, seed and exact command, plus PNG plots):

  speed   inversion images/s of encoder, optimisation (100 and 1000 steps) and hybrid as ratios to the encoder;
          training-step images/s of every method against a naive eager fp32 loop of the same nets; peak memory;
          growth of inversion time and memory with batch size and image size. All in one process.
  table1  AEGAN (Luo et al.) table 1 on one frozen generator (``experiments.compare``) plus DLSGAN, DED-GAN (same
          data, same budget) and the projection network; generated samples and real test images.
  table2  AEGAN (Luo et al.) table 2: label similarity of search results (``apps.search.evaluate_search``).
  dlsgan  the DLSGAN paper's (Cho & Krzyzak) ablation (``experiments.ablation.run_ablation``).
  scale   search latency p50/p99 and recall@10, flat vs IVF, at growing numbers of random latents.
  train-speed  a train step of the reproduction's cpu-budget nets (64 px DCGAN, 32 px DLSGAN and DED-GAN) in fp32
          eager, channels_last, bf16 autocast, torch.compile and their combinations: steps/s, × fp32 eager, achieved
          FLOP/s as a fraction of a matmul peak measured in the same run, step-1 loss difference
          (``experiments.train_speed``).

Every number in the reports is measured by the run that writes it.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from ganinv.apps.faiss_index import faiss_module, ivf_params, new_float_index, set_search_params, train_ivf
from ganinv.apps.search import evaluate_search
from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_text
from ganinv.experiments.ablation import run_ablation
from ganinv.experiments.compare import CompareSettings, compare, real_test_images, trained_model, warm_up
from ganinv.experiments.markdown import header, md_table
from ganinv.experiments.reproduce.suite import budget_named
from ganinv.experiments.train_speed import MODES, SpeedSettings, measure_train_speed
from ganinv.inference.evaluate import generated_batch, reconstruction_report
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.methods import Method, method_class
from ganinv.metrics import lpips_status
from ganinv.training.launch import build_config, ensure_trained, load_generator_run
from ganinv.training.loop import apply_speed_options, make_accelerator

SUITES = ("speed", "train-speed", "table1", "table2", "dlsgan", "scale")
Log = Callable[[str], None]


# ---------------------------------------------------------------- report helpers
def _plot(path: Path, title: str, xlabel: str, ylabel: str, curves: dict[str, tuple[list, list]], logx=True,
          logy=True) -> Path:
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- measuring
def peak_memory_mb(fn: Callable[[], object], device) -> float:
    """Peak memory of one call of fn above what was allocated before it: CUDA ``max_memory_allocated`` on GPU; on
    CPU the running sum of every allocation and free the torch profiler records, in time order, at its highest
    (tracemalloc does not see torch's allocator and the resident set size does not shrink between calls)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    level = peak = 0
    for event in events:
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device, repeats: int = 1, warmup: int = 1) -> tuple[float, float]:
    """(seconds per call, peak MB) of fn, after ``warmup`` untimed calls; the memory from one more call, apart
    (the profiler's overhead stays out of the timing)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    elapsed = (time.perf_counter() - start) / repeats
    return elapsed, peak_memory_mb(fn, device)


# ---------------------------------------------------------------- the GPU path for inversion
def speed_options(model, *, channels_last: bool = False, compile: bool = False, bf16: bool = False):
    """An inversion function over ``model`` (an InversionModel) with the GPU path's options: NHWC nets and
    inputs, ``torch.compile`` in place, bf16 autocast. Returns ``invert(x) -> z`` (float32 latents)."""

    apply_speed_options(model.method.nets, channels_last=channels_last, compile=compile)
    device = model.device

    def invert(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, torch.float32)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model.invert(x).float()

    return invert


# ---------------------------------------------------------------- tiny in-memory models for speed
def _config(method: str | type[Method], *, image_size: int, width: int, latent_dim: int, channels: int, batch_size: int,
            device: str = "auto", precision: str = "no", options: dict | None = None, data: str | None = None):

    return build_config(method, data=data, net=dict(image_size=image_size, width=width, latent_dim=latent_dim,
                                                     channels=channels),
                        train=dict(batch_size=batch_size, device=device, precision=precision), options=options)


def fresh_model(method: str, device, **net):
    """An InversionModel of a freshly built method (untrained: speed does not depend on the weights)."""

    cls = method_class(method)
    m = cls(_config(cls, batch_size=16, **net))
    for name, module in m.nets.items():
        m.nets[name] = module.to(device).eval()
    m.device = torch.device(device)
    return InversionModel(m)


def naive_gan_step(G, D_fake, D_real, opt_g, opt_d, real, latent_dim):
    """The reference: a plain eager fp32 NSGAN step, written out. ``D_fake(x, z)``, ``D_real(x)`` give logits."""

    z = torch.rand(real.shape[0], latent_dim, device=real.device) * 2 - 1
    fake = G(z)
    x = real * 2 - 1
    d_loss = F.softplus(D_fake(fake.detach(), z)).mean() + F.softplus(-D_real(x)).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = F.softplus(-D_fake(fake, z)).mean() + F.softplus(D_real(x)).mean() * 0
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()


def naive_encoder_step(G, E, opt_e, n, latent_dim, device, objective: str = "latent"):
    """The reference encoder step, written out: latent MSE (direct regression), or ``objective="aegan"``: BCE between
    x = G(z) and G(E(x)), gradients through the frozen G into E. G's images are in [0, 1] (sigmoid head)."""

    z = torch.rand(n, latent_dim, device=device) * 2 - 1
    with torch.no_grad():
        x = G(z)
    if objective == "aegan":
        loss = F.binary_cross_entropy(G(E(x)).clamp(1e-6, 1 - 1e-6), x)
    else:
        loss = ((E(x) - z) ** 2).mean()
    opt_e.zero_grad(set_to_none=True)
    loss.backward()
    opt_e.step()


def _logits(out):
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.reshape(out.shape[0], -1)[:, :1]


def training_speed(method: str, *, device, net: dict, batch_size: int, steps: int, precision: str = "no",
                   channels_last: bool = False, compile: bool = False) -> dict:
    """Images/s and peak MB of ``steps`` train_steps of ``method`` through Accelerate, and of the naive reference
    loop over deep copies of the same nets."""

    cls = method_class(method)
    config = _config(cls, batch_size=batch_size, device="cuda" if torch.device(device).type == "cuda" else "cpu",
                     precision=precision, **net)
    m = cls(config)
    reference_nets = {k: copy.deepcopy(v) for k, v in m.nets.items()}
    accelerator = make_accelerator(config)
    m.configure(accelerator)
    apply_speed_options(m.nets, channels_last=channels_last, compile=compile)
    m.train_mode()
    real = torch.rand(batch_size, net["channels"], net["image_size"], net["image_size"], device=accelerator.device)
    batch = [real, torch.zeros(batch_size, dtype=torch.long, device=accelerator.device)] if cls.uses_real_data else None

    def step():
        with accelerator.autocast():
            m.train_step(batch)

    seconds, peak = timed(step, accelerator.device, repeats=steps, warmup=2)
    ref, label = naive_reference(cls, reference_nets, real, latent_dim=net["latent_dim"], device=accelerator.device)
    ref_seconds, ref_peak = timed(ref, accelerator.device, repeats=steps, warmup=2)
    return {"method": method, "images/s": batch_size / seconds, "peak MB": peak, "reference": label,
            "reference images/s": batch_size / ref_seconds,
            "speed vs reference": (batch_size / seconds) / (batch_size / ref_seconds), "reference peak MB": ref_peak}


def naive_reference(cls: type[Method], nets: dict, real: torch.Tensor, *, latent_dim: int,
                    device) -> tuple[Callable[[], None], str]:
    """(one step, its description) of the plain eager fp32 loop that does method ``cls``'s work on copies of its nets:
    a GAN step for the joint methods (BiGAN's D judging (x, z) pairs), an encoder step on the frozen G for the
    post-hoc ones (AEGAN's through G, the others' on latents)."""
    G = nets["generator"].to(device).train()
    if "discriminator" in nets and cls.trains_generator:
        D = nets["discriminator"].to(device).train()
        params = list(G.parameters())
        if "encoder" in nets:  # BiGAN: D judges (x, z) pairs, E trained with G
            E = nets["encoder"].to(device).train()
            params += list(E.parameters())
            d_fake, d_real = (lambda x, z: _logits(D(x, z))), (lambda x: _logits(D(x, E(x))))
            label = "naive BiGAN step (G+E, D)"
        else:
            d_fake, d_real = (lambda x, z: _logits(D(x))), (lambda x: _logits(D(x)))
            label = "naive NSGAN step (G, D)"
        og, od = torch.optim.Adam(params, 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
        return (lambda: naive_gan_step(G, d_fake, d_real, og, od, real, latent_dim)), label
    E = nets["encoder"].to(device).train()
    G.requires_grad_(False)
    oe = torch.optim.Adam(E.parameters(), 2e-4)
    objective = "aegan" if cls.name == "aegan" else "latent"  # the reference does the method's work
    label = "naive AEGAN step (BCE through frozen G)" if objective == "aegan" else "naive encoder step (E on frozen G)"
    return (lambda: naive_encoder_step(G, E, oe, len(real), latent_dim, device, objective)), label


# ---------------------------------------------------------------- suite: speed
@dataclasses.dataclass(frozen=True)
class SpeedBudget:
    image_size: int
    width: int
    latent_dim: int
    channels: int
    n_images: int  # images inverted per measurement
    train_batch: int
    train_steps: int
    optimize_steps: tuple[int, ...]
    refine_steps: int
    batch_sizes: tuple[int, ...]
    image_sizes: tuple[int, ...]
    growth_steps: int  # optimisation steps in the growth measurements


SPEED_BUDGETS = {
    "full": SpeedBudget(64, 64, 100, 3, 64, 64, 20, (100, 1000), 100, (1, 4, 16, 64, 256), (16, 32, 64, 128), 20),
    "quick": SpeedBudget(32, 16, 100, 1, 16, 32, 10, (100, 1000), 50, (1, 4, 16, 64), (16, 32, 64), 10),
    "test": SpeedBudget(16, 8, 8, 1, 4, 8, 2, (3, 6), 2, (1, 4), (16, 32), 2),
}
SPEED_METHODS = ("gan", "aegan", "regression", "bigan", "dlsgan", "dedgan")


def bench_speed(out: Path, *, quick: bool = False, budget: SpeedBudget | None = None, seed: int = 0,
                device: str | None = None, methods=SPEED_METHODS, command: str | None = None,
                log: Log = lambda m: None) -> dict:

    b = budget or SPEED_BUDGETS["quick" if quick else "full"]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    net = dict(image_size=b.image_size, width=b.width, latent_dim=b.latent_dim, channels=b.channels)
    encoder = fresh_model("aegan", device, **net)
    inversion = inversion_speed(encoder, b, device, seed, log)
    training = []
    for method in methods:
        log(f"speed: training steps of {method}")
        training.append(training_speed(method, device=device, net=net, batch_size=b.train_batch, steps=b.train_steps))
    growth_batch = growth_with_batch_size(encoder, b, device, seed)
    growth_size = growth_with_image_size(net, b, device, seed)
    figures = growth_figures(out, growth_batch, growth_size)
    text = header("speed", seed=seed, command=command) + speed_report(b, device, inversion, training, growth_batch,
                                                                      growth_size)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "speed.md", text)
    return {"inversion": inversion, "training": training, "growth_batch": growth_batch, "growth_size": growth_size,
            "report": out / "speed.md", "figures": figures, "text": text}


def _optimizer_of(model, steps: int) -> OptimizingModel:
    return OptimizingModel(model, steps=steps, lr=0.05, loss="mse", start="mean")


def inversion_speed(encoder, b: SpeedBudget, device, seed: int, log: Log) -> list[dict]:
    """Images/s, ms/image and peak MB of the encoder, optimisation (each of ``b.optimize_steps``) and the hybrid on
    one batch of ``b.n_images`` generated images, with each one's time as a multiple of the encoder's."""
    images = encoder.generate(encoder.sample(b.n_images, generator=torch.Generator().manual_seed(seed)))
    inverters = {"encoder (aegan)": encoder}
    for steps in b.optimize_steps:
        inverters[f"optimize {steps} steps"] = _optimizer_of(encoder, steps)
    inverters[f"hybrid (encoder + {b.refine_steps} steps)"] = with_refinement(encoder, steps=b.refine_steps)
    warm_up(inverters, images)  # Adam's one-off import and each inverter's first call stay out of the timings
    rows = []
    for name, model in inverters.items():
        log(f"speed: inversion by {name}")
        fast = name.startswith("encoder")  # milliseconds: the mean of 10 calls; the others run for seconds
        seconds, peak = timed(lambda: model.invert(images), device, warmup=1 if fast else 0, repeats=10 if fast else 1)
        rows.append({"inverter": name, "images/s": len(images) / seconds, "ms/image": 1000 * seconds / len(images),
                     "peak MB": peak})
    for row in rows:
        row["time / encoder's"] = rows[0]["images/s"] / row["images/s"]
    return rows


def growth_with_batch_size(encoder, b: SpeedBudget, device, seed: int) -> list[dict]:
    """ms/image and peak MB of the encoder and of ``b.growth_steps`` optimisation steps at each batch size."""
    rows = []
    for batch in b.batch_sizes:
        x = encoder.generate(encoder.sample(batch, generator=torch.Generator().manual_seed(seed)))
        for name, model in (("encoder", encoder), (f"optimize {b.growth_steps} steps",
                                                    _optimizer_of(encoder, b.growth_steps))):
            seconds, peak = timed(lambda: model.invert(x), device, warmup=1 if name == "encoder" else 0)
            rows.append({"inverter": name, "batch": batch, "ms/image": 1000 * seconds / batch, "peak MB": peak})
    return rows


def growth_with_image_size(net: dict, b: SpeedBudget, device, seed: int) -> list[dict]:
    """ms/image and peak MB of a fresh encoder and of optimisation at each image size (``b.n_images`` images)."""
    rows = []
    for size in b.image_sizes:
        encoder = fresh_model("aegan", device, **{**net, "image_size": size})
        x = encoder.generate(encoder.sample(b.n_images, generator=torch.Generator().manual_seed(seed)))
        for name, model in (("encoder", encoder), (f"optimize {b.growth_steps} steps",
                                                    _optimizer_of(encoder, b.growth_steps))):
            seconds, peak = timed(lambda: model.invert(x), device, warmup=1 if name == "encoder" else 0)
            rows.append({"inverter": name, "image size": size, "ms/image": 1000 * seconds / len(x), "peak MB": peak})
    return rows


def growth_figures(out: Path, growth_batch: list[dict], growth_size: list[dict]) -> list[Path]:
    """Time and memory against batch size and against image size: four PNGs, one curve per inverter."""
    figures = []
    for rows, key, stem in ((growth_batch, "batch", "speed_batch"), (growth_size, "image size", "speed_image_size")):
        for metric, suffix in (("ms/image", "time"), ("peak MB", "memory")):
            curves = {}
            for row in rows:
                xs, ys = curves.setdefault(row["inverter"], ([], []))
                xs.append(row[key])
                ys.append(max(row[metric], 1e-3))  # a log axis: a zero would vanish from the plot
            figures.append(_plot(out / f"{stem}_{suffix}.png", f"inversion {metric} vs {key}", key, metric, curves))
    return figures


def speed_report(b: SpeedBudget, device: torch.device, inversion: list[dict], training: list[dict],
                 growth_batch: list[dict], growth_size: list[dict]) -> str:
    """The body of speed.md: what was measured, how, and the four tables."""
    memory = ("torch.cuda.max_memory_allocated" if device.type == "cuda" else "highest running sum of the allocations "
              "and frees the torch profiler records during one call")
    return "\n".join([
        f"Device: {device}. Nets: DCGAN {b.image_size}px, width {b.width}, latent {b.latent_dim}, "
        f"{b.channels} channel(s); untrained weights (speed does not depend on them). Peak memory: {memory}.", "",
        f"## Inversion ({b.n_images} images, one batch)", "",
        md_table(inversion, ["inverter", "images/s", "ms/image", "time / encoder's", "peak MB"]),
        f"## Training steps (batch {b.train_batch}, {b.train_steps} timed steps after 2 warm-up)", "",
        "`speed vs reference` = images/s of the method's train_step through Accelerate ÷ images/s of a naive eager "
        "fp32 loop over copies of the same nets (the method's step does more work: R1, encoder losses, …).", "",
        md_table(training, ["method", "images/s", "reference", "reference images/s", "speed vs reference", "peak MB",
                            "reference peak MB"]),
        "## Inversion vs batch size", "", md_table(growth_batch), "![time](speed_batch_time.png) "
        "![memory](speed_batch_memory.png)", "",
        f"## Inversion vs image size ({b.n_images} images)", "", md_table(growth_size),
        "![time](speed_image_size_time.png) ![memory](speed_image_size_memory.png)", ""])


# ---------------------------------------------------------------- suite: train-speed
def bench_train_speed(out: Path, *, quick: bool = False, seed: int = 0, command: str | None = None,
                      budget: str = "cpu", log: Log = lambda m: None, **measure) -> dict:
    """``experiments.train_speed`` on ``budget``'s nets (quick: no compile, 3 s a row), written to train-speed.md."""
    if quick:
        measure = {"modes": [m for m in MODES if not m.compile], "settings": SpeedSettings(warmup=2, seconds=3.0),
                   **measure}
    r = measure_train_speed(budget=budget_named(budget), seed=seed, log=log, **measure)
    text = header("train-speed", seed=seed, command=command) + train_speed_report(r, budget)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train-speed.md", text)
    return {**r, "report": out / "train-speed.md", "text": text}


def train_speed_report(r: dict, budget: str) -> str:
    s, peaks = r["settings"], r["peaks"]
    return "\n".join([
        f"torch threads {r['threads']} · budget `{budget}` nets · fresh weights (speed does not depend on them) · "
        f"{s.warmup} warm-up steps (compilation happens there), then ≥ {s.min_steps} steps and ≥ {s.seconds:g} s "
        "timed per row · FLOPs counted once per workload in fp32 eager with torch.utils.flop_counter's formulas "
        "(convolutions and matmuls, forward and backward).", "",
        f"Peak (square {s.peak_size} matmul, same process): fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s; `fraction of peak` divides by the peak of the mode's dtype. "
        "`step-1 loss rel. diff`: the largest relative difference of the first step's losses from fp32 eager "
        "(same weights, same latents).", "",
        md_table(r["rows"], ["workload", "mode", "steps/s", "images/s", "× fp32 eager", "GFLOP/step", "GFLOP/s",
                             "fraction of peak", "step-1 loss rel. diff", "timed steps", "note"], digits=3),
        f"Fastest mode that runs every workload with step-1 losses within {r['tolerance']:g} (relative) of fp32 "
        f"eager: **{r['best'].name}**, {r['gain']:.2f}× fp32 eager (geometric mean over the workloads).", ""])


# ---------------------------------------------------------------- suites on trained runs
@dataclasses.dataclass(frozen=True)
class TableBudget:
    gan_steps: int
    train_steps: int  # aegan / regression / projection
    joint_steps: int  # bigan, dlsgan, dedgan (the same budget for each)
    optimize_steps: int
    refine_steps: int
    n: int
    batch_size: int
    net: dict = dataclasses.field(default_factory=dict)


TABLE_BUDGETS = {
    "full": TableBudget(3000, 1500, 3000, 500, 100, 256, 32),
    # quick: bigan, dlsgan and dedgan run at 1–2 s a step on a busy 2-core CPU (measured), hence 100 steps each
    "quick": TableBudget(300, 200, 100, 100, 20, 64, 32),
    "test": TableBudget(4, 4, 4, 3, 2, 8, 16, dict(image_size=16, width=8, latent_dim=8)),
}


def frozen_generator(data: str, out: Path, *, steps: int, seed: int, batch_size: int, net: dict | None = None,
                     show_progress: bool = False, log: Log = lambda m: None) -> Path:
    """The one frozen generator every post-hoc method inverts: a GAN trained on ``data`` (reused if present)."""
    log(f"the frozen generator: gan, {steps} steps on {data}")
    return ensure_trained("gan", out / "generator", steps=steps, log=log, data=data, seed=seed,
                          show_progress=show_progress, net_overrides=net or None,
                          train_overrides=dict(batch_size=batch_size, checkpoint_every=steps, sample_every=steps,
                                               eval_every=steps, eval_samples=16))


TABLE1_METHODS = ("aegan", "regression", "bigan", "optimize", "hybrid", "dlsgan", "dedgan", "projection")


def bench_table1(data: str, out: Path, *, quick: bool = False, budget: TableBudget | None = None, seed: int = 0,
                 methods=TABLE1_METHODS, command: str | None = None, show_progress: bool = False,
                 log: Log = lambda m: None) -> dict:

    b = budget or TABLE_BUDGETS["quick" if quick else "full"]
    out.mkdir(parents=True, exist_ok=True)
    gen = frozen_generator(data, out, steps=b.gan_steps, seed=seed, batch_size=b.batch_size, net=b.net,
                           show_progress=show_progress, log=log)
    settings = CompareSettings(train_steps=b.train_steps, bigan_steps=b.joint_steps, optimize_steps=b.optimize_steps,
                               refine_steps=b.refine_steps, batch_size=b.batch_size, n_generated=b.n, n_real=b.n,
                               seed=seed)
    results = inverters_on_the_generator(gen, data, out, methods, settings, show_progress=show_progress, log=log)
    generator = load_generator_run(gen)
    real = real_test_images(data, generator, b.n)
    results.update(joint_methods(generator, data, out, methods, settings, real, show_progress=show_progress, log=log))
    text = header("table1", seed=seed, command=command, data=data) + table1_report(results, gen, b, n_real=len(real))
    atomic_write_text(out / "table1.md", text)
    return {"results": results, "report": out / "table1.md", "text": text}


def inverters_on_the_generator(gen: Path, data: str, out: Path, methods, settings: CompareSettings, *,
                               show_progress: bool, log: Log) -> dict[str, dict]:
    """``compare``'s methods and the projection network (regression on a ResNet18 backbone) on the one frozen
    generator: {method: {"generated": metrics, "real": metrics, …}}."""
    results: dict[str, dict] = {}
    base = [m for m in methods if m in ("aegan", "regression", "bigan", "optimize", "hybrid")]
    if base:
        results.update({k: v for k, v in compare(gen, methods=base, out=out / "compare", data=data, settings=settings,
                                                 show_progress=show_progress, log=log).items() if k != "summary"})
    if "projection" in methods:
        log("projection network (regression, resnet18 backbone)")
        r = compare(gen, methods=["regression"], out=out / "projection", data=data, show_progress=show_progress,
                    settings=dataclasses.replace(settings, regression_options={"backbone": "resnet18"}), log=log)
        results["projection"] = r["regression"]
    return results


def joint_methods(generator: InversionModel, data: str, out: Path, methods, settings: CompareSettings, real: torch.Tensor, *,
                  show_progress: bool, log: Log) -> dict[str, dict]:
    """dlsgan and dedgan, each trained with the generator's nets on the same data and budget; like bigan, their
    "generated" row is their own G's samples from the same latent seed."""
    net = dataclasses.asdict(generator.config.net)
    results: dict[str, dict] = {}
    for name in (m for m in methods if m in ("dlsgan", "dedgan")):
        log(f"training {name} on {data} ({settings.bigan_steps} steps, its own generator)")
        # DED-GAN's latents are angles: the same nets on its spherical prior
        model = trained_model(name, out / "runs" / name, settings=settings, data=data, steps=settings.bigan_steps,
                              net_overrides={**net, "prior": "spherical"} if name == "dedgan" else net, log=log,
                              show_progress=show_progress)
        own = generated_batch(model, settings.n_generated, settings.seed)
        results[name] = {"loss": joint_loss(model), "generated": reconstruction_report(model, own)[0],
                         "real": reconstruction_report(model, real)[0]}
    return results


def joint_loss(model: InversionModel) -> str:
    """The encoder loss of a jointly trained method's row, in words (compare's rows carry theirs)."""
    if model.config.method == "dlsgan":
        return f"DLS latent loss on {model.method.options.encoder_loss_on} + NSGAN (joint)"
    return "tan-angle embedding loss + NSGAN (joint)"  # dedgan


def table1_report(results: dict[str, dict], gen: Path, b: TableBudget, *, n_real: int) -> str:
    """The body of table1.md: the budgets, the projection network's backbone init, then the generated and the real
    images' tables with the loss of each row (LPIPS when available)."""
    available, note = lpips_status()
    cols = (["method", "loss", "dhash_similarity", "psnr", "ssim"] + (["lpips"] if available else [])
            + ["invert_ms_per_image"])

    def rows(split):
        return [{"method": m, "loss": r.get("loss", ""), **{k: v for k, v in r[split].items()
                                                            if isinstance(v, (int, float))}}
                for m, r in results.items() if r.get(split)]

    projection = results.get("projection", {}).get("backbone_init")

    return "\n".join([
        f"One frozen generator ({gen}, gan {b.gan_steps} steps). aegan/regression/projection: {b.train_steps} steps "
        f"on it; optimize: {b.optimize_steps} Adam steps; hybrid: encoder + {b.refine_steps} steps. bigan, dlsgan, "
        f"dedgan train their own G on the same data with the same budget ({b.joint_steps} steps): their generated "
        "row is their own G's samples from the same latent seed.", "",
        *([f"Projection network backbone (ResNet18): {projection}.", ""] if projection else []),
        f"## Reconstructions of generated samples (n={b.n})", "", md_table(rows("generated"), cols),
        f"## Reconstructions of real test images (n={n_real})", "", md_table(rows("real"), cols),
        "" if available else f"LPIPS not reported: {note}", ""])


def bench_table2(data: str, out: Path, *, quick: bool = False, budget: TableBudget | None = None, seed: int = 0,
                 command: str | None = None, show_progress: bool = False, log: Log = lambda m: None) -> dict:

    b = budget or TABLE_BUDGETS["quick" if quick else "full"]
    out.mkdir(parents=True, exist_ok=True)
    gen = frozen_generator(data, out, steps=b.gan_steps, seed=seed, batch_size=b.batch_size, net=b.net,
                           show_progress=show_progress, log=log)
    settings = CompareSettings(train_steps=b.train_steps, batch_size=b.batch_size, seed=seed, n_generated=b.n)
    log(f"training aegan on the generator ({b.train_steps} steps)")
    trained_model("aegan", out / "runs" / "aegan", settings=settings, generator=gen, steps=b.train_steps,
                  show_progress=show_progress, log=log)
    limit = None if not quick else 2000
    if budget is not None:
        limit = 4 * b.n
    r = evaluate_search(out / "runs" / "aegan", data, index_dir=out / "index", queries=b.n, k=10, limit=limit,
                        seed=seed, show_progress=show_progress, log=log)
    sim = [{"features": m, "label similarity@10": v} for m, v in r["label_similarity"].items()]
    rob = [{"features": m, "perturbation": kind, **v} for m, kinds in r["robustness"].items() for kind, v in kinds.items()]
    text = header("table2", seed=seed, command=command, data=data) + "\n".join([
        f"Index: {r['indexed']} train images; {r['queries']} test queries; k={r['k']}. Latents from aegan "
        f"({b.train_steps} steps) on a gan ({b.gan_steps} steps).", "", "## Label similarity of the top-10", "",
        md_table(sim), "## Robustness: rank of the original under perturbations", "", md_table(rob)])
    atomic_write_text(out / "table2.md", text)
    return {"results": r, "report": out / "table2.md", "text": text}


def bench_dlsgan(data: str, out: Path, *, quick: bool = False, seed: int = 0, command: str | None = None,
                 show_progress: bool = False, log: Log = lambda m: None, **kwargs) -> dict:

    r = run_ablation("dlsgan", data=data, out=out / "dlsgan", quick=quick, seed=seed, show_progress=show_progress,
                     log=log, **kwargs)
    table = r["table"]
    table_text = Path(table).read_text() if isinstance(table, (str, Path)) and Path(table).is_file() else str(table)
    figures = "\n".join(f"![{Path(f).stem}](dlsgan/{Path(f).name})" for f in r["figures"])
    text = header("dlsgan", seed=seed, command=command, data=data) + table_text + "\n" + figures + "\n"
    atomic_write_text(out / "dlsgan.md", text)
    return {**r, "report": out / "dlsgan.md", "text": text}


# ---------------------------------------------------------------- suite: scale
def bench_scale(out: Path, *, quick: bool = False, sizes: tuple[int, ...] | None = None, dim: int = 100,
                queries: int = 200, k: int = 10, seed: int = 0, command: str | None = None,
                log: Log = lambda m: None) -> dict:

    sizes = sizes or ((10_000, 100_000) if quick else (10_000, 100_000, 1_000_000))
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        log(f"scale: {n} latents")
        base = rng.uniform(-1, 1, size=(n, dim)).astype(np.float32)
        q = rng.uniform(-1, 1, size=(queries, dim)).astype(np.float32)
        rows += search_latency(base, q, k)
    curves = {}
    for row in rows:
        kind = "flat" if row["index"] == "flat" else row["index"].split(" ", 1)[1].strip("()")
        xs, ys = curves.setdefault(f"{kind} p50", ([], []))
        xs.append(row["latents"])
        ys.append(max(row["p50 ms"], 1e-4))
    fig = _plot(out / "scale_latency.png", "single-query latency", "latents", "p50 ms", curves, logx=False)
    text = header("scale", seed=seed, command=command) + "\n".join([
        f"Uniform random latents in [-1,1]^{dim}; {queries} single-vector queries each; recall@{k} against the "
        "exact (flat) neighbours. IVF parameters from apps.search.ivf_params (what `ganinv index --ivf` builds); "
        f"faiss threads: {_faiss_threads()}.", "", md_table(rows), "![latency](scale_latency.png)", ""])
    atomic_write_text(out / "scale.md", text)
    return {"rows": rows, "report": out / "scale.md", "figures": [fig], "text": text}


def search_latency(base: np.ndarray, queries: np.ndarray, k: int) -> list[dict]:
    """One row per index over ``base`` — exact flat, then IVF-PQ at its default nprobe (what `ganinv index --ivf`
    uses) and 2× / 4× it, recall bought with latency: single-query p50/p99 ms, recall@k against the flat index's
    neighbours, and the IVF build time (on its first row)."""
    n, dim = base.shape
    flat = new_float_index(dim, "flat")
    flat.add(base)
    truth = flat.search(queries, k)[1]
    params = ivf_params(n, dim)
    start = time.perf_counter()
    ivf = train_ivf(base, params)
    ivf.add(base)
    build_s = time.perf_counter() - start
    probes = sorted({min(params["nprobe"] * f, params["nlist"]) for f in (1, 2, 4)})
    variants = [("flat", flat, None, 0.0)] + [
        (f"IVF{params['nlist']}-PQ (nprobe {p})", ivf, p, build_s if i == 0 else 0.0) for i, p in enumerate(probes)]
    rows = []
    for name, index, nprobe, build in variants:
        if nprobe is not None:
            set_search_params(index, params, nprobe)
        latencies, found = [], []
        for query in queries:
            t0 = time.perf_counter()
            found.append(index.search(query[None], k)[1][0])
            latencies.append(1000 * (time.perf_counter() - t0))
        recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))
        rows.append({"latents": n, "index": name, "p50 ms": float(np.percentile(latencies, 50)),
                     "p99 ms": float(np.percentile(latencies, 99)), f"recall@{k}": recall, "build s": build})
    return rows


def _faiss_threads() -> int:
    try:
        return faiss_module().omp_get_max_threads()  # the search extra (the suite that calls this needs it anyway)
    except Exception:  # pragma: no cover
        return -1


def run_suite(suite: str, *, data: str | None, out: str | Path, quick: bool = False, seed: int = 0,
              command: str | None = None, show_progress: bool = False, log: Log = lambda m: None) -> dict:
    out = Path(out)
    if suite not in SUITES:
        raise GaninvError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    if suite in ("table1", "table2", "dlsgan") and not data:
        raise GaninvError(f"bench {suite} trains on real images: give --data (e.g. mnist)")
    if suite == "speed":
        return bench_speed(out, quick=quick, seed=seed, command=command, log=log)
    if suite == "scale":
        return bench_scale(out, quick=quick, seed=seed, command=command, log=log)
    if suite == "train-speed":
        return bench_train_speed(out, quick=quick, seed=seed, command=command, log=log)
    fn = {"table1": bench_table1, "table2": bench_table2, "dlsgan": bench_dlsgan}[suite]
    return fn(data, out, quick=quick, seed=seed, command=command, show_progress=show_progress, log=log)


__all__ = ["run_suite", "bench_speed", "bench_table1", "bench_table2", "bench_dlsgan", "bench_scale",
           "speed_options", "SUITES", "peak_memory_mb"]
