"""The mode-collapse watch of runs that train a generator (gan, dlsgan, dedgan, bigan).

At every sample step the loop asks it to judge ``DIVERSITY_SAMPLES`` samples of fixed latents
(``metrics.diversity``); each judgement goes to metrics.jsonl (kind "diversity"), and a collapse that lasts (or
ends the run) is one warning line that says at which step, where its samples are, and what can be done. What can be
done is bounded by the run directory: ``--resume`` continues only the newest checkpoint, and a run keeps only its newest
two (core/rundir.py), so the generator of an earlier step is had again by training anew to that step — the same
seed and flags retrace the same steps (loop.py: the data order and the RNG are functions of seed and step).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ganinv.core.rundir import SAMPLES
from ganinv.metrics.diversity import (
    COLLAPSE_BELOW,
    DIVERSITY_SAMPLES,
    REAL_MNIST_DISTINCT,
    Diversity,
    sample_diversity,
)

DIVERSITY_SEED_OFFSET = 7919  # the watch's latents: their own stream, not the sample grid's first 64 again


WARM_UP_STEPS = 100  # not judged before: an untrained generator draws one texture (0.08 distinct, as a collapse)


class CollapseWatch:
    """Judges a generator-training method's samples from ``WARM_UP_STEPS`` on. A GAN often collapses for a few hundred
    steps early on and recovers (measured on MNIST at lr 5e-4: seeds 0-2 under 10 % at steps 100-250, over 24 % from
    step 400), so one collapsed check is not yet news: the warning comes when a collapse is seen at two checks in a
    row, or at the run's last step — one line, once per collapse — and, if it then passes, one line saying so."""

    def __init__(self, method, run_dir: Path, log: Callable[[int, str, dict], None],
                 warn: Callable[[str], None] | None = None, enabled: bool = True):
        self.method, self.run_dir, self.log = method, run_dir, log
        self.warn = warn or (lambda message: warnings.warn(message, stacklevel=2))
        self.enabled = enabled and method.trains_generator
        seed = method.config.seed + DIVERSITY_SEED_OFFSET
        self.z = (method.prior.sample(DIVERSITY_SAMPLES, generator=torch.Generator().manual_seed(seed))
                  if self.enabled else None)
        self.last_diverse: int | None = None  # the last step of this pass whose samples were diverse
        self.collapsed_at: int | None = None  # the first check of the collapse in progress, while it lasts
        self.warned = False  # about the collapse in progress

    def check(self, step: int, last: bool = False) -> Diversity | None:
        """Judge the samples of ``step`` (logged to metrics.jsonl); None when disabled or still warming up."""
        if not self.enabled or step < WARM_UP_STEPS:
            return None
        with self.method.eval_mode():  # as the sample grids and every inverter see the generator
            samples = self.method.generate(self.z.to(self.method.device)).float()
        diversity = sample_diversity(samples)
        self.log(step, "diversity", {"distinct_fraction": diversity.distinct, "collapsed": diversity.collapsed})
        if not diversity.collapsed:
            if self.warned:
                self.warn(f"the generator's samples are diverse again at step {step}: {diversity.describe()}; the "
                          f"collapse seen from step {self.collapsed_at} has passed")
            self.collapsed_at, self.warned, self.last_diverse = None, False, step
            return diversity
        lasting = self.collapsed_at is not None
        self.collapsed_at = self.collapsed_at if lasting else step
        if not self.warned and (lasting or last):
            self.warned = True
            self.warn(collapse_message(self.collapsed_at, step, diversity, self.last_diverse, self.run_dir))
        return diversity


def collapse_message(first: int, step: int, diversity: Diversity, last_diverse: int | None, run_dir: Path) -> str:
    """One line: the steps, the figure against a healthy one, the samples to look at, and what is possible."""
    samples = run_dir / SAMPLES / f"step-{step:07d}.png"
    since = f"at step {step}" if first == step else f"from step {first}, still at step {step}"
    found = (f"mode collapse {since}: {diversity.describe()}, under {COLLAPSE_BELOW:.0%} (real MNIST digits: "
             f"{REAL_MNIST_DISTINCT:.0%}); see {samples}.")
    resume = "--resume only continues the newest checkpoint and a run keeps just its newest two"
    if last_diverse is None:
        return (f"{found} No earlier sample step of this training was diverse; {resume}, so train again into a new "
                "--out with another --seed or a lower --lr")
    return (f"{found} {resume}, so to get the generator of step {last_diverse} (the last diverse one) train again "
            f"into a new --out with --steps {last_diverse} (the same seed, flags and machine retrace the same "
            "steps), or with another --seed or a lower --lr")
