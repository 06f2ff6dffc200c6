"""Methods by name: an explicit registry (no string-resolved globals)."""
from __future__ import annotations

from ganinv.core.errors import GaninvError
from ganinv.methods.aegan import AEGAN
from ganinv.methods.base import Method
from ganinv.methods.bigan import BiGAN
from ganinv.methods.dedgan import DEDGAN
from ganinv.methods.dlsgan import DLSGAN
from ganinv.methods.gan import GAN
from ganinv.methods.iterative import Iterative
from ganinv.methods.optimize import Optimize
from ganinv.methods.psp import PSP
from ganinv.methods.regression import Regression
from ganinv.methods.stylegan import ImportedStyleGANRun
from ganinv.methods.wrapped import WrappedGenerator

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (GAN, AEGAN, Regression, Iterative, PSP, DLSGAN, DEDGAN,
                                                               BiGAN, Optimize, WrappedGenerator, ImportedStyleGANRun)}


def method_class(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise GaninvError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


__all__ = ["METHODS", "Method", "method_class", "GAN", "AEGAN", "Regression", "Iterative", "PSP", "DLSGAN", "DEDGAN",
           "BiGAN", "Optimize", "WrappedGenerator", "ImportedStyleGANRun"]
