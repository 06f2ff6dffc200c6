"""BiGAN / ALI (Donahue et al.; Dumoulin et al.), as AEGAN (Luo et al.) §2 and appendix compare against: a generator G
(table 3), an encoder E (the inverse generator of table 5) and a joint discriminator D(x, z) (table 6), trained
together on the minimax objective of eq. 1,

    min_{G,E} max_D  E_x[log D(x, E(x))] + E_z[log(1 − D(G(z), z))].

D ascends it (BCE with labels 1 for (x, E(x)), 0 for (G(z), z)); G and E take the usual non-saturating step —
the labels swapped — against the updated D, with D's weights frozen for that backward. ``invert = E``; G is
trained here, so post-hoc methods may also sit on a bigan run (its G is a DCGAN generator).
"""
from __future__ import annotations

from torch import Tensor, nn

from ganinv.losses import gan_discriminator_loss
from ganinv.methods.base import GeneratorRole, Method, dcgan_generator, dcgan_inverse_generator
from ganinv.nets.bigan import JointDiscriminator


class BiGAN(Method):
    name = "bigan"
    generator_role = GeneratorRole.TRAINED
    uses_real_data = True
    trainable = ("generator", "encoder", "discriminator")

    def build_nets(self) -> dict[str, nn.Module]:
        n = self.config.net
        return {
            "generator": dcgan_generator(self.config),
            "encoder": dcgan_inverse_generator(self.config, self.prior),
            "discriminator": JointDiscriminator(latent_dim=n.latent_dim, image_size=n.image_size, width=n.width,
                                                channels=n.channels),
        }

    def train_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        real = batch[0]
        G, E, D = self.nets["generator"], self.nets["encoder"], self.nets["discriminator"]
        z = self.sample_latents(real.shape[0]).to(real.device)
        fake, encoded = G(z), E(real)

        # D: log D(x, E(x)) + log(1 − D(G(z), z))
        d_loss = gan_discriminator_loss(D(real, encoded.detach()), D(fake.detach(), z))
        self.session.update("discriminator", d_loss)

        # G and E: the same pairs with the labels swapped (non-saturating), against the updated D
        with self.frozen("discriminator") as frozen_D:
            ge_loss = gan_discriminator_loss(frozen_D(fake, z), frozen_D(real, encoded))
            self.session.update(("generator", "encoder"), ge_loss)
        return {"d_loss": d_loss.item(), "ge_loss": ge_loss.item()}

    def invert(self, x: Tensor) -> Tensor:
        return self.nets["encoder"](x)


__all__ = ["BiGAN"]
