"""The d_features image term as an encoder method's option: the generator run's discriminator, frozen, kept as the
encoder run's own net ``discriminator``.

    ganinv train psp --generator RUN -o d_features=0.5            (pSp's weight of the term)
    ganinv train iterative --generator RUN -o loss=mse+d_features  (ReStyle's named loss)

The term (``ganinv.losses.features``) compares images in the feature maps of a discriminator trained on the very
images being inverted — an offline perceptual loss. An encoder method (``methods.encoder``) binds the discriminator of
its ``--generator`` run: runs of gan, dlsgan, dedgan and bigan keep theirs, and so do stylegan runs imported from
NVlabs snapshots; a wrapped generator, or a StyleGAN imported without its D, has none, and asking for the term on it
is refused in one line before anything is written (``check_run_has_discriminator``).

Why the encoder run saves its own frozen copy (``discriminator_method`` / ``discriminator_options`` record the
generator run's method and options, which rebuild the net; the weights go to the run's weights file): the run stays
self-contained — ``ganinv.load(RUN)`` and resuming need nothing but its path, as they already do for the frozen
generator. It costs the discriminator's size on disk once per encoder run (a DCGAN's: under a megabyte; NVlabs'
1024 px StyleGAN2 D: about 120 MB), the same trade the frozen generator makes.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import nn

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import read_config, weights_file
from ganinv.losses.features import HAVE_DISCRIMINATORS
from ganinv.methods.base import Method
from ganinv.methods.bigan import BiGAN
from ganinv.methods.dedgan import DEDGAN
from ganinv.methods.dlsgan import DLSGAN
from ganinv.methods.gan import GAN
from ganinv.methods.stylegan import ImportedStyleGANRun

DISCRIMINATOR = "discriminator"  # the net's name, in the generator run and in the encoder run alike
WITH_DISCRIMINATOR: dict[str, type[Method]] = {cls.name: cls for cls in (GAN, DLSGAN, DEDGAN, BiGAN,
                                                                           ImportedStyleGANRun)}


def no_discriminator(source: str, nets: list[str]) -> GaninvError:
    """The one line for a generator run without a discriminator, listing what it has."""
    return GaninvError(f"the d_features image term needs the generator run's discriminator and {source} has none "
                       f"(its nets: {', '.join(sorted(nets)) or 'none'}); {HAVE_DISCRIMINATORS}")


def run_net_names(run: str | Path) -> list[str]:
    """The nets a run's newest weights file holds, read from its header alone (no tensor is loaded)."""
    try:
        with safe_open(str(weights_file(run)), framework="pt") as f:
            keys = list(f.keys())
    except GaninvError:
        raise
    except Exception as exc:  # safetensors' error type moved between releases; any failure here is damage
        raise GaninvError(f"{weights_file(run)} is truncated or corrupt ({exc})") from exc
    return sorted({key.partition(".")[0] for key in keys} - {"extra"})


def check_run_has_discriminator(run: str | Path) -> None:
    """Refuse, building nothing, a generator run whose discriminator the d_features term cannot bind."""
    method = read_config(run).method
    nets = run_net_names(run)
    if DISCRIMINATOR not in nets or method not in WITH_DISCRIMINATOR:
        raise no_discriminator(f"the {method} run {run}", nets)


def recorded_discriminator(config: RunConfig, method: str, options: Mapping[str, Any]) -> nn.Module:
    """The generator run's discriminator, frozen and with its initial weights, rebuilt by that run's method from what
    the encoder run recorded (``method``, ``options``; the nets config is the one the encoder run inherited)."""
    if method not in WITH_DISCRIMINATOR:
        raise GaninvError(f"discriminator_method must be one of {', '.join(WITH_DISCRIMINATOR)}, got {method!r}")
    own = config.replace(method=method, options=dict(options), generator=None, generator_run=None,
                         generator_fingerprint=None)
    nets = WITH_DISCRIMINATOR[method](own).nets
    if DISCRIMINATOR not in nets:
        raise no_discriminator(f"a {method} run with these options", list(nets))
    return nets[DISCRIMINATOR].requires_grad_(False).eval()


def copied_discriminator(config: RunConfig, generator_config: RunConfig,
                         generator_nets: Mapping[str, nn.Module], source: str) -> nn.Module:
    """A frozen copy of the generator run's discriminator, rebuilt as ``recorded_discriminator`` will rebuild it on
    load (so a run that trains can be loaded again), with that run's weights; one line when it has none."""
    discriminator = generator_nets.get(DISCRIMINATOR)
    if discriminator is None or generator_config.method not in WITH_DISCRIMINATOR:
        raise no_discriminator(source, list(generator_nets))
    net = recorded_discriminator(config, generator_config.method, generator_config.options)
    net.load_state_dict(getattr(discriminator, "module", discriminator).state_dict())
    return net


def check_recorded(method: str, options: Any) -> None:
    """The recorded fields' types: what a hand-edited config.json could get wrong."""
    if method not in ("", *WITH_DISCRIMINATOR):
        raise GaninvError(f"discriminator_method must be empty (filled in when the run is made) or one of "
                          f"{', '.join(WITH_DISCRIMINATOR)}, got {method!r}")
    if not isinstance(options, dict):
        raise GaninvError(f"discriminator_options must be the generator run's options (a dict), got a "
                          f"{type(options).__name__}")
