"""ganinv: GAN inversion toolkit."""

__version__ = "0.1.0"


def load(run_dir, device="cpu"):
    """Load any run directory by path: an ``InversionModel`` with .generate, .invert, .reconstruct, .prior."""
    from .model import InversionModel

    return InversionModel.load(run_dir, device=device)
