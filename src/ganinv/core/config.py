"""Typed, frozen configs composed into one ``RunConfig``, saved as ``config.json`` beside every checkpoint.

A config never holds modules or optimisers; loading rejects unknown keys and newer formats, so a run directory
either reloads exactly or fails with a message naming the file.
"""
from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from typing import Any

import torch

from ganinv.core import __version__
from ganinv.core import bounds
from ganinv.core.errors import RunDirError

FORMAT_VERSION = 1
PRECISIONS = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class NetConfig:
    image_size: int = 32
    channels: int = 1
    width: int = 32  # channels of the first (image-side) stage; the paper's 64
    latent_dim: int = 100
    prior: str = "uniform"
    max_width: int = 0  # cap on the encoders' channels per stage (0: none, AEGAN's doubling; imported StyleGANs: 512)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    log_every: int = 10
    sample_every: int = 500
    eval_every: int = 500
    checkpoint_every: int = 250
    eval_samples: int = 256
    lr_decay_per_epoch: float = 0.0  # multiplicative: lr · (1 − d)^epoch (DLSGAN's paper: 0.02)
    precision: str = "no"
    device: str = "auto"  # auto | cpu | cuda
    num_workers: int = 0
    channels_last: bool = False  # nets (and image batches) in NHWC memory format: faster convs on tensor cores
    compile: bool = False  # torch.compile each net in place (nn.Module.compile: weights keep their names)


@dataclass(frozen=True)
class RunConfig:
    method: str
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: str | None = None  # dataset spec of the real images (None: trained on generated samples only)
    seed: int = 0
    generator_run: str | None = None  # the run a post-hoc method's frozen generator was copied from
    generator_fingerprint: str | None = None  # sha256 of that generator's tensors (core.rundir), checked on resume
    options: dict[str, Any] = field(default_factory=dict)  # method-specific, validated by the method's Options
    # a post-hoc method's frozen generator: {"kind": "dcgan" | "style" | "module" | "stylegan", …} (nets.frozen);
    # None for joint methods and for DCGAN generators
    generator: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The AEGAN paper's (Luo et al.) appendix: DCGAN 64×64, z ∈ U(-1,1)^100, Adam lr 2e-4 β1 0.5, batch 64 (tables 3–5).
# A method may override a preset for its own paper (``Method.presets``), e.g. the DLSGAN paper's settings.
PRESETS: dict[str, tuple[NetConfig, TrainConfig]] = {
    "paper": (NetConfig(image_size=64, channels=3, width=64, latent_dim=100, prior="uniform"),
              TrainConfig(batch_size=64, lr=2e-4, beta1=0.5)),
    # CPU-sized: the same architecture family at 32 px and a quarter of the width. At the paper's lr 2e-4 the
    # discriminator wins for the first ~1000 steps on CPU budgets (measured: mode collapse at 800 steps, batch 64);
    # batch 32 and lr 5e-4 give recognisable MNIST digits in 800 steps.
    "small": (NetConfig(image_size=32, channels=1, width=16, latent_dim=100, prior="uniform"),
              TrainConfig(batch_size=32, lr=5e-4, beta1=0.5)),
}


def current_versions() -> dict[str, str]:


    return {"ganinv": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _build(cls, data: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RunDirError(f"{where}: unknown config keys {unknown} (written by a newer or different ganinv?)")
    return cls(**data)


def config_from_dict(data: dict[str, Any], where: str = "config") -> RunConfig:
    if not isinstance(data, dict) or "method" not in data:
        raise RunDirError(f"{where}: not a ganinv run config (no 'method' key)")
    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunDirError(
            f"{where}: run format version {version} is newer than this ganinv understands ({FORMAT_VERSION}); "
            "upgrade ganinv"
        )
    data = dict(data)
    for section in ("net", "train"):
        if not isinstance(data.get(section, {}), dict):
            raise RunDirError(f"{where}: field {section} must be an object, got {data[section]!r}")
    try:
        data["net"] = _build(NetConfig, data.get("net", {}), where)
        data["train"] = _build(TrainConfig, data.get("train", {}), where)
        config = _build(RunConfig, data, where)
    except TypeError as exc:
        raise RunDirError(f"{where}: malformed config ({exc})") from exc
    check_fields(config, where)
    return config


# ------------------------------------------------------------------------------------ the values a config may hold
# A config.json is a file users receive: every field is checked on load, so that a hostile or damaged value
# ("image_size": -16, a seed of 2**70) is one line naming the file and the field, not a traceback far away.
# A tuple (low, high) bounds a number; a list names every value a field may take.
FIELD_RULES: dict[str, tuple | list] = {
    "net.image_size": (bounds.MIN_IMAGE_SIZE, bounds.MAX_IMAGE_SIZE), "net.channels": [1, 3],
    "net.width": (1, bounds.MAX_WIDTH), "net.latent_dim": (1, bounds.MAX_LATENT_DIM),
    "net.max_width": (0, bounds.MAX_WIDTH),
    "train.steps": (1, bounds.MAX_STEPS), "train.batch_size": (1, bounds.MAX_BATCH),
    "train.lr": (0.0, 1e3), "train.beta1": (0.0, 1.0), "train.beta2": (0.0, 1.0),
    "train.log_every": (1, bounds.MAX_INTERVAL), "train.sample_every": (1, bounds.MAX_INTERVAL),
    "train.eval_every": (1, bounds.MAX_INTERVAL), "train.checkpoint_every": (1, bounds.MAX_INTERVAL),
    "train.eval_samples": (0, bounds.MAX_BATCH), "train.lr_decay_per_epoch": (0.0, 1.0),
    "train.precision": list(PRECISIONS), "train.device": ["auto", "cpu", "cuda"],
    "train.num_workers": (0, bounds.MAX_WORKERS), "seed": (0, bounds.MAX_SEED),
}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None), "dict": dict}
_JSON_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
               dict: "an object"}


def check_fields(config: RunConfig, where: str = "config") -> None:
    """RunDirError naming ``where`` and the field when a field has the wrong type or a value out of its bounds."""
    sections = {"": config, "net.": config.net, "train.": config.train}
    for prefix, obj in sections.items():
        for f in dataclasses.fields(obj):
            name, value = prefix + f.name, getattr(obj, f.name)
            if isinstance(value, (NetConfig, TrainConfig)):
                continue  # checked field by field below
            problem = _type_problem(value, str(f.type)) or _value_problem(value, FIELD_RULES.get(name))
            if problem:
                raise RunDirError(f"{where}: field {name} {problem}, got {value!r}")


def _type_problem(value, annotation: str) -> str | None:
    """What is wrong with the type of a field annotated ``int``, ``float``, ``str | None``, ``dict[str, Any]``, …
    (the contents of a dict are checked where they are used: the method's Options, the frozen generator)."""
    names = [part.strip().split("[", 1)[0] for part in annotation.split("|")]
    kinds = [_TYPES[n] for n in names if n in _TYPES]
    if len(kinds) != len(names):
        return None  # an annotation this check does not know
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return None  # JSON holds 1.0 as 1 when another tool wrote it
    if type(value) not in kinds:
        return "must be " + " or ".join(_JSON_NAMES[k] for k in kinds)
    return None


def _value_problem(value, rule) -> str | None:
    if rule is None:
        return None
    if isinstance(rule, list):
        return None if value in rule else f"must be one of {', '.join(map(str, rule))}"
    low, high = rule
    if not (low <= value <= high) or value != value:  # value != value: NaN
        return f"must be from {low} to {high}"
    return None

