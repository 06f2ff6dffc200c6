"""What every method shares: its nets, the frozen-generator plumbing, optimiser construction, eval mode.

A method is small: it builds its nets from a ``RunConfig``, and implements ``train_step(batch)`` (one update of
every net it trains) and ``invert(x)`` (images in [0,1] → latents in the prior's units). The training loop, the
run directory and ``InversionModel`` know nothing else about it. ``train_step`` computes losses and hands each to
``self.session`` (``ganinv.methods.session``), the runtime that applies them and counts the steps.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganinv.core.config import RunConfig
from ganinv.core.distributed import sync_batchnorm
from ganinv.core.errors import GaninvError
from ganinv.latent import Prior, make_prior
from ganinv.methods.session import TrainingSession
from ganinv.methods.spaces import Z, Space
from ganinv.nets.dcgan import Generator, InverseGenerator
from ganinv.nets.frozen import DCGAN_SPEC, build_generator


class MethodOptions:
    """The base of every method's Options: a frozen dataclass whose fields are config.json's ``options``."""

    def check_before_training(self) -> None:
        """Raise GaninvError when an option names something that must exist before a run is written (e.g. a weights
        file); called once by ``build_config``. The default checks nothing."""

    def resolved(self) -> MethodOptions:
        """A copy with what this machine decides filled in (e.g. which backbone weights were found), called once by
        ``build_config`` after ``check_before_training``: config.json then records the outcome, so a reader on
        another machine knows it. The default resolves nothing."""
        return self


@dataclass(frozen=True)
class NoOptions(MethodOptions):
    """Methods without options of their own."""


def parse_options(cls: type, values: dict[str, Any], method: str):
    """config.json's ``options`` → the method's frozen Options dataclass; unknown keys are refused by name."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise GaninvError(f"method {method!r} has no option(s) {', '.join(unknown)}; valid options: {valid}")
    return cls(**values)


class GeneratorRole(enum.Enum):
    """Where a method's generator comes from (a class attribute, never written to config.json: the method's name
    decides it)."""

    TRAINED = "trained"  # joint methods (gan, dlsgan, dedgan, bigan): trained here, with what inverts it
    PROVIDED = "provided"  # made outside ganinv (wrapped, stylegan): the run holds it, nothing trains it
    FROZEN = "frozen"  # post-hoc methods: a frozen generator taken from another run (--generator RUN)


class Method:
    name: ClassVar[str]
    Options: ClassVar[type[MethodOptions]] = NoOptions  # a frozen dataclass; its fields are config.json's "options"
    # method-specific presets, {name: (NetConfig overrides, TrainConfig overrides)}, over config.PRESETS
    presets: ClassVar[dict[str, tuple[dict, dict]]] = {}
    generator_role: ClassVar[GeneratorRole]
    # derived from generator_role for every subclass (__init_subclass__): whether train_step trains G, and whether
    # the run is a generator of its own that post-hoc methods can take with --generator (trained or provided)
    trains_generator: ClassVar[bool]
    provides_generator: ClassVar[bool]
    uses_real_data: ClassVar[bool]  # whether train_step consumes the dataset's images (see needs_real_data)
    trainable: ClassVar[tuple[str, ...]]  # names in ``nets`` that have optimisers
    space: Space = Z  # the latent space of generate / invert (an encoder method's option ``space`` sets its own)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        role = getattr(cls, "generator_role", None)
        if role is not None:
            cls.trains_generator = role is GeneratorRole.TRAINED
            cls.provides_generator = role is not GeneratorRole.FROZEN

    def __init__(self, config: RunConfig):

        # a post-hoc method's frozen generator is described by config.generator (see ganinv.inference.wrap); None: DCGAN
        spec = config.generator if not self.provides_generator else None
        self.generator_spec: dict[str, Any] = dict(spec or DCGAN_SPEC)
        self.options = parse_options(self.Options, config.options, self.name)
        self.config = config.replace(options=dataclasses.asdict(self.options))  # record every resolved option
        self.prior: Prior = make_prior(config.net.prior, config.net.latent_dim)
        with torch.random.fork_rng(devices=[]):  # initial weights depend on the recorded seed alone
            torch.manual_seed(config.seed)
            self.nets: dict[str, nn.Module] = self.build_nets()
            if not self.provides_generator and self.generator_spec["kind"] != "dcgan":
                self.nets["generator"] = build_generator(self.generator_spec, config.net)
        self.device = torch.device("cpu")  # where the nets are (InversionModel moves them and says so here)
        self.session = TrainingSession()  # accelerator, optimisers, rank, step: the runtime that applies the losses
        if not self.provides_generator:
            self.nets["generator"].requires_grad_(False).eval()

    # --- to implement -------------------------------------------------------------------------------
    def build_nets(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def train_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def invert(self, x: Tensor) -> Tensor:
        raise GaninvError(
            f"a {self.name!r} run has no inverse network; train one on it with "
            "`ganinv train aegan --generator RUN` (or regression)"
        )

    # --- shared -------------------------------------------------------------------------------------
    @classmethod
    def needs_real_data(cls, options: MethodOptions) -> bool:
        """Whether train_step consumes the dataset's images under these options: what the launcher and the loop ask
        (a class's ``uses_real_data`` unless an option changes it, e.g. regression's recon term on real images).
        A classmethod, because the data is opened before the method's nets are built."""
        return cls.uses_real_data

    @classmethod
    def differentiates_twice(cls, options: MethodOptions) -> bool:
        """Whether train_step takes a gradient of a gradient (an R1 penalty's ``create_graph=True``) under these
        options: ``torch.compile``'s aot_autograd cannot, so ``--compile`` is refused for such runs."""
        return False

    @classmethod
    def check_generator(cls, config: RunConfig) -> None:
        """Refuse, building no net, options the run's generator cannot serve (a post-hoc run's is ``config.generator``,
        its spec; e.g. space=w on a DCGAN): what the launcher asks before anything is written, and what an encoder
        method's constructor asks again of a config read from disk. ``config.options`` are already parsed. The
        default refuses nothing."""

    def adopt_generator_run(self, generator) -> None:
        """A post-hoc method's chance to take more than the generator from its ``--generator`` run (an
        ``InversionModel``), called by the launcher after it copied the generator's weights, before anything is
        written (e.g. an encoder's d_features discriminator: ``methods.encoder``). The default takes nothing."""

    @property
    def can_invert(self) -> bool:
        return type(self).invert is not Method.invert

    def generate(self, z: Tensor) -> Tensor:
        return self.nets["generator"](z)

    def extra_state(self) -> dict[str, Tensor]:
        """Tensors beyond weights that the run directory must keep (e.g. a latent scale)."""
        return {}

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        pass

    # --- optional hooks: a method overrides the ones it provides ------------------------------------
    @property
    def latent_scale(self) -> Tensor | None:
        """The per-element latent scale s (d,) of runs that learn one (dlsgan), or None. Search and clustering
        weigh latents by it, editing traverses its largest elements, and a frozen style generator keeps it."""
        return None

    def latent_metrics(self, latents: Tensor, predicted: Tensor) -> dict[str, float]:
        """Latent-space metrics of generated images whose latents are known (``predicted`` = their inversions),
        added to evaluations — e.g. dedgan's angle error in degrees. The default adds none."""
        return {}

    def make_optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        t = self.config.train
        return torch.optim.Adam(net.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))

    def configure(self, accelerator) -> None:
        """Move nets to the accelerator's device and build one optimiser per trainable net (wrapped in DDP by
        Accelerate when several processes run; their BatchNorms then normalise over the global batch)."""

        self.session.attach(accelerator)
        self.device = accelerator.device
        for name, net in self.nets.items():
            self.nets[name] = net.to(self.device)
            if self.world_size > 1 and name in self.trainable:
                self.nets[name] = sync_batchnorm(self.nets[name], self.device)
        for name in self.trainable:
            self.nets[name] = self.session.prepare(name, self.nets[name], self.make_optimizer(self.nets[name]))

    # the session's state that the run directory's checkpoints read off a method (core.rundir.Checkpointable)
    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.session.optimizers

    @property
    def world_size(self) -> int:
        return self.session.world_size

    @property
    def local_batch_size(self) -> int:
        """This process's share of the global batch ``train.batch_size``."""
        return self.config.train.batch_size // self.world_size

    def sample_latents(self, n: int | None = None) -> Tensor:
        """``n`` (default: this rank's share of the batch) prior samples of this step (``TrainingSession.latents``)."""
        n = self.local_batch_size if n is None else n
        return self.session.latents(self.prior, n).to(self.device)

    def bare(self, name: str) -> nn.Module:
        """A net without its DDP wrapper: for passes whose gradients must not be synchronised (the generator step
        through a frozen discriminator — DDP would wait for gradients that never come)."""
        return self.session.unwrap(self.nets[name])

    @contextlib.contextmanager
    def frozen(self, name: str):
        """The bare net ``name`` with its weights frozen for the duration (the other player's step)."""
        net = self.bare(name)
        net.requires_grad_(False)
        try:
            yield net
        finally:
            net.requires_grad_(True)

    @contextlib.contextmanager
    def eval_mode(self):
        """Nets in eval mode (BN running statistics) and no autograd, restoring the previous modes after."""
        modes = {name: net.training for name, net in self.nets.items()}
        wrapped, self.nets = self.nets, self.unwrapped_nets()  # no DDP collectives from one rank's evaluation
        for net in self.nets.values():
            net.eval()
        try:
            with torch.no_grad():
                yield self
        finally:
            self.nets = wrapped
            for name, net in self.nets.items():
                net.train(modes[name])

    def train_mode(self) -> None:
        for name in self.trainable:
            self.nets[name].train()

    def unwrapped_nets(self) -> dict[str, nn.Module]:
        """The nets without any DDP/compile wrapper Accelerate put around them (what the run directory saves)."""
        return {name: self.session.unwrap(net) for name, net in self.nets.items()}


def dcgan_generator(config: RunConfig) -> nn.Module:

    n = config.net
    return Generator(latent_dim=n.latent_dim, image_size=n.image_size, width=n.width, channels=n.channels)


class ProvidedGenerator(Method):
    """A generator made outside ganinv (``wrapped``, ``stylegan``) as a run: ``generate`` only, never trained here;
    post-hoc methods take it with ``--generator RUN``. ``train_step`` says how to make one and what to train on it."""

    generator_role = GeneratorRole.PROVIDED
    uses_real_data = False
    trainable = ()
    not_trained_here: ClassVar[str] = "this generator is not trained by ganinv"

    def train_step(self, batch) -> dict[str, float]:
        raise GaninvError(self.not_trained_here)


def dcgan_inverse_generator(config: RunConfig, prior: Prior) -> nn.Module:

    n = config.net
    bound = prior.bounds[1] if prior.bounds else None
    return InverseGenerator(
        latent_dim=n.latent_dim, image_size=n.image_size, width=n.width, channels=n.channels, latent_bound=bound,
        max_width=n.max_width,
    )
