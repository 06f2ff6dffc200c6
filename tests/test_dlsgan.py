"""DLSGAN (seed 003): the latent scale tracker, the NSGAN/R1 losses, the style nets, and the method end to end."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ganinv import load
from ganinv.core.config import read_config
from ganinv.core.errors import GaninvError
from ganinv.latent import LatentScale, scaled_latent_entropy
from ganinv.losses import (
    dls_encoder_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    nsgan_d_loss,
    nsgan_g_loss,
    r1_penalty,
)
from ganinv.methods import METHODS
from ganinv.methods.dlsgan import DLSGAN, DLSGANOptions
from ganinv.nets.style import ResidualDiscriminator, StyleGenerator, resolution_widths
from ganinv.training.launch import build_config, open_training_data
from ganinv.training.loop import make_accelerator, train

TINY = dict(image_size=16, width=8, latent_dim=8)
TINY_TRAIN = dict(batch_size=16, checkpoint_every=10, sample_every=20, eval_every=20, eval_samples=32, log_every=1)



def tiny_config(steps=20, seed=0, **train):
    return build_config("dlsgan", data="digits", seed=seed, net=TINY, train={**TINY_TRAIN, "steps": steps, **train})


def train_dlsgan(out, steps=20, options=None, resume=False, seed=0):
    config = tiny_config(steps, seed)
    if resume:  # as the CLI does: the run's own config (and options) win
        config = read_config(out).replace(train=config.train)
    dataset, eval_images = open_training_data(config)
    method = DLSGAN(config, options=options)
    train(method, out, dataset=dataset, eval_images=eval_images, resume=resume, show_progress=False)
    return method


# --- the latent scale tracker --------------------------------------------------------------------------------------

def numpy_scale(v):
    root = np.sqrt(v)
    return math.sqrt(len(v)) * root / np.linalg.norm(root)


def test_scale_starts_at_one_keeps_norm_sqrt_d_and_is_one_for_constant_variance():
    tracker = LatentScale(8, window_batches=4)
    assert torch.equal(tracker.scale, torch.ones(8))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        tracker.update(torch.randn(16, 8, generator=gen) * torch.linspace(0.1, 3.0, 8))
    assert torch.isclose(tracker.scale.norm(), torch.tensor(math.sqrt(8)), atol=1e-5)
    assert tracker.scale[-1] > tracker.scale[0]  # more variance, more scale
    for mode in ("window", "ema"):
        constant = LatentScale(8, mode=mode, window_batches=2)
        for c in (0.3, 0.3, 0.3):
            constant.update(torch.full((4, 8), c))
        assert torch.allclose(constant.scale, torch.ones(8), atol=1e-6)
    zero = LatentScale(4, window_batches=1)
    zero.update(torch.zeros(3, 4))  # degenerate v = 0: no direction to prefer
    assert torch.equal(zero.scale, torch.ones(4))


def test_window_and_ema_updates_match_numpy():
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(16, 6)) * rng.uniform(0.1, 2.0, size=6) for _ in range(7)]
    window = LatentScale(6, mode="window", window_batches=4)
    ema = LatentScale(6, mode="ema", decay=0.9)
    v_ema = np.ones(6)
    means = [np.ones(6)] * 4  # the ring starts full of the initial variance, as the authors' var_vectors
    for k, b in enumerate(batches):
        window.update(torch.tensor(b, dtype=torch.float32))
        ema.update(torch.tensor(b, dtype=torch.float32))
        means = means[1:] + [(b**2).mean(0)]
        v_ema = 0.9 * v_ema + 0.1 * (b**2).mean(0)
        np.testing.assert_allclose(window.variance.numpy(), np.mean(means, axis=0), rtol=1e-5)
        np.testing.assert_allclose(window.scale.numpy(), numpy_scale(np.mean(means, axis=0)), rtol=1e-5)
        np.testing.assert_allclose(ema.variance.numpy(), v_ema, rtol=1e-5)
        np.testing.assert_allclose(ema.scale.numpy(), numpy_scale(v_ema), rtol=1e-5)
    assert window.updates == ema.updates == 7


def test_entropy_matches_hand_computation():
    tracker = LatentScale(2, window_batches=1)
    tracker.update(torch.tensor([[1.0, 2.0]]))  # v = (1, 4) → s = √2·(1, 2)/√5
    s1, s2 = math.sqrt(2 / 5), 2 * math.sqrt(2 / 5)
    assert torch.allclose(tracker.scale, torch.tensor([s1, s2]))
    assert tracker.entropy("normal") == pytest.approx(math.log(s1 * math.sqrt(2 * math.pi * math.e))
                                                      + math.log(s2 * math.sqrt(2 * math.pi * math.e)), rel=1e-6)
    assert tracker.entropy("uniform_sqrt3") == pytest.approx(math.log(s1 * 2 * math.sqrt(3))
                                                             + math.log(s2 * 2 * math.sqrt(3)), rel=1e-6)
    # at s = 1: the prior's own entropy, d · ½log(2πe) for N(0,1)
    assert scaled_latent_entropy(torch.ones(5), "normal") == pytest.approx(5 * 0.5 * math.log(2 * math.pi * math.e))
    with pytest.raises(GaninvError):
        tracker.entropy("cauchy")


@pytest.mark.parametrize("mode", ["window", "ema"])
def test_non_finite_batch_never_reaches_the_scale(mode):
    tracker = LatentScale(4, mode=mode, window_batches=3)
    tracker.update(torch.randn(8, 4) * torch.tensor([0.5, 1.0, 2.0, 3.0]))
    before = {k: v.clone() for k, v in tracker.state().items()}
    s = tracker.scale.clone()
    for bad in (float("nan"), float("inf")):
        batch = torch.randn(8, 4)
        batch[3, 1] = bad
        assert tracker.update(batch) is False
    assert tracker.update(torch.full((2, 4), 1e30)) is False  # finite, but its square overflows float32
    assert torch.equal(tracker.scale, s) and torch.isfinite(tracker.scale).all()
    assert all(torch.equal(before[k], v) for k, v in tracker.state().items())


def test_tracker_state_round_trips_and_rejects_another_mode():
    a = LatentScale(5, window_batches=3)
    for _ in range(4):
        a.update(torch.randn(6, 5) * torch.arange(1.0, 6.0))
    b = LatentScale(5, window_batches=3)
    b.load_state(a.state())
    assert torch.equal(a.scale, b.scale)
    nxt = torch.randn(6, 5)
    a.update(nxt), b.update(nxt)
    assert torch.equal(a.scale, b.scale)  # the ring position came back too
    with pytest.raises(GaninvError):
        LatentScale(5, mode="ema").load_state(a.state())
    with pytest.raises(GaninvError):
        LatentScale(5, mode="median")


# --- losses -------------------------------------------------------------------------------------------------------

def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
    torch.manual_seed(0)
    w = torch.randn(1, 2, 3, 3, requires_grad=True)
    x = torch.rand(5, 2, 3, 3, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)  # D(x) = Σ w·x ⇒ ∇_x D = w for every sample
    penalty = r1_penalty(x, logits)
    assert penalty.item() == pytest.approx(w.square().sum().item(), rel=1e-6)
    (grad_w,) = torch.autograd.grad(penalty, w)  # create_graph: the penalty trains D
    assert torch.allclose(grad_w, 2 * w)


def test_nsgan_losses_are_the_softplus_form_of_the_bce_ones():
    real, fake = torch.randn(7), torch.randn(7)
    assert nsgan_d_loss(real, fake).item() == pytest.approx(gan_discriminator_loss(real, fake).item(), rel=1e-6)
    assert nsgan_g_loss(fake).item() == pytest.approx(gan_generator_loss(fake).item(), rel=1e-6)
    assert nsgan_g_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item(), rel=1e-6)
    z, zp, s = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0.5, 1.0, 2.0])
    assert dls_encoder_loss(z, zp, s).item() == pytest.approx(((z * s - zp * s) ** 2).mean().item(), rel=1e-6)


# --- nets ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,channels", [(16, 1), (16, 3), (32, 1), (32, 3)])
def test_style_nets_shapes_and_ranges(size, channels):
    torch.manual_seed(0)
    G = StyleGenerator(latent_dim=8, image_size=size, width=8, channels=channels, mapping_layers=2)
    D = ResidualDiscriminator(image_size=size, width=8, channels=channels, latent_dim=8)
    x = G(torch.randn(6, 8) * 3)
    assert x.shape == (6, channels, size, size) and 0 <= x.min() and x.max() <= 1
    assert x.std(0).mean() > 1e-3  # the image depends on z
    logit, latent = D(x)
    assert logit.shape == (6,) and latent.shape == (6, 8)
    logit2, latent2 = D(x[:2])  # no minibatch stddev: each image's outputs depend on that image alone
    assert torch.allclose(logit[:2], logit2, atol=1e-5) and torch.allclose(latent[:2], latent2, atol=1e-5)


def test_style_widths_and_bad_sizes():
    assert resolution_widths(128, 64) == {4: 512, 8: 512, 16: 512, 32: 256, 64: 128, 128: 64}  # the authors' filters
    assert resolution_widths(16, 8) == {4: 32, 8: 16, 16: 8}
    for bad in (12, 4):
        with pytest.raises(ValueError):
            StyleGenerator(latent_dim=8, image_size=bad, width=8, channels=1)


# --- the method ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dlsgan_run(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    return out, train_dlsgan(out, steps=20)


def test_tiny_dlsgan_trains_with_finite_losses(dlsgan_run):
    out, method = dlsgan_run
    assert "dlsgan" in METHODS and method.can_invert
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_logs = [line for line in lines if line["kind"] == "train"]
    assert len(train_logs) == 20
    for key in ("d_loss", "g_loss", "enc_loss", "r1", "latent_entropy"):
        assert all(math.isfinite(line[key]) for line in train_logs), key
    assert any(line["kind"] == "eval" and "generated/psnr" in line for line in lines)
    s = method.latent_scale
    assert not torch.equal(s, torch.ones(8)) and s.norm().item() == pytest.approx(math.sqrt(8), rel=1e-5)
    assert method.tracker.updates == 20
    saved = load_file(str(out / "weights.safetensors"))
    assert torch.equal(saved["extra.latent_scale"], s.cpu())
    assert "extra.latent_trace.buffer" in saved
    assert json.loads((out / "config.json").read_text())["options"]["encoder_loss_on"] == "D"


def test_save_load_round_trips_the_scale_and_inversion(dlsgan_run):
    out, method = dlsgan_run
    a, b = load(out), load(out)
    assert torch.equal(a.method.latent_scale, method.latent_scale.cpu())
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    with method.eval_mode():
        expected = method.invert(x)
        z = torch.randn(3, 8, generator=torch.Generator().manual_seed(4))
        expected_images = method.generate(z)
    assert torch.equal(a.invert(x), b.invert(x)) and torch.allclose(a.invert(x), expected, atol=1e-6)
    assert torch.allclose(a.generate(z), expected_images, atol=1e-6)
    G = a.method.nets["generator"]
    with torch.no_grad():  # generate(z) is G(z∘s), never G(z)
        assert torch.allclose(a.generate(z), G(z * a.method.latent_scale), atol=1e-6)
        assert not torch.allclose(a.generate(z), G(z), atol=1e-6)


def test_resume_is_exact_and_keeps_options(tmp_path):
    options = DLSGANOptions(encoder_loss_on="DG", scale_mode="ema", ema_decay=0.5)
    torch.manual_seed(0)
    straight = train_dlsgan(tmp_path / "straight", steps=4, options=options)
    torch.manual_seed(0)
    train_dlsgan(tmp_path / "resumed", steps=2, options=options)
    resumed = train_dlsgan(tmp_path / "resumed", steps=4, resume=True)  # default options: the run's own win
    assert resumed.options == options and resumed.tracker.updates == 4
    assert torch.equal(resumed.latent_scale, straight.latent_scale)
    a, b = (load_file(str(tmp_path / name / "weights.safetensors")) for name in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load(tmp_path / "straight").method.options == options


def configured(options, steps=3):
    config = tiny_config(steps)
    method = DLSGAN(config, options=options)
    method.configure(make_accelerator(config))
    return method


def test_options_drive_the_losses_and_no_dls_keeps_scale_one():
    torch.manual_seed(0)
    batch = [torch.rand(16, 1, 16, 16), torch.zeros(16)]
    no_dls = configured(DLSGANOptions(dls=False))
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
        DLSGAN(tiny_config(), options={"encoder_loss_on": "DG"})
    with pytest.raises(GaninvError, match="no option.*lambda_enk.*valid options"):
        DLSGAN(tiny_config().replace(options={"lambda_enk": 1.0}))
