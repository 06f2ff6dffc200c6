"""CLI commands that bring a generator from outside: ``ganinv wrap`` (any ``nn.Module`` with its code) and
``ganinv import stylegan`` (an NVlabs pickle or a rosinality checkpoint, read without running its code); each writes
a generator run directory every post-hoc method accepts. Registered on ``cli.app``.
Library imports stay inside the command functions, so ``ganinv --help`` never loads torch."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganinv.cli.common import console
from ganinv.core.errors import GaninvError

app = typer.Typer()


@app.command()
def wrap(
    module: str = typer.Option(..., "--generator-module", help="pkg.mod:factory — called with no arguments, returns "
                               "an nn.Module mapping N×latent_dim latents to N×C×H×W images"),
    out: Path = typer.Option(..., "--out", help="generator run directory to create"),
    latent_dim: int = typer.Option(..., help="the module's latent dimension"),
    weights: Optional[Path] = typer.Option(None, "--generator-weights", help="state dict (.safetensors or .pt)"),
    prior: str = typer.Option("uniform", help="latent prior: uniform | normal | uniform_sqrt3"),
    image_range: str = typer.Option("-1,1", help="what the module outputs: -1,1 (tanh) or 0,1 (sigmoid)"),
    width: int = typer.Option(32, help="width of the encoders post-hoc methods will train on it"),
):
    """Bring your own generator: a run directory every post-hoc method accepts (--generator RUN)."""

    from ganinv.inference.wrap import save_wrapped_run, wrap_factory

    try:
        low, high = (float(v) for v in image_range.split(","))
    except ValueError:
        raise GaninvError(f"--image-range must be -1,1 or 0,1, got {image_range!r}") from None
    model = wrap_factory(module, latent_dim=latent_dim, prior=prior, image_range=(low, high), weights=weights,
                         width=width)
    save_wrapped_run(model, out)
    c, s, _ = model.image_shape
    console.print(f"wrapped {module} ({c}×{s}×{s} images, {prior} prior, d={latent_dim}) → {out}; train an "
                  f"inverter with: ganinv train aegan --generator {out} --out RUN")


import_app = typer.Typer(name="import", no_args_is_help=True,
                         help="Import a generator from another project's checkpoint file as a run directory.")
app.add_typer(import_app)


@import_app.command("stylegan")
def import_stylegan(
    checkpoint: Path = typer.Argument(..., help="an NVlabs stylegan2-ada-pytorch / stylegan3 snapshot (.pkl) or a "
                                      "rosinality stylegan2-pytorch checkpoint (.pt with g_ema)"),
    out: Path = typer.Option(..., "--out", help="generator run directory to create"),
    truncation_psi: float = typer.Option(1.0, "--truncation-psi", help="w = w̄ + ψ(w − w̄) for every latent the "
                                         "run generates (1: none; 0.7 is common for faces; negative allowed, as "
                                         "NVlabs)"),
    truncation_cutoff: Optional[int] = typer.Option(None, "--truncation-cutoff", help="NVlabs' truncation_cutoff: "
                                                    "ψ applies only to the first N layers' ws of images made from z "
                                                    "(default: every layer)"),
    noise_mode: str = typer.Option("const", help="const: the noise recorded in the file; none: no noise (either "
                                   "way one latent maps to one image)"),
    width: int = typer.Option(32, help="width of the encoders post-hoc methods will train on it"),
):
    """Read a StyleGAN2/3 generator without running any code from the file, and write it as a run directory that
    every post-hoc method (aegan, regression, iterative, optimize, --tune), compare, bench, search, edit and the web
    page accept. TorchScript archives, legacy tar checkpoints and files whose declared sizes exceed what they hold
    or a sane architecture are refused in one line."""
    if not checkpoint.is_file():  # before the heavy imports
        raise GaninvError(f"checkpoint not found: {checkpoint}" if not checkpoint.exists() else
                          f"{checkpoint} is not a file")
    from ganinv.inference.stylegan import import_stylegan as read

    model = read(checkpoint, out, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                 noise_mode=noise_mode, width=width)
    o = model.method.options
    c, s, _ = model.image_shape
    cutoff = "" if o.truncation_cutoff is None else f" on the first {o.truncation_cutoff} layers"
    console.print(f"imported {o.source_format} {o.arch} ({c}×{s}×{s} images, z {model.prior.dim}, "
                  f"w {model.method.nets['generator'].w_dim} × {model.method.nets['generator'].num_ws} layers, "
                  f"ψ = {o.truncation_psi:g}{cutoff}, noise {o.noise_mode}; {discriminator_note(model)}) → {out}; "
                  f"train an encoder on your photos with: ganinv train psp --generator {out} --data folder:PHOTOS "
                  "--out RUN")


def discriminator_note(model) -> str:
    """Whether the file's discriminator came along (the offline perceptual term d_features compares its features)."""
    return "with its discriminator D" if "discriminator" in model.method.nets else "no discriminator in the file"
