"""Building runs from user choices: presets + overrides → RunConfig, and a post-hoc method's frozen generator.

Library functions the CLI and the demo share; validation happens here, before anything is written.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import PRESETS, PRECISIONS, RunConfig
from .errors import GaninvError
from .latent import PRIOR_NAMES
from .methods import Method, method_class
from .model import InversionModel


def default_channels(data_spec: str | None) -> int:
    """Digits are grey; photographs (folders, CelebA) are RGB."""
    if data_spec is None:
        return 3
    return 1 if data_spec.split(":", 1)[0] in ("mnist", "digits") else 3


def parse_option_strings(method: str, items: list[str]) -> dict:
    """``["encoder_loss_on=DG", "dls=false"]`` → typed values, by the method's Options dataclass field types."""
    import typing

    cls = method_class(method).Options
    hints = typing.get_type_hints(cls)
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints:
            valid = ", ".join(sorted(hints)) or "none"
            raise GaninvError(f"--option {item!r}: expected KEY=VALUE with KEY one of: {valid}")
        options[key] = _typed(hints[key], text.strip(), key)
    return options


def _typed(kind, text: str, key: str):
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind in (int, float):
            return kind(text)
    except ValueError:
        raise GaninvError(f"--option {key}={text}: not a valid {kind.__name__}") from None
    return text


def build_config(
    method: str, *, preset: str = "small", data: str | None = None, seed: int = 0,
    net: dict | None = None, train: dict | None = None, options: dict | None = None,
) -> RunConfig:
    """A RunConfig from a preset plus overrides (``None`` values keep the preset's)."""
    if preset not in PRESETS:
        raise GaninvError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cls = method_class(method)
    net_base, train_base = PRESETS[preset]
    if preset in cls.presets:  # the method's own paper (e.g. DLSGAN's seed 003) over seed 001's DCGAN
        net_extra, train_extra = cls.presets[preset]
        net_base = dataclasses.replace(net_base, **net_extra)
        train_base = dataclasses.replace(train_base, **train_extra)
    net_over = {k: v for k, v in (net or {}).items() if v is not None}
    net_over.setdefault("channels", default_channels(data) if preset != "paper" else net_base.channels)
    config = RunConfig(
        method=method, data=data, seed=seed, options=dict(options or {}),
        net=dataclasses.replace(net_base, **net_over),
        train=dataclasses.replace(train_base, **{k: v for k, v in (train or {}).items() if v is not None}),
    )
    validate(config)
    from .methods.base import parse_options

    # fail now, before anything is written; record every option with its resolved value
    resolved = parse_options(method_class(method).Options, config.options, method)
    check = getattr(resolved, "check_before_training", None)
    if check is not None:  # e.g. a weights file named by an option must exist before the run is written
        check()
    return config.replace(options=dataclasses.asdict(resolved))


def validate(config: RunConfig) -> None:
    n, t = config.net, config.train
    checks = [
        (n.image_size >= 8 and n.image_size & (n.image_size - 1) == 0, f"--image-size must be a power of two >= 8, got {n.image_size}"),
        (n.channels in (1, 3), f"--channels must be 1 or 3, got {n.channels}"),
        (n.width >= 1, f"--width must be positive, got {n.width}"),
        (n.latent_dim >= 1, f"--latent-dim must be positive, got {n.latent_dim}"),
        (n.prior in PRIOR_NAMES, f"--prior must be one of {', '.join(PRIOR_NAMES)}, got {n.prior!r}"),
        (t.steps >= 1, f"--steps must be positive, got {t.steps}"),
        (t.batch_size >= 1, f"--batch-size must be positive, got {t.batch_size}"),
        (t.lr > 0, f"--lr must be positive, got {t.lr}"),
        (0 <= t.lr_decay_per_epoch < 1, f"lr_decay_per_epoch must be in [0, 1), got {t.lr_decay_per_epoch}"),
        (t.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}"),
        (t.device in ("auto", "cpu", "cuda"), f"--device must be auto, cpu or cuda, got {t.device!r}"),
        (min(t.checkpoint_every, t.sample_every, t.eval_every, t.log_every) >= 1, "intervals must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise GaninvError(message)


def load_generator_run(path) -> InversionModel:
    """The frozen generator of a post-hoc method: a run that trained or wraps one (gan, bigan, dlsgan, wrapped),
    by path — or an ``InversionModel`` already in memory (e.g. from ``ganinv.wrap_generator``)."""
    from .wrap import generator_spec

    model = path if isinstance(path, InversionModel) else InversionModel.load(path)
    if not method_class(model.config.method).trains_generator:
        raise GaninvError(
            f"--generator {path} is a {model.config.method!r} run; it must be a run that trained a generator "
            "(gan, bigan, dlsgan) or a wrapped one (ganinv wrap)"
        )
    generator_spec(model)  # a generator kind post-hoc methods can rebuild, or a clear error
    return model


def posthoc_config(config: RunConfig, generator: InversionModel, generator_path) -> RunConfig:
    """A post-hoc method inherits the generator's nets config (image shape, width, latent, prior) and its data
    spec (for real-image evaluation); its own training settings stay. The generator's kind is recorded in
    ``config.generator`` so the run rebuilds the right net when loaded."""
    from .wrap import DCGAN_SPEC, generator_spec

    g = generator.config
    spec = generator_spec(generator)
    source = None if isinstance(generator_path, InversionModel) else str(Path(generator_path).resolve())
    config = config.replace(net=g.net, data=config.data or g.data, generator_run=source,
                            generator=None if spec == DCGAN_SPEC else spec)  # DCGAN: the default, recorded as None
    method_class(config.method)(config)  # options that need this generator (e.g. space=w) fail now, not later
    return config


def new_method(config: RunConfig, generator: InversionModel | None = None) -> Method:
    """Build the method's nets; a post-hoc method gets a copy of the frozen generator's weights, and its config
    records their fingerprint (a resumed run is checked against it)."""
    from .rundir import generator_fingerprint
    from .wrap import generator_state

    cls = method_class(config.method)
    if not cls.trains_generator and generator is None:
        raise GaninvError(f"method {config.method!r} inverts a pre-trained generator: give --generator RUN")
    method = cls(config)
    if generator is not None:
        net = method.nets["generator"]
        net.load_state_dict(generator_state(generator))
        net.requires_grad_(False).eval()
        fingerprint = generator_fingerprint(net)
        if config.generator_fingerprint not in (None, fingerprint):
            raise GaninvError(f"the generator run {config.generator_run} has changed since this run started "
                              f"(fingerprint {fingerprint}, recorded {config.generator_fingerprint}); "
                              "refusing to continue against another generator")
        method.config = method.config.replace(generator_fingerprint=fingerprint)
    return method


def resumed_method(config: RunConfig, run_dir: Path) -> Method:
    """The method of a run being resumed. Its checkpoint holds every net, the frozen generator included; a
    post-hoc run killed before its first checkpoint takes its generator again from the run it records."""
    from .rundir import latest_checkpoint

    cls = method_class(config.method)
    if cls.trains_generator or latest_checkpoint(run_dir) is not None:
        return cls(config)
    if not config.generator_run:
        raise GaninvError(f"{run_dir} was interrupted before its first checkpoint and records no generator run to "
                          "start again from; train it again with --generator")
    try:
        generator = load_generator_run(config.generator_run)
    except GaninvError as exc:
        raise GaninvError(f"{run_dir} was interrupted before its first checkpoint, and its generator run cannot "
                          f"be loaded: {exc}") from None
    return new_method(config, generator)


def materialise_run(config: RunConfig, out: str | Path, generator: InversionModel | None = None) -> Path:
    """A run directory for a method with nothing to train (``optimize``): config + weights at step 0, loadable by
    path like any other run."""
    from .train import prepare_run_dir, save_checkpoint

    out = Path(out)
    method = new_method(config, generator)
    method.config = prepare_run_dir(out, method.config, resume=False)
    save_checkpoint(method, out, step=0)
    return out
