"""The runtime of training, kept apart from the algorithm (as NVlabs keeps ``loss.accumulate_gradients`` apart from
the training loop): a method computes its losses; its ``TrainingSession`` applies them.

The session holds what one process's training needs beyond the nets: the Accelerate accelerator, one optimiser per
trainable net, this process's rank among ``world_size``, the step and the step's latent RNG. A method calls
``self.session.update("encoder", loss)`` for each player in turn (gradients cleared → backward → optimiser step), so
the update is written once — ``gradient_step`` below is the one place in methods/ and training/ where gradients are
cleared and an optimiser steps — and every method reads the step from ``session.step``.

Step protocol (driven by ``ganinv.training.loop``): ``begin_step(step, seed)`` before a ``train_step`` — ``step`` is
then the number of steps done before this one, and the latents come from a generator seeded by (seed, step) alone —
and ``end_step()`` after it, so ``step`` counts the steps done between steps and in a checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from ganinv.core.distributed import rank_slice
from ganinv.latent import Prior

LATENT_SEED_STRIDE = 1_000_003  # step latents' seed: seed * stride + step (distinct for every step of every seed)


@contextlib.contextmanager
def gradient_step(optimizers: Iterable[torch.optim.Optimizer]) -> Iterator[None]:
    """Clear the optimisers' gradients, let the body run its backward passes (one, or several that accumulate),
    then step each optimiser in the order given. An exception in the body leaves every weight untouched."""
    optimizers = list(optimizers)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    yield
    for optimizer in optimizers:
        optimizer.step()


class TrainingSession:
    """One process's training runtime for a method's nets (see the module docstring). Before ``attach`` (a method
    built for inference, or a test calling ``train_step`` directly) it is a single CPU process without optimisers,
    and latents come from the global RNG."""

    def __init__(self):
        self.accelerator = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.rank, self.world_size = 0, 1  # this process's place among `accelerate launch`'s processes
        self.step = 0  # steps done (while a train_step runs: the steps done before it)
        self.latent_rng: torch.Generator | None = None  # set by begin_step: this step's latents

    # --- set-up ---
    def attach(self, accelerator) -> None:
        self.accelerator = accelerator
        self.rank, self.world_size = accelerator.process_index, accelerator.num_processes

    def prepare(self, name: str, net: nn.Module, optimizer: torch.optim.Optimizer) -> nn.Module:
        """Hand ``net`` and its optimiser to the accelerator (DDP when several processes run); the optimiser is kept
        under ``name`` (state.pt's key), the net as Accelerate returns it."""
        net, self.optimizers[name] = self.accelerator.prepare(net, optimizer)
        return net

    def detached(self) -> TrainingSession:
        """A copy for nets that nothing here trains (pivotal tuning's generator copy): the same step, rank and
        latent RNG, no accelerator and no optimisers."""
        other = copy.copy(self)
        other.accelerator, other.optimizers = None, {}
        return other

    # --- the step ---
    def begin_step(self, step: int, seed: int) -> None:
        """Before ``train_step``: ``step`` steps are done; this step's latents come from a generator seeded by
        (seed, step) alone — identical on every rank, and the same whether or not the run was resumed."""
        self.step = step
        self.latent_rng = torch.Generator().manual_seed(seed * LATENT_SEED_STRIDE + step)

    def end_step(self) -> None:
        """After ``train_step``: one more step done."""
        self.step += 1

    def latents(self, prior: Prior, n: int) -> Tensor:
        """``n`` prior samples for this rank: every rank draws the global batch and keeps its own slice, so N
        processes use the latents one process would (before any ``begin_step``: the global RNG)."""
        z = prior.sample(n * self.world_size, generator=self.latent_rng)
        return rank_slice(z, self.rank, self.world_size)

    # --- applying losses ---
    def backward(self, loss: Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    @contextlib.contextmanager
    def updating(self, names: str | tuple[str, ...]) -> Iterator[None]:
        """One update of the nets ``names`` whose gradients the body accumulates with ``backward`` (several passes
        summed into one step, as the iterative encoder's)."""
        names = (names,) if isinstance(names, str) else names
        with gradient_step(self.optimizers[name] for name in names):
            yield

    def update(self, names: str | tuple[str, ...], loss: Tensor) -> None:
        """Clear → backward(loss) → step for the nets ``names`` (a tuple: players that share one loss, e.g. BiGAN's G
        and E; their optimisers step in that order)."""
        with self.updating(names):
            self.backward(loss)

    # --- wrappers ---
    def unwrap(self, net: nn.Module) -> nn.Module:
        """``net`` without the DDP/compile wrapper Accelerate put around it."""
        return self.accelerator.unwrap_model(net) if self.accelerator is not None else net
