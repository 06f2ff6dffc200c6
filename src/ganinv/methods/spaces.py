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

Only style generators (a dlsgan run, an imported StyleGAN2/3, or a post-hoc run sitting on one) have w and wplus; asking for them on a DCGAN,
BiGAN, DED-GAN or wrapped generator is one clear ``GaninvError``. Latents convert upward only (z → w → wplus):
F has no inverse.

    latent_space(method, "wplus")     a run's generator seen in a space: prior, generate, from_run (its own latents →
                                      the space); what optimisation in W / W+ (``--refine N --space``) works on
    space_prior / generate_in / convert_latents / space_dim   the pieces post-hoc methods (aegan, regression,
                                      iterative) use for their option ``space``
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ganinv.core.config import NetConfig
from ganinv.core.errors import GaninvError
from ganinv.latent import Prior, make_prior
from ganinv.nets.dcgan import InverseGenerator
from ganinv.nets.frozen import ScaledStyleGenerator, has_mapping
from ganinv.nets.style import StyleGenerator, num_ws_for

SPACES = ("z", "w", "wplus")
MAPPED_KINDS = ("style", "stylegan")  # generator kinds with a mapping network (see nets.frozen)
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


# --- a space's pieces ---------------------------------------------------------------------------------------------

def check_space(space: str, kind: str, label: str | None = None) -> None:
    """Refuse a space that is not z, w or wplus, and w / wplus on a generator without a mapping network."""
    label = label or f"space={space}"
    if space not in SPACES:
        raise GaninvError(f"{label}: the space must be one of {', '.join(SPACES)}")
    if space != "z" and kind not in MAPPED_KINDS:
        raise GaninvError(f"{label} needs a style generator with a mapping network (a dlsgan run, an imported "
                          f"StyleGAN, or a post-hoc run on one); this run's generator is of kind {kind!r}, which has "
                          "only z — use space z")


def space_dim(space: str, net: NetConfig, spec: dict | None = None) -> int:
    """The width of a latent of ``space`` for a run of these nets on the generator ``spec`` (a DLSGAN style
    generator's w_dim is its latent_dim; an imported StyleGAN's spec records w_dim and num_ws)."""
    if space == "z":
        return net.latent_dim
    if spec and spec.get("kind") == "stylegan":
        return int(spec["w_dim"]) * (int(spec["num_ws"]) if space == "wplus" else 1)
    return net.latent_dim * (num_ws_for(net.image_size) if space == "wplus" else 1)


def space_encoder(config, prior: Prior, space: str, *, channels: int | None = None,
                  bounded: bool = True) -> nn.Module:
    """AEGAN's table-5 IG predicting a latent of ``space``: tanh-bounded to the support of a bounded z ``prior``
    (unless ``bounded`` is False), linear in W and W+. ``channels``: its input's (default the images'; the iterative
    encoder's input is two images)."""
    n = config.net
    bound = prior.bounds[1] if bounded and space == "z" and prior.bounds else None
    return InverseGenerator(latent_dim=space_dim(space, n, config.generator), image_size=n.image_size, width=n.width,
                            channels=channels or n.channels, latent_bound=bound, max_width=n.max_width)


def space_prior(space: str, base: Prior, generator: Callable[[], nn.Module]) -> Prior:
    """The prior of ``space`` over the z prior ``base``; ``generator`` returns the (style) generator when called —
    looked up at each use, so a prior built before the weights were loaded or moved maps with the current ones."""
    if space == "z":
        return base

    def mapper(z: Tensor) -> Tensor:
        G = generator()
        return G.mapping(z.to(next(G.parameters()).device))

    w_dim = generator().w_dim
    if space == "w":
        return MappedPrior("w", w_dim, base=base, mapper=mapper)
    num_ws = generator().num_ws
    return WPlusPrior("wplus", w_dim * num_ws, base=base, mapper=mapper, num_ws=num_ws)


def generate_in(space: str, generator: nn.Module, latents: Tensor) -> Tensor:
    """Images in [0, 1] of latents of ``space``: G(z), the synthesis network of w, or of each layer's w in W+."""
    if space == "z":
        return generator(latents)
    if space == "w":
        return generator.from_w(latents)
    return generator.from_wplus(unflatten_wplus(latents, generator.num_ws))


def convert_latents(latents: Tensor, source: str, target: str, generator: nn.Module) -> Tensor:
    """Latents of ``source`` as latents of ``target``: z → w by the mapping network (w = F(z∘s)), w → wplus by
    repeating w at every layer. The other way is refused: the mapping network has no inverse."""
    if SPACES.index(target) < SPACES.index(source):
        raise GaninvError(f"cannot turn {source} latents into {target} latents (the mapping network has no inverse); "
                          f"choose a space at or above {source} (z → w → wplus)")
    if source == "z" and target != "z":
        latents, source = generator.mapping(latents), "w"
    if source == "w" and target == "wplus":
        latents = repeat_w(latents, generator.num_ws)
    return latents


# --- a run seen in a space --------------------------------------------------------------------------------------------

def run_space(method) -> str:
    """The space a run's latents live in: its option ``space`` (aegan, regression, iterative), else z."""
    return getattr(method.options, "space", "z")


def style_generator(method) -> nn.Module | None:
    """The run's generator with its mapping network (mapping, synthesis from w or W+): the frozen one of a post-hoc
    run or an imported StyleGAN, a ``ScaledStyleGenerator`` view of a dlsgan run's own; None when it has none."""
    net = method.nets["generator"]
    if has_mapping(net):
        return net
    if isinstance(net, StyleGenerator) and method.latent_scale is not None:
        return ScaledStyleGenerator.viewing(net, method.latent_scale)
    return None


def generator_kind(method) -> str:
    """'style' when the run's generator has a mapping network; else its kind (post-hoc) or the run's method."""
    if style_generator(method) is not None:
        return "style"
    return method.name if method.trains_generator else method.generator_spec["kind"]


@dataclass(frozen=True)
class LatentSpace:
    """A run's generator seen in one space: the space's prior and generate, and ``from_run`` turning the run's own
    latents (``invert``'s answers) into this space's."""

    name: str
    prior: Prior
    generate: Callable[[Tensor], Tensor]
    from_run: Callable[[Tensor], Tensor]


def latent_space(method, name: str | None = None, label: str | None = None) -> LatentSpace:
    """The run ``method`` seen in space ``name`` (None: its own). Its own space is the run itself (prior, generate);
    another needs a style generator, and a space at or above the run's (z → w → wplus)."""
    own = run_space(method)
    name = name or own
    if name == own:
        return LatentSpace(own, method.prior, method.generate, lambda latents: latents)
    check_space(name, generator_kind(method), label or f"--space {name}")
    if SPACES.index(name) < SPACES.index(own):
        raise GaninvError(f"{label or f'--space {name}'}: this run's latents are {own} latents, which cannot be "
                          f"turned into {name} (the mapping network has no inverse); choose {own} or above")
    base = make_prior(method.config.net.prior, method.config.net.latent_dim)
    prior = space_prior(name, base, lambda: style_generator(method))
    return LatentSpace(name, prior, lambda latents: generate_in(name, style_generator(method), latents),
                       lambda latents: convert_latents(latents, own, name, style_generator(method)))
