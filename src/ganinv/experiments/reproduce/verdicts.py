"""Each claim of the four papers as one row — claim | paper's figure | ours | verdict | why — computed from the
suite's results by a rule stated in the row's "why" (never written by hand)."""
from __future__ import annotations

import math
from collections.abc import Callable

REPRODUCED, PARTLY, REFUTED = "reproduced", "partly", "refuted"


def row(claim: str, figure: str, ours: str, verdict: str, why: str) -> dict:
    return {"claim": claim, "figure": figure, "ours": ours, "verdict": verdict, "why": why}


def graded(hits: int, total: int) -> str:
    """All of ``total`` conditions hold: reproduced; some: partly; none: refuted."""
    return REPRODUCED if hits == total else PARTLY if hits else REFUTED


def number(x: float | str | None, digits: int = 3) -> str:
    """A number for a table cell: "—" when missing (None, NaN), "inf" as written by ``core.io.jsonable``."""
    if x is None or isinstance(x, str) or math.isnan(x):
        return "—" if x is None or not isinstance(x, str) else x
    return f"{x:.{digits}f}"


_f = number


# ------------------------------------------------------------------------------------------------ AEGAN
DHASH_CHANCE = 0.5  # dHash similarity of unrelated images: half their 64 bits agree


def aegan_table1(r: dict) -> dict:
    rows = r["rows"]
    sim = {m: rows[m]["generated"]["dhash_similarity"] for m in ("aegan", "regression", "bigan")}
    bigan_real = rows["bigan"]["real"]["dhash_similarity"]
    # BiGAN's row is its own G's samples: it says something only if that G learned faces, i.e. if its encoder and
    # G reconstruct real faces better than chance
    bigan_counts = bigan_real > DHASH_CHANCE + 0.05
    beats = [sim["aegan"] > sim["regression"]]
    if bigan_counts:
        beats += [sim["aegan"] > sim["bigan"], sim["regression"] > sim["bigan"]]
    ours = f"AEGAN {_f(sim['aegan'])}, directly trained {_f(sim['regression'])}, BiGAN {_f(sim['bigan'])}"
    if not bigan_counts:
        ours += (f" — BiGAN left out: its test-face dHash similarity {_f(bigan_real)} is chance level, its G did not "
                 "learn faces at this budget (its samples in Fig. 2), so its own-sample score is no evidence")
    return row("AEGAN reconstructs generated samples best by dHash similarity: AEGAN > directly trained > BiGAN",
               "AEGAN Table 1 (0.8266 > 0.7944 > 0.6594), Fig. 2", ours, graded(sum(beats), len(beats)),
               "reproduced when every ordering holds, partly when some do; BiGAN counts only when its test-face dHash "
               f"similarity is above chance ({DHASH_CHANCE} + 0.05)")


def aegan_table2(r: dict) -> dict:
    sim = r["label_similarity"]
    ok = [sim["latent"] > sim["dhash"], sim["latent"] > sim["random"]]
    others = ", ".join(f"{m} {_f(sim[m])}" for m in ("phash", "colour") if m in sim)
    return row("Searching by AEGAN latent finds faces sharing more of the 40 attributes than dHash",
               "AEGAN Table 2 (0.7918 vs 0.7483), Figs. 3–4",
               f"latent {_f(sim['latent'])}, dHash {_f(sim['dhash'])}, {others}, random {_f(sim['random'])} "
               f"({r['queries']} queries, {r['indexed']} images indexed)",
               graded(sum(ok), 2), "reproduced when the latent beats both dHash and random picks")


def aegan_superres(r: dict) -> dict:
    psnr, ssim = _superres_metric(r["rows"], "generated", "psnr"), _superres_metric(r["rows"], "generated", "ssim")
    blurs = sorted({d for d, _ in psnr if d.startswith("blur")})
    wins = [m[(d, "inverted")] > m[(d, "degraded")] for d in blurs for m in (psnr, ssim)]
    ours = "; ".join(f"{d}: blurred {_f(psnr[(d, 'degraded')], 1)} dB / {_f(ssim[(d, 'degraded')], 2)} → AEGAN "
                     f"{_f(psnr[(d, 'inverted')], 1)} dB / {_f(ssim[(d, 'inverted')], 2)}" for d in blurs)
    ours += (f" (PSNR / SSIM); from the clean image AEGAN reaches {_f(psnr[('none', 'inverted')], 1)} dB / "
             f"{_f(ssim[('none', 'inverted')], 2)}")
    return row("AEGAN's IG and G restore Gaussian-blurred generated images", "AEGAN Fig. 5", ours,
               graded(sum(wins), len(wins)), "against the clean image: reproduced when the reconstruction beats the "
               "blurred input on PSNR and on SSIM at every σ, partly when on some (PSNR alone favours a blur, which "
               "keeps the low frequencies; SSIM weighs structure)")


def _superres_metric(rows: list[dict], images: str, metric: str) -> dict[tuple[str, str], float]:
    return {(r["degradation"], r["method"]): r[metric] for r in rows if r["images"] == images}


def _superres_psnr(rows: list[dict], images: str) -> dict[tuple[str, str], float]:
    return _superres_metric(rows, images, "psnr")


# ------------------------------------------------------------------------------------------------ DLSGAN
def _point(curves: dict, cell: str, stem: str, index: int) -> float | None:
    """The value of a cell's curve at ``index`` (0: the first evaluation, −1: the last), or None."""
    points = curves.get(cell, {}).get(stem) or []
    return points[index][1] if points else None


def _final(curves: dict, cell: str, stem: str) -> float | None:
    return _point(curves, cell, stem, -1)


def _first(curves: dict, cell: str, stem: str) -> float | None:
    return _point(curves, cell, stem, 0)


def _prefixes(r: dict) -> list[str]:
    return sorted({name.split("-")[0] for name in r["names"]})


def dlsgan_no_dls(r: dict) -> dict:
    c = r["curves"]
    finals = {f"{p}-noDLS-{on}": _final(c, f"{p}-noDLS-{on}", "enc_loss") for p in _prefixes(r) for on in ("D", "DG")}
    near = [v is not None and abs(v - 1) <= 0.2 for v in finals.values()]
    return row("Without DLS the encoder loss L_enc hardly changes from 1", "DLSGAN Figs. 3–4",
               ", ".join(f"{k} {_f(v)}" for k, v in finals.items()), graded(sum(near), len(near)),
               "final epoch-mean L_enc within 0.2 of 1")


def dlsgan_dls_falls(r: dict) -> dict:
    c, checks, text = r["curves"], [], []
    for p in _prefixes(r):
        for on in ("D", "DG"):
            dls, no = _final(c, f"{p}-DLS-{on}", "enc_loss"), _final(c, f"{p}-noDLS-{on}", "enc_loss")
            first = _first(c, f"{p}-DLS-{on}", "enc_loss")
            checks.append(dls is not None and first is not None and no is not None and dls < first and dls < no)
            text.append(f"{p}-DLS-{on} {_f(first)} → {_f(dls)} (no DLS {_f(no)})")
    return row("With DLS, L_enc keeps falling and ends below the run without DLS", "DLSGAN Figs. 3–4",
               "; ".join(text), graded(sum(checks), len(checks)),
               "each DLS cell: final epoch-mean L_enc below its first epoch's and below the same cell without DLS")


def dlsgan_dg_below_d(r: dict) -> dict:
    c, checks, text = r["curves"], [], []
    for p in _prefixes(r):
        for dls in ("DLS", "noDLS"):
            d, dg = _final(c, f"{p}-{dls}-D", "enc_loss"), _final(c, f"{p}-{dls}-DG", "enc_loss")
            checks.append(d is not None and dg is not None and dg < d)
            text.append(f"{p}-{dls}: DG {_f(dg)} vs D {_f(d)}")
    return row("L_enc is lower when the encoder loss is also on the generator (DG) than on D only",
               "DLSGAN Figs. 3–4", "; ".join(text), graded(sum(checks), len(checks)),
               "final epoch-mean L_enc, DG below D in each pair")


def dlsgan_reconstruction(r: dict) -> dict:
    c, names = r["curves"], r["names"]
    checks, text = [], []
    for stem in ("psnr_gen", "ssim_gen", "psnr_test", "ssim_test"):
        finals = {n: _final(c, n, stem) for n in names}
        best = max((v, n) for n, v in finals.items() if v is not None)[1]
        checks.append(best.endswith("-DLS-DG"))
        text.append(f"{stem}: best {best} ({_f(finals[best], 2)})")
    return row("Reconstruction of generated and test images is best with DLS and DG (PSNR and SSIM)",
               "DLSGAN Figs. 7–15, 11, 16", "; ".join(text), graded(sum(checks), len(checks)),
               "at the last evaluation, a DLS-DG cell has the highest of each of the four metrics")


def dlsgan_generation(r: dict) -> dict:
    c, names, key = r["curves"], r["names"], _fd_stem(r)
    finals = {n: _final(c, n, key) for n in names}
    values = [v for v in finals.values() if v is not None]
    spread = (max(values) - min(values)) / min(values) if values and min(values) > 0 else float("nan")
    verdict = REPRODUCED if spread <= 0.25 else PARTLY if spread <= 0.5 else REFUTED
    return row("The training method makes little difference to generation quality", "DLSGAN Figs. 1–2 (FID)",
               ", ".join(f"{n} {_f(v, 1)}" for n, v in finals.items()) + f" ({r.get('fd_name', 'FD')})",
               verdict, "spread (max − min) / min of the final FD: ≤ 25 % reproduced, ≤ 50 % partly")


def _fd_stem(r: dict) -> str:
    stems = next(iter(r["curves"].values())).keys()
    return next((s for s in stems if s in ("fid", "fd", "fd_domain")), "fd")


# ------------------------------------------------------------------------------------------------ DED-GAN
def dedgan(r: dict) -> dict:
    g, real = r["generated"], r["real"]
    error, chance = g["angle_error_deg"], g["angle_chance_deg"]
    verdict = REPRODUCED if error < 0.5 * chance else PARTLY if error < chance else REFUTED
    short = (f" (short run, {r['short']['steps']} steps: {_f(r['short']['generated']['angle_error_deg'], 1)}°)"
             if "short" in r else "")
    return row("The discriminator's embedding direction inverts the generator (no encoder, no reconstruction loss)",
               "Direction-embedding GAN Figs. 3–4",
               f"{r['steps']} steps: angle error {_f(error, 1)}° (chance {_f(chance, 1)}°){short}; PSNR generated "
               f"{_f(g['psnr'], 1)} dB, test {_f(real['psnr'], 1)} dB; SSIM {_f(g['ssim'])} / {_f(real['ssim'])}",
               verdict, "angle error below half its chance level reproduced, below chance partly")


# ------------------------------------------------------------------------------------------------ projection
def projection_superres(r: dict) -> dict:
    psnr = _superres_psnr(r["superres"]["rows"], "generated")
    full = psnr[("none", "inverted")]
    downs = sorted({d for d, _ in psnr if d.startswith("down")}, key=lambda d: int(d.split("×")[1].split()[0]))
    text = [f"full size {_f(full, 1)} dB"] + [f"{d}: P {_f(psnr[(d, 'inverted')], 1)} / bicubic "
                                              f"{_f(psnr[(d, 'bicubic')], 1)} dB" for d in downs]
    quarter = next((d for d in downs if "×4" in d), None)
    checks = [quarter is not None and psnr[(quarter, "inverted")] >= full - 2.0]
    checks += [psnr[(d, "inverted")] > psnr[(d, "bicubic")] for d in downs if "×2" not in d]
    return row("P super-resolves generated faces from much smaller inputs; quality holds to ¼ of the side",
               "Projection networks Fig. 3", "; ".join(text), graded(sum(checks), len(checks)),
               "reproduced when P from ¼ the side is within 2 dB of P at full size and beats bicubic from ¼ and ⅛")


def projection_finetune(before: dict, after: dict) -> dict:
    sharp_b, sharp_a = before["sharpness"]["reconstructions"], after["sharpness"]["reconstructions"]
    gain = after["real"]["psnr"] - before["real"]["psnr"]
    smoother = sharp_a < sharp_b
    verdict = REPRODUCED if smoother and gain < 0.5 else PARTLY if smoother else REFUTED
    return row("Fine-tuning P on real images with λ·MSE does not improve it and smooths its reconstructions",
               "Projection networks §4.3, Fig. 5",
               f"test PSNR {_f(before['real']['psnr'], 2)} → {_f(after['real']['psnr'], 2)} dB; Laplacian variance "
               f"of reconstructions {_f(sharp_b, 4)} → {_f(sharp_a, 4)} (test images "
               f"{_f(before['sharpness']['test_images'], 4)})", verdict,
               "smoother = lower Laplacian variance; reproduced when smoother and the test PSNR gains < 0.5 dB, "
               "partly when smoother but better")


def projection_clusters(r: dict, named: tuple[str, ...]) -> dict:
    c = r["clusters"]
    gains = {n: c["gain"][n] for n in named if n in c["gain"]}
    top = sorted(c["gain"].items(), key=lambda kv: -kv[1])[:5]
    hits = sum(g >= 0.03 for g in gains.values())
    verdict = REPRODUCED if hits >= 3 else PARTLY if hits else REFUTED
    return row("Ward clusters of P's projections of real faces group gender, glasses, hair and style",
               "Projection networks Figs. 7–8",
               f"{c['k']} clusters of {c['n']} test faces; purity gain over shuffled clusters: "
               + ", ".join(f"{n} {g:+.3f}" for n, g in gains.items())
               + "; largest: " + ", ".join(f"{n} {g:+.3f}" for n, g in top), verdict,
               "gain = purity − purity of the same clusters shuffled; reproduced when ≥ 3 of the named traits gain "
               "≥ 0.03, partly when 1–2 do")


def all_rows(results: dict[str, dict], named: tuple[str, ...]) -> list[dict]:
    """Every verdict whose parts have finished."""
    plan: list[tuple[tuple[str, ...], Callable]] = [
        (("aegan-table1",), aegan_table1), (("aegan-table2",), aegan_table2), (("aegan-superres",), aegan_superres),
        (("dlsgan",), dlsgan_no_dls), (("dlsgan",), dlsgan_dls_falls), (("dlsgan",), dlsgan_dg_below_d),
        (("dlsgan",), dlsgan_reconstruction), (("dlsgan",), dlsgan_generation), (("dedgan",), dedgan),
        (("projection",), projection_superres), (("projection", "projection-finetune"), projection_finetune),
        (("projection",), lambda r: projection_clusters(r, named)),
    ]
    return [fn(*(results[p] for p in parts)) for parts, fn in plan if all(p in results for p in parts)]
