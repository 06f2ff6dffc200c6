"""InversionModel: a trained run behind the one seam every application uses — generate, invert, reconstruct."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import load_net_weights, open_run, read_weights, split_weights
from ganinv.latent import Prior
from ganinv.methods import Method, method_class


class InversionModel:
    """Wraps a method's nets in eval mode. Images are N×C×H×W in [0,1]; latents are in the prior's units."""

    def __init__(self, method: Method, *, batch_size: int = 256):
        self.method = method
        self.batch_size = batch_size

    # --- construction ---
    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> InversionModel:
        run_dir, config = open_run(run_dir)
        method = method_class(config.method)(config)
        tensors, _ = read_weights(run_dir, config.method)
        weights, extra = split_weights(tensors)
        load_net_weights(method.nets, weights, run_dir)
        method.load_extra_state(extra)
        for name, net in method.nets.items():
            method.nets[name] = net.to(device).eval()
        method.device = torch.device(device)
        return cls(method)

    # --- properties ---
    @property
    def config(self) -> RunConfig:
        return self.method.config

    @property
    def prior(self) -> Prior:
        return self.method.prior

    @property
    def device(self) -> torch.device:
        return self.method.device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        n = self.config.net
        return (n.channels, n.image_size, n.image_size)

    @property
    def can_invert(self) -> bool:
        return self.method.can_invert

    # --- the seam ---
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample(n, generator=generator).to(self.device)

    def generate(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.prior.dim:
            raise GaninvError(f"latents must be N×{self.prior.dim}, got {tuple(z.shape)}")
        return self._batched(self.method.generate, z)

    def invert(self, x: Tensor) -> Tensor:
        self.check_images(x)
        return self._batched(self.method.invert, x)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.generate(self.invert(x))

    def check_images(self, x: Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise GaninvError(
                f"images must be N×{'×'.join(map(str, self.image_shape))} for this run, got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise GaninvError("images contain NaN or infinite values")
        if x.min() < -1e-4 or x.max() > 1 + 1e-4:
            raise GaninvError(f"images must be in [0, 1], got values in [{x.min():.3f}, {x.max():.3f}]")

    def _batched(self, fn, inputs: Tensor) -> Tensor:
        outs = []
        with self.method.eval_mode():
            for chunk in inputs.split(self.batch_size):
                outs.append(fn(chunk.to(self.device, torch.float32)).float())
        return torch.cat(outs)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> InversionModel:
    """Load any run directory by path (``ganinv.load``)."""
    return InversionModel.load(run_dir, device=device)
