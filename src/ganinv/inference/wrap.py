"""Bring your own generator, and the generator a post-hoc method freezes.

A post-hoc method (aegan, regression/projection, optimize) keeps a frozen copy of some generator inside its own
run directory; which net that is, is recorded in its ``config.generator`` (a generator spec, see
``ganinv.nets.frozen``), so loading the run still needs nothing but its path. ``generator_spec`` and
``generator_state`` read a generator run's spec and weights.

``wrap_generator(module, prior, image_range)`` turns any ``nn.Module`` (latents N×d → images N×C×H×W) into an
``InversionModel`` of the ``wrapped`` method; ``save_wrapped_run`` writes it as a run directory that every
``--generator`` flag accepts.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganinv.core import safe_files
from ganinv.core.config import NetConfig, RunConfig, current_versions
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import prepare_run_dir, save_checkpoint
from ganinv.inference.model import InversionModel
from ganinv.latent import Prior, make_prior
from ganinv.methods.wrapped import WrappedGenerator, WrappedOptions
from ganinv.nets.dcgan import Generator
from ganinv.nets.frozen import DCGAN_SPEC, ImportedStyleGAN, ModuleGenerator, build_module
from ganinv.nets.style import StyleGenerator

RANGE_TOLERANCE = 1e-3
WEIGHTS_MAX_BYTES = 16 << 30  # 4x the largest published StyleGAN's float32 weights; refused unread beyond
DEFAULT_ENCODER_WIDTH = 32  # a wrapped run has no nets config of its own; its post-hoc encoders use this width


def generator_spec(model) -> dict[str, Any]:
    """The spec of the generator inside a loaded generator run (gan, bigan, dlsgan, wrapped, stylegan)."""

    method = model.method
    net = method.nets.get("generator")
    if isinstance(net, ModuleGenerator):
        factory = method.options.factory if isinstance(method.options, WrappedOptions) else ""
        if not factory:
            raise GaninvError("this wrapped generator has no factory ('pkg.mod:fn'); a run directory can only "
                              "rebuild a module it can import — give wrap_generator(..., factory=...)")
        return {"kind": "module", "factory": factory, "image_range": [net.low, net.high]}
    if isinstance(net, Generator):
        return dict(DCGAN_SPEC)
    if isinstance(net, ImportedStyleGAN):
        return net.spec()
    if isinstance(net, StyleGenerator):
        return {"kind": "style", "mapping_layers": len(net.mapping.layers)}
    raise GaninvError(f"a {method.name!r} run's generator ({type(net).__name__}) cannot be frozen under a post-hoc "
                      "method; use a gan, bigan, dlsgan, wrapped or stylegan generator run")


def generator_state(model) -> dict[str, Tensor]:
    """The generator run's weights in the layout ``build_generator(generator_spec(model))`` expects."""
    method = model.method
    state = method.nets["generator"].state_dict()
    if generator_spec(model)["kind"] == "style":
        scale = method.latent_scale
        scale = torch.ones(model.config.net.latent_dim) if scale is None else scale
        state = {**{f"generator.{k}": v for k, v in state.items()}, "scale": scale.detach().float().cpu()}
    return state


# --- bring your own generator --------------------------------------------------------------------------------------

def check_generator_output(module: nn.Module, prior: Prior, image_range: tuple[float, float]) -> tuple[int, int]:
    """Run the module on 4 prior samples; (channels, size) if its output is a usable image batch, else an error
    that says what is wrong."""
    z = prior.sample(4, generator=torch.Generator().manual_seed(0))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            y = module(z)
    except Exception as exc:  # any failure of user code on a latent batch is a mismatch we must explain
        raise GaninvError(f"the generator module failed on a {tuple(z.shape)} latent batch "
                          f"({type(exc).__name__}: {exc}); is --latent-dim right?") from None
    finally:
        module.train(was_training)
    if not isinstance(y, Tensor):
        raise GaninvError(f"the generator module returned a {type(y).__name__}, expected an N×C×H×W tensor")
    shape = tuple(y.shape)
    if y.ndim != 4 or shape[0] != 4:
        raise GaninvError(f"the generator module's output has shape {shape} for 4 latents; expected 4×C×H×W images")
    _, c, h, w = shape
    if c not in (1, 3):
        raise GaninvError(f"the generator module's output has {c} channels (shape {shape}); expected 1 or 3")
    if h != w or h < 8 or h & (h - 1):
        raise GaninvError(f"the generator module's images are {h}×{w} (shape {shape}); expected square images whose "
                          "side is a power of two >= 8")
    if not bool(torch.isfinite(y).all()):
        raise GaninvError("the generator module's output contains NaN or infinite values")
    low, high = image_range
    lo, hi = float(y.min()), float(y.max())
    if lo < low - RANGE_TOLERANCE or hi > high + RANGE_TOLERANCE:
        raise GaninvError(f"the generator module's output lies in [{lo:.3f}, {hi:.3f}], outside image_range "
                          f"({low:g}, {high:g}); pass the range it produces ((-1, 1) for tanh, (0, 1) for sigmoid) "
                          "or end the module with one of those")
    return c, h


def wrap_generator(module: nn.Module, prior: str | Prior = "uniform", image_range=(-1, 1), *,
                   latent_dim: int | None = None, factory: str | None = None, weights: str | None = None,
                   width: int = DEFAULT_ENCODER_WIDTH, seed: int = 0):
    """Any ``nn.Module`` (latents N×d → images N×C×H×W) as an ``InversionModel`` usable by every post-hoc method
    and application. ``image_range`` is what the module outputs: (-1, 1) or (0, 1). ``factory``
    ("pkg.mod:fn", which rebuilds the module with no arguments) is needed only to save it as a run directory."""

    if not isinstance(module, nn.Module):
        raise GaninvError(f"wrap_generator needs a torch nn.Module, got {type(module).__name__}")
    image_range = tuple(float(v) for v in image_range)
    if image_range not in ((-1.0, 1.0), (0.0, 1.0)):
        raise GaninvError(f"image_range must be (-1, 1) or (0, 1), got {image_range}")
    if isinstance(prior, Prior):
        if latent_dim is not None and latent_dim != prior.dim:
            raise GaninvError(f"latent_dim {latent_dim} differs from the prior's dimension {prior.dim}")
        prior_obj = prior
    else:
        latent_dim = latent_dim or getattr(module, "latent_dim", None)
        if not latent_dim:
            raise GaninvError("give latent_dim (the module has no latent_dim attribute)")
        prior_obj = make_prior(prior, int(latent_dim))
    channels, size = check_generator_output(module, prior_obj, image_range)

    options = WrappedOptions(factory=factory or "", image_low=image_range[0], image_high=image_range[1],
                             weights=str(weights or ""))
    config = RunConfig(method=WrappedGenerator.name, seed=seed, options=dataclasses.asdict(options),
                       net=NetConfig(image_size=size, channels=channels, width=width, latent_dim=prior_obj.dim,
                                     prior=prior_obj.name), versions=current_versions())
    method = WrappedGenerator(config, module=module)
    method.nets["generator"].eval()
    return InversionModel(method)


def load_module_weights(module: nn.Module, path: str | Path) -> None:
    """A state dict from .safetensors, or a torch.save .pt/.pth (checked by ``safe_files.torch_load_tensors``:
    stored zip entries only, no TorchScript, ``weights_only``), at most ``WEIGHTS_MAX_BYTES``, strictly loaded."""
    path = Path(path)
    if not path.is_file():
        raise GaninvError(f"--generator-weights {path} does not exist")
    what = "generator weights"
    if path.suffix == ".safetensors":
        state, _ = safe_files.read_safetensors(path, what, max_bytes=WEIGHTS_MAX_BYTES)
    else:
        state = safe_files.torch_load_tensors(path, what, max_bytes=WEIGHTS_MAX_BYTES)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise GaninvError(f"{path} does not hold a state dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise GaninvError(f"generator weights {path} do not fit the module ({first})") from None


def wrap_factory(factory: str, *, latent_dim: int, prior: str = "uniform", image_range=(-1, 1),
                 weights: str | Path | None = None, width: int = DEFAULT_ENCODER_WIDTH, seed: int = 0):
    """``wrap_generator`` for a module built by ``factory`` ("pkg.mod:fn") and loaded from ``weights``."""
    module = build_module(factory)
    if weights is not None:
        load_module_weights(module, weights)
    return wrap_generator(module, prior, image_range, latent_dim=latent_dim, factory=factory,
                          weights=str(Path(weights).resolve()) if weights else None, width=width, seed=seed)


def save_wrapped_run(model, out: str | Path) -> Path:
    """Write a wrapped generator as a run directory (config.json records the factory, the weights file it came
    from and the image range; weights.safetensors holds the module's weights)."""

    if model.config.method != "wrapped":
        raise GaninvError(f"save_wrapped_run takes a wrap_generator model, got a {model.config.method!r} run")
    if not model.method.options.factory:
        raise GaninvError("a wrapped generator needs factory='pkg.mod:fn' to be saved: a run directory rebuilds "
                          "the module by importing it (code is never pickled)")
    return write_generator_run(model, out)


def write_generator_run(model, out: str | Path) -> Path:
    """A generator run that is never trained here (wrapped, stylegan) as a run directory: config.json, then its
    weights as checkpoint 0 (refused if ``out`` already holds a run)."""
    out = Path(out)
    model.method.config = prepare_run_dir(out, model.config, resume=False)
    save_checkpoint(model.method, out, step=0)
    return out
