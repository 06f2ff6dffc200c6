"""``ganinv ablate dlsgan``: the DLSGAN paper's (Cho & Krzyzak) ablation grid — DLS / No DLS × encoder loss on
D / DG, for each prior — trained with the same seed and budget, evaluated every epoch, drawn as one PNG per
figure family and summarised in a markdown table of final values.

The paper's figures 1–15 plot, against epoch: the average encoder loss L_enc, the differential entropy of the
scaled latent, PSNR/SSIM of reconstructions of generated and of real test images, and FID. Here FID is FID only
when Inception weights are on disk; otherwise FD-domain (metrics/fid.py), and the figure says which.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write, atomic_write_text
from ganinv.core.rundir import METRICS
from ganinv.data import open_dataset
from ganinv.inference.evaluate import generated_batch
from ganinv.metrics.fid import feature_extractor, frechet_distance
from ganinv.training.launch import default_channels, ensure_trained

PRIORS = ("normal", "uniform_sqrt3")
CELLS = [(prior, dls, on) for prior in PRIORS for dls in (True, False) for on in ("D", "DG")]
FD_SAMPLES = 500


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


def cell_name(prior: str, dls: bool, on: str) -> str:
    return f"{'N' if prior == 'normal' else 'U'}-{'DLS' if dls else 'noDLS'}-{on}"


def fd_evaluator(extractor, real_features, key: str, seed: int) -> Callable:
    def evaluate(model) -> dict[str, float]:
        fake = extractor(generated_batch(model, FD_SAMPLES, seed=seed))
        return {key: frechet_distance(real_features, fake)}

    return evaluate


def run_ablation(method: str, *, data: str, out: str | Path, quick: bool = False, seed: int = 0,
                 epochs: int | None = None, fid_weights: str | None = None, show_progress: bool = True,
                 log: Callable[[str], None] = print, budget: Budget | None = None, cells=CELLS) -> dict:

    if method != "dlsgan":
        raise GaninvError(f"the ablation grid is the DLSGAN paper's, for dlsgan only; got {method!r}")
    out = Path(out)
    budget = budget or BUDGETS["quick" if quick else "full"]
    epochs = epochs or budget.epochs
    channels = default_channels(data)
    train_split = open_dataset(data, image_size=budget.image_size, channels=channels, split="train")
    steps_per_epoch = len(train_split) // budget.batch_size
    steps = epochs * steps_per_epoch
    evaluator, fd_name, fd_key = fd_during_training(data, budget, channels, fid_weights, seed, log)
    families = FAMILIES + [(f"{fd_name} of generated images", "fd", "eval", fd_key)]
    window = latent_scale_window(steps)
    log(f"latent-scale window: {window} batches (the paper's 512, scaled to a {steps}-step run)")
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for i, (prior, dls, on) in enumerate(cells, start=1):
        name = cell_name(prior, dls, on)
        log(f"[{i}/{len(cells)}] {name}: {epochs} epochs × {steps_per_epoch} steps")
        ensure_trained(
            "dlsgan", out / name, steps=steps, log=log, data=data, seed=seed, show_progress=show_progress,
            evaluators=[evaluator], options={"dls": dls, "encoder_loss_on": on, "window_batches": window},
            net_overrides=dict(image_size=budget.image_size, width=budget.width, channels=channels,
                               latent_dim=budget.latent_dim, prior=prior),
            train_overrides=dict(batch_size=budget.batch_size, eval_every=steps_per_epoch,
                                 sample_every=steps_per_epoch, checkpoint_every=steps_per_epoch, eval_samples=256))
        curves[name] = read_curves(out / name, steps_per_epoch, families)
    figures = [plot_family(out, title, stem, curves) for title, stem, _, _ in families]
    table = write_table(out, curves, families, fd_name, budget, epochs, data, seed, window)
    atomic_write_text(out / "curves.json", json.dumps(curves))
    return {"table": table, "figures": figures, "curves": curves}


def fd_during_training(data: str, budget: Budget, channels: int, fid_weights: str | None, seed: int,
                       log: Callable[[str], None]) -> tuple[Callable, str, str]:
    """(evaluator, "FID" or the FD-domain's name, metrics key): the Fréchet distance of generated images to the
    test split, measured at every evaluation — real FID only when Inception weights are on disk."""
    test, _ = open_dataset(data, image_size=budget.image_size, channels=channels, split="test").tensors(FD_SAMPLES)
    extractor, note = feature_extractor(data, image_size=budget.image_size, channels=channels, fid_weights=fid_weights)
    log(note if extractor.name == "FID" else f"FD-domain: {note}")
    fd_key = "fid" if extractor.name == "FID" else "fd_domain"
    return fd_evaluator(extractor, extractor(test), fd_key, seed), extractor.name, fd_key


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


def write_table(out: Path, curves: dict, families, fd_name: str, budget: Budget, epochs: int, data: str,
                seed: int, window: int) -> Path:
    header = "| run | " + " | ".join(stem for _, stem, _, _ in families) + " |"
    rule = "|" + "---|" * (len(families) + 1)
    rows = []
    for name, series in curves.items():
        finals = [series.get(stem) for _, stem, _, _ in families]
        rows.append(f"| {name} | " + " | ".join(f"{v[-1][1]:.4f}" if v else "—" for v in finals) + " |")
    text = "\n".join([
        f"# DLSGAN ablation (Cho & Krzyzak) on `{data}`", "",
        f"{epochs} epochs, {budget.image_size} px, width {budget.width}, d_z {budget.latent_dim}, batch "
        f"{budget.batch_size}, latent-scale window {window} batches, seed {seed}. N = N(0,1) prior, U = U(−√3,√3); DLS / noDLS; encoder loss on D or DG. "
        f"`fd` is {fd_name}" + (" (not comparable with published FID)" if fd_name != "FID" else "") + ".",
        "", "Final values (last epoch):", "", header, rule, *rows, "",
    ])
    path = out / "ablation.md"
    atomic_write_text(path, text)
    return path
