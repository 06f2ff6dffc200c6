"""DLSGAN — dynamic latent scale GAN (Cho & Krzyzak, Algorithm 1): a joint method whose discriminator is also the
encoder, and whose generator input z∘s is rescaled each step by the traced variance of the predicted latents.

One training step (Algorithm 1):

    s      = √d · v^½ / ||v^½||₂                         (LatentScale; s = 1 without DLS)
    a_g,z' = D(G(z∘s));  a_r = D(x)
    L_enc  = avg((z − z')² ∘ s²)
    L_d    = NSGAN_d(a_r, a_g) + λ_r1 · R1(x) + λ_enc · L_enc
    L_g    = NSGAN_g(a_g) + λ_enc · L_enc                 (the "DG" variant, the default; "D" drops this term)
    v      ← update(v, z')                               (moving window or EMA of z'², after the losses)

``invert(x)`` is D's predicted latent (z units, the prior's); ``generate(z)`` is G(z∘s) — every use of the
generator is scaled, as the paper requires. The "No DLS" ablation (``dls=False``) keeps s = 1, which makes L_enc
the plain latent MSE of ICGAN / Controllable-GAN style encoders.

Paper settings (DLSGAN paper §4.1; most are StyleGAN2's), exported as ``PAPER_NET`` / ``PAPER_TRAIN`` overrides:
CelebA 128×128, d_z = 512, priors N(0,1) and U(−√3,√3), reduced-filter StyleGAN2 (nets/style.py; width 64 gives
the authors' 64…512 filters), no noise inputs, no minibatch stddev, NSGAN + R1 with λ_r1 = 10 (γ = 20), λ_enc = 1,
Adam lr 1e-3, β = (0, 0.99), batch 16, 50 epochs, 2 % lr decay per epoch (the loop's ``lr_decay_per_epoch``),
mapper lr ×0.01 — realised by the mapper's equalised-lr multiplier, so the base class's single Adam
per net is enough. ``--preset paper`` gives these settings; ``--preset small`` the same recipe at 32 px. Both train
the "DG" variant (the encoder loss in D's and G's objectives), the paper's headline model and what its author's code
trains; ``encoder_loss_on`` defaults to it, and ``-o encoder_loss_on=D`` gives the ablation's D-only variant.

Departures, all deliberate:
* Alternating updates (D, then G against the updated D), as PyTorch StyleGAN2 ports do; the authors' TF code
  took both gradients from one forward pass. v is updated from the z' of the D step (before D moves).
* R1 is expressed in the authors' [−1, 1] pixel units: D receives [0, 1] images and maps them by 2x − 1 itself,
  so the penalty measured on the [0, 1] input is divided by 4 (``R1_PIXEL_UNITS``) before λ_r1 multiplies it.
* Options live in ``DLSGANOptions``, recorded as ``options`` in config.json, so a resumed or loaded run keeps
  its own.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganinv.core.config import RunConfig
from ganinv.core.distributed import gather_rows
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.latent import LATENT_SCALE_MODES, LatentScale, scaled_latent_entropy
from ganinv.losses import dls_encoder_loss, nsgan_d_loss, nsgan_g_loss, r1_penalty
from ganinv.methods.base import GeneratorRole, Method, MethodOptions
from ganinv.nets.style import ResidualDiscriminator, StyleGenerator

ENCODER_LOSS_ON = ("D", "DG")
R1_PIXEL_UNITS = 0.25  # (d[-1,1]/d[0,1])⁻² : ||∇ wrt [-1,1] pixels||² = ||∇ wrt [0,1] pixels||² / 4
MAPPING_LAYERS = 8  # StyleGAN2's mapper depth

# DLSGAN paper §4.1, as overrides for build_config / train_run (net=…, train=…); prior "uniform_sqrt3" is the other run
PAPER_NET = dict(image_size=128, channels=3, width=64, latent_dim=512, prior="normal")
PAPER_TRAIN = dict(lr=1e-3, beta1=0.0, beta2=0.99, batch_size=16)


@dataclass(frozen=True)
class DLSGANOptions(MethodOptions):
    # "DG": λ_enc·L_enc in L_d and L_g (the paper's headline, and its author's code; every preset gets it);
    # "D": in L_d only (the ablation's other arm: -o encoder_loss_on=D)
    encoder_loss_on: str = "DG"
    dls: bool = True  # False: s stays 1 (the "No DLS" ablation)
    scale_mode: str = "window"  # "window": the paper's moving average over 512×batch samples; "ema": later code
    lambda_enc: float = 1.0
    lambda_r1: float = 10.0  # loss term λ_r1·||∇D||² ⇔ Mescheder's γ = 20
    window_batches: int = 512
    ema_decay: float = 0.999

    def __post_init__(self):
        if self.encoder_loss_on not in ENCODER_LOSS_ON:
            raise GaninvError(f"encoder_loss_on must be one of {', '.join(ENCODER_LOSS_ON)}, "
                              f"got {self.encoder_loss_on!r}")
        if self.scale_mode not in LATENT_SCALE_MODES:
            raise GaninvError(f"scale_mode must be one of {', '.join(LATENT_SCALE_MODES)}, got {self.scale_mode!r}")
        if not (self.lambda_enc >= 0 and self.lambda_r1 >= 0 and math.isfinite(self.lambda_enc + self.lambda_r1)):
            raise GaninvError(f"lambda_enc and lambda_r1 must be finite and >= 0, got {self.lambda_enc}, "
                              f"{self.lambda_r1}")
        if self.window_batches < 1:
            raise GaninvError(f"window_batches must be at least 1, got {self.window_batches}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise GaninvError(f"ema_decay must be in [0, 1), got {self.ema_decay}")



class DLSGAN(Method):
    name = "dlsgan"
    generator_role = GeneratorRole.TRAINED
    uses_real_data = True
    trainable = ("generator", "discriminator")

    @classmethod
    def differentiates_twice(cls, options) -> bool:
        return True  # R1 on D's real images, every step

    Options = DLSGANOptions
    # the DLSGAN paper's §4.1 at full size, and the same recipe at the CPU-sized 32 px
    presets = {
        "paper": (PAPER_NET, {**PAPER_TRAIN, "lr_decay_per_epoch": 0.02}),
        "small": (dict(image_size=32, width=16, latent_dim=64, prior="normal"),
                  {**PAPER_TRAIN, "lr_decay_per_epoch": 0.02}),
    }

    def __init__(self, config: RunConfig, options: DLSGANOptions | None = None):
        if options is not None:  # explicit options replace the config's, and are recorded in it
            if not isinstance(options, DLSGANOptions):
                raise GaninvError(f"options must be a DLSGANOptions, got {type(options).__name__}")
            config = config.replace(options=dataclasses.asdict(options))
        super().__init__(config)
        self.tracker = self._new_tracker()
        self._scale = torch.ones(config.net.latent_dim)

    def _new_tracker(self) -> LatentScale:
        o = self.options
        return LatentScale(self.config.net.latent_dim, mode=o.scale_mode, window_batches=o.window_batches,
                           decay=o.ema_decay, device=self.device)

    def build_nets(self) -> dict[str, nn.Module]:
        n = self.config.net
        return {
            "generator": StyleGenerator(latent_dim=n.latent_dim, image_size=n.image_size, width=n.width,
                                        channels=n.channels, mapping_layers=MAPPING_LAYERS),
            "discriminator": ResidualDiscriminator(image_size=n.image_size, width=n.width, channels=n.channels,
                                                   latent_dim=n.latent_dim),
        }

    # --- the latent scale ---
    @property
    def latent_scale(self) -> Tensor:
        """s (d,): ones without DLS; otherwise the tracker's scale as of the last step."""
        return self._scale

    def latent_entropy(self) -> float:
        """Differential entropy of Z∘s (nats) for this run's prior (DLSGAN paper figs. 5–6)."""
        return scaled_latent_entropy(self._scale, self.prior.name)

    def configure(self, accelerator) -> None:
        super().configure(accelerator)
        self.tracker.to(self.device)
        self._scale = self._scale.to(self.device)

    # --- training ---
    def train_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        real = batch[0]
        s = self._scale.to(real.device)  # line 3: s from v as it stood before this step
        z = self.sample_latents(real.shape[0]).to(real.device)  # line 1
        fake = self.nets["generator"](z * s)  # line 4 (G side)
        d_loss, d_terms, predicted = self._discriminator_step(real, fake, z, s)

        if self.options.dls:  # line 9: v ← update(v, z') with every rank's z' (the global batch); s for the next step
            self.tracker.update(gather_rows(self.session.accelerator, predicted.detach()))
            self._scale = self.tracker.scale.to(real.device)

        g_loss, g_adv = self._generator_step(fake, z, s)
        logs = {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_adv": d_terms["d_adv"].item(),
                "g_adv": g_adv.item(), "enc_loss": d_terms["enc_loss"].item(), "r1": d_terms["r1"].item()}
        entropy = self.latent_entropy()
        if math.isfinite(entropy):  # −inf only if some s_i is exactly 0; not a divergence, so not logged
            logs["latent_entropy"] = entropy
        return logs

    def _discriminator_step(self, real: Tensor, fake: Tensor, z: Tensor,
                            s: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The discriminator (and encoder) step, lines 4–7: (L_d, its terms, the predicted latents z')."""
        o, D = self.options, self.nets["discriminator"]
        fake_logits, predicted = D(fake.detach())
        enc_loss = dls_encoder_loss(z, predicted, s)  # line 5
        real_in = real.detach().requires_grad_(True)
        real_logits, _ = D(real_in)  # line 6
        r1 = r1_penalty(real_in, real_logits) * R1_PIXEL_UNITS
        d_adv = nsgan_d_loss(real_logits, fake_logits)
        d_loss = d_adv + o.lambda_r1 * r1 + o.lambda_enc * enc_loss  # line 7
        self.session.update("discriminator", d_loss)
        return d_loss, {"d_adv": d_adv, "enc_loss": enc_loss, "r1": r1}, predicted

    def _generator_step(self, fake: Tensor, z: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """The generator step, line 8, against the updated D (its weights frozen for this backward): (L_g, its
        adversarial term)."""
        o = self.options
        with self.frozen("discriminator") as frozen_D:
            fake_logits_g, predicted_g = frozen_D(fake)
            g_adv = nsgan_g_loss(fake_logits_g)
            g_loss = g_adv
            if o.encoder_loss_on == "DG":
                g_loss = g_loss + o.lambda_enc * dls_encoder_loss(z, predicted_g, s)
            self.session.update("generator", g_loss)
        return g_loss, g_adv

    # --- the seam ---
    def invert(self, x: Tensor) -> Tensor:
        """Images in [0,1] → D's predicted latent z' in z units (generate(z') reconstructs)."""
        return self.nets["discriminator"](x)[1]

    def generate(self, z: Tensor) -> Tensor:
        return self.nets["generator"](z * self._scale.to(device=z.device, dtype=z.dtype))

    # --- persistence ---
    def extra_state(self) -> dict[str, Tensor]:
        tracker = {f"latent_trace.{k}": v for k, v in self.tracker.state().items()}
        return {"latent_scale": self._scale.detach().cpu().clone(), **tracker}

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        if "latent_scale" not in tensors:
            raise RunDirError("this dlsgan checkpoint lacks its latent scale (extra.latent_scale)")
        prefix = "latent_trace."
        self.tracker.load_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        scale = tensors["latent_scale"]
        if tuple(scale.shape) != (self.config.net.latent_dim,) or not bool(torch.isfinite(scale).all()):
            raise RunDirError(f"extra.latent_scale has shape {tuple(scale.shape)} or non-finite values; expected "
                              f"({self.config.net.latent_dim},) finite")
        self._scale = scale.detach().float().to(self.device).clone()
