"""BiGAN / ALI's joint discriminator D(x, z) of the AEGAN paper (Luo et al.), appendix table 6.

At 64 px, latent 100, width 64 the layers are the table's: 5×5 stride-2 convs 64, 128, 256 (BN, LeakyReLU 0.2) on
the image, down to 8×8; "conv cond concat": z tiled over the 8×8 map and concatenated (256 + 100 channels); three
5×5 stride-2 convs of 512 (BN, LeakyReLU) down to 1×1; a dense logit (the table's sigmoid lives in the loss).
Other power-of-two sizes keep the concat at 8×8 and the three joint stages, adding or dropping image-side stages
(w, 2w, 4w, … as DCGAN's discriminator); at 8 px z is concatenated with the image itself.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ganinv.nets.dcgan import dcgan_init_, down_block

CONCAT_SIZE = 8
JOINT_STAGES = 3  # 8 → 4 → 2 → 1


class JointDiscriminator(nn.Module):
    def __init__(self, *, latent_dim: int = 100, image_size: int = 64, width: int = 64, channels: int = 3):
        super().__init__()
        if image_size < CONCAT_SIZE or image_size & (image_size - 1):
            raise ValueError(f"the BiGAN discriminator needs a power-of-two image_size >= 8, got {image_size}")
        stages = int(math.log2(image_size // CONCAT_SIZE))
        widths = [width * 2**i for i in range(stages)]
        act = nn.LeakyReLU(0.2, inplace=True)
        self.image_body = nn.Sequential(*[down_block(i, o, act) for i, o in zip([channels] + widths[:-1], widths)])
        joint_in = (widths[-1] if widths else channels) + latent_dim
        self.joint_body = nn.Sequential(*[down_block(i, 8 * width, act)
                                          for i in [joint_in] + [8 * width] * (JOINT_STAGES - 1)])
        self.head = nn.Linear(8 * width, 1)
        dcgan_init_(self)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        h = self.image_body(x)
        tiled = z[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3]).to(h.dtype)
        return self.head(self.joint_body(torch.cat([h, tiled], 1)).flatten(1)).squeeze(1)
