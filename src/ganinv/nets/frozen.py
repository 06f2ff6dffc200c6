"""The frozen generators a post-hoc method can sit on, rebuilt from a *generator spec* recorded in its config.

    {"kind": "dcgan"}                                     a gan or bigan run's DCGAN generator (the default:
                                                          runs written before specs existed have none)
    {"kind": "style", "mapping_layers": 8}                a dlsgan run's style generator, frozen with its latent
                                                          scale s: generate(z) = G(z∘s), w = F(z∘s)
    {"kind": "module", "factory": "pkg.mod:fn",           a user's nn.Module (``ganinv.wrap_generator`` /
     "image_range": [-1.0, 1.0]}                           ``ganinv wrap``), rebuilt by importing ``factory`` —
                                                          never pickled code
"""
from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import Tensor, nn

from ganinv.core.config import NetConfig
from ganinv.core.errors import GaninvError
from ganinv.nets.dcgan import Generator
from ganinv.nets.style import StyleGenerator

DCGAN_SPEC = {"kind": "dcgan"}



class ScaledStyleGenerator(nn.Module):
    """A DLSGAN style generator frozen with its latent scale s (a buffer, saved with the weights).

    ``forward(z) = G(z∘s)`` (what the dlsgan run's ``generate`` does); ``mapping(z) = F(z∘s) = w``;
    ``from_w(w)`` is the synthesis network's image in [0, 1] — the W space of a projection network;
    ``from_wplus(ws)`` takes one w per modulated layer (ws: N×num_ws×w_dim) — the extended space W+."""

    def __init__(self, *, latent_dim: int, image_size: int, width: int, channels: int, mapping_layers: int):
        super().__init__()

        self.generator = StyleGenerator(latent_dim=latent_dim, image_size=image_size, width=width,
                                        channels=channels, mapping_layers=mapping_layers)
        self.register_buffer("scale", torch.ones(latent_dim))

    @classmethod
    def viewing(cls, generator: StyleGenerator, scale: Tensor) -> ScaledStyleGenerator:
        """A view of a joint run's own generator and latent scale (shared, not copied): W and W+ of a dlsgan run."""
        view = cls.__new__(cls)
        nn.Module.__init__(view)
        view.generator = generator
        view.register_buffer("scale", scale.detach().float().to(generator.const.device))  # s may sit elsewhere
        return view

    @property
    def w_dim(self) -> int:
        return self.generator.mapping.w_dim

    @property
    def num_ws(self) -> int:
        return self.generator.num_ws

    def mapping(self, z: Tensor) -> Tensor:
        return self.generator.mapping(z * self.scale.to(z.dtype))

    def from_w(self, w: Tensor) -> Tensor:
        return (torch.tanh(self.generator.synthesis(w)) + 1.0) / 2.0

    def from_wplus(self, ws: Tensor) -> Tensor:
        return (torch.tanh(self.generator.synthesis_wplus(ws)) + 1.0) / 2.0

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

        return Generator(latent_dim=net.latent_dim, image_size=net.image_size, width=net.width, channels=net.channels)
    if kind == "style":
        return ScaledStyleGenerator(latent_dim=net.latent_dim, image_size=net.image_size, width=net.width,
                                    channels=net.channels, mapping_layers=int(spec["mapping_layers"]))
    if kind == "module":
        return ModuleGenerator(build_module(spec["factory"]), tuple(spec["image_range"]))
    raise GaninvError(f"unknown generator kind {kind!r} in this run's options; expected dcgan, style or module")


