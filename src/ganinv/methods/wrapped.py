"""The ``wrapped`` method: a user's generator module as a run directory (see ``ganinv.inference.wrap``). It is never
trained here; post-hoc methods take it with ``--generator RUN``."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError
from ganinv.methods.base import MethodOptions, ProvidedGenerator
from ganinv.nets.frozen import ModuleGenerator, build_module


@dataclass(frozen=True)
class WrappedOptions(MethodOptions):
    factory: str = ""  # "pkg.mod:fn", called with no arguments
    image_low: float = -1.0  # the module's output range
    image_high: float = 1.0
    weights: str = ""  # the file the weights came from (provenance; the run keeps its own copy)

    def __post_init__(self):
        if (self.image_low, self.image_high) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise GaninvError(f"image range must be (-1, 1) or (0, 1), got ({self.image_low}, {self.image_high})")


class WrappedGenerator(ProvidedGenerator):
    """A user's generator as a run: ``generate`` only; post-hoc methods take it with ``--generator``."""

    name = "wrapped"
    Options = WrappedOptions
    not_trained_here = ("a wrapped generator is not trained by ganinv; make its run with `ganinv wrap` and train an "
                        "inverter on it with `ganinv train aegan --generator RUN`")

    def __init__(self, config: RunConfig, module: nn.Module | None = None):
        self._module = module
        super().__init__(config)
        self._module = None

    def build_nets(self) -> dict[str, nn.Module]:
        module = self._module if self._module is not None else build_module(self.options.factory)
        return {"generator": ModuleGenerator(module, (self.options.image_low, self.options.image_high))}
