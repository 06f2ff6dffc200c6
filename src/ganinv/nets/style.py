"""A reduced StyleGAN2-like generator and a residual discriminator with a latent head (DLSGAN (Cho & Krzyzak) §4.1).

The paper trains "StyleGAN2 with a reduced filter size", with the discriminator's minibatch-stddev layer and the
generator's noise inputs removed "so that the encoder encodes one data point as one latent code". These nets are
that family, written for any power-of-two size (tested 16–128 px):

* ``MappingNetwork``: z → w, ``mapping_layers`` equalised-lr dense layers with leaky ReLU 0.2 and a learning-rate
  multiplier of 0.01 (StyleGAN2's mapper lr ×0.01, realised through the equalised-lr parametrisation so that one
  Adam over the whole generator gives the mapper 1 % of the step). Unlike StyleGAN2 the input z is **not**
  pixel-normalised: under DLS the generator's input is z∘s and its per-sample magnitude is information the
  encoder must recover; normalising it away would make some latents unrecoverable by construction.
* ``StyleGenerator``: a learned constant 4×4 input, per resolution two modulated/demodulated 3×3 convs (the first
  after a bilinear ×2 upsampling), no noise inputs, skip-to-RGB outputs (modulated 1×1, no demodulation) summed
  over resolutions and multiplied by 1/√(number of resolutions) so the output starts unsaturated. One w drives
  every layer (no style mixing) — or, in the extended space W+ (``synthesis_wplus``), each of the ``num_ws``
  modulated layers (every ``SynthesisLayer`` and every ``ToRGB``) takes its own w. Images are ``(tanh(y) + 1) / 2``
  (= sigmoid(2y)) of that sum y, so they lie in [0, 1] as at every public boundary; y plays the role of StyleGAN2's
  [-1, 1] image.
* ``ResidualDiscriminator``: StyleGAN2's residual D (1×1 from-RGB, per resolution conv3×3 → conv3×3 → ×½
  average-pool with a 1×1 skip on the pooled input, summed and divided by √2) down to 4×4, then conv3×3, a dense
  layer and two heads: the adversarial logit (N) and the predicted latent (N×latent_dim, linear). No minibatch
  stddev, so each image's outputs depend on that image alone. It takes images in [0, 1] and maps them to
  [-1, 1] (the authors' input range) as its first operation.

Channels: ``width`` at the image resolution, doubling per octave towards 4×4, capped at ``max_width`` (512).
``width=64`` at 128 px gives 64, 128, 256, 512, 512, 512 — the authors' filter sizes. Every weight uses the
equalised learning rate (N(0,1) storage, He constant applied at run time); leaky ReLUs carry StyleGAN2's √2 gain.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
MAPPER_LR_MULTIPLIER = 0.01  # StyleGAN2 (and DLSGAN (Cho & Krzyzak) §4.1): the mapper learns 100× slower


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def check_image_size(image_size: int) -> int:
    """log2 of a power-of-two image size >= 8 (the number of resolutions above the 4×4 start is log2 − 2)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"style nets need a power-of-two image_size >= 8, got {image_size}")
    return int(math.log2(image_size))


def resolution_widths(image_size: int, width: int, max_width: int = 512) -> dict[int, int]:
    """{resolution: channels} from 4×4 up to ``image_size``: ``width`` at the image, doubling per octave down."""
    top = check_image_size(image_size)
    if width < 1 or max_width < 1:
        raise ValueError(f"width and max_width must be positive, got {width} and {max_width}")
    return {2**k: min(width * 2 ** (top - k), max_width) for k in range(2, top + 1)}


def num_ws_for(image_size: int) -> int:
    """How many modulated layers (each a w of W+) a ``StyleGenerator`` of this size has: per resolution r from 4×4
    up, one ToRGB and two SynthesisLayers (one at 4×4) — 3r − 1."""
    resolutions = check_image_size(image_size) - 1
    return 3 * resolutions - 1


class EqualLinear(nn.Module):
    """Dense layer with the equalised learning rate; ``lr_multiplier`` scales the effective step of Adam."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_multiplier if self.bias is not None else None
        out = F.linear(x, self.weight * self.weight_gain, bias)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    """Conv with the equalised learning rate ('same' padding, stride 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(out) if self.activation else out


class MappingNetwork(nn.Module):
    """z (N×latent_dim) → w (N×w_dim): ``num_layers`` dense layers, leaky ReLU, lr multiplier 0.01."""

    def __init__(self, *, latent_dim: int, w_dim: int | None = None, num_layers: int = 8,
                 lr_multiplier: float = MAPPER_LR_MULTIPLIER):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the mapping network needs at least one layer, got {num_layers}")
        w_dim = w_dim or latent_dim
        self.latent_dim, self.w_dim = latent_dim, w_dim
        dims = [latent_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[
            EqualLinear(i, o, lr_multiplier=lr_multiplier, activation=True) for i, o in zip(dims[:-1], dims[1:])
        ])

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's weight (de)modulation, computed as scale-input → shared conv → scale-output, which equals the
    per-sample modulated kernel exactly and keeps every sample independent of the batch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.demodulate = demodulate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        style = self.affine(w)  # N×in
        weight = self.weight * self.weight_gain
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:  # 1/σ of each output channel of the modulated kernel w·style
            sq = weight.square().sum(dim=(2, 3))  # out×in
            demod = torch.rsqrt(style.square() @ sq.t() + 1e-8)  # N×out
            out = out * demod[:, :, None, None]
        return out


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv, bias, leaky ReLU (no noise input); optionally ×2 bilinear upsampling first."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, upsample: bool):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim=w_dim)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.upsample = upsample

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return lrelu(self.conv(x, w) + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, channels: int, *, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim=w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGenerator(nn.Module):
    """z (N×latent_dim) → images N×channels×image_size² in [0, 1] (``(tanh(y) + 1) / 2`` of the RGB skip sum y)."""

    def __init__(self, *, latent_dim: int = 512, image_size: int = 128, width: int = 64, channels: int = 3,
                 mapping_layers: int = 8, w_dim: int | None = None, max_width: int = 512):
        super().__init__()
        widths = resolution_widths(image_size, width, max_width)
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.mapping = MappingNetwork(latent_dim=latent_dim, w_dim=w_dim, num_layers=mapping_layers)
        w_dim = self.mapping.w_dim
        self.const = nn.Parameter(torch.randn(1, widths[4], 4, 4))
        layers = [SynthesisLayer(widths[4], widths[4], w_dim=w_dim, upsample=False)]
        to_rgb = [ToRGB(widths[4], channels, w_dim=w_dim)]
        for res in sorted(widths)[1:]:
            layers += [SynthesisLayer(widths[res // 2], widths[res], w_dim=w_dim, upsample=True),
                       SynthesisLayer(widths[res], widths[res], w_dim=w_dim, upsample=False)]
            to_rgb.append(ToRGB(widths[res], channels, w_dim=w_dim))
        self.layers, self.to_rgb = nn.ModuleList(layers), nn.ModuleList(to_rgb)
        # the skips add one unit-variance term per resolution; 1/√count keeps y near unit scale, so the tanh head
        # starts out of saturation at every size (a constant reparametrisation of the to-RGB weights)
        self.rgb_gain = 1.0 / math.sqrt(len(to_rgb))

    @property
    def num_ws(self) -> int:
        """The number of modulated layers, each of which takes its own w in W+ (``num_ws_for(image_size)``)."""
        return len(self.layers) + len(self.to_rgb)

    def synthesis(self, w: Tensor) -> Tensor:
        """w (N×w_dim) → the signed image y (N×C×H×W, unbounded; [0,1] images are (tanh(y)+1)/2)."""
        return self.synthesis_wplus(w.unsqueeze(1).expand(-1, self.num_ws, -1))

    def synthesis_wplus(self, ws: Tensor) -> Tensor:
        """W+: ws (N×num_ws×w_dim), one w per modulated layer in the order they run — the 4×4 SynthesisLayer, its
        ToRGB, then per resolution the upsampling SynthesisLayer, the second one, their ToRGB — → the signed image
        y, as ``synthesis``. With every ws[:, i] equal to w it is ``synthesis(w)``."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.mapping.w_dim:
            raise ValueError(f"W+ latents must be N×{self.num_ws}×{self.mapping.w_dim}, got {tuple(ws.shape)}")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        rgb = self.to_rgb[0](x, ws[:, 1])
        for k, to_rgb in enumerate(self.to_rgb[1:]):
            first = 2 + 3 * k  # ws of resolution k + 1: upsampling layer, second layer, ToRGB
            x = self.layers[1 + 2 * k](x, ws[:, first])
            x = self.layers[2 + 2 * k](x, ws[:, first + 1])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, ws[:, first + 2])
        return rgb * self.rgb_gain

    def forward(self, z: Tensor) -> Tensor:
        return (torch.tanh(self.synthesis(self.mapping(z))) + 1.0) / 2.0


class ResidualBlock(nn.Module):
    """conv3×3 → conv3×3 → avg-pool ×½, plus a pooled 1×1 skip; the sum divided by √2 (StyleGAN2 'resnet' D)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        main = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (main + skip) / math.sqrt(2.0)


class ResidualDiscriminator(nn.Module):
    """Images in [0, 1] → (adversarial logit [N], predicted latent [N×latent_dim]); no minibatch stddev."""

    def __init__(self, *, image_size: int = 128, width: int = 64, channels: int = 3, latent_dim: int = 512,
                 max_width: int = 512):
        super().__init__()
        widths = resolution_widths(image_size, width, max_width)
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.from_rgb = EqualConv2d(channels, widths[image_size], 1, activation=True)
        self.blocks = nn.Sequential(*[ResidualBlock(widths[res], widths[res // 2])
                                      for res in sorted(widths, reverse=True)[:-1]])
        c4 = widths[4]
        self.conv = EqualConv2d(c4, c4, 3, activation=True)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.adversarial = EqualLinear(c4, 1)
        self.latent = EqualLinear(c4, latent_dim)

    def features(self, x: Tensor) -> Tensor:
        h = self.from_rgb(x * 2.0 - 1.0)  # [0,1] → the authors' [-1,1] pixels
        return self.fc(self.conv(self.blocks(h)).flatten(1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.adversarial(h).squeeze(1), self.latent(h)
