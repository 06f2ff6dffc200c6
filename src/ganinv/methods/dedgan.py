"""DED-GAN — direction-embedding discriminator GAN (Cho, Algorithm 1): a joint method whose discriminator is
the inverse of the generator. Latents are angles z_s ∈ (0, π/2)^d (the "spherical" prior), read as a unit vector
z_c with positive coordinates in R^n (n = d + 1, ``ganinv.latent.spherical_to_cartesian``, binary tree). D embeds
an image as a positive n-vector (softplus): its direction predicts z_c, the log of its norm is real/fake.

One training step (Algorithm 1; f = NSGAN, on a = −v so that D *lowers* v for real data and *raises* it for
generated data, and G lowers v of generated data — the paper's sign convention):

    z_s ~ U(0, π/2)^d;  z_c = spherical_to_cartesian(z_s)
    v_g, z'_c = log‖D(G(z_s))‖, D(G(z_s))/‖·‖;   v_r = log‖D(x)‖
    L_emb = tan∠(z_c, z'_c)                                       (``tan_angle_loss``, clamped: see below)
    L_d = softplus(v_r) + softplus(−v_g) + λ_r1·R1(x) + λ_emb·L_emb
    L_g = softplus(v_g) + λ_emb·L_emb
    λ_emb = lambda_emb (1.0) before step ``lambda_switch_step``, lambda_emb_after (10.0) from it on

``invert(x) = cartesian_to_spherical(D(x)/‖D(x)‖)`` (Algorithm 3; angles in the prior's units, clamped into the
open interval); ``generate(z_s)`` is G with the paper's normal-quantile preprocessing (nets/dedgan.py).

L_emb stability (``ganinv.losses.tan_angle_loss``): θ = ∠(z_c, z'_c) is computed as 2·atan2(‖z_c − z'_c‖,
‖z_c + z'_c‖) instead of arccos(z_c·z'_c) — equal in exact arithmetic, but finite-gradient at θ = 0 and precise
near it — and tan is clamped at θ_max = ``emb_max_angle_deg`` (default 85°, tan ≈ 11.4), continued by its tangent
line beyond, so an embedding orthogonal to z_c (tan = ∞) still gives a finite loss with a useful gradient.

Paper settings (DED-GAN paper §5.1): CelebA 128×128, "a partially reduced version of StyleGAN2" without minibatch
stddev (nets/style.py, width 64 → 64…512 filters), normal-quantile preprocessing, NSGAN + R1, λ_emb 1.0 then
10.0 "after some training". The paper does not state d, the optimiser, the batch size, R1's weight nor when λ_emb
switches; ``--preset paper`` takes them from the same author's StyleGAN2 recipe in DLSGAN (Cho & Krzyzak) (Adam lr 1e-3,
β = (0, 0.99), batch 16, λ_r1 = 10, mapper lr ×0.01) and d = 511 so that n = 512 — the tree's power of two, and
StyleGAN2's latent width. ``--preset small`` is the same recipe at 32 px (d = 63). The switch step is an option
(``-o lambda_switch_step=N``), 10,000 by default.

Departures, as in dlsgan.py: alternating updates (D, then G against the updated D; Algorithm 1 computes L_d and
L_g from one forward pass); R1 in [−1, 1] pixel units (``R1_PIXEL_UNITS``) on the adversarial value v_r.

The generator's W is StyleGAN2's 512 wide (``-o w_dim``, default 512), as in the paper's "reduced StyleGAN2" —
not d wide, as the project's ``StyleGenerator`` defaults to and as this method had until issue 27: eight square
d×d mapper layers (lr ×0.01) start with ∂w/∂z condition numbers of 1e9, G ignored most directions of z and the
embedding stayed at chance (docs/reproduction.md, DED-GAN). Runs saved before have W = d: add
``"w_dim": <latent_dim>`` to their config.json's options to load them. ``angle_chance_deg`` (logged beside
``angle_deg`` every step) is the mean angle of the best constant guess, ∠(z_c, 1/√n) (``angle_stats``). The step that drives the λ_emb schedule is the training session's
(``session.step``, the steps done before this one); it is also saved with the weights (``extra.step``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.latent import cartesian_dim, cartesian_to_spherical, spherical_to_cartesian
from ganinv.losses import direction_angle, nsgan_d_loss, nsgan_g_loss, r1_penalty, tan_angle_loss
from ganinv.methods.base import GeneratorRole, Method, MethodOptions
from ganinv.methods.dlsgan import MAPPING_LAYERS, PAPER_TRAIN, R1_PIXEL_UNITS
from ganinv.nets.dedgan import STYLEGAN2_W_DIM, DirectionDiscriminator, QuantileStyleGenerator, split_embedding

PRIOR = "spherical"
MAX_W_DIM = 2048  # bounds the mapper's 8·w_dim² weights (32 M at most) before they are allocated


@dataclass(frozen=True)
class DEDGANOptions(MethodOptions):
    lambda_emb: float = 1.0  # λ_emb before the switch (the paper's initial 1.0)
    lambda_emb_after: float = 10.0  # λ_emb from lambda_switch_step on (the paper's 10.0)
    lambda_switch_step: int = 10_000  # the first step (0-based count of steps done) trained with lambda_emb_after
    lambda_r1: float = 10.0  # loss term λ_r1·||∇v||² (as dlsgan: Mescheder's γ = 20)
    emb_max_angle_deg: float = 85.0  # tan(θ) is continued linearly beyond this angle (see the module docstring)
    w_dim: int = STYLEGAN2_W_DIM  # the generator's W width: StyleGAN2's 512 (runs before this option had w = d)

    def __post_init__(self):
        lambdas = (self.lambda_emb, self.lambda_emb_after, self.lambda_r1)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in lambdas):
            raise GaninvError(f"lambda_emb, lambda_emb_after and lambda_r1 must be finite and >= 0, got {lambdas}")
        if not isinstance(self.lambda_switch_step, int) or self.lambda_switch_step < 0:
            raise GaninvError(f"lambda_switch_step must be an integer >= 0, got {self.lambda_switch_step!r}")
        if not (isinstance(self.emb_max_angle_deg, (int, float)) and 0 < self.emb_max_angle_deg < 90):
            raise GaninvError(f"emb_max_angle_deg must be in (0, 90) degrees, got {self.emb_max_angle_deg!r}")
        if not isinstance(self.w_dim, int) or isinstance(self.w_dim, bool) or not 1 <= self.w_dim <= MAX_W_DIM:
            raise GaninvError(f"w_dim must be an integer in [1, {MAX_W_DIM}], got {self.w_dim!r}")

    def lambda_at(self, step: int) -> float:
        """λ_emb for the update that follows ``step`` finished steps."""
        return self.lambda_emb_after if step >= self.lambda_switch_step else self.lambda_emb


def angle_stats(z_c: Tensor, direction: Tensor) -> dict[str, float]:
    """The step's embedding, in degrees: ``angle_deg``, the mean ∠(z_c, z'_c) of this batch's fakes (D before its
    update, so on latents it has not trained on), and ``angle_chance_deg``, the mean ∠(z_c, 1/√n): the angle of the
    best constant guess. Every coordinate of z_c has the same mean (E sin φ = E cos φ = 2/π for φ ~ U(0, π/2), and
    padded angles are π/4), so E z_c points along (1, …, 1); an embedding that ignores the image scores about this."""
    with torch.no_grad():
        uniform = torch.full_like(z_c, z_c.shape[1] ** -0.5)
        return {"angle_deg": torch.rad2deg(direction_angle(z_c, direction)).mean().item(),
                "angle_chance_deg": torch.rad2deg(direction_angle(z_c, uniform)).mean().item()}


class DEDGAN(Method):
    name = "dedgan"
    generator_role = GeneratorRole.TRAINED
    uses_real_data = True
    trainable = ("generator", "discriminator")

    @classmethod
    def differentiates_twice(cls, options) -> bool:
        return True  # R1 on D's real images, every step

    Options = DEDGANOptions
    presets = {
        # DED-GAN paper §5.1 (CelebA 128², reduced StyleGAN2) + what it leaves unstated from DLSGAN §4.1 (see above)
        "paper": (dict(image_size=128, channels=3, width=64, latent_dim=511, prior=PRIOR), dict(PAPER_TRAIN)),
        "small": (dict(image_size=32, width=16, latent_dim=63, prior=PRIOR), dict(PAPER_TRAIN)),
    }

    def __init__(self, config: RunConfig, options: DEDGANOptions | None = None):
        if options is not None:  # explicit options replace the config's, and are recorded in it
            if not isinstance(options, DEDGANOptions):
                raise GaninvError(f"options must be a DEDGANOptions, got {type(options).__name__}")
            config = config.replace(options=dataclasses.asdict(options))
        if config.net.prior != PRIOR:
            raise GaninvError(f"dedgan's latents are angles: it needs --prior {PRIOR}, got {config.net.prior!r}")
        super().__init__(config)

    @property
    def cartesian_dim(self) -> int:
        return cartesian_dim(self.config.net.latent_dim)

    def build_nets(self) -> dict[str, nn.Module]:
        n = self.config.net
        return {
            "generator": QuantileStyleGenerator(latent_dim=n.latent_dim, image_size=n.image_size, width=n.width,
                                                channels=n.channels, mapping_layers=MAPPING_LAYERS,
                                                w_dim=self.options.w_dim),
            "discriminator": DirectionDiscriminator(image_size=n.image_size, width=n.width, channels=n.channels,
                                                    direction_dim=cartesian_dim(n.latent_dim)),
        }

    @property
    def step(self) -> int:
        """Steps done (``session.step``): drives the λ_emb schedule and is saved with the weights (extra.step)."""
        return self.session.step

    @property
    def lambda_emb(self) -> float:
        """λ_emb of the next step."""
        return self.options.lambda_at(self.step)

    # --- training ---
    def train_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        real = batch[0]
        o = self.options
        lam = self.lambda_emb
        max_angle = math.radians(o.emb_max_angle_deg)
        G, D = self.nets["generator"], self.nets["discriminator"]
        z_s = self.sample_latents(real.shape[0]).to(real.device)  # line 1
        z_c = spherical_to_cartesian(z_s)  # line 2
        fake = G(z_s)

        # discriminator step: lines 3–8
        v_g, direction = split_embedding(D(fake.detach()))  # lines 3, 4, 6
        emb_loss = tan_angle_loss(z_c, direction, max_angle)  # line 7
        real_in = real.detach().requires_grad_(True)
        v_r, _ = split_embedding(D(real_in))  # line 5
        r1 = r1_penalty(real_in, v_r) * R1_PIXEL_UNITS
        d_adv = nsgan_d_loss(-v_r, -v_g)  # softplus(v_r) + softplus(−v_g): lower v_r, raise v_g
        d_loss = d_adv + o.lambda_r1 * r1 + lam * emb_loss  # line 8 (+ R1)
        self.session.update("discriminator", d_loss)

        # generator step: line 9, against the updated D (its weights frozen for this backward)
        with self.frozen("discriminator") as frozen_D:
            v_g2, direction_g = split_embedding(frozen_D(fake))
            g_adv = nsgan_g_loss(-v_g2)  # softplus(v_g): lower v_g
            g_emb = tan_angle_loss(z_c, direction_g, max_angle)
            g_loss = g_adv + lam * g_emb
            self.session.update("generator", g_loss)

        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_adv": d_adv.item(), "g_adv": g_adv.item(),
                "emb_loss": emb_loss.item(), "r1": r1.item(), "v_real": v_r.mean().item(),
                "v_fake": v_g.mean().item(), **angle_stats(z_c, direction), "lambda_emb": lam}

    # --- the seam ---
    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [0,1] → (v = log‖D(x)‖, z'_c = D(x)/‖D(x)‖)."""
        return split_embedding(self.nets["discriminator"](x))

    def invert(self, x: Tensor) -> Tensor:
        """Images in [0,1] → angles z_s = cartesian_to_spherical(D(x)/‖D(x)‖) (Algorithm 3), inside (0, π/2)."""
        _, direction = self.embed(x)
        return self.prior.clamp(cartesian_to_spherical(direction, angle_dim=self.config.net.latent_dim))

    def latent_metrics(self, latents: Tensor, predicted: Tensor) -> dict[str, float]:
        """Evaluation extras (``ganinv.inference.evaluate``): the mean angle, in degrees, between z_c of the sampled
        latents and of their inversions — for d + 1 a power of two exactly ∠(z_c, D(x)/‖D(x)‖) (the tree round-trips) —
        and, as its chance level, the mean angle of the best constant guess (the batch's mean direction): an
        inverter that ignores the image scores about that (≈ 57.6° at d = 63)."""
        z_c = spherical_to_cartesian(latents.float())
        theta = direction_angle(z_c, spherical_to_cartesian(predicted.float()))
        mean_direction = torch.nn.functional.normalize(z_c.mean(0), dim=0).expand_as(z_c)
        return {"angle_error_deg": torch.rad2deg(theta).mean().item(),
                "angle_chance_deg": torch.rad2deg(direction_angle(z_c, mean_direction)).mean().item()}

    # --- persistence ---
    def extra_state(self) -> dict[str, Tensor]:
        return {"step": torch.tensor(self.step, dtype=torch.int64)}

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        if "step" not in tensors:
            raise RunDirError("this dedgan checkpoint lacks its step counter (extra.step)")
        self.session.step = int(tensors["step"])  # a loaded run's λ_emb; the loop sets it again when resuming
