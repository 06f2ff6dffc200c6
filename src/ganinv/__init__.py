"""ganinv: GAN inversion — encoders for your generator, GANs born invertible, and applications of their latents.

The public API::

    ganinv.load(run_dir, device="cpu")         any run directory, by path → InversionModel
    ganinv.wrap_generator(module, prior, …)    any nn.Module (latents → images) as an InversionModel
    ganinv.InversionModel                      generate / invert / reconstruct, the one seam every app uses
    ganinv.METHODS                             the registered methods, by name
    ganinv.__version__

Everything but ``__version__`` loads torch on first use (PEP 562), so ``import ganinv`` and ``ganinv --help`` stay
fast.
"""
from ganinv.core import __version__

__all__ = ["load", "wrap_generator", "InversionModel", "METHODS", "__version__"]


def load(run_dir, device="cpu"):
    """Load any run directory by path: an ``InversionModel`` with .generate, .invert, .reconstruct, .prior."""
    from ganinv.inference.model import InversionModel  # deferred: torch is heavy (see the module docstring)

    return InversionModel.load(run_dir, device=device)


def wrap_generator(module, prior="uniform", image_range=(-1, 1), **kwargs):
    """Any ``nn.Module`` (latents → images) as an ``InversionModel`` every post-hoc method and app can use
    (see ``ganinv.inference.wrap``)."""
    from ganinv.inference.wrap import wrap_generator as wrap  # deferred: torch is heavy

    return wrap(module, prior, image_range, **kwargs)


def __getattr__(name):
    if name == "InversionModel":
        from ganinv.inference.model import InversionModel  # deferred: torch is heavy

        return InversionModel
    if name == "METHODS":
        from ganinv.methods import METHODS  # deferred: torch is heavy

        return METHODS
    raise AttributeError(f"module 'ganinv' has no attribute {name!r}")
