"""Shared fixtures: tiny runs (16 px, width 8) made once per session, on data the tests make themselves.

Fixtures only: the plain helpers tests import live in tests/helpers.py (`from helpers import …`)."""
from __future__ import annotations

import os

import pytest
import torch

from helpers import make_generator_run, tiny_train

# Tests never touch the network: LPIPS's download on first use (ganinv.metrics.image) stays off, here and in the
# CLI subprocesses tests start; the tests of the download itself replace the function that fetches.
os.environ["GANINV_OFFLINE"] = "1"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny nets are faster on one thread; a second OpenMP thread only contends on 2 shared cores (measured up to
    50× slower steps when other processes run beside the suite)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "gan"
    tiny_train("gan", out, steps=10, data="digits")
    return out


@pytest.fixture(scope="session")
def generator_run(tmp_path_factory):
    return make_generator_run(tmp_path_factory.mktemp("runs") / "generator")


@pytest.fixture(scope="session")
def aegan_run(tmp_path_factory, generator_run):
    out = tmp_path_factory.mktemp("runs") / "aegan"
    tiny_train("aegan", out, steps=10, generator=generator_run)
    return out


@pytest.fixture(scope="session")
def rgb_aegan_run(tmp_path_factory):
    """A tiny colour AEGAN run (16 px), as a CelebA run is colour: for the commands that read photos."""
    root = tmp_path_factory.mktemp("rgb")
    make_generator_run(root / "g", channels=3)
    tiny_train("aegan", root / "e", steps=3, generator=root / "g")
    return root / "e"


# ---------------------------------------------------------------------------------------------- bad image files
@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory):
    """(root, {name: "ok" | "bad" | "skip: REASON"}): the bad-file corpus of tests/badfiles.py, made once."""
    from badfiles import make_corpus

    root = tmp_path_factory.mktemp("badfiles") / "corpus"
    return root, make_corpus(root)

