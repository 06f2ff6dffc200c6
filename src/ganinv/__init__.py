"""ganinv: GAN inversion — encoders for your generator, GANs born invertible, and applications of their latents.

The public API::

    ganinv.load(run_dir, device="cpu", dtype=None)   a run directory (or save_pretrained folder) → InversionModel;
                                                       device "auto" | "cpu" | "cuda[:N]" | "mps"; dtype float32
    ganinv.InversionModel                            an nn.Module: generate / invert / reconstruct (= model(x)), the
                                                       one seam every app uses; save_pretrained / from_pretrained
    ganinv.load_images(paths, size=None, channels=None)  image files → N×C×S×S float in [0, 1]
    ganinv.align_face(image, size=…)                 a photo → the aligned-CelebA face crop a face run expects
    ganinv.wrap_generator(module, prior, …)          any nn.Module (latents → images) as an InversionModel
    ganinv.import_stylegan(path, out=None, …)        an NVlabs StyleGAN2-ADA / StyleGAN3 pickle or a rosinality
                                                       checkpoint (read without running its code) as an InversionModel
    ganinv.METHODS                                   the registered methods, by name
    ganinv.__version__

Everything but ``__version__`` loads torch on first use (PEP 562), so ``import ganinv`` and ``ganinv --help`` stay
fast.
"""
from ganinv.core import __version__

__all__ = ["load", "load_images", "align_face", "wrap_generator", "import_stylegan", "InversionModel", "METHODS", "__version__"]


def load(run_dir, device="cpu", dtype=None):
    """Load a run directory (or a ``save_pretrained`` folder) by path: an ``InversionModel`` (an ``nn.Module``) with
    .generate, .invert, .reconstruct, .prior, in eval mode. ``device``: "auto" (CUDA when available, else the CPU),
    "cpu", "cuda", "cuda:N", "mps" or a ``torch.device``; ``dtype``: the floating dtype of the nets and of every
    output (None: float32)."""
    from ganinv.inference.model import InversionModel  # deferred: torch is heavy (see the module docstring)

    return InversionModel.load(run_dir, device=device, dtype=dtype)


def load_images(paths, size=None, channels=None):
    """Image files (or folders) → one N×C×S×S float32 batch in [0, 1], centre-cropped and resized to ``size``; an
    unreadable file is a ``GaninvError`` naming it (see ``ganinv.data.images``)."""
    from ganinv.data.images import load_images as read  # deferred: torch is heavy

    return read(paths, size=size, channels=channels)


def align_face(image, *, size, landmarks=None):
    """A photo (PIL image or H×W×3 uint8) → (the face rotated, scaled and cropped to aligned CelebA's geometry at
    ``size``², what was found); a ``GaninvError`` when no face is found (see ``ganinv.data.align``)."""
    from ganinv.data.align import align_face as align  # deferred: OpenCV and torch are heavy

    return align(image, size=size, landmarks=landmarks)


def wrap_generator(module, prior="uniform", image_range=(-1, 1), **kwargs):
    """Any ``nn.Module`` (latents → images) as an ``InversionModel`` every post-hoc method and app can use
    (see ``ganinv.inference.wrap``)."""
    from ganinv.inference.wrap import wrap_generator as wrap  # deferred: torch is heavy

    return wrap(module, prior, image_range, **kwargs)


def import_stylegan(path, out=None, **kwargs):
    """An NVlabs StyleGAN2-ADA / StyleGAN3 pickle or a rosinality checkpoint as an ``InversionModel`` of the
    ``stylegan`` method, written as a run directory at ``out`` when given; nothing in the file is executed (see
    ``ganinv.inference.stylegan``)."""
    from ganinv.inference.stylegan import import_stylegan as read  # deferred: torch is heavy

    return read(path, out, **kwargs)


def __getattr__(name):
    if name == "InversionModel":
        from ganinv.inference.model import InversionModel  # deferred: torch is heavy

        return InversionModel
    if name == "METHODS":
        from ganinv.methods import METHODS  # deferred: torch is heavy

        return METHODS
    raise AttributeError(f"module 'ganinv' has no attribute {name!r}")
