"""DCGAN generator, discriminator and inverse generator of the AEGAN paper (Luo et al.), appendix tables 3–5.

At ``image_size=64, width=64, latent_dim=100, channels=3`` (the ``paper`` preset) the layers are exactly the
tables': 5×5 kernels, stride 2, batch norm where the tables say Y, ReLU (G, IG) / LeakyReLU 0.2 (D), a sigmoid
image head, a tanh latent head. Other power-of-two sizes add or drop one stride-2 stage per octave, keeping the
4×4 bottleneck and doubling the width per stage towards it, so 16-px test nets are the same family.

Two deliberate departures, both numerically equivalent: the discriminator returns the *logit* (the table's
sigmoid is folded into ``BCEWithLogits`` for stability), and the inverse generator's tanh is scaled to the
prior's support (×1 for U(-1,1) as in the paper, ×√3 for U(-√3,√3), no squashing for a normal prior).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

KERNEL = 5


def num_stages(image_size: int) -> int:
    """Stride-2 stages between the 4×4 bottleneck and the image (4 for 64 px, as in the tables)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"DCGAN nets need a power-of-two image_size >= 8, got {image_size}")
    return int(math.log2(image_size)) - 2


def stage_widths(image_size: int, width: int, max_width: int = 0) -> list[int]:
    """Channel counts from the image side to the bottleneck: [w, 2w, 4w, 8w] at 64 px; capped at ``max_width``
    when it is positive (a 1024-px encoder doubling from 32 would reach 4096 channels)."""
    widths = [width * 2**i for i in range(num_stages(image_size))]
    return [min(w, max_width) for w in widths] if max_width > 0 else widths


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) weights, BN scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def up_block(in_ch: int, out_ch: int, last: bool) -> nn.Sequential:
    # padding 2 + output_padding 1 makes a 5×5 stride-2 deconvolution exactly double the size ("same" in TF)
    deconv = nn.ConvTranspose2d(in_ch, out_ch, KERNEL, stride=2, padding=2, output_padding=1, bias=last)
    if last:
        return nn.Sequential(deconv, nn.Sigmoid())
    return nn.Sequential(deconv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def down_block(in_ch: int, out_ch: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, KERNEL, stride=2, padding=2, bias=False), nn.BatchNorm2d(out_ch), activation
    )


class Generator(nn.Module):
    """Table 3: Dense → 4×4×8w (BN, ReLU) → deconvs 4w, 2w, w (BN, ReLU) → deconv C, sigmoid. Output in [0,1]."""

    def __init__(self, *, latent_dim: int = 100, image_size: int = 64, width: int = 64, channels: int = 3):
        super().__init__()
        widths = stage_widths(image_size, width)[::-1]  # bottleneck first
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.project = nn.Linear(latent_dim, 4 * 4 * widths[0])
        self.project_norm = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        outs = widths[1:] + [channels]
        last = len(outs) - 1
        self.blocks = nn.Sequential(*[up_block(i, o, last=k == last) for k, (i, o) in enumerate(zip(widths, outs))])
        self._bottleneck = widths[0]
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(-1, self._bottleneck, 4, 4)
        return self.blocks(self.project_norm(h))


class ConvEncoder(nn.Module):
    """The shared body of tables 4 and 5: strided 5×5 convs w, 2w, 4w, 8w with BN, then a dense head."""

    def __init__(self, *, out_features: int, image_size: int, width: int, channels: int, activation: nn.Module,
                 max_width: int = 0):
        super().__init__()
        widths = stage_widths(image_size, width, max_width)
        ins = [channels] + widths[:-1]
        self.body = nn.Sequential(*[down_block(i, o, activation) for i, o in zip(ins, widths)])
        self.head = nn.Linear(4 * 4 * widths[-1], out_features)
        dcgan_init_(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(1)


class Discriminator(ConvEncoder):
    """Table 4 (LeakyReLU 0.2). Returns one logit per image; the sigmoid lives in the loss."""

    def __init__(self, *, image_size: int = 64, width: int = 64, channels: int = 3):
        super().__init__(
            out_features=1, image_size=image_size, width=width, channels=channels,
            activation=nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)


class InverseGenerator(ConvEncoder):
    """Table 5: the discriminator's body with ReLU and a ``latent_dim`` tanh head (IG of AEGAN).

    ``latent_bound`` scales the tanh to the prior's support; ``None`` (normal prior) leaves the head linear.
    """

    def __init__(
        self, *, latent_dim: int = 100, image_size: int = 64, width: int = 64, channels: int = 3,
        latent_bound: float | None = 1.0, max_width: int = 0,
    ):
        super().__init__(
            out_features=latent_dim, image_size=image_size, width=width, channels=channels,
            activation=nn.ReLU(inplace=True), max_width=max_width,
        )
        self.latent_bound = latent_bound

    def forward(self, x: Tensor) -> Tensor:
        out = self.head(self.features(x))
        if self.latent_bound is None:
            return out
        return self.latent_bound * torch.tanh(out)
