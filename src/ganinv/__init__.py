"""ganinv: GAN inversion toolkit."""

__version__ = "0.1.0"


def load(run_dir, device="cpu"):
    """Load any run directory by path: an ``InversionModel`` with .generate, .invert, .reconstruct, .prior."""
    from .model import InversionModel

    return InversionModel.load(run_dir, device=device)


def wrap_generator(module, prior="uniform", image_range=(-1, 1), **kwargs):
    """Any ``nn.Module`` (latents → images) as an ``InversionModel`` every post-hoc method and app can use
    (see ``ganinv.wrap``)."""
    from .wrap import wrap_generator as wrap

    return wrap(module, prior, image_range, **kwargs)
