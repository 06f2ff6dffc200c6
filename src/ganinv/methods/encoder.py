"""What every encoder method shares (aegan, regression, iterative): a post-hoc net on a frozen generator that
predicts latents of the space its option ``space`` names (z | w | wplus: ``ganinv.methods.spaces``).

A new encoder method derives from ``EncoderMethod``, gives its Options a field ``space: str = "z"`` (validated with
``parse_space``) and builds its nets with ``self.latent_dim`` (or ``self.space_encoder()``); it then gets for free:
the space parsed once (``self.space``), the refusal of w / wplus on a generator without a mapping network, the
space's prior (what ``sample_latents`` draws and the applications see), ``generate`` in that space and ``invert``
by the net ``encoder``. ``tests/methods/test_contract.py`` checks that every encoder method derives from it.
"""
from __future__ import annotations

from functools import cached_property

from torch import Tensor, nn

from ganinv.methods.base import GeneratorRole, Method
from ganinv.methods.spaces import Space, parse_space
from ganinv.nets.dcgan import InverseGenerator
from ganinv.nets.frozen import DCGAN_SPEC, mapped_widths


class EncoderMethod(Method):
    generator_role = GeneratorRole.FROZEN
    trainable = ("encoder",)

    def __init__(self, config):
        super().__init__(config)
        self.check_generator(self.config)  # a config read from disk is checked as the launcher checks a new one
        self.prior = self.space.prior(self.prior, lambda: self.nets["generator"])

    @classmethod
    def check_generator(cls, config) -> None:
        """w and wplus need a generator with a mapping network: known from its spec (``config.generator``; None is a
        DCGAN) by ``nets.frozen.mapped_widths``, before any net is built."""
        spec = config.generator or DCGAN_SPEC
        space = parse_space(config.options.get("space", "z"))
        space.check(mapped_widths(spec, config.net) is not None, spec["kind"])

    @cached_property
    def space(self) -> Space:
        """The option ``space`` as its object, parsed once (``build_nets`` already needs it, before ``__init__``
        returns)."""
        return parse_space(self.options.space)

    @property
    def latent_dim(self) -> int:
        """The width of the encoder's answer: a latent of this run's space on its generator."""
        return self.space.dim(self.config.net, self.generator_spec)

    def space_encoder(self, *, channels: int | None = None, bounded: bool = True) -> nn.Module:
        """AEGAN's table-5 IG predicting a latent of the run's space: tanh-bounded to the support of a bounded z prior
        (unless ``bounded`` is False), linear in W and W+. Call it from ``build_nets`` (``self.prior`` is still the z
        prior then). ``channels``: its input's (default the images'; the iterative encoder's input is two images)."""
        n = self.config.net
        bound = self.space.encoder_bound(self.prior) if bounded else None
        return InverseGenerator(latent_dim=self.latent_dim, image_size=n.image_size, width=n.width,
                                channels=channels or n.channels, latent_bound=bound, max_width=n.max_width)

    def generate(self, latents: Tensor) -> Tensor:
        return self.space.generate(self.nets["generator"], latents)

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)
