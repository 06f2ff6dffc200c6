"""Bring your StyleGAN: ``import_stylegan(path)`` turns an NVlabs pickle (stylegan2-ada-pytorch or stylegan3
``network-snapshot-*.pkl``) or a rosinality/stylegan2-pytorch checkpoint (``*.pt`` with ``g_ema``) into a
``stylegan`` run every post-hoc method, application and the web page accept.

Nothing in the file is executed: ``safe_unpickle.read_checkpoint`` reads it as data in bounded time and memory
(NVlabs' persistent objects become records of class name, constructor arguments and tensors; the network source code
stored beside them is ignored; TorchScript archives are refused). The generator is rebuilt by this project's own
pure-PyTorch nets (``nets.stylegan2``, ``nets.stylegan3``) from the constructor arguments (NVlabs) or the tensor
shapes (rosinality), each field typed and bounded by its config class. Before anything is allocated, the shapes the
architecture needs (from a build on the meta device) are compared with the file's tensors — so the net built is no
larger than the file — and a file whose tensors do not fit is refused with the names that differ.

* NVlabs: ``G_ema`` (else ``G``, with a warning); ``w_avg`` comes with it; ψ (and NVlabs' ``truncation_cutoff``)
  are applied by the run. The snapshot's discriminator ``D`` is read the same way (``nets.stylegan2_d``: its
  constructor arguments typed and bounded by ``DiscriminatorConfig``, its tensors checked on the meta device) and
  kept as the run's frozen net ``discriminator``, which the offline perceptual term ``d_features`` reads; a file
  without one imports the generator alone, and a ``D`` of another class is skipped with a warning.
* rosinality: ``g_ema``; its ``latent_avg`` when the file has one (converted official weights do), else w̄ is
  the mean of the mapping network over ``W_AVG_SAMPLES`` fixed normal latents (what rosinality's ``mean_latent``
  computes). Its discriminator ``d`` (rosinality's own layout and names) is not imported.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganinv.core.config import NetConfig, RunConfig, current_versions
from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from ganinv.inference.safe_unpickle import PersistentRecord, read_checkpoint
from ganinv.inference.wrap import DEFAULT_ENCODER_WIDTH, write_generator_run
from ganinv.methods.stylegan import ImportedStyleGANRun, StyleGANOptions
from ganinv.nets.frozen import STYLEGAN_ARCHS
from ganinv.nets.stylegan2 import StyleGAN2Config, rosinality_config, rosinality_to_nvlabs
from ganinv.nets.stylegan2_d import DiscriminatorConfig, StyleGAN2Discriminator
from ganinv.nets.stylegan3 import StyleGAN3Config

W_AVG_SAMPLES = 10_000
ENCODER_MAX_WIDTH = 512  # the encoders trained on an imported run stop doubling there, as StyleGAN's own nets do
NVLABS_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")  # Generator(...)'s first arguments


@dataclasses.dataclass
class ReadDiscriminator:
    """An NVlabs snapshot's ``D``: its config and state dict (NVlabs names)."""

    config: DiscriminatorConfig
    state: dict[str, torch.Tensor]


@dataclasses.dataclass
class ReadGenerator:
    """What a file holds, in this project's terms: the architecture, its config, the state dict (NVlabs names), and
    the snapshot's discriminator when it has one."""

    arch: str
    config: Any
    state: dict[str, torch.Tensor]
    source_format: str
    needs_w_avg: bool = False
    discriminator: ReadDiscriminator | None = None


def read_nvlabs_discriminator(obj: dict, path: Path, clamp_default: float | None) -> ReadDiscriminator | None:
    """The snapshot's ``D`` when it is NVlabs' StyleGAN2 ``Discriminator`` (None when there is no D; a D of another
    class is skipped with a warning). ``clamp_default``: the conv_clamp its repository defaults to."""
    record = obj.get("D")
    if record is None:
        return None
    if not isinstance(record, PersistentRecord) or record.class_name != "Discriminator":
        what = record.class_name if isinstance(record, PersistentRecord) else type(record).__name__
        warnings.warn(f"{path}: its D is a {str(what)[:40]}, not NVlabs' StyleGAN2 Discriminator; importing the "
                      "generator alone (no d_features term on this run)", stacklevel=4)
        return None
    if not all(isinstance(key, str) for key in record.init_kwargs):
        raise GaninvError(f"{path}: D's recorded constructor arguments are not named by strings")
    try:
        config = DiscriminatorConfig.from_nvlabs_kwargs(record.init_args, record.init_kwargs,
                                                        clamp_default=clamp_default)
    except GaninvError as exc:
        raise GaninvError(f"{path}: its discriminator (D): {exc}") from None
    return ReadDiscriminator(config, record.tensors())


def read_nvlabs(obj: dict, path: Path) -> ReadGenerator:
    name = "G_ema" if isinstance(obj.get("G_ema"), PersistentRecord) else "G"
    record = obj.get(name)
    if not isinstance(record, PersistentRecord):
        raise GaninvError(f"{path} has no generator: expected G_ema (or G) in an NVlabs snapshot, found "
                          f"{key_list(obj)}")
    if name == "G":
        warnings.warn(f"{path} has no G_ema; importing G (the raw generator, not its moving average)", stacklevel=3)
    if not all(isinstance(key, str) for key in record.init_kwargs):
        raise GaninvError(f"{path}: {name}'s recorded constructor arguments are not named by strings")
    kwargs = {**dict(zip(NVLABS_POSITIONAL, record.init_args)), **record.init_kwargs}
    synthesis = record.modules.get("synthesis")
    if not isinstance(synthesis, PersistentRecord):
        raise GaninvError(f"{path}: {name} ({record.class_name}) has no synthesis network; is this a StyleGAN2/3 "
                          "generator?")
    # stylegan2-ada-pytorch nests synthesis_kwargs and defaults D's conv_clamp to None; the stylegan3 repo to 256
    discriminator = read_nvlabs_discriminator(obj, path, None if "synthesis_kwargs" in kwargs else 256.0)
    if "input" in synthesis.modules:  # StyleGAN3 starts from Fourier features, StyleGAN2 from a learned constant
        return ReadGenerator("stylegan3", StyleGAN3Config.from_nvlabs_kwargs(kwargs), record.tensors(),
                             "nvlabs-stylegan3", discriminator=discriminator)
    return ReadGenerator("stylegan2", StyleGAN2Config.from_nvlabs_kwargs(kwargs), record.tensors(), "nvlabs-stylegan2",
                         discriminator=discriminator)


def read_rosinality(obj: dict, path: Path) -> ReadGenerator:
    state = obj.get("g_ema", obj)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GaninvError(f"{path}: g_ema is not a state dict of tensors")
    config = rosinality_config(state)
    w_avg = obj.get("latent_avg")
    w_avg = w_avg.reshape(-1) if isinstance(w_avg, torch.Tensor) else None
    return ReadGenerator("stylegan2", config, rosinality_to_nvlabs(state, config, w_avg), "rosinality",
                         needs_w_avg=w_avg is None)


def read_generator(path: str | Path) -> ReadGenerator:
    """The generator inside an NVlabs pickle or a rosinality checkpoint, or ``GaninvError`` saying what the file
    is instead."""
    path = Path(path)
    obj = read_checkpoint(path)
    if not isinstance(obj, dict):
        raise GaninvError(f"{path} holds a {type(obj).__name__}, not a StyleGAN checkpoint (a dict with G_ema or "
                          "g_ema)")
    if any(isinstance(v, PersistentRecord) for v in obj.values()):
        return read_nvlabs(obj, path)
    if "g_ema" in obj or "style.1.weight" in obj:
        return read_rosinality(obj, path)
    raise GaninvError(f"{path} is not a StyleGAN checkpoint ganinv knows: expected an NVlabs snapshot (G_ema) or a "
                      f"rosinality checkpoint (g_ema), found {key_list(obj)}")


def key_list(obj: dict) -> str:
    """A file's top-level keys in a message: the first eight, each short (a file may hold millions)."""
    keys = sorted(str(key)[:40] for key, _ in zip(obj, range(1000)))
    return ", ".join(keys[:8]) + (" …" if len(obj) > 8 else "") if keys else "nothing"


def meta_shapes(build: Callable[[], torch.nn.Module], what: str) -> dict[str, tuple[int, ...]]:
    """The state dict shapes of the net ``build`` makes, built on the meta device (no memory, no maths)."""
    try:
        with torch.device("meta"):
            return {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except (ValueError, ArithmeticError, RuntimeError) as exc:  # a bounded but inconsistent config
        raise GaninvError(f"its recorded {what} cannot be built ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None


def expected_shapes(arch: str, config: Any) -> dict[str, tuple[int, ...]]:
    """The state dict shapes of the generator ``config`` describes (from a build on the meta device)."""
    net_cls, _ = STYLEGAN_ARCHS[arch]
    return meta_shapes(lambda: net_cls(config), f"{arch} architecture")


def check_fit(ours: dict[str, tuple[int, ...]], state: dict[str, torch.Tensor], path: Path,
              what: str = "generator") -> None:
    """Refuse, naming the tensors, a file whose tensors are not exactly the ones the architecture needs."""
    missing = [k for k in ours if k not in state]
    unexpected = [str(k)[:80] for k in state if k not in ours]
    wrong = [k for k in ours if k in state and tuple(state[k].shape) != tuple(ours[k])]
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise GaninvError(f"{path}: the file's {what} does not fit its recorded architecture ({'; '.join(parts)})")


def load_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str = "generator") -> None:
    """Load the file's tensors strictly, naming what does not fit."""
    ours = net.state_dict()
    check_fit({k: tuple(v.shape) for k, v in ours.items()}, state, path, what)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise GaninvError(f"{path}: the {what}'s weights contain NaN or infinite values ({', '.join(bad[:4])})")
    net.load_state_dict({k: v.to(ours[k].dtype) for k, v in state.items()})


def read_fitting_generator(path: Path) -> ReadGenerator:
    """``read_generator``, then the file's tensors checked against the architecture's shapes before any net is
    built; every refusal one line that names the file."""
    try:
        found = read_generator(path)
        check_fit(expected_shapes(found.arch, found.config), found.state, path)
        if found.discriminator is not None:
            d = found.discriminator
            check_fit(meta_shapes(lambda: StyleGAN2Discriminator(d.config), "discriminator"), d.state, path,
                      "discriminator (D)")
    except GaninvError as exc:
        raise GaninvError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
    return found


def mean_w(generator, samples: int = W_AVG_SAMPLES) -> torch.Tensor:
    """w̄ over fixed normal latents (the mapping without truncation)."""
    z = torch.randn(samples, generator.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.cat([generator.mapping(chunk, truncation_psi=1.0) for chunk in z.split(1000)]).mean(0)


def import_stylegan(path: str | Path, out: str | Path | None = None, *, truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None, noise_mode: str = "const", width: int = DEFAULT_ENCODER_WIDTH,
                    seed: int = 0) -> InversionModel:
    """An NVlabs StyleGAN2-ADA / StyleGAN3 pickle or a rosinality checkpoint as an ``InversionModel`` of the
    ``stylegan`` method (written as a run directory at ``out`` when given). ``truncation_psi``: w = w̄ + ψ(w − w̄)
    (any finite ψ, as NVlabs); ``truncation_cutoff``: ψ applies only to the first that many ws of G(z) (NVlabs'
    option; None: every layer); ``noise_mode``: "const" (the recorded noise) or "none"; ``width``: of the encoders
    post-hoc methods train on it."""
    path = Path(path)
    options = StyleGANOptions(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                              noise_mode=noise_mode)  # the user's options are checked before the file is read
    found = read_fitting_generator(path)
    cfg = found.config
    d = found.discriminator
    options = dataclasses.replace(options, arch=found.arch, generator=dataclasses.asdict(cfg),
                                  source=str(path.resolve()), source_format=found.source_format,
                                  discriminator=d.config.to_dict() if d is not None else {})
    net = NetConfig(image_size=cfg.img_resolution, channels=cfg.img_channels, width=width, latent_dim=cfg.z_dim,
                    prior="normal", max_width=ENCODER_MAX_WIDTH)
    config = RunConfig(method=ImportedStyleGANRun.name, seed=seed, options=dataclasses.asdict(options), net=net,
                       versions=current_versions())
    method = ImportedStyleGANRun(config)
    generator = method.nets["generator"]
    load_weights(generator.generator, found.state, path)
    if found.needs_w_avg:
        generator.generator.get_buffer("mapping.w_avg").copy_(mean_w(generator.generator))
    if d is not None:
        load_weights(method.nets["discriminator"], d.state, path, "discriminator (D)")
    generator.eval()
    model = InversionModel(method)
    if out is not None:
        write_generator_run(model, out)
    return model
