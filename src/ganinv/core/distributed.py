"""Several processes, one run: the pieces the training loop and the methods need under ``accelerate launch``.

The engine is Accelerate over torch.distributed (DDP: gradients averaged across ranks in backward). What ganinv adds
is only what makes N processes compute what one process computes on the same global batch:

* the global batch (``train.batch_size``) is split into equal contiguous slices, one per rank, both for the real
  images (``rank_slice`` on the batch sampler's indices) and for the latents (every rank draws the whole global
  batch of z from a generator seeded by (seed, step) and keeps its slice) — so the run is a function of the seed
  alone, whatever N, and resumes from a checkpoint made with another N;
* BatchNorm statistics are taken over the global batch (``sync_batchnorm``): torch's ``SyncBatchNorm`` on CUDA,
  ``ProcessGroupBatchNorm`` (the same sums, all-reduced by the differentiable ``torch.distributed.nn.all_reduce``)
  on CPU/gloo, where torch's raises;
* logged losses are averaged across ranks (``mean_across_ranks``), so every rank sees the same NaN guard decision.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganinv.core.errors import GaninvError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank_slice(items, rank: int, world: int):
    """Rank ``rank``'s contiguous share of a global batch (a list or a tensor's first dimension)."""
    if len(items) % world:
        raise GaninvError(f"a global batch of {len(items)} does not split evenly over {world} processes; choose a "
                          f"--batch-size divisible by {world}")
    per = len(items) // world
    return items[rank * per:(rank + 1) * per]


def check_batch_split(batch_size: int, world: int) -> None:
    if batch_size % world:
        raise GaninvError(f"--batch-size {batch_size} is the global batch and must split evenly over the "
                          f"{world} processes; choose a multiple of {world}")


class ProcessGroupBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch across the process group.

    Per-channel sums of x and x² are all-reduced with ``torch.distributed.nn.all_reduce``, whose backward
    all-reduces the gradients too, so DDP's averaged gradients equal those of one process on the whole batch
    (torch's SyncBatchNorm does the same on CUDA). Outside training, or in one process, it is plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn import all_reduce  # deferred: only several processes need it

        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        local = torch.cat([x.sum(dims), (x * x).sum(dims)]).float()
        total = x.numel() // channels * world_size()
        sums = all_reduce(local)
        mean = sums[:channels] / total
        var = (sums[channels:] / total - mean * mean).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * total / max(total - 1, 1))
        shape = [1, channels] + [1] * (x.dim() - 2)
        out = (x - mean.view(shape).to(x.dtype)) * torch.rsqrt(var.view(shape) + self.eps).to(x.dtype)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked += 1
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), momentum)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm in ``module`` normalised over the global batch (same parameter and buffer names)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _swap_batchnorm(module)


def _swap_batchnorm(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, ProcessGroupBatchNorm):
        swapped = ProcessGroupBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                        module.track_running_stats)
        swapped.load_state_dict(module.state_dict())
        swapped.train(module.training)
        swapped.to(next(iter(module.state_dict().values())).device)
        return swapped
    for name, child in module.named_children():
        setattr(module, name, _swap_batchnorm(child))
    return module


def mean_across_ranks(accelerator, logs: dict[str, float]) -> dict[str, float]:
    """Each logged value averaged over the ranks (one all-reduce of a small vector); a NaN anywhere is NaN
    everywhere, so all ranks stop together."""
    if accelerator is None or accelerator.num_processes == 1 or not logs:
        return logs
    values = torch.tensor(list(logs.values()), dtype=torch.float64, device=accelerator.device)
    values = accelerator.reduce(values, reduction="mean")
    return dict(zip(logs, values.tolist()))


def gather_rows(accelerator, x: Tensor) -> Tensor:
    """All ranks' rows, in rank order (what one process would hold for the global batch)."""
    if accelerator is None or accelerator.num_processes == 1:
        return x
    return accelerator.gather(x.contiguous())
