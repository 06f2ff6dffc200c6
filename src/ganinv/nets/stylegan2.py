"""StyleGAN2 generator in plain PyTorch, state-dict compatible with NVlabs' stylegan2-ada-pytorch ``Generator``.

The architecture is that of "Analyzing and Improving the Image Quality of StyleGAN" (Karras, Laine, Aittala,
Hellsten, Lehtinen & Aila, CVPR 2020), config F, as re-trained in "Training Generative Adversarial Networks with
Limited Data" (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, NeurIPS 2020). This is our own implementation of
the maths; it uses no custom CUDA ops, and its parameter/buffer names and shapes are exactly those of the NVlabs
``Generator`` (the ``G_ema`` of a snapshot pickle), so such a state dict loads with ``load_state_dict(strict=True)``:

* ``mapping`` (``MappingNetwork``): z is normalised to unit second moment, then ``mapping_layers`` equalised-lr
  dense layers with leaky ReLU 0.2 (gain √2) and a learning-rate multiplier of 0.01. ``mapping.w_avg`` is the
  running mean of w used for truncation, w' = w_avg + ψ (w − w_avg). Our ``mapping`` returns one w per sample;
  NVlabs broadcasts it to ``num_ws`` copies, which ``forward`` does here.
* ``synthesis`` (``SynthesisNetwork``, architecture 'skip'): blocks ``b4 … b{img_resolution}``. b4 starts from a
  learned constant; every later block has an upsampling modulated 3×3 conv (``conv0``) and a plain one (``conv1``).
  Each modulated conv scales its input channels by a style (an affine map of w, bias initialised to 1), convolves,
  and divides each output channel by the norm of its modulated kernel (demodulation), then adds per-pixel noise
  (``noise_const`` × ``noise_strength``), the bias, leaky ReLU × √2 and an optional clamp to ±``conv_clamp``.
  Every block's ``torgb`` (modulated 1×1, no demodulation) adds to the running image, which is ×2-upsampled with
  the FIR filter [1, 3, 3, 1] between blocks. ``ws`` holds one w per modulated layer: ``num_ws = 2·log2(res) − 2``,
  and each block's torgb shares its w with the next block's conv0 (NVlabs' indexing).
* ×2 upsampling (images and the conv0 inputs) is zero insertion followed by the FIR low-pass filter; for conv0 it is
  computed as a stride-2 transposed conv followed by the filter, the same maths as NVlabs and rosinality.

NVlabs runs the highest ``num_fp16_res`` resolutions in float16; here every layer runs in float32 (NVlabs'
``force_fp32=True``). ``conv_clamp`` only exists to keep those fp16 activations finite, but it is part of the
trained model's maths, so it is applied as configured.

``rosinality_to_nvlabs`` / ``nvlabs_to_rosinality`` rename the g_ema state of rosinality/stylegan2-pytorch (the same
generator, different names and some extra unit dimensions) to and from this layout; ``rosinality_config`` reads the
architecture off its tensor shapes (rosinality keeps no w_avg: pass its ``mean_latent`` or recompute one).
Conditional generators (c_dim > 0), the 'orig'/'resnet' architectures, non-leaky-ReLU activations, kernel sizes
other than 3 and generators without a tracked w_avg are refused by ``StyleGAN2Config.from_nvlabs_kwargs``.

The plain-torch ops — ``setup_filter``, ``upfirdn2d`` (upsample, pad, FIR filter, downsample), ``upsample2d``,
``bias_act`` (bias, activation, gain, clamp), ``normalize_2nd_moment`` and ``modulated_conv2d`` — are public so that
the StyleGAN3 module can share them.
"""
from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.core.errors import GaninvError

LRELU_SLOPE = 0.2
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "lrelu": math.sqrt(2.0)}  # keep unit variance
DEFAULT_RESAMPLE_FILTER = (1.0, 3.0, 3.0, 1.0)
NOISE_MODES = ("const", "none", "random")


# ----------------------------------------------------------------------------------------------- plain-torch ops

def setup_filter(taps: Sequence[float] | Tensor) -> Tensor:
    """A FIR filter normalised to unit DC gain, in NVlabs' buffer layout: 1-D taps become their 2-D outer product
    when there are fewer than 8 of them and stay 1-D (separable) otherwise; a 2-D array stays 2-D."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"a FIR filter must be 1-D or 2-D and non-empty, got shape {tuple(f.shape)}")
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def _padding4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, (x, y) or (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding!r}")


def upfirdn2d(x: Tensor, f: Tensor | None, up: int = 1, down: int = 1, padding: int | Sequence[int] = 0,
              gain: float = 1.0, flip_filter: bool = False) -> Tensor:
    """Upsample by zero insertion, pad (negative = crop; (x0, x1, y0, y1) on the upsampled grid), convolve every
    channel with the FIR filter ``f`` (1-D separable or 2-D; None = identity) scaled by ``gain``, keep every
    ``down``-th pixel. ``flip_filter`` correlates instead of convolving (no difference for symmetric filters)."""
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = _padding4(padding)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])  # a zero after every pixel, in both directions
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [px0, px1, py0, py1])
    # a 1-D filter applies once per axis, so its gain is split as gain^(1/2) per pass
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    if not flip_filter:  # conv2d correlates; a true convolution needs the flipped filter
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f[None, None].expand(c, 1, *f.shape).contiguous()
        return F.conv2d(x, weight, stride=down, groups=c)
    x = F.conv2d(x, f[None, None, None].expand(c, 1, 1, -1).contiguous(), stride=(1, down), groups=c)
    return F.conv2d(x, f[None, None, :, None].expand(c, 1, -1, 1).contiguous(), stride=(down, 1), groups=c)


def _filter_size(f: Tensor) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter."""
    return (f.shape[-1], f.shape[-1]) if f.ndim == 1 else (f.shape[1], f.shape[0])


def upsample2d(x: Tensor, f: Tensor, up: int = 2, gain: float = 1.0) -> Tensor:
    """×``up`` upsampling with the FIR filter ``f``; the output is exactly ``up`` times the input size, and the
    gain up² restores the energy of the inserted zeros."""
    fw, fh = _filter_size(f)
    padding = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=padding, gain=gain * up * up)


def bias_act(x: Tensor, b: Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, alpha: float = LRELU_SLOPE, dim: int = 1) -> Tensor:
    """Add the bias ``b`` along ``dim``, apply ``act`` ('linear', 'relu' or 'lrelu' with slope ``alpha``), multiply
    by ``gain`` (None = the activation's variance-preserving default: √2 for (l)relu, 1 for linear), then clamp to
    ±``clamp`` (None = no clamp) — in that order, as NVlabs' ``bias_act``."""
    if act not in ACTIVATION_GAINS:
        raise ValueError(f"unsupported activation {act!r}; expected one of {sorted(ACTIVATION_GAINS)}")
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    elif act == "relu":
        x = F.relu(x)
    gain = ACTIVATION_GAINS[act] if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale each vector to unit mean square (StyleGAN's 'pixel norm' of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def conv2d_up2(x: Tensor, weight: Tensor, f: Tensor, padding: int) -> Tensor:
    """The conv of the ×2 zero-stuffed input with ``weight`` (O×I×k×k), 'same'-padded by ``padding`` on the
    upsampled grid, followed by the FIR low-pass ``f``: output exactly 2H×2W. The stride-2 transposed conv computes
    the zero-stuffed conv without materialising the zeros; the filter's pads absorb the transposed conv's border
    (negative pads crop)."""
    k = weight.shape[-1]
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    fw, fh = _filter_size(f)
    px0, px1 = padding + (fw + 1) // 2 - (k - 1), padding + (fw - 2) // 2 - (k - 2)
    py0, py1 = padding + (fh + 1) // 2 - (k - 1), padding + (fh - 2) // 2 - (k - 2)
    return upfirdn2d(x, f, padding=(px0, px1, py0, py1), gain=4.0)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True, up: int = 1,
                     padding: int = 0, resample_filter: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
    """StyleGAN2's modulated conv: the kernel ``weight`` (O×I×k×k) scaled per sample by ``styles`` (N×I) on its
    input channels and, with ``demodulate``, divided per output channel by its L2 norm (+1e-8); then ``noise`` is
    added. Computed as scale-input → shared conv → scale-output, which equals the per-sample kernel exactly and keeps
    every sample independent of the batch. ``up`` is 1 or 2 (2 needs ``resample_filter``)."""
    x = x * styles[:, :, None, None].to(x.dtype)
    if up == 1:
        x = F.conv2d(x, weight, padding=padding)
    elif up == 2:
        if resample_filter is None:
            raise ValueError("×2 upsampling needs a resample_filter")
        x = conv2d_up2(x, weight, resample_filter, padding)
    else:
        raise ValueError(f"modulated_conv2d supports up=1 or 2, got {up}")
    if demodulate:
        # Σ_{i,k} (w_oik s_i)² = Σ_i s_i² Σ_k w_oik²: the norms of all N×O modulated kernels in one matmul
        sq = weight.square().sum(dim=(2, 3))  # O×I
        dcoefs = (styles.square() @ sq.t() + 1e-8).rsqrt()  # N×O
        x = x * dcoefs[:, :, None, None]
    if noise is not None:
        x = x + noise
    return x


# ------------------------------------------------------------------------------------------------------ config

# The largest published StyleGANs (1024 px, z/w 512, 8 mapping layers, StyleGAN3-R's 1024 channels) times four:
# every recorded field is checked against these before anything is built, so a small file cannot declare a huge net.
MAX_RESOLUTION = 4096
MAX_LATENT_DIM = 2048
MAX_CHANNELS = 2048
MAX_CHANNEL_BASE = 4 * 65536
MAX_MAPPING_LAYERS = 32
MAX_IMG_CHANNELS = 4
MAX_FILTER_TAPS = 16


def shown(value: Any) -> str:
    """A recorded value in a message: short, whatever it is (a file may put anything where a number belongs)."""
    if isinstance(value, (str, bytes)):
        return repr(value[:24]) + ("…" if len(value) > 24 else "")
    if isinstance(value, (bool, numbers.Number)) or value is None:
        return repr(value)[:24]
    return f"a {type(value).__name__}"


def checked_int(where: str, name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in [low, high], or one line naming the field (no bools, no floats, no strings)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise GaninvError(f"{where}.{name} must be an integer in [{low}, {high}], got {shown(value)}")
    return int(value)


def checked_float(where: str, name: str, value: Any, low: float, high: float, *, optional: bool = False):
    """``value`` as a finite float in [low, high] (or None when ``optional``), else one line naming the field."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise GaninvError(f"{where}.{name} must be a number in [{low:g}, {high:g}], got {shown(value)}")
    return float(value)


def checked_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numbers.Integral)) or int(value) not in (0, 1):
        raise GaninvError(f"{where}.{name} must be true or false, got {shown(value)}")
    return bool(value)


def checked_taps(where: str, value: Any) -> tuple[float, ...]:
    """A 1-D FIR filter's taps (a list, tuple, 1-D tensor or array of at most ``MAX_FILTER_TAPS`` numbers)."""
    if hasattr(value, "ndim") and hasattr(value, "tolist"):  # a tensor or numpy array
        if value.ndim != 1:
            raise GaninvError("only 1-D (separable) resample filters are supported")
        value = value.tolist() if len(value) <= MAX_FILTER_TAPS else value
    if not isinstance(value, (list, tuple)) or not 0 < len(value) <= MAX_FILTER_TAPS:
        raise GaninvError(f"{where}.resample_filter must be 1 to {MAX_FILTER_TAPS} numbers, got {shown(value)}")
    if any(isinstance(tap, (list, tuple)) for tap in value):
        raise GaninvError("only 1-D (separable) resample filters are supported")
    taps = tuple(checked_float(where, "resample_filter", tap, -1e6, 1e6) for tap in value)
    if sum(taps) == 0:
        raise GaninvError(f"the resample filter needs taps with a non-zero sum, got {list(taps)}")
    return taps


def _power_of_two_log2(resolution: int) -> int:
    if resolution < 4 or resolution & (resolution - 1):
        raise GaninvError(f"StyleGAN2 needs a power-of-two img_resolution >= 4, got {resolution}")
    return int(math.log2(resolution))


_SG2_INT_LIMITS = {"z_dim": MAX_LATENT_DIM, "w_dim": MAX_LATENT_DIM, "img_resolution": MAX_RESOLUTION,
                   "img_channels": MAX_IMG_CHANNELS, "mapping_layers": MAX_MAPPING_LAYERS,
                   "channel_base": MAX_CHANNEL_BASE, "channel_max": MAX_CHANNELS}


@dataclass(frozen=True)
class StyleGAN2Config:
    """Everything that fixes the generator's tensors and maths; JSON-serialisable through ``to_dict``.

    ``channels`` (one entry per resolution 4, 8, …, img_resolution), when given, overrides the NVlabs rule
    min(channel_base // res, channel_max) — rosinality's ``channel_multiplier`` needs it. ``resample_filter`` are
    the 1-D taps of the FIR up-sampling filter; ``mapping_layer_features`` is NVlabs' ``layer_features`` (None =
    w_dim); ``use_noise=False`` is a generator without noise inputs (no ``noise_const``/``noise_strength``)."""

    z_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None  # ADA's default training config uses 256
    channels: tuple[int, ...] | None = None
    mapping_layer_features: int | None = None
    resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER
    use_noise: bool = True

    def __post_init__(self) -> None:
        # every field typed and bounded (a file records them); lists (from JSON) become tuples so that configs
        # compare equal and stay hashable
        where, put = "StyleGAN2Config", lambda name, value: object.__setattr__(self, name, value)
        for name, high in _SG2_INT_LIMITS.items():
            put(name, checked_int(where, name, getattr(self, name), 1, high))
        log2 = _power_of_two_log2(self.img_resolution)
        put("mapping_lr_multiplier", checked_float(where, "mapping_lr_multiplier", self.mapping_lr_multiplier,
                                                   1e-6, 1e3))
        put("conv_clamp", checked_float(where, "conv_clamp", self.conv_clamp, 0.0, 1e6, optional=True))
        if self.mapping_layer_features is not None:
            put("mapping_layer_features", checked_int(where, "mapping_layer_features", self.mapping_layer_features,
                                                      1, MAX_LATENT_DIM))
        put("use_noise", checked_bool(where, "use_noise", self.use_noise))
        put("resample_filter", checked_taps(where, self.resample_filter))
        if self.channels is not None:
            if not isinstance(self.channels, (list, tuple)) or len(self.channels) != log2 - 1:
                raise GaninvError(f"StyleGAN2Config.channels needs {log2 - 1} positive entries (resolutions 4 to "
                                  f"{self.img_resolution}), got {shown(self.channels)}")
            put("channels", tuple(checked_int(where, "channels", c, 1, MAX_CHANNELS) for c in self.channels))

    @property
    def block_resolutions(self) -> list[int]:
        return [2**k for k in range(2, _power_of_two_log2(self.img_resolution) + 1)]

    @property
    def num_ws(self) -> int:
        """One w per modulated layer: conv1 + torgb of b4, then conv0 + conv1 per block (the torgbs share)."""
        return 2 * _power_of_two_log2(self.img_resolution) - 2

    def resolution_channels(self) -> dict[int, int]:
        """{resolution: channels} from 4×4 up to the image."""
        if self.channels is not None:
            return dict(zip(self.block_resolutions, self.channels))
        return {res: min(self.channel_base // res, self.channel_max) for res in self.block_resolutions}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleGAN2Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GaninvError(f"unknown StyleGAN2 config entries: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_nvlabs_kwargs(cls, init_kwargs: Mapping[str, Any]) -> StyleGAN2Config:
        """The config of an NVlabs StyleGAN2 ``Generator`` from the constructor kwargs stored in its pickle.

        Accepts stylegan2-ada-pytorch's layout (``synthesis_kwargs={...}``) and the stylegan3 repository's
        ``networks_stylegan2`` layout (synthesis kwargs at the top level, where conv_clamp defaults to 256).
        Refuses what would change the maths we implement; ignores training-only kwargs such as fp16 settings."""
        top = dict(kwargs_dict("generator", init_kwargs))
        top.pop("class_name", None)
        mapping = kwargs_dict("mapping", top.pop("mapping_kwargs", None))
        core = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"}
        clamp_default: float | None
        if "synthesis_kwargs" in top:  # stylegan2-ada-pytorch
            synthesis = kwargs_dict("synthesis", top.pop("synthesis_kwargs"))
            _refuse_unknown("generator", set(top) - core)
            clamp_default = None
        else:  # stylegan3 repo: Generator(..., mapping_kwargs={}, **synthesis_kwargs), SynthesisBlock conv_clamp=256
            synthesis = {k: v for k, v in top.items() if k not in core}
            top = {k: v for k, v in top.items() if k in core}
            clamp_default = 256.0
        missing = [key for key in ("z_dim", "w_dim", "img_resolution", "img_channels") if key not in top]
        if missing:
            raise GaninvError(f"the NVlabs generator kwargs lack {', '.join(missing)}")
        if checked_int("StyleGAN2 generator", "c_dim", _or_zero(top.get("c_dim")), 0, 2**31) > 0:
            raise GaninvError(f"conditional StyleGAN2 generators (c_dim={top['c_dim']}) are not supported")
        if isinstance(top["z_dim"], numbers.Integral) and top["z_dim"] == 0:
            raise GaninvError("StyleGAN2 generators without a z input (z_dim=0) are not supported")
        return cls(z_dim=top["z_dim"], w_dim=top["w_dim"], img_resolution=top["img_resolution"],
                   img_channels=top["img_channels"], **_mapping_fields(mapping),
                   **_synthesis_fields(synthesis, clamp_default))


def is_text(value: Any, text: str) -> bool:
    return isinstance(value, str) and value == text  # never `!=` on what a file recorded (an array compares per item)


def _or_zero(value: Any) -> Any:
    return 0 if value is None else value


def kwargs_dict(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GaninvError(f"the NVlabs {where} kwargs are a {type(value).__name__}, not a dict")
    return dict(value)


def _refuse_unknown(where: str, keys: set) -> None:
    if keys:
        raise GaninvError(f"unsupported NVlabs {where} kwarg(s) {', '.join(sorted(shown(k) for k in keys)[:8])} "
                          "(is this a StyleGAN2 'Generator'?)")


def _mapping_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Our config fields from NVlabs' ``mapping_kwargs`` (typed and bounded by ``StyleGAN2Config``)."""
    # w_avg_beta only sets the training EMA rate; embed_features only matters with labels (c_dim > 0)
    _refuse_unknown("mapping", set(kwargs) - {"num_layers", "lr_multiplier", "layer_features", "activation",
                                              "w_avg_beta", "embed_features"})
    if not is_text(kwargs.get("activation", "lrelu"), "lrelu"):
        raise GaninvError(f"mapping activation {shown(kwargs['activation'])} is not supported (only 'lrelu')")
    if "w_avg_beta" in kwargs and kwargs["w_avg_beta"] is None:
        raise GaninvError("generators without a tracked w_avg (w_avg_beta=None) are not supported")
    out: dict[str, Any] = {}
    if "num_layers" in kwargs:
        out["mapping_layers"] = kwargs["num_layers"]
    if "lr_multiplier" in kwargs:
        out["mapping_lr_multiplier"] = kwargs["lr_multiplier"]
    if kwargs.get("layer_features") is not None:
        out["mapping_layer_features"] = kwargs["layer_features"]
    return out


def _synthesis_fields(kwargs: dict[str, Any], clamp_default: float | None) -> dict[str, Any]:
    """Our config fields from NVlabs' ``synthesis_kwargs`` (SynthesisNetwork, SynthesisBlock and layer kwargs)."""
    harmless = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "use_fp16"}
    supported = {"channel_base", "channel_max", "conv_clamp", "architecture", "resample_filter", "use_noise",
                 "activation", "kernel_size"}
    _refuse_unknown("synthesis", set(kwargs) - harmless - supported)
    if not is_text(kwargs.get("architecture", "skip"), "skip"):
        raise GaninvError(f"StyleGAN2 architecture {shown(kwargs['architecture'])} is not supported (only 'skip')")
    if not is_text(kwargs.get("activation", "lrelu"), "lrelu"):
        raise GaninvError(f"synthesis activation {shown(kwargs['activation'])} is not supported (only 'lrelu')")
    if checked_int("StyleGAN2 synthesis", "kernel_size", kwargs.get("kernel_size", 3), 1, 15) != 3:
        raise GaninvError(f"synthesis kernel_size {kwargs['kernel_size']} is not supported (only 3)")
    out: dict[str, Any] = {"conv_clamp": kwargs.get("conv_clamp", clamp_default)}
    for key in ("channel_base", "channel_max", "use_noise"):
        if key in kwargs:
            out[key] = kwargs[key]
    if kwargs.get("resample_filter") is not None:
        out["resample_filter"] = checked_taps("StyleGAN2 synthesis", kwargs["resample_filter"])
    return out


# ------------------------------------------------------------------------------------------------------ layers

class FullyConnectedLayer(nn.Module):
    """Dense layer with the equalised learning rate: N(0, 1/lr²) storage, He gain × lr applied at run time."""

    def __init__(self, in_features: int, out_features: int, *, activation: str = "linear",
                 lr_multiplier: float = 1.0, weight_init: float = 1.0, bias_init: float | Sequence[float] = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        bias = torch.as_tensor(bias_init, dtype=torch.float32).expand(out_features)
        self.bias = nn.Parameter(bias / lr_multiplier)  # effective bias_init (the gain multiplies by lr)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = x @ (self.weight * self.weight_gain).t()
        return bias_act(x, self.bias * self.bias_gain, act=self.activation)


class MappingNetwork(nn.Module):
    """z (N×z_dim) → w (N×w_dim); holds ``w_avg`` for truncation. StyleGAN3's mapping network is the same."""

    def __init__(self, *, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float,
                 hidden_features: int | None = None):
        super().__init__()
        hidden = hidden_features or w_dim
        dims = [z_dim] + [hidden] * (num_layers - 1) + [w_dim]
        self.z_dim, self.w_dim, self.num_layers = z_dim, w_dim, num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(dims[idx], dims[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be N×{self.z_dim}, got {tuple(z.shape)}")
        x = normalize_2nd_moment(z.to(torch.float32))  # only z's direction matters, as in NVlabs
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)  # w_avg + ψ (w − w_avg)
        return x


class SynthesisLayer(nn.Module):
    """Modulated, demodulated conv (×2 upsampling with ``up=2``), noise, bias, leaky ReLU, clamp."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, up: int,
                 resample_filter: Sequence[float], conv_clamp: float | None, use_noise: bool, kernel_size: int = 3):
        super().__init__()
        self.resolution, self.up, self.use_noise, self.conv_clamp = resolution, up, use_noise, conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        # no weight gain: demodulation divides any constant scale of the kernel out
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const") -> Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                dtype=x.dtype) * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, noise=noise)
        return bias_act(x, self.bias, act="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1×1 conv to the image channels, without demodulation; bias and clamp."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)  # not demodulated, so the He gain matters here

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 ×2 up) → conv1 → torgb added to the ×2-upsampled running image."""

    def __init__(self, in_channels: int, out_channels: int, *, resolution: int, config: StyleGAN2Config):
        super().__init__()
        self.first = in_channels == 0
        self.register_buffer("resample_filter", setup_filter(config.resample_filter))
        layer_kwargs: dict[str, Any] = {"w_dim": config.w_dim, "resolution": resolution,
                                        "resample_filter": config.resample_filter, "conv_clamp": config.conv_clamp,
                                        "use_noise": config.use_noise}
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
        # NVlabs never hands its filter to the non-upsampling conv1, whose (unused) buffer is always the default
        self.conv1 = SynthesisLayer(out_channels, out_channels, up=1,
                                    **{**layer_kwargs, "resample_filter": DEFAULT_RESAMPLE_FILTER})
        self.torgb = ToRGBLayer(out_channels, config.img_channels, w_dim=config.w_dim, conv_clamp=config.conv_clamp)

    @property
    def num_ws(self) -> int:
        """ws this block reads: its convs and its torgb (whose w is the next block's first)."""
        return 2 if self.first else 3

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.conv1(self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1), ws[:, 0], noise_mode)
        else:
            assert x is not None
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, -1])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N×num_ws×w_dim) → image (N×C×H×W), architecture 'skip'."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        self.block_resolutions = config.block_resolutions
        self.num_ws, self.w_dim = config.num_ws, config.w_dim
        channels = config.resolution_channels()
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], resolution=res, config=config)
            setattr(self, f"b{res}", block)

    def forward(self, ws: Tensor, noise_mode: str = "const") -> Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be N×{self.num_ws}×{self.w_dim}, got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_ws], noise_mode)
            w_idx += block.num_ws - 1  # the torgb's w is the next block's conv0 w
        assert img is not None
        return img


class StyleGAN2(nn.Module):
    """z → raw image (≈[-1, 1], not clamped). ``state_dict()`` is that of NVlabs' ``Generator`` (G_ema).

    ``mapping(z, truncation_psi=1.0)`` gives w (N×w_dim, one per sample, not broadcast) and ``synthesis(ws,
    noise_mode="const")`` the image from ws (N×num_ws×w_dim). noise_mode 'const' uses the stored ``noise_const``
    buffers (one latent → one image), 'none' no noise, 'random' fresh noise per call."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim = config.z_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        # registered before mapping, as NVlabs does, so state_dict() lists keys in the same order
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=config.z_dim, w_dim=config.w_dim, num_layers=config.mapping_layers,
                                      lr_multiplier=config.mapping_lr_multiplier,
                                      hidden_features=config.mapping_layer_features)

    def forward(self, z: Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> Tensor:
        w = self.mapping(z, truncation_psi)
        return self.synthesis(w.unsqueeze(1).expand(-1, self.num_ws, -1), noise_mode)


# --------------------------------------------------------------------------- rosinality/stylegan2-pytorch layout

_ROSINALITY_REQUIRED = ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight")


def _rosinality_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """rosinality's shape of a tensor whose NVlabs shape is ``shape``: the same numbers with extra unit axes."""
    return {"same": shape, "lead1": (1, *shape), "scalar": (1,), "noise": (1, 1, *shape),
            "rgb_bias": (1, *shape, 1, 1)}[kind]


def _rosinality_pairs(config: StyleGAN2Config) -> list[tuple[str, str, str]]:
    """(NVlabs key, rosinality key, reshape kind) for every tensor the two layouts share."""
    pairs = []
    for idx in range(config.mapping_layers):  # rosinality's style.0 is the PixelNorm
        pairs += [(f"mapping.fc{idx}.{p}", f"style.{idx + 1}.{p}", "same") for p in ("weight", "bias")]

    def layer(nv: str, ros: str, noise_idx: int) -> list[tuple[str, str, str]]:
        return [(f"{nv}.weight", f"{ros}.conv.weight", "lead1"),
                (f"{nv}.affine.weight", f"{ros}.conv.modulation.weight", "same"),
                (f"{nv}.affine.bias", f"{ros}.conv.modulation.bias", "same"),
                (f"{nv}.noise_strength", f"{ros}.noise.weight", "scalar"),
                (f"{nv}.noise_const", f"noises.noise_{noise_idx}", "noise"),
                (f"{nv}.bias", f"{ros}.activate.bias", "same")]

    def torgb(nv: str, ros: str) -> list[tuple[str, str, str]]:
        return [(f"{nv}.weight", f"{ros}.conv.weight", "lead1"),
                (f"{nv}.affine.weight", f"{ros}.conv.modulation.weight", "same"),
                (f"{nv}.affine.bias", f"{ros}.conv.modulation.bias", "same"),
                (f"{nv}.bias", f"{ros}.bias", "rgb_bias")]

    pairs += [("synthesis.b4.const", "input.input", "lead1")]
    pairs += layer("synthesis.b4.conv1", "conv1", 0) + torgb("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(config.block_resolutions[1:]):
        pairs += layer(f"synthesis.b{res}.conv0", f"convs.{2 * j}", 2 * j + 1)
        pairs += layer(f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        pairs += torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return pairs


def _rosinality_kernels(config: StyleGAN2Config) -> dict[str, Tensor]:
    """rosinality's derived FIR buffers: the normalised 2-D filter ×4 (the ×2 upsampling gain), per up-conv and
    per skip upsampler."""
    taps = torch.tensor(config.resample_filter, dtype=torch.float32)
    kernel = torch.outer(taps, taps)
    kernel = kernel / kernel.sum() * 4
    out = {}
    for j in range(len(config.block_resolutions) - 1):
        out[f"convs.{2 * j}.conv.blur.kernel"] = kernel.clone()
        out[f"to_rgbs.{j}.upsample.kernel"] = kernel.clone()
    return out


def _check_rosinality_state(state: Mapping[str, Tensor]) -> None:
    if "g_ema" in state:
        raise GaninvError("this is a whole rosinality checkpoint; pass its 'g_ema' entry")
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise GaninvError("a rosinality g_ema state dict maps names to tensors; this one holds something else")
    missing = [k for k in _ROSINALITY_REQUIRED if k not in state]
    if missing:
        raise GaninvError(f"not a rosinality/stylegan2-pytorch g_ema state dict: it lacks {', '.join(missing)}")


def _expected_state_shapes(config: StyleGAN2Config) -> dict[str, tuple[int, ...]]:
    """Our state dict's keys (in order) and shapes, from a module built on the meta device (no memory, no maths)."""
    with torch.device("meta"):
        module = StyleGAN2(config)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def rosinality_config(state: Mapping[str, Tensor], *, mapping_lr_multiplier: float = 0.01) -> StyleGAN2Config:
    """The config of a rosinality ``Generator`` read off its g_ema tensor shapes (size, style_dim, n_mlp, channels
    — so any channel_multiplier — and the blur kernel's taps). ``lr_mlp`` is not stored in the tensors: pass it
    as ``mapping_lr_multiplier`` if the model was not trained with rosinality's default 0.01.

    Each width is what most of the tensors that share it say (a conv's in- and out-channels, biases, modulations),
    so a file with one edited tensor gets a config that names that tensor, not one of its neighbours."""
    _check_rosinality_state(state)
    mlp = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d{1,3})\.weight", k)))
    if mlp != list(range(1, len(mlp) + 1)) or len(mlp) > MAX_MAPPING_LAYERS:
        raise GaninvError(f"rosinality mapping layers are not numbered style.1 … style.N with N <= "
                          f"{MAX_MAPPING_LAYERS}")
    num_rgbs = sum(1 for k in state if re.fullmatch(r"to_rgbs\.\d{1,3}\.conv\.weight", k))
    if 2 ** (2 + num_rgbs) > MAX_RESOLUTION:
        raise GaninvError(f"this rosinality generator has {num_rgbs} to-RGB layers, a resolution above "
                          f"{MAX_RESOLUTION}")
    img_channels = _required_dim(state, "to_rgb1.conv.weight", 1)
    if img_channels != 3:
        raise GaninvError(f"rosinality's StyleGAN2 to-RGB has 3 outputs, this one {img_channels} (a SWAGAN?)")
    channels = [_most_common(votes, f"the width of the {2 ** (2 + r)}px layers") for r, votes in
                enumerate(_channel_votes(state, num_rgbs))]
    w_dim = _most_common(_w_dim_votes(state, len(mlp)), "style_dim")
    config = StyleGAN2Config(
        z_dim=_required_dim(state, "style.1.weight", 1), w_dim=w_dim, img_resolution=2 ** (2 + num_rgbs),
        img_channels=img_channels, mapping_layers=len(mlp), mapping_lr_multiplier=mapping_lr_multiplier,
        channels=tuple(channels), resample_filter=_rosinality_taps(state))
    nvlabs_rule = StyleGAN2Config(config.z_dim, config.w_dim, config.img_resolution, img_channels)
    if nvlabs_rule.resolution_channels() == config.resolution_channels():  # channel_multiplier=2: NVlabs' widths
        config = StyleGAN2Config.from_dict({**config.to_dict(), "channels": None})
    return config


def _dim(state: Mapping[str, Tensor], key: str, dim: int) -> int | None:
    tensor = state.get(key)
    return int(tensor.shape[dim]) if isinstance(tensor, Tensor) and tensor.ndim > dim else None


def _required_dim(state: Mapping[str, Tensor], key: str, dim: int) -> int:
    found = _dim(state, key, dim)
    if found is None:
        raise GaninvError(f"rosinality g_ema state dict lacks {key} (or it has fewer than {dim + 1} dimensions)")
    return found


def _channel_votes(state: Mapping[str, Tensor], num_rgbs: int) -> list[list[int | None]]:
    """For each resolution 4, 8, …: the width every tensor that depends on it says it has."""
    def layer(name: str, *, out: bool = True, inp: bool = True) -> list[int | None]:
        votes = [_dim(state, f"{name}.conv.weight", 1), _dim(state, f"{name}.activate.bias", 0)] if out else []
        if inp:
            votes += [_dim(state, f"{name}.conv.weight", 2), _dim(state, f"{name}.conv.modulation.weight", 0),
                      _dim(state, f"{name}.conv.modulation.bias", 0)]
        return votes

    def torgb(name: str) -> list[int | None]:
        return [_dim(state, f"{name}.conv.weight", 2), _dim(state, f"{name}.conv.modulation.weight", 0),
                _dim(state, f"{name}.conv.modulation.bias", 0)]

    rounds = [[_dim(state, "input.input", 1), *layer("conv1"), *torgb("to_rgb1"), *layer("convs.0", out=False)]]
    for j in range(num_rgbs):
        votes = [*layer(f"convs.{2 * j}", inp=False), *layer(f"convs.{2 * j + 1}"), *torgb(f"to_rgbs.{j}")]
        rounds.append(votes + (layer(f"convs.{2 * j + 2}", out=False) if j + 1 < num_rgbs else []))
    return rounds


def _w_dim_votes(state: Mapping[str, Tensor], mapping_layers: int) -> list[int | None]:
    last = f"style.{mapping_layers}"
    return [_dim(state, f"{last}.weight", 0), _dim(state, f"{last}.bias", 0),
            *(_dim(state, key, 1) for key in state if key.endswith("conv.modulation.weight"))]


def _most_common(votes: list[int | None], what: str) -> int:
    counted = Counter(v for v in votes if v is not None)
    if not counted:
        raise GaninvError(f"rosinality g_ema state dict has no tensor that gives {what}")
    return counted.most_common(1)[0][0]


def _rosinality_taps(state: Mapping[str, Tensor]) -> tuple[float, ...]:
    """The 1-D taps behind rosinality's 2-D blur kernel (an outer product, normalised), or the default [1, 3, 3, 1]."""
    kernel = state.get("convs.0.conv.blur.kernel")
    if kernel is None:
        return DEFAULT_RESAMPLE_FILTER
    if not isinstance(kernel, Tensor) or kernel.ndim != 2 or max(kernel.shape) > MAX_FILTER_TAPS:
        raise GaninvError(f"rosinality convs.0.conv.blur.kernel is not a 2-D filter of at most {MAX_FILTER_TAPS} taps")
    kernel = kernel.detach().to(torch.float64).cpu()
    found = kernel.sum(0) / kernel.sum()
    default = torch.tensor(DEFAULT_RESAMPLE_FILTER, dtype=torch.float64)
    if found.shape == default.shape and torch.allclose(found, default / default.sum(), atol=1e-6):
        return DEFAULT_RESAMPLE_FILTER
    return tuple(found.tolist())


def rosinality_to_nvlabs(state: Mapping[str, Tensor], config: StyleGAN2Config,
                         w_avg: Tensor | None = None) -> dict[str, Tensor]:
    """A rosinality g_ema state dict in our (= NVlabs') layout, ready for ``StyleGAN2(config).load_state_dict``.
    rosinality keeps no running w mean: ``w_avg`` is what is given (e.g. its ``mean_latent``), else zeros."""
    _check_rosinality_state(state)
    if not config.use_noise:
        raise GaninvError("rosinality generators always have noise inputs; use a config with use_noise=True")
    expected = _expected_state_shapes(config)
    pairs = _rosinality_pairs(config)
    missing = [ros_key for _, ros_key, _ in pairs if ros_key not in state]
    if missing:
        raise GaninvError(f"rosinality g_ema state dict lacks {', '.join(missing[:4])}"
                          f"{' …' if len(missing) > 4 else ''} (a {config.img_resolution}px config)")
    wrong = [f"{ros_key} has shape {tuple(state[ros_key].shape)}, needs {_rosinality_shape(kind, expected[nv_key])}"
             for nv_key, ros_key, kind in pairs
             if tuple(state[ros_key].shape) != _rosinality_shape(kind, expected[nv_key])]
    if wrong:
        raise GaninvError(f"rosinality tensors do not fit the architecture the others agree on: {'; '.join(wrong[:3])}"
                          f"{f' (and {len(wrong) - 3} more)' if len(wrong) > 3 else ''}")
    out = {nv_key: state[ros_key].detach().reshape(expected[nv_key]).to(torch.float32).clone()
           for nv_key, ros_key, _ in pairs}
    kernels = _rosinality_kernels(config)
    for key, kernel in kernels.items():  # derived buffers: they must be the config's filter, else the maths differ
        if key in state and (state[key].shape != kernel.shape
                             or not torch.allclose(state[key].detach().cpu().float(), kernel, atol=1e-6)):
            raise GaninvError(f"rosinality {key} is not the config's resample filter {list(config.resample_filter)}")
    extra = sorted(set(state) - {ros for _, ros, _ in _rosinality_pairs(config)} - set(kernels))
    if extra:
        raise GaninvError(f"rosinality g_ema state dict has entries the config does not know: {', '.join(extra[:5])}")
    for key in expected:
        if key.endswith(".conv1.resample_filter"):  # unused; NVlabs leaves it at the default (SynthesisBlock)
            out[key] = setup_filter(DEFAULT_RESAMPLE_FILTER)
        elif key.endswith("resample_filter"):
            out[key] = setup_filter(config.resample_filter)
    w_avg = torch.zeros(config.w_dim) if w_avg is None else w_avg.detach().reshape(-1).to(torch.float32).cpu()
    if w_avg.numel() != config.w_dim:
        raise GaninvError(f"w_avg has {w_avg.numel()} entries, the config's w_dim is {config.w_dim}")
    out["mapping.w_avg"] = w_avg.clone()
    return {key: out[key] for key in expected}


def nvlabs_to_rosinality(state: Mapping[str, Tensor], config: StyleGAN2Config) -> dict[str, Tensor]:
    """Our (= NVlabs') state dict in rosinality's g_ema layout, derived blur kernels included, loadable with
    ``strict=True`` into rosinality's ``Generator`` of the same size. rosinality has no w_avg (it is dropped) and
    always has noise: a config without noise inputs gets zero noise weights, which is the same maths."""
    if config.img_channels != 3:
        raise GaninvError(f"rosinality's StyleGAN2 makes 3-channel images, this config {config.img_channels}")
    out: dict[str, Tensor] = {}
    for nv_key, ros_key, kind in _rosinality_pairs(config):
        if nv_key in state:
            tensor = state[nv_key].detach()
        elif not config.use_noise and nv_key.endswith(("noise_strength", "noise_const")):
            res = int(re.search(r"\.b(\d+)\.", nv_key).group(1))  # type: ignore[union-attr]
            tensor = torch.zeros(() if nv_key.endswith("noise_strength") else (res, res))
        else:
            raise GaninvError(f"the StyleGAN2 state dict lacks {nv_key}")
        out[ros_key] = tensor.reshape(_rosinality_shape(kind, tuple(tensor.shape))).clone()
    out.update(_rosinality_kernels(config))
    return out
