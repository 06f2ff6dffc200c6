"""The 'directly trained' inverse model (seed 001 §2, ICGAN's L_ez without labels): regress z from G(z) with
MSE, G frozen. Same IG architecture as AEGAN, so the two differ only in the loss."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..losses import latent_mse
from .base import Method, dcgan_generator, dcgan_inverse_generator


class Regression(Method):
    name = "regression"
    trains_generator = False
    uses_real_data = False
    trainable = ("encoder",)

    def build_nets(self) -> dict[str, nn.Module]:
        return {"generator": dcgan_generator(self.config), "encoder": dcgan_inverse_generator(self.config, self.prior)}

    def train_step(self, batch) -> dict[str, float]:
        G, IG = self.nets["generator"], self.nets["encoder"]
        z = self.sample_latents(self.config.train.batch_size)
        with torch.no_grad():
            x = G(z)
        loss = latent_mse(IG(x), z)
        self.optimizers["encoder"].zero_grad(set_to_none=True)
        self.backward(loss)
        self.optimizers["encoder"].step()
        return {"latent_mse": loss.item()}

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)
