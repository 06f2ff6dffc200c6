"""AEGAN (Luo et al., Algorithm 1): the inverse generator IG is the encoder of an autoencoder whose decoder is a
frozen, pre-trained generator. Loss: BCE between x = G(z) and x' = G(IG(x)); only IG is updated."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ganinv.losses import reconstruction_bce
from ganinv.methods.base import Method, dcgan_generator, dcgan_inverse_generator


class AEGAN(Method):
    name = "aegan"
    trains_generator = False
    uses_real_data = False  # trained on the generator's own samples, as the paper
    trainable = ("encoder",)

    def build_nets(self) -> dict[str, nn.Module]:
        return {"generator": dcgan_generator(self.config), "encoder": dcgan_inverse_generator(self.config, self.prior)}

    def train_step(self, batch) -> dict[str, float]:
        G, IG = self.nets["generator"], self.nets["encoder"]
        with torch.no_grad():  # step 1: x = G(z) with G frozen
            x = G(self.sample_latents())
        reconstruction = G(IG(x))  # step 2: x' = G(IG(x)); gradients flow through G into IG only
        loss = reconstruction_bce(reconstruction, x)  # step 3
        self.optimizers["encoder"].zero_grad(set_to_none=True)
        self.backward(loss)  # step 4
        self.optimizers["encoder"].step()
        return {"recon_bce": loss.item()}

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)
