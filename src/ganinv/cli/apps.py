"""CLI commands of the applications (search, super-resolution, clustering, editing); registered on ``cli.app``.

Every command that reads image files names each unreadable one on stderr (one line: the file and the reason),
goes on with the others and ends with ``exit_if_skipped``: exit status 3 when any was skipped.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from ganinv.cli.common import (
    OUT_HELP,
    AlignerOpt,
    Column,
    LandmarksOpt,
    align_option,
    at_most,
    check_images_fit,
    check_paths,
    default_out,
    exit_if_skipped,
    face_alignment,
    note,
    paste_back_option,
    plain_output,
    print_table,
    say,
    seed_option,
    wrote,
)
from ganinv.core.bounds import (
    MAX_BATCH,
    MAX_GRID_COLUMNS,
    MAX_GRID_ROWS,
    MAX_IMAGE_SIZE,
    MAX_WORKERS,
    image_format,
)
from ganinv.core.errors import GaninvError

app = typer.Typer()
MAX_RESULTS = 10_000  # results per search query: each is a tile of the result grid
SUPERRES_COPIES = 8  # batches of --n images alive at once: clean, degraded, bicubic, inverted and their work


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GaninvError(f"{name} must be comma-separated numbers, got {text!r}") from None


def _fmt(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


# ----------------------------------------------------------------------------------------------------- index
@app.command()
def index(
    run: Path = typer.Argument(..., help="run directory of an inverter (aegan, regression, dlsgan, …)"),
    data: str = typer.Option(..., help="dataset spec of the collection: mnist | digits | folder:PATH | celeba:PATH"),
    out: Path = typer.Option(..., "--out", help="index directory to create (or finish, after an interruption)"),
    split: str = typer.Option("train", help="train | valid | test | all (valid: CelebA's partition 1, needs "
                              "list_eval_partition.txt)"),
    ivf: bool = typer.Option(False, "--ivf", help="trained IVF-PQ (SQ8 re-ranking) instead of exact flat search, "
                             "for collections of millions"),
    methods: str = typer.Option("latent,dhash,phash,colour", help="feature methods to index, comma-separated"),
    limit: Optional[int] = typer.Option(None, min=1, help="index only the first N images"),
    batch_size: int = typer.Option(256, min=1, max=MAX_BATCH, help="images per inversion batch"),
    shard_size: int = typer.Option(4096, min=1, help="images per shard on disk (the unit of resuming)"),
    workers: int = typer.Option(0, min=0, max=MAX_WORKERS, help="DataLoader worker processes"),
    quiet: bool = typer.Option(False, help="no progress bar"),
):
    """Invert a collection into a FAISS index (latents + dHash/pHash/colour-histogram baselines); resumable."""

    check_paths(runs=[run], data=data)
    from ganinv.apps.search import build_index

    try:
        result = build_index(run, data, out, split=split, methods=methods.split(","), ivf=ivf, limit=limit,
                             batch_size=batch_size, shard_size=shard_size, workers=workers, show_progress=not quiet,
                             log=note)
    except OSError as exc:
        if not is_write_failure(exc, out):
            raise
        raise GaninvError(f"cannot write the index in {out}: {write_failure(exc)}; free some space (or choose "
                          "another --out) and run the same command again: it goes on from the shards already "
                          "written") from None
    say(f"indexed {len(result)} images ({', '.join(result.methods)}; {result.manifest['kind']})")
    wrote(out)
    exit_if_skipped(len(result.failures))


def is_write_failure(exc: OSError, out: Path) -> bool:
    """A full disk or quota anywhere, or any error on a file inside ``out``: the index could not be written (the
    generic message names no path and suggests --resume, which ``index`` does not have: it resumes by itself)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    name = exc.filename
    return name is not None and os.path.abspath(os.fsdecode(name)).startswith(os.path.abspath(out) + os.sep)


def write_failure(exc: OSError) -> str:
    """The reason in words and the file it happened on, when the operating system says which."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    return f"{reason} ({os.fsdecode(exc.filename)})" if exc.filename is not None else reason


@app.command("index-latents")
def index_latents_command(
    latents: Path = typer.Argument(..., help="latent directory from `ganinv invert RUN --data SPEC --out DIR`"),
    ivf: Optional[bool] = typer.Option(None, "--ivf/--flat", help="IVF-PQ or exact flat [IVF-PQ from 100k latents]"),
):
    """Index inverted latents with FAISS, one shard in memory at a time (GPUs used when faiss-gpu sees them):
    writes DIR/latents.faiss for `ganinv.apps.collection.search_latents`."""

    from ganinv.apps.collection import index_latents

    try:
        info = index_latents(latents, ivf=ivf, log=note)
    except RuntimeError as exc:  # FAISS's write_index on a full disk: a C++ message naming a temporary file
        if "write" not in str(exc):
            raise
        from ganinv.apps.faiss_index import faiss_reason

        raise GaninvError(f"cannot write {latents / 'latents.faiss'} ({faiss_reason(exc)}); free some space and run "
                          "the same command again") from None
    say(f"indexed {info['indexed']} of {info['n']} latents ({info['kind']})")
    wrote(latents / "latents.faiss")


# ---------------------------------------------------------------------------------------------------- search
@app.command()
def search(
    index_dir: Path = typer.Argument(..., metavar="INDEX", help="index directory (from `ganinv index`)"),
    images: list[Path] = typer.Argument(..., help="query image files or folders", readable=False),
    k: int = typer.Option(10, "-k", "--k", min=1, max=MAX_RESULTS, help="results per query"),
    method: str = typer.Option("latent", help="latent | dhash | phash | colour"),
    run: Optional[Path] = typer.Option(None, help="the run the index was built from, if it has moved"),
    nprobe: Optional[int] = typer.Option(None, min=1, help="IVF lists to visit (IVF indexes only) [manifest]"),
    out: Optional[Path] = typer.Option(None, "--out", help="result grid: each query, then its results "
                                       + OUT_HELP.format(name="search-QUERY.png")),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
):
    """Find the k nearest indexed images of each query; print ranked paths + distances, write a grid PNG."""
    out = out or default_out("search", images, suffix=".png")
    image_format(out)
    from ganinv.apps.search import search_files

    result = search_files(index_dir, images, out, k=k, method=method, run=run, nprobe=nprobe, warn=note)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_search_results(result)
        wrote(out)
    exit_if_skipped(len(result["skipped"]))


SEARCH_COLUMNS = [Column("rank", numeric=True), Column("item"), Column("distance", numeric=True)]


def _print_search_results(result: dict) -> None:
    """Piped: one TSV of every query's results (a query column first); on a terminal: a table per query."""
    from ganinv.data import display_path

    rows = {display_path(e["query"]): [[r["rank"], display_path(r["item"]), f"{r['distance']:.6g}"]
                                       for r in e["results"]] for e in result["queries"]}
    if plain_output():
        print_table(f"search by {result['method']}", [Column("query"), *SEARCH_COLUMNS],
                    [[query, *row] for query, ranked in rows.items() for row in ranked])
        return
    for query, ranked in rows.items():
        print_table(f"{query} — {result['method']}", SEARCH_COLUMNS, ranked)


# ----------------------------------------------------------------------------------------------- eval-search
@app.command("eval-search")
def eval_search(
    run: Path = typer.Argument(..., help="run directory of an inverter"),
    data: str = typer.Option(..., help="labelled dataset spec (celeba:PATH, mnist, digits): train split indexed, "
                             "queries from the test split"),
    index_dir: Optional[Path] = typer.Option(None, "--index", help="index directory to use or build (resumable) "
                                             "[a temporary one]"),
    queries: int = typer.Option(64, min=1, help="number of query images: the first of the test split, so outside "
                                "the database (AEGAN paper: 64)"),
    k: int = typer.Option(10, "-k", "--k", min=1, max=MAX_RESULTS, help="results per query for label similarity"),
    database: int = typer.Option(20_000, "--database", "--limit", min=1, help="the search database: the first N "
                                 "train images, all when fewer (AEGAN paper: 20000); --limit is its old name"),
    methods: str = typer.Option("latent,dhash,phash,colour", help="methods to compare"),
    seed: int = seed_option("seed of the occlusion patches and the random baseline"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
    quiet: bool = typer.Option(False, help="no progress bar"),
):
    """AEGAN (Luo et al.) table 2 (label similarity of the top-k) and robustness (recall@1/@10 of the original
    under colour, occlusion and blur), latents vs dHash / pHash / colour histogram."""

    check_paths(runs=[run], data=data)
    from ganinv.apps.search import evaluate_search

    results = evaluate_search(run, data, index_dir=index_dir, queries=queries, k=k, database=database,
                              methods=methods.split(","), seed=seed, show_progress=not quiet, log=note)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print_search_evaluation(results, k)
    exit_if_skipped(len(results["skipped"]))


def _print_search_evaluation(results: dict, k: int) -> None:
    from ganinv.apps.search import PERTURBATIONS

    print_table(f"label similarity of the top-{k} ({results['queries']} test queries, {results['indexed']} indexed "
                "train images)", [Column("method"), Column("shared labels", "shared labels ↑", numeric=True)],
                [[name + (" (chance)" if name == "random" else ""), f"{value:.4f}"]
                 for name, value in results["label_similarity"].items()])
    say(f"database: {results['database_note']}")
    measures = (("recall@1", "r@1"), ("recall@10", "r@10"), ("median rank", "rank"))
    columns = [Column("method")] + [Column(f"{kind} {m}", f"{kind} {short}", numeric=True) for kind in PERTURBATIONS
                                    for m, short in measures]
    rows = [[name, *(v for kind in PERTURBATIONS for v in (f"{per_kind[kind]['recall@1']:.3f}",
                                                           f"{per_kind[kind]['recall@10']:.3f}",
                                                           f"{per_kind[kind]['median_rank']:g}"))]
            for name, per_kind in results["robustness"].items()]
    print_table("robustness: is the original found for a perturbed query?", columns, rows,
                legend=["r@1, r@10: recall at 1 and 10; rank: the original's median rank"])


# -------------------------------------------------------------------------------------------------- superres
@app.command()
def superres(
    run: Path = typer.Argument(..., help="run directory of an inverter"),
    images: list[Path] = typer.Argument(..., help="image files or folders", readable=False),
    sigma: Optional[float] = typer.Option(None, min=0, help="blur the (clean) images with this gaussian σ first"),
    factor: Optional[int] = typer.Option(None, min=1, max=MAX_IMAGE_SIZE,
                                         help="downsample the (clean) images by this factor first"),
    out: Optional[Path] = typer.Option(None, "--out", help="grid PNG: clean, degraded, \\[bicubic], inverted "
                                       + OUT_HELP.format(name="superres-IMAGE.png; with --sigma or --factor "
                                                         "superres-sigmaS-IMAGE.png or superres-xF-IMAGE.png")),
):
    """Super-resolve images through the generator. With --sigma/--factor the images are degraded first (a
    demonstration against the clean image: PSNR and SSIM of each row against it, in the grid and a table);
    without, each image is taken as the low-resolution input as it is."""
    check_paths(runs=[run])
    mode = f"sigma{sigma:g}" if sigma is not None else f"x{factor}" if factor is not None else ""
    out = out or default_out("superres", images, mode=mode, suffix=".png")
    image_format(out)
    from ganinv.apps.superres import super_resolve_files

    result = super_resolve_files(run, images, out, sigma=sigma, factor=factor, warn=note)
    say(f"super-resolved {result.n} image(s) (rows: {', '.join(result.rows)})")
    if result.scores:
        columns = [Column("row"), Column("PSNR dB", "PSNR↑", numeric=True), Column("SSIM", "SSIM↑", numeric=True)]
        print_table("against the clean image (mean over the images)", columns,
                    [[name, f"{_mean(s['psnr']):.2f}", f"{_mean(s['ssim']):.4f}"] for name, s in result.scores.items()])
    wrote(out)
    exit_if_skipped(len(result.skipped))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@app.command("eval-superres")
def eval_superres(
    run: Path = typer.Argument(..., help="run directory of an inverter"),
    data: Optional[str] = typer.Option(None, help="dataset spec for real test images"),
    n: int = typer.Option(64, min=1, help="generated images (and at most this many real test images)"),
    sigmas: str = typer.Option("1,2,3", help="blur σ values, comma-separated"),
    factors: str = typer.Option("2,4,8", help="downsampling factors, comma-separated"),
    seed: int = seed_option("seed of the generated images"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
):
    """PSNR/SSIM against the clean image for each σ / factor: inversion beside bicubic and the degraded input."""

    check_paths(runs=[run], data=data)
    sigma_list, factor_list = _floats(sigmas, "--sigmas"), _floats(factors, "--factors")
    check_images_fit(run, n, SUPERRES_COPIES, "eval-superres --n", "ask for fewer with --n")
    from ganinv.apps import load_inverter, read_dataset_images
    from ganinv.apps.superres import check_conditions, evaluate_superres
    from ganinv.data import open_dataset

    model = load_inverter(run)
    sigma_list, factor_list = check_conditions(sigma_list, factor_list, model.image_shape[-1])  # before any work
    real, skipped = None, []
    if data is not None:
        test = open_dataset(data, image_size=model.image_shape[1], channels=model.image_shape[0], split="test")
        real, _, skipped = read_dataset_images(test, n, note, f"test images of {data}")
    rows = evaluate_superres(model, real=real, n=n, seed=seed, sigmas=sigma_list, factors=factor_list)
    if as_json:
        print(json.dumps({"run": str(run), "rows": rows, "skipped": [s.to_json() for s in skipped]}, indent=2))
        exit_if_skipped(len(skipped))
        return
    print_table(f"super-resolution by inversion — {run} ({model.image_shape[1]} px)",
                [Column("images"), Column("n", numeric=True), Column("degradation"), Column("method"),
                 Column("PSNR dB", "PSNR↑", numeric=True), Column("SSIM", "SSIM↑", numeric=True)],
                [[r["images"], r["n"], r["degradation"], r["method"], f"{r['psnr']:.2f}", f"{r['ssim']:.4f}"]
                 for r in rows])
    exit_if_skipped(len(skipped))


# --------------------------------------------------------------------------------------------------- cluster
@app.command()
def cluster(
    run: Path = typer.Argument(..., help="run directory of an inverter"),
    data: str = typer.Option(..., help="dataset spec"),
    k: int = typer.Option(..., "--k", "-k", min=1, help="number of clusters"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for cluster-NN.png, closest-pairs.png, "
                                       "clusters.json " + OUT_HELP.format(name="cluster-kK-DATA/")),
    split: str = typer.Option("train", help="train | valid | test | all (valid: CelebA's partition 1, needs "
                              "list_eval_partition.txt)"),
    n: int = typer.Option(2000, min=2, help="cluster the first N images"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
    quiet: bool = typer.Option(False, help="no progress bar"),
):
    """Ward agglomerative clustering of latents: a grid per cluster, the closest pairs, silhouette and purity."""

    check_paths(runs=[run], data=data)
    out = out or default_out("cluster", [data.partition(":")[2] or data], mode=f"k{k}")
    from ganinv.apps.cluster import cluster_dataset

    summary = cluster_dataset(run, data, k, out, split=split, n=n, show_progress=not quiet, log=note)
    if as_json:
        print(json.dumps(summary.to_json(), indent=2))
        exit_if_skipped(len(summary.skipped))
        return
    say(f"{summary.n} images in {k} clusters of sizes {summary.sizes}; silhouette {_fmt(summary.silhouette)}")
    if summary.purity is not None:
        purity = sorted(summary.purity.items(), key=lambda kv: kv[1]["chance"] - kv[1]["purity"])
        print_table("cluster purity per label (chance: the majority value's share)",
                    [Column("label"), Column("purity", "purity ↑", numeric=True), Column("chance", numeric=True)],
                    [[name, f"{p['purity']:.4f}", f"{p['chance']:.4f}"] for name, p in purity])
    wrote(out)
    exit_if_skipped(len(summary.skipped))


# ------------------------------------------------------------------------------------------------------ edit
EditAlign = Annotated[bool, align_option("with IMAGES (any mode)")]
EditPasteBack = Annotated[bool, paste_back_option("each --attribute edit (every strength of the grid)",
                                                  "the folder OUT-pasted/ beside the grid, NNNNN-NAME-ATTR±S.png")]


@app.command()
def edit(
    run: Path = typer.Argument(..., help="run directory (an inverter when images are given)"),
    images: Optional[list[Path]] = typer.Argument(None, help="image files; none: latents sampled from the prior",
                                                  readable=False),
    out: Path | None = typer.Option(None, "--out", help="grid PNG " + OUT_HELP.format(
        name="edit-MODE-IMAGE.png, MODE interpolate, attribute-ATTR or traverse; without images "
             "edit-MODE-samples.png")),
    interpolate: bool = typer.Option(False, "--interpolate", help="interpolate between two images' latents"),
    attribute: Optional[str] = typer.Option(None, help="attribute to add/remove, e.g. Smiling (needs --data)"),
    data: Optional[str] = typer.Option(None, help="labelled dataset spec to learn the attribute direction on"),
    # None: apps.edit.DIRECTION_TRAIN_N, the web page's count too (written out in the help: importing it loads torch)
    train_n: Optional[int] = typer.Option(None, min=2, show_default="2000", help="labelled images to learn the "
                                          "direction from; a direction learned before from as many images of the "
                                          "same data is reused (RUN/directions)"),
    strength: str = typer.Option("-2..2", help="attribute strength range, in std of the latents along the direction"),
    traverse: Optional[int] = typer.Option(None, "--traverse", min=1, help="sweep the K most important latent elements "
                                           "from -2 to 2 (runs with a latent scale: dlsgan)"),
    steps: int = typer.Option(9, min=2, callback=at_most(MAX_GRID_COLUMNS, "a wider row is unreadable, and the "
                              "grid's memory grows with every column"),
                              help=f"images per row, at most {MAX_GRID_COLUMNS}"),
    samples: int = typer.Option(4, min=1, max=MAX_GRID_ROWS, help="sampled latents when no image is given"),
    seed: int = seed_option("seed of sampled latents"),
    align: EditAlign = False, aligner: AlignerOpt = None, landmarks: LandmarksOpt = None,
    paste_back: EditPasteBack = False,
):
    """Interpolate between images, move them along an attribute direction, or traverse important elements; the grid
    (each row's original first) goes to --out, by default a file named after the mode and the first image (so
    --traverse never overwrites an interpolation). --align and --paste-back: as invert's, for real photos."""
    check_paths(runs=[run], data=data)
    out = out or default_out("edit", images or ["samples"], mode=edit_mode(interpolate, attribute), suffix=".png")
    image_format(out)  # an unknown suffix is refused before the run is loaded
    align_with = face_alignment(align, aligner, landmarks, images)
    pasted = out.with_name(f"{out.stem}-pasted") if paste_back else None
    from ganinv.apps.edit import edit_run

    result = edit_run(run, images, interpolation=interpolate, attribute=attribute, traversal=traverse, data=data,
                      train_n=train_n, strength=strength, steps=steps, samples=samples, seed=seed, align=align_with,
                      landmarks=landmarks, paste_to=pasted, warn=note)
    write_edit(result, out, pasted)


def write_edit(result, out: Path, pasted: Path | None) -> None:
    """The grid to ``out``; its description, the pasted photos' folder (with --paste-back) and "wrote OUT"."""
    from ganinv.core.viz import save_png

    save_png(result.grid, out)
    say(result.description)
    if result.pasted:
        say(f"pasted {len(result.pasted)} edited face(s) back into their photos")
        wrote(pasted)
    wrote(out)
    exit_if_skipped(len(result.skipped))


def edit_mode(interpolate: bool, attribute: str | None) -> str:
    """The mode's part of edit's default file name: interpolate, attribute-ATTR or traverse."""
    return "interpolate" if interpolate else f"attribute-{attribute}" if attribute is not None else "traverse"
