"""InversionModel: a trained run behind the one seam every application uses — generate, invert, reconstruct.

It is an ``nn.Module`` (``.to``, ``.eval``, ``model(x)`` = reconstruct, ``.parameters()`` of every net) and a
huggingface_hub ``ModelHubMixin`` (``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``)::

    model = InversionModel.load("runs/aegan", device="auto", dtype=torch.float32)   # or ganinv.load
    model.save_pretrained("export/")            config.json + model.safetensors + README.md (the model card)
    InversionModel.from_pretrained("export/")   a folder (a save_pretrained one or a run directory) or a Hub id

The method keeps owning its nets (``method.nets``, what training and the run directory use); the model registers
the *same* module objects in ``self.nets`` (an ``nn.ModuleDict``), so moving or casting the model moves the
method's nets, and ``_apply`` then points ``method.device`` (and the method's extra tensors) at the new place.
"""
from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelHubMixin, snapshot_download
from torch import Tensor, nn

from ganinv.core import io as fs
from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.core.rundir import (
    CONFIG,
    METRICS,
    load_net_weights,
    open_run,
    read_weights,
    read_weights_file,
    split_weights,
    weights_bytes,
    write_config,
)
from ganinv.data.images import resize_images, to_unit_float
from ganinv.inference.card import check_card_options, model_card
from ganinv.latent import Prior
from ganinv.methods import Method, method_class
from ganinv.methods.spaces import Space

PRETRAINED_WEIGHTS = "model.safetensors"  # the name Hugging Face tools look for; ganinv's run format inside
CARD = "README.md"
DEVICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` (CUDA when available, else the CPU) or a device this machine has; anything else is one
    GaninvError line, before any file is read."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise GaninvError(f"unknown device {device!r}; use {DEVICES}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GaninvError(f"device {str(device)!r} was asked for but no CUDA device is visible; use 'auto' or 'cpu'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GaninvError(f"device {str(device)!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GaninvError("device 'mps' was asked for but this machine has no usable MPS device; use 'auto' or 'cpu'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise GaninvError(f"unsupported device {str(device)!r}; use {DEVICES}")
    return device


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """A floating torch dtype (or its name, e.g. "bfloat16"); None is float32, what every run trains in."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = DTYPES.get(dtype.removeprefix("torch."), dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise GaninvError(f"dtype must be a floating torch dtype ({', '.join(DTYPES)}), got {dtype!r}")
    return dtype


class InversionModel(nn.Module, ModelHubMixin, library_name="ganinv", tags=["gan-inversion"]):
    """A method's nets behind generate / invert / reconstruct. Images are N×C×H×W in [0, 1] (``invert`` also takes
    uint8 0..255 and other sizes, resized with a warning); latents are in the prior's units. Outputs come in the
    model's dtype (float32 unless loaded or cast otherwise), on its device."""

    def __init__(self, method: Method, *, batch_size: int = 256):
        super().__init__()
        self.method = method
        self.batch_size = batch_size
        self.source: Path | None = None  # the folder it was loaded from: its metrics.jsonl feeds the model card
        self.trained_steps = 0  # the step of the checkpoint it was loaded from (0 when built in memory)
        self.nets = nn.ModuleDict(method.unwrapped_nets())
        self.training = any(net.training for net in self.nets.values())  # mirror the nets; leave their modes be

    # --- construction ---
    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu",
             dtype: torch.dtype | str | None = torch.float32) -> InversionModel:
        """A run directory, or a folder ``save_pretrained`` wrote, by path; in eval mode on ``device`` ("auto":
        CUDA when available, else the CPU) with floating tensors in ``dtype``."""
        device, dtype = resolve_device(device), resolve_dtype(dtype)
        folder, config = open_run(run_dir)
        tensors, metadata = read_folder_weights(folder, config.method)
        model = cls(method_class(config.method)(config))
        # cast before copying the weights in: a float64 file then loads into float64 nets exactly
        model.to(dtype=dtype)
        weights, extra = split_weights(tensors)
        load_net_weights(model.method.nets, weights, folder)
        model.method.load_extra_state(extra)
        model.source, model.trained_steps = folder, int(metadata.get("step", 0))
        return model.to(device).eval()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype | str | None = torch.float32, **hub_kwargs) -> InversionModel:
        """A local folder (``save_pretrained``'s, or any run directory) — always, without the network — or a Hub
        repository id (``owner/name``), downloaded through huggingface_hub when the Hub is reachable.
        ``hub_kwargs``: huggingface_hub's (revision, cache_dir, token, local_files_only, force_download)."""
        device, dtype = resolve_device(device), resolve_dtype(dtype)
        where = str(pretrained_model_name_or_path)
        if Path(where).is_dir():
            return cls.load(where, device=device, dtype=dtype)
        if Path(where).exists():
            raise RunDirError(f"{where} is a file; give the folder that holds config.json")
        if where.startswith((".", "/", "~")) or where.count("/") > 1:  # a path, never a Hub id (owner/name)
            raise RunDirError(f"{where} does not exist")
        try:
            return super().from_pretrained(where, device=device, dtype=dtype, **hub_kwargs)
        except GaninvError:
            raise
        except Exception as exc:  # noqa: BLE001 - the Hub fails in many types (offline, 404, bad id, auth): one line
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise GaninvError(f"{where} is no local folder, and the Hugging Face Hub did not give it "
                              f"({type(exc).__name__}: {reason})") from None

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir, force_download: bool,
                         local_files_only: bool, token, device, dtype, **ignored) -> InversionModel:
        # ModelHubMixin's hook for Hub ids. ``ignored``: config.json keys it matched to __init__'s parameter names
        # ("method"), and the download options of older huggingface_hub releases
        folder = snapshot_download(model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                                   local_files_only=local_files_only, token=token,
                                   allow_patterns=[CONFIG, PRETRAINED_WEIGHTS, METRICS])
        return cls.load(folder, device=device, dtype=dtype)

    # --- saving: ModelHubMixin.save_pretrained(dir) calls these ---
    def _save_pretrained(self, save_directory: Path) -> None:
        """config.json (the RunConfig) and model.safetensors (every net, extra tensors included, in the run format);
        the metrics.jsonl of the folder it came from, so the card and a later re-save can still describe it.
        A subclass's own state (OptimizingModel's settings, TunedModel's pivots) is not saved: the folder loads as
        a plain InversionModel over the same nets."""
        write_config(save_directory, self.config)
        data = weights_bytes(self.method.unwrapped_nets(), self.method.extra_state(), method=self.config.method,
                             step=self.trained_steps)
        fs.atomic_write_bytes(save_directory / PRETRAINED_WEIGHTS, data)
        self._copy_metrics(save_directory)
        # ModelHubMixin keeps an existing README.md; a card generated for another model would lie, so drop it
        (save_directory / CARD).unlink(missing_ok=True)

    def _copy_metrics(self, save_directory: Path) -> None:
        source = self.source / METRICS if self.source is not None else None
        target = save_directory / METRICS
        if source is not None and source.is_file() and source.resolve() != target.resolve():
            shutil.copyfile(source, target)

    def generate_model_card(self, *args, **card_options) -> ModelCard:
        """The README.md ``save_pretrained`` writes, a Hub model card (see ``ganinv.inference.card``): licence,
        datasets, metrics and model-index in its YAML; details, usage, training, evaluation and limitations below.
        ``save_pretrained(dir, model_card_kwargs={...})`` sets ``repo_id`` (the id the usage code loads),
        ``license`` (a Hub licence id; ganinv's own by default) and ``base_model``."""
        check_card_options(card_options)
        return model_card(self, self.source / METRICS if self.source is not None else None, **card_options)

    def save_pretrained(self, save_directory, *, model_card_kwargs: dict | None = None, **hub_kwargs):
        """huggingface_hub's ``save_pretrained``, with the card's options checked before anything is written."""
        check_card_options(model_card_kwargs or {})
        return super().save_pretrained(save_directory, model_card_kwargs=model_card_kwargs, **hub_kwargs)

    def push_to_hub(self, repo_id: str, *, model_card_kwargs: dict | None = None, **hub_kwargs) -> str:
        """huggingface_hub's ``push_to_hub``, with the repository's id in the card's usage code."""
        return super().push_to_hub(repo_id, model_card_kwargs={"repo_id": repo_id, **(model_card_kwargs or {})},
                                   **hub_kwargs)

    # --- properties ---
    @property
    def config(self) -> RunConfig:
        return self.method.config

    @property
    def prior(self) -> Prior:
        return self.method.prior

    @property
    def space(self) -> Space:
        """The latent space of ``generate`` / ``invert`` (``ganinv.methods.spaces``): the run's own (Z unless an
        encoder run's option ``space`` says W or W+); a model optimising in another space says that one."""
        return self.method.space

    @property
    def device(self) -> torch.device:
        return self.method.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the nets' floating tensors: what inputs are cast to and outputs come in."""
        floating = (t for t in self._tensors() if t.is_floating_point())
        return next(floating, torch.empty(0)).dtype

    @property
    def image_shape(self) -> tuple[int, int, int]:
        n = self.config.net
        return (n.channels, n.image_size, n.image_size)

    @property
    def can_invert(self) -> bool:
        return self.method.can_invert

    # --- nn.Module ---
    def forward(self, x: Tensor) -> Tensor:
        """``model(x)`` is ``reconstruct(x)``: G(invert(x))."""
        return self.reconstruct(x)

    def _apply(self, fn, *args, **kwargs):
        """Every .to / .cuda / .double goes through here: after moving the nets, the method must compute on their
        new device, and its extra tensors (e.g. DLSGAN's latent scale, a plain tensor) must follow them."""
        self._share_nets()
        before = self.method.device
        super()._apply(fn, *args, **kwargs)
        tensor = next(self._tensors(), None)
        if tensor is not None and tensor.device != before:
            self.method.device = tensor.device
            # each method's load_extra_state places its tensors on method.device; reloading its own is the move
            self.method.load_extra_state(self.method.extra_state())
        return self

    def train(self, mode: bool = True):
        self._share_nets()
        return super().train(mode)

    def _share_nets(self) -> None:
        # a method may have replaced a net since (torch.compile in place, a tuned copy): register what it has now
        if dict(self.nets) != self.method.unwrapped_nets():
            self.nets = nn.ModuleDict(self.method.unwrapped_nets())

    def _tensors(self):
        return (t for net in self.nets.values() for t in (*net.parameters(), *net.buffers()))

    # --- the seam ---
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample(n, generator=generator).to(self.device, self.dtype)

    def generate(self, z: Tensor, *, grad: bool = False) -> Tensor:
        """Latents N×dim → images N×C×H×W in [0, 1]. Autograd follows as PyTorch users expect: on a ``z`` that
        requires grad (or with ``grad=True``) the graph is kept, so a loss of your own on the images backpropagates
        to ``z`` (and to any net parameter that requires grad); otherwise no graph is built. The nets run in eval
        mode either way (batch norm uses its running statistics), so both paths give the same images."""
        self.check_latents(z)
        return self._batched(self.method.generate, z, grad=keeps_graph(z, grad))

    def invert(self, x: Tensor) -> Tensor:
        return self._batched(self.method.invert, self.prepare_images(x))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.generate(self.invert(x))

    # --- checking inputs ---
    def check_latents(self, z: Tensor) -> None:
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.prior.dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise GaninvError(f"latents must be N×{self.prior.dim}, got {shape}")

    def prepare_images(self, x: Tensor) -> Tensor:
        """What ``invert`` accepts → what the nets take: uint8 0..255 becomes [0, 1], and an image of another
        height or width is resized (antialiased) to the run's size with a warning — the encoder saw only that
        size. Wrong dimensions or channels, NaN and values outside [0, 1] stay a GaninvError."""
        x = to_unit_float(x, self.dtype)
        self.check_images(x, any_size=True)
        size = self.config.net.image_size
        if tuple(x.shape[2:]) != (size, size):
            warnings.warn(f"images of {x.shape[2]}×{x.shape[3]} px were resized to this run's {size}×{size} "
                          "(antialiased bilinear); resize them yourself to silence this", UserWarning, stacklevel=3)
            x = resize_images(x, size)
        return x

    def check_images(self, x: Tensor, *, any_size: bool = False) -> None:
        """GaninvError unless ``x`` is N×C×S×S (``any_size``: N×C×H×W) float in [0, 1] for this run."""
        c, s, _ = self.image_shape
        ok = isinstance(x, Tensor) and x.ndim == 4 and x.shape[1] == c and min(x.shape[2:]) > 0
        if not ok or (not any_size and tuple(x.shape[2:]) != (s, s)):
            wanted = f"N×{c}×H×W (resized to {s}×{s})" if any_size else f"N×{c}×{s}×{s}"
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise GaninvError(f"images must be {wanted} for this run, got {got}")
        if not torch.isfinite(x).all():
            raise GaninvError("images contain NaN or infinite values")
        if x.numel() and (x.min() < -1e-4 or x.max() > 1 + 1e-4):
            raise GaninvError(f"images must be in [0, 1], got values in [{x.min():.3f}, {x.max():.3f}]")

    # --- running the nets ---
    def _batched(self, fn: Callable[[Tensor], Tensor], inputs: Tensor, *, grad: bool = False) -> Tensor:
        outs, dtype = [], self.dtype
        with self._running(grad):
            for chunk in inputs.split(self.batch_size):
                outs.append(fn(chunk.to(self.device, dtype)).to(dtype))
        return torch.cat(outs)

    @contextlib.contextmanager
    def _running(self, grad: bool):
        # eval_mode turns autograd off; the gradient path turns it back on inside, keeping the eval-mode nets
        with self.method.eval_mode(), torch.set_grad_enabled(grad):
            yield


def keeps_graph(z: Tensor, grad: bool) -> bool:
    """Whether ``generate`` keeps autograd's graph: asked for (``grad``) or implied by a latent that requires grad."""
    return grad or z.requires_grad


def read_folder_weights(folder: Path, method: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The weights of a ``save_pretrained`` folder (model.safetensors) or of a run directory's newest checkpoint."""
    if (folder / PRETRAINED_WEIGHTS).is_file():
        return read_weights_file(folder / PRETRAINED_WEIGHTS, method)
    return read_weights(folder, method)


def load(run_dir: str | Path, device: str | torch.device = "cpu",
         dtype: torch.dtype | str | None = torch.float32) -> InversionModel:
    """Load any run directory (or save_pretrained folder) by path (``ganinv.load``)."""
    return InversionModel.load(run_dir, device=device, dtype=dtype)
