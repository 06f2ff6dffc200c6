"""Shared fixtures: tiny runs (16 px, width 8) made once per session, on data the tests make themselves."""
from __future__ import annotations

import pytest
import torch

from ganinv.training.launch import train_run


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny nets are faster on one thread; a second OpenMP thread only contends on 2 shared cores (measured up to
    50× slower steps when other processes run beside the suite)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_NET = dict(image_size=16, width=8, latent_dim=8)
TINY_TRAIN = dict(batch_size=16, checkpoint_every=5, sample_every=5, eval_every=5)


def tiny_train(method, out, *, steps=6, **kwargs):
    net = kwargs.pop("net_overrides", {}) if method == "gan" else None
    return train_run(method, out, show_progress=False, net_overrides={**TINY_NET, **(net or {})} if method == "gan" else None,
                     train_overrides={**TINY_TRAIN, "steps": steps, **kwargs.pop("train_overrides", {})}, **kwargs)


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "gan"
    tiny_train("gan", out, steps=10, data="digits")
    return out


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


@pytest.fixture(scope="session")
def generator_run(tmp_path_factory):
    return make_generator_run(tmp_path_factory.mktemp("runs") / "generator")


@pytest.fixture(scope="session")
def aegan_run(tmp_path_factory, generator_run):
    out = tmp_path_factory.mktemp("runs") / "aegan"
    tiny_train("aegan", out, steps=10, generator=generator_run)
    return out


# ---------------------------------------------------------------------------------------------- bad image files
@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory):
    """(root, {name: "ok" | "bad" | "skip: REASON"}): the bad-file corpus of tests/badfiles.py, made once."""
    from badfiles import make_corpus

    root = tmp_path_factory.mktemp("badfiles") / "corpus"
    return root, make_corpus(root)


def run_ganinv(monkeypatch, capsys, *args):
    """Run the CLI in-process as `ganinv ARGS…`: (exit status, stdout, stderr). Arguments may be str or paths
    (os.fsdecode: a name that is not UTF-8 reaches the command as the shell would pass it)."""
    import os
    import sys

    from ganinv import cli

    monkeypatch.setattr(sys, "argv", ["ganinv", *map(os.fsdecode, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err
