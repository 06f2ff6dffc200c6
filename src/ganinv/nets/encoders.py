"""Encoders beside DCGAN's strided-conv inverse generator (nets/dcgan.py): torchvision's ResNet18 with its fc
replaced by a ``latent_dim`` head — the projection network P of Arfeen & Zhang §4.1 ("ResNet18 pretrained on ImageNet
with the fully connected layer replaced with a randomly initialized one").

ImageNet weights cannot be fetched on this project's machines, so they are looked for, never downloaded: an
explicit file, else torchvision's own cache (``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``); when neither
is there the backbone keeps its random init and one plain ``warning:`` line on stderr says so (once per process).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from ganinv.core import safe_files
from ganinv.core.errors import GaninvError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET18_MAX_BYTES = 256 << 20  # the published file is 45 MB; anything far larger is not it, refused unread


def resnet18_cache_path() -> Path:
    """Where torchvision keeps the ImageNet ResNet18 checkpoint once someone has downloaded it."""
    from torchvision.models import ResNet18_Weights  # deferred: torchvision's model zoo is slow to import

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)


def imagenet_weights_file(path: str | Path | None = None) -> Path | None:
    """The ImageNet ResNet18 checkpoint ``ResNetEncoder.load_imagenet`` reads: ``path`` when given (GaninvError when
    it is missing), else torchvision's cache when the file is there; None when neither is (random init). The one
    lookup, shared with the run record (``methods.regression.backbone_init``)."""
    if path:
        path = Path(path)
        if not path.is_file():
            raise GaninvError(f"backbone_weights {path} does not exist")
        return path
    cached = resnet18_cache_path()
    return cached if cached.is_file() else None


_SAID: set[str] = set()


def say_once(message: str) -> None:
    """One plain ``warning:`` line on stderr, once per process: a user's notice, not a developer's — Python's
    warnings print the file and source line that raised it (a CLI run, the API and an ablation alike), and an
    ablation or reproduction that builds several resnet18 encoders would repeat it."""
    if message not in _SAID:
        _SAID.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


class ResNetEncoder(nn.Module):
    """Images in [0, 1] (1 or 3 channels, any size >= 8) → latents; ImageNet normalisation inside, grey images
    repeated to RGB. ``latent_bound`` scales a tanh head to a bounded prior's support; ``None`` leaves it linear."""

    def __init__(self, *, latent_dim: int, channels: int = 3, latent_bound: float | None = None):
        super().__init__()
        from torchvision.models import resnet18  # deferred: torchvision's model zoo is slow to import

        self.backbone = resnet18(weights=None)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, latent_dim)
        self.channels, self.latent_bound = channels, latent_bound
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def load_imagenet(self, path: str | Path | None = None) -> str:
        """Load the ImageNet body (every weight but fc) from ``path`` or torchvision's cache; returns where from,
        or warns and keeps random init when no file is there. A named file that is missing is an error."""
        found = imagenet_weights_file(path)
        if found is None:
            say_once(f"ImageNet ResNet18 weights not found (looked for {resnet18_cache_path()}; pass -o "
                     "backbone_weights=PATH); the resnet18 backbone starts from RANDOM init, unlike \"Unsupervised "
                     "Projection Networks for Generative Adversarial Networks\" (Arfeen & Zhang). Nothing is "
                     "downloaded.")
            return "random"
        path = found
        # checked unread first (TorchScript, tar, compressed or overlapping entries refused), then weights_only;
        # torchvision published some weights in torch < 1.6's stream format, hence legacy
        state = safe_files.torch_load_tensors(path, "ResNet18 weights", max_bytes=RESNET18_MAX_BYTES, legacy=True)
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise GaninvError(f"{path} is not a torchvision ResNet18 checkpoint")
        body = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = self.backbone.load_state_dict(body, strict=False)
        except RuntimeError:  # shapes that do not fit, or values that are no tensors
            missing, unexpected = [], ["(tensors of other shapes)"]
        if unexpected or [k for k in missing if not k.startswith("fc.")]:
            raise GaninvError(f"{path} is not a torchvision ResNet18 checkpoint")
        return str(path)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out = self.backbone((x - self.mean) / self.std)
        if self.latent_bound is None:
            return out
        return self.latent_bound * torch.tanh(out)
