"""``ganinv ablate dlsgan``: the DLSGAN paper's (Cho & Krzyzak) ablation grid — DLS / No DLS × encoder loss on
D / DG, for each prior — trained with the same seed and budget, evaluated ``evals_per_epoch`` times per epoch,
drawn as one PNG per figure family and summarised in a markdown table of final values.

The paper's figures 1–15 plot, against epoch: the average encoder loss L_enc, the differential entropy of the
scaled latent, PSNR/SSIM of reconstructions of generated and of real test images, and FID. Here FID is FID only
when Inception weights are on disk; otherwise FD-domain (metrics/fid.py), and the figure says which. Beside it,
on the same features, the kernel distance (KID of "Demystifying MMD GANs", Bińkowski et al.; KID-domain on the
domain features): unbiased at small N, where the Fréchet distance is biased upward by tens of points — which is
also why the FD uses ``fd_samples`` (5000) generated images, against up to that many real test images.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write, atomic_write_text
from ganinv.core.rundir import METRICS
from ganinv.data import open_dataset
from ganinv.metrics.fid import feature_extractor, frechet_distance, kernel_distance, kernel_name
from ganinv.training.launch import default_channels, ensure_trained

PRIORS = ("normal", "uniform_sqrt3")
CELLS = [(prior, dls, on) for prior in PRIORS for dls in (True, False) for on in ("D", "DG")]
FD_SAMPLES = 5000  # generated images per FD/KID; at 500 the FD is biased upward by tens of points
FD_BATCH = 500  # generated images per forward pass: bounds memory whatever fd_samples is
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Bińkowski et al.'s (and torchmetrics') defaults


@dataclass(frozen=True)
class Budget:
    epochs: int
    image_size: int
    width: int
    latent_dim: int
    batch_size: int = 16


BUDGETS = {
    "quick": Budget(epochs=3, image_size=16, width=8, latent_dim=32, batch_size=32),
    "full": Budget(epochs=20, image_size=32, width=16, latent_dim=64, batch_size=16),
}

# (figure family, file stem, metrics.jsonl kind, key) — DLSGAN paper figs. 1–15
FAMILIES = [
    ("encoder loss L_enc (epoch mean)", "enc_loss", "epoch", "enc_loss"),
    ("differential entropy of Z∘s (nats)", "entropy", "epoch", "latent_entropy"),
    ("PSNR, generated images (dB)", "psnr_gen", "eval", "generated/psnr"),
    ("SSIM, generated images", "ssim_gen", "eval", "generated/ssim"),
    ("PSNR, real test images (dB)", "psnr_test", "eval", "real/psnr"),
    ("SSIM, real test images", "ssim_test", "eval", "real/ssim"),
]


@dataclass(frozen=True)
class Distances:
    """What the FD and KID of a run measure: their names, metrics.jsonl keys and sample sizes."""
    fd_name: str  # "FID" or "FD-domain"
    fake_n: int  # generated images per evaluation
    real_n: int  # real test images (fewer than asked when the test split is smaller)
    asked: int  # the fd_samples asked for

    @property
    def kid_name(self) -> str:
        return kernel_name(self.fd_name)

    @property
    def fd_key(self) -> str:
        return "fid" if self.fd_name == "FID" else "fd_domain"

    @property
    def kid_key(self) -> str:
        return "kid" if self.fd_name == "FID" else "kid_domain"

    @property
    def kid_subset(self) -> int:
        return min(KID_SUBSET_SIZE, self.fake_n, self.real_n)

    def note(self) -> str:
        """e.g. "FD-domain and KID-domain from 5000 generated vs 179 real test images (all the test split has)"."""
        short = " (all the test split has)" if self.real_n < self.asked else ""
        return (f"{self.fd_name} and {self.kid_name} from {self.fake_n} generated vs {self.real_n} real test "
                f"images{short}")


def cell_name(prior: str, dls: bool, on: str) -> str:
    return f"{'N' if prior == 'normal' else 'U'}-{'DLS' if dls else 'noDLS'}-{on}"


@torch.no_grad()
def generated_features(model, extractor, n: int, seed: int, batch_size: int = FD_BATCH) -> Tensor:
    """Features of n generated images from seeded latents (the same images at every evaluation), generated
    ``batch_size`` at a time so only the features of all n are ever held."""
    latents = model.sample(n, generator=torch.Generator().manual_seed(seed))
    return torch.cat([extractor(model.generate(chunk)) for chunk in latents.split(batch_size)])


def fd_evaluator(extractor, real_features: Tensor, distances: Distances, seed: int) -> Callable:
    """FD and KID (mean and its std over subsets) of generated images against the real features, which are
    extracted once and reused at every evaluation."""
    def evaluate(model) -> dict[str, float]:
        fake = generated_features(model, extractor, distances.fake_n, seed)
        kid, kid_std = kernel_distance(real_features, fake, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE,
                                       seed=seed)
        return {distances.fd_key: frechet_distance(real_features, fake), distances.kid_key: kid,
                f"{distances.kid_key}_std": kid_std}

    return evaluate


def cell_overrides(budget: Budget, channels: int, prior: str, interval: int, speed: dict | None = None) -> dict:
    """A cell's nets (the budget's, with its prior) and training settings (evaluated, sampled and checkpointed every
    ``interval`` steps), as ``train_run``'s overrides."""
    return dict(net_overrides={"image_size": budget.image_size, "width": budget.width, "channels": channels,
                               "latent_dim": budget.latent_dim, "prior": prior},
                train_overrides={"batch_size": budget.batch_size, "eval_every": interval, "sample_every": interval,
                                 "checkpoint_every": interval, "eval_samples": 256, **(speed or {})})


def run_ablation(method: str, *, data: str, out: str | Path, quick: bool = False, seed: int = 0,
                 epochs: int | None = None, fid_weights: str | None = None, show_progress: bool = True,
                 log: Callable[[str], None] = print, budget: Budget | None = None, cells=CELLS,
                 fd_samples: int = FD_SAMPLES, evals_per_epoch: int = 1, speed: dict | None = None) -> dict:
    """Train (or reuse, or resume) every cell and draw the curves. ``fd_samples``: generated images per FD/KID
    (the real side: up to as many test images). ``evals_per_epoch``: evaluations (and samples, checkpoints) per
    epoch, so that a 2-epoch CPU budget still draws a curve; x axes stay in (fractional) epochs.

    Returns table (ablation.md), figures, curves (cell → stem → [(epoch, value)]), fd_name, kid_name, fd_*_n."""
    if method != "dlsgan":
        raise GaninvError(f"the ablation grid is the DLSGAN paper's, for dlsgan only; got {method!r}")
    if fd_samples < 2 or evals_per_epoch < 1:
        raise GaninvError(f"fd_samples must be at least 2 and evals_per_epoch at least 1 (got {fd_samples}, "
                          f"{evals_per_epoch})")
    out = Path(out)
    budget = budget or BUDGETS["quick" if quick else "full"]
    epochs = epochs or budget.epochs
    channels = default_channels(data)
    train_split = open_dataset(data, image_size=budget.image_size, channels=channels, split="train")
    steps_per_epoch = len(train_split) // budget.batch_size
    steps = epochs * steps_per_epoch
    interval = max(1, steps_per_epoch // evals_per_epoch)
    evaluator, distances = fd_during_training(data, budget, channels, fid_weights, seed, log, fd_samples)
    families = FAMILIES + [(f"{distances.fd_name} of generated images", "fd", "eval", distances.fd_key),
                           (f"{distances.kid_name} of generated images", "kid", "eval", distances.kid_key)]
    window = latent_scale_window(steps)
    log(f"latent-scale window: {window} batches (the paper's 512, scaled to a {steps}-step run)")
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for i, (prior, dls, on) in enumerate(cells, start=1):
        name = cell_name(prior, dls, on)
        log(f"[{i}/{len(cells)}] {name}: {epochs} epochs × {steps_per_epoch} steps, evaluated every {interval}")
        ensure_trained("dlsgan", out / name, steps=steps, log=log, data=data, seed=seed, show_progress=show_progress,
                       evaluators=[evaluator], options={"dls": dls, "encoder_loss_on": on, "window_batches": window},
                       **cell_overrides(budget, channels, prior, interval, speed))
        curves[name] = read_curves(out / name, steps_per_epoch, families)
    figures = [plot_family(out, title, stem, curves) for title, stem, _, _ in families]
    table = write_table(out, curves, families, distances, budget, epochs, data, seed, window, evals_per_epoch)
    atomic_write_text(out / "curves.json", json.dumps(curves))
    return {"table": table, "figures": figures, "curves": curves, "fd_name": distances.fd_name,
            "kid_name": distances.kid_name, "fd_real_n": distances.real_n, "fd_fake_n": distances.fake_n}


def fd_during_training(data: str, budget: Budget, channels: int, fid_weights: str | None, seed: int,
                       log: Callable[[str], None], fd_samples: int = FD_SAMPLES) -> tuple[Callable, Distances]:
    """(evaluator, what it measures): FD and KID of ``fd_samples`` generated images against up to ``fd_samples``
    images of the test split, at every evaluation — real FID/KID only when Inception weights are on disk."""
    test, _ = open_dataset(data, image_size=budget.image_size, channels=channels, split="test").tensors(fd_samples)
    extractor, note = feature_extractor(data, image_size=budget.image_size, channels=channels, fid_weights=fid_weights)
    log(note if extractor.name == "FID" else f"FD-domain: {note}")
    distances = Distances(extractor.name, fake_n=fd_samples, real_n=len(test), asked=fd_samples)
    log(distances.note())
    return fd_evaluator(extractor, extractor(test), distances, seed), distances


def latent_scale_window(steps: int) -> int:
    """The DLS variance window, in batches, for a run of ``steps``. The paper's window (512 batches) is ~0.1 % of
    its 50-epoch run; a CPU-sized run of a few hundred steps would never see it fill (s ≈ 1 throughout,
    measured), so the window is scaled to the run (and recorded in its options)."""
    return min(512, max(16, steps // 20))


def read_curves(run: Path, steps_per_epoch: int, families) -> dict[str, list[tuple[float, float]]]:
    lines = [json.loads(line) for line in (run / METRICS).read_text().splitlines() if line.strip()]
    curves: dict[str, list[tuple[float, float]]] = {}
    for _, stem, kind, key in families:
        points = {line["step"] / steps_per_epoch: line[key] for line in lines if line["kind"] == kind and key in line}
        curves[stem] = sorted(points.items())
    return curves


def plot_family(out: Path, title: str, stem: str, curves: dict) -> Path:
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, series in curves.items():
        points = series.get(stem, [])
        if points:
            x, y = zip(*points)
            ax.plot(x, y, marker="o", markersize=3, label=name, color=_colour(name),
                    linestyle="-" if name.endswith("-DG") else "--")
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out / f"{stem}.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def _colour(name: str) -> str:
    return {("N", "DLS"): "tab:blue", ("N", "noDLS"): "tab:orange", ("U", "DLS"): "tab:green",
            ("U", "noDLS"): "tab:red"}[tuple(name.split("-")[:2])]


def write_table(out: Path, curves: dict, families, distances: Distances, budget: Budget, epochs: int, data: str,
                seed: int, window: int, evals_per_epoch: int = 1) -> Path:
    header = "| run | " + " | ".join(stem for _, stem, _, _ in families) + " |"
    rule = "|" + "---|" * (len(families) + 1)
    rows = []
    for name, series in curves.items():
        finals = [series.get(stem) for _, stem, _, _ in families]
        rows.append(f"| {name} | " + " | ".join(_fmt(v[-1][1]) if v else "—" for v in finals) + " |")
    domain = " (not comparable with published FID/KID)" if distances.fd_name != "FID" else ""
    settings = (
        f"{epochs} epochs, evaluated {evals_per_epoch}× per epoch, {budget.image_size} px, width {budget.width}, "
        f"d_z {budget.latent_dim}, batch {budget.batch_size}, latent-scale window {window} batches, seed {seed}. "
        "N = N(0,1) prior, U = U(−√3,√3); DLS / noDLS; encoder loss on D or DG. "
        f"`fd` is {distances.fd_name} and `kid` is {distances.kid_name}{domain}: the kernel distance of "
        "\"Demystifying MMD GANs\" (Bińkowski et al.), unbiased at small N, the mean over "
        f"{KID_SUBSETS} subsets of {distances.kid_subset}. {distances.note()}."
    )
    text = "\n".join([
        f"# DLSGAN ablation (Cho & Krzyzak) on `{data}`", "", settings,
        "", "Final values (last evaluation):", "", header, rule, *rows, "",
    ])
    path = out / "ablation.md"
    atomic_write_text(path, text)
    return path


def _fmt(value: float) -> str:
    """Four decimals, or scientific for the small values KID takes (it may also be slightly negative)."""
    return f"{value:.4f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2e}"
