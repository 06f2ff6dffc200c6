"""Generators a post-hoc method can sit on, and bringing your own.

A post-hoc method (aegan, regression/projection, optimize) keeps a frozen copy of some generator inside its own
run directory. Which net that copy is, is recorded in the post-hoc run's ``config.generator`` (a *generator
spec*), so loading the run still needs nothing but its path:

    {"kind": "dcgan"}                                     a gan or bigan run's DCGAN generator (the default:
                                                          runs written before specs existed have none)
    {"kind": "style", "mapping_layers": 8}                a dlsgan run's style generator, frozen with its latent
                                                          scale s: generate(z) = G(z∘s), w = F(z∘s)
    {"kind": "module", "factory": "pkg.mod:fn",           a user's nn.Module (``wrap_generator`` / ``ganinv
     "image_range": [-1.0, 1.0]}                           wrap``), rebuilt by importing ``factory`` — never
                                                          pickled code

``wrap_generator(module, prior, image_range)`` turns any ``nn.Module`` (latents N×d → images N×C×H×W) into an
``InversionModel`` of the ``wrapped`` method; ``save_wrapped_run`` writes it as a run directory that every
``--generator`` flag accepts.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import NetConfig, RunConfig, current_versions
from .errors import GaninvError
from .latent import Prior, make_prior

DCGAN_SPEC = {"kind": "dcgan"}
RANGE_TOLERANCE = 1e-3
DEFAULT_ENCODER_WIDTH = 32  # a wrapped run has no nets config of its own; its post-hoc encoders use this width


# --- frozen generator nets ---------------------------------------------------------------------------------------

class ScaledStyleGenerator(nn.Module):
    """A DLSGAN style generator frozen with its latent scale s (a buffer, saved with the weights).

    ``forward(z) = G(z∘s)`` (what the dlsgan run's ``generate`` does); ``mapping(z) = F(z∘s) = w``;
    ``from_w(w)`` is the synthesis network's image in [0, 1] — the W space of a projection network."""

    def __init__(self, *, latent_dim: int, image_size: int, width: int, channels: int, mapping_layers: int):
        super().__init__()
        from .nets.style import StyleGenerator

        self.generator = StyleGenerator(latent_dim=latent_dim, image_size=image_size, width=width,
                                        channels=channels, mapping_layers=mapping_layers)
        self.register_buffer("scale", torch.ones(latent_dim))

    @property
    def w_dim(self) -> int:
        return self.generator.mapping.w_dim

    def mapping(self, z: Tensor) -> Tensor:
        return self.generator.mapping(z * self.scale.to(z.dtype))

    def from_w(self, w: Tensor) -> Tensor:
        return (torch.tanh(self.generator.synthesis(w)) + 1.0) / 2.0

    def forward(self, z: Tensor) -> Tensor:
        return self.from_w(self.mapping(z))


class ModuleGenerator(nn.Module):
    """A user's module behind the [0, 1] image boundary: ``(module(z) − low) / (high − low)``, clamped."""

    def __init__(self, module: nn.Module, image_range: tuple[float, float]):
        super().__init__()
        self.module = module
        self.low, self.high = float(image_range[0]), float(image_range[1])

    def forward(self, z: Tensor) -> Tensor:
        y = self.module(z)
        return ((y - self.low) / (self.high - self.low)).clamp(0.0, 1.0)


def import_factory(factory: str):
    """``"pkg.mod:fn"`` (or ``"pkg.mod:Class"``) → the callable, with an error that names what is missing."""
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise GaninvError(f"generator module {factory!r}: expected 'package.module:factory'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise GaninvError(f"generator module {factory!r}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GaninvError(f"generator module {factory!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise GaninvError(f"generator module {factory!r}: {attr!r} is not callable")
    return obj


def build_module(factory: str) -> nn.Module:
    module = import_factory(factory)()
    if not isinstance(module, nn.Module):
        raise GaninvError(f"generator module {factory!r} returned a {type(module).__name__}, not a torch nn.Module")
    return module


def build_generator(spec: dict[str, Any], net: NetConfig) -> nn.Module:
    """The frozen generator net a post-hoc run's spec describes (weights are loaded separately)."""
    kind = spec.get("kind")
    if kind == "dcgan":
        from .nets.dcgan import Generator

        return Generator(latent_dim=net.latent_dim, image_size=net.image_size, width=net.width, channels=net.channels)
    if kind == "style":
        return ScaledStyleGenerator(latent_dim=net.latent_dim, image_size=net.image_size, width=net.width,
                                    channels=net.channels, mapping_layers=int(spec["mapping_layers"]))
    if kind == "module":
        return ModuleGenerator(build_module(spec["factory"]), tuple(spec["image_range"]))
    raise GaninvError(f"unknown generator kind {kind!r} in this run's options; expected dcgan, style or module")


def generator_spec(model) -> dict[str, Any]:
    """The spec of the generator inside a loaded generator run (gan, bigan, dlsgan, wrapped)."""
    from .nets.dcgan import Generator
    from .nets.style import StyleGenerator

    method = model.method
    net = method.nets.get("generator")
    if isinstance(net, ModuleGenerator):
        factory = method.options.factory if hasattr(method.options, "factory") else ""
        if not factory:
            raise GaninvError("this wrapped generator has no factory ('pkg.mod:fn'); a run directory can only "
                              "rebuild a module it can import — give wrap_generator(..., factory=...)")
        return {"kind": "module", "factory": factory, "image_range": [net.low, net.high]}
    if isinstance(net, Generator):
        return dict(DCGAN_SPEC)
    if isinstance(net, StyleGenerator):
        return {"kind": "style", "mapping_layers": len(net.mapping.layers)}
    raise GaninvError(f"a {method.name!r} run's generator ({type(net).__name__}) cannot be frozen under a post-hoc "
                      "method; use a gan, bigan, dlsgan or wrapped generator run")


def generator_state(model) -> dict[str, Tensor]:
    """The generator run's weights in the layout ``build_generator(generator_spec(model))`` expects."""
    method = model.method
    state = method.nets["generator"].state_dict()
    if generator_spec(model)["kind"] == "style":
        scale = getattr(method, "latent_scale", None)
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
    from .model import InversionModel

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
    from .methods.wrapped import WrappedGenerator, WrappedOptions

    options = WrappedOptions(factory=factory or "", image_low=image_range[0], image_high=image_range[1],
                             weights=str(weights or ""))
    config = RunConfig(method=WrappedGenerator.name, seed=seed, options=dataclasses.asdict(options),
                       net=NetConfig(image_size=size, channels=channels, width=width, latent_dim=prior_obj.dim,
                                     prior=prior_obj.name), versions=current_versions())
    method = WrappedGenerator(config, module=module)
    method.nets["generator"].eval()
    return InversionModel(method)


def load_module_weights(module: nn.Module, path: str | Path) -> None:
    """A state dict from .safetensors, or .pt/.pth (tensors only: ``weights_only``), strictly loaded."""
    path = Path(path)
    if not path.is_file():
        raise GaninvError(f"--generator-weights {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
    except Exception as exc:  # any unreadable file: say which
        raise GaninvError(f"cannot read generator weights {path} ({type(exc).__name__}: {exc})") from None
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
    from .train import prepare_run_dir, save_checkpoint

    if model.config.method != "wrapped":
        raise GaninvError(f"save_wrapped_run takes a wrap_generator model, got a {model.config.method!r} run")
    if not model.method.options.factory:
        raise GaninvError("a wrapped generator needs factory='pkg.mod:fn' to be saved: a run directory rebuilds "
                          "the module by importing it (code is never pickled)")
    out = Path(out)
    model.method.config = prepare_run_dir(out, model.config, resume=False)
    save_checkpoint(model.method, out, step=0)
    return out
