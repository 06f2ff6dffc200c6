"""Regression onto the latent of a frozen generator — two faces of one method, chosen by options:

* the 'directly trained' inverse model (AEGAN (Luo et al.) §2, ICGAN's L_ez without labels; the defaults): regress
  z from G(z) with MSE, same IG architecture as AEGAN, so the two differ only in the loss;
* the projection network of "Unsupervised Projection Networks for Generative Adversarial Networks" (Arfeen &
  Zhang): θ* = argmin E_z ||P(G(F(z))) − F(z)||², with ``space="w"`` projecting onto
  the style generator's W space (F its mapping network; for a DLSGAN generator w = F(z∘s)) and
  ``backbone="resnet18"`` the paper's torchvision ResNet18 with a new fc (ImageNet weights when on disk).

``space="z"``: F is the identity, as the paper says for non-style generators. ``space="w"``: the run's latent
space *is* W — ``invert`` returns w, ``generate`` takes w (the synthesis network), and the run's prior is the
push-forward F(z∘s) of the generator's prior (so ``sample``, optimisation and every application work in W).
``space="wplus"``: W+, one w per modulated layer, flattened layer-major to N×(num_ws·w_dim); P is trained on the W
prior's samples repeated at every layer (``ganinv.methods.spaces``, where the three spaces live).

``recon_weight`` λ > 0 adds the paper's §4.3 fine-tuning term λ·||x − G(P(x))||² to the latent loss, as the paper
does ("we continue training with the original loss, and we simply add our reconstruction loss"): x are the
dataset's real train images (``recon_images="real"``, so the run needs --data; ``"generated"``: G's own samples,
this project's earlier behaviour), the term is on from step ``recon_start_step`` (the paper trains P on the latent
loss first, then fine-tunes), and ``recon_loss`` is the paper's MSE unless ``"mse+lpips"`` is asked for — never
switched silently: a run asking for LPIPS without its weights on disk is refused before it starts. The latent loss
stays on generated samples at every step. The paper reports that this term smooths reconstructions rather than
improving them.

The resnet18 backbone starts from ImageNet weights only when they are on disk (``nets.encoders``); the run records
which it got (option ``backbone_init``, resolved when the config is built), and ``backbone_init(config)`` phrases
it for tables.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError
from ganinv.losses import latent_mse
from ganinv.losses.image import image_loss
from ganinv.methods.base import MethodOptions, dcgan_generator, parse_options
from ganinv.methods.encoder import EncoderMethod
from ganinv.methods.spaces import (  # noqa: F401 — MappedPrior re-exported: its import path before spaces.py
    W_MEAN_SAMPLES,
    MappedPrior,
    parse_space,
)
from ganinv.nets.encoders import ResNetEncoder, imagenet_weights_file

BACKBONES = ("dcgan", "resnet18")
RECON_LOSSES = ("mse", "mse+lpips")  # named image losses (ganinv.losses.image)
RECON_IMAGES = ("real", "generated")
NOT_APPLICABLE = "not applicable (dcgan backbone)"
RANDOM_INIT = "random init (ImageNet ResNet18 weights not on disk)"


@dataclass(frozen=True)
class RegressionOptions(MethodOptions):
    space: str = "z"  # z | w (a style generator's mapping-network output) | wplus (one w per layer, flattened)
    backbone: str = "dcgan"  # dcgan (AEGAN (Luo et al.) table 5) | resnet18 (Arfeen & Zhang)
    backbone_weights: str = ""  # ImageNet ResNet18 checkpoint; "" looks in torchvision's cache
    recon_weight: float = 0.0  # λ of the §4.3 reconstruction fine-tuning term (0: off)
    recon_loss: str = "mse"  # mse: the paper's ||x − G(P(x))||² | mse+lpips (refused when LPIPS weights are missing)
    recon_images: str = "real"  # real: the dataset's train images (the paper) | generated: G's own samples
    recon_start_step: int = 0  # the first step with the recon term (the paper: after P is trained on the latent loss)
    backbone_init: str = ""  # resolved by build_config: how the encoder's body started (ImageNet file / random)

    def __post_init__(self):
        parse_space(self.space)  # the generator's kind is checked when the method is built
        if self.backbone not in BACKBONES:
            raise GaninvError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if not self.recon_weight >= 0 or self.recon_weight == float("inf"):
            raise GaninvError(f"recon_weight must be finite and >= 0, got {self.recon_weight}")
        if self.recon_loss not in RECON_LOSSES:
            raise GaninvError(f"recon_loss must be one of {', '.join(RECON_LOSSES)}, got {self.recon_loss!r}")
        if self.recon_images not in RECON_IMAGES:
            raise GaninvError(f"recon_images must be one of {', '.join(RECON_IMAGES)}, got {self.recon_images!r}")
        if not isinstance(self.recon_start_step, int) or self.recon_start_step < 0:
            raise GaninvError(f"recon_start_step must be an integer >= 0, got {self.recon_start_step!r}")
        if self.backbone_weights and self.backbone != "resnet18":
            raise GaninvError("backbone_weights is for backbone=resnet18")

    @property
    def recon_on(self) -> bool:
        return self.recon_weight > 0

    def check_before_training(self) -> None:

        if self.backbone_weights and not Path(self.backbone_weights).is_file():
            raise GaninvError(f"backbone_weights {self.backbone_weights} does not exist")
        if self.recon_on:  # LPIPS asked for explicitly: refused (ganinv.losses.image's policy), never MSE alone
            image_loss(self.recon_loss, RECON_LOSSES).require(f"recon_loss={self.recon_loss}", "use recon_loss=mse")

    def resolved(self) -> RegressionOptions:
        """This machine's answer to "which weights does the resnet18 body start from?", recorded in config.json."""
        return dataclasses.replace(self, backbone_init=found_backbone_init(self))


def found_backbone_init(options: RegressionOptions) -> str:
    """How ``ResNetEncoder.load_imagenet`` would start the encoder on this machine, as a short phrase (the same
    lookup: ``nets.encoders.imagenet_weights_file``)."""
    if options.backbone != "resnet18":
        return NOT_APPLICABLE
    path = imagenet_weights_file(options.backbone_weights or None)
    return RANDOM_INIT if path is None else f"ImageNet weights from {path}"


def backbone_init(config_or_options: RunConfig | RegressionOptions | dict) -> str:
    """How a regression run's encoder started, for tables: what the run recorded when it was built; for a run made
    before that was recorded, what this machine's lookup finds, marked as such."""
    options = config_or_options
    if isinstance(options, RunConfig):
        if options.method != "regression":
            return f"not applicable ({options.method})"
        options = options.options
    if isinstance(options, dict):
        options = parse_options(RegressionOptions, options, "regression")
    if options.backbone_init or options.backbone != "resnet18":
        return options.backbone_init or NOT_APPLICABLE
    try:
        found = found_backbone_init(options)
    except GaninvError:  # the named file was on the training machine, not here
        return f"unknown (backbone_weights {options.backbone_weights} is not on this machine)"
    return f"{found} — not recorded by the run; as found on this machine"


class Regression(EncoderMethod):
    name = "regression"
    Options = RegressionOptions
    uses_real_data = False

    def build_nets(self) -> dict[str, nn.Module]:
        generator = dcgan_generator(self.config)  # replaced by the base class for other generator kinds
        if self.options.backbone == "resnet18":
            encoder = ResNetEncoder(latent_dim=self.latent_dim, channels=self.config.net.channels,
                                    latent_bound=self.space.encoder_bound(self.prior))
        else:
            encoder = self.space_encoder()
        return {"generator": generator, "encoder": encoder}

    def configure(self, accelerator) -> None:
        if self.options.backbone == "resnet18":  # fresh training only: a loaded run's weights come from its file
            self.nets["encoder"].load_imagenet(self.options.backbone_weights or None)
        super().configure(accelerator)

    @classmethod
    def needs_real_data(cls, options: RegressionOptions) -> bool:
        # only the §4.3 recon term on real images reads the dataset; the latent loss needs G's samples alone
        return options.recon_on and options.recon_images == "real"

    def train_step(self, batch) -> dict[str, float]:
        o, P = self.options, self.nets["encoder"]
        target = self.sample_latents()  # F(z): z itself, or w
        with torch.no_grad():
            x = self.generate(target)
        predicted = P(x)
        latent = latent_mse(predicted, target)
        loss, logs = latent, {"latent_mse": latent.item()}
        if o.recon_on and self.session.step >= o.recon_start_step:  # the session's step: a resumed run knows it
            images, codes = (batch[0], P(batch[0])) if o.recon_images == "real" else (x, predicted)
            recon = reconstruction_loss(o.recon_loss, self.generate(codes), images)
            loss = loss + o.recon_weight * recon
            logs["recon"] = recon.item()
        self.session.update("encoder", loss)
        return logs


def reconstruction_loss(kind: str, reconstruction: Tensor, target: Tensor) -> Tensor:
    """||x − G(P(x))||² as a pixel mean ("mse", the paper's), plus LPIPS for "mse+lpips" — which fails rather than
    falling back to MSE when LPIPS cannot be built (e.g. a run resumed on a machine without its weights)."""
    loss = image_loss(kind, RECON_LOSSES, "recon_loss").require(f"recon_loss={kind}")
    return loss(reconstruction, target)[0]
