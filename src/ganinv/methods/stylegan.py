"""The ``stylegan`` method: an imported StyleGAN2 / StyleGAN3 generator as a run directory (see
``ganinv.inference.stylegan``). It is never trained here; post-hoc methods take it with ``--generator RUN``, in z,
W or W+. An NVlabs snapshot's discriminator comes along as the frozen net ``discriminator`` (for the d_features
image term; ``generate`` never uses it).

StyleGAN2: "Analyzing and Improving the Image Quality of StyleGAN" (Karras, Laine, Aittala, Hellsten, Lehtinen &
Aila); its ADA training: "Training Generative Adversarial Networks with Limited Data" (Karras et al.); StyleGAN3:
"Alias-Free Generative Adversarial Networks" (Karras, Aittala, Laine, Härkönen, Hellsten, Lehtinen & Aila).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganinv.core.errors import GaninvError
from ganinv.methods.base import MethodOptions, ProvidedGenerator
from ganinv.nets.frozen import NOISE_MODES, STYLEGAN_ARCHS, ImportedStyleGAN
from ganinv.nets.stylegan2_d import DiscriminatorConfig, StyleGAN2Discriminator


@dataclass(frozen=True)
class StyleGANOptions(MethodOptions):
    arch: str = "stylegan2"  # stylegan2 | stylegan3
    generator: dict[str, Any] = field(default_factory=dict)  # the architecture's config (nets.stylegan2 / stylegan3)
    truncation_psi: float = 1.0  # w = w̄ + ψ(w − w̄) (1: no truncation; NVlabs allows any ψ, negative too)
    truncation_cutoff: int | None = None  # NVlabs': ψ applies to the first this-many ws of G(z) only (None: all)
    noise_mode: str = "const"  # const: the recorded noise inputs; none: no noise — either way one latent, one image
    source: str = ""  # the file it was imported from (provenance)
    source_format: str = ""  # nvlabs-stylegan2 | nvlabs-stylegan3 | rosinality
    discriminator: dict[str, Any] = field(default_factory=dict)  # the snapshot's D (nets.stylegan2_d); {}: none

    def __post_init__(self):
        if self.arch not in STYLEGAN_ARCHS:
            raise GaninvError(f"arch must be one of {', '.join(STYLEGAN_ARCHS)}, got {self.arch!r}")
        if self.noise_mode not in NOISE_MODES:
            raise GaninvError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if isinstance(self.truncation_psi, bool) or not isinstance(self.truncation_psi, (int, float)) \
                or not math.isfinite(self.truncation_psi):
            raise GaninvError(f"truncation_psi must be a finite number, got {self.truncation_psi!r}")
        cutoff = self.truncation_cutoff
        if cutoff is not None and (isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 0):
            raise GaninvError(f"truncation_cutoff must be a whole number >= 0 (or unset: every layer), got {cutoff!r}")
        if not isinstance(self.discriminator, dict):
            raise GaninvError(f"discriminator must be a discriminator config (a dict), got a "
                              f"{type(self.discriminator).__name__}")


class ImportedStyleGANRun(ProvidedGenerator):
    """An imported StyleGAN as a run: ``generate`` only; post-hoc methods take it with ``--generator``."""

    name = "stylegan"
    Options = StyleGANOptions
    not_trained_here = ("an imported StyleGAN is not trained by ganinv; train an inverter on it with "
                        "`ganinv train aegan --generator RUN`")

    def build_nets(self) -> dict[str, nn.Module]:
        o = self.options
        if not o.generator:
            raise GaninvError("a stylegan run is made by `ganinv import stylegan FILE --out RUN` "
                              "(or ganinv.import_stylegan); it cannot be trained from scratch")
        nets: dict[str, nn.Module] = {
            "generator": ImportedStyleGAN(arch=o.arch, config=o.generator, truncation_psi=o.truncation_psi,
                                          noise_mode=o.noise_mode, truncation_cutoff=o.truncation_cutoff)}
        if o.discriminator:  # frozen, never used by generate: the d_features image term reads its feature maps
            discriminator = StyleGAN2Discriminator(DiscriminatorConfig.from_dict(o.discriminator))
            nets["discriminator"] = discriminator.requires_grad_(False).eval()
        return nets
