"""Iterative refinement encoder: the idea of "ReStyle: A Residual-Based StyleGAN Encoder via Iterative Refinement"
(Alaluf, Patashnik & Cohen-Or), post-hoc on any frozen generator this project knows (DCGAN, the DLSGAN style
generator in z, w or W+, BiGAN, wrapped modules):

    ẑ_0     = the prior's mean (start="mean") or another encoder run's answer (start=RUN_DIR, see below)
    Δẑ_t    = E(x ⊕ G(ẑ_t))          ⊕: the image and the current reconstruction concatenated on channels
    ẑ_{t+1} = clamp(ẑ_t + Δẑ_t)      clamp: into the prior's support (a no-op for normal priors, W and W+)

E is AEGAN's table-5 inverse generator with 2·C input channels and a linear head of the space's width.

Training (option ``data``): on the frozen generator's own samples x = G(z) (``generated``, the default: AEGAN's
setting), on the dataset's real train images (``real``: ReStyle's setting; the run needs data, --data or the
generator run's), or half of each (``mixed``). Every pass t adds

    loss_t = image_loss(G(ẑ_{t+1}), x) [+ latent_weight · ||ẑ_{t+1} − z||² on the generated rows, whose z is known]

(image_loss: AEGAN's BCE, MSE, MSE + LPIPS, or MSE + d_features — ``ganinv.losses.image``; LPIPS asked for without
its weights is refused before training; d_features compares the feature maps of the ``--generator`` run's own
discriminator, kept frozen in this run, ``methods.discriminator``, and is refused on a generator run without one)
with ẑ_t detached between passes — as ReStyle, gradients do not flow from one pass into the earlier ones — and the
passes' gradients summed into one Adam step per batch (ReStyle's coach: one backward per pass, one step).

Why ``real``: trained on G's samples alone, the passes do not help on real images (issue 25: 15.4 → 12.1 dB over
T = 1 → 10 on CelebA faces of an imported StyleGAN2). Every pass was already supervised; the cause is the shift
from G's samples to real images. Measured on held-out real digits with tests/methods/test_iterative_real.py's tiny
untrained style generator in W (200 steps, T = 5): off its training distribution the generated-only encoder's steps
|Δẑ_t| do not shrink (3.1, 2.5, 2.7, 3.0, …; trained on real images: 14.7, 1.8, 1.4, 1.0, …), its PSNR stays near
the mean's and may oscillate (one seed: 6.8, 4.8, 6.3, 5.2 dB after passes 1–4), and halving every step does not
rescue it (≈ 5 dB): the residual points the wrong way rather than merely overshooting. Trained on real images,
five passes beat one on held-out images (W+, 150 steps: 13.9 → 17.6 dB); passes beyond the trained T then slowly
give some of it back (W+, 200 steps: 17.5 dB at T = 4 → 15.3 at T = 10), so infer with the T trained.

Inference: ``invert(x)`` runs the Options' ``steps`` passes (T, default 5); ``invert(x, steps=k)`` runs k;
``model.method.inference_steps = k`` makes every ``InversionModel.invert`` — and so every app — run k; and
``invert_steps(model, x, steps=10)`` returns ẑ_0 … ẑ_10 from one call, so a benchmark can read T = 1…10 off
one run. Passes beyond the trained T are allowed (the encoder learnt a residual step, not a schedule).

``start=RUN_DIR``: an aegan, regression or psp run on the **same** generator (checked by fingerprint when
training starts) — ReStyle's encoder-bootstrapped variant; its encoder is copied into this run (net ``start``,
frozen), so loading this run needs only its own directory, and ẑ_0 is that run's ``invert`` (for psp: w̄ + its
offsets, in pSp's or e4e's form, w̄ from this run's generator). Its answers are converted up to this run's space (z → w → wplus; ``ganinv.methods.spaces``).
config.json records the start run's method and options (``start_method``, ``start_options``), which rebuild it.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.core.rundir import generator_fingerprint, read_config, read_weights, split_weights
from ganinv.losses import latent_mse
from ganinv.losses.image import ImageLoss, image_loss
from ganinv.methods.aegan import AEGAN
from ganinv.methods.base import Method, MethodOptions, dcgan_generator
from ganinv.methods.discriminator import check_recorded
from ganinv.methods.encoder import EncoderMethod
from ganinv.methods.psp import PSP
from ganinv.methods.regression import Regression
from ganinv.methods.spaces import Space, parse_space

if TYPE_CHECKING:  # annotations only: methods sit below inference
    from ganinv.inference.model import InversionModel

IMAGE_LOSSES = ("bce", "mse", "mse+lpips", "mse+d_features")  # named image losses (ganinv.losses.image)
DATA = ("generated", "real", "mixed")  # what the encoder trains on (option ``data``)
START_METHODS: dict[str, type[Method]] = {"aegan": AEGAN, "regression": Regression, "psp": PSP}  # their invert: ẑ_0


@dataclass(frozen=True)
class IterativeOptions(MethodOptions):
    steps: int = 5  # T: refinement passes per inversion, in training and (by default) at inference
    start: str = "mean"  # mean (the prior's mean; w̄ in W and W+) | RUN_DIR of an aegan/regression/psp run on this G
    loss: str = "bce"  # the image term: bce (AEGAN's) | mse | mse+lpips (refused when LPIPS weights are missing)
    #                    | mse+d_features (the --generator run's discriminator's features; refused when it has none)
    latent_weight: float = 1.0  # λ of the latent term λ·||ẑ − z||²
    space: str = "z"  # z | w | wplus (w, wplus: style generators; ganinv.methods.spaces)
    data: str = "generated"  # generated: G's samples | real: the dataset's images (ReStyle's) | mixed: half of each
    start_method: str = ""  # resolved by build_config from start=RUN_DIR: the start run's method …
    start_options: dict[str, Any] = field(default_factory=dict)  # … and options (they rebuild its encoder)
    discriminator_method: str = ""  # recorded for loss=mse+d_features: the generator run's method …
    discriminator_options: dict[str, Any] = field(default_factory=dict)  # … and options (they rebuild its frozen D)

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 1:
            raise GaninvError(f"steps (refinement passes) must be an integer >= 1, got {self.steps!r}")
        image_loss(self.loss, IMAGE_LOSSES, "loss")
        if not (self.latent_weight >= 0 and math.isfinite(self.latent_weight)):
            raise GaninvError(f"latent_weight must be finite and >= 0, got {self.latent_weight}")
        parse_space(self.space)  # the generator's kind is checked when the method is built
        if self.data not in DATA:
            raise GaninvError(f"data must be one of {', '.join(DATA)}, got {self.data!r}")
        if not self.start:
            raise GaninvError("start must be 'mean' or the run directory of an aegan, regression or psp run")
        if self.start_method and self.start_method not in START_METHODS:
            raise GaninvError(f"start_method must be one of {', '.join(START_METHODS)}, got {self.start_method!r}")
        check_recorded(self.discriminator_method, self.discriminator_options)

    def image_loss(self) -> ImageLoss:
        return image_loss(self.loss, IMAGE_LOSSES, "loss")

    @property
    def from_run(self) -> bool:
        return self.start != "mean"

    def check_before_training(self) -> None:
        image_loss(self.loss, IMAGE_LOSSES, "loss").require(f"loss={self.loss}", "use loss=mse")
        if self.from_run:
            start_run_config(self.start)

    def resolved(self) -> IterativeOptions:
        """start=RUN_DIR as an absolute path, with that run's method and options recorded in config.json."""
        if not self.from_run:
            return dataclasses.replace(self, start_method="", start_options={})
        config = start_run_config(self.start)
        return dataclasses.replace(self, start=str(Path(self.start).resolve()), start_method=config.method,
                                   start_options=dict(config.options))


def start_run_config(run: str):
    """The config of a start run, which must be an aegan or regression run (one error naming the run otherwise)."""
    try:
        config = read_config(run)
    except GaninvError as exc:
        raise GaninvError(f"start={run}: {exc}") from None
    if config.method not in START_METHODS:
        raise GaninvError(f"start={run} is a {config.method!r} run; the start of an iterative encoder is 'mean' or "
                          f"an {' / '.join(START_METHODS)} run on the same generator")
    return config


def check_start_space(start: str, start_space: Space, space: Space) -> None:
    """The start run's answers (in ``start_space``) must convert up into this run's ``space``."""
    if not start_space.reaches(space):
        raise GaninvError(f"start={start} answers in {start_space}, which cannot be turned into this run's space "
                          f"{space} (z → w → wplus only); use -o space={start_space} or above")


class Iterative(EncoderMethod):
    name = "iterative"
    Options = IterativeOptions
    uses_real_data = False  # by default trained on the generator's own samples, as AEGAN (see needs_real_data)

    def __init__(self, config):
        super().__init__(config)
        o = self.options
        if o.from_run and not o.start_method:  # built without build_config: resolve (and record) now
            self.options = o.resolved()
            self.config = self.config.replace(options=dataclasses.asdict(self.options))
            self.nets["start"] = self._start_encoder()
        check_start_space(o.start, self.start_space, self.space)
        self.image_loss = o.image_loss()  # its d_features term bound at first use (EncoderMethod.bound)
        self.inference_steps: int | None = None  # passes of invert(x) when set; None: the Options' steps
        self._mean: Tensor | None = None  # ẑ_0 for start="mean", computed at first use with the loaded weights
        self._start_run: Method | None = None  # start=RUN_DIR: that run's method, for its invert (start_latents)

    @classmethod
    def check_generator(cls, config) -> None:
        """The space on the generator (``EncoderMethod``), then a start run's: its encoder on this generator, its
        answers convertible into this run's space — from config.json's options, building no net."""
        super().check_generator(config)
        o = config.options
        if o.get("start", "mean") == "mean" or not o.get("start_method"):
            return
        start_options = dict(o["start_options"])
        START_METHODS[o["start_method"]].check_generator(config.replace(options=start_options))
        check_start_space(o["start"], parse_space(start_options.get("space", "z")), parse_space(o.get("space", "z")))

    # --- nets ---
    def build_nets(self) -> dict[str, nn.Module]:
        o = self.options
        nets = {"generator": dcgan_generator(self.config),  # replaced by the base class for other generator kinds
                # a residual step Δẑ: never squashed by a tanh head (the sum ẑ + Δẑ is clamped instead)
                "encoder": self.space_encoder(channels=2 * self.config.net.channels, bounded=False)}
        if o.from_run and o.start_method:
            nets["start"] = self._start_encoder()
        return nets

    def _start_encoder(self) -> nn.Module:
        """The start run's encoder architecture (its weights come from the start run in ``configure``, or from this
        run's own file when it is loaded)."""
        o = self.options
        config = self.config.replace(method=o.start_method, options=dict(o.start_options))
        encoder = START_METHODS[o.start_method](config).nets["encoder"]
        return encoder.requires_grad_(False).eval()

    @property
    def start_space(self) -> Space:
        """The space of ẑ_0: the start run's (config.json records its options), or this run's own (the mean)."""
        return parse_space(self.options.start_options.get("space", "z")) if self.options.from_run else self.space

    def configure(self, accelerator) -> None:
        super().configure(accelerator)
        self._mean, self._start_run = None, None
        if self.options.from_run:
            self._copy_start_encoder()

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        self._mean, self._start_run = None, None  # the weights were just loaded: w̄ is theirs

    def _copy_start_encoder(self) -> None:
        """The start run's encoder weights, after checking it sits on this run's generator (by fingerprint)."""
        run = self.options.start
        config = start_run_config(run)
        weights, _ = split_weights(read_weights(Path(run), config.method)[0])
        ours = generator_fingerprint(self.nets["generator"])
        theirs = config.generator_fingerprint or weights_fingerprint(self.nets["generator"], weights["generator"])
        if theirs != ours:
            raise GaninvError(f"start={run} is a {config.method!r} run on another generator (fingerprint {theirs}) "
                              f"than this run's (fingerprint {ours}); train its encoder with the same --generator, "
                              "or use start=mean")
        self.nets["start"].load_state_dict(weights["encoder"])
        self.nets["start"].requires_grad_(False).eval()

    # --- the seam ---
    def invert(self, x: Tensor, steps: int | None = None) -> Tensor:
        """ẑ after ``steps`` passes (default: ``inference_steps``, else the Options' ``steps``)."""
        return self.passes(x, steps)[-1]

    def passes(self, x: Tensor, steps: int | None = None) -> list[Tensor]:
        """[ẑ_0, ẑ_1, …, ẑ_steps]: the start and the latent after every pass."""
        steps = self.pass_count(steps)
        latents = [self.start_latents(x)]
        for _ in range(steps):
            latents.append(self.refine_once(x, latents[-1]))
        return latents

    def pass_count(self, steps: int | None) -> int:
        if steps is None:
            steps = self.options.steps if self.inference_steps is None else self.inference_steps
        if not isinstance(steps, int) or steps < 0:
            raise GaninvError(f"the number of refinement passes must be an integer >= 0, got {steps!r}")
        return steps

    def start_latents(self, x: Tensor) -> Tensor:
        """ẑ_0: the prior's mean, or the start run's answer converted up to this run's space."""
        with torch.no_grad():
            if not self.options.from_run:
                if self._mean is None:
                    self._mean = self.prior.mean(1).float()
                return self._mean.to(x.device).expand(len(x), -1).clone()
            start = self.start_run().invert(x)
            return self.space.from_space(start, self.start_space, self.nets["generator"])

    def start_run(self) -> Method:
        """The start run's method on this run's nets — its encoder is this run's net ``start``, its generator this
        run's — so its ``invert`` gives ẑ_0 (built at first use after the weights are loaded: psp's w̄ is theirs)."""
        if self._start_run is None:
            o = self.options
            self._start_run = START_METHODS[o.start_method](
                self.config.replace(method=o.start_method, options=dict(o.start_options)))
        self._start_run.nets["encoder"], self._start_run.nets["generator"] = self.nets["start"], self.nets["generator"]
        return self._start_run

    def refine_once(self, x: Tensor, latents: Tensor) -> Tensor:
        """One pass: ẑ + E(x ⊕ G(ẑ)), clamped to the prior's support; G(ẑ) is an input, not differentiated."""
        latents = latents.detach()
        with torch.no_grad():
            current = self.generate(latents)
        delta = self.nets["encoder"](torch.cat([x, current.to(x.dtype)], dim=1))
        return self.prior.clamp(latents + delta)

    # --- training ---
    @classmethod
    def needs_real_data(cls, options: IterativeOptions) -> bool:
        return options.data != "generated"  # real and mixed read the dataset's train images

    def training_batch(self, batch) -> tuple[Tensor, Tensor | None]:
        """(x, the known latents of x's last rows, or None): G's samples (data=generated), the dataset's images
        (real), or the dataset's first half then G's samples for the rest (mixed)."""
        o = self.options
        real = batch[0].to(self.device, torch.float32) if o.data != "generated" else None
        n = self.local_batch_size if real is None else len(real) // 2 * (o.data == "mixed")
        if n == 0:
            return real, None
        target = self.sample_latents(n)
        with torch.no_grad():
            generated = self.generate(target).float()
        return (generated if real is None else torch.cat([real[:len(real) - n], generated])), target

    def train_step(self, batch) -> dict[str, float]:
        """ReStyle's step: from ẑ_0, ``steps`` passes, each pass's reconstruction of x supervised (plus the latent
        term where x's latents are known), ẑ_t detached between passes, one Adam step on the summed gradients."""
        o = self.options
        x, target = self.training_batch(batch)
        latents = self.start_latents(x)
        recons, latent_terms, loss_fn = [], [], self.bound(self.image_loss)
        with self.session.updating("encoder"):  # one backward per pass, their gradients summed into one step
            for _ in range(o.steps):
                latents = self.refine_once(x, latents)
                recon, parts = loss_fn(self.generate(latents), x)
                loss = recon
                if target is not None:  # the generated rows are x's last len(target)
                    latent_terms.append(latent_mse(latents[-len(target):], target))
                    loss = loss + o.latent_weight * latent_terms[-1]
                self.session.backward(loss)
                recons.append(recon.item())
        logs = {f"{o.loss}_first": recons[0], f"{o.loss}_mean": sum(recons) / o.steps, f"{o.loss}_last": recons[-1]}
        if len(parts) > 1:  # a sum of terms: each one's value after the last pass too
            logs.update({f"{name}_last": value.item() for name, value in parts.items()})
        if latent_terms:
            logs["latent_mse"] = sum(t.item() for t in latent_terms) / o.steps
        return logs


def weights_fingerprint(generator: nn.Module, state: dict[str, Tensor]) -> str:
    """The fingerprint of ``state`` loaded into a copy of ``generator`` (for start runs that did not record one);
    weights that do not fit the architecture are another generator by definition."""
    other = copy.deepcopy(generator)
    try:
        other.load_state_dict(state)
    except RuntimeError:
        return "of another architecture"
    return generator_fingerprint(other)


def invert_steps(model: InversionModel, x: Tensor, steps: int | None = None) -> list[Tensor]:
    """Every pass's latents of an iterative run, from one call: ``invert_steps(model, x, 10)[t]`` is ẑ_t (t = 0:
    the start), N×dim each, on the CPU — what ``model.invert`` returns with ``model.method.inference_steps = t``."""
    method = model.method
    if not isinstance(method, Iterative):
        raise GaninvError(f"invert_steps needs an iterative run; this is a {model.config.method!r} run")
    model.check_images(x)
    columns: list[list[Tensor]] = []
    with method.eval_mode():
        for chunk in x.split(model.batch_size):
            passes = method.passes(chunk.to(model.device, torch.float32), steps)
            columns.append([latents.float().cpu() for latents in passes])
    return [torch.cat(column) for column in zip(*columns)]


__all__ = ["Iterative", "IterativeOptions", "invert_steps"]
