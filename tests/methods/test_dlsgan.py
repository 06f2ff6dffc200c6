"""DLSGAN (seed 003) beyond the contract (tests/methods/test_contract.py): the latent scale a run keeps and
saves, generate(z) = G(z∘s), and the options that drive the losses. The tracker, losses and nets have their own
files under tests/latent, tests/losses and tests/nets."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.methods.dlsgan import DLSGAN, DLSGANOptions
from ganinv.training.launch import build_config
from ganinv.training.loop import make_accelerator
from helpers import train_method

TINY = dict(image_size=16, width=8, latent_dim=8)
TINY_TRAIN = dict(batch_size=16, checkpoint_every=10, sample_every=20, eval_every=20, eval_samples=32, log_every=1)


def tiny_config(steps=20, seed=0, **train):
    return build_config("dlsgan", data="digits", seed=seed, net=TINY, train={**TINY_TRAIN, "steps": steps, **train})


def train_dlsgan(out, steps=20, options=None, seed=0):
    return train_method(DLSGAN, tiny_config(steps, seed), out, options=options)


@pytest.fixture(scope="module")
def dlsgan_run(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    return out, train_dlsgan(out, steps=20)


def test_tiny_dlsgan_tracks_and_saves_its_latent_scale(dlsgan_run):
    out, method = dlsgan_run  # finite losses for every method: tests/methods/test_contract.py
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_logs = [line for line in lines if line["kind"] == "train"]
    assert len(train_logs) == 20 and {"enc_loss", "r1", "latent_entropy"} <= train_logs[-1].keys()
    assert any(line["kind"] == "eval" and "generated/psnr" in line for line in lines)
    s = method.latent_scale
    assert not torch.equal(s, torch.ones(8)) and s.norm().item() == pytest.approx(math.sqrt(8), rel=1e-5)
    assert method.tracker.updates == 20
    saved = load_file(str(out / "weights.safetensors"))
    assert torch.equal(saved["extra.latent_scale"], s.cpu())
    assert "extra.latent_trace.buffer" in saved
    assert json.loads((out / "config.json").read_text())["options"]["encoder_loss_on"] == "DG"  # the default


def test_a_loaded_run_keeps_the_scale_and_generates_g_of_z_times_s(dlsgan_run):
    out, method = dlsgan_run  # identical generate/invert after save → load: tests/methods/test_contract.py
    a = load(out)
    assert torch.equal(a.method.latent_scale, method.latent_scale.cpu())
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(4))
    G = a.method.nets["generator"]
    with torch.no_grad():  # generate(z) is G(z∘s), never G(z)
        assert torch.allclose(a.generate(z), G(z * a.method.latent_scale), atol=1e-6)
        assert not torch.allclose(a.generate(z), G(z), atol=1e-6)


def configured(options, steps=3):
    config = tiny_config(steps)
    method = DLSGAN(config, options=options)
    method.configure(make_accelerator(config))
    return method


def test_options_drive_the_losses_and_no_dls_keeps_scale_one():
    torch.manual_seed(0)
    batch = [torch.rand(16, 1, 16, 16), torch.zeros(16)]
    no_dls = configured(DLSGANOptions(dls=False, encoder_loss_on="D"))
    for _ in range(3):
        logs = no_dls.train_step(batch)
    assert torch.equal(no_dls.latent_scale, torch.ones(8))
    assert logs["g_loss"] == logs["g_adv"]  # encoder loss on D only
    # s = 1 under the N(0,1) prior of dlsgan's small preset: 8 · log √(2πe)
    assert logs["latent_entropy"] == pytest.approx(8 * math.log(math.sqrt(2 * math.pi * math.e)))
    dg = configured(DLSGANOptions(encoder_loss_on="DG"))
    logs = dg.train_step(batch)
    assert logs["g_loss"] > logs["g_adv"]  # + λ_enc·L_enc
    assert not torch.equal(dg.latent_scale, torch.ones(8))


def test_bad_options_raise_our_error():
    with pytest.raises(GaninvError, match="encoder_loss_on"):
        DLSGANOptions(encoder_loss_on="X")
    with pytest.raises(GaninvError, match="scale_mode"):
        DLSGANOptions(scale_mode="median")
    with pytest.raises(GaninvError):
        DLSGANOptions(lambda_r1=-1.0)
    with pytest.raises(GaninvError):
        DLSGAN(tiny_config(), options={"encoder_loss_on": "DG"})  # not a DLSGANOptions
