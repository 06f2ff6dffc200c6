"""The fixed sets of names a user chooses from — methods, latent spaces, priors, presets, precisions, devices,
splits, trackers, image losses, encoder-loss targets — as ``StrEnum``s, in one torch-free module.

The command line types its options with them, so a name outside a set is refused when the command line is parsed
(``cli.common.name_choice``: one ``error:`` line, exit 2) and ``--help`` lists the choices; the library's
registries are checked against them by ``tests/test_architecture.py`` (``METHODS``, ``SPACES``, ``PRIOR_NAMES``,
``PRESETS``, ``PRECISIONS``, ``TRACKERS``), so the two cannot drift apart. A member is a ``str`` equal to its name:
config.json, the library and ``f"{member}"`` all see the plain name.
"""
from __future__ import annotations

from enum import StrEnum


class MethodName(StrEnum):
    """Every registered method (``ganinv.methods.METHODS``), in the registry's order."""

    gan = "gan"
    aegan = "aegan"
    regression = "regression"
    iterative = "iterative"
    psp = "psp"
    dlsgan = "dlsgan"
    dedgan = "dedgan"
    bigan = "bigan"
    optimize = "optimize"
    wrapped = "wrapped"
    stylegan = "stylegan"


class SpaceName(StrEnum):
    """A run's latent spaces (``ganinv.methods.spaces.SPACES``): z → w → wplus."""

    z = "z"
    w = "w"
    wplus = "wplus"


class PriorName(StrEnum):
    """The latent priors (``ganinv.latent.PRIOR_NAMES``)."""

    uniform = "uniform"
    normal = "normal"
    uniform_sqrt3 = "uniform_sqrt3"
    spherical = "spherical"


class PresetName(StrEnum):
    """The config presets (``ganinv.core.config.PRESETS``)."""

    paper = "paper"
    small = "small"


class Precision(StrEnum):
    """Mixed precision through Accelerate (``ganinv.core.config.PRECISIONS``)."""

    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"


class DeviceName(StrEnum):
    """Where training and collection inversion run."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Split(StrEnum):
    """Which part of a dataset a command reads."""

    all = "all"
    train = "train"
    valid = "valid"  # where the data has one: CelebA's partition 1 (data.datasets); mnist and digits refuse it
    test = "test"


class Tracker(StrEnum):
    """Where training scalars go besides metrics.jsonl (``ganinv.training.loop.TRACKERS``)."""

    tensorboard = "tensorboard"
    wandb = "wandb"
    mlflow = "mlflow"


class RefineLoss(StrEnum):
    """The image loss of ``invert --refine`` (named losses of ``ganinv.losses.image``)."""

    mse = "mse"
    bce = "bce"
    mse_lpips = "mse+lpips"
    mse_d_features = "mse+d_features"  # the run's own discriminator's features (ganinv.inference.hybrid)


class EncoderTarget(StrEnum):
    """dlsgan's ``encoder_loss_on``: the encoder loss on the discriminator alone or on both players."""

    D = "D"
    DG = "DG"


def listed(enum: type[StrEnum]) -> str:
    """"a, b, c": the members' names, for messages."""
    return ", ".join(member.value for member in enum)
