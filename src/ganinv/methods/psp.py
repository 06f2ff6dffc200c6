"""pSp (Richardson et al., "Encoding in Style: a StyleGAN Encoder for Image-to-Image Translation", 2021): an encoder
of a frozen style generator trained on **real** images with an image loss, with the e4e options (Tov et al.,
"Designing an Encoder for StyleGAN Image Manipulation", 2021).

    offsets = E(x)                       ``nets.psp.PSPEncoder``: a feature pyramid, one map-to-style head per layer
    pSp:  w_i = w̄ + offset_i             every layer's w from the generator's mean w̄ (pSp's start_from_latent_avg)
    e4e:  w_0 = w̄ + offset_0,  w_i = w_0 + offset_i       (i >= 1: each layer a delta from layer 0's w)
    loss  = ImageLoss(G(w), x)  [+ latent_weight · ||w − w_known||² on generated samples]  [+ delta_weight · Σ ||Δ_i||]

Spaces (option ``space``): ``wplus`` (one head per modulated layer, num_ws of them; the default on a style generator —
the dlsgan style generator, an imported StyleGAN2 / StyleGAN3), ``w`` (one head), ``z`` (one head, the default on a
DCGAN: z = the prior's centre + offset, through tanh onto a bounded prior's support). ``invert(x)`` returns the
space's latent, W+ flattened layer-major (``methods.spaces``).

Options beside the space:

* ``mse``, ``l1``, ``lpips``, ``d_features``: the image loss's weights (``losses.image.ImageLoss``). pSp's are L2
  1.0 and LPIPS 0.8 (plus an identity loss on faces, not here); LPIPS is off by default because its AlexNet weights
  are not on this project's machines — a run asking for it without them is refused before it starts. ``d_features``
  is the offline perceptual term: distances in the feature maps of the ``--generator`` run's own discriminator,
  which this run keeps as a frozen net (``methods.discriminator``; a generator run without one is refused in one
  line).
* ``generated_fraction``: the share of each batch replaced by the generator's own samples, whose latents are known;
  those add ``latent_weight`` times the latent MSE. 1.0 trains on generated samples alone (no --data needed).
* ``progressive_every`` (e4e; 0: off, as pSp): train layer 0's w alone, then add one layer's delta every that many
  steps (e4e: 2000). The heads not yet reached are masked to zero — they start at zero and get no gradient, so they
  stay exactly zero, and ``invert`` after training gives what the last step trained.
* ``delta_weight`` (e4e's λ_d = 2e-4; 0: off): the L2 norm of each delta from layer 0's w, summed over the layers.
  Either e4e option switches the latent to e4e's form (deltas from layer 0's w).
* ``latent_d`` (e4e's λ_adv, 0.1 in their training; 0: off): e4e's latent discriminator
  (``nets.psp.LatentDiscriminator``, an MLP on one w) trained beside the encoder with the non-saturating loss on real
  ws (the mapping network's, from the prior) against layer 0 of the encoder's answer, at its own Adam lr
  ``latent_d_lr`` (e4e: 2e-5) with R1 (``latent_r1``, e4e: 10) every 16 steps; the encoder's loss gains
  ``latent_d`` times the discriminator's non-saturating loss on each trained layer's w, averaged. Needs a space with
  ws (w or wplus). e4e draws both sides through a pool of 50 earlier ws; here each step's batch is used as it is.
* ``backbone``: ``small`` (one IR-SE unit per stage) or ``ir50`` (IR-SE50's 3/4/14/3 units, as pSp; random init —
  the paper's face-recognition weights cannot be had here).

Not done here: pSp's identity loss (it needs ArcFace weights) and its w-norm regulariser.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.losses import latent_mse
from ganinv.losses.image import ImageLoss
from ganinv.methods.base import MethodOptions, dcgan_generator
from ganinv.methods.discriminator import check_recorded
from ganinv.methods.encoder import EncoderMethod
from ganinv.methods.spaces import WPLUS, Z, Space, parse_space, style_widths
from ganinv.nets.frozen import DCGAN_SPEC, mapped_widths
from ganinv.nets.psp import IR50_UNITS, SMALL_UNITS, LatentDiscriminator, PSPEncoder

AUTO = "auto"  # the space option's default: wplus on a generator with a mapping network, z on one without
LATENT_R1_EVERY = 16  # e4e's d_reg_every: the latent D's R1, lazily every 16 steps (weighted by 16)
BACKBONES = {"small": SMALL_UNITS, "ir50": IR50_UNITS}


def finite_at_least_zero(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
        raise GaninvError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PSPOptions(MethodOptions):
    space: str = AUTO  # auto (wplus on a style generator, z on a DCGAN) | z | w | wplus
    backbone: str = "small"  # small: one IR-SE unit per stage | ir50: IR-SE50's 3/4/14/3 (random init)
    mse: float = 1.0  # image loss weights (pSp: L2 1.0, LPIPS 0.8)
    l1: float = 0.0
    lpips: float = 0.0  # refused when LPIPS's weights are missing
    generated_fraction: float = 0.0  # share of each batch from G's samples, with a latent loss on their known latents
    latent_weight: float = 1.0  # weight of that latent MSE
    progressive_every: int = 0  # e4e: add one layer's delta every N steps (0: off, pSp — all layers from step 0)
    delta_weight: float = 0.0  # e4e's λ_d (2e-4): L2 norm of each layer's delta from layer 0's w (0: off)
    latent_d: float = 0.0  # e4e's latent discriminator's weight in the encoder's loss (e4e: 0.1; 0: off)
    latent_d_lr: float = 2e-5  # its Adam learning rate (e4e's)
    latent_r1: float = 10.0  # its R1 weight on real ws (e4e's), applied every LATENT_R1_EVERY steps
    d_features: float = 0.0  # the --generator run's discriminator's features (offline perceptual; 0: off)
    discriminator_method: str = ""  # recorded when d_features > 0: the generator run's method …
    discriminator_options: dict = field(default_factory=dict)  # … and options (they rebuild its frozen D)

    def __post_init__(self):
        if self.space != AUTO:
            parse_space(self.space)  # the generator's kind is checked when the method is built
        if self.backbone not in BACKBONES:
            raise GaninvError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        for name in ("mse", "l1", "lpips", "d_features", "latent_weight", "delta_weight", "generated_fraction",
                     "latent_d", "latent_r1"):
            finite_at_least_zero(name, getattr(self, name))
        if not (isinstance(self.latent_d_lr, (int, float)) and 0 < self.latent_d_lr < 1):
            raise GaninvError(f"latent_d_lr must be in (0, 1), got {self.latent_d_lr!r}")
        if self.generated_fraction > 1:
            raise GaninvError(f"generated_fraction must be in [0, 1], got {self.generated_fraction}")
        if not isinstance(self.progressive_every, int) or self.progressive_every < 0:
            raise GaninvError(f"progressive_every must be an integer >= 0, got {self.progressive_every!r}")
        check_recorded(self.discriminator_method, self.discriminator_options)
        self.image_loss()  # at least one weight > 0

    def image_loss(self) -> ImageLoss:
        return ImageLoss(mse=self.mse, l1=self.l1, lpips=self.lpips, d_features=self.d_features)

    def check_before_training(self) -> None:
        self.image_loss().require(f"lpips={self.lpips:g}", "use -o lpips=0")

    @property
    def e4e(self) -> bool:
        """Whether the latent takes e4e's form (each layer a delta from layer 0's w)."""
        return self.progressive_every > 0 or self.delta_weight > 0


def chosen_space(options: dict, spec: dict | None, net) -> Space:
    """The option ``space``, with ``auto`` resolved on the generator ``spec``: wplus when it has a mapping
    network, z otherwise."""
    name = options.get("space", AUTO)
    if name != AUTO:
        return parse_space(name)
    return WPLUS if mapped_widths(spec or DCGAN_SPEC, net) is not None else Z


class PSP(EncoderMethod):
    name = "psp"
    Options = PSPOptions
    uses_real_data = True

    def __init__(self, config):
        super().__init__(config)
        self.options = dataclasses.replace(self.options, space=self.space.name)  # what auto chose, recorded
        self.config = self.config.replace(options=dataclasses.asdict(self.options))
        self._start: Tensor | None = None
        if self.options.latent_d > 0:  # an instance's own list: the class's (the contract tests read it) is the encoder
            self.trainable = ("encoder", "latent_discriminator")

    @classmethod
    def differentiates_twice(cls, options) -> bool:
        return options.latent_d > 0 and options.latent_r1 > 0  # e4e's R1 on the latent discriminator

    @classmethod
    def check_generator(cls, config) -> None:
        space = chosen_space(config.options, config.generator, config.net)
        if space is Z and config.options.get("latent_d", 0):
            raise GaninvError("latent_d: e4e's latent discriminator scores ws; it needs -o space=w or wplus on a style "
                              "generator")
        super().check_generator(config.replace(options={**config.options, "space": space.name}))

    @classmethod
    def needs_real_data(cls, options: PSPOptions) -> bool:
        return options.generated_fraction < 1

    @cached_property
    def space(self) -> Space:
        return chosen_space({"space": self.options.space}, self.generator_spec, self.config.net)

    @property
    def layer_widths(self) -> tuple[int, int]:
        """(heads, width of each): num_ws heads of w_dim in W+, one head of the space's width in W and z."""
        if self.space is WPLUS:
            w_dim, num_ws = style_widths(self.config.net, self.generator_spec)
            return num_ws, w_dim
        return 1, self.latent_dim

    def build_nets(self) -> dict[str, nn.Module]:
        n = self.config.net
        heads, w_dim = self.layer_widths
        encoder = PSPEncoder(num_ws=heads, w_dim=w_dim, image_size=n.image_size, width=n.width, channels=n.channels,
                             max_width=n.max_width, units=BACKBONES[self.options.backbone])
        nets = {"generator": dcgan_generator(self.config), "encoder": encoder}
        if self.options.latent_d > 0:
            nets["latent_discriminator"] = LatentDiscriminator(w_dim)
        return nets

    def make_optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        if net is self.nets.get("latent_discriminator"):
            return torch.optim.Adam(net.parameters(), lr=self.options.latent_d_lr)  # e4e's: default betas
        return super().make_optimizer(net)

    # --- the latent ---
    def start(self, device) -> Tensor:
        """The latent the offsets are added to (1×dim): w̄ (repeated per layer in W+), or the z prior's centre. Taken
        from the frozen generator at first use (its weights are loaded after the nets are built), then kept."""
        if self._start is None:
            self._start = self.prior.mean(1).detach()
        return self._start.to(device)

    def active_layers(self) -> int:
        """How many heads train at this step: all, or e4e's progressive count (one more every progressive_every)."""
        heads = self.layer_widths[0]
        every = self.options.progressive_every
        return heads if every == 0 else min(heads, 1 + self.session.step // every)

    def compose(self, offsets: Tensor, start: Tensor) -> Tensor:
        """Offsets N×heads×dim onto ``start`` (N×(heads·dim), or 1×…): pSp's w̄ + offset_i, or e4e's
        w_0 = start_0 + offset_0 and w_i = w_0 + offset_i; in z, tanh onto a bounded prior's support. ReStyle's
        iterations would pass their current latent as ``start``."""
        if self.options.e4e:
            offsets = torch.cat([offsets[:, :1], offsets[:, :1] + offsets[:, 1:]], dim=1)
        latents = start + offsets.flatten(1)
        bound = self.space.encoder_bound(self.prior)
        return latents if bound is None else bound * torch.tanh(latents)

    def invert(self, x: Tensor) -> Tensor:
        return self.compose(self.nets["encoder"](x), self.start(x.device))

    # --- training ---
    def training_batch(self, batch) -> tuple[Tensor, Tensor | None]:
        """(images, known latents of the generated ones at its end, or None): the real batch with its last
        ``generated_fraction`` replaced by G's samples of this step's latents."""
        real = batch[0] if batch is not None else None
        size = self.local_batch_size if real is None else real.shape[0]
        generated = round(self.options.generated_fraction * size)
        if generated == 0:
            return real, None
        known = self.sample_latents(generated)
        with torch.no_grad():
            fakes = self.generate(known)
        images = fakes if real is None else torch.cat([real[:size - generated], fakes])
        return images, known

    def train_step(self, batch) -> dict[str, float]:
        o = self.options
        x, known = self.training_batch(batch)
        offsets = self.nets["encoder"](x)
        mask = (torch.arange(offsets.shape[1], device=x.device) < self.active_layers()).to(offsets.dtype)
        offsets = offsets * mask[None, :, None]  # heads e4e has not reached: zero, and no gradient
        latents = self.compose(offsets, self.start(x.device))
        loss, parts = self.bound(o.image_loss())(self.generate(latents), x)
        logs = {f"recon_{name}": value.item() for name, value in parts.items()}
        if known is not None:
            latent = latent_mse(latents[-known.shape[0]:], known)
            loss, logs["latent_mse"] = loss + o.latent_weight * latent, latent.item()
        if o.delta_weight > 0 and offsets.shape[1] > 1:  # e4e: Σ_i mean ||w_i − w_0||₂
            delta = offsets[:, 1:].norm(dim=2).mean(0).sum()
            loss, logs["delta"] = loss + o.delta_weight * delta, delta.item()
        if o.latent_d > 0:
            adversarial = self.latent_adversarial_loss(latents)
            loss, logs["latent_adv"] = loss + o.latent_d * adversarial, adversarial.item()
        self.session.update("encoder", loss)
        if o.latent_d > 0:
            logs.update(self.latent_discriminator_step(latents.detach()))
        return logs

    # --- e4e's latent discriminator ---
    def layer_ws(self, latents: Tensor) -> Tensor:
        """The latents as N×layers×w_dim (one layer in W)."""
        heads, w_dim = self.layer_widths
        return latents.reshape(latents.shape[0], heads, w_dim)

    def latent_adversarial_loss(self, latents: Tensor) -> Tensor:
        """e4e's encoder term: the non-saturating loss of the frozen latent D on each trained layer's w, averaged
        over those layers."""
        ws = self.layer_ws(latents)[:, :self.active_layers()]
        with self.frozen("latent_discriminator") as judge:
            return F.softplus(-judge(ws.flatten(0, 1))).mean()

    def latent_discriminator_step(self, latents: Tensor) -> dict[str, float]:
        """One update of the latent D: real ws from the mapping network against layer 0 of the encoder's answer
        (as e4e), and every LATENT_R1_EVERY steps its R1 penalty on the real ones."""
        judge, w_dim = self.nets["latent_discriminator"], self.layer_widths[1]
        real = self.sample_latents(latents.shape[0])[:, :w_dim]  # a W+ sample repeats one w: its first layer
        loss = F.softplus(-judge(real)).mean() + F.softplus(judge(self.layer_ws(latents)[:, 0])).mean()
        self.session.update("latent_discriminator", loss)
        logs = {"latent_d_loss": loss.item()}
        if self.session.step % LATENT_R1_EVERY == 0:
            real.requires_grad_(True)
            (grad,) = torch.autograd.grad(judge(real).sum(), real, create_graph=True)
            r1 = grad.square().sum(1).mean()
            self.session.update("latent_discriminator", self.options.latent_r1 / 2 * LATENT_R1_EVERY * r1)
            logs["latent_r1"] = r1.item()
        return logs


__all__ = ["PSP", "PSPOptions"]
