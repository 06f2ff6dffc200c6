"""``ganinv bench frontier``: speed against fidelity of every inverter of one generator, on the same images.

Rows (those the generator allows): each single-pass encoder given; the iterative encoder (the idea of "ReStyle: A
Residual-Based StyleGAN Encoder via Iterative Refinement", Alaluf, Patashnik, Cohen-Or) at T = 1…10 passes; the
hybrid (the first encoder + 10 / 50 / 200 optimisation steps); optimisation from the prior's mean in z, and in W and
W+ for a style generator, for 100 / 300 / 1000 steps; pivotal tuning ("Pivotal Tuning for Latent-based Editing of
Real Images", Roich, Mokady, Bermano, Cohen-Or) from the best encoder. Each row: PSNR, SSIM, LPIPS (when its weights
are on disk), dHash similarity, ms/image and peak memory, on real test images and on generated samples.

Timing is honest: before anything is timed, one Adam optimiser is built and stepped (the first construction imports
torch's compiler module, ~13 s on a CPU) and every inverter runs once on two images; each row's time is its own call
on the whole batch. Peak memory is measured on the same batch with optimisation and tuning cut to a few steps
(memory does not grow with steps). Absolute times mean something only on the machine in the report's header.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ganinv.core.errors import GaninvError
from ganinv.core.io import atomic_write, atomic_write_json, atomic_write_text
from ganinv.data import open_dataset
from ganinv.experiments.bench import header, md_table, peak_memory_mb
from ganinv.experiments.compare import warm_up_optimiser
from ganinv.inference.evaluate import generated_batch
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.inference.tuning import pivotal_tuning
from ganinv.methods.iterative import Iterative
from ganinv.methods.spaces import style_generator
from ganinv.metrics import reconstruction_metrics
from ganinv.training.launch import load_generator_run

Log = Callable[[str], None]
LOSS, LR = "mse", 0.05  # every optimisation row: MSE image loss, Adam at this lr, from the space's mean
MEMORY_STEPS = 3


@dataclass(frozen=True)
class FrontierBudget:
    n_images: int
    optimize_steps: tuple[int, ...]
    refine_steps: tuple[int, ...]
    passes: tuple[int, ...]  # iterative T
    tune_steps: int


BUDGETS = {
    "smoke": FrontierBudget(4, (2, 3), (1,), (1, 2), 2),
    "quick": FrontierBudget(16, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 300),  # the cpu rows, 16 images
    "cpu": FrontierBudget(64, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 300),
    "gpu": FrontierBudget(256, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 350),
}


@dataclass
class Inverter:
    """One row: ``run(images) -> reconstructions``; ``memory_run`` the same with at most MEMORY_STEPS steps."""
    name: str
    family: str
    run: Callable[[Tensor], Tensor]
    memory_run: Callable[[Tensor], Tensor]


# ------------------------------------------------------------------------------------------------ the inverters
def encoder_rows(encoders: list[InversionModel], b: FrontierBudget) -> list[Inverter]:
    rows = []
    for model in encoders:
        label = f"{model.config.method} ({model.config.options.get('space', 'z')})"
        if isinstance(model.method, Iterative):
            rows += [_iterative(model, label, t) for t in b.passes]
        else:
            rows.append(Inverter(f"{label} encoder", "encoder", model.reconstruct, model.reconstruct))
    return rows


def _iterative(model: InversionModel, label: str, passes: int) -> Inverter:
    def run(x: Tensor) -> Tensor:
        with torch.no_grad(), model.method.eval_mode():
            latents = torch.cat([model.method.invert(c.to(model.device), steps=passes).float()
                                 for c in x.split(model.batch_size)])
        return model.generate(latents)

    return Inverter(f"{label} T={passes}", "iterative", run, run)


def optimisation_rows(gen: InversionModel, b: FrontierBudget) -> list[Inverter]:
    spaces = ["z"] + (["w", "wplus"] if style_generator(gen.method) is not None else [])
    return [_optimising(f"optimise {space}, {steps} steps", "optimisation",
                        lambda n, space=space: OptimizingModel(gen, steps=n, lr=LR, loss=LOSS, start="mean",
                                                               space=space), steps)
            for space in spaces for steps in b.optimize_steps]


def hybrid_rows(encoder: InversionModel, b: FrontierBudget) -> list[Inverter]:
    label = encoder.config.method
    return [_optimising(f"hybrid: {label} + {steps} steps", "hybrid",
                        lambda n: with_refinement(encoder, steps=n, lr=LR, loss=LOSS), steps)
            for steps in b.refine_steps]


def _optimising(name: str, family: str, make: Callable[[int], InversionModel], steps: int) -> Inverter:
    return Inverter(name, family, make(steps).reconstruct, make(min(steps, MEMORY_STEPS)).reconstruct)


def tuning_row(encoder: InversionModel, b: FrontierBudget) -> Inverter:
    def tune(steps: int) -> Callable[[Tensor], Tensor]:
        return lambda x: pivotal_tuning(encoder, x, steps=steps).pivot_reconstructions()

    return Inverter(f"pivotal tuning from {encoder.config.method}, {b.tune_steps} steps", "tuning",
                    tune(b.tune_steps), tune(min(b.tune_steps, MEMORY_STEPS)))


# ------------------------------------------------------------------------------------------------ measuring
def warm_up(inverters: list[Inverter], images: Tensor) -> None:
    """Pay every one-off cost before anything is timed: Adam's first construction, autograd, each inverter once
    (with at most MEMORY_STEPS steps), on a forked RNG."""
    with torch.random.fork_rng(devices=[]):
        warm_up_optimiser()
        for inverter in inverters:
            inverter.memory_run(images[:2])


def measure(inverter: Inverter, images: Tensor, device) -> dict:
    start = time.perf_counter()
    reconstructions = inverter.run(images)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    metrics = reconstruction_metrics(images, reconstructions.float().cpu())
    peak = peak_memory_mb(lambda: inverter.memory_run(images), device)
    return {"inverter": inverter.name, "family": inverter.family, "n": len(images), **metrics,
            "ms/image": 1000 * seconds / len(images), "peak MB": peak}


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both time and PSNR."""
    return [r for r in rows if not any(o["ms/image"] <= r["ms/image"] and o["psnr"] > r["psnr"] for o in rows)]


# ------------------------------------------------------------------------------------------------ the benchmark
def frontier(generator: str | Path, data: str, out: str | Path, *, encoders: list[str | Path], budget: str = "cpu",
             seed: int = 0, command: str | None = None, log: Log = lambda m: None) -> dict:
    if budget not in BUDGETS:
        raise GaninvError(f"unknown frontier budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if not encoders:
        raise GaninvError("give at least one encoder run of this generator (--encoders RUN[,RUN…]): aegan, "
                          "regression, iterative or the generator run itself when it inverts (dlsgan, dedgan)")
    b, out = BUDGETS[budget], Path(out)
    gen = load_generator_run(generator)
    models = [InversionModel.load(e) for e in encoders]
    check_same_generator(gen, models, encoders)
    sets = image_sets(gen, data, b.n_images, seed)
    inverters = inverter_list(gen, models, b)
    log(f"warming up {len(inverters)} inverters")
    warm_up(inverters, sets["real"])
    results = {}
    for name, images in sets.items():
        results[name] = []
        for inverter in inverters:
            log(f"{name}: {inverter.name}")
            results[name].append(measure(inverter, images, gen.device))
    report = write_report(out, results, b, generator=generator, encoders=encoders, data=data, seed=seed,
                          command=command)
    atomic_write_json(out / "frontier.json", {"budget": dataclasses.asdict(b), "results": results,
                                              "targets": targets(results["real"])})
    return {"results": results, "report": report, "text": report.read_text()}


def check_same_generator(gen: InversionModel, models: list[InversionModel], paths) -> None:
    for model, path in zip(models, paths):
        if not model.can_invert:
            raise GaninvError(f"--encoders {path} is a {model.config.method!r} run with no inverse network")
        if model.config.net.image_size != gen.config.net.image_size:
            raise GaninvError(f"--encoders {path} works at {model.config.net.image_size} px, the generator at "
                              f"{gen.config.net.image_size} px")


def image_sets(gen: InversionModel, data: str, n: int, seed: int) -> dict[str, Tensor]:
    net = gen.config.net
    test = open_dataset(data, image_size=net.image_size, channels=net.channels, split="test")
    return {"real": test.tensors(min(n, len(test)))[0], "generated": generated_batch(gen, n, seed).cpu()}


def inverter_list(gen: InversionModel, encoders: list[InversionModel], b: FrontierBudget) -> list[Inverter]:
    single = [m for m in encoders if not isinstance(m.method, Iterative)]
    best = next((m for m in encoders if isinstance(m.method, Iterative)), encoders[0])
    return (encoder_rows(encoders, b) + (hybrid_rows(single[0], b) if single else []) + optimisation_rows(gen, b)
            + [tuning_row(best, b)])


def targets(rows: list[dict]) -> list[dict]:
    """The issue's two targets on real test images, against each 1000-step (longest) optimisation row."""
    longest = max((r for r in rows if r["family"] == "optimisation"), key=lambda r: int(r["inverter"].split()[-2]))
    steps = longest["inverter"].split()[-2]
    references = [r for r in rows if r["family"] == "optimisation" and r["inverter"].endswith(f"{steps} steps")]
    out = []
    for ref in references:
        fast = [r for r in rows if r["ms/image"] <= 0.02 * ref["ms/image"]]
        best = max(fast, key=lambda r: r["psnr"], default=None)
        out.append({"target": f"≤ 2 % of the time of '{ref['inverter']}' at ≥ 95 % of its PSNR",
                    "reference PSNR": ref["psnr"], "best fast inverter": best["inverter"] if best else "none",
                    "its PSNR": best["psnr"] if best else None,
                    "met": bool(best and best["psnr"] >= 0.95 * ref["psnr"])})
    tuned = next(r for r in rows if r["family"] == "tuning")
    best_ref = max(references, key=lambda r: r["psnr"])
    out.append({"target": f"pivotal tuning ≥ 3 dB above '{best_ref['inverter']}'", "reference PSNR": best_ref["psnr"],
                "best fast inverter": tuned["inverter"], "its PSNR": tuned["psnr"],
                "met": tuned["psnr"] >= best_ref["psnr"] + 3})
    return out


# ------------------------------------------------------------------------------------------------ the report
COLUMNS = ["inverter", "psnr", "ssim", "lpips", "dhash_similarity", "ms/image", "peak MB"]


def write_report(out: Path, results: dict[str, list[dict]], b: FrontierBudget, *, generator, encoders, data: str,
                 seed: int, command: str | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    parts = [header("frontier", seed=seed, command=command, data=data),
             f"Generator `{generator}`; encoders {', '.join(f'`{e}`' for e in encoders)}. Optimisation: {LOSS} "
             f"image loss, Adam lr {LR} from the space's mean (hybrid: the same from the encoder and from the mean, "
             f"the better per image); pivotal tuning {b.tune_steps} steps from PTI's pivots (450 steps in W, or the "
             f"encoder where it reconstructs better). Timed after a warm-up; peak memory with optimisation/tuning cut to "
             f"{MEMORY_STEPS} steps.", ""]
    for name, rows in results.items():
        cols = [c for c in COLUMNS if any(c in r for r in rows)]
        title = "real test images" if name == "real" else "generated samples"
        parts += [f"## {title} (n = {rows[0]['n']})", "", md_table(rows, cols), f"![{name}](frontier-{name}.png)",
                  ""]
        plot_frontier(out / f"frontier-{name}.png", rows, title)
    parts += ["## Targets (real test images)", "", md_table(targets(results["real"])), ""]
    path = out / "frontier.md"
    atomic_write_text(path, "\n".join(parts))
    return path


FAMILY_MARKERS = {"encoder": "o", "iterative": "s", "hybrid": "^", "optimisation": "D", "tuning": "*"}


def plot_frontier(path: Path, rows: list[dict], title: str) -> None:
    import matplotlib  # deferred: slow to import; only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: see above

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, marker in FAMILY_MARKERS.items():
        pts = [r for r in rows if r["family"] == family]
        if pts:
            ax.scatter([r["ms/image"] for r in pts], [r["psnr"] for r in pts], marker=marker, label=family, s=40)
    front = sorted(pareto(rows), key=lambda r: r["ms/image"])
    ax.plot([r["ms/image"] for r in front], [r["psnr"] for r in front], "k--", lw=1, label="Pareto front")
    for r in front:
        ax.annotate(r["inverter"], (r["ms/image"], r["psnr"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("ms per image (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Speed against fidelity: {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
