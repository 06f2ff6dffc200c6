"""What every part of the reproduction shares: the budgets, the suite's folder and its progress file.

``DIR/progress.json`` says which part runs now and which are done (with the wall time of the attempt that
finished each); ``DIR/results/PART.json`` holds a finished part's numbers, written atomically when the part ends,
so a rerun skips it; every trained model is a normal run directory under ``DIR/runs`` (or ``DIR/dlsgan`` for the
ablation grid) that ``ensure_trained`` reuses or resumes. A kill at any instant loses at most the current part's
unfinished evaluation, never a finished result or more than one checkpoint interval of training.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write_json, make_dir
from ganinv.core.viz import labelled_grid, save_png
from ganinv.data import open_dataset
from ganinv.methods import method_class
from ganinv.methods.base import parse_options
from ganinv.training.launch import ensure_trained
from ganinv.training.loop import native_bf16

FIGURES = "reproduction"  # DIR/reproduction/*.png, named so from reproduction.md (and from docs/ when copied there)


@dataclass(frozen=True)
class Budget:
    """The sizes and step counts of one budget; the report prints every field."""

    name: str
    # AEGAN (Luo et al.): DCGAN tables 3–5, the inverters, Table 1, Table 2, Fig. 5
    image_size: int
    width: int  # the paper's 64
    gan_steps: int
    batch_size: int  # the paper's 64, Adam lr 2e-4 β1 0.5 for every DCGAN-family run
    encoder_steps: int  # aegan and direct regression
    bigan_steps: int
    optimize_steps: int  # Creswell & Bharath's optimisation (BCE, eq. 2)
    refine_steps: int  # hybrid: encoder + this many optimisation steps
    n_generated: int  # generated samples every inverter reconstructs
    n_optimize: int | None  # images per set that optimisation and hybrid invert (None: as many as the encoders)
    # DLSGAN (Cho & Krzyzak), the direction-embedding GAN (Cho), projection networks (Arfeen & Zhang)
    style_size: int
    style_width: int
    style_latent: int  # d_z (the direction-embedding GAN uses d_z − 1 angles, so that its n = d_z)
    style_batch: int
    style_epochs: int
    evals_per_epoch: int
    priors: tuple[str, ...]  # the ablation's priors: ("normal",) is the N-prior half
    projection_steps: int
    finetune_steps: int  # steps of the real-image reconstruction fine-tune (Arfeen & Zhang §4.3)
    recon_weight: float  # its λ (the paper does not state it)
    fd_samples: int  # generated images for the FD / KID (real side: the test split, up to as many)
    database: int = 20_000  # Table 2: the first N train images (the paper's 20,000)
    queries: int = 64  # Table 2: queries from outside the database (the test split)
    clusters: int = 8
    n_figure: int = 8  # images per figure row
    dedgan_epochs: int = 0  # the direction-embedding GAN's long run (0: style_epochs); its short run has style_epochs
    # how every sub-run trains (``ganinv bench train-speed`` chose the cpu budget's); compile only where the method
    # allows it (``Method.differentiates_twice``: not through an R1 penalty)
    precision: str = "no"
    channels_last: bool = False
    compile: bool = False


BUDGETS = {
    # every sub-run at a few steps on 16 px: the test of the whole pipeline
    "smoke": Budget("smoke", image_size=16, width=4, gan_steps=2, batch_size=4, encoder_steps=2, bigan_steps=2,
                    optimize_steps=2, refine_steps=1, n_generated=8, n_optimize=4, style_size=16, style_width=4,
                    style_latent=8, style_batch=4, style_epochs=1, evals_per_epoch=1, priors=("normal",),
                    projection_steps=2, finetune_steps=2, recon_weight=10.0, fd_samples=16, queries=4, clusters=2,
                    n_figure=4, dedgan_epochs=2),
    # ≤ 150 minutes on 2 CPU cores: the papers' 64 px DCGAN at half width; the style GANs at 32 px; bf16 autocast (where
    # the CPU runs bf16 natively: Suite.speed) and channels_last, the fastest mode every part can run (`ganinv bench
    # train-speed`, docs/benchmarks.md), whose
    # gain bought 2.5× the DCGAN's steps (2,000 before), 3× BiGAN's (500) and DED-GAN's long run (36 epochs)
    "cpu": Budget("cpu", image_size=64, width=32, gan_steps=5000, batch_size=64, encoder_steps=500, bigan_steps=1500,
                  optimize_steps=200, refine_steps=50, n_generated=1000, n_optimize=128, style_size=32,
                  style_width=16, style_latent=64, style_batch=16, style_epochs=2, evals_per_epoch=2,
                  priors=("normal",), projection_steps=600, finetune_steps=200, recon_weight=10.0, fd_samples=5000,
                  dedgan_epochs=36, precision="bf16", channels_last=True),
    # the papers' sizes on one H100-class GPU in about 10 minutes: DCGAN 64 px width 64; style GANs 64 px, d_z 512
    "gpu": Budget("gpu", image_size=64, width=64, gan_steps=3000, batch_size=64, encoder_steps=2000, bigan_steps=2000,
                  optimize_steps=500, refine_steps=100, n_generated=1000, n_optimize=None, style_size=64,
                  style_width=32, style_latent=512, style_batch=32, style_epochs=2, evals_per_epoch=4,
                  priors=("normal", "uniform_sqrt3"), projection_steps=3000, finetune_steps=1000, recon_weight=10.0,
                  fd_samples=5000),
    # the papers' epochs: DLSGAN's 50 at 128 px, d_z 512, batch 16 (§4.1); the DCGAN family 25 epochs of 64
    "full": Budget("full", image_size=64, width=64, gan_steps=25 * 2532, batch_size=64, encoder_steps=20_000,
                   bigan_steps=25 * 2532, optimize_steps=1000, refine_steps=200, n_generated=10_000, n_optimize=None,
                   style_size=128, style_width=64, style_latent=512, style_batch=16, style_epochs=50,
                   evals_per_epoch=1, priors=("normal", "uniform_sqrt3"), projection_steps=50_000,
                   finetune_steps=10_000, recon_weight=10.0, fd_samples=50_000),
}


def budget_named(name: str) -> Budget:
    if name not in BUDGETS:
        raise GaninvError(f"unknown --budget {name!r}; choose one of {', '.join(BUDGETS)}")
    return BUDGETS[name]


Log = Callable[[str], None]


@dataclass
class Suite:
    """One reproduction: its data, folder, budget and log; the parts read and write through it."""

    data: str
    out: Path
    budget: Budget
    seed: int = 0
    log: Log = print
    show_progress: bool = False
    command: str = ""

    # --- places ---
    @property
    def runs(self) -> Path:
        return self.out / "runs"

    def figure(self, name: str) -> Path:
        return self.out / FIGURES / name

    def results_path(self, part: str) -> Path:
        return self.out / "results" / f"{part}.json"

    def result(self, part: str) -> dict:
        """A finished part's results (the parts run in order, so an earlier part's are always there)."""
        return json.loads(self.results_path(part).read_text())

    # --- data ---
    channels = 3  # CelebA is RGB

    def test_images(self, image_size: int, n: int | None = None) -> torch.Tensor:
        """The test split at ``image_size`` (all of it unless ``n``): what every real-image figure is measured on."""
        test = open_dataset(self.data, image_size=image_size, channels=self.channels, split="test")
        return test.tensors(min(n or len(test), len(test)))[0]

    def train_size(self, image_size: int) -> int:
        return len(open_dataset(self.data, image_size=image_size, channels=self.channels, split="train"))

    # --- training ---
    def trained(self, method: str, out: Path, *, steps: int, **kwargs) -> Path:
        """``ensure_trained`` with the suite's seed, log and progress; checkpoints 8 times a run (resumable)."""
        overrides = {"checkpoint_every": max(steps // 8, 1), "sample_every": steps, "eval_every": steps,
                     **self.speed(method, kwargs.get("options")), **kwargs.pop("train_overrides", {})}
        return ensure_trained(method, out, steps=steps, log=self.log, seed=self.seed,
                              show_progress=self.show_progress, train_overrides=overrides, **kwargs)

    def speed(self, method: str, options: dict | None = None) -> dict:
        """The budget's precision, memory format and compilation as train overrides (compile only where the method
        can be compiled under these options)."""
        b, cls = self.budget, method_class(method)
        compiles = b.compile and not cls.differentiates_twice(parse_options(cls.Options, options or {}, cls.name))
        precision = b.precision if b.precision != "bf16" or native_bf16() else "no"  # emulated bf16 is slower
        return {"precision": precision, "channels_last": b.channels_last, "compile": compiles}

    def save_grid(self, name: str, rows: list[torch.Tensor], labels: list[str], *, title: str,
                  column_labels: list[str] | None = None) -> str:
        """A labelled PNG under DIR/reproduction/; returns its path relative to DIR (as reproduction.md links it)."""
        n = self.budget.n_figure
        save_png(labelled_grid([r[:n] for r in rows], labels, title=title, column_labels=column_labels),
                 self.figure(name))
        return f"{FIGURES}/{name}"


# ------------------------------------------------------------------------------------------------ progress
class Progress:
    """DIR/progress.json: the budget and command, every part's state, and the part running now."""

    def __init__(self, suite: Suite, parts: list[str]):
        self.path = suite.out / "progress.json"
        self.suite = suite
        previous = self.read()
        self.check_same_budget(previous)
        self.state = previous or {"data": suite.data, "parts": {}}
        self.state.update(budget=dataclasses.asdict(suite.budget), command=suite.command)
        for p in parts:
            self.state["parts"].setdefault(p, {"status": "pending"})

    def read(self) -> dict | None:
        return json.loads(self.path.read_text()) if self.path.is_file() else None

    def check_same_budget(self, previous: dict | None) -> None:
        if previous is None:
            return
        budget = previous.get("budget", {}).get("name")
        if budget != self.suite.budget.name or previous.get("data") != self.suite.data:
            raise GaninvError(f"{self.suite.out} holds a reproduction with --budget {budget} on "
                              f"{previous.get('data')}; continue it with those, or choose another --out")

    def start(self, part: str) -> float:
        entry = self.state["parts"][part]
        entry.update(status="running", attempts=entry.get("attempts", 0) + 1, started=_now())
        self.write(part)
        return time.perf_counter()

    def finish(self, part: str, started: float) -> None:
        self.state["parts"][part].update(status="done", seconds=round(time.perf_counter() - started, 1),
                                         finished=_now())
        self.write(part)

    def write(self, part: str) -> None:
        """Write this part's entry over the file as it is now: several processes may run disjoint parts
        (``reproduce(parts=…)``), each rewriting only its own entries."""
        current = self.read() or self.state
        current["parts"][part] = self.state["parts"][part]
        self.state["parts"] = {**current["parts"], **{part: self.state["parts"][part]}}
        make_dir(self.path.parent)
        atomic_write_json(self.path, {**self.state, "parts": self.state["parts"]})


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
