"""Plain helpers the tests import (`from helpers import …`): tiny settings, tiny runs, running the CLI in-process.

Fixtures live in conftest.py; this module holds no fixtures and no tests. pytest puts tests/ on sys.path (the
folder of the top conftest.py), so every test folder imports it as ``helpers``.
"""
from __future__ import annotations

import os
import socket
import sys

import torch
from torch import nn

from ganinv.training.launch import open_training_data, train_run
from ganinv.training.loop import train

TINY_NET = {"image_size": 16, "width": 8, "latent_dim": 8}
TINY_TRAIN = {"batch_size": 16, "checkpoint_every": 5, "sample_every": 5, "eval_every": 5}


def tiny_train(method, out, *, steps=6, **kwargs):
    """Train METHOD into OUT on tiny nets (a gan gets TINY_NET; post-hoc methods take their generator's nets)."""
    net = kwargs.pop("net_overrides", None)
    net = {**TINY_NET, **(net or {})} if method == "gan" else net
    return train_run(method, out, show_progress=False, net_overrides=net,
                     train_overrides={**TINY_TRAIN, "steps": steps, **kwargs.pop("train_overrides", {})}, **kwargs)


def train_method(method_class, config, out, **method_kwargs):
    """A method object trained into ``out`` on its config's data (for tests that inspect the object afterwards)."""
    dataset, eval_images = open_training_data(config)
    method = method_class(config, **method_kwargs)
    train(method, out, dataset=dataset, eval_images=eval_images, show_progress=False)
    return method


def make_generator_run(out, seed=0, channels=1, image_size=16):
    """A tiny untrained DCGAN generator whose images vary strongly with z (a 10-step GAN's barely do): batch-norm
    statistics calibrated on prior samples, the output layer scaled up. Invertible enough to test that encoders
    learn, at no training cost."""
    from ganinv.core.config import current_versions
    from ganinv.core.rundir import save_checkpoint, write_config
    from ganinv.training.launch import build_config, new_method

    torch.manual_seed(seed)
    config = build_config("gan", data="digits", net={**TINY_NET, "channels": channels, "image_size": image_size},
                          train=TINY_TRAIN)
    config = config.replace(versions=current_versions())
    method = new_method(config)
    G = method.nets["generator"]
    with torch.no_grad():
        G.blocks[-1][0].weight.mul_(8.0)
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batches
        G.train()
        for _ in range(4):
            G(method.prior.sample(256))
        G.eval()
    out.mkdir(parents=True)
    write_config(out, config)
    save_checkpoint(method, out, step=0)
    return out


def tiny_wrapped_generator() -> nn.Module:
    """A user's own generator for the ``wrapped`` method, rebuilt by its factory name
    ``"helpers:tiny_wrapped_generator"``: 8 latents → 1×16×16 images in (-1, 1)."""
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))


def free_port() -> int:
    """A TCP port nothing listens on now (for `accelerate launch --main_process_port`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ the CLI in-process
def run_cli(monkeypatch, capsys, *args):
    """Run the CLI in-process as `ganinv ARGS…`: (exit status, stdout, stderr). Arguments may be str, numbers or
    paths (os.fsdecode: a name that is not UTF-8 reaches the command as the shell would pass it)."""
    from ganinv import cli

    argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in args]
    monkeypatch.setattr(sys, "argv", ["ganinv", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *needles):
    """A refused command: exit 2, one `error:` line naming every needle, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    assert err.strip().startswith("error:")
    for needle in needles:
        assert needle in " ".join(err.split()), (needle, err)


CELEBA_ATTRIBUTES = ("Male", "Eyeglasses", "Smiling", "Blond_Hair")


def make_celeba(root, *, n_train=40, n_valid=4, n_test=12, size=(20, 24), seed=0):
    """A tiny CelebA layout the tests own: img_align_celeba/*.jpg (smooth random colour fields, so JPEG keeps
    them), list_attr_celeba.txt (CELEBA_ATTRIBUTES, ±1) and list_eval_partition.txt (0 train, 1 valid, 2 test).
    Returns the spec ``celeba:ROOT``."""
    import numpy as np
    from PIL import Image

    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n = n_train + n_valid + n_test
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize(size, Image.BILINEAR).save(images / name)
    labels = rng.choice(["1", "-1"], size=(n, len(CELEBA_ATTRIBUTES)))
    rows = [f"{name} " + " ".join(row) for name, row in zip(names, labels)]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(n), " ".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
    splits = [0] * n_train + [1] * n_valid + [2] * n_test
    (root / "list_eval_partition.txt").write_text("".join(f"{a} {b}\n" for a, b in zip(names, splits)))
    return f"celeba:{root}"


def labelled_grid_width(columns: int, row_labels, side: int = 16) -> int:
    """The width of a ``core.viz.labelled_grid`` of ``columns`` images of ``side`` px with these row labels (no
    title wider than the grid): the label column, then the tiles upscaled to MIN_TILE with their 2 px padding."""
    from ganinv.core.viz import MIN_TILE, label_font

    font = label_font()
    tile = side * max(1, -(-MIN_TILE // side))
    return max(int(font.getlength(text)) for text in row_labels) + 10 + columns * (tile + 2) + 2


# --- StyleGAN files in their owners' formats, written from this project's own nets --------------------------------

TINY_STYLEGAN2_KWARGS = {  # an NVlabs stylegan2-ada-pytorch Generator's constructor kwargs, tiny
    "z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "synthesis_kwargs": {"channel_base": 256, "channel_max": 16,
                                                              "num_fp16_res": 0, "conv_clamp": 256,
                                                              "architecture": "skip"}}
TINY_STYLEGAN3_KWARGS = {  # an NVlabs stylegan3 Generator's constructor kwargs (stylegan3-t), tiny
    "z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 256, "channel_max": 16, "num_layers": 4,
    "magnitude_ema_beta": 0.999, "conv_kernel": 3, "use_radial_filters": False}


def tiny_stylegan(arch: str = "stylegan2", seed: int = 0):
    """(our net with random weights, the NVlabs kwargs it was built from) — every weight perturbed, so no term of
    the forward pass hides behind a zero or a one."""
    from ganinv.nets.stylegan2 import StyleGAN2, StyleGAN2Config
    from ganinv.nets.stylegan3 import StyleGAN3, StyleGAN3Config

    kwargs = TINY_STYLEGAN2_KWARGS if arch == "stylegan2" else TINY_STYLEGAN3_KWARGS
    net_cls, config_cls = (StyleGAN2, StyleGAN2Config) if arch == "stylegan2" else (StyleGAN3, StyleGAN3Config)
    torch.manual_seed(seed)
    net = net_cls(config_cls.from_nvlabs_kwargs(kwargs)).eval()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if "filter" in name or name.endswith(("freqs", "phases", "transform")):
                continue  # designed, not learned
            noise = 0.1 * torch.randn_like(tensor)
            tensor.copy_(tensor.abs() + 0.5 + noise.abs() if "magnitude_ema" in name else tensor + noise)
    return net, kwargs


TINY_STYLEGAN2_D_KWARGS = {  # an NVlabs Discriminator's constructor kwargs as stylegan2-ada-pytorch records them, tiny
    "c_dim": 0, "img_resolution": 16, "img_channels": 3, "channel_base": 256, "channel_max": 16, "num_fp16_res": 0,
    "conv_clamp": 256, "block_kwargs": {}, "mapping_kwargs": {}, "epilogue_kwargs": {"mbstd_group_size": 2}}


def tiny_stylegan_d(seed: int = 0, **changes):
    """(our NVlabs-layout StyleGAN2 discriminator with random weights, the NVlabs kwargs it was built from), every
    weight perturbed as in ``tiny_stylegan``; ``changes`` replace top-level kwargs."""
    from ganinv.nets.stylegan2_d import DiscriminatorConfig, StyleGAN2Discriminator

    kwargs = {**TINY_STYLEGAN2_D_KWARGS, **changes}
    torch.manual_seed(seed)
    net = StyleGAN2Discriminator(DiscriminatorConfig.from_nvlabs_kwargs((), kwargs)).eval()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if "filter" not in name:  # designed, not learned
                tensor.add_(0.1 * torch.randn_like(tensor))
    return net, kwargs


class _PersistentObject:
    """Pickles as NVlabs' ``torch_utils.persistence`` does: ``_reconstruct_persistent_obj(meta)``, the module's
    source code in meta beside its state."""

    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,)


def _persistent(module: nn.Module, class_name: str, module_src: str, init_kwargs=None):
    from collections import OrderedDict

    children = OrderedDict((name, _persistent(child, type(child).__name__, module_src))
                           for name, child in module.named_children())
    state = {"training": False, "_parameters": OrderedDict(module._parameters), "_buffers": OrderedDict(module._buffers),
             "_non_persistent_buffers_set": set(), "_modules": children, "_init_args": (),
             "_init_kwargs": dict(init_kwargs or {})}
    return _PersistentObject({"type": "class", "version": 4, "module_src": module_src, "class_name": class_name,
                              "state": state})


def write_nvlabs_pickle(path, net: nn.Module, init_kwargs: dict, *, module_src: str = "", keys=("G", "G_ema"),
                       discriminator: tuple[nn.Module, dict] | None = None):
    """A ``network-snapshot-*.pkl`` as stylegan2-ada-pytorch / stylegan3 write it — a dict of persistent objects
    (G, D, G_ema, augment_pipe) and training_set_kwargs — with our net standing for G and G_ema, and
    ``discriminator`` (our D, its NVlabs kwargs; see ``tiny_stylegan_d``) for D (no D when None)."""
    import pickle
    import types

    fake = types.ModuleType("torch_utils.persistence")
    fake._reconstruct_persistent_obj = lambda meta: meta
    fake._reconstruct_persistent_obj.__module__ = fake.__name__
    fake._reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    saved = {name: sys.modules.get(name) for name in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": fake})
    try:
        snapshot = {"training_set_kwargs": {"resolution": init_kwargs["img_resolution"]}, "augment_pipe": None}
        if discriminator is not None:
            snapshot["D"] = _persistent(discriminator[0], "Discriminator", module_src, discriminator[1])
        snapshot.update({key: _persistent(net, "Generator", module_src, init_kwargs) for key in keys})
        with open(path, "wb") as f:
            pickle.dump(snapshot, f)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path


def write_rosinality_checkpoint(path, net: nn.Module, *, with_latent_avg: bool = False):
    """A rosinality/stylegan2-pytorch ``train.py`` checkpoint: g, d, g_ema, optimiser states and the argparse
    arguments (which is why torch.load needs weights_only=False on it)."""
    import argparse

    from ganinv.nets.stylegan2 import nvlabs_to_rosinality

    c = net.config
    g_ema = nvlabs_to_rosinality(net.state_dict(), c)
    checkpoint = {"g": g_ema, "d": {"convs.0.0.weight": torch.randn(4, 3, 1, 1)}, "g_ema": g_ema, "g_optim": {},
                  "d_optim": {}, "args": argparse.Namespace(size=c.img_resolution, latent=c.w_dim, n_mlp=c.mapping_layers)}
    if with_latent_avg:
        checkpoint["latent_avg"] = net.state_dict()["mapping.w_avg"].clone()
    torch.save(checkpoint, path)
    return path
