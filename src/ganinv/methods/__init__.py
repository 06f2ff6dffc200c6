"""Methods by name: an explicit registry (no string-resolved globals)."""
from __future__ import annotations

from ..errors import GaninvError
from .aegan import AEGAN
from .base import Method
from .dlsgan import DLSGAN
from .gan import GAN
from .regression import Regression

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (GAN, AEGAN, Regression, DLSGAN)}


def method_class(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise GaninvError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


__all__ = ["METHODS", "Method", "method_class", "GAN", "AEGAN", "Regression", "DLSGAN"]
