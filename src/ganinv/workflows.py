"""What each CLI command does, as importable functions (the CLI only parses flags and prints)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig, read_config
from .data import expand_image_paths, load_image, open_dataset
from .errors import GaninvError
from .evaluate import evaluate
from .io import atomic_write, atomic_write_text
from .methods import method_class
from .model import InversionModel
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
    """Invert image files: every image is read (and resized/converted to the run's shape) before anything is
    written, so a bad file stops the command with nothing half-done. ``refine`` > 0 adds that many optimisation
    steps after the encoder (the hybrid); on a run without an encoder it is optimisation from the prior's mean."""
    model = inverting_model(run, refine=refine, refine_lr=refine_lr, refine_loss=refine_loss, warn=warn)
    files = expand_image_paths(images)
    channels, size, _ = model.image_shape
    batch = torch.stack([load_image(f, image_size=size, channels=channels) for f in files])
    warn(f"images are centre-cropped and resized to {size}×{size} with {channels} channel(s) for this run")
    latents = model.invert(batch)
    reconstructions = model.generate(latents)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for f, image in zip(files, reconstructions):
        save_png(image, out / "reconstructions" / f"{f.stem}.png")
    atomic_write(out / "latents.npy", lambda tmp: np.save(open(tmp, "wb"), latents.cpu().numpy()))
    atomic_write_text(out / "paths.txt", "".join(f"{f}\n" for f in files))
    save_png(comparison_grid([batch, reconstructions]), out / "grid.png")
    return {"n": len(files), "latents": latents}


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
