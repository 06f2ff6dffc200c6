"""Building runs from user choices: presets + overrides → RunConfig, and a post-hoc method's frozen generator;
``plan_run`` (validate: a ``RunPlan``, nothing built, nothing written), ``train_plan`` (build the method once and
train or resume), ``train_run`` (the two in a row) and ``ensure_trained`` (the one train-or-reuse the experiments
share).

Library functions the CLI and the experiments share; validation happens here, before anything is written. The
walk of one option from the command line to the generator is in docs/design.md ("Following -o space=wplus").
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganinv.core.config import PRECISIONS, PRESETS, RunConfig
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import (
    finished_step,
    generator_fingerprint,
    has_config,
    latest_checkpoint,
    prepare_run_dir,
    read_config,
    save_checkpoint,
)
from ganinv.data import open_dataset
from ganinv.inference.evaluate import EVAL_IMAGES
from ganinv.inference.model import InversionModel
from ganinv.inference.wrap import generator_spec, generator_state
from ganinv.latent import PRIOR_NAMES
from ganinv.methods import Method, method_class
from ganinv.methods.base import parse_options
from ganinv.nets.frozen import DCGAN_SPEC
from ganinv.training.loop import TrainResult, check_tracker, train


def default_channels(data_spec: str | None) -> int:
    """Digits are grey; photographs (folders, CelebA) are RGB."""
    if data_spec is None:
        return 3
    return 1 if data_spec.split(":", 1)[0] in ("mnist", "digits") else 3


def parse_option_strings(method: str, items: list[str]) -> dict:
    """``["encoder_loss_on=DG", "dls=false"]`` → typed values, by the method's Options dataclass field types."""

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


def _resolve(method: str | type[Method]) -> type[Method]:
    """A method class from its registered name, or the class itself when the caller has already resolved it."""
    return method if isinstance(method, type) else method_class(method)


def build_config(
    method: str | type[Method], *, preset: str = "small", data: str | None = None, seed: int = 0,
    net: dict | None = None, train: dict | None = None, options: dict | None = None,
) -> RunConfig:
    """A RunConfig from a preset plus overrides (``None`` values keep the preset's)."""
    if preset not in PRESETS:
        raise GaninvError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cls = _resolve(method)
    net_base, train_base = PRESETS[preset]
    if preset in cls.presets:  # the method's own paper (e.g. DLSGAN's) over AEGAN's (Luo et al.) DCGAN
        net_extra, train_extra = cls.presets[preset]
        net_base = dataclasses.replace(net_base, **net_extra)
        train_base = dataclasses.replace(train_base, **train_extra)
    net_over = {k: v for k, v in (net or {}).items() if v is not None}
    net_over.setdefault("channels", default_channels(data) if preset != "paper" else net_base.channels)
    config = RunConfig(
        method=cls.name, data=data, seed=seed, options=dict(options or {}),
        net=dataclasses.replace(net_base, **net_over),
        train=dataclasses.replace(train_base, **{k: v for k, v in (train or {}).items() if v is not None}),
    )
    validate(config)

    # fail now, before anything is written; record every option with its resolved value
    resolved = parse_options(cls.Options, config.options, cls.name)
    resolved.check_before_training()  # e.g. a weights file named by an option must exist before the run is written
    if config.train.compile and cls.differentiates_twice(resolved):
        raise GaninvError(f"--compile: {cls.name} takes a gradient of a gradient (its R1 penalty), which torch.compile "
                          "cannot differentiate; train it without --compile (channels_last and --precision bf16 "
                          "still apply)")
    return config.replace(options=dataclasses.asdict(resolved.resolved()))  # + what this machine decided


def validate(config: RunConfig) -> None:
    n, t = config.net, config.train
    checks = [
        (n.image_size >= 8 and n.image_size & (n.image_size - 1) == 0, f"--image-size must be a power of two >= 8, got {n.image_size}"),
        (n.channels in (1, 3), f"--channels must be 1 or 3, got {n.channels}"),
        (n.width >= 1, f"--width must be positive, got {n.width}"),
        (n.latent_dim >= 1, f"--latent-dim must be positive, got {n.latent_dim}"),
        (n.max_width >= 0, f"max_width must be 0 (no cap) or positive, got {n.max_width}"),
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
    """The frozen generator of a post-hoc method: a run that trained, wraps or imported one (gan, bigan, dlsgan,
    wrapped, stylegan), by path — or an ``InversionModel`` already in memory (e.g. from ``ganinv.wrap_generator``)."""

    model = path if isinstance(path, InversionModel) else InversionModel.load(path)
    if not model.method.provides_generator:
        raise GaninvError(
            f"--generator {path} is a {model.config.method!r} run; it must be a run that trained a generator "
            "(gan, bigan, dlsgan), a wrapped one (ganinv wrap) or an imported StyleGAN (ganinv import stylegan)"
        )
    generator_spec(model)  # a generator kind post-hoc methods can rebuild, or a clear error
    return model


def posthoc_config(config: RunConfig, generator: InversionModel, generator_path,
                   method_cls: type[Method] | None = None) -> RunConfig:
    """A post-hoc method inherits the generator's nets config (image shape, width, latent, prior) and its data
    spec (for real-image evaluation); its own training settings stay. The generator's kind is recorded in
    ``config.generator`` so the run rebuilds the right net when loaded. The method's options are checked against
    that generator (e.g. space=w on a DCGAN) without building any net: ``Method.check_generator``."""

    g = generator.config
    spec = generator_spec(generator)
    source = None if isinstance(generator_path, InversionModel) else str(Path(generator_path).resolve())
    config = config.replace(net=g.net, data=config.data or g.data, generator_run=source,
                            generator=None if spec == DCGAN_SPEC else spec)  # DCGAN: the default, recorded as None
    (method_cls or method_class(config.method)).check_generator(config)
    return config


def new_method(config: RunConfig, generator: InversionModel | None = None,
               method_cls: type[Method] | None = None) -> Method:
    """Build the method's nets; a post-hoc method gets a copy of the frozen generator's weights, and its config
    records their fingerprint (a resumed run is checked against it). ``method_cls``: config.method's class, when
    the caller has it already."""

    cls = method_cls or method_class(config.method)
    if not cls.provides_generator and generator is None:
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
        method.adopt_generator_run(generator)
    return method


def resumed_method(config: RunConfig, run_dir: Path, method_cls: type[Method] | None = None) -> Method:
    """The method of a run being resumed. Its checkpoint holds every net, the frozen generator included; a
    post-hoc run killed before its first checkpoint takes its generator again from the run it records."""

    cls = method_cls or method_class(config.method)
    if cls.provides_generator or latest_checkpoint(run_dir) is not None:
        return cls(config)
    if not config.generator_run:
        raise GaninvError(f"{run_dir} was interrupted before its first checkpoint and records no generator run to "
                          "start again from; train it again with --generator")
    try:
        generator = load_generator_run(config.generator_run)
    except GaninvError as exc:
        raise GaninvError(f"{run_dir} was interrupted before its first checkpoint, and its generator run cannot "
                          f"be loaded: {exc}") from None
    return new_method(config, generator, cls)


def materialise_run(config: RunConfig, out: str | Path, generator: InversionModel | None = None) -> Path:
    """A run directory for a method with nothing to train (``optimize``): config + weights at step 0, loadable by
    path like any other run."""

    out = Path(out)
    method = new_method(config, generator)
    method.config = prepare_run_dir(out, method.config, resume=False)
    save_checkpoint(method, out, step=0)
    return out


# ------------------------------------------------------------------------------------------------ train or resume
@dataclass(frozen=True)
class RunPlan:
    """A training run checked and resolved, nothing built and nothing written: what ``plan_run`` returns, what
    ``train --dry-run`` prints (``config``) and what ``train_plan`` trains. A post-hoc method's frozen generator
    is loaded once, here, and handed to the one construction of the method."""

    method_cls: type[Method]
    config: RunConfig  # the resolved config (a resumed run's saved one, with its new steps)
    out: Path
    resume: bool
    generator: InversionModel | None = None  # a post-hoc method's frozen generator (new runs only)
    log_with: str | None = "tensorboard"

    @property
    def done_step(self) -> int | None:
        """The step a resumed run has already reached when that is all it asks for; else None."""
        step = finished_step(self.out) if self.resume else -1
        return step if step >= self.config.train.steps else None


def plan_run(
    method: str, out: str | Path, *, data: str | None = None, generator: str | Path | None = None,
    preset: str = "small", seed: int = 0, resume: bool = False, net_overrides: dict | None = None,
    train_overrides: dict | None = None, options: dict | None = None, warn: Callable[[str], None] | None = None,
    log_with: str | None = "tensorboard",
) -> RunPlan:
    """Validate everything a run is made of — config, options against the generator, the tracker of ``log_with``
    — building no net and writing nothing."""
    out = Path(out)
    cls = method_class(method)
    log_with = check_tracker(log_with, warn)  # no TensorBoard installed: None, said once here
    if resume and not has_config(out):  # killed before it wrote anything: resuming is starting
        (warn or (lambda m: None))(f"{out} holds no run yet (interrupted before its config was written); starting it")
        resume = False
    if resume:
        config = resumed_config(cls, out, net_overrides=net_overrides, train_overrides=train_overrides,
                                options=options)
        return RunPlan(cls, config, out, resume=True, log_with=log_with)
    config, frozen = fresh_config(cls, data=data, generator=generator, preset=preset, seed=seed,
                                  net_overrides=net_overrides, train_overrides=train_overrides, options=options)
    return RunPlan(cls, config, out, resume=False, generator=frozen, log_with=log_with)


def train_plan(plan: RunPlan, *, show_progress: bool = True, evaluators=(),
               warn: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume) a planned run: open its data (before the run directory is touched), build the method once,
    train. A resumed run already at its steps is said so, not loaded."""
    if plan.done_step is not None:
        return TrainResult(run_dir=plan.out, step=plan.done_step, already_finished=True)
    dataset, eval_images = open_training_data(plan.config)  # called by name: tests/core/ddp_worker.py wraps it
    if plan.resume:
        method = resumed_method(plan.config, plan.out, plan.method_cls)
    else:
        method = new_method(plan.config, plan.generator, plan.method_cls)
    return train(method, plan.out, dataset=dataset, eval_images=eval_images, resume=plan.resume,
                 show_progress=show_progress, evaluators=evaluators, warn=warn, log_with=plan.log_with)


def train_run(method: str, out: str | Path, *, show_progress: bool = True, evaluators=(),
              warn: Callable[[str], None] | None = None, **plan_kwargs) -> TrainResult:
    """Plan, then train: ``train_plan(plan_run(method, out, **plan_kwargs))`` — what the experiments call."""
    plan = plan_run(method, out, warn=warn, **plan_kwargs)
    return train_plan(plan, show_progress=show_progress, evaluators=evaluators, warn=warn)


def resumed_config(cls: type[Method], out: Path, *, net_overrides: dict | None = None,
                   train_overrides: dict | None = None, options: dict | None = None) -> RunConfig:
    """The saved config of the run in ``out``, checked against the flags given again; a new ``steps`` (extending
    the run) is the one change a resume accepts."""
    config = read_config(out)
    if config.method != cls.name:
        raise GaninvError(f"{out} holds a {config.method!r} run, not {cls.name!r}; cannot resume it")
    check_resume_overrides(config, net_overrides or {}, options or {})
    steps = (train_overrides or {}).get("steps")
    if steps:
        config = config.replace(train=dataclasses.replace(config.train, steps=steps))
    return config


def fresh_config(cls: type[Method], *, data: str | None, generator: str | Path | InversionModel | None,
                 preset: str, seed: int, net_overrides: dict | None, train_overrides: dict | None,
                 options: dict | None) -> tuple[RunConfig, InversionModel | None]:
    """(config, frozen generator or None) of a new run; a post-hoc method's config inherits its generator's."""
    config = build_config(cls, preset=preset, data=data, seed=seed, net=net_overrides, train=train_overrides,
                          options=options)
    if generator is None:
        return config, None
    if cls.provides_generator:
        raise GaninvError(f"{cls.name} trains its own generator; --generator is for the post-hoc methods "
                          "(aegan, regression, optimize)")
    frozen = load_generator_run(generator)
    return posthoc_config(config, frozen, generator, cls), frozen


def ensure_trained(method: str, out: str | Path, *, steps: int, log: Callable[[str], None],
                   **train_run_kwargs) -> Path:
    """THE train-or-reuse every experiment shares (demo, compare, ablation, bench): a run of ``method`` in ``out``
    trained to at least ``steps``, whatever happened before.

    Reused as it is when its newest complete checkpoint has reached ``steps``; resumed (and extended to ``steps``)
    when it exists unfinished — the flags given again must agree with it; trained from scratch when ``out`` holds
    no run (also when a killed run left the folder before writing its config). A run of another method in ``out``
    is an error, never overwritten. ``train_run_kwargs`` go to ``train_run``; ``steps`` wins over theirs."""
    out = Path(out)
    started = has_config(out)
    if started:
        saved = read_config(out).method
        if saved != method:
            raise GaninvError(f"{out} holds a {saved!r} run, not {method!r}; choose another --out")
        if finished_step(out) >= steps:
            log(f"reusing finished {method} run {out}")
            return out
        log(f"resuming {method} run {out}")
    train_overrides = {**(train_run_kwargs.pop("train_overrides", None) or {}), "steps": steps}
    train_run(method, out, resume=started, train_overrides=train_overrides, **train_run_kwargs)
    return out


def open_training_data(config: RunConfig):
    """The training split (for methods that train on real images under the run's options) and a few test images for
    evaluation. Called before the run directory is touched, so a missing --data fails with nothing written."""
    cls = method_class(config.method)
    uses_real_data = cls.needs_real_data(parse_options(cls.Options, config.options, cls.name))
    if config.data is None:
        if uses_real_data:
            how = "" if cls.uses_real_data else " with these options"  # e.g. regression's recon term on real images
            raise GaninvError(f"method {config.method!r} trains on real images{how}: give --data")
        return None, None
    n = config.net
    dataset = open_dataset(config.data, image_size=n.image_size, channels=n.channels, split="train")
    test = open_dataset(config.data, image_size=n.image_size, channels=n.channels, split="test")
    eval_images, _ = test.tensors(min(EVAL_IMAGES, len(test)))
    return (dataset if uses_real_data else None), eval_images


def check_resume_overrides(config: RunConfig, net_overrides: dict, options: dict) -> None:
    """A resumed run keeps its nets and options; a flag that contradicts them is an error, not silently ignored."""
    for key, value in net_overrides.items():
        saved = getattr(config.net, key)
        if value is not None and value != saved:
            flag = "--" + key.replace("_", "-")
            raise GaninvError(f"{flag} {value} does not match the run being resumed ({key} = {saved})")
    for key, value in options.items():
        if config.options.get(key) != value:
            raise GaninvError(f"option {key}={value} does not match the run being resumed "
                              f"({key} = {config.options.get(key)})")
