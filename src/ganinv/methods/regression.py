"""Regression onto the latent of a frozen generator — two faces of one method, chosen by options:

* the 'directly trained' inverse model (AEGAN (Luo et al.) §2, ICGAN's L_ez without labels; the defaults): regress
  z from G(z) with MSE, same IG architecture as AEGAN, so the two differ only in the loss;
* the projection network of Arfeen & Zhang: θ* = argmin E_z ||P(G(F(z))) − F(z)||², with ``space="w"`` projecting onto
  the style generator's W space (F its mapping network; for a DLSGAN generator w = F(z∘s)) and
  ``backbone="resnet18"`` the paper's torchvision ResNet18 with a new fc (ImageNet weights when on disk).

``space="z"``: F is the identity, as the paper says for non-style generators. ``space="w"``: the run's latent
space *is* W — ``invert`` returns w, ``generate`` takes w (the synthesis network), and the run's prior is the
push-forward F(z∘s) of the generator's prior (so ``sample``, optimisation and every application work in W).

``recon_weight`` λ > 0 adds the §4.3 fine-tuning term λ·(||x − G(P(x))||² [+ LPIPS when its weights are on disk])
to the latent loss. Departure: x are the generator's own samples, not real images (the training loop decides
from the method class whether a dataset is fed, and real-image fine-tuning only "smoothed" the paper's results).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.latent import Prior
from ganinv.losses import latent_mse
from ganinv.methods.base import Method, MethodOptions, dcgan_generator, dcgan_inverse_generator
from ganinv.methods.optimize import perceptual_distance
from ganinv.nets.dcgan import InverseGenerator
from ganinv.nets.encoders import ResNetEncoder

SPACES = ("z", "w")
BACKBONES = ("dcgan", "resnet18")
W_MEAN_SAMPLES = 1024


@dataclass(frozen=True)
class RegressionOptions(MethodOptions):
    space: str = "z"  # z | w (w: a style generator's mapping-network output)
    backbone: str = "dcgan"  # dcgan (AEGAN (Luo et al.) table 5) | resnet18 (Arfeen & Zhang)
    backbone_weights: str = ""  # ImageNet ResNet18 checkpoint; "" looks in torchvision's cache
    recon_weight: float = 0.0  # λ of the reconstruction fine-tuning term (0: off)

    def __post_init__(self):
        if self.space not in SPACES:
            raise GaninvError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if self.backbone not in BACKBONES:
            raise GaninvError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if not self.recon_weight >= 0 or self.recon_weight == float("inf"):
            raise GaninvError(f"recon_weight must be finite and >= 0, got {self.recon_weight}")
        if self.backbone_weights and self.backbone != "resnet18":
            raise GaninvError("backbone_weights is for backbone=resnet18")

    def check_before_training(self) -> None:

        if self.backbone_weights and not Path(self.backbone_weights).is_file():
            raise GaninvError(f"backbone_weights {self.backbone_weights} does not exist")


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
        w = self.sample(W_MEAN_SAMPLES, generator=torch.Generator().manual_seed(0))
        return w.mean(0, keepdim=True).expand(n, -1).to(device if device is not None else w.device).clone()

    def clamp(self, z: Tensor) -> Tensor:
        return z

    def std(self) -> float:
        return 1.0


class Regression(Method):
    name = "regression"
    Options = RegressionOptions
    trains_generator = False
    uses_real_data = False
    trainable = ("encoder",)

    def __init__(self, config):
        super().__init__(config)
        if self.options.space == "w":
            if self.generator_spec["kind"] != "style":
                raise GaninvError(
                    f"space=w needs a style generator with a mapping network (a dlsgan run); this run's generator "
                    f"is of kind {self.generator_spec['kind']!r} — use space=z")
            self.prior = MappedPrior("w", self.config.net.latent_dim, base=self.prior, mapper=self._map)

    def _map(self, z: Tensor) -> Tensor:
        G = self.nets["generator"]
        return G.mapping(z.to(next(G.parameters()).device))

    def build_nets(self) -> dict[str, nn.Module]:
        o, n = self.options, self.config.net
        generator = dcgan_generator(self.config)  # replaced by the base class for other generator kinds
        bounded = self.prior.bounds if o.space == "z" else None
        if o.backbone == "resnet18":

            encoder = ResNetEncoder(latent_dim=n.latent_dim, channels=n.channels,
                                    latent_bound=bounded[1] if bounded else None)
        elif bounded:
            encoder = dcgan_inverse_generator(self.config, self.prior)
        else:

            encoder = InverseGenerator(latent_dim=n.latent_dim, image_size=n.image_size, width=n.width,
                                       channels=n.channels, latent_bound=None)
        return {"generator": generator, "encoder": encoder}

    def configure(self, accelerator) -> None:
        if self.options.backbone == "resnet18":  # fresh training only: a loaded run's weights come from its file
            self.nets["encoder"].load_imagenet(self.options.backbone_weights or None)
        super().configure(accelerator)

    def generate(self, latents: Tensor) -> Tensor:
        if self.options.space == "w":
            return self.nets["generator"].from_w(latents)
        return self.nets["generator"](latents)

    def train_step(self, batch) -> dict[str, float]:
        P = self.nets["encoder"]
        target = self.sample_latents()  # F(z): z itself, or w
        with torch.no_grad():
            x = self.generate(target)
        predicted = P(x)
        latent = latent_mse(predicted, target)
        loss, logs = latent, {"latent_mse": latent.item()}
        if self.options.recon_weight > 0:
            recon = reconstruction_loss(self.generate(predicted), x)
            loss = loss + self.options.recon_weight * recon
            logs["recon"] = recon.item()
        self.optimizers["encoder"].zero_grad(set_to_none=True)
        self.backward(loss)
        self.optimizers["encoder"].step()
        return logs

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)


def reconstruction_loss(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE, plus LPIPS when its weights are on disk (warned once otherwise)."""

    loss = F.mse_loss(reconstruction.float(), target.float())
    lp = perceptual_distance(reconstruction, target)
    return loss if lp is None else loss + lp.mean()
