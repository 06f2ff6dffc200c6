"""AEGAN (Luo et al., Algorithm 1): the inverse generator IG is the encoder of an autoencoder whose decoder is a
frozen, pre-trained generator. Loss: BCE between x = G(z) and x' = G(IG(x)); only IG is updated.

Option ``space`` (z, the paper's; w | wplus on a style generator, see ``ganinv.methods.spaces``): IG predicts a
latent of that space, the decoder is the generator in that space (the synthesis network for w and W+) and the x are
G's images of that space's prior samples."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganinv.losses.image import ImageLoss
from ganinv.methods.base import MethodOptions, dcgan_generator
from ganinv.methods.encoder import EncoderMethod
from ganinv.methods.spaces import parse_space

BCE = ImageLoss(bce=1.0)  # AEGAN's eq. 5


@dataclass(frozen=True)
class AEGANOptions(MethodOptions):
    space: str = "z"  # z (the paper) | w | wplus (a style generator's W / W+: ganinv.methods.spaces)

    def __post_init__(self):
        parse_space(self.space)  # the generator's kind is checked when the method is built


class AEGAN(EncoderMethod):
    name = "aegan"
    Options = AEGANOptions
    uses_real_data = False  # trained on the generator's own samples, as the paper

    def build_nets(self) -> dict[str, nn.Module]:
        encoder = self.space_encoder()  # built before the generator: the order the seeded initial weights are drawn in
        return {"generator": dcgan_generator(self.config), "encoder": encoder}

    def train_step(self, batch) -> dict[str, float]:
        IG = self.nets["encoder"]
        with torch.no_grad():  # step 1: x = G(z) with G frozen
            x = self.generate(self.sample_latents())
        reconstruction = self.generate(IG(x))  # step 2: x' = G(IG(x)); gradients flow through G into IG only
        loss, _ = BCE(reconstruction, x)  # step 3
        self.session.update("encoder", loss)  # step 4
        return {"recon_bce": loss.item()}


__all__ = ["AEGAN", "AEGANOptions"]
