"""Plain DCGAN (AEGAN (Luo et al.) appendix, eq. 4): the generator every post-hoc inverter is trained against."""
from __future__ import annotations

from torch import Tensor, nn

from ganinv.losses import gan_discriminator_loss, gan_generator_loss
from ganinv.methods.base import GeneratorRole, Method, dcgan_generator
from ganinv.nets.dcgan import Discriminator


class GAN(Method):
    name = "gan"
    generator_role = GeneratorRole.TRAINED
    uses_real_data = True
    trainable = ("generator", "discriminator")

    def build_nets(self) -> dict[str, nn.Module]:
        n = self.config.net
        return {
            "generator": dcgan_generator(self.config),
            "discriminator": Discriminator(image_size=n.image_size, width=n.width, channels=n.channels),
        }

    def train_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        real = batch[0]
        G, D = self.nets["generator"], self.nets["discriminator"]
        fake = G(self.sample_latents(real.shape[0]))

        d_loss = gan_discriminator_loss(D(real), D(fake.detach()))
        self.session.update("discriminator", d_loss)

        with self.frozen("discriminator") as frozen_D:  # G's step: no gradients for D, nothing for DDP to sync
            g_loss = gan_generator_loss(frozen_D(fake))
            self.session.update("generator", g_loss)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
