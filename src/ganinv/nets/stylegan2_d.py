"""StyleGAN2 discriminator in plain PyTorch, state-dict compatible with NVlabs' ``Discriminator`` (the ``D`` of a
stylegan2-ada-pytorch or stylegan3 ``network-snapshot-*.pkl``; the stylegan3 repository's ``networks_stylegan2``
holds the same class).

The architecture is that of "Analyzing and Improving the Image Quality of StyleGAN" (Karras et al., CVPR 2020), as
re-trained in "Training Generative Adversarial Networks with Limited Data" (Karras et al., NeurIPS 2020). This is our
own implementation of the maths, without custom CUDA ops; parameter/buffer names and shapes are NVlabs', so the
file's ``D`` loads with ``load_state_dict(strict=True)``:

* blocks ``b{img_resolution} … b8`` (``DiscriminatorBlock``), each halving the resolution: a 1×1 ``fromrgb`` (the
  first block only; every block in 'skip'), a 3×3 ``conv0``, a 3×3 ``conv1`` that downsamples ×2 (FIR low-pass
  [1, 3, 3, 1], then stride 2) and, in 'resnet' (NVlabs' default), a 1×1 ``skip`` that downsamples the same way;
  the two branches are summed, each scaled by √½. 'orig' has no skip path; 'skip' feeds the ×2-downsampled image to
  every block's ``fromrgb``.
* the epilogue ``b4`` (``DiscriminatorEpilogue``): the minibatch standard deviation (``MinibatchStdLayer``: groups
  of ``mbstd_group_size`` samples, ``mbstd_num_channels`` extra feature maps), a 3×3 ``conv``, ``fc`` and ``out``
  (one logit per image).

Every conv and dense layer has the equalised learning rate (weights stored N(0, 1), He gain applied at run time)
and leaky ReLU 0.2 × √2, clamped to ±``conv_clamp`` where NVlabs clamps (fromrgb, conv0, conv1, the epilogue's
conv; scaled by the branch gain). NVlabs runs the highest resolutions in float16; here everything is float32.
Images enter in [-1, 1], as NVlabs' training loop feeds them. Conditional discriminators (c_dim > 0) are refused
by ``DiscriminatorConfig.from_nvlabs_kwargs``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.nets.stylegan2 import (
    ACTIVATION_GAINS,
    DEFAULT_RESAMPLE_FILTER,
    MAX_CHANNEL_BASE,
    MAX_CHANNELS,
    MAX_IMG_CHANNELS,
    MAX_RESOLUTION,
    FullyConnectedLayer,
    is_text,
    bias_act,
    checked_float,
    checked_int,
    checked_taps,
    kwargs_dict,
    setup_filter,
    shown,
    upfirdn2d,
)

ARCHITECTURES = ("resnet", "skip", "orig")
MAX_MBSTD_GROUP = 4096  # NVlabs' presets use 4 to 32; a group larger than the batch is the whole batch anyway
MAX_MBSTD_CHANNELS = 64
NVLABS_D_POSITIONAL = ("c_dim", "img_resolution", "img_channels")  # Discriminator(...)'s first arguments
_D_INT_LIMITS = {"img_resolution": MAX_RESOLUTION, "img_channels": MAX_IMG_CHANNELS,
                 "channel_base": MAX_CHANNEL_BASE, "channel_max": MAX_CHANNELS}


# ------------------------------------------------------------------------------------------------------ config

@dataclass(frozen=True)
class DiscriminatorConfig:
    """Everything that fixes the discriminator's tensors and maths; JSON-serialisable through ``to_dict``.
    ``mbstd_group_size`` None = the whole minibatch is one group; ``mbstd_num_channels`` 0 = no minibatch std."""

    img_resolution: int
    img_channels: int
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1

    def __post_init__(self) -> None:
        where, put = "DiscriminatorConfig", lambda name, value: object.__setattr__(self, name, value)
        for name, high in _D_INT_LIMITS.items():
            put(name, checked_int(where, name, getattr(self, name), 1, high))
        if self.img_resolution < 8 or self.img_resolution & (self.img_resolution - 1):
            raise GaninvError(f"a StyleGAN2 discriminator needs a power-of-two img_resolution >= 8, got "
                              f"{self.img_resolution}")
        if not any(is_text(self.architecture, arch) for arch in ARCHITECTURES):
            raise GaninvError(f"{where}.architecture must be one of {', '.join(ARCHITECTURES)}, got "
                              f"{shown(self.architecture)}")
        put("conv_clamp", checked_float(where, "conv_clamp", self.conv_clamp, 0.0, 1e6, optional=True))
        put("resample_filter", checked_taps(where, self.resample_filter))
        if self.mbstd_group_size is not None:
            put("mbstd_group_size", checked_int(where, "mbstd_group_size", self.mbstd_group_size, 1, MAX_MBSTD_GROUP))
        put("mbstd_num_channels", checked_int(where, "mbstd_num_channels", self.mbstd_num_channels, 0,
                                              MAX_MBSTD_CHANNELS))
        last = self.resolution_channels()[4]
        if self.mbstd_num_channels and last % self.mbstd_num_channels:
            raise GaninvError(f"{where}: the 4px layer's {last} channels do not split into mbstd_num_channels="
                              f"{self.mbstd_num_channels} groups")

    @property
    def block_resolutions(self) -> list[int]:
        """The blocks' resolutions, from the image down to 8 (the epilogue is b4)."""
        return [2**k for k in range(int(math.log2(self.img_resolution)), 2, -1)]

    def resolution_channels(self) -> dict[int, int]:
        """{resolution: channels}: NVlabs' rule min(channel_base // res, channel_max), 4 px to the image."""
        return {res: min(self.channel_base // res, self.channel_max) for res in [*self.block_resolutions, 4]}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiscriminatorConfig:
        unknown = sorted(str(k)[:40] for k in set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise GaninvError(f"unknown StyleGAN2 discriminator config entries: {', '.join(unknown[:8])}")
        return cls(**data)

    @classmethod
    def from_nvlabs_kwargs(cls, init_args: Sequence[Any], init_kwargs: Mapping[str, Any], *,
                           clamp_default: float | None = None) -> DiscriminatorConfig:
        """The config of an NVlabs ``Discriminator`` from the constructor arguments stored in its pickle.
        ``clamp_default``: the repository's conv_clamp default (stylegan2-ada-pytorch: None; stylegan3: 256), for a
        record that leaves it out. Refuses what would change the maths; ignores training-only settings (fp16,
        channels-last, Freeze-D)."""
        top = {**dict(zip(NVLABS_D_POSITIONAL, init_args)), **kwargs_dict("discriminator", init_kwargs)}
        top.pop("class_name", None)
        _refuse_keys("discriminator", set(top) - {*NVLABS_D_POSITIONAL, "architecture", "channel_base",
                                                  "channel_max", "num_fp16_res", "conv_clamp", "cmap_dim",
                                                  "block_kwargs", "mapping_kwargs", "epilogue_kwargs"})
        missing = [key for key in ("img_resolution", "img_channels") if key not in top]
        if missing:
            raise GaninvError(f"the NVlabs discriminator kwargs lack {', '.join(missing)}")
        c_dim = top.get("c_dim")
        if checked_int("StyleGAN2 discriminator", "c_dim", 0 if c_dim is None else c_dim, 0, 2**31) > 0:
            raise GaninvError(f"conditional StyleGAN2 discriminators (c_dim={c_dim}) are not supported")
        kwargs_dict("discriminator mapping", top.get("mapping_kwargs"))  # only used with labels: c_dim > 0
        out = {key: top[key] for key in ("img_resolution", "img_channels", "architecture", "channel_base",
                                         "channel_max") if key in top}
        out["conv_clamp"] = top.get("conv_clamp", clamp_default)
        return cls(**out, **_block_fields(kwargs_dict("discriminator block", top.get("block_kwargs"))),
                   **_epilogue_fields(kwargs_dict("discriminator epilogue", top.get("epilogue_kwargs"))))


def _refuse_keys(where: str, keys: set) -> None:
    if keys:
        raise GaninvError(f"unsupported NVlabs {where} kwarg(s) {', '.join(sorted(shown(k) for k in keys)[:8])} "
                          "(is this a StyleGAN2 'Discriminator'?)")


def _check_activation(where: str, kwargs: Mapping[str, Any]) -> None:
    if not is_text(kwargs.get("activation", "lrelu"), "lrelu"):
        raise GaninvError(f"{where} activation {shown(kwargs['activation'])} is not supported (only 'lrelu')")


def _block_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Our fields from NVlabs' ``block_kwargs`` (fp16 layout and Freeze-D change no maths, nor any tensor's name)."""
    _refuse_keys("discriminator block", set(kwargs) - {"activation", "resample_filter", "fp16_channels_last",
                                                       "freeze_layers"})
    _check_activation("discriminator block", kwargs)
    if kwargs.get("resample_filter") is None:
        return {}
    return {"resample_filter": checked_taps("StyleGAN2 discriminator", kwargs["resample_filter"])}


def _epilogue_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Our fields from NVlabs' ``epilogue_kwargs``."""
    _refuse_keys("discriminator epilogue", set(kwargs) - {"activation", "mbstd_group_size", "mbstd_num_channels"})
    _check_activation("discriminator epilogue", kwargs)
    return {key: kwargs[key] for key in ("mbstd_group_size", "mbstd_num_channels") if key in kwargs}


# ------------------------------------------------------------------------------------------------------ layers

def conv2d_down(x: Tensor, weight: Tensor, f: Tensor, down: int, padding: int) -> Tensor:
    """The conv of ``x`` with ``weight`` ('same'-padded by ``padding``), ×``down``-downsampled with the FIR low-pass
    ``f`` as NVlabs' conv2d_resample does it: a 1×1 kernel filters and subsamples first, then convolves; a larger one
    filters (the pads of both folded into one) and convolves with stride ``down``."""
    if down == 1:
        return F.conv2d(x, weight, padding=padding)
    fw = f.shape[-1]
    lo, hi = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
    if weight.shape[-1] == 1:
        return F.conv2d(upfirdn2d(x, f, down=down, padding=(lo, hi, lo, hi)), weight)
    return F.conv2d(upfirdn2d(x, f, padding=(lo, hi, lo, hi)), weight, stride=down)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """×``down`` downsampling with the FIR filter ``f``; the output is exactly 1/``down`` of the input size."""
    fw = f.shape[-1]
    return upfirdn2d(x, f, down=down, padding=((fw - down + 1) // 2, (fw - down) // 2,
                                               (fw - down + 1) // 2, (fw - down) // 2))


class Conv2dLayer(nn.Module):
    """Equalised-lr conv (optionally ×2 down), bias, activation × gain, clamp. ``forward(x, gain)`` scales the
    activation's gain and the clamp by ``gain`` (the resnet branches' √½)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", down: int = 1, resample_filter: Sequence[float] = DEFAULT_RESAMPLE_FILTER,
                 conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATION_GAINS[activation]
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        x = conv2d_down(x, self.weight * self.weight_gain, self.resample_filter, self.down, self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class DiscriminatorBlock(nn.Module):
    """One resolution, halved: (fromrgb) → conv0 → conv1 ↓2, plus the ↓2 1×1 skip in 'resnet'.
    ``forward(x, img) -> (x, img)``: ``x`` None for the first block; ``img`` (the image at this block's
    resolution) is read by fromrgb and, in 'skip', passed on downsampled (else None)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, *, resolution: int,
                 config: DiscriminatorConfig):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, config.architecture
        self.register_buffer("resample_filter", setup_filter(config.resample_filter))
        clamp = config.conv_clamp
        if in_channels == 0 or self.architecture == "skip":
            self.fromrgb = Conv2dLayer(config.img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                 resample_filter=config.resample_filter, conv_clamp=clamp)
        if self.architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2,
                                    resample_filter=config.resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        assert x is not None
        if self.architecture == "resnet":
            half = math.sqrt(0.5)  # each branch at half the variance: the sum keeps unit variance
            y = self.skip(x, gain=half)
            return y + self.conv1(self.conv0(x), gain=half), img
        return self.conv1(self.conv0(x)), img


class MinibatchStdLayer(nn.Module):
    """Appends ``num_channels`` maps: the standard deviation of each feature over a group of ``group_size``
    samples (None: the whole batch), averaged over its channel share and the pixels — which lets D see variety.
    Sample i belongs to group i mod (N / G), as NVlabs splits the batch."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        if n % g:
            raise ValueError(f"the minibatch std layer needs a batch that is a multiple of its group size {g}, got {n}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # n/g × F
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 features → one logit: (fromrgb in 'skip') → minibatch std → conv → fc → out."""

    def __init__(self, in_channels: int, *, config: DiscriminatorConfig):
        super().__init__()
        self.in_channels, self.architecture = in_channels, config.architecture
        if self.architecture == "skip":
            self.fromrgb = Conv2dLayer(config.img_channels, in_channels, 1, activation="lrelu")
        extra = config.mbstd_num_channels
        self.mbstd = MinibatchStdLayer(config.mbstd_group_size, extra) if extra > 0 else None
        self.conv = Conv2dLayer(in_channels + extra, in_channels, 3, activation="lrelu", conv_clamp=config.conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * 4 * 4, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: Tensor, img: Tensor | None) -> Tensor:
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(self.fc(self.conv(x).flatten(1)))


class StyleGAN2Discriminator(nn.Module):
    """Images in [-1, 1] (N×C×R×R) → logits (N×1). ``state_dict()`` is that of NVlabs' ``Discriminator``.
    ``blocks`` lists the DiscriminatorBlocks from the image's resolution down (the d_features term's maps)."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        channels = config.resolution_channels()
        for res in config.block_resolutions:
            in_channels = channels[res] if res < config.img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], resolution=res, config=config)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(channels[4], config=config)

    @property
    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.config.block_resolutions]

    def forward(self, img: Tensor) -> Tensor:
        shape = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != shape:
            raise ValueError(f"images must be N×{'×'.join(map(str, shape))}, got {tuple(img.shape)}")
        x, img = None, img.to(torch.float32)
        for block in self.blocks:
            x, img = block(x, img)
        assert x is not None
        return self.b4(x, img)
