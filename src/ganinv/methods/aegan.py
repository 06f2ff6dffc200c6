"""AEGAN (Luo et al., Algorithm 1): the inverse generator IG is the encoder of an autoencoder whose decoder is a
frozen, pre-trained generator. Loss: BCE between x = G(z) and x' = G(IG(x)); only IG is updated.

Option ``space`` (z, the paper's; w | wplus on a style generator, see ``ganinv.methods.spaces``): IG predicts a
latent of that space, the decoder is the generator in that space (the synthesis network for w and W+) and the x are
G's images of that space's prior samples."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganinv.losses import reconstruction_bce
from ganinv.methods.base import Method, MethodOptions, dcgan_generator
from ganinv.methods.spaces import SPACES, check_space, generate_in, space_encoder, space_prior


@dataclass(frozen=True)
class AEGANOptions(MethodOptions):
    space: str = "z"  # z (the paper) | w | wplus (a style generator's W / W+: ganinv.methods.spaces)

    def __post_init__(self):
        check_space(self.space, "style")  # the generator's kind is checked when the method is built


class AEGAN(Method):
    name = "aegan"
    Options = AEGANOptions
    trains_generator = False
    uses_real_data = False  # trained on the generator's own samples, as the paper
    trainable = ("encoder",)

    def __init__(self, config):
        super().__init__(config)
        check_space(self.options.space, self.generator_spec["kind"])
        self.prior = space_prior(self.options.space, self.prior, lambda: self.nets["generator"])

    def build_nets(self) -> dict[str, nn.Module]:
        encoder = space_encoder(self.config, self.prior, self.options.space)
        return {"generator": dcgan_generator(self.config), "encoder": encoder}

    def generate(self, latents: Tensor) -> Tensor:
        return generate_in(self.options.space, self.nets["generator"], latents)

    def train_step(self, batch) -> dict[str, float]:
        IG = self.nets["encoder"]
        with torch.no_grad():  # step 1: x = G(z) with G frozen
            x = self.generate(self.sample_latents())
        reconstruction = self.generate(IG(x))  # step 2: x' = G(IG(x)); gradients flow through G into IG only
        loss = reconstruction_bce(reconstruction, x)  # step 3
        self.optimizers["encoder"].zero_grad(set_to_none=True)
        self.backward(loss)  # step 4
        self.optimizers["encoder"].step()
        return {"recon_bce": loss.item()}

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)


__all__ = ["AEGAN", "SPACES", "AEGANOptions"]
