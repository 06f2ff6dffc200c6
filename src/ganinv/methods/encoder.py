"""What every encoder method shares (aegan, regression, iterative): a post-hoc net on a frozen generator that
predicts latents of the space its option ``space`` names (z | w | wplus: ``ganinv.methods.spaces``).

A new encoder method derives from ``EncoderMethod``, gives its Options a field ``space: str = "z"`` (validated with
``parse_space``) and builds its nets with ``self.latent_dim`` (or ``self.space_encoder()``); it then gets for free:
the space parsed once (``self.space``), the refusal of w / wplus on a generator without a mapping network, the
space's prior (what ``sample_latents`` draws and the applications see), ``generate`` in that space and ``invert``
by the net ``encoder``. ``tests/methods/test_contract.py`` checks that every encoder method derives from it.

An encoder method whose Options have ``image_loss()`` and the fields ``discriminator_method`` /
``discriminator_options`` offers the offline perceptual term d_features (``methods.discriminator``): asked for, the
generator run's discriminator is checked for before anything is written (``check_generator``), copied frozen into this
run's nets by ``adopt_generator_run``, recorded in the options, and rebuilt from them when the run is loaded.
"""
from __future__ import annotations

import dataclasses
from functools import cached_property

from torch import Tensor, nn

from ganinv.losses.features import DiscriminatorFeatures, discriminator_features
from ganinv.losses.image import ImageLoss
from ganinv.methods.base import GeneratorRole, Method, MethodOptions, parse_options
from ganinv.methods.discriminator import (DISCRIMINATOR, check_run_has_discriminator, copied_discriminator,
                                          recorded_discriminator)
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
        self._features: DiscriminatorFeatures | None = None  # d_features' frozen copy, made at first use
        o = self.options
        if self.wants_d_features(o) and o.discriminator_method:  # a run made already: its own recorded copy
            self.nets[DISCRIMINATOR] = recorded_discriminator(self.config, o.discriminator_method,
                                                              o.discriminator_options)

    @classmethod
    def check_generator(cls, config) -> None:
        """w and wplus need a generator with a mapping network: known from its spec (``config.generator``; None is a
        DCGAN) by ``nets.frozen.mapped_widths``, before any net is built."""
        spec = config.generator or DCGAN_SPEC
        space = parse_space(config.options.get("space", "z"))
        space.check(mapped_widths(spec, config.net) is not None, spec["kind"])
        options = parse_options(cls.Options, config.options, cls.name)
        if cls.wants_d_features(options) and not options.discriminator_method and config.generator_run:
            check_run_has_discriminator(config.generator_run)  # an in-memory generator: adopt_generator_run checks

    @staticmethod
    def wants_d_features(options: MethodOptions) -> bool:
        """Whether these options' image loss has a d_features term (Options without ``image_loss()``: never)."""
        image_loss = getattr(options, "image_loss", None)
        return image_loss is not None and image_loss().d_features > 0

    def adopt_generator_run(self, generator) -> None:
        """d_features asked for: the generator run's (an ``InversionModel``) discriminator, copied frozen into this
        run's nets and its method and options recorded — or one line naming the nets that run has instead."""
        if not self.wants_d_features(self.options):
            return
        g = generator.config
        source = f"the {g.method} run {self.config.generator_run or '(given in memory)'}"
        self.nets[DISCRIMINATOR] = copied_discriminator(self.config, g, generator.method.nets, source)
        self.options = dataclasses.replace(self.options, discriminator_method=g.method,
                                           discriminator_options=dict(g.options))
        self.config = self.config.replace(options=dataclasses.asdict(self.options))
        self._features = None

    def bound(self, loss: ImageLoss) -> ImageLoss:
        """``loss`` with its d_features term bound to this run's frozen discriminator, copied once at first use (its
        weights are loaded after the nets are built); unchanged when the term is off."""
        if loss.d_features == 0:
            return loss
        if self._features is None:
            run = self.config.generator_run or "given in memory"
            self._features = discriminator_features(
                self.nets, f"the discriminator of the {self.options.discriminator_method} run {run}")
        return dataclasses.replace(loss, features=self._features)

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
