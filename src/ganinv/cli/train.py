"""``ganinv train | invert | eval | ablate | demo``: training runs, inverting images, evaluating, the papers' ablation
and the demo — each a thin wrapper over a library function.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ganinv.cli.common import (
    THREADS_HELP,
    AlignerOpt,
    Column,
    GaninvCommand,
    LandmarksOpt,
    ModalCommand,
    Modes,
    align_option,
    at_most,
    check_images_fit,
    check_landmark_model,
    check_paths,
    chosen_aligner,
    console,
    default_out,
    exit_if_skipped,
    note,
    paste_back_option,
    print_results_table,
    print_table,
    say,
    seed_option,
    warn,
    wrote,
)
from ganinv.core.bounds import (
    MAX_BATCH,
    MAX_IMAGE_SIZE,
    MAX_LATENT_DIM,
    MAX_OPT_STEPS,
    MAX_STEPS,
    MAX_WIDTH,
    MAX_WORKERS,
)
from ganinv.core.errors import GaninvError
from ganinv.core.names import (
    DeviceName,
    EncoderTarget,
    MethodName,
    Precision,
    PresetName,
    PriorName,
    RefineLoss,
    SpaceName,
    Split,
    Tracker,
)

app = typer.Typer()
IMAGE_SIZE_LIMIT = at_most(MAX_IMAGE_SIZE, "16 megapixels; every image, batch and net layer grows with its square")
STEPS_LIMIT = at_most(MAX_STEPS, "about 12 days at 10 steps a second; no paper's schedule is longer")


# ---------------------------------------------------------------------------------------------------- train
QUICK_STEPS, QUICK_EVERY = 300, 100  # train --quick
DEFAULT_PRESET = "small"


def preset_defaults(field: str) -> str:
    """A config field's default under each preset, then where a method's own presets differ, e.g. "small: 32;
    paper: 64; dlsgan, dedgan: 16" — from core.config.PRESETS and Method.presets, so --help cannot drift from them.
    Called only when help is shown: these imports load torch."""
    from ganinv.core.config import PRESETS, NetConfig
    from ganinv.methods import METHODS

    section = 0 if field in NetConfig.__dataclass_fields__ else 1
    base = {p: getattr(PRESETS[p][section], field) for p in sorted(PRESETS, key=lambda p: p != DEFAULT_PRESET)}
    own: dict[str, list[str]] = {}  # what a method's presets set → the methods that set it
    for name, cls in METHODS.items():
        values = {p: cls.presets.get(p, ({}, {}))[section].get(field, v) for p, v in base.items()}
        if values != base:
            own.setdefault(_per_preset(values, ", ", " "), []).append(name)
    return "; ".join([_per_preset(base, "; ", ": ")] + [f"{', '.join(names)}: {text}" for text, names in own.items()])


def _per_preset(values: dict, sep: str, colon: str) -> str:
    """"small: 32; paper: 64" — or one value when the presets agree."""
    texts = {p: v if isinstance(v, str) else f"{v:g}" for p, v in values.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return sep.join(f"{p}{colon}{text}" for p, text in texts.items())


def library_default(name: str) -> str:
    """The default the library applies for ``name``: the number of images eval scores, or a preset's field."""
    if name == "eval_images":
        from ganinv.inference.evaluate import EVAL_IMAGES

        return str(EVAL_IMAGES)
    if name == "method_options":
        return method_options()
    return preset_defaults(name)


def method_options() -> str:
    """Every method's options with their defaults ("psp: space=auto, backbone=small, …; …"), read from the Options
    dataclasses, so --help cannot drift from them. Called only when help is shown: this import loads torch."""
    from ganinv.methods import METHODS

    def shown(f) -> str:
        return f.name if f.default is dataclasses.MISSING else f"{f.name}={f.default!r}".replace("'", "")

    return "; ".join(f"{name}: " + ", ".join(map(shown, dataclasses.fields(cls.Options)))
                     for name, cls in METHODS.items() if dataclasses.fields(cls.Options))


class LibraryDefaults(GaninvCommand):
    """A command whose option help shows defaults that live in the library (``[{default:NAME}]``, filled by
    ``library_default`` when the help is shown): importing them for every command line would load torch."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.params:
            if getattr(param, "help", None):  # escaped: rich would take "[small: 32]" for a style and drop it
                param.help = re.sub(r"\[\{default:(\w+)\}(.*?)\]",
                                    lambda m: escape(f"[{library_default(m.group(1))}{m.group(2)}]"), param.help)
        return super().format_help(ctx, formatter)


# train's flags: typer reads each from its annotation; "[{default:NAME}]" is filled from the library when --help is
# shown (LibraryDefaults). Declared here so that the command's signature is one line per few flags.
MethodArg = Annotated[MethodName, typer.Argument(help="gan | dlsgan | dedgan | bigan (joint); aegan | regression | "
                                                 "iterative | psp | optimize (post-hoc, need --generator)")]
OutRun = Annotated[Path, typer.Option("--out", help="run directory to create (or continue with --resume)")]
DataSpec = Annotated[Optional[str], typer.Option(help="dataset spec: mnist | digits | folder:PATH | celeba:PATH")]
GeneratorRun = Annotated[Optional[Path], typer.Option(help="run directory of the frozen generator (post-hoc methods)")]
Preset = Annotated[PresetName, typer.Option(help="small (CPU-sized, 32 px) | paper (AEGAN (Luo et al.): 64 px, "
                                            "width 64)")]
ImageSize = Annotated[Optional[int], typer.Option(min=8, callback=IMAGE_SIZE_LIMIT, help="image side in pixels, a "
                                                  f"power of two from 8 to {MAX_IMAGE_SIZE} [{{default:image_size}}]")]
Channels = Annotated[Optional[int], typer.Option(min=1, max=3, help="1 or 3 [1 for digits, 3 otherwise]")]
Width = Annotated[Optional[int], typer.Option(min=1, max=MAX_WIDTH, help="channels of the image-side conv stage "
                                              "[{default:width}]")]
LatentDim = Annotated[Optional[int], typer.Option(min=1, max=MAX_LATENT_DIM, help="latent dimension "
                                                  "[{default:latent_dim}]")]
Prior = Annotated[Optional[PriorName], typer.Option(help="uniform | normal | uniform_sqrt3 | spherical (dedgan) "
                                                    "[{default:prior}]")]
Steps = Annotated[Optional[int], typer.Option(min=1, callback=STEPS_LIMIT, help=f"optimisation steps, at most "
                                              f"{MAX_STEPS:,} [{{default:steps}}]")]
BatchSize = Annotated[Optional[int], typer.Option(min=1, max=MAX_BATCH, help="batch size [{default:batch_size}]")]
LearningRate = Annotated[Optional[float], typer.Option(help="Adam learning rate [{default:lr}]")]
CheckpointEvery = Annotated[Optional[int], typer.Option(min=1, help="steps between checkpoints "
                                                        "[{default:checkpoint_every}]")]
SampleEvery = Annotated[Optional[int], typer.Option(min=1, help="steps between sample grids [{default:sample_every}]")]
EvalEvery = Annotated[Optional[int], typer.Option(min=1, help="steps between evaluations [{default:eval_every}]")]
PrecisionOpt = Annotated[Optional[Precision], typer.Option(help="no | bf16 | fp16 (mixed precision via Accelerate)")]
Device = Annotated[Optional[DeviceName], typer.Option(help="auto | cpu | cuda")]
ChannelsLast = Annotated[Optional[bool], typer.Option("--channels-last/--channels-first", help="nets and batches in NHWC "
                         "memory format (with --precision bf16: 2.7× fp32 eager for a 64 px DCGAN on an AVX-512 CPU, "
                         "docs/benchmarks.md) [{default:channels_last}]")]
Compile = Annotated[Optional[bool], typer.Option("--compile/--eager", help="torch.compile each net in place (not for "
                    "runs with an R1 penalty: dlsgan, dedgan) [{default:compile}]")]
Threads = Annotated[Optional[int], typer.Option(min=1, max=1024, help=THREADS_HELP)]
Workers = Annotated[Optional[int], typer.Option(min=0, max=MAX_WORKERS, help="DataLoader worker processes "
                                                "[{default:num_workers}]")]
MethodOption = Annotated[list[str], typer.Option(
    "--option", "-o", help="method option KEY=VALUE, repeatable (e.g. dlsgan: -o encoder_loss_on=DG -o dls=false; "
    "aegan / regression / iterative on a style generator: -o space=z|w|wplus; iterative: -o steps=5 "
    "-o start=mean|RUN_DIR -o loss=bce|mse|mse+lpips|mse+d_features -o latent_weight=1.0 "
    "-o data=generated|real|mixed: train on G's samples | the dataset's images, as ReStyle | half each; "
    "psp: -o d_features=0.5 — d_features compares images in the --generator run's own discriminator). "
    "Every method's options, with their defaults: "
    "[{default:method_options}]")]
EncoderLossOn = Annotated[Optional[EncoderTarget], typer.Option(help="dlsgan: D | DG (shortcut for "
                                                                "-o encoder_loss_on=…)")]
NoDls = Annotated[bool, typer.Option("--no-dls", help="dlsgan: keep s = 1 (the 'No DLS' ablation)")]
Resume = Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")]
LogWith = Annotated[Tracker, typer.Option(help="where scalars go besides metrics.jsonl, through Accelerate's "
                                          "trackers: tensorboard (RUN/tb) | wandb | mlflow (each needs its package)")]
DryRun = Annotated[bool, typer.Option(help="print the resolved config and exit (the plan: nothing built or written)")]
Quiet = Annotated[bool, typer.Option(help="no progress bar")]
Quick = Annotated[bool, typer.Option(help=f"a minutes-long CPU run: {QUICK_STEPS} steps, samples, evaluation and "
                                     f"checkpoints every {QUICK_EVERY} (explicit --steps / --*-every flags win)")]


@app.command(cls=LibraryDefaults)
def train(method: MethodArg, out: OutRun, data: DataSpec = None, generator: GeneratorRun = None,
          preset: Preset = PresetName(DEFAULT_PRESET), image_size: ImageSize = None, channels: Channels = None,
          width: Width = None, latent_dim: LatentDim = None, prior: Prior = None, steps: Steps = None,
          batch_size: BatchSize = None, lr: LearningRate = None, seed: int = seed_option("random seed (recorded in "
          "config.json)"), checkpoint_every: CheckpointEvery = None, sample_every: SampleEvery = None,
          eval_every: EvalEvery = None, precision: PrecisionOpt = None, device: Device = None, workers: Workers = None,
          channels_last: ChannelsLast = None, compile: Compile = None, threads: Threads = None,
          option: MethodOption = [], encoder_loss_on: EncoderLossOn = None, no_dls: NoDls = False,
          resume: Resume = False, log_with: LogWith = Tracker.tensorboard, dry_run: DryRun = False,
          quiet: Quiet = False, quick: Quick = False):
    """Train a method into a run directory (gan, aegan, regression, iterative, dlsgan, …).

    iterative: ReStyle's iterative refinement ("ReStyle: A Residual-Based StyleGAN Encoder via Iterative
    Refinement", Alaluf, Patashnik & Cohen-Or) on any generator: `ganinv train iterative --generator RUN --out DIR`."""
    check_paths(runs=[generator], data=data)
    from ganinv.core.threads import fix_threads
    from ganinv.training.launch import parse_option_strings, plan_run, train_plan

    fix_threads(threads)  # before torch starts its thread pool
    if quick:  # explicit flags win
        steps, checkpoint_every, sample_every, eval_every = (v or d for v, d in zip(
            (steps, checkpoint_every, sample_every, eval_every), (QUICK_STEPS, QUICK_EVERY, QUICK_EVERY, QUICK_EVERY)))
    option = list(option) + [f"encoder_loss_on={encoder_loss_on}"] * bool(encoder_loss_on) + ["dls=false"] * no_dls
    plan = plan_run(method, out, data=data, generator=generator, preset=preset, seed=seed, resume=resume, warn=warn,
                    log_with=log_with, options=parse_option_strings(method, option),
                    net_overrides=dict(image_size=image_size, channels=channels, width=width, latent_dim=latent_dim,
                                       prior=prior),
                    train_overrides=dict(steps=steps, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every,
                                         sample_every=sample_every, eval_every=eval_every, precision=precision,
                                         device=device, num_workers=workers, channels_last=channels_last,
                                         compile=compile))
    if dry_run:
        console.print_json(json.dumps(plan.config.to_dict()))
        return
    result = train_plan(plan, show_progress=not quiet, warn=warn)
    if result.already_finished:
        console.print(f"{out} is already finished at step {result.step}; to train it further: ganinv train {method} "
                      f"--out {out} --resume --steps M (M > {result.step})")
    else:
        console.print(f"trained {method} to step {result.step}: {out}")


# --------------------------------------------------------------------------------------------------- invert
# invert's three modes, each its own function below; the flags each mode takes are declared here and a flag given
# in another mode is refused when the command line is parsed (cli.common.Modes), not checked by hand
def invert_mode(params: dict) -> str:
    """IMAGES or --data (exactly one); IMAGES with --tune N is pivotal tuning."""
    if (params["data"] is None) == (not params["images"]):
        raise GaninvError("give either IMAGES (files or folders) or --data SPEC (a whole collection), not both")
    return "data" if params["data"] is not None else "tune" if params["tune"] else "files"


FILES, DATA, TUNE = "files", "data", "tune"
INVERT_MODES = Modes(
    labels={FILES: "IMAGES", DATA: "--data SPEC", TUNE: "--tune N"}, select=invert_mode,
    flags={"space": (FILES,), "align": (FILES, TUNE), "aligner": (FILES, TUNE), "landmarks": (FILES, TUNE),
           "paste_back": (FILES,), "refine_lr": (FILES, DATA),
           "refine_loss": (FILES, DATA), "split": (DATA,), "batch_size": (DATA,), "shard_size": (DATA,),
           "workers": (DATA,), "device": (DATA,), "as_json": (DATA,), "tune": (TUNE,)},
    says={"space": "--space is for IMAGES; a --data collection (or --tune) works in the run's own space",
          "tune": "--tune works on IMAGES in the run's own space (not with --data)"})


class InvertCommand(ModalCommand):
    modes = INVERT_MODES


RunArg = Annotated[Path, typer.Argument(help="run directory of an inverter (aegan, regression, …)")]
Images = Annotated[Optional[list[Path]], typer.Argument(help="image files or folders (or give --data)",
                                                        readable=False)]  # unreadable files are named and skipped
OutDir = Annotated[Optional[Path], typer.Option("--out", help="output folder (created; with --data: resumed if it "
                                                 "exists) \\[default: ganinv-out/invert-IMAGE/, with --data "
                                                 "ganinv-out/invert[-SPLIT]-DATA/]")]
Collection = Annotated[Optional[str], typer.Option(
    "--data", help="a whole collection instead of IMAGES: folder:PATH | celeba:PATH | mnist | digits — latents "
    "streamed to shards, resumable")]
SplitOpt = Annotated[Split, typer.Option(help="with --data: all | train | valid | test (valid: CelebA's partition 1, "
                                        "needs list_eval_partition.txt)")]
InvertBatch = Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="with --data: images per forward pass")]
ShardSize = Annotated[int, typer.Option(min=1, help="with --data: images per latent shard (the unit of resuming)")]
ReadWorkers = Annotated[int, typer.Option(min=0, max=MAX_WORKERS, help="with --data: DataLoader worker processes "
                                          "reading images")]
InvertDevice = Annotated[DeviceName, typer.Option(help="with --data: auto | cpu | cuda (under accelerate launch: each "
                                                  "rank's GPU)")]
Refine = Annotated[int, typer.Option(min=0, max=MAX_OPT_STEPS, help="optimisation steps after the encoder (hybrid); "
                                     "on a generator run: optimisation inversion from the prior's mean")]
RefineLr = Annotated[Optional[float], typer.Option(help="Adam lr of --refine [0.05; from an encoder the hybrid also "
                                                   "searches from the mean at this lr and keeps the better]")]
RefineLossOpt = Annotated[RefineLoss, typer.Option(help="image loss of --refine: mse | bce (AEGAN eq. 2) | mse+lpips | "
                                                         "mse+d_features (the run's own discriminator)")]
SpaceOpt = Annotated[Optional[SpaceName], typer.Option(
    help="with IMAGES: the latent space --refine searches and latents.npy holds: z | w | wplus (w, wplus: style "
    "generators — a dlsgan run or a post-hoc run on one; W+ flattened layer-major to N×(num_ws·w_dim)), from the "
    "encoder's answer converted up (z → w → wplus); default: the run's own")]
Tune = Annotated[int, typer.Option(help="with IMAGES: pivotal tuning (Roich et al., PTI) — invert (+ --refine "
                                   "steps), then fine-tune a copy of the generator N steps on the images with a "
                                   "locality term; writes OUT/tuned-run (loadable by path), before/ and after/ PNGs")]
Align = Annotated[bool, align_option("with IMAGES (also with --tune)", "; writes OUT/aligned/")]
PasteBack = Annotated[bool, paste_back_option("each reconstruction", "OUT/pasted/")]
AsJson = Annotated[bool, typer.Option("--json", help="with --data: print the summary as JSON")]


@app.command(cls=InvertCommand)
def invert(run: RunArg, images: Images = None, out: OutDir = None, data: Collection = None,
           split: SplitOpt = Split.all, batch_size: InvertBatch = 256, shard_size: ShardSize = 4096,
           workers: ReadWorkers = 2, device: InvertDevice = DeviceName.auto, refine: Refine = 0,
           refine_lr: RefineLr = None, refine_loss: RefineLossOpt = RefineLoss.mse, space: SpaceOpt = None,
           tune: Tune = 0, align: Align = False, aligner: AlignerOpt = None, landmarks: LandmarksOpt = None,
           paste_back: PasteBack = False, as_json: AsJson = False, quiet: Quiet = False):
    """Invert images: write their latents (.npy), reconstructions (PNG) and an original-vs-reconstruction grid.

    With --align: real photos, not pre-aligned face crops, are first aligned as CelebA's faces are (eyes level at
    fixed places; see ganinv.data.align) — otherwise a CelebA run reconstructs them as a blur.

    With --tune N: pivotal tuning ("Pivotal Tuning for Latent-based Editing of Real Images", Roich, Mokady, Bermano,
    Cohen-Or): the generator itself is fine-tuned on the images around their inverted latents (the pivots); the
    tuned run in OUT/tuned-run reconstructs them (also through superres and edit) and stays close to the original
    generator elsewhere (the drift is printed). With --align, the photos are aligned first and tuned on as aligned.

    With --refine N --space w|wplus: N Adam steps on the latent in a style generator's W or W+ (one w per modulated
    layer), starting from the run's own answer converted into that space (or from w̄ on a run without an encoder).

    With --data, invert a whole collection (any size): latents go to OUT/shards/NNNNN.npy with the items of each
    shard in NNNNN.json; run the same command again to finish an interrupted run; under `accelerate launch` the
    processes split the shards."""
    check_paths(runs=[run], data=data)  # IMAGES are not: a missing one is named and skipped (exit status 3)
    mode = invert_mode(dict(data=data, images=images, tune=tune))  # checked at parse time; here: which to run
    out = out or default_out("invert", images or [data.partition(":")[2] or data], mode="" if images or split == "all"
                             else split)
    align = chosen_aligner(align, aligner, landmarks)
    if mode == TUNE:
        tune_images(run, images, out, steps=tune, refine=refine, quiet=quiet, align=align, landmarks=landmarks)
    elif mode == FILES:
        invert_image_files(run, images, out, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss,
                           space=space, align=align, landmarks=landmarks, paste_back=paste_back)
    else:
        invert_collection_data(run, data, out, split=split, batch_size=batch_size, shard_size=shard_size,
                               workers=workers, device=device, refine=refine, refine_lr=refine_lr,
                               refine_loss=refine_loss, as_json=as_json, quiet=quiet)


def invert_image_files(run: Path, images, out: Path, *, refine: int, refine_lr, refine_loss, space, align,
                       landmarks, paste_back: bool = False) -> None:
    """``invert RUN IMAGES``: latents.npy, reconstructions/, manifest.json and grid.png (ganinv.apps.invert)."""
    check_landmark_model(landmarks, align)  # --paste-back without --align: invert_files' one line, before any work
    from ganinv.apps.invert import invert_files

    result = invert_files(run, images, out, warn=note, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss,
                          space=space, align=align, landmarks=landmarks, paste=paste_back)
    print_reconstruction_scores(result)
    say(f"inverted {result.n} images (latents.npy, reconstructions/, manifest.json, grid.png)")
    wrote(out)
    exit_if_skipped(len(result.skipped))


def invert_collection_data(run: Path, data: str, out: Path, *, as_json: bool, quiet: bool, **settings) -> None:
    """``invert RUN --data SPEC``: a whole collection into resumable latent shards (ganinv.apps.collection)."""
    from ganinv.apps.invert import invert_dataset

    result = invert_dataset(run, data, out, show_progress=not quiet and not as_json, warn=note, **settings)
    if as_json:
        print(json.dumps(result.to_json()))
    elif result.rank == 0:
        say(collection_line(result))
        wrote(out / "shards")
    exit_if_skipped(result.failed + result.failed_before)


def collection_line(result) -> str:
    """invert --data's summary line; a collection whose shards were all done before (run again, nothing left) says
    so, rather than a speed of nothing."""
    unreadable = result.failed + result.failed_before
    if not result.inverted_now:
        return (f"nothing left to invert: all {result.done_before} images were done before ({unreadable} unreadable); "
                f"peak memory {result.peak_rss_mib} MiB")
    speed = f" at {result.images_per_s} images/s" if result.images_per_s is not None else ""
    return (f"inverted {result.inverted_now} images ({result.done_before} done before, {unreadable} unreadable)"
            f"{speed}, peak memory {result.peak_rss_mib} MiB")


SCORES_LISTED = 50  # invert prints each image's PSNR / SSIM up to this many images; beyond, a summary


def print_reconstruction_scores(result) -> None:
    """Each image's PSNR and SSIM against its reconstruction (a summary beyond SCORES_LISTED images: manifest.json
    has them all), and their means."""
    n = max(result.n, 1)
    mean = f"mean PSNR {sum(result.psnr) / n:.2f} dB, SSIM {sum(result.ssim) / n:.4f} over {result.n} image(s)"
    if result.n <= SCORES_LISTED:
        columns = [Column("image"), Column("PSNR dB", "PSNR↑", numeric=True), Column("SSIM", "SSIM↑", numeric=True)]
        print_table("reconstruction against the input", columns,
                    [[f, f"{p:.2f}", f"{q:.4f}"] for f, p, q in zip(result.inputs, result.psnr, result.ssim)])
    say(mean if result.n <= SCORES_LISTED else f"{mean} (lowest PSNR {min(result.psnr):.2f} dB; each image's in "
        "manifest.json)")


def pivot_counts(sources: list[str]) -> str:
    """'3 w optimisation, 1 encoder': where the pivots came from."""
    return ", ".join(f"{sources.count(s)} {s}" for s in dict.fromkeys(sources))


def tune_images(run: Path, images, out: Path, *, steps: int, refine: int, quiet: bool, align: bool = False,
                landmarks=None) -> None:
    """``invert RUN IMAGES --tune N [--align]``: pivotal tuning of the run's generator on IMAGES (ganinv.apps.tune),
    with --align on the faces aligned as ``invert --align`` aligns them."""
    from ganinv.inference.tuning import check_tuning_settings

    check_tuning_settings(steps=steps, lr=3e-4, locality_weight=0.1, refine_steps=refine)
    check_landmark_model(landmarks, align)
    from ganinv.apps.tune import tune_files

    result = tune_files(run, images, out, steps=steps, refine_steps=refine, warn=note, show_progress=not quiet,
                        align=align, landmarks=landmarks)
    say(f"tuned the generator on {result.n} images: PSNR {result.mean_psnr_before:.2f} → "
        f"{result.mean_psnr_after:.2f} dB; drift on random latents {result.locality_drift:.4g} (random pairs differ by "
        f"{result.drift_scale:.4g}; PSNR G vs tuned G {result.drift['prior_psnr']:.2f} dB); pivots: "
        f"{pivot_counts(result.pivot_sources)}; the tuned run: {result.tuned_run}")
    wrote(out)
    exit_if_skipped(len(result.skipped))


# ----------------------------------------------------------------------------------------------------- eval
EVAL_COPIES = 8  # batches of n images alive at once: generated and real, their reconstructions, the metrics' work


@app.command("eval", cls=LibraryDefaults)
def eval_(
    run: Path = typer.Argument(..., help="run directory"),
    data: Optional[str] = typer.Option(None, help="dataset spec for real images (its test split)"),
    n: int | None = typer.Option(None, min=1, help="number of generated samples, and at most this many real "
                                 "images [{default:eval_images}, as demo scores]"),
    seed: int = seed_option("seed of the generated samples"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
):
    """Reconstruction quality (PSNR, SSIM, dHash similarity, LPIPS if available) on generated and real images."""

    check_paths(runs=[run], data=data)
    if n is not None:
        check_images_fit(run, n, EVAL_COPIES, "eval --n", "ask for fewer with --n")
    from ganinv.inference.evaluate import EVAL_IMAGES, evaluate_run
    from ganinv.metrics import lpips_status

    results = evaluate_run(run, data=data, n=EVAL_IMAGES if n is None else n, seed=seed)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print_results_table({str(run): results}, title=f"reconstruction quality — {run}")
    available, message = lpips_status()
    if not available:
        note(message)


# --------------------------------------------------------------------------------------------------- ablate
@app.command()
def ablate(
    method: str = typer.Argument(..., help="dlsgan (the DLSGAN paper's grid, Cho & Krzyzak)"),
    data: str = typer.Option(..., help="dataset spec (train split for training, test split for evaluation)"),
    out: Path = typer.Option(Path("ablation"), "--out", help="folder for the runs, PNG figures and ablation.md"),
    quick: bool = typer.Option(False, help="16 px, 3 epochs: minutes on a CPU"),
    # "\\[" below: rich would take "[quick 3, full 20]" for a style and drop it
    epochs: Optional[int] = typer.Option(None, min=1, max=10_000, help="epochs per run \\[quick 3, full 20]"),
    seed: int = seed_option("the one seed every run shares"),
    fid_weights: Optional[str] = typer.Option(None, help="Inception weights file for real FID (else FD-domain)"),
    image_size: Optional[int] = typer.Option(None, min=8, callback=IMAGE_SIZE_LIMIT,
                                             help="image side \\[quick 16, full 32]"),
    width: Optional[int] = typer.Option(None, min=1, max=MAX_WIDTH, help="net width \\[quick 8, full 16]"),
    latent_dim: Optional[int] = typer.Option(None, min=1, max=MAX_LATENT_DIM,
                                             help="latent dimension \\[quick 32, full 64]"),
    batch_size: Optional[int] = typer.Option(None, min=1, max=MAX_BATCH, help="batch size \\[quick 32, full 16]"),
    prior: Optional[str] = typer.Option(None, help="only this prior's cells: normal | uniform_sqrt3 \\[both]"),
    encoder_loss_on: Optional[str] = typer.Option(None, help="only this encoder-loss target: D | DG \\[both]"),
):
    """The DLSGAN paper's ablation (Cho & Krzyzak): DLS / No DLS × encoder loss on D / DG × priors, curves per
    epoch, final table."""
    check_paths(data=data)
    import dataclasses

    from ganinv.experiments.ablation import BUDGETS, CELLS, run_ablation

    cells = [c for c in CELLS if prior in (None, c[0]) and encoder_loss_on in (None, c[2])]
    if not cells:
        raise GaninvError(f"no ablation cell has prior {prior!r} and encoder loss on {encoder_loss_on!r}")
    changes = dict(image_size=image_size, width=width, latent_dim=latent_dim, batch_size=batch_size)
    budget = dataclasses.replace(BUDGETS["quick" if quick else "full"],
                                 **{k: v for k, v in changes.items() if v is not None})
    result = run_ablation(method, data=data, out=out, quick=quick, seed=seed, epochs=epochs,
                          fid_weights=fid_weights, log=console.print, budget=budget, cells=cells)
    console.print(Path(result["table"]).read_text(encoding="utf-8"), markup=False)
    console.print(f"figures: {', '.join(str(p) for p in result['figures'])}")


# ----------------------------------------------------------------------------------------------------- demo
@app.command()
def demo(
    out: Path = typer.Option(Path("ganinv-demo"), "--out", help="folder for the runs and report.html"),
    quick: bool = typer.Option(False, help="fewer steps: ≤ 2 minutes on 2 CPU cores (the full demo: ≤ 10 minutes)"),
    seed: int = seed_option("random seed"),
    as_json: bool = typer.Option(False, "--json", help="also print the results as JSON"),
):
    """The main job on bundled MNIST: train a GAN, then AEGAN and the direct baseline on it; compare; report.

    ≤ 10 minutes on 2 CPU cores (--quick: ≤ 2 minutes).
    """

    from ganinv.experiments.demo import run_demo

    results, report = run_demo(out, quick=quick, seed=seed, show_progress=True, log=console.print)
    print_results_table(results, title="AEGAN paper (Luo et al.) table 1 on MNIST: reconstruction of generated and "
                                      "real digits")
    console.print(f"report: {report}")
    if as_json:
        print(json.dumps(results, indent=2))
