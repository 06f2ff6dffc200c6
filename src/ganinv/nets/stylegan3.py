"""The StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", Karras, Aittala, Laine, Härkönen,
Hellsten, Lehtinen & Aila, NeurIPS 2021), re-implemented in plain PyTorch so that NVlabs' released generators can
be loaded without their custom CUDA ops.

The module tree, parameter names, buffer names and shapes are those of NVlabs' ``Generator`` (``G_ema`` of a
snapshot pickle), so its ``state_dict()`` loads here with ``load_state_dict(strict=True)``. Both published
configurations are covered: StyleGAN3-T (``conv_kernel=3``) and StyleGAN3-R (``conv_kernel=1``,
``use_radial_filters=True``, and twice the channels, which is only a matter of ``channel_base``/``channel_max``).

* ``MappingNetwork`` (``mapping.*``): z is normalised to unit second moment, then ``mapping_layers`` equalised-lr
  dense layers with leaky ReLU (lr multiplier 0.01). The tracked average ``w_avg`` drives truncation:
  ``w = w_avg + ψ (w − w_avg)``. It returns one w per sample; the synthesis network broadcasts it.
* ``SynthesisInput`` (``synthesis.input.*``): Fourier features. Fixed random frequencies inside a disc of radius
  ``first_cutoff`` and phases, sampled on a grid of ``sampling_rate + 2·margin`` pixels. An affine layer of the
  first w gives a rotation and translation of that signal (initialised to the identity), composed with the
  user-settable ``transform`` buffer; frequencies pushed out of band by the transform are faded out. A learned
  channel mixing (``weight``) follows.
* ``SynthesisLayer`` (``synthesis.L{i}_{size}_{channels}``, ``num_layers`` of them plus the final ToRGB):
  a modulated conv (``conv_kernel``×``conv_kernel``, or 1×1 for ToRGB; demodulated except ToRGB) whose input is
  divided by √``magnitude_ema``, then the *filtered leaky ReLU*: bias, ×``up`` zero-insertion upsampling and a
  low-pass FIR (``up_filter``), leaky ReLU 0.2 with gain √2 and clamp, a second low-pass FIR (``down_filter``) and
  ×``down`` decimation. Cutoffs, stopbands and sampling rates follow the paper's geometric progression from
  ``first_cutoff`` to ``img_resolution / 2`` over the first ``num_layers − num_critical`` layers; the last
  ``num_critical`` layers are critically sampled. Filters are Kaiser-windowed sinc filters (separable), or, for
  the R config's non-critical down filters, Kaiser-windowed jinc filters (radially symmetric, 2-D).
* The image is the ToRGB output times ``output_scale`` (0.25): ≈[−1, 1], not clamped.

What differs from NVlabs' code:

* Inference only: ``update_emas`` (tracking ``w_avg`` and ``magnitude_ema`` during training) is not implemented;
  the buffers are loaded or stay at their initial values (0 and 1). Gradients flow through every op.
* fp32 only: NVlabs runs its highest-resolution layers in fp16 on CUDA (``num_fp16_res``); they run in fp32 here,
  which equals NVlabs' ``force_fp32=True`` output.
* No class conditioning (``c_dim`` must be 0), and ``mapping`` truncates w for every layer (NVlabs'
  ``truncation_cutoff`` is applied by ``nets.frozen.ImportedStyleGAN``); SG3 has no noise inputs, so
  ``noise_mode`` is accepted and ignored.
* The filtered leaky ReLU is the slow reference path (explicit zero insertion and depthwise convolutions), not the
  fused CUDA kernel; the modulated conv scales the input and output of one shared convolution instead of building
  per-sample kernels, and normalises each sample's styles on its own (NVlabs normalises over the whole batch,
  which only changes rounding) so that every sample is independent of the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError
from ganinv.nets.stylegan2 import (
    MAX_CHANNEL_BASE,
    MAX_CHANNELS,
    MAX_IMG_CHANNELS,
    MAX_LATENT_DIM,
    MAX_MAPPING_LAYERS,
    MAX_RESOLUTION,
    FullyConnectedLayer,
    MappingNetwork,
    checked_bool,
    checked_float,
    checked_int,
    kwargs_dict,
    shown,
    upfirdn2d,
)

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)

# NVlabs kwargs that only matter while training (EMA decay rates) or for mixed precision; they do not change any
# tensor's shape or the fp32 output, so an imported generator may carry them.
_IGNORED_SYNTHESIS_KWARGS = frozenset({"num_fp16_res", "magnitude_ema_beta"})
_IGNORED_MAPPING_KWARGS = frozenset({"w_avg_beta"})
# bounds on the recorded fields (nets.stylegan2 explains the numbers): the published configs use 14 layers, 2
# critical, margin 10, filter size 6, kernels 1 or 3 and ×2 leaky-ReLU upsampling
_SG3_INT_LIMITS = {"z_dim": (1, MAX_LATENT_DIM), "w_dim": (1, MAX_LATENT_DIM), "img_resolution": (4, MAX_RESOLUTION),
                   "img_channels": (1, MAX_IMG_CHANNELS), "mapping_layers": (1, MAX_MAPPING_LAYERS),
                   "channel_base": (1, MAX_CHANNEL_BASE), "channel_max": (1, MAX_CHANNELS), "num_layers": (1, 64),
                   "num_critical": (0, 63), "margin_size": (0, 64), "conv_kernel": (1, 7), "filter_size": (1, 64),
                   "lrelu_upsampling": (1, 8)}


@dataclass(frozen=True)
class StyleGAN3Config:
    """Hyperparameters of a StyleGAN3 generator; field names follow NVlabs' constructor arguments (defaults are
    NVlabs' defaults, i.e. StyleGAN3-T; StyleGAN3-R is ``conv_kernel=1, use_radial_filters=True`` with doubled
    ``channel_base`` and ``channel_max``)."""

    z_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    conv_kernel: int = 3
    use_radial_filters: bool = False
    filter_size: int = 6
    lrelu_upsampling: int = 2
    conv_clamp: float | None = 256

    def __post_init__(self) -> None:
        """Every field typed and bounded (a file records them) before anything is built from them."""
        where, put = "StyleGAN3Config", lambda name, value: object.__setattr__(self, name, value)
        for name, (low, high) in _SG3_INT_LIMITS.items():
            put(name, checked_int(where, name, getattr(self, name), low, high))
        res = self.img_resolution
        for name, (low, high) in {"mapping_lr_multiplier": (1e-6, 1e3), "first_cutoff": (0.5, res),
                                  "first_stopband": (0.5, 4 * res), "last_stopband_rel": (1.0, 16.0),
                                  "output_scale": (-1e6, 1e6)}.items():
            put(name, checked_float(where, name, getattr(self, name), low, high))
        put("conv_clamp", checked_float(where, "conv_clamp", self.conv_clamp, 0.0, 1e6, optional=True))
        put("use_radial_filters", checked_bool(where, "use_radial_filters", self.use_radial_filters))
        # The cutoff progression divides by num_layers - num_critical.
        if self.num_critical >= self.num_layers:
            raise GaninvError(f"StyleGAN3Config needs num_critical < num_layers, got {self.num_critical} and "
                              f"{self.num_layers}")

    @classmethod
    def from_nvlabs_kwargs(cls, init_kwargs: dict) -> StyleGAN3Config:
        """The config of an NVlabs SG3 ``Generator`` from the constructor kwargs its pickle stores
        (``G_ema.init_kwargs``). ``train.py`` passes the synthesis kwargs flat (``channel_base``, ``conv_kernel``,
        ...); a nested ``synthesis_kwargs`` dict is accepted too. Training-only kwargs are ignored; anything else
        unknown is refused rather than silently dropped, since it could change the network."""
        kwargs = dict(kwargs_dict("generator", init_kwargs))
        kwargs.pop("class_name", None)
        c_dim = kwargs.pop("c_dim", 0)
        if checked_int("StyleGAN3 generator", "c_dim", 0 if c_dim is None else c_dim, 0, 2**31) > 0:
            raise GaninvError("class-conditional StyleGAN3 generators (c_dim > 0) are not supported; "
                              "use an unconditional one (c_dim = 0).")
        kwargs.update(kwargs_dict("synthesis", kwargs.pop("synthesis_kwargs", None)))
        mapping = kwargs_dict("mapping", kwargs.pop("mapping_kwargs", None))
        for key in _IGNORED_SYNTHESIS_KWARGS:
            kwargs.pop(key, None)
        for key in _IGNORED_MAPPING_KWARGS:
            mapping.pop(key, None)
        if "num_layers" in mapping:
            kwargs["mapping_layers"] = mapping.pop("num_layers")
        if "lr_multiplier" in mapping:
            kwargs["mapping_lr_multiplier"] = mapping.pop("lr_multiplier")
        unknown = (sorted(shown(k) for k in set(kwargs) - {f.name for f in fields(cls)})
                   + sorted(f"mapping_kwargs.{shown(k)}" for k in mapping))
        if unknown:
            raise GaninvError(f"this StyleGAN3 generator uses options we do not support: {', '.join(unknown[:8])}.")
        missing = sorted({"z_dim", "w_dim", "img_resolution", "img_channels"} - set(kwargs))
        if missing:
            raise GaninvError(f"the StyleGAN3 generator's kwargs lack {', '.join(missing)}.")
        return cls(**{k: _plain(v) for k, v in kwargs.items()})


def _plain(value: Any) -> Any:
    """numpy scalars (as pickled kwargs may hold) → Python numbers, so the config stays JSON-serialisable."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------------------------------------------
# Filters and the filtered leaky ReLU


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> Tensor | None:
    """A Kaiser-windowed low-pass FIR filter: ``None`` for one tap (the identity), a 1-D separable sinc filter, or
    (``radial``) a 2-D radially symmetric jinc filter; ``width`` is the transition band, in the units of ``fs``."""
    import scipy.signal  # deferred: scipy is slow to import; only StyleGAN3's filter design needs it
    import scipy.special  # deferred: as above

    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), dtype=torch.float32)
    # The 2-D analogue of sinc is jinc: J1(2π f_c r) / (π r), whose value at r = 0 is the limit f_c.
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(coords, coords))
    safe_r = np.where(r == 0, 1.0, r)
    jinc = np.where(r == 0, cutoff, scipy.special.j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r))
    # Kaiser window sized for the requested transition band (width relative to Nyquist), applied on both axes.
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = jinc * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def filtered_lrelu(x: Tensor, up_filter: Tensor | None, down_filter: Tensor | None, bias: Tensor, *, up: int,
                   down: int, padding: tuple[int, int, int, int], gain: float, slope: float,
                   clamp: float | None) -> Tensor:
    """The paper's alias-suppressing nonlinearity: bias, upsample by ``up`` with ``up_filter``, leaky
    ReLU × ``gain`` clamped to ±``clamp``, low-pass ``down_filter`` and keep every ``down``-th sample. The
    nonlinearity runs at the higher rate so the harmonics it creates can be filtered out before decimation."""
    x = x + bias.to(x.dtype)[None, :, None, None]
    x = upfirdn2d(x, up_filter, up=up, padding=padding, gain=up**2)  # gain up²: the inserted zeros
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, down_filter, down=down)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool, padding: int,
                     input_gain: Tensor | None = None) -> Tensor:
    """Per-sample modulated (and optionally demodulated) convolution, computed as scale input → one shared conv →
    scale output, which equals NVlabs' per-sample kernel exactly. With demodulation, the kernel (per output channel)
    and the styles (per sample) are first brought to unit RMS, which leaves the demodulated result unchanged in exact
    arithmetic but keeps fp ranges tame; ``input_gain`` divides the input by its tracked RMS."""
    if demodulate:
        weight = weight * weight.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    scale = styles if input_gain is None else styles * input_gain
    out = F.conv2d(x * scale[:, :, None, None], weight, padding=padding)
    if demodulate:  # 1/‖w·s‖ of each output channel of the modulated kernel (input gain excluded, as in NVlabs)
        demod = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        out = out * demod[:, :, None, None]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Modules (names and parameter layout as in NVlabs' networks_stylegan3.py)


class SynthesisInput(nn.Module):
    """Fourier features of the first w: a rotated, translated band-limited signal on a ``size``² grid."""

    def __init__(self, *, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels, self.size = channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # Frequencies uniform-ish in the disc of radius `bandwidth` (NVlabs' recipe), phases uniform in a period.
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand(channels) - 0.5

        self.weight = nn.Parameter(torch.randn(channels, channels))
        # Starts at (cos, sin, tx, ty) = (1, 0, 0, 0): no rotation, no translation.
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3))  # the user's inverse transform of the output image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def _transforms(self, w: Tensor) -> Tensor:
        """N×3×3: rotation (from the affine's normalised (cos, sin)) ∘ translation ∘ the user's transform."""
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(dim=1)
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).view(-1, 3, 3)
        translation = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).view(-1, 3, 3)
        return rotation @ translation @ self.transform.unsqueeze(0)

    def forward(self, w: Tensor) -> Tensor:
        transforms = self._transforms(w)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)  # N×C
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # N×C×2
        # A user transform (e.g. scaling) can push frequencies past the band; fade them out before Nyquist.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)  # N×C

        # Pixel centres in the units of the sampling rate, centred on the image (x along width, y along height).
        coords = (torch.arange(self.size, device=w.device, dtype=torch.float32) + 0.5 - self.size / 2)
        coords = coords / self.sampling_rate
        grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)  # H×W×2 as (x, y)
        x = torch.einsum("hwk,nck->nhwc", grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class _LayerPlan:
    """One synthesis layer's place in the cutoff/sampling-rate progression."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float


def _plan(config: StyleGAN3Config) -> tuple[dict[str, Any], list[_LayerPlan]]:
    """The input's parameters and each layer's, from the paper's geometric progression of cutoffs f_c and minimum
    stopbands f_t (numpy float64, so that sizes and channel counts round exactly as NVlabs' do)."""
    n, res = config.num_layers, config.img_resolution
    last_cutoff = res / 2
    last_stopband = last_cutoff * config.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - config.num_critical), 1)
    cutoffs = config.first_cutoff * (last_cutoff / config.first_cutoff) ** exponents
    stopbands = config.first_stopband * (last_stopband / config.first_stopband) ** exponents
    # Sampling rate: the power of two that holds the stopband (≤ the image's); the transition band fills the rest.
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + config.margin_size * 2
    sizes[-2:] = res  # the last layer and ToRGB work on the image itself, without margin
    channels = np.rint(np.minimum((config.channel_base / 2) / cutoffs, config.channel_max))
    channels[-1] = config.img_channels

    first = {"channels": int(channels[0]), "size": int(sizes[0]), "sampling_rate": float(sampling_rates[0]),
             "bandwidth": float(cutoffs[0])}
    plans = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        plans.append(_LayerPlan(
            name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", is_torgb=idx == n,
            is_critically_sampled=idx >= n - config.num_critical,
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx])))
    return first, plans


class SynthesisLayer(nn.Module):
    """Modulated conv → filtered leaky ReLU (or, for ToRGB, a non-demodulated 1×1 conv and bias)."""

    def __init__(self, plan: _LayerPlan, config: StyleGAN3Config):
        super().__init__()
        self.is_torgb = plan.is_torgb
        self.in_channels, self.out_channels = plan.in_channels, plan.out_channels
        self.in_size, self.out_size = plan.in_size, plan.out_size
        self.conv_kernel = 1 if plan.is_torgb else config.conv_kernel
        self.conv_clamp = config.conv_clamp

        self.affine = FullyConnectedLayer(config.w_dim, plan.in_channels, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(plan.out_channels, plan.in_channels, self.conv_kernel,
                                               self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(plan.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # The nonlinearity runs at lrelu_upsampling × the higher of the two rates (ToRGB has none: rate 1×).
        tmp_rate = max(plan.in_sampling_rate, plan.out_sampling_rate)
        tmp_rate *= 1 if plan.is_torgb else config.lrelu_upsampling
        self.up_factor = _exact_ratio(tmp_rate, plan.in_sampling_rate)
        self.down_factor = _exact_ratio(tmp_rate, plan.out_sampling_rate)
        up_taps = config.filter_size * self.up_factor if self.up_factor > 1 and not plan.is_torgb else 1
        down_taps = config.filter_size * self.down_factor if self.down_factor > 1 and not plan.is_torgb else 1
        down_radial = config.use_radial_filters and not plan.is_critically_sampled
        # A one-tap filter is registered as None, so (as in NVlabs) it is absent from the state dict.
        self.register_buffer("up_filter", design_lowpass_filter(
            up_taps, plan.in_cutoff, plan.in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            down_taps, plan.out_cutoff, plan.out_half_width * 2, tmp_rate, radial=down_radial))

        # Pad (or crop) the upsampled signal so that, after both filters and decimation, out_size samples remain;
        # the low side gets the extra up_factor // 2 so samples sit symmetrically (the paper's Appendix C.3).
        pad_total = (plan.out_size - 1) * self.down_factor + 1
        pad_total -= (plan.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = (pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)
        if self.is_torgb:  # ToRGB is not demodulated, so its equalised-lr gain goes into the styles
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                             input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up_factor,
                              down=self.down_factor, padding=self.padding,
                              gain=1.0 if self.is_torgb else LRELU_GAIN, slope=1.0 if self.is_torgb else LRELU_SLOPE,
                              clamp=self.conv_clamp)


def _exact_ratio(high: float, low: float) -> int:
    ratio = round(high / low)
    if low * ratio != high:
        raise ValueError(f"sampling rates {high} and {low} are not in an integer ratio")
    return ratio


class SynthesisNetwork(nn.Module):
    """ws (N×num_ws×w_dim) → image: Fourier input, ``num_layers`` layers, ToRGB, × ``output_scale``."""

    def __init__(self, config: StyleGAN3Config):
        super().__init__()
        self.w_dim, self.num_ws = config.w_dim, config.num_layers + 2
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.output_scale = config.output_scale
        first, plans = _plan(config)
        self.input = SynthesisInput(w_dim=config.w_dim, **first)
        self.layer_names = [p.name for p in plans]
        for plan in plans:
            setattr(self, plan.name, SynthesisLayer(plan, config))

    def forward(self, ws: Tensor, noise_mode: str = "const") -> Tensor:
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        if ws.ndim == 2:  # one w for every layer
            ws = ws.unsqueeze(1).expand(-1, self.num_ws, -1)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be N×{self.num_ws}×{self.w_dim} (or N×{self.w_dim}), got {tuple(ws.shape)}")
        ws = ws.float().unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w)
        return x * self.output_scale


class StyleGAN3(nn.Module):
    """NVlabs' SG3 ``Generator`` (unconditional, fp32): ``mapping(z, ψ)`` → w, ``synthesis(ws)`` → image in ≈[−1, 1]
    (not clamped). Its state dict is NVlabs' ``G_ema.state_dict()``, key for key."""

    def __init__(self, config: StyleGAN3Config):
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim = config.z_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=config.z_dim, w_dim=config.w_dim, num_layers=config.mapping_layers,
                                      lr_multiplier=config.mapping_lr_multiplier)

    def forward(self, z: Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)
