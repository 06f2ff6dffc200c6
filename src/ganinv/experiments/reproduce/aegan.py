"""AEGAN — "Learning Inverse Mapping by AutoEncoder based Generative Adversarial Nets" (Luo, Xu, Tang, Lv):
Table 1 with Fig. 2 (reconstruction of generated samples and real faces by AEGAN, the directly trained inverse
model, BiGAN with its own generator, Creswell & Bharath's optimisation and the hybrid), Table 2 with Fig. 4 (search
by latent vs dHash / pHash / colour histogram, label similarity of the top 10) and Fig. 5 (super-resolution of
Gaussian-blurred generated images).
"""
from __future__ import annotations

import torch

from ganinv.apps.search import SearchIndex, embed, evaluate_search
from ganinv.apps.superres import compare as superres_rows
from ganinv.apps.superres import evaluate_superres
from ganinv.data import open_dataset
from ganinv.experiments.compare import CompareSettings, build_inverters, method_loss
from ganinv.experiments.reproduce.suite import Suite
from ganinv.inference.evaluate import generated_batch, reconstruction_report
from ganinv.inference.model import InversionModel
from ganinv.training.launch import load_generator_run

TABLE1 = ("aegan", "regression", "bigan", "optimize", "hybrid")
OPTIMISING = ("optimize", "hybrid")
BLUR_SIGMAS = (1.0, 2.0, 3.0)
SEARCHED = ("latent", "dhash", "phash", "colour")


def generator_run(s: Suite):
    """The DCGAN of the AEGAN paper's tables 3–5 (every post-hoc inverter's frozen generator), trained or reused."""
    b = s.budget
    s.log(f"DCGAN {b.image_size} px, width {b.width}, {b.gan_steps} steps, batch {b.batch_size}")
    return s.trained("gan", s.runs / "dcgan", steps=b.gan_steps, data=s.data, preset="paper",
                     net_overrides={"image_size": b.image_size, "width": b.width},
                     train_overrides={"batch_size": b.batch_size, "lr": 2e-4})


def compare_settings(s: Suite) -> CompareSettings:
    b = s.budget
    return CompareSettings(train_steps=b.encoder_steps, bigan_steps=b.bigan_steps, optimize_steps=b.optimize_steps,
                           refine_steps=b.refine_steps, loss="bce", batch_size=b.batch_size, lr=2e-4,
                           n_generated=b.n_generated, seed=s.seed, precision=b.precision,
                           channels_last=b.channels_last, compile=b.compile)


def table1(s: Suite) -> dict:
    """Every inverter on the same generated samples (BiGAN: its own G's, same latent seed) and the whole test
    split; optimisation and the hybrid on the first ``n_optimize`` of each."""
    b, gen_run = s.budget, generator_run(s)
    settings = compare_settings(s)
    gen = load_generator_run(gen_run)
    models, run_dirs = build_inverters(list(TABLE1), gen_run, gen, data=s.data, runs=s.runs, settings=settings,
                                       show_progress=s.show_progress, log=s.log)
    generated, real = generated_batch(gen, b.n_generated, s.seed), s.test_images(b.image_size)
    rows, grids = {}, {"generated": [generated], "bigan": [], "real": [real]}
    for name in TABLE1:
        n = b.n_optimize if name in OPTIMISING else None
        s.log(f"Table 1: inverting {len(generated[:n])} generated and {len(real[:n])} test images with {name}")
        own = generated_batch(models[name], b.n_generated, s.seed) if name == "bigan" else generated
        metrics_g, recon_g = reconstruction_report(models[name], own[:n])
        metrics_r, recon_r = reconstruction_report(models[name], real[:n])
        rows[name] = {"generated": metrics_g, "real": metrics_r, "run": run_dirs[name],
                      "loss": method_loss(name, models[name], settings)}
        grids["bigan" if name == "bigan" else "generated"] += [own, recon_g] if name == "bigan" else [recon_g]
        grids["real"].append(recon_r)
    figure = s.save_grid("aegan-fig2-reconstructions.png", grids["generated"] + grids["bigan"] + grids["real"],
                         _grid_labels(), title="AEGAN Fig. 2: originals and reconstructions (rows labelled)")
    return {"rows": rows, "generator": str(gen_run), "figure": figure}


def _grid_labels() -> list[str]:
    posthoc = [m for m in TABLE1 if m != "bigan"]
    return (["generated"] + [f"{m} (gen)" for m in posthoc] + ["BiGAN's own G", "bigan (its own)"]
            + ["test image"] + [f"{m} (test)" for m in TABLE1])


def table2(s: Suite) -> dict:
    """Search the first ``database`` train images with ``queries`` test images by AEGAN latent, dHash, pHash and
    colour histogram; label similarity of the top 10 over the 40 attributes, beside random picks."""
    b, run = s.budget, s.result("aegan-table1")["rows"]["aegan"]["run"]
    index_dir = s.out / "table2-index"
    result = evaluate_search(run, s.data, index_dir=index_dir, queries=b.queries, database=b.database, k=10,
                             seed=s.seed, show_progress=s.show_progress, log=s.log)
    result["figure"] = search_figure(s, run, index_dir)
    return result


def search_figure(s: Suite, run: str, index_dir) -> str:
    """Fig. 4: for the first queries, the query and its nearest database images by AEGAN latent and by dHash."""
    b = s.budget
    index = SearchIndex.load(index_dir)
    model = index.open_model(run)
    train = open_dataset(s.data, image_size=b.image_size, channels=s.channels, split="train")
    queries = s.test_images(b.image_size, n=min(4, b.queries))
    rows, labels = [], []
    for q, image in enumerate(queries):
        for method in ("latent", "dhash"):
            ids = index.search(embed(method, image[None], model), b.n_figure - 1, method).ids[0]
            found = torch.stack([train[index.rows[int(i)]][0] for i in ids])
            rows.append(torch.cat([image[None], found]))
            labels.append(f"query {q + 1}: {'AEGAN latent' if method == 'latent' else 'dHash'}")
    return s.save_grid("aegan-fig4-search.png", rows, labels, title="AEGAN Fig. 4: query (left), then its "
                       "nearest database images", column_labels=["query"] + [f"#{i}" for i in range(1, b.n_figure)])


def superres(s: Suite) -> dict:
    """Fig. 5: Gaussian-blurred generated images (and test faces) through AEGAN's IG and G, PSNR/SSIM against the
    clean image beside the blurred input itself."""
    b, run = s.budget, s.result("aegan-table1")["rows"]["aegan"]["run"]
    model = InversionModel.load(run)
    real = s.test_images(b.image_size, n=b.n_generated)
    rows = evaluate_superres(model, real=real, n=b.n_generated, seed=s.seed, sigmas=BLUR_SIGMAS, factors=())
    return {"rows": rows, "figure": superres_figure(s, model), "run": run}


def superres_figure(s: Suite, model: InversionModel) -> str:
    clean = generated_batch(model, s.budget.n_figure, s.seed)
    grid, labels = [clean], ["generated (clean)"]
    for sigma in BLUR_SIGMAS:
        images = superres_rows(clean, sigma=sigma, model=model)
        grid += [images["degraded"], images["inverted"]]
        labels += [f"blurred σ={sigma:g}", f"AEGAN from σ={sigma:g}"]
    return s.save_grid("aegan-fig5-superres.png", grid, labels, title="AEGAN Fig. 5: super-resolution of "
                       "Gaussian-blurred generated images")

