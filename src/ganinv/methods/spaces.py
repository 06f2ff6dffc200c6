"""The latent spaces a run can be seen in — z, w, wplus — in one place: each space's prior, its generate, and the
conversion of latents from one space to another.

* ``z``: the generator's own input (for a DLSGAN style generator, z before the latent scale: G(z∘s)).
* ``w``: a style generator's mapping-network output, w = F(z∘s) (StyleGAN's W); its prior is the push-forward of
  the z prior through F (``MappedPrior``), its mean StyleGAN's w̄.
* ``wplus``: W+ ("Image2StyleGAN", Abdal, Qin & Wonka): one w per modulated layer of the synthesis network — every
  ``SynthesisLayer`` and every ``ToRGB``, ``num_ws`` of them (``nets.style.num_ws_for``). Latents are 2-D
  everywhere in this project (``InversionModel.generate`` checks N×dim), so a W+ latent is **flattened layer-major**
  to N×(num_ws·w_dim): columns [i·w_dim, (i+1)·w_dim) are layer i's w, layers in the order they run (see
  ``StyleGenerator.synthesis_wplus``). Search, clustering, interpolation and attribute directions see that
  concatenation, so the distance between two W+ latents is the Euclidean distance of the concatenations
  (√(Σ_layers ||w_i − w'_i||²)). Its prior is the W prior repeated num_ws times (``WPlusPrior``): what a W+
  encoder is trained on, and whose mean is w̄ at every layer.

Only style generators (a dlsgan run, an imported StyleGAN2/3, or a post-hoc run sitting on one: a
``nets.frozen.MappedGenerator``) have w and wplus; asking for them on a DCGAN, BiGAN, DED-GAN or wrapped generator is
one clear ``GaninvError``. Latents convert upward only (z → w → wplus): F has no inverse.

Each space is an object — ``Z``, ``W``, ``WPLUS`` (of the classes ``ZSpace``, ``WSpace``, ``WPlusSpace``) — with its
latent width (``dim``), its prior, its ``generate`` and the conversion of latents up the chain (``from_space``).
config.json and the CLI keep the names "z" / "w" / "wplus"; ``parse_space`` turns a name into the object, and is the
one place that reads names. A method's space is ``Method.space`` (Z unless an encoder method's option ``space`` says
otherwise; ``methods.encoder.EncoderMethod``), a model's ``InversionModel.space``.

    parse_space("wplus")              the object WPLUS (one GaninvError line for any other name)
    latent_space(method, WPLUS)       a run's generator seen in a space: prior, generate, from_run (its own latents →
                                      the space); what optimisation in W / W+ (``--refine N --space``) works on
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from ganinv.core.config import NetConfig
from ganinv.core.errors import GaninvError
from ganinv.latent import Prior, make_prior
from ganinv.nets.frozen import MappedGenerator, ScaledStyleGenerator, mapped_widths
from ganinv.nets.style import StyleGenerator, num_ws_for

W_MEAN_SAMPLES = 1024


# --- the priors of W and W+ -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MappedPrior(Prior):
    """The push-forward of a base prior through a frozen mapping network (a style generator's W space)."""

    base: Prior | None = None
    mapper: Callable[[Tensor], Tensor] | None = field(default=None, compare=False, repr=False)

    @property
    def bounds(self):
        return None

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        z = self.base.sample(n, generator=generator, device=device)
        with torch.no_grad():
            return self.mapper(z)

    def mean(self, n: int, device=None) -> Tensor:
        """StyleGAN's w̄: the mean of F over a fixed set of prior samples."""
        w = MappedPrior.sample(self, W_MEAN_SAMPLES, generator=torch.Generator().manual_seed(0))
        return self.widen(w.mean(0, keepdim=True)).expand(n, -1).to(device if device is not None else w.device).clone()

    def widen(self, w: Tensor) -> Tensor:
        """w → a latent of this prior's space (W itself)."""
        return w

    def clamp(self, z: Tensor) -> Tensor:
        return z

    def std(self) -> float:
        return 1.0


@dataclass(frozen=True)
class WPlusPrior(MappedPrior):
    """W+'s prior: a W sample repeated at each of the ``num_ws`` layers, flattened layer-major (dim num_ws·w_dim)."""

    num_ws: int = 1

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        return self.widen(super().sample(n, generator=generator, device=device))

    def widen(self, w: Tensor) -> Tensor:
        return repeat_w(w, self.num_ws)


def repeat_w(w: Tensor, num_ws: int) -> Tensor:
    """w (N×w_dim) → the W+ latent with that w at every layer, flattened (N×(num_ws·w_dim))."""
    return w.repeat(1, num_ws)


def unflatten_wplus(latents: Tensor, num_ws: int) -> Tensor:
    """A flattened W+ latent (N×(num_ws·w_dim), layer-major) → N×num_ws×w_dim."""
    if latents.ndim != 2 or latents.shape[1] % num_ws:
        raise GaninvError(f"W+ latents must be N×(num_ws·w_dim) with num_ws = {num_ws}, got {tuple(latents.shape)}")
    return latents.reshape(latents.shape[0], num_ws, -1)


# --- the spaces ------------------------------------------------------------------------------------------------------

Mapper = Callable[[], nn.Module]  # returns the generator when called: looked up at each use (see Space.prior)


@dataclass(frozen=True)
class Space:
    """One latent space. ``level`` is its place on the chain z → w → wplus: latents convert upward only."""

    name: ClassVar[str]
    level: ClassVar[int]

    def __str__(self) -> str:
        return self.name

    def dim(self, net: NetConfig, spec: dict | None = None) -> int:
        """The width of a latent of this space for a run of these nets on the generator ``spec``."""
        raise NotImplementedError

    def prior(self, base: Prior, generator: Mapper) -> Prior:
        """This space's prior over the z prior ``base``; ``generator()`` is the (style) generator, looked up at each
        use, so a prior built before the weights were loaded or moved maps with the current ones."""
        raise NotImplementedError

    def generate(self, generator: nn.Module, latents: Tensor) -> Tensor:
        """Images in [0, 1] of latents of this space."""
        raise NotImplementedError

    def lift(self, latents: Tensor, generator: nn.Module) -> Tensor:
        """Latents of the space one below on the chain → latents of this one."""
        raise NotImplementedError

    def encoder_bound(self, prior: Prior) -> float | None:
        """The bound of an encoder's tanh head predicting this space's latents (None: a linear head)."""
        return None

    def check(self, mapped: bool, kind: str, label: str | None = None) -> None:
        """Refuse this space on a generator without a mapping network (``mapped``), naming its ``kind``."""
        if not mapped:
            raise GaninvError(f"{label or f'space={self}'} needs a style generator with a mapping network (a dlsgan "
                              "run, an imported StyleGAN, or a post-hoc run on one); this run's generator is of kind "
                              f"{kind!r}, which has only z — use space z")

    def reaches(self, target: Space) -> bool:
        """Whether latents of this space convert into ``target``'s (at or above it on the chain)."""
        return target.level >= self.level

    def from_space(self, latents: Tensor, source: Space, generator: nn.Module) -> Tensor:
        """Latents of ``source`` as latents of this space: z → w by the mapping network (w = F(z∘s)), w → wplus by
        repeating w at every layer. The other way is refused: the mapping network has no inverse."""
        if not source.reaches(self):
            raise GaninvError(f"cannot turn {source} latents into {self} latents (the mapping network has no "
                              f"inverse); choose a space at or above {source} (z → w → wplus)")
        for space in CHAIN[source.level + 1:self.level + 1]:
            latents = space.lift(latents, generator)
        return latents


@dataclass(frozen=True)
class ZSpace(Space):
    """The generator's own input (for a DLSGAN style generator, z before the latent scale: G(z∘s))."""

    name = "z"
    level = 0

    def dim(self, net: NetConfig, spec: dict | None = None) -> int:
        return net.latent_dim

    def prior(self, base: Prior, generator: Mapper) -> Prior:
        return base

    def generate(self, generator: nn.Module, latents: Tensor) -> Tensor:
        return generator(latents)

    def encoder_bound(self, prior: Prior) -> float | None:
        return prior.bounds[1] if prior.bounds else None  # the support of a bounded (uniform) prior

    def check(self, mapped: bool, kind: str, label: str | None = None) -> None:
        """Every generator has z."""


def style_widths(net: NetConfig, spec: dict | None) -> tuple[int, int]:
    """(w_dim, num_ws) of the generator ``spec`` (None: a DCGAN). A kind without a mapping network is refused by
    ``Space.check`` once the nets are built; until then the widths a DLSGAN style generator would have stand in."""
    return mapped_widths(spec or {"kind": "dcgan"}, net) or (net.latent_dim, num_ws_for(net.image_size))


def mapper(generator: Mapper) -> Callable[[Tensor], Tensor]:
    """z → w = F(z) with the generator ``generator()`` has now, on its device."""

    def mapping(z: Tensor) -> Tensor:
        G = generator()
        return G.mapping(z.to(next(G.parameters()).device))

    return mapping


@dataclass(frozen=True)
class WSpace(Space):
    """A style generator's mapping-network output w = F(z∘s) (StyleGAN's W); its prior is the push-forward of the z
    prior through F."""

    name = "w"
    level = 1

    def dim(self, net: NetConfig, spec: dict | None = None) -> int:
        return style_widths(net, spec)[0]

    def prior(self, base: Prior, generator: Mapper) -> Prior:
        return MappedPrior("w", generator().w_dim, base=base, mapper=mapper(generator))

    def generate(self, generator: nn.Module, latents: Tensor) -> Tensor:
        return generator.from_w(latents)

    def lift(self, latents: Tensor, generator: nn.Module) -> Tensor:
        return generator.mapping(latents)


@dataclass(frozen=True)
class WPlusSpace(Space):
    """One w per modulated layer, flattened layer-major (see the module docstring); its prior the W prior repeated
    at every layer."""

    name = "wplus"
    level = 2

    def dim(self, net: NetConfig, spec: dict | None = None) -> int:
        w_dim, num_ws = style_widths(net, spec)
        return w_dim * num_ws

    def prior(self, base: Prior, generator: Mapper) -> Prior:
        G = generator()
        return WPlusPrior("wplus", G.w_dim * G.num_ws, base=base, mapper=mapper(generator), num_ws=G.num_ws)

    def generate(self, generator: nn.Module, latents: Tensor) -> Tensor:
        return generator.from_wplus(unflatten_wplus(latents, generator.num_ws))

    def lift(self, latents: Tensor, generator: nn.Module) -> Tensor:
        return repeat_w(latents, generator.num_ws)


Z, W, WPLUS = ZSpace(), WSpace(), WPlusSpace()
CHAIN: tuple[Space, ...] = (Z, W, WPLUS)  # by level
SPACES: dict[str, Space] = {space.name: space for space in CHAIN}


def parse_space(name: str | Space, label: str | None = None) -> Space:
    """The space a name (config.json's option ``space``, the CLI's ``--space``) stands for: the one place that reads
    names. A Space passes through unchanged."""
    if isinstance(name, Space):
        return name
    if isinstance(name, str) and name in SPACES:
        return SPACES[name]
    raise GaninvError(f"{label or f'space={name}'}: the space must be one of {', '.join(SPACES)}")


# --- a run seen in a space --------------------------------------------------------------------------------------------

def style_generator(method) -> nn.Module | None:
    """The run's generator with its mapping network (mapping, synthesis from w or W+): the frozen one of a post-hoc
    run or an imported StyleGAN, a ``ScaledStyleGenerator`` view of a dlsgan run's own; None when it has none."""
    net = method.nets["generator"]
    if isinstance(net, MappedGenerator):
        return net
    if isinstance(net, StyleGenerator) and method.latent_scale is not None:
        return ScaledStyleGenerator.viewing(net, method.latent_scale)
    return None


def generator_kind(method) -> str:
    """'style' when the run's generator has a mapping network; else its kind (post-hoc) or the run's method."""
    if style_generator(method) is not None:
        return "style"
    return method.name if method.provides_generator else method.generator_spec["kind"]


@dataclass(frozen=True)
class SpaceView:
    """A run's generator seen in one space: the space's prior and generate, and ``from_run`` turning the run's own
    latents (``invert``'s answers) into this space's."""

    space: Space
    prior: Prior
    generate: Callable[[Tensor], Tensor]
    from_run: Callable[[Tensor], Tensor]


def latent_space(method, space: str | Space | None = None, label: str | None = None) -> SpaceView:
    """The run ``method`` seen in ``space`` (a Space or its name; None: its own). Its own space is the run itself
    (prior, generate); another needs a style generator, and a space at or above the run's (z → w → wplus)."""
    own = method.space
    label = label or f"--space {space}"
    target = own if space is None else parse_space(space, label)
    if target == own:
        return SpaceView(own, method.prior, method.generate, lambda latents: latents)
    target.check(style_generator(method) is not None, generator_kind(method), label)
    if not own.reaches(target):
        raise GaninvError(f"{label}: this run's latents are {own} latents, which cannot be turned into {target} (the "
                          f"mapping network has no inverse); choose {own} or above")
    base = make_prior(method.config.net.prior, method.config.net.latent_dim)
    prior = target.prior(base, lambda: style_generator(method))
    return SpaceView(target, prior, lambda latents: target.generate(style_generator(method), latents),
                     lambda latents: target.from_space(latents, own, style_generator(method)))
