"""The frozen generators a post-hoc method can sit on, rebuilt from a *generator spec* recorded in its config.

    {"kind": "dcgan"}                                     a gan or bigan run's DCGAN generator (the default:
                                                          runs written before specs existed have none)
    {"kind": "style", "mapping_layers": 8}                a dlsgan run's style generator, frozen with its latent
                                                          scale s: generate(z) = G(z∘s), w = F(z∘s)
    {"kind": "module", "factory": "pkg.mod:fn",           a user's nn.Module (``ganinv.wrap_generator`` /
     "image_range": [-1.0, 1.0]}                           ``ganinv wrap``), rebuilt by importing ``factory`` —
                                                          never pickled code
    {"kind": "stylegan", "arch": "stylegan2",             an imported StyleGAN2 / StyleGAN3 (``ganinv import
     "config": {...}, "truncation_psi": 1.0,               stylegan``), rebuilt from its recorded config by our
     "noise_mode": "const"}                                own pure-PyTorch nets (``nets.stylegan2``/``stylegan3``)

Each kind is one entry of ``GENERATOR_KINDS`` (how to build it; for kinds with a mapping network, its widths). A
generator with a mapping network (``ScaledStyleGenerator``, ``ImportedStyleGAN``) is a ``MappedGenerator`` (a runtime
``Protocol``): ``mapping(z) = w``, ``from_w(w)``, ``from_wplus(ws)`` and ``num_ws`` / ``w_dim`` — all that the spaces W
and W+ (``methods.spaces``) need.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ganinv.core.config import NetConfig
from ganinv.core.errors import GaninvError
from ganinv.nets.dcgan import Generator
from ganinv.nets.style import StyleGenerator, num_ws_for
from ganinv.nets.stylegan2 import StyleGAN2, StyleGAN2Config
from ganinv.nets.stylegan3 import StyleGAN3, StyleGAN3Config

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


STYLEGAN_ARCHS = {"stylegan2": (StyleGAN2, StyleGAN2Config), "stylegan3": (StyleGAN3, StyleGAN3Config)}
NOISE_MODES = ("const", "none")


class ImportedStyleGAN(nn.Module):
    """An imported StyleGAN2 or StyleGAN3 behind the project's boundary: images in [0, 1] (the [-1, 1] output mapped
    and clamped), truncation ψ applied in the mapping (w = w̄ + ψ(w − w̄)), and the noise inputs fixed to the
    recorded ones (``noise_mode="const"``) or off, so one latent maps to one image. Its weights sit under
    ``generator.`` with the original files' names. ``truncation_cutoff`` (NVlabs'): images generated from z
    truncate only the first that many layers' ws; ``mapping`` (the spaces W, W+) truncates one w for every layer."""

    def __init__(self, *, arch: str, config: dict[str, Any], truncation_psi: float = 1.0, noise_mode: str = "const",
                 truncation_cutoff: int | None = None):
        super().__init__()
        if arch not in STYLEGAN_ARCHS:
            raise GaninvError(f"unknown StyleGAN architecture {arch!r}; expected one of {', '.join(STYLEGAN_ARCHS)}")
        if noise_mode not in NOISE_MODES:
            raise GaninvError(f"noise_mode must be one of {', '.join(NOISE_MODES)} (one latent, one image), "
                              f"got {noise_mode!r}")
        net_cls, config_cls = STYLEGAN_ARCHS[arch]
        self.arch, self.truncation_psi, self.noise_mode = arch, float(truncation_psi), noise_mode
        self.truncation_cutoff = truncation_cutoff
        self.generator = net_cls(config_cls(**config))

    def spec(self) -> dict[str, Any]:
        """This generator's spec (see the module docstring): what a post-hoc run records to rebuild it."""
        config = dataclasses.asdict(self.generator.config)
        return {"kind": "stylegan", "arch": self.arch, "config": config, "truncation_psi": self.truncation_psi,
                "noise_mode": self.noise_mode, "w_dim": self.w_dim, "num_ws": self.num_ws,
                "truncation_cutoff": self.truncation_cutoff}

    @property
    def w_dim(self) -> int:
        return self.generator.w_dim

    @property
    def num_ws(self) -> int:
        return self.generator.num_ws

    def mapping(self, z: Tensor) -> Tensor:
        return self.generator.mapping(z, truncation_psi=self.truncation_psi)

    def from_w(self, w: Tensor) -> Tensor:
        return self.from_wplus(w.unsqueeze(1).expand(-1, self.num_ws, -1))

    def from_wplus(self, ws: Tensor) -> Tensor:
        y = self.generator.synthesis(ws, noise_mode=self.noise_mode)
        return ((y + 1.0) / 2.0).clamp(0.0, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        if self.truncation_cutoff is None:
            return self.from_w(self.mapping(z))
        w = self.generator.mapping(z, truncation_psi=1.0)  # NVlabs: ψ applies to ws[:, :truncation_cutoff] only
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        cut = min(self.truncation_cutoff, self.num_ws)
        ws[:, :cut] = self.generator.mapping.w_avg.lerp(ws[:, :cut], self.truncation_psi)
        return self.from_wplus(ws)

    def compile(self, *args, **kwargs) -> None:
        """``torch.compile`` the mapping and synthesis networks in place (``--compile``): every path — z, W, W+ —
        goes through them, while ``nn.Module.compile`` of this wrapper would cover ``forward`` (z) alone."""
        self.generator.mapping.compile(*args, **kwargs)
        self.generator.synthesis.compile(*args, **kwargs)


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


# --- the generator kinds: spec["kind"] -> how to build it ----------------------------------------------------------

@runtime_checkable
class MappedGenerator(Protocol):
    """A generator with a mapping network: all that the spaces W and W+ (``methods.spaces``) need of it.
    ``ScaledStyleGenerator`` and ``ImportedStyleGAN`` are two; ``isinstance(net, MappedGenerator)`` asks."""

    @property
    def w_dim(self) -> int: ...

    @property
    def num_ws(self) -> int: ...

    def mapping(self, z: Tensor) -> Tensor: ...

    def from_w(self, w: Tensor) -> Tensor: ...

    def from_wplus(self, ws: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class GeneratorKind:
    """How a post-hoc run rebuilds a frozen generator of one kind from its spec (weights are loaded separately), and
    — for kinds with a mapping network — the (w_dim, num_ws) it will have, known before it is built."""

    build: Callable[[dict[str, Any], NetConfig], nn.Module]
    widths: Callable[[dict[str, Any], NetConfig], tuple[int, int]] | None = None


def style_widths(spec: dict[str, Any], net: NetConfig) -> tuple[int, int]:
    """A DLSGAN style generator's: w_dim is its latent_dim, one w per modulated layer of its image size."""
    return net.latent_dim, num_ws_for(net.image_size)


GENERATOR_KINDS: dict[str, GeneratorKind] = {
    "dcgan": GeneratorKind(lambda spec, net: Generator(latent_dim=net.latent_dim, image_size=net.image_size,
                                                       width=net.width, channels=net.channels)),
    "style": GeneratorKind(lambda spec, net: ScaledStyleGenerator(
        latent_dim=net.latent_dim, image_size=net.image_size, width=net.width, channels=net.channels,
        mapping_layers=int(spec["mapping_layers"])), style_widths),
    "module": GeneratorKind(lambda spec, net: ModuleGenerator(build_module(spec["factory"]),
                                                              tuple(spec["image_range"]))),
    "stylegan": GeneratorKind(lambda spec, net: ImportedStyleGAN(
        arch=spec["arch"], config=spec["config"], truncation_psi=spec["truncation_psi"],
        noise_mode=spec["noise_mode"], truncation_cutoff=spec.get("truncation_cutoff")),
        lambda spec, net: (int(spec["w_dim"]), int(spec["num_ws"]))),
}


def generator_kind(spec: dict[str, Any]) -> GeneratorKind:
    kind = spec.get("kind")
    if kind not in GENERATOR_KINDS:
        raise GaninvError(f"unknown generator kind {kind!r} in this run's options; expected one of "
                          f"{', '.join(GENERATOR_KINDS)}")
    return GENERATOR_KINDS[kind]


def build_generator(spec: dict[str, Any], net: NetConfig) -> nn.Module:
    """The frozen generator net a post-hoc run's spec describes (weights are loaded separately)."""
    return generator_kind(spec).build(spec, net)


def mapped_widths(spec: dict[str, Any], net: NetConfig) -> tuple[int, int] | None:
    """(w_dim, num_ws) of the generator a spec describes when its kind has a mapping network; else None."""
    widths = generator_kind(spec).widths
    return None if widths is None else widths(spec, net)
