"""What each CLI command does, as importable functions (the CLI only parses flags and prints)."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig, read_config
from .data import display_path, open_dataset, read_image_files
from .errors import GaninvError
from .evaluate import evaluate
from .io import atomic_write, atomic_write_json, atomic_write_text
from .methods import method_class
from .model import InversionModel
from .rundir import CONFIG
from .runs import build_config, load_generator_run, new_method, posthoc_config, resumed_method
from .train import TrainResult, train
from .viz import comparison_grid, save_png

EVAL_REAL_IMAGES = 256


def train_run(
    method: str, out: str | Path, *, data: str | None = None, generator: str | Path | None = None,
    preset: str = "small", seed: int = 0, resume: bool = False, dry_run: bool = False, show_progress: bool = True,
    net_overrides: dict | None = None, train_overrides: dict | None = None, options: dict | None = None,
    evaluators=(), warn: Callable[[str], None] | None = None,
) -> TrainResult | RunConfig:
    """Validate everything (config, data, generator) before the run directory is touched, then train."""
    out = Path(out)
    frozen = None
    if resume and not (out / CONFIG).is_file():  # killed before it wrote anything: resuming is starting
        (warn or (lambda m: None))(f"{out} holds no run yet (interrupted before its config was written); starting it")
        resume = False
    if resume:
        config = read_config(out)
        if config.method != method:
            raise GaninvError(f"{out} holds a {config.method!r} run, not {method!r}; cannot resume it")
        check_resume_overrides(config, net_overrides or {}, options or {})
        steps = (train_overrides or {}).get("steps")
        if steps:  # extending a run is the one change a resume accepts
            config = config.replace(train=dataclasses.replace(config.train, steps=steps))
    else:
        config = build_config(method, preset=preset, data=data, seed=seed, net=net_overrides, train=train_overrides,
                              options=options)
        if generator is not None:
            if method_class(method).trains_generator:
                raise GaninvError(f"{method} trains its own generator; --generator is for the post-hoc methods "
                                  "(aegan, regression, optimize)")
            frozen = load_generator_run(generator)
            config = posthoc_config(config, frozen, generator)
    if dry_run:
        return config
    dataset, eval_images = open_training_data(config)
    method_obj = resumed_method(config, out) if resume else new_method(config, frozen)
    return train(method_obj, out, dataset=dataset, eval_images=eval_images, resume=resume,
                 show_progress=show_progress, evaluators=evaluators, warn=warn)


def open_training_data(config: RunConfig):
    """The training split (for methods that train on real images) and a few test images for evaluation."""
    if config.data is None:
        if method_class(config.method).uses_real_data:
            raise GaninvError(f"method {config.method!r} trains on real images: give --data")
        return None, None
    n = config.net
    dataset = open_dataset(config.data, image_size=n.image_size, channels=n.channels, split="train")
    test = open_dataset(config.data, image_size=n.image_size, channels=n.channels, split="test")
    eval_images, _ = test.tensors(min(EVAL_REAL_IMAGES, len(test)))
    return (dataset if method_class(config.method).uses_real_data else None), eval_images


def evaluate_run(run: str | Path, *, data: str | None = None, n: int = 256, seed: int = 0) -> dict:
    model = InversionModel.load(run)
    if not model.can_invert:
        raise GaninvError(
            f"{run} is a {model.config.method!r} run with no inverse network; evaluate an inverter trained on it "
            f"(ganinv train aegan --generator {run} --out RUN)"
        )
    real = None
    if data is not None:
        net = model.config.net
        test = open_dataset(data, image_size=net.image_size, channels=net.channels, split="test")
        real, _ = test.tensors(min(n, len(test)))
    results = evaluate(model, n_generated=n, real=real, seed=seed)
    return {"run": str(run), "method": model.config.method, **results}




def invert_files(run: str | Path, images: list[str | Path], out: str | Path,
                 warn: Callable[[str], None] = lambda m: None, *, refine: int = 0, refine_lr: float | None = None,
                 refine_loss: str = "mse") -> dict:
    """Invert image files: latents.npy (row i = the i-th readable file), reconstructions/NNNNN-NAME.png (numbered by
    row, so two inputs named x.png never collide), manifest.json (each row's exact input path and output, and the
    skipped files with their reasons), paths.txt (the inputs, one printable line each) and grid.png.

    Each unreadable file is named through ``warn`` and skipped; the readable ones are all read before anything is
    written. When none is readable it is a DataError and nothing is written. ``refine`` > 0 adds that many
    optimisation steps after the encoder (the hybrid); on a run without an encoder it is optimisation from the
    prior's mean."""
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss, warn=warn)
    channels, size, _ = model.image_shape
    read = read_image_files(images, size, channels, warn=warn)
    batch = read.batch()
    warn(f"images are centre-cropped and resized to {size}×{size} with {channels} channel(s) for this run")
    latents = model.invert(batch)
    reconstructions = model.generate(latents)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = [reconstruction_name(row, f) for row, f in enumerate(read.files)]
    for name, image in zip(outputs, reconstructions):
        save_png(image, out / name)
    atomic_write(out / "latents.npy", lambda tmp: np.save(open(tmp, "wb"), latents.cpu().numpy()))
    atomic_write_text(out / "paths.txt", "".join(f"{display_path(f)}\n" for f in read.files))
    atomic_write_json(out / "manifest.json", {
        "format": "ganinv-inverted-files", "format_version": 1, "run": str(run), "image_shape": [channels, size, size],
        "items": [{"row": row, "input": os.fsdecode(f), "reconstruction": name}
                  for row, (f, name) in enumerate(zip(read.files, outputs))],
        "skipped": [s.to_json() for s in read.skipped]})
    save_png(comparison_grid([batch, reconstructions]), out / "grid.png")
    return {"n": len(read.files), "latents": latents, "outputs": outputs, "skipped": read.skipped}


def reconstruction_name(row: int, path: Path) -> str:
    """reconstructions/00012-NAME.png: the row number keeps names unique; NAME (the input's stem, letters, digits
    and - _ . only, at most 40 characters) keeps them readable in any shell and on any file system."""
    stem = "".join(ch if (ch.isalnum() and ch.isprintable()) or ch in "-_." else "_" for ch in path.stem)[:40]
    return f"reconstructions/{row:05d}-{stem}.png"


def inverting_model(run: str | Path, *, refine: int = 0, refine_lr: float | None = None, refine_loss: str = "mse",
                    device: str = "cpu", warn: Callable[[str], None] = lambda m: None) -> InversionModel:
    """The run's encoder, or encoder + ``refine`` optimisation steps (the hybrid); on a run without an encoder,
    optimisation from the prior's mean."""
    from .methods.optimize import check_settings

    model = InversionModel.load(run, device=device)
    if refine < 0:
        raise GaninvError(f"--refine must be >= 0, got {refine}")
    if not model.can_invert and not refine:
        raise GaninvError(f"{run} is a {model.config.method!r} run with no inverse network "
                          "(give --refine N to invert it by optimisation)")
    if not refine:
        return model
    from .methods.hybrid import REFINE_LR, OptimizingModel

    start = "encoder" if model.can_invert else "mean"
    lr = refine_lr or (REFINE_LR if start == "encoder" else 0.05)
    check_settings(refine, lr, refine_loss)
    if start == "mean":
        warn(f"{run} has no encoder: searching each latent from the prior's mean with {refine} optimisation steps")
    return OptimizingModel(model, steps=refine, lr=lr, loss=refine_loss, start=start)


def invert_dataset(run: str | Path, data: str, out: str | Path, *, split: str = "all", batch_size: int = 256,
                   shard_size: int = 4096, workers: int = 0, device: str = "auto", refine: int = 0,
                   refine_lr: float | None = None, refine_loss: str = "mse", show_progress: bool = True,
                   warn: Callable[[str], None] = lambda m: None) -> dict:
    """A whole collection into latent shards (see ganinv.apps.collection); resumable, and rank-aware under
    ``accelerate launch``."""
    from accelerate import PartialState

    from .apps.collection import invert_collection

    if device == "cuda" and not torch.cuda.is_available():
        raise GaninvError("--device cuda was asked for but no CUDA device is visible")
    use_cpu = device == "cpu" or not torch.cuda.is_available()
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss,
                            device=PartialState(cpu=use_cpu).device, warn=warn)
    return invert_collection(model, run, data, out, split=split, batch_size=batch_size, shard_size=shard_size,
                             workers=workers, refine=refine, show_progress=show_progress, log=warn)


def check_resume_overrides(config: RunConfig, net_overrides: dict, options: dict) -> None:
    """A resumed run keeps its nets and options; a flag that contradicts them is an error, not silently ignored."""
    for key, value in net_overrides.items():
        saved = getattr(config.net, key)
        if value is not None and value != saved:
            flag = "--" + key.replace("_", "-")
            raise GaninvError(f"{flag} {value} does not match the run being resumed ({key} = {saved})")
    for key, value in options.items():
        if config.options.get(key) != value:
            raise GaninvError(f"option {key}={value} does not match the run being resumed "
                              f"({key} = {config.options.get(key)})")
