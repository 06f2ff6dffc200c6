"""``ganinv bench frontier``: speed against fidelity of every inverter of one generator, on the same images.

Rows (those the generator allows): each single-pass encoder given (psp / e4e, aegan, regression, …); the iterative
encoder, on generated or real images (the idea of "ReStyle: A Residual-Based StyleGAN Encoder via Iterative
Refinement", Alaluf, Patashnik, Cohen-Or) at T = 1…10 passes; the hybrid (each encoder + 10 / 50 / 200 optimisation
steps, searched from it and from the mean, the better kept); optimisation from the prior's mean in z, and in W and
W+ for a style generator, for 100 / 300 / 1000 steps; pivotal tuning ("Pivotal Tuning for Latent-based Editing of
Real Images", Roich, Mokady, Bermano, Cohen-Or) from the best encoder. Each row: PSNR, SSIM, LPIPS (when its weights
are on disk), dHash similarity, ms/image and peak memory, on real test images and on generated samples, and its PSNR
and time as ratios of the reference: the longest optimisation in W+ (W, then z, on generators without it). The
issue's targets, each MET or MISSED with its numbers: a single pass ≥ 0.90× the reference's PSNR at ≤ 1 % of its time;
iterative / refined ≥ 0.95× at ≤ 5 %; pivotal tuning ≥ the reference + 4 dB, with its drift (PSNR between G and the
tuned G on prior samples). Figures (frontier_figures): each encoder run's training curves from its metrics.jsonl, and
8 real test images through every inverter.

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
from ganinv.experiments.bench import peak_memory_mb
from ganinv.experiments.markdown import header, md_table
from ganinv.experiments.compare import warm_up_optimiser
from ganinv.experiments.editability import (DIRECTION_SAMPLES, EDIT_STRENGTH, JUDGE_STEPS, AttributeJudge,
                                            attribute_agreement, attribute_judge, editability, judge_accuracy,
                                            w_directions)
from ganinv.experiments.frontier_cache import RowCache
from ganinv.experiments.frontier_figures import FACES, plot_training_curves, pyplot, save_faces
from ganinv.inference.evaluate import generated_batch
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.inference.tuning import BATCH_SIZE as TUNING_BATCH
from ganinv.inference.tuning import PTI_PIVOT_STEPS, pivotal_tuning
from ganinv.methods.iterative import Iterative
from ganinv.methods.spaces import style_generator
from ganinv.metrics import reconstruction_metrics
from ganinv.training.launch import load_generator_run

Log = Callable[[str], None]
LOSS, LR = "mse", 0.05  # every optimisation row: MSE image loss, Adam at this lr, from the space's mean
MEMORY_STEPS = 3
E4E_OPTIONS = ("progressive_every", "delta_weight", "latent_d")  # a psp run with any of them is e4e
JUDGED_TEST_IMAGES = 1000  # test images the judge's accuracy is measured on


@dataclass(frozen=True)
class FrontierBudget:
    n_images: int
    optimize_steps: tuple[int, ...]
    refine_steps: tuple[int, ...]
    passes: tuple[int, ...]  # iterative T
    tune_steps: int
    pivot_steps: int = PTI_PIVOT_STEPS  # PTI's W search for the pivots (the smoke budget cuts it)
    judge_steps: int = JUDGE_STEPS  # the attribute judge's training steps (editability module)
    direction_samples: int = DIRECTION_SAMPLES  # W samples the edit directions are fit on


BUDGETS = {
    "smoke": FrontierBudget(4, (2, 3), (1,), (1, 2), 2, pivot_steps=3, judge_steps=5, direction_samples=64),
    "quick": FrontierBudget(16, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 300),  # the cpu rows, 16 images
    "cpu": FrontierBudget(64, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 300),
    "gpu": FrontierBudget(256, (100, 300, 1000), (10, 50, 200), (1, 2, 3, 5, 10), 350),
}


@dataclass
class Inverter:
    """One row: ``run(images) -> reconstructions``; ``memory_run`` the same with at most MEMORY_STEPS steps.
    ``space`` / ``steps``: an optimisation row's (the reference of the ratios); ``passes``: an iterative row's T;
    ``extras()``: numbers the last ``run`` left behind (pivotal tuning's drift)."""
    name: str
    family: str
    run: Callable[[Tensor], Tensor]
    memory_run: Callable[[Tensor], Tensor]
    space: str = ""
    steps: int = 0
    passes: int = 0
    extras: Callable[[], dict] | None = None


# ------------------------------------------------------------------------------------------------ the inverters
def encoder_rows(encoders: list[InversionModel], b: FrontierBudget) -> list[Inverter]:
    rows = []
    for model in encoders:
        label = encoder_label(model)
        if isinstance(model.method, Iterative):
            rows += [_iterative(model, label, t) for t in b.passes]
        else:
            rows.append(Inverter(f"{label} encoder", "encoder", model.reconstruct, model.reconstruct))
    return rows


def encoder_label(model: InversionModel) -> str:
    """'psp (wplus)', 'e4e (wplus)' (a psp run with any of e4e's options), 'iterative (wplus, data=real, start=psp)':
    the method, its space, what it trained on when not G's own samples, and the run it starts from."""
    options = model.config.options
    name = model.config.method
    if name == "psp" and any(options.get(k) for k in E4E_OPTIONS):
        name = "e4e"
    data = options.get("data", "generated")
    tags = [options.get("space", "z")] + ([] if data == "generated" else [f"data={data}"])
    tags += [f"start={options['start_method']}"] if options.get("start_method") else []
    return f"{name} ({', '.join(tags)})"


def _iterative(model: InversionModel, label: str, passes: int) -> Inverter:
    def run(x: Tensor) -> Tensor:
        with torch.no_grad(), model.method.eval_mode():
            latents = torch.cat([model.method.invert(c.to(model.device), steps=passes).float()
                                 for c in x.split(model.batch_size)])
        return model.generate(latents)

    return Inverter(f"{label} T={passes}", "iterative", run, run, passes=passes)


def optimisation_rows(gen: InversionModel, b: FrontierBudget, only: tuple[str, ...] | None = None) -> list[Inverter]:
    """Optimisation from the mean in every space the generator has (z; w and wplus on a style generator), or in
    those of ``only`` (the reference's space, W+ on a style generator, is always kept)."""
    spaces = ["z"] + (["w", "wplus"] if style_generator(gen.method) is not None else [])
    if only is not None:
        unknown = sorted(set(only) - set(spaces))
        if unknown:
            raise GaninvError(f"--spaces {','.join(unknown)}: this generator has {', '.join(spaces)}")
        spaces = [s for s in spaces if s in only or s == spaces[-1]]
    return [dataclasses.replace(
        _optimising(f"optimise {space}, {steps} steps", "optimisation",
                    lambda n, space=space: OptimizingModel(gen, steps=n, lr=LR, loss=LOSS, start="mean", space=space),
                    steps), space=space, steps=steps)
            for space in spaces for steps in b.optimize_steps]


def hybrid_rows(encoder: InversionModel, b: FrontierBudget) -> list[Inverter]:
    label = encoder_label(encoder)
    return [_optimising(f"hybrid: {label} + {steps} steps", "hybrid",
                        lambda n: with_refinement(encoder, steps=n, lr=LR, loss=LOSS), steps)
            for steps in b.refine_steps]


def _optimising(name: str, family: str, make: Callable[[int], InversionModel], steps: int) -> Inverter:
    return Inverter(name, family, make(steps).reconstruct, make(min(steps, MEMORY_STEPS)).reconstruct)


def tuning_row(encoder: InversionModel, b: FrontierBudget) -> Inverter:
    """Pivotal tuning as PTI runs it — every tuned image at every step — on groups of TUNING_BATCH images, one
    generator copy per group (PTI tunes one per image; one tuning over all n images would show each image to 1 step
    in n / TUNING_BATCH); drift PSNR: the groups' mean."""
    last: dict = {}  # the timed run's drift (the memory run's is not the row's)

    def tune(steps: int, keep: bool) -> Callable[[Tensor], Tensor]:
        pivot_steps = b.pivot_steps if keep else min(b.pivot_steps, MEMORY_STEPS)  # the profiler keeps every event

        def run(x: Tensor) -> Tensor:
            groups = [pivotal_tuning(encoder, group, steps=steps, pivot_steps=pivot_steps)
                      for group in x.split(TUNING_BATCH)]
            if keep:
                last.update({"drift PSNR": sum(t.drift["prior_psnr"] for t in groups) / len(groups)})
            return torch.cat([t.pivot_reconstructions() for t in groups])
        return run

    return Inverter(f"pivotal tuning from {encoder_label(encoder)}, {b.tune_steps} steps", "tuning",
                    tune(b.tune_steps, True), tune(min(b.tune_steps, MEMORY_STEPS), False), extras=lambda: dict(last))


# ------------------------------------------------------------------------------------------------ measuring
def warm_up(inverters: list[Inverter], images: Tensor) -> None:
    """Pay every one-off cost before anything is timed: Adam's first construction, autograd, each inverter once
    (with at most MEMORY_STEPS steps), on a forked RNG."""
    with torch.random.fork_rng(devices=[]):
        warm_up_optimiser()
        for inverter in inverters:
            inverter.memory_run(images[:2])


def measure(inverter: Inverter, images: Tensor, device, judge: AttributeJudge | None = None) -> tuple[dict, Tensor]:
    """(the row, the first FACES reconstructions); with a judge, the row's ``attributes kept``
    (``experiments.editability.attribute_agreement``)."""
    start = time.perf_counter()
    reconstructions = inverter.run(images)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    metrics = reconstruction_metrics(images, reconstructions.float().cpu())
    if judge is not None:
        metrics["attributes kept"] = attribute_agreement(judge, images, reconstructions.float().cpu())
    peak = peak_memory_mb(lambda: inverter.memory_run(images), device)
    tags = {k: v for k, v in (("space", inverter.space), ("steps", inverter.steps), ("passes", inverter.passes)) if v}
    extras = inverter.extras() if inverter.extras else {}
    return ({"inverter": inverter.name, "family": inverter.family, "n": len(images), **tags, **metrics, **extras,
             "ms/image": 1000 * seconds / len(images), "peak MB": peak}, reconstructions[:FACES].float().cpu())


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both time and PSNR."""
    return [r for r in rows if not any(o["ms/image"] <= r["ms/image"] and o["psnr"] > r["psnr"] for o in rows)]


# ------------------------------------------------------------------------------------------------ the benchmark
def frontier(generator: str | Path, data: str, out: str | Path, *, encoders: list[str | Path], budget: str = "cpu",
             seed: int = 0, command: str | None = None, log: Log = lambda m: None, generated: bool = True,
             spaces: tuple[str, ...] | None = None) -> dict:
    """Every inverter on the data's real test images and (``generated``) on as many of the generator's samples;
    optimisation in ``spaces`` (default: every space the generator has)."""
    if budget not in BUDGETS:
        raise GaninvError(f"unknown frontier budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if not encoders:
        raise GaninvError("give at least one encoder run of this generator (--encoders RUN[,RUN…]): aegan, "
                          "regression, iterative or the generator run itself when it inverts (dlsgan, dedgan)")
    b, out = BUDGETS[budget], Path(out)
    gen = load_generator_run(generator)
    models = [InversionModel.load(e) for e in encoders]
    check_same_generator(gen, models, encoders)
    sets = image_sets(gen, data, b.n_images, seed, generated)
    judge = attribute_judge(data, image_size=gen.config.net.image_size, channels=gen.config.net.channels,
                            steps=b.judge_steps)
    inverters = inverter_list(gen, models, b, spaces)
    key = {"generator": str(generator), "data": data, "encoders": [str(e) for e in encoders], "budget": budget,
           "seed": seed, "generated": generated, "spaces": list(spaces or [])}
    cache = RowCache.open(out_dir(out), key, log)
    results, faces = measure_all(sets, inverters, gen, judge, cache, log)
    save_faces(out_dir(out) / "frontier-faces.png", sets["real"], results["real"], faces)
    edits = edit_section_data(gen, models, judge, data, sets["real"], b, log)
    report = write_report(out, results, b, generator=generator, encoders=encoders, models=(gen, models), data=data,
                          seed=seed, command=command, edits=edits)
    atomic_write_json(out / "frontier.json", {"budget": dataclasses.asdict(b), "results": results, "edits": edits,
                                              "reused rows": cache.reused,
                                              "reference": reference(results["real"])["inverter"],
                                              "targets": targets(results["real"])})
    cache.clear()
    return {"results": results, "report": report, "text": report.read_text()}


def measure_all(sets: dict[str, Tensor], inverters: list[Inverter], gen: InversionModel,
                judge: AttributeJudge | None, cache: RowCache, log: Log) -> tuple[dict[str, list[dict]], list[Tensor]]:
    """Every inverter on every image set ({set: rows}, and the real set's first FACES reconstructions per row),
    each row kept in ``cache`` as soon as it is measured, and rows the cache already has reused (timed then)."""
    todo = [i for i in inverters if any(cache.get(name, i.name) is None for name in sets)]
    cache.reused = 0
    log(f"warming up {len(todo)} inverters")
    warm_up(todo, sets["real"])
    results, faces = {}, []
    for name, images in sets.items():
        results[name] = []
        for inverter in inverters:
            found = cache.get(name, inverter.name)
            if found is None:
                log(f"{name}: {inverter.name}")
                found = measure(inverter, images, gen.device, judge)
                cache.put(name, inverter.name, *found)
            results[name].append(found[0])
            faces += [found[1]] if name == "real" else []
        add_ratios(results[name])
    return results, faces


def out_dir(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_same_generator(gen: InversionModel, models: list[InversionModel], paths) -> None:
    for model, path in zip(models, paths):
        if not model.can_invert:
            raise GaninvError(f"--encoders {path} is a {model.config.method!r} run with no inverse network")
        if model.config.net.image_size != gen.config.net.image_size:
            raise GaninvError(f"--encoders {path} works at {model.config.net.image_size} px, the generator at "
                              f"{gen.config.net.image_size} px")


def image_sets(gen: InversionModel, data: str, n: int, seed: int, generated: bool = True) -> dict[str, Tensor]:
    net = gen.config.net
    test = open_dataset(data, image_size=net.image_size, channels=net.channels, split="test")
    sets = {"real": test.tensors(min(n, len(test)))[0]}
    return {**sets, "generated": generated_batch(gen, n, seed).cpu()} if generated else sets


def inverter_list(gen: InversionModel, encoders: list[InversionModel], b: FrontierBudget,
                  spaces: tuple[str, ...] | None = None) -> list[Inverter]:
    """Every encoder's own rows, then each one's hybrid, optimisation from the mean, and pivotal tuning from the
    first iterative encoder (else the first one)."""
    best = next((m for m in encoders if isinstance(m.method, Iterative)), encoders[0])
    return (encoder_rows(encoders, b) + [row for m in encoders for row in hybrid_rows(m, b)]
            + optimisation_rows(gen, b, spaces) + [tuning_row(best, b)])


SPACE_ORDER = ("wplus", "w", "z")  # the reference is the longest optimisation in the first of these the G has


def reference(rows: list[dict]) -> dict:
    """The row every ratio is taken against: the longest optimisation in W+ (the issue's 1000-step W+ optimisation;
    a generator without W+ falls back to W, then z)."""
    opt = [r for r in rows if r["family"] == "optimisation"]
    space = next(s for s in SPACE_ORDER if any(r.get("space") == s for r in opt))
    return max((r for r in opt if r.get("space") == space), key=lambda r: r["steps"])


def add_ratios(rows: list[dict]) -> None:
    """Each row's PSNR and time as a ratio of the reference's."""
    ref = reference(rows)
    for r in rows:
        r["PSNR ratio"], r["time ratio"] = r["psnr"] / ref["psnr"], r["ms/image"] / ref["ms/image"]


# (name, which rows, least PSNR ratio, most time ratio): the targets against the reference
SPEED_TARGETS = (
    ("single-pass encoder", lambda r: r["family"] == "encoder" or r.get("passes") == 1, 0.90, 0.01),
    ("iterative / refined", lambda r: r["family"] in ("iterative", "hybrid"), 0.95, 0.05),
)
TUNING_GAIN_DB = 4.0


def targets(rows: list[dict]) -> list[dict]:
    """The issue's three targets on real test images, each met or missed with its numbers: per speed target the
    candidate with the best PSNR within its time (none within it: the fastest candidate, missed); pivotal tuning
    against the reference + TUNING_GAIN_DB, with its drift."""
    ref = reference(rows)
    ms, db = ref["ms/image"], ref["psnr"]
    out = []
    for name, chosen, least, most in SPEED_TARGETS:
        candidates = [r for r in rows if chosen(r)]
        within = [r for r in candidates if r["ms/image"] <= most * ms]
        best = max(within, key=lambda r: r["psnr"], default=None) or min(candidates, key=lambda r: r["ms/image"],
                                                                            default=None)
        out.append(target_entry(f"{name} ≥ {least:.2f}× PSNR at ≤ {most:.0%} time", ref, best,
                                bool(best and best["psnr"] >= least * db and best["ms/image"] <= most * ms)))
    tuned = next((r for r in rows if r["family"] == "tuning"), None)
    entry = target_entry(f"pivotal tuning ≥ reference + {TUNING_GAIN_DB:g} dB", ref, tuned,
                         bool(tuned and tuned["psnr"] >= db + TUNING_GAIN_DB))
    out.append({**entry, "drift PSNR": tuned.get("drift PSNR") if tuned else None})
    return out


def target_entry(target: str, ref: dict, row: dict | None, met: bool) -> dict:
    return {"target": target, "reference": ref["inverter"], "reference PSNR": ref["psnr"],
            "reference ms/image": ref["ms/image"], "inverter": row["inverter"] if row else "none",
            "PSNR": row["psnr"] if row else None, "ms/image": row["ms/image"] if row else None,
            "PSNR ratio": row["psnr"] / ref["psnr"] if row else None,
            "time ratio": row["ms/image"] / ref["ms/image"] if row else None, "met": met}


def target_lines(entries: list[dict]) -> list[str]:
    """One line per target: MET / MISSED, the inverter and its numbers against the reference."""
    lines = []
    for t in entries:
        verdict = "**MET**" if t["met"] else "**MISSED**"
        numbers = ("no candidate row" if t["PSNR"] is None else
                   f"{t['inverter']}: {t['PSNR']:.2f} dB = {t['PSNR ratio']:.3f}× of {t['reference PSNR']:.2f} dB, "
                   f"{t['ms/image']:.3g} ms/image = {t['time ratio']:.2%} of {t['reference ms/image']:.3g} ms")
        drift = f"; drift: PSNR(G, tuned G) on prior samples {t['drift PSNR']:.2f} dB" if t.get("drift PSNR") else ""
        lines.append(f"- {verdict} {t['target']} — {numbers}{drift}")
    return lines


# ------------------------------------------------------------------------------------------------ editability
def edit_section_data(gen: InversionModel, models: list[InversionModel], judge: AttributeJudge | None, data: str,
                      images: Tensor, b: FrontierBudget, log: Log) -> dict | None:
    """The judge's accuracy on the test split and, on attribute data with a style generator, every encoder's
    editability (``experiments.editability``) with directions fit in W; None on unlabelled data."""
    if judge is None:
        return None
    net = gen.config.net
    test_images, labels = open_dataset(data, image_size=net.image_size, channels=net.channels,
                                       split="test").tensors(JUDGED_TEST_IMAGES)
    found = {"judge": {"n": len(test_images), **judge_accuracy(judge, test_images, labels)}, "encoders": []}
    if not judge.multi_label or style_generator(gen.method) is None:
        return found
    log("editability: fitting directions in W")
    directions = w_directions(gen, judge, n=b.direction_samples)
    if not directions:
        return found
    found["directions"] = [{"attribute": d.name, "fit accuracy": d.accuracy, "spread": d.spread} for d in directions]
    for model in models:
        log(f"editability: {encoder_label(model)}")
        found["encoders"].append({"inverter": encoder_label(model), **editability(model, judge, directions, images)})
    return found


def edit_lines(edits: dict | None) -> list[str]:
    if edits is None:
        return []
    j = edits["judge"]
    lines = ["## Attributes and editability", "", f"The judge (``experiments.editability``: a small classifier trained "
             f"on the train split's labels) agrees with the labels of {j['n']} test images at {j['accuracy']:.3f} "
             f"(always answering the majority: {j['majority baseline']:.3f}); 'attributes kept' above is the fraction "
             "of its answers that agree between each image and its reconstruction.", ""]
    if not edits["encoders"]:
        return lines
    fits = ", ".join(f"{d['attribute']} {d['fit accuracy']:.2f}" for d in edits["directions"])
    lines += [f"Edits: InterFaceGAN directions fit in W on {len(edits['directions'])} attributes from the "
              f"generator's samples labelled by the judge (fit accuracy: {fits}), added at every layer of each "
              f"encoder's W+ latent, {EDIT_STRENGTH:g} std of W along the direction towards the attribute's other "
              "state. 'flipped': the judge sees the edited attribute flipped; 'kept': the other attributes as before.",
              "", md_table(edits["encoders"]), ""]
    return lines


# ------------------------------------------------------------------------------------------------ the report
COLUMNS = ["inverter", "psnr", "ssim", "lpips", "dhash_similarity", "attributes kept", "ms/image", "PSNR ratio",
           "time ratio", "drift PSNR", "peak MB"]
LOSS_OPTIONS = ("loss", "mse", "l1", "lpips", "latent_weight", "generated_fraction", "delta_weight",
                "progressive_every", "steps", "data", "start")


def write_report(out: Path, results: dict[str, list[dict]], b: FrontierBudget, *, generator, encoders, models,
                 data: str, seed: int, command: str | None, edits: dict | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    parts = [header("frontier", seed=seed, command=command, data=data),
             f"Generator `{generator}`; encoders {', '.join(f'`{e}`' for e in encoders)}. Optimisation: {LOSS} "
             f"image loss, Adam lr {LR} from the space's mean (hybrid: the same from the encoder and from the mean, "
             f"the better per image); pivotal tuning {b.tune_steps} steps from PTI's pivots ({b.pivot_steps} steps "
             f"in W, or the encoder where it reconstructs better). Timed after a warm-up; peak memory with "
             f"optimisation/tuning cut to {MEMORY_STEPS} steps.", ""]
    for name, rows in results.items():
        cols = [c for c in COLUMNS if any(c in r for r in rows)]
        title = "real test images" if name == "real" else "generated samples"
        parts += [f"## {title} (n = {rows[0]['n']})", "", md_table(rows, cols), f"![{name}](frontier-{name}.png)",
                  ""]
        plot_frontier(out / f"frontier-{name}.png", rows, title)
    ref = reference(results["real"])
    parts += ["## Targets (real test images)", "", f"Ratios are against '{ref['inverter']}' ({ref['psnr']:.2f} dB, "
              f"{ref['ms/image']:.3g} ms/image).", "", *target_lines(targets(results["real"])), "",
              *edit_lines(edits), *setup_section(b, results, *models, encoders),
              *curves_section(out, encoders, models[1]),
              "## The same test images through every inverter", "", "![faces](frontier-faces.png)", ""]
    path = out / "frontier.md"
    atomic_write_text(path, "\n".join(parts))
    return path


def setup_section(b: FrontierBudget, results: dict, gen: InversionModel, models: list[InversionModel],
                  paths) -> list[str]:
    """What was measured with: image count, budget, every run's width, training steps and loss settings."""
    runs = [{"run": "generator", "method": gen.config.method, "width": gen.config.net.width, "trained steps": "",
             "loss settings": ""}]
    runs += [{"run": f"`{p}`", "method": encoder_label(m), "width": m.config.net.width,
              "trained steps": m.config.train.steps,
              "loss settings": ", ".join(f"{k}={m.config.options[k]}" for k in LOSS_OPTIONS if k in m.config.options)}
             for p, m in zip(paths, models)]
    budget = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(b).items())
    n = results["real"][0]["n"]
    sets = f"{n} real test images" + (f" and {n} generated samples" if "generated" in results else "")
    return ["## Setup", "", f"{sets}; budget: {budget}; optimisation and "
            f"hybrid: {LOSS} image loss, Adam lr {LR}.", "", md_table(runs), ""]


def curves_section(out: Path, paths, models: list[InversionModel]) -> list[str]:
    """Each encoder run's training curves, from its metrics.jsonl (ganinv.experiments.frontier_figures)."""
    parts = ["## Training curves", "", "Left: every loss term the run's metrics.jsonl records on its 'train' lines; "
             "right: its 'eval' lines' real/psnr, the training loop's evaluation on the first test-split images "
             "(never trained on). Nothing recomputed: a run keeps only its last checkpoint.", ""]
    for i, (path, model) in enumerate(zip(paths, models)):
        name = f"frontier-curves-{i}.png"
        drawn = plot_training_curves(out / name, Path(path), encoder_label(model))
        parts += [f"![{encoder_label(model)}]({name})" if drawn else f"`{path}`: no metrics.jsonl lines to plot", ""]
    return parts


FAMILY_MARKERS = {"encoder": "o", "iterative": "s", "hybrid": "^", "optimisation": "D", "tuning": "*"}


def plot_frontier(path: Path, rows: list[dict], title: str) -> None:
    plt = pyplot()
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
