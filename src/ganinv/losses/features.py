"""The offline perceptual term ``d_features``: how far apart two images are in a frozen discriminator's eyes.

LPIPS compares images in an ImageNet AlexNet's feature maps, which need weights this machine may not have. A GAN's
own discriminator has learnt features of exactly the images being inverted, and its run already holds its weights —
nothing to download. So the term is LPIPS's recipe without the learnt linear layers (Zhang et al. 2018, eq. 1 with
w = 1): every intermediate feature map of the discriminator, unit-normalised over channels at each position, the
squared difference summed over channels, averaged over positions, then averaged over the maps:

    d(x, y) = mean_l  mean_hw  || f̂_l(x)_hw − f̂_l(y)_hw ||²        f̂ = f / ||f||_channels,   each in [0, 4]

The discriminator is a frozen copy (eval mode, no parameter gradients; gradients still reach the images). Which
maps: DCGAN's discriminator (``gan`` runs) — each strided conv block; the residual discriminator (``dlsgan``,
``dedgan`` runs) — from-RGB and each residual block; BiGAN's joint discriminator — its image-side blocks; an
imported StyleGAN's (``stylegan`` runs of NVlabs snapshots, ``nets.stylegan2_d``) — each DiscriminatorBlock.
``ImageLoss(d_features=…)`` uses it, bound to a run's nets by ``ImageLoss.with_discriminator``; its description
names the discriminator it came from, so no table shows the term without saying whose features they were.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.nets.bigan import JointDiscriminator
from ganinv.nets.dcgan import ConvEncoder
from ganinv.nets.style import ResidualDiscriminator
from ganinv.nets.stylegan2_d import StyleGAN2Discriminator

NORM_EPS = 1e-10  # added to the squared channel norm (LPIPS's normalize_tensor adds it to the norm)
HAVE_DISCRIMINATORS = ("runs of gan, dlsgan, dedgan and bigan have one, and so do stylegan runs imported from "
                       "NVlabs snapshots")


def _signed(x: Tensor) -> Tensor:
    return x * 2.0 - 1.0  # [0, 1] → the [-1, 1] pixels the residual discriminator reads


def _image_pair(x: Tensor) -> tuple[None, Tensor]:
    return None, _signed(x)  # (no features yet, the image in [-1, 1]): what NVlabs' first block reads


class _PairStage(nn.Module):
    """A block that maps (features, image) to (features, image) — NVlabs' DiscriminatorBlock, whose 'skip'
    architecture passes the downsampled image on — as one stage over that pair; the features are the map."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, pair: tuple[Tensor | None, Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return self.block(*pair)


def feature_stages(discriminator: nn.Module) -> tuple[Callable[[Tensor], Tensor], list[nn.Module]]:
    """(how images in [0, 1] enter, the modules whose outputs are the compared maps, in order), or GaninvError."""
    if isinstance(discriminator, ResidualDiscriminator):
        return _signed, [discriminator.from_rgb, *discriminator.blocks]
    if isinstance(discriminator, ConvEncoder):
        return nn.Identity(), list(discriminator.body)
    if isinstance(discriminator, JointDiscriminator) and len(discriminator.image_body):
        return nn.Identity(), list(discriminator.image_body)
    if isinstance(discriminator, StyleGAN2Discriminator):
        return _image_pair, [_PairStage(block) for block in discriminator.blocks]
    raise GaninvError(f"the d_features image term cannot read the feature maps of a {type(discriminator).__name__} "
                      f"(it knows DCGAN's, the residual, BiGAN's image-side and StyleGAN2's discriminators)")


def _in_channels(stages: list[nn.Module]) -> int | None:
    """The image channels the first convolution of the stages takes (None when it cannot tell)."""
    for module in stages[0].modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
        weight = getattr(module, "weight", None)
        if isinstance(weight, Tensor) and weight.ndim == 4:
            return int(weight.shape[1])
    return None


def unit_channels(features: Tensor) -> Tensor:
    """Each position's feature vector scaled to unit length (LPIPS's normalisation)."""
    return features * torch.rsqrt(features.square().sum(1, keepdim=True) + NORM_EPS)


class DiscriminatorFeatures(nn.Module):
    """A frozen copy of a discriminator, as ``d(x, y)`` per image (N,). ``source``: whose discriminator it is
    (``"the gan run runs/gan"``): what tables and reports name beside the term."""

    def __init__(self, discriminator: nn.Module, *, source: str):
        super().__init__()
        self.net = copy.deepcopy(discriminator).eval().requires_grad_(False)
        self.prepare, self.stages = feature_stages(self.net)
        self.channels = _in_channels(self.stages)
        self.source = source

    def train(self, mode: bool = True) -> DiscriminatorFeatures:
        return super().train(False)  # frozen means frozen: BatchNorm keeps its running statistics

    def maps(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or (self.channels is not None and x.shape[1] != self.channels):
            raise GaninvError(f"the d_features term's discriminator ({self.source}) reads {self.channels}-channel "
                              f"images, got a batch of shape {tuple(x.shape)}")
        h, out = self.prepare(x), []
        for stage in self.stages:
            h = stage(h)
            out.append(h[0] if isinstance(h, tuple) else h)  # a (features, image) stage: its features
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self.net.to(x.device)
        both = self.maps(torch.cat([x, y]).float())  # one pass: the frozen net treats each image alone
        n = len(x)
        per_map = [(unit_channels(f[:n]) - unit_channels(f[n:])).square().sum(1).flatten(1).mean(1) for f in both]
        return torch.stack(per_map).mean(0)


def discriminator_features(nets: Mapping[str, nn.Module], source: str) -> DiscriminatorFeatures:
    """The d_features term's net from a run's nets (``nets["discriminator"]``), or one GaninvError line naming what
    the run has instead. ``source`` names the run in that line and beside the term in reports."""
    discriminator = nets.get("discriminator")
    if discriminator is None:
        raise GaninvError(f"the d_features image term needs a discriminator and {source} has none (its nets: "
                          f"{', '.join(sorted(nets)) or 'none'}); {HAVE_DISCRIMINATORS}")
    return DiscriminatorFeatures(getattr(discriminator, "module", discriminator), source=source)
