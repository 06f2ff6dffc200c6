"""DIR/reproduction.md: the command, machine and budget; one verdict row per claim; then each paper's tables and
labelled figures — every number read from DIR/results/*.json, which the parts wrote."""
from __future__ import annotations

import dataclasses

from ganinv.core.io import atomic_write_text
from ganinv.experiments.markdown import header, md_table
from ganinv.experiments.reproduce.verdicts import all_rows, number
from ganinv.experiments.reproduce.aegan import TABLE1
from ganinv.experiments.reproduce.projection import NAMED_ATTRIBUTES
from ganinv.experiments.reproduce.suite import Suite
from ganinv.metrics import lpips_status

METRICS = ["dhash_similarity", "psnr", "ssim", "invert_ms_per_image", "n"]


def write_report(s: Suite, results: dict[str, dict], progress: dict) -> str:
    rows = all_rows(results, NAMED_ATTRIBUTES)
    sections = [
        header(f"reproduce --budget {s.budget.name}", seed=s.seed, command=s.command, data=s.data).replace(
            "# ganinv bench", "# ganinv"),
        budget_section(s, progress),
        "## Verdicts\n", md_table(rows, ["claim", "figure", "ours", "verdict", "why"]),
        *(fn(s, results) for fn in (aegan_section, dlsgan_section, dedgan_section, projection_section)),
        notes(s, results),
    ]
    text = "\n".join(sections)
    atomic_write_text(s.out / "reproduction.md", text)
    return text


def budget_section(s: Suite, progress: dict) -> str:
    parts = progress["parts"]
    wall = sum(p.get("seconds", 0) for p in parts.values())
    timing = ", ".join(f"{name} {p['seconds'] / 60:.1f} min" for name, p in parts.items() if "seconds" in p)
    fields = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(s.budget).items() if k != "name")
    return "\n".join([
        f"Budget `{s.budget.name}`: {fields}.", "",
        f"Wall time of the attempts that finished each part: {wall / 60:.1f} min in all ({timing}).", "",
        "Train on the train split only; every real-image number is on the test split (CelebA partition 2 when "
        "`list_eval_partition.txt` exists, else the last 10 % of the sorted files).", ""])


def _image(path: str, alt: str) -> str:
    return f"![{alt}]({path})\n"


def aegan_section(s: Suite, results: dict) -> str:
    out = ["## AEGAN (Luo, Xu, Tang, Lv): Table 1, Table 2, Fig. 5\n"]
    if "aegan-table1" in results:
        r, b = results["aegan-table1"], s.budget
        out += [f"DCGAN (tables 3–5) at {b.image_size} px, width {b.width} (paper: 64), {b.gan_steps} steps, batch "
                f"{b.batch_size}, Adam 2e-4/β1 0.5; aegan and the directly trained model {b.encoder_steps} steps on "
                f"it; BiGAN {b.bigan_steps} steps with its own G (its generated row is its own samples, as the "
                "paper's table 6 comparison). Optimisation and hybrid use Creswell & Bharath's BCE (eq. 2) on the "
                f"first {b.n_optimize or 'all'} images of each set.\n"]
        for split, title in (("generated", "generated samples"), ("real", "test faces")):
            table = [{"method": m, "loss": r["rows"][m]["loss"], **{k: r["rows"][m][split].get(k) for k in METRICS}}
                     for m in TABLE1]
            out += [f"Reconstruction of {title}:\n", md_table(table, ["method", "loss", *METRICS])]
        out.append(_image(r["figure"], "AEGAN Fig. 2"))
    if "aegan-table2" in results:
        r = results["aegan-table2"]
        out += [f"Table 2 — {r.get('database_note', '')}; {r['queries']} queries from the test split; k = "
                f"{r['k']}; label similarity over the 40 attributes:\n",
                md_table([{"features": m, "label similarity@10": v} for m, v in r["label_similarity"].items()]),
                _image(r["figure"], "AEGAN Fig. 4")]
    if "aegan-superres" in results:
        r = results["aegan-superres"]
        out += ["Fig. 5 — PSNR/SSIM against the clean image:\n", md_table(r["rows"]), _image(r["figure"], "Fig. 5")]
    return "\n".join(out)


def dlsgan_section(s: Suite, results: dict) -> str:
    if "dlsgan" not in results:
        return ""
    r, b = results["dlsgan"], s.budget
    stems = list(next(iter(r["curves"].values())).keys())
    finals = [{"cell": n, **{st: (r["curves"][n][st][-1][1] if r["curves"][n].get(st) else None) for st in stems}}
              for n in r["names"]]
    return "\n".join([
        "## DLSGAN (Cho & Krzyzak): the ablation grid\n",
        f"Reduced-filter StyleGAN2 at {b.style_size} px, width {b.style_width}, d_z {b.style_latent}, batch "
        f"{b.style_batch}, {b.style_epochs} epochs, {b.evals_per_epoch} evaluations an epoch; NSGAN + R1, Adam 1e-3 "
        f"β (0, 0.99), 2 % lr decay an epoch (§4.1). Cells: {', '.join(r['names'])}. "
        f"Distances: {r.get('fd_name', 'FD')} and {r.get('kid_name', 'KID')} from {r.get('fd_fake_n', '?')} "
        f"generated vs {r.get('fd_real_n', '?')} test images. Final values:\n",
        md_table(finals), *(_image(f, f) for f in r["figures"]),
        _image(r["reconstructions"], "Figs. 11, 16"), _image(r["traversal"], "Fig. 17")])


def dedgan_section(s: Suite, results: dict) -> str:
    if "dedgan" not in results:
        return ""
    r, b = results["dedgan"], s.budget
    runs = [("short", r["short"]), ("long", r)] if "short" in r else [("long", r)]
    table = [{"run": f"{name}: {run['steps']} steps, λ_emb 1 → 10 at {run['lambda_switch_step']}", "images": split,
              **{k: v for k, v in run[split].items() if isinstance(v, (int, float))}}
             for name, run in runs for split in ("generated", "real")]
    return "\n".join([
        "## Direction-embedding discriminator GAN (Cho)\n",
        f"{b.style_size} px, width {b.style_width}, {b.style_latent - 1} angles (n = {b.style_latent}), W 512 wide; "
        f"two budgets (the verdict is the long run's):\n", md_table(table),
        *([_image(r["curves"], "angle error against steps")] if "curves" in r else []),
        _image(r["figure"], "Figs. 3–4")])


def projection_section(s: Suite, results: dict) -> str:
    if "projection" not in results:
        return ""
    r, b = results["projection"], s.budget
    out = ["## Projection networks (Arfeen & Zhang)\n",
           f"P: ResNet18, {r['backbone_init']}, regressing w = F(z∘s) of the DLSGAN N-DLS-DG generator, "
           f"{b.projection_steps} steps (latent MSE in W), then {b.finetune_steps} steps with λ = {b.recon_weight} "
           "× MSE reconstruction of real train images added (§4.3).\n"]
    rows = [{"P": "before fine-tune", "images": split, **_short(r[split])} for split in ("generated", "real")]
    if "projection-finetune" in results:
        f = results["projection-finetune"]
        rows += [{"P": "after fine-tune", "images": split, **_short(f[split])} for split in ("generated", "real")]
    out += [md_table(rows), "Super-resolution against input size (Fig. 3):\n", md_table(r["superres"]["rows"]),
            _image(r["superres"]["figure"], "Fig. 3")]
    if "projection-finetune" in results:
        out.append(_image(results["projection-finetune"]["figure"], "Fig. 5"))
    c = r["clusters"]
    purity = [{"attribute": n, "purity": c["purity"][n]["purity"], "shuffled": c["shuffled_purity"][n],
               "gain": c["gain"][n]} for n in sorted(c["gain"], key=lambda n: -c["gain"][n])]
    out += [f"Ward clustering of {c['n']} test faces into {c['k']} clusters (sizes {c['sizes']}, silhouette "
            f"{number(c['silhouette'])}); purity per attribute, beside the same clusters shuffled:\n", md_table(purity),
            *(_image(f, f) for f in c["figures"])]
    return "\n".join(out)


def _short(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("psnr", "ssim", "dhash_similarity", "n") if k in metrics}


def notes(s: Suite, results: dict) -> str:
    available, note = lpips_status()
    lines = ["## Notes\n",
             "- FID needs Inception weights and LPIPS needs AlexNet weights; where they are not on disk the suite "
             "says so above and reports FD-domain / KID-domain (features of a small classifier trained on the "
             "train split's 40 attributes), not comparable with published FIDs.",
             "" if available else f"- LPIPS not reported: {note}"]
    return "\n".join(line for line in lines if line) + "\n"
