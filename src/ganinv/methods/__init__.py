"""Methods by name: an explicit registry (no string-resolved globals)."""
from __future__ import annotations

from ..errors import GaninvError
from .aegan import AEGAN
from .base import Method
from .bigan import BiGAN
from .dedgan import DEDGAN
from .dlsgan import DLSGAN
from .gan import GAN
from .optimize import Optimize
from .regression import Regression
from .wrapped import WrappedGenerator

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (GAN, AEGAN, Regression, DLSGAN, DEDGAN, BiGAN, Optimize, WrappedGenerator)}


def method_class(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise GaninvError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


__all__ = ["METHODS", "Method", "method_class", "GAN", "AEGAN", "Regression", "DLSGAN", "DEDGAN", "BiGAN", "Optimize", "WrappedGenerator"]
