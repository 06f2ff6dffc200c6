"""Pivotal tuning: "Pivotal Tuning for Latent-based Editing of Real Images" (Roich, Mokady, Bermano, Cohen-Or, 2021),
for every generator this project knows (dcgan, the DLSGAN style generator, bigan, wrapped modules).

A real image usually lies outside the generator's reach, so no latent reproduces it. PTI keeps a latent fixed — the
*pivot* — and moves the generator towards the image instead:

1. pivots, as PTI finds them: ``pivot_steps`` (450: PTI's ``first_inv_steps``) Adam steps from w̄ in W at lr 5e-3
   (``first_inv_lr``) with the StyleGAN2 projector's schedule (lr ramp-up and cosine ramp-down, noise on the
   latent early on: ``ganinv.methods.optimize.PROJECTOR``; the projector's noise-map regulariser has nothing to act
   on — our generators, and imported StyleGANs run with ``noise_mode="const"``, have no noise inputs), on the
   tuning's image loss (PTI's projector uses LPIPS; here MSE + LPIPS, MSE alone without LPIPS weights). W when the
   generator has a mapping network and the run's latents are W or W+ (a W pivot is repeated at every layer); the
   run's own space otherwise (a DCGAN's z; a style run whose latents are z, which a w cannot be turned back into).
   Beside it the run's own inverter, followed by ``refine_steps`` steps of the hybrid (ganinv.inference.hybrid):
   each image takes whichever pivot reconstructs it with the lower loss (``PivotSearch``; tuning.json records
   which — a good encoder can beat 450 steps, a poor one never costs anything);
2. a copy of the generator is fine-tuned for ``steps`` Adam steps (lr 3e-4, PTI's) on

       MSE(G'(p_i), x_i) + LPIPS(G'(p_i), x_i)                        (PTI's L_pt, both weights 1)

   with LPIPS only when its AlexNet weights are on disk (otherwise it is left out, said once, and tuning.json records
   it: the user asked for PTI's loss, not for LPIPS — ``ganinv.losses.image``'s ``when_available``), plus PTI's locality
   regulariser weighted by ``locality_weight`` (0.1: PTI's code, ``regulizer_l2_lambda``):

       MSE(G'(z_r), G(z_r)) (+ LPIPS)   on fresh latents z_r every step

   where half of the z_r are prior samples and half lie between a pivot and a prior sample (PTI moves a fixed
   distance α = 30 from the pivot toward a sample in StyleGAN's W; our priors differ in scale, so we take a
   uniform point on the far half of that segment). It keeps G what it was away from the images.

Many images share one tuned generator (PTI's multi-image mode): every step is one Adam update on a minibatch of at
most ``batch_size`` images, cycling through them all, so each image is seen ``steps · min(batch_size, N) / N`` times.
The generator is tuned in eval mode: batch-norm layers keep their running statistics, so the tuned net's eval-mode
output — what every application uses — is exactly what was optimised.

    tuned = pivotal_tuning(model, images, steps=300)      a TunedModel: an InversionModel over the tuned copy
    tuned.pivots, tuned.pivot_sources                     the pivots; where each came from (PTI's search or encoder)
    tuned.locality_drift, tuned.drift                     how far G moved on images it was not tuned on: mean
                                                          squared change, and PSNR(G, G') on fresh prior latents
                                                          (and on ``held_out`` images' pivots, when given)
    tuned.save("tuned-run", names=[...])                  a run directory (+ pivots.safetensors, tuning.json)
    load_tuned("tuned-run")                               the TunedModel again (``ganinv.load`` gives the plain run)
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import secrets
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors
from torch import Tensor

from ganinv.core import io as fs
from ganinv.core import safe_files
from ganinv.core.errors import GaninvError, RunDirError, TrainingDiverged, describe_os_error
from ganinv.core.rundir import finished_step, generator_fingerprint, prepare_run_dir, run_fingerprint, save_checkpoint
from ganinv.inference.hybrid import OptimizingModel, with_refinement
from ganinv.inference.model import InversionModel
from ganinv.latent import make_prior
from ganinv.losses.image import ImageLoss
from ganinv.methods import Method
from ganinv.methods.optimize import PROJECTOR, frozen_for_search, optimize_in_view
from ganinv.methods.spaces import WPLUS, SpaceView, W, latent_space, style_generator

PAPER = '"Pivotal Tuning for Latent-based Editing of Real Images" (Roich, Mokady, Bermano, Cohen-Or)'
PTI_LR = 3e-4  # PTI's pti_learning_rate
PTI_LOCALITY_WEIGHT = 0.1  # PTI's regulizer_l2_lambda (and regulizer_lpips_lambda)
PTI_LOSS = ImageLoss(mse=1.0, lpips=1.0)  # PTI's L_pt (and, weighted, its locality regulariser)
PTI_PIVOT_STEPS = 450  # PTI's first_inv_steps: the W optimisation its pivots come from
PTI_PIVOT_LR = 5e-3  # PTI's first_inv_lr (its w_projector.project's own default is 0.01; PTI passes 5e-3)
# PTI runs 350 steps on one 1024 px image. Here, on one CPU thread and a batch of 8, a step takes about 15 ms at
# 32 px (small preset) and 90 ms at 64 px (width 32), so 300 steps take seconds. Measured on 8 MNIST test digits
# with the demo's 600-step GAN and its AEGAN encoder (32 px): 300 steps raise the PSNR from 12.7 to 34.2 dB (100
# steps: 25.5 dB) while G's images on fresh latents move by 20 % of their own variation (65 % without the locality
# term). More steps keep helping the images and cost locality (see TunedModel.locality_drift).
DEFAULT_STEPS = 300
BATCH_SIZE = 8  # images per step (PTI tunes one at a time; a small batch keeps memory flat for many images)
LOCALITY_SAMPLES = 8  # z_r per step (PTI: 1 at batch size 1; a few more for a batch of pivots)
DRIFT_SAMPLES = 256  # fresh latents the drift is measured on
DRIFT_SEED_OFFSET = 7919  # the drift's latents are never the ones the locality term trained on
TUNING_FILE, PIVOTS_FILE = "tuning.json", "pivots.safetensors"
TUNING_FORMAT_VERSION = 2  # 2: pivot_steps / pivot_lr, pivot_sources, pivot_space and drift (1 is still read)
DRIFT_PSNR_CAP = 100.0  # dB for identical images (an untouched G), so the record stays a finite number
TUNING_JSON_MAX_BYTES = 64 << 20  # names and keys of up to MAX_TUNED_IMAGES images; larger is not ours, refused unread
MAX_TUNED_IMAGES = 1 << 20
PIVOTS_SLACK_BYTES = 64 << 10  # the safetensors header and metadata beside N×d float32 pivots


@dataclass(frozen=True)
class TuningSettings:
    """What a tuning ran with (recorded in tuning.json)."""
    steps: int
    lr: float
    locality_weight: float
    refine_steps: int
    batch_size: int
    seed: int
    lpips: bool  # whether LPIPS was part of the losses (its AlexNet weights were on disk)
    pivot_steps: int = 0  # PTI's pivot search (0 in a format-1 record: its pivots came from the encoder alone)
    pivot_lr: float = PTI_PIVOT_LR


def check_tuning_settings(*, steps: int, lr: float, locality_weight: float, refine_steps: int = 0,
                          batch_size: int = BATCH_SIZE, seed: int = 0, pivot_steps: int = PTI_PIVOT_STEPS,
                          pivot_lr: float = PTI_PIVOT_LR) -> None:
    """GaninvError (one line) for settings pivotal tuning cannot run with; nothing is read or written first."""
    for name, value, low in (("steps", steps, 0), ("refine_steps", refine_steps, 0), ("batch_size", batch_size, 1),
                             ("seed", seed, 0), ("pivot_steps", pivot_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GaninvError(f"pivotal tuning: {name} must be an integer >= {low}, got {value!r}")
    for name, value in (("lr", lr), ("locality_weight", locality_weight), ("pivot_lr", pivot_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GaninvError(f"pivotal tuning: {name} must be a finite number, got {value!r}")
    for name, value in (("lr", lr), ("pivot_lr", pivot_lr)):
        if value <= 0:
            raise GaninvError(f"pivotal tuning: {name} must be positive, got {value}")
    if locality_weight < 0:
        raise GaninvError(f"pivotal tuning: locality_weight must be >= 0, got {locality_weight}")


def encoder_pivots(model: InversionModel, refine_steps: int) -> InversionModel | None:
    """The run's own inverter, plus ``refine_steps`` steps of the hybrid (from the prior's mean on a run without an
    encoder); None when there is neither an encoder nor refinement."""
    if refine_steps == 0:
        return model if model.can_invert else None
    if model.can_invert:
        return with_refinement(model, steps=refine_steps)
    return OptimizingModel(model, steps=refine_steps, start="mean")


def pivot_view(method: Method) -> SpaceView:
    """Where PTI's pivot search runs: W when the generator has a mapping network and the run's latents are W or W+
    (a W+ run's W view is built here: ``latent_space`` only looks upward from a run's own space); else the run's own."""
    if style_generator(method) is None or method.space != WPLUS:
        return latent_space(method)
    base = make_prior(method.config.net.prior, method.config.net.latent_dim)
    return SpaceView(W, W.prior(base, lambda: style_generator(method)),
                     lambda w: W.generate(style_generator(method), w), lambda latents: latents)


class PivotSearch(InversionModel):
    """How the pivots are found (see the module doc, 1.): per image the better — by the tuning's own image loss — of
    PTI's search (``settings.pivot_steps`` projector steps from w̄ in ``pivot_view``) and the run's inverter (+
    ``settings.refine_steps`` of the hybrid). Either may be off (pivot_steps 0; no encoder and refine_steps 0), not
    both. ``invert`` gives the pivots, ``search`` the pivots and each one's source."""

    def __init__(self, model: InversionModel, settings: TuningSettings):
        super().__init__(model.method, batch_size=model.batch_size)
        self.settings, self.loss = settings, settings_loss(settings)
        self.encoder = encoder_pivots(model, settings.refine_steps)
        self.encoder_source = "encoder" if model.can_invert else "optimisation from the mean"
        if self.encoder is None and settings.pivot_steps == 0:
            raise GaninvError(f"a {model.config.method!r} run has no encoder to find pivots with; give pivot_steps "
                              "> 0 (PTI's pivots: 450 steps in W) or refine_steps > 0 to find them by optimisation")
        self.view = pivot_view(model.method)

    @property
    def can_invert(self) -> bool:
        return True

    def invert(self, x: Tensor) -> Tensor:
        return self.search(self.prepare_images(x))[0]

    def search(self, images: Tensor) -> tuple[Tensor, list[str]]:
        images = images.to(self.device, torch.float32)
        candidates = {}
        if self.settings.pivot_steps > 0:
            candidates[f"{self.view.space} optimisation"] = self.optimised(images)
        if self.encoder is not None:
            refined = f" + {self.settings.refine_steps} steps" if self.settings.refine_steps else ""
            answer = self.encoder.invert(images).detach()
            candidates[self.encoder_source + refined] = answer.to(self.device, torch.float32)
        return choose_pivots(self, images, candidates, self.loss)

    def optimised(self, images: Tensor) -> Tensor:
        """PTI's pivots: the projector's search from the mean of ``self.view``'s space, as the run's own latents."""
        s = self.settings
        latents = optimize_in_view(self, self.view, images, steps=s.pivot_steps, lr=s.pivot_lr, loss=self.loss,
                                   start="mean", generator=torch.Generator().manual_seed(s.seed), schedule=PROJECTOR)
        if self.view.space == self.space:
            return latents
        with torch.no_grad():  # W → W+: the w at every layer
            return self.space.from_space(latents, self.view.space, style_generator(self.method))


def choose_pivots(model: InversionModel, images: Tensor, candidates: dict[str, Tensor],
                  loss: ImageLoss) -> tuple[Tensor, list[str]]:
    """Per image the candidate pivot with the lowest ``loss`` of G(pivot) against the image (ties: the first), and
    the name of the one taken."""
    names = list(candidates)
    if len(names) == 1:
        return candidates[names[0]], names * len(images)
    with torch.no_grad():
        losses = torch.stack([torch.cat([loss.per_image(model.generate(p), x)[0] for p, x in
                                         zip(pivots.split(model.batch_size), images.split(model.batch_size))])
                              for pivots in candidates.values()])
    pick = losses.argmin(0)  # the first of equal minima
    pivots = torch.stack(list(candidates.values()))[pick.cpu(), torch.arange(len(images))]
    return pivots, [names[i] for i in pick.tolist()]


# --- the tuned model -----------------------------------------------------------------------------------------------

class TunedModel(InversionModel):
    """An InversionModel over the tuned copy of the generator, keeping the pivots.

    ``invert`` gives an image the tuning saw (compared by value) its pivot, and any other image a pivot found as the
    tuned images' were (``PivotSearch``, through the tuned generator); so ``reconstruct`` of a tuned image is
    G'(pivot), and editing starts from the pivot as in PTI."""

    def __init__(self, method: Method, *, pivots: Tensor, image_keys: list[str], settings: TuningSettings,
                 locality_drift: float, drift_scale: float, names: list[str] | None = None, batch_size: int = 256,
                 pivot_sources: list[str] | None = None, drift: dict | None = None):
        super().__init__(method, batch_size=batch_size)
        self.pivots = pivots.detach().float().cpu()
        self.image_keys = list(image_keys)
        self.settings = settings
        self.locality_drift = locality_drift  # mean squared change of G's images on fresh prior latents
        self.drift_scale = drift_scale  # mean squared difference of G's images of two random latents, for scale
        self.names = names
        self.pivot_sources = pivot_sources  # per image: PTI's search or the encoder (None: a format-1 record)
        self.drift = drift  # drift_report's PSNRs (None: a format-1 record)
        self._others = PivotSearch(InversionModel(method, batch_size=batch_size), settings)

    @property
    def can_invert(self) -> bool:
        return True

    def invert(self, x: Tensor) -> Tensor:
        x = self.prepare_images(x)  # before the keys: uint8 k and float k/255 images then share one key
        known = {key: row for row, key in enumerate(self.image_keys)}
        rows = [known.get(key) for key in image_keys(x)]
        out = torch.empty(len(x), self.pivots.shape[1], device=self.device)
        seen = [i for i, row in enumerate(rows) if row is not None]
        unseen = [i for i, row in enumerate(rows) if row is None]
        if seen:
            out[seen] = self.pivots[[rows[i] for i in seen]].to(self.device)
        if unseen:
            out[unseen] = self._others.invert(x[unseen]).to(self.device, torch.float32)
        return out

    def pivot_reconstructions(self) -> Tensor:
        """G'(pivot) for every tuned image, in the order they were given."""
        return self.generate(self.pivots.to(self.device))

    def save(self, out: str | Path, *, names: list[str] | None = None, source_run: str | Path | None = None) -> Path:
        """Write this model as a run directory loadable by path (see ``save_tuned_run``)."""
        return save_tuned_run(self, out, names=names, source_run=source_run)


def image_keys(images: Tensor) -> list[str]:
    """A digest of each image's float32 values: how a TunedModel recognises the images it was tuned on."""
    flat = images.detach().to("cpu", torch.float32).contiguous().flatten(1)
    return [hashlib.sha256(row.numpy().tobytes()).hexdigest()[:32] for row in flat]


# --- tuning --------------------------------------------------------------------------------------------------------

def pivotal_tuning(model: InversionModel, images: Tensor, *, steps: int = DEFAULT_STEPS, lr: float = PTI_LR,
                   locality_weight: float = PTI_LOCALITY_WEIGHT, refine_steps: int = 0, batch_size: int = BATCH_SIZE,
                   seed: int = 0, pivot_steps: int = PTI_PIVOT_STEPS, pivot_lr: float = PTI_PIVOT_LR,
                   held_out: Tensor | None = None, progress: Callable[[int], None] | None = None,
                   warn: Callable[[str], None] | None = None) -> TunedModel:
    """Tune a copy of ``model``'s generator on ``images`` (N×C×H×W in [0, 1] at the run's size) at their pivots.

    ``model`` is left unchanged. ``held_out``: images the tuning does not see, for ``drift_report``. ``progress(1)``
    is called after every step (e.g. ``ganinv.apps.progress_bar``'s ``advance``); ``warn`` gets the one message
    when LPIPS is left out (default: a Python warning)."""
    check_tuning_settings(steps=steps, lr=lr, locality_weight=locality_weight, refine_steps=refine_steps,
                          batch_size=batch_size, seed=seed, pivot_steps=pivot_steps, pivot_lr=pivot_lr)
    check_tuning_images(model, images)
    if held_out is not None:
        check_tuning_images(model, held_out)
    check_own_space(model)
    use_lpips = tuning_loss(warn).lpips > 0
    settings = TuningSettings(steps=steps, lr=float(lr), locality_weight=float(locality_weight),
                              refine_steps=refine_steps, batch_size=batch_size, seed=seed, lpips=use_lpips,
                              pivot_steps=pivot_steps, pivot_lr=float(pivot_lr))
    finder = PivotSearch(model, settings)
    pivots, sources = finder.search(images)
    images = images.detach().to(model.device, torch.float32)
    method = generator_copy(model.method)
    tune_generator(method, model.method, images, pivots, settings, progress)
    tuned = InversionModel(method, batch_size=model.batch_size)
    drift, scale = measure_drift(model, tuned, seed=seed)
    return TunedModel(method, pivots=pivots, image_keys=image_keys(images), settings=settings, locality_drift=drift,
                      drift_scale=scale, batch_size=model.batch_size, pivot_sources=sources,
                      drift=drift_report(model, tuned, finder, held_out, seed=seed))


def check_tuning_images(model: InversionModel, images) -> None:
    """GaninvError (one line) unless ``images`` is a non-empty N×C×H×W batch in [0, 1] at the run's shape."""
    if not isinstance(images, Tensor):
        raise GaninvError(f"pivotal tuning takes an image tensor, got {type(images).__name__}")
    if images.ndim == 4 and len(images) == 0:
        raise GaninvError("pivotal tuning needs at least one image")
    model.check_images(images)


def check_own_space(model: InversionModel) -> None:
    """Tuning generates through the run's own ``generate``, so the pivots must be latents of the run's own space; an
    inverter searching another one (``OptimizingModel(space="wplus")``) is refused rather than failing deep inside."""
    own = model.method.space
    if model.space != own:
        raise GaninvError(f"pivotal tuning works in the run's own latent space ({own}), not {model.space}: pass the "
                          "run itself, with refine_steps for optimisation after its encoder")


def tuning_loss(warn: Callable[[str], None] | None) -> ImageLoss:
    """PTI's loss, without LPIPS — said once through ``warn`` (default: a Python warning) — when its weights are
    missing: a default that offers LPIPS, not a request for it (``ImageLoss.when_available``)."""
    say = warn if warn is not None else (lambda text: warnings.warn(text, stacklevel=4))
    return PTI_LOSS.when_available(say, "pivotal tuning leaves the LPIPS terms out (MSE only)")


def settings_loss(settings: TuningSettings) -> ImageLoss:
    """The loss a tuning ran with: PTI's, LPIPS included when ``settings.lpips`` says it was."""
    return PTI_LOSS if settings.lpips else ImageLoss(mse=PTI_LOSS.mse)


def generator_copy(method: Method) -> Method:
    """The method with a private copy of its generator; every other net (encoder, discriminator) and the latent
    scale are shared, untouched, so ``generate`` applies the method's own transforms (DLSGAN's z∘s, a W space)."""
    tuned = copy.copy(method)
    generator = copy.deepcopy(method.unwrapped_nets()["generator"])
    tuned.nets = {**method.unwrapped_nets(), "generator": generator}
    tuned.session = method.session.detached()  # its own runtime: nothing here is trained by the training loop
    return tuned


def tune_generator(tuned: Method, original: Method, images: Tensor, pivots: Tensor, settings: TuningSettings,
                   progress: Callable[[int], None] | None = None) -> None:
    """``settings.steps`` Adam steps on ``tuned``'s generator: the images at their pivots + the locality term."""
    generator = tuned.nets["generator"]
    optimizer = torch.optim.Adam(generator.parameters(), lr=settings.lr)
    rng = torch.Generator().manual_seed(settings.seed)
    image_loss = settings_loss(settings)
    with frozen_for_search(original), frozen_for_search(tuned):  # eval mode everywhere, every weight frozen ...
        generator.requires_grad_(True)  # ... but the copy being tuned
        for step in range(settings.steps):
            rows = minibatch_rows(step, len(images), settings.batch_size)
            loss = image_loss.per_image(tuned.generate(pivots[rows]), images[rows])[0].mean()
            if settings.locality_weight > 0:
                loss = loss + settings.locality_weight * locality_loss(tuned, original, pivots, rng, image_loss)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"pivotal tuning diverged at step {step} (loss {loss.item()}); lower lr "
                                       f"(now {settings.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(1)


def minibatch_rows(step: int, n: int, batch_size: int) -> Tensor:
    """The rows of step ``step``: consecutive images, wrapping around, so every image is seen equally often."""
    if n <= batch_size:
        return torch.arange(n)
    return (step * batch_size + torch.arange(batch_size)) % n


def locality_loss(tuned: Method, original: Method, pivots: Tensor, rng: torch.Generator,
                  image_loss: ImageLoss) -> Tensor:
    """PTI's locality regulariser: how far the tuned G's images moved on fresh latents z_r (see the module doc)."""
    half = LOCALITY_SAMPLES // 2
    samples = original.prior.sample(LOCALITY_SAMPLES, generator=rng).to(pivots.device)
    anchors = pivots[torch.randint(len(pivots), (half,), generator=rng).to(pivots.device)]
    t = 0.5 + 0.5 * torch.rand(half, 1, generator=rng).to(pivots.device)
    between = anchors + t * (samples[half:] - anchors)  # inside the prior's support: it is convex
    latents = torch.cat([samples[:half], between])
    with torch.no_grad():
        before = original.generate(latents)
    return image_loss.per_image(tuned.generate(latents), before)[0].mean()


def measure_drift(original: InversionModel, tuned: InversionModel, *, n: int = DRIFT_SAMPLES,
                  seed: int = 0) -> tuple[float, float]:
    """(drift, scale): drift is the mean squared change of G's images on ``n`` fresh prior latents; scale is the
    mean squared difference between G's images of two independent latents, so drift / scale is the share of G's
    own variation that the tuning moved."""
    rng = torch.Generator().manual_seed(seed + DRIFT_SEED_OFFSET)
    z = original.prior.sample(2 * n, generator=rng).to(original.device)
    before = original.generate(z)
    after = tuned.generate(z[:n])
    drift = (after - before[:n]).square().mean().item()
    scale = (before[:n] - before[n:]).square().mean().item()
    return drift, scale


def drift_report(original: InversionModel, tuned: InversionModel, finder: PivotSearch, held_out: Tensor | None, *,
                 seed: int = 0, n: int = DRIFT_SAMPLES) -> dict:
    """How far the tuning moved G on images it was not tuned on, as PSNR (dB; higher: moved less; ``DRIFT_PSNR_CAP``
    for identical images) between G's and the tuned G's images: ``prior_psnr`` on ``n`` fresh prior latents; with
    ``held_out`` images, ``held_out_psnr`` at their pivots (found on the source G as the tuned images' were) and
    those images' reconstruction PSNR before and after (``held_out_before`` / ``held_out_after``)."""
    z = original.prior.sample(n, generator=torch.Generator().manual_seed(seed + DRIFT_SEED_OFFSET))
    report = {"prior_samples": n, "prior_psnr": capped_psnr(original.generate(z), tuned.generate(z)), "held_out": 0,
              "held_out_psnr": None, "held_out_before": None, "held_out_after": None}
    if held_out is not None:
        x = held_out.detach().to(original.device, torch.float32)
        pivots = finder.invert(x)
        before, after = original.generate(pivots), tuned.generate(pivots)
        report.update(held_out=len(x), held_out_psnr=capped_psnr(before, after),
                      held_out_before=capped_psnr(before, x), held_out_after=capped_psnr(after, x))
    return report


def capped_psnr(a: Tensor, b: Tensor) -> float:
    """Mean over images of each image's PSNR (data range 1), at most ``DRIFT_PSNR_CAP``."""
    mse = (a.float() - b.float().to(a.device)).square().flatten(1).mean(1).clamp_min(10 ** (-DRIFT_PSNR_CAP / 10))
    return (-10 * torch.log10(mse)).mean().item()


# --- the run directory ---------------------------------------------------------------------------------------------

def save_tuned_run(tuned: TunedModel, out: str | Path, *, names: list[str] | None = None,
                   source_run: str | Path | None = None) -> Path:
    """The tuned model as a run directory, loadable by path (``ganinv.load`` / ``load_tuned``):

        config.json, checkpoint.json, checkpoints/…, weights.safetensors   the source run's config and nets, the
                                                                           generator replaced by the tuned copy
        pivots.safetensors                                                 "pivots": N×d, row i = image i
        tuning.json                                                        the paper, the source run, the settings,
                                                                           the image names, each pivot's source and
                                                                           the space PTI's search ran in, the drift
                                                                           (locality_drift, drift_scale; drift: the
                                                                           PSNRs of ``drift_report``)

    Everything is written into a hidden folder beside ``out`` and renamed to ``out`` at the end: a kill at any
    instant leaves either no ``out`` or a complete one (and, at worst, a ``.NAME.XXXX.tmp`` folder to delete)."""
    out = Path(out)
    names = names if names is not None else tuned.names
    if out.exists():
        raise GaninvError(f"{out} already exists; choose another folder for the tuned run")
    if names is not None and len(names) != len(tuned.pivots):
        raise GaninvError(f"{len(names)} names for {len(tuned.pivots)} tuned images")
    pending = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    try:
        fs.make_dir(out.parent)
        write_tuned_folder(tuned, pending, names=names, source_run=source_run)
        fs.replace(pending, out)  # the commit: before it nothing named `out` exists
        fs.fsync_dir(out.parent)
    except OSError as exc:
        raise RunDirError(f"could not write the tuned run {out}: {describe_os_error(exc)}") from None
    finally:
        shutil.rmtree(pending, ignore_errors=True)  # gone already after the rename
    tuned.names = names
    return out


def write_tuned_folder(tuned: TunedModel, folder: Path, *, names: list[str] | None,
                       source_run: str | Path | None) -> None:
    generator = tuned.method.unwrapped_nets()["generator"]
    config = tuned.config
    if config.generator_fingerprint:  # a post-hoc run records its frozen generator; that is now the tuned one
        config = config.replace(generator_fingerprint=generator_fingerprint(generator))
    prepare_run_dir(folder, config, resume=False)
    save_checkpoint(tuned.method, folder, step=finished_step(source_run) if source_run else 0)
    metadata = {"format": "ganinv-pivots", "format_version": str(TUNING_FORMAT_VERSION)}
    fs.atomic_write_bytes(folder / PIVOTS_FILE, save_safetensors({"pivots": tuned.pivots.contiguous()}, metadata))
    fs.atomic_write_json(folder / TUNING_FILE, {
        "format": "ganinv-tuning", "format_version": TUNING_FORMAT_VERSION, "paper": PAPER,
        "source_run": str(Path(source_run).resolve()) if source_run else None,
        "source_fingerprint": run_fingerprint(source_run) if source_run else None,
        "generator_fingerprint": generator_fingerprint(generator), "settings": dataclasses.asdict(tuned.settings),
        "locality_drift": tuned.locality_drift, "drift_scale": tuned.drift_scale, "drift": tuned.drift,
        "pivot_space": str(pivot_view(tuned.method).space), "pivot_sources": tuned.pivot_sources,
        "images": names if names is not None else [f"image {i}" for i in range(len(tuned.pivots))],
        "image_keys": tuned.image_keys})
    fs.fsync_dir(folder)


def load_tuned(run_dir: str | Path, device: str | torch.device = "cpu") -> TunedModel:
    """A tuned run directory as a TunedModel (pivots, settings and drift included). tuning.json and the pivots are
    read as a file from anyone: bounded before parsing, every field type-checked, the pivots' shape the run's."""
    run_dir = Path(run_dir)
    info = _read_tuning_json(run_dir)
    model = InversionModel.load(run_dir, device=device)
    pivots = _read_pivots(run_dir / PIVOTS_FILE, len(info["image_keys"]), model.prior.dim)
    return TunedModel(model.method, pivots=pivots, image_keys=info["image_keys"],
                      settings=TuningSettings(**info["settings"]), locality_drift=info["locality_drift"],
                      drift_scale=info["drift_scale"], names=info["images"], pivot_sources=info.get("pivot_sources"),
                      drift=info.get("drift"))


def _read_tuning_json(run_dir: Path) -> dict:
    path = run_dir / TUNING_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a tuned run (no {TUNING_FILE}); open it with ganinv.load")
    info = safe_files.read_json_bounded(path, TUNING_JSON_MAX_BYTES, RunDirError)
    if not isinstance(info, dict) or info.get("format") != "ganinv-tuning":
        raise RunDirError(f"{path} is damaged (not a ganinv tuning record)")
    version = info.get("format_version", 0)
    if not _is_int(version) or version < 0:
        raise RunDirError(f"{path} is damaged (format_version {version!r:.30})")
    if version > TUNING_FORMAT_VERSION:
        raise RunDirError(f"{path} has a newer format than this ganinv understands; upgrade ganinv")
    problem = _tuning_problem(info) or (_v2_problem(info) if version >= 2 else None)
    if problem:
        raise RunDirError(f"{path} is damaged ({problem})")
    return info


def _tuning_problem(info: dict) -> str | None:
    """What is wrong with a tuning record's fields (types, lengths, settings), or None."""
    keys, names, settings = info.get("image_keys"), info.get("images"), info.get("settings")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and 0 < len(keys) <= MAX_TUNED_IMAGES):
        return f"image_keys must be a list of 1 to {MAX_TUNED_IMAGES} strings"
    if not (isinstance(names, list) and len(names) == len(keys) and all(isinstance(n, str) for n in names)):
        return "images must be a list of names, one per image key"
    for field in ("locality_drift", "drift_scale"):
        value = info.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{field} must be a finite number, got {value!r:.30}"
    fields = {f.name for f in dataclasses.fields(TuningSettings)}
    required = fields - V2_SETTINGS  # a format-1 record has the others only
    if not isinstance(settings, dict) or not required <= set(settings) <= fields or not isinstance(
            settings["lpips"], bool):
        return f"settings must hold exactly {', '.join(sorted(fields))}"
    try:
        check_tuning_settings(**{k: v for k, v in settings.items() if k != "lpips"})
    except GaninvError as exc:
        return str(exc)
    return None


V2_SETTINGS = {"pivot_steps", "pivot_lr"}
DRIFT_NUMBERS = ("prior_psnr", "held_out_psnr", "held_out_before", "held_out_after")


def _v2_problem(info: dict) -> str | None:
    """What is wrong with the fields format 2 added (pivot sources and space, the drift PSNRs), or None."""
    sources, drift, n = info.get("pivot_sources"), info.get("drift"), len(info["image_keys"])
    if not (isinstance(sources, list) and len(sources) == n and all(isinstance(x, str) for x in sources)):
        return "pivot_sources must be a list of names, one per image key"
    if not isinstance(info.get("pivot_space"), str):
        return "pivot_space must be a space's name"
    if not isinstance(drift, dict) or set(drift) != {"prior_samples", "held_out", *DRIFT_NUMBERS}:
        return f"drift must hold exactly prior_samples, held_out, {', '.join(DRIFT_NUMBERS)}"
    if not all(_is_int(drift[k]) and drift[k] >= 0 for k in ("prior_samples", "held_out")):
        return "drift's sample counts must be integers >= 0"
    for key in DRIFT_NUMBERS:
        value = drift[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return f"drift's {key} must be a finite number or null, got {value!r:.30}"
    if drift["prior_psnr"] is None:
        return "drift's prior_psnr must be a finite number"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_pivots(path: Path, n: int, dim: int) -> Tensor:
    """The N×d float32 pivots, the file bounded by that size before it is read."""
    tensors, metadata = safe_files.read_safetensors(path, "the pivots", max_bytes=n * dim * 4 + PIVOTS_SLACK_BYTES,
                                                    error=RunDirError)
    pivots = tensors.get("pivots")
    if set(tensors) != {"pivots"} or metadata.get("format") != "ganinv-pivots":
        raise RunDirError(f"{path} is not a ganinv pivots file (it holds {', '.join(sorted(tensors))[:80]})")
    if pivots.dtype != torch.float32 or tuple(pivots.shape) != (n, dim):
        raise RunDirError(f"{path} holds {pivots.dtype} pivots of shape {tuple(pivots.shape)}; {TUNING_FILE} names "
                          f"{n} images and the run's latents have {dim} dimensions")
    if not bool(torch.isfinite(pivots).all()):
        raise RunDirError(f"{path} holds pivots that are not finite")
    return pivots

