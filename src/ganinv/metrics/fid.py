"""Fréchet distance (FD) and kernel distance (KID) between feature distributions of real and generated images.

The Fréchet distance is biased upward at small N (by tens of points at 500 images), so a curve needs thousands of
images; the kernel distance — KID, the unbiased polynomial-kernel MMD² of "Demystifying MMD GANs" (Bińkowski,
Sutherland, Arbel and Gretton) — is unbiased at any N, so it stays honest when the real side is small.

Two feature extractors, and the report always says which one was used (FID/KID or FD-domain/KID-domain):

* **FID** (published numbers): Inception-v3 through torchmetrics/torch-fidelity, only from a local weights file
  (``pt_inception-2015-12-05-6726825d.pth``, torch-fidelity's); nothing is downloaded.
* **FD-domain** (the honest fallback when no Inception weights are on disk): a small convolutional classifier the
  project trains on the dataset's own labels (digit class, or CelebA's 40 attributes) from the *train* split, its
  penultimate 128-d features. It ranks models of the same data like FID does, but its values are not comparable
  with published FIDs and are never reported as FID. The trained classifier is cached per (data, size, channels).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from ganinv.core import safe_files
from ganinv.core.errors import GaninvError
from ganinv.core.extras import require
from ganinv.core.io import atomic_write
from ganinv.data import open_dataset

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
DOMAIN_FEATURES = 128
INCEPTION_MAX_BYTES = 512 << 20  # the published file is 92 MB; anything far larger is not it, refused unread
DOMAIN_CACHE_MAX_BYTES = 64 << 20  # the cached classifier is ~0.4 MB
MAX_DOMAIN_OUTPUTS = 1 << 16  # CelebA has 40 attributes, digits 10 classes


def kernel_name(fd_name: str) -> str:
    """The kernel distance's name on the features a Fréchet distance name stands for: "KID" on Inception's
    features, "KID-domain" on the domain classifier's (never plain KID: those values are not comparable)."""
    return "KID" if fd_name == "FID" else "KID-domain"


@dataclass
class FeatureExtractor:
    name: str  # "FID" or "FD-domain"
    net: nn.Module
    batch_size: int = 128

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        self.net.eval()
        device = next(self.net.parameters()).device
        return torch.cat([self.net(chunk.to(device)).double().cpu() for chunk in images.split(self.batch_size)])


class _Features(nn.Identity):
    """Features already extracted, as torchmetrics' custom ``feature=`` module: it passes them through and says
    their width, so the metric does not probe it with a 299×299 dummy image."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) of two N×F feature sets (``a`` as the real side), in float64, by
    torchmetrics' ``FrechetInceptionDistance`` over the given features."""
    from torchmetrics.image.fid import FrechetInceptionDistance  # deferred: slow to import; only FD needs it

    if len(a) < 2 or len(b) < 2:
        raise GaninvError("Fréchet distance needs at least 2 images on each side")
    # sync_on_compute=False: the features are this process's own; a sync under DDP would wait for ranks that
    # never compute an FD (evaluations run on the main process only)
    metric = FrechetInceptionDistance(feature=_Features(a.shape[1]), sync_on_compute=False)
    metric.update(a.double().cpu(), real=True)
    metric.update(b.double().cpu(), real=False)
    return float(metric.compute())


def kernel_distance(real_features: Tensor, fake_features: Tensor, *, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, std) over ``subsets`` random subsets of the unbiased MMD² with the cubic polynomial kernel
    (x·y/d + 1)³ — KID's estimator, through torchmetrics' ``poly_mmd``. ``subset_size`` is clipped to the smaller
    side (torchmetrics' metric class refuses instead, which would make KID unusable on a small test split). The
    std is over subsets (population std, as torchmetrics reports it)."""
    from torchmetrics.image.kid import poly_mmd  # deferred: torchmetrics.image is slow to import; only KID needs it

    if real_features.ndim != 2 or fake_features.ndim != 2 or real_features.shape[1] != fake_features.shape[1]:
        raise GaninvError(f"kernel distance needs two N×F feature sets of one width, got "
                          f"{tuple(real_features.shape)} and {tuple(fake_features.shape)}")
    size = min(subset_size, len(real_features), len(fake_features))
    if size < 2 or subsets < 1:
        raise GaninvError(f"kernel distance needs at least 2 images on each side and 1 subset (got "
                          f"{len(real_features)} real, {len(fake_features)} generated, {subsets} subsets)")
    real, fake = real_features.double(), fake_features.double()
    gen = torch.Generator().manual_seed(seed)  # a seeded generator: the global RNG stays untouched
    scores = torch.stack([
        poly_mmd(real[torch.randperm(len(real), generator=gen)[:size]],
                 fake[torch.randperm(len(fake), generator=gen)[:size]])
        for _ in range(subsets)
    ])
    return float(scores.mean()), float(scores.std(unbiased=False))


# --- Inception (FID) ------------------------------------------------------------------------------------------------
class _InceptionFeatures(nn.Module):
    """torch-fidelity's Inception-v3. torch-fidelity reads a weights path with torch.load's full unpickler
    (``weights_only`` off: a file's code would run), so it never sees the user's file: that is read by
    ``safe_files.torch_load_tensors``, checked to be a dict of tensors, and saved again by us into a private
    temporary folder for it to read."""

    def __init__(self, weights_path: str):
        super().__init__()
        require("torch_fidelity", "fid", "FID")  # torchmetrics' Inception-v3 is torch-fidelity's (an optional extra)
        from torchmetrics.image.fid import NoTrainInceptionV3  # deferred: loads Inception's code; only FID needs it

        state = safe_files.torch_load_tensors(weights_path, "Inception weights", max_bytes=INCEPTION_MAX_BYTES,
                                              legacy=True)  # torch-fidelity's file may predate torch 1.6's zip
        if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, Tensor)
                                                for k, v in state.items())):
            raise GaninvError(f"Inception weights {weights_path} are not a state dict of tensors")
        with tempfile.TemporaryDirectory(prefix="ganinv-inception-") as folder:
            vetted = Path(folder) / INCEPTION_FILE
            torch.save(state, vetted)  # tensors only, written here: safe for torch-fidelity's full unpickler
            self.inception = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                                feature_extractor_weights_path=str(vetted))

    def forward(self, x: Tensor) -> Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return self.inception((x.clamp(0, 1) * 255).to(torch.uint8))


def inception_weights_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def inception_extractor(weights: str | None = None) -> tuple[FeatureExtractor | None, str]:
    path = inception_weights_path(weights)
    if not path.is_file():
        return None, (f"FID unavailable: Inception weights {INCEPTION_FILE} not found at {path} (give --fid-weights "
                      "PATH); reporting FD-domain instead, which is not comparable with published FIDs")
    try:
        return FeatureExtractor("FID", _InceptionFeatures(str(path))), f"FID with Inception weights {path}"
    except GaninvError as exc:  # the fid extra missing, or weights that are not a state dict: say so, fall back
        return None, f"FID unavailable ({exc}); reporting FD-domain instead"
    except Exception as exc:  # a damaged file: say so, fall back
        return None, f"FID unavailable ({type(exc).__name__}: {exc}); reporting FD-domain instead"


# --- the domain classifier (FD-domain) -------------------------------------------------------------------------------
class DomainClassifier(nn.Module):
    """Three strided convs and global pooling: 128-d features, a linear head over the dataset's labels."""

    def __init__(self, *, channels: int, outputs: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, DOMAIN_FEATURES, 3, 2, 1), nn.BatchNorm2d(DOMAIN_FEATURES), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(DOMAIN_FEATURES, outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def _classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    if labels.dtype.is_floating_point:  # multi-label attributes (CelebA)
        return F.binary_cross_entropy_with_logits(logits, labels)
    return F.cross_entropy(logits, labels)


def train_domain_classifier(dataset, *, steps: int = 400, batch_size: int = 64, seed: int = 0) -> DomainClassifier:
    images, labels = dataset.tensors()
    if labels.dtype.is_floating_point:
        outputs = labels.shape[1]
    else:
        if (labels < 0).any():
            raise GaninvError(f"FD-domain needs labelled data; {dataset.spec} has none (give Inception weights)")
        outputs = int(labels.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DomainClassifier(channels=images.shape[1], outputs=outputs)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (min(batch_size, len(images)),), generator=gen)
        loss = _classification_loss(net.head(net(images[idx])), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return net.eval()


def _cache_dir() -> Path:
    return Path(os.environ.get("GANINV_CACHE", Path.home() / ".cache" / "ganinv")) / "fd-domain"


def domain_extractor(data_spec: str, *, image_size: int, channels: int, steps: int = 400) -> FeatureExtractor:
    """The FD-domain extractor for a dataset, trained once on its train split and cached (safetensors)."""


    key = hashlib.sha1(f"{data_spec}|{image_size}|{channels}|{steps}|v1".encode()).hexdigest()[:16]
    path = _cache_dir() / f"{key}.safetensors"
    train = open_dataset(data_spec, image_size=image_size, channels=channels, split="train")
    if path.is_file():
        return FeatureExtractor("FD-domain", _cached_domain_classifier(path, channels).eval())
    net = train_domain_classifier(train, steps=steps)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"data": data_spec}))
    return FeatureExtractor("FD-domain", net)


def _cached_domain_classifier(path: Path, channels: int) -> DomainClassifier:
    """The cached classifier (safetensors, bounded, checked to fit the net), or one line naming the damaged cache."""
    weights, _ = safe_files.read_safetensors(path, "FD-domain classifier cache", max_bytes=DOMAIN_CACHE_MAX_BYTES)
    head = weights.get("head.weight")
    if head is None or head.ndim != 2 or not 1 <= head.shape[0] <= MAX_DOMAIN_OUTPUTS:
        raise GaninvError(f"the FD-domain classifier cache {path} is damaged (no usable head.weight); delete it "
                          "and it is trained again")
    net = DomainClassifier(channels=channels, outputs=head.shape[0])
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise GaninvError(f"the FD-domain classifier cache {path} does not fit the classifier "
                          f"({str(exc).strip().splitlines()[0][:120]}); delete it and it is trained again") from None
    return net


def feature_extractor(data_spec: str | None, *, image_size: int, channels: int, fid_weights: str | None = None):
    """Inception when its weights are on disk, else FD-domain on ``data_spec``'s labels. Returns (extractor, note)."""
    extractor, note = inception_extractor(fid_weights)
    if extractor is not None:
        return extractor, note
    if data_spec is None:
        raise GaninvError(note + "; FD-domain needs a labelled --data")
    return domain_extractor(data_spec, image_size=image_size, channels=channels), note
