"""The pSp encoder (Richardson et al., "Encoding in Style: a StyleGAN Encoder for Image-to-Image Translation", 2021):
a feature pyramid over a convolutional backbone, and one small map-to-style head per W+ layer.

    images [0, 1] ──► backbone (stride-2 stages of IR-SE units) ──► c_fine, c_medium, c_coarse   (1/4, 1/8, 1/16)
    p_coarse = c_coarse
    p_medium = upsample(p_coarse) + lateral1x1(c_medium)         FPN (Lin et al.): top-down, upsample-add
    p_fine   = upsample(p_medium) + lateral1x1(c_fine)
    head_i(p_level(i)) ──► offset_i (w_dim)                      level(i): coarse, medium or fine (``style_levels``)

``PSPEncoder(...)(x)`` is N×num_ws×w_dim: one offset per layer, which the method adds to a start (pSp: w̄, its
``start_from_latent_avg``; e4e: layer 0's w). A single head (``num_ws=1``) serves the spaces W and z.

Each head (``MapToStyle``, pSp's GradualStyleBlock) is log2(spatial) stride-2 3×3 convs down to 1×1, then a linear
layer: its parameters depend on the pyramid's channels and ``w_dim`` alone, so the encoder grows by one head per
layer — linearly in num_ws — never with (num_ws·w_dim)² as one dense layer onto the whole W+ latent would. The head's
last linear layer starts at zero, so an untrained head adds nothing: training starts from the start latent (G(w̄)
for pSp), and a layer that e4e's progressive schedule has not reached yet keeps exactly the start's w.

Differences from the paper, and why:

* Backbone: pSp uses IR-SE50 (ArcFace's ResNet-50 with squeeze-excitation, 3/4/14/3 units per stage) initialised
  from face-recognition weights. No pretrained weights can be had on this project's machines, so the backbone is
  the same family of units from random init, sized by the run's ``width`` (channels at the encoder's input,
  doubling per stage, capped at ``max_width`` when it is positive) with ``units`` per stage — ``IR50_UNITS`` is the
  paper's depth, ``(1, 1, 1, 1)`` the small default.
* Input size: pSp encodes 256-px images for every generator (1024-px FFHQ included); images larger than
  ``MAX_INPUT_SIZE`` (256) are resized to it first, smaller ones are used as they are. The three pyramid levels are
  the last three stages, at 1/4, 1/8, 1/16 of the input (pSp's 64, 32, 16 px at 256); inputs under 16 px use fewer
  stages, the coarse level always at least 1×1.
* Layer → level: pSp's (layers 0-2 coarse, 3-6 medium, 7+ fine) for num_ws >= 10; the same fractions of num_ws
  (3/18, 7/18) for smaller generators (``style_levels``).
* ``channels``: the input's channels — the images', or twice that for a ReStyle-style encoder that also sees the
  current reconstruction (Alaluf et al.; ``methods.iterative``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_INPUT_SIZE = 256  # pSp encodes 256-px images, whatever the generator's size
PYRAMID_STAGES = 4  # stride-2 stages of the backbone: the coarse level at 1/16 of the input (pSp: 16 px at 256)
IR50_UNITS = (3, 4, 14, 3)  # IR-SE50's units per stage (pSp's backbone)
SMALL_UNITS = (1, 1, 1, 1)
PSP_COARSE_END, PSP_MEDIUM_END, PSP_NUM_WS = 3, 7, 18  # pSp: layers 0-2 coarse, 3-6 medium, 7+ fine (of 18)
SE_REDUCTION = 16
COARSE, MEDIUM, FINE = 0, 1, 2


def style_levels(num_ws: int) -> list[int]:
    """The pyramid level (COARSE, MEDIUM, FINE) each of ``num_ws`` layers is read from: pSp's split for num_ws >= 10
    (its own 14- and 18-layer generators; StyleGAN2 at 64 px has 10), the same fractions of num_ws below."""
    if num_ws < 1:
        raise ValueError(f"num_ws must be positive, got {num_ws}")
    if num_ws >= 10:
        coarse_end, medium_end = PSP_COARSE_END, PSP_MEDIUM_END
    else:
        coarse_end = max(1, round(num_ws * PSP_COARSE_END / PSP_NUM_WS))
        medium_end = max(coarse_end, round(num_ws * PSP_MEDIUM_END / PSP_NUM_WS))
    return [COARSE if i < coarse_end else MEDIUM if i < medium_end else FINE for i in range(num_ws)]


def input_size(image_size: int) -> int:
    return min(image_size, MAX_INPUT_SIZE)


def stage_widths(image_size: int, width: int, max_width: int = 0) -> list[int]:
    """Channels of the backbone's stride-2 stages: ``width`` doubling per stage (pSp with width 64: 64, 128, 256,
    512), capped at ``max_width`` when it is positive; as many stages as the input allows, up to four."""
    stages = min(PYRAMID_STAGES, int(math.log2(input_size(image_size))))
    widths = [width * 2**k for k in range(stages)]
    return [min(w, max_width) for w in widths] if max_width > 0 else widths


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al.): the units of IR-SE50 end with it."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1, bias=False),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class BottleneckIRSE(nn.Module):
    """ArcFace's improved-residual unit: BN → conv3×3 → PReLU → conv3×3 (stride) → BN → SE, plus a shortcut
    (subsampling, or a strided 1×1 conv + BN when the channels change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if in_channels == out_channels:
            self.shortcut = nn.MaxPool2d(1, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.PReLU(out_channels), nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels), SqueezeExcite(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


def backbone_stage(in_channels: int, out_channels: int, units: int) -> nn.Sequential:
    """One stride-2 stage: a downsampling unit, then ``units`` − 1 at the stage's resolution."""
    blocks = [BottleneckIRSE(in_channels, out_channels, 2)]
    blocks += [BottleneckIRSE(out_channels, out_channels, 1) for _ in range(units - 1)]
    return nn.Sequential(*blocks)


class MapToStyle(nn.Module):
    """pSp's map2style (GradualStyleBlock): stride-2 3×3 convs with leaky ReLU from a ``spatial``×``spatial``
    feature map down to 1×1 (a 1×1 conv when it is 1×1 already), then a linear layer to ``w_dim``, started at zero
    (see the module docstring)."""

    def __init__(self, in_channels: int, w_dim: int, spatial: int):
        super().__init__()
        convs = int(math.log2(spatial))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, w_dim, 1) if convs == 0 else
                                   nn.Conv2d(in_channels, w_dim, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(convs - 1):
            layers += [nn.Conv2d(w_dim, w_dim, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(w_dim, w_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(self.convs(features).flatten(1))


class PSPEncoder(nn.Module):
    """Images in [0, 1] (N×channels×image_size²) → offsets N×num_ws×w_dim (see the module docstring)."""

    def __init__(self, *, num_ws: int, w_dim: int, image_size: int, width: int, channels: int, max_width: int = 0,
                 units: tuple[int, ...] = SMALL_UNITS):
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"the pSp encoder needs a power-of-two image_size >= 8, got {image_size}")
        widths = stage_widths(image_size, width, max_width)
        if len(units) < len(widths) or min(units) < 1:
            raise ValueError(f"units needs a positive count for each of the {len(widths)} stages, got {units}")
        self.image_size, self.num_ws, self.w_dim = image_size, num_ws, w_dim
        self.input_layer = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                         nn.PReLU(width))
        ins = [width] + widths[:-1]
        self.stages = nn.ModuleList(backbone_stage(i, o, n) for i, o, n in zip(ins, widths, units[-len(widths):]))
        pyramid = widths[-1]  # the FPN's channels: the coarse level's
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid, 1) for c in widths[-3:-1][::-1])  # medium, then fine
        self.levels = style_levels(num_ws)
        top = input_size(image_size)
        sides = [max(1, top >> (len(widths) - k)) for k in (0, 1, 2)]  # coarse, medium, fine
        self.heads = nn.ModuleList(MapToStyle(pyramid, w_dim, sides[level]) for level in self.levels)

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """The FPN's feature maps [coarse, medium, fine] of images in [0, 1]."""
        side = input_size(self.image_size)
        if x.shape[-1] > side:  # pSp encodes 256-px images
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        x = self.input_layer(x * 2.0 - 1.0)  # [-1, 1], pSp's input range
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        levels = [features[-1]]
        for lateral, c in zip(self.lateral, features[-2:-4:-1]):  # medium, fine: upsample-add
            levels.append(F.interpolate(levels[-1], size=c.shape[-2:], mode="bilinear", align_corners=True)
                          + lateral(c))
        return levels

    def forward(self, x: Tensor, layers: int | None = None) -> Tensor:
        """Offsets N×num_ws×w_dim; ``layers``: run only the first that many heads, the others' offsets are zero (what
        an untrained head gives: e4e's progressive training runs only the heads it trains)."""
        levels = self.pyramid(x)
        layers = self.num_ws if layers is None else max(1, min(layers, self.num_ws))
        offsets = [head(levels[level]) for head, level in zip(self.heads[:layers], self.levels)]
        offsets += [torch.zeros_like(offsets[0])] * (self.num_ws - layers)
        return torch.stack(offsets, dim=1)


class LatentDiscriminator(nn.Module):
    """e4e's latent discriminator (Tov et al., 2021, their ``LatentCodesDiscriminator``): an MLP of ``layers``
    linear layers with leaky ReLU (0.2) scoring one w (N×w_dim → N×1): real when drawn from the mapping network's
    W, fake when it is an encoder's answer. Its loss keeps the encoder's ws where the generator was trained."""

    def __init__(self, w_dim: int, layers: int = 4):
        super().__init__()
        hidden: list[nn.Module] = []
        for _ in range(layers - 1):
            hidden += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*hidden, nn.Linear(w_dim, 1))

    def forward(self, w: Tensor) -> Tensor:
        return self.mlp(w)
