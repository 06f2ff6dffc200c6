"""DED-GAN (seed 002): the spherical prior and its binary-tree transforms (property tests), the quantile
preprocessing, the direction head and tan-angle loss, and the method end to end on tiny nets."""
import json
import math
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.torch import load_file

from ganinv import cli, load
from ganinv.core.config import read_config
from ganinv.core.errors import GaninvError
from ganinv.inference.evaluate import evaluate_run
from ganinv.latent import (
    HALF_PI,
    cartesian_dim,
    cartesian_to_spherical,
    make_prior,
    sequential_spherical_to_cartesian,
    spherical_to_cartesian,
    spherical_to_normal,
)
from ganinv.losses import direction_angle, tan_angle_loss
from ganinv.methods import METHODS
from ganinv.methods.dedgan import DEDGAN, DEDGANOptions
from ganinv.nets.dedgan import (
    DirectionDiscriminator,
    QuantileStyleGenerator,
    split_embedding,
)
from ganinv.training.launch import build_config, open_training_data
from ganinv.training.loop import train

TINY = dict(image_size=16, width=8, latent_dim=7)  # n = 8 cartesian coordinates
TINY_TRAIN = dict(batch_size=16, checkpoint_every=10, sample_every=20, eval_every=20, eval_samples=32, log_every=1)
SWITCH = 10
# the round trip is exact in exact arithmetic; in float32 it holds to 1e-5 while no coordinate underflows, which
# log2(n) ≤ 10 factors of sin/cos ≥ sin(1e-3) guarantee (≥ 1e-30)
ANGLE = st.floats(float(np.float32(1e-3)), float(np.float32(HALF_PI - 1e-3)), width=32)



def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["ganinv", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:  # typer exits, 0 on success
        cli.main()
    assert not exit_info.value.code, capsys.readouterr().err
    return capsys.readouterr().out


# --- the spherical prior and the transforms ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 8, 64, 512, 1024])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_binary_tree_round_trips_and_gives_positive_unit_vectors(n, data):
    angles = torch.from_numpy(data.draw(arrays(np.float32, (3, n - 1), elements=ANGLE)))
    x = spherical_to_cartesian(angles)
    assert x.shape == (3, n) and x.dtype == torch.float32
    assert bool((x > 0).all())
    assert torch.allclose(x.norm(dim=1), torch.ones(3), atol=1e-5)
    back = cartesian_to_spherical(x)
    assert back.shape == angles.shape
    assert (back - angles).abs().max().item() < 1e-5
    # only the direction matters: Algorithm 3 on an unnormalised vector gives the same angles
    assert (cartesian_to_spherical(x * 37.0) - angles).abs().max().item() < 1e-5


@pytest.mark.parametrize("n", [2, 8, 64, 512, 1024])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_prior_samples_round_trip(n, seed):
    prior = make_prior("spherical", n - 1)
    z = prior.sample(16, generator=torch.Generator().manual_seed(seed))
    x = spherical_to_cartesian(z)
    assert bool((x > 0).all()) and torch.allclose(x.norm(dim=1), torch.ones(16), atol=1e-5)
    assert (cartesian_to_spherical(x) - z).abs().max().item() < 1e-5


def test_tree_matches_the_papers_eight_dimensional_example():
    phi = torch.tensor([0.3, 0.5, 0.7, 0.2, 0.4, 0.6, 0.8], dtype=torch.float64)  # φ; φ0, φ1; φ00, φ01, φ10, φ11
    s, c = torch.sin, torch.cos
    p, p0, p1, p00, p01, p10, p11 = phi
    expected = torch.stack([s(p) * s(p0) * s(p00), s(p) * s(p0) * c(p00), s(p) * c(p0) * s(p01),
                            s(p) * c(p0) * c(p01), c(p) * s(p1) * s(p10), c(p) * s(p1) * c(p10),
                            c(p) * c(p1) * s(p11), c(p) * c(p1) * c(p11)])
    assert torch.allclose(spherical_to_cartesian(phi), expected, atol=1e-12)
    # the sequential transform is another chart of the same sphere: unit norm, different coordinates
    seq = sequential_spherical_to_cartesian(phi)
    assert seq.norm().item() == pytest.approx(1.0) and seq[0].item() == pytest.approx(math.cos(0.3))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_tree_never_underflows_at_d511_where_the_sequential_transform_does(seed):
    z = make_prior("spherical", 511).sample(8, generator=torch.Generator().manual_seed(seed))
    tree, sequential = spherical_to_cartesian(z), sequential_spherical_to_cartesian(z)
    tree_zeros, sequential_zeros = int((tree == 0).sum()), int((sequential == 0).sum())
    print(f"d=511, 8 samples × 512 float32 coordinates: {sequential_zeros} zeros sequential, {tree_zeros} tree")
    assert sequential_zeros > 0, "the sequential transform should underflow at d = 511 in float32"
    assert tree_zeros == 0
    assert tree.min().item() >= torch.finfo(torch.float32).tiny  # normal floats, not even subnormal
    # underflow makes the sequential chart lossy: the angles behind the zeroed tail are gone
    assert sequential_zeros > 8 * 100  # typically ~70 % of the coordinates


def test_padding_for_dimensions_whose_d_plus_1_is_not_a_power_of_two():
    assert [cartesian_dim(d) for d in (1, 3, 7, 63, 511, 100, 8, 6)] == [2, 4, 8, 64, 512, 128, 16, 8]
    z = make_prior("spherical", 100).sample(5, generator=torch.Generator().manual_seed(0))
    x = spherical_to_cartesian(z)
    assert x.shape == (5, 128) and bool((x > 0).all())
    assert torch.allclose(x.norm(dim=1), torch.ones(5), atol=1e-5)
    full = cartesian_to_spherical(x)
    assert torch.allclose(full[:, 100:], torch.full((5, 27), math.pi / 4), atol=1e-5)  # the padded leaves
    assert (cartesian_to_spherical(x, angle_dim=100) - z).abs().max().item() < 1e-5
    with pytest.raises(GaninvError, match="power-of-two"):
        cartesian_to_spherical(torch.rand(2, 6))
    with pytest.raises(GaninvError, match="angle_dim"):
        cartesian_to_spherical(torch.rand(2, 8), angle_dim=8)


def test_spherical_prior_support_mean_and_quantile_preprocessing():
    prior = make_prior("spherical", 64)
    z = prior.sample(4000, generator=torch.Generator().manual_seed(0))
    assert bool((z > 0).all() and (z < HALF_PI).all())
    assert z.mean().item() == pytest.approx(math.pi / 4, abs=0.01)
    assert z.std().item() == pytest.approx(prior.std(), abs=0.01)
    assert prior.bounds == (0.0, HALF_PI)
    assert torch.allclose(prior.mean(2), torch.full((2, 64), math.pi / 4))
    clamped = prior.clamp(torch.tensor([[-1.0, 0.0, HALF_PI, 3.0]]))
    assert bool((clamped > 0).all() and (clamped < HALF_PI).all())
    assert bool((torch.cos(clamped) > 0).all())  # float32(π/2) > π/2: the clamp keeps cosines positive
    g = spherical_to_normal(z)  # Φ⁻¹(z/(π/2)): what the generator's network sees
    assert g.mean().item() == pytest.approx(0.0, abs=0.02) and g.std().item() == pytest.approx(1.0, abs=0.02)
    assert bool(torch.isfinite(spherical_to_normal(torch.tensor([0.0, HALF_PI, 4.0]))).all())
    assert spherical_to_normal(torch.tensor([math.pi / 4])).abs().item() < 1e-6  # the median maps to 0


# --- loss and nets --------------------------------------------------------------------------------------------------

def test_tan_angle_loss_is_tan_arccos_and_stays_finite_at_the_edges():
    gen = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.rand(6, 8, generator=gen) + 0.1, dim=1)
    v = torch.nn.functional.normalize(torch.rand(6, 8, generator=gen) + 0.1, dim=1)
    reference = torch.tan(torch.arccos((u * v).sum(1))).mean()
    assert tan_angle_loss(u, v).item() == pytest.approx(reference.item(), rel=1e-4)
    same = u.clone().requires_grad_(True)  # θ = 0: arccos' derivative is infinite, ours is finite
    loss = tan_angle_loss(u, same)
    loss.backward()
    assert loss.item() == 0.0 and bool(torch.isfinite(same.grad).all())
    orth = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]], requires_grad=True)  # θ = 90°: tan = ∞
    loss = tan_angle_loss(*orth, max_angle=math.radians(85))
    loss.backward()
    expected = math.tan(math.radians(85)) + math.radians(5) / math.cos(math.radians(85)) ** 2
    assert loss.item() == pytest.approx(expected, rel=1e-5) and bool(torch.isfinite(orth[1].grad).all())
    assert torch.rad2deg(direction_angle(*orth)).item() == pytest.approx(90.0)


def test_direction_discriminator_and_quantile_generator():
    torch.manual_seed(0)
    G = QuantileStyleGenerator(latent_dim=7, image_size=16, width=8, channels=1, mapping_layers=2)
    D = DirectionDiscriminator(image_size=16, width=8, channels=1, direction_dim=8)
    z = make_prior("spherical", 7).sample(5)
    x = G(z)
    assert x.shape == (5, 1, 16, 16) and 0 <= x.min() and x.max() <= 1
    assert torch.allclose(x, G.generator(spherical_to_normal(z)))
    e = D(x)
    assert e.shape == (5, 8) and bool((e > 0).all())
    assert not hasattr(D, "adversarial")
    assert torch.allclose(D(x[:2]), e[:2], atol=1e-5)  # one image, one embedding
    v, direction = split_embedding(e)
    assert torch.allclose(v, e.norm(dim=1).log()) and torch.allclose(direction.norm(dim=1), torch.ones(5))
    v0, d0 = split_embedding(torch.zeros(2, 8))  # every softplus underflowed: finite, no NaN
    assert bool(torch.isfinite(v0).all()) and bool((d0 == 0).all())


# --- the method -----------------------------------------------------------------------------------------------------

def tiny_config(steps=20, **options):
    return build_config("dedgan", data="digits", net=TINY, train={**TINY_TRAIN, "steps": steps},
                        options={"lambda_switch_step": SWITCH, **options})


def train_dedgan(out, steps=20, resume=False, **options):
    config = tiny_config(steps, **options)
    if resume:  # as the CLI does: the run's own config (and options) win
        config = read_config(out).replace(train=config.train)
    dataset, eval_images = open_training_data(config)
    method = DEDGAN(config)
    train(method, out, dataset=dataset, eval_images=eval_images, resume=resume, show_progress=False)
    return method


@pytest.fixture(scope="module")
def dedgan_run(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "dedgan"
    return out, train_dedgan(out, steps=20)


def test_tiny_dedgan_trains_20_steps_with_finite_losses_and_switches_lambda(dedgan_run):
    out, method = dedgan_run
    assert "dedgan" in METHODS and method.can_invert and method.step == 20
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_logs = [line for line in lines if line["kind"] == "train"]
    assert len(train_logs) == 20
    for key in ("d_loss", "g_loss", "d_adv", "g_adv", "emb_loss", "r1", "v_real", "v_fake", "angle_deg"):
        assert all(math.isfinite(line[key]) for line in train_logs), key
    # λ_emb: 1.0 for the first SWITCH steps, 10.0 from then on
    assert [line["lambda_emb"] for line in train_logs] == [1.0] * SWITCH + [10.0] * (20 - SWITCH)
    after = train_logs[-1]
    assert after["g_loss"] > after["g_adv"] + 5 * after["emb_loss"]  # the 10× weight is in the loss
    evals = [line for line in lines if line["kind"] == "eval"]
    assert evals and math.isfinite(evals[-1]["generated/angle_error_deg"]) and "real/psnr" in evals[-1]
    saved = load_file(str(out / "weights.safetensors"))
    assert int(saved["extra.step"]) == 20
    config = json.loads((out / "config.json").read_text())
    assert config["net"]["prior"] == "spherical" and config["options"]["lambda_switch_step"] == SWITCH


def test_save_load_gives_identical_invert(dedgan_run):
    out, method = dedgan_run
    a, b = load(out), load(out)
    assert a.method.step == 20
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    with method.eval_mode():
        expected = method.invert(x.to(method.device))
    za, zb = a.invert(x), b.invert(x)
    assert torch.equal(za, zb) and torch.allclose(za, expected.cpu(), atol=1e-6)
    assert za.shape == (6, 7) and bool((za > 0).all() and (za < HALF_PI).all())
    # invert is Algorithm 3 of D's direction
    with torch.no_grad():
        _, direction = split_embedding(a.method.nets["discriminator"](x))
    assert torch.allclose(spherical_to_cartesian(za), direction, atol=1e-5)
    assert a.reconstruct(x).shape == x.shape


def test_eval_reports_reconstructions_and_the_angle_error(dedgan_run, monkeypatch, capsys):
    out, _ = dedgan_run
    results = evaluate_run(out, data="digits", n=32)
    generated = results["generated"]
    assert 0 <= generated["angle_error_deg"] <= 90 and 0 < generated["angle_chance_deg"] < 90
    assert {"psnr", "ssim", "dhash_similarity"} <= set(generated) and "psnr" in results["real"]
    printed = json.loads(run_cli(monkeypatch, capsys, "eval", out, "--data", "digits", "--n", 16, "--json"))
    assert "angle_error_deg" in printed["generated"] and "angle_error_deg" not in printed["real"]


def test_resume_keeps_the_schedule_and_is_exact(tmp_path):
    torch.manual_seed(0)
    straight = train_dedgan(tmp_path / "straight", steps=4, lambda_switch_step=3)
    torch.manual_seed(0)
    train_dedgan(tmp_path / "resumed", steps=2, lambda_switch_step=3)
    resumed = train_dedgan(tmp_path / "resumed", steps=4, resume=True)
    assert resumed.step == 4 and resumed.options.lambda_switch_step == 3
    a, b = (load_file(str(tmp_path / name / "weights.safetensors")) for name in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logs = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [line["lambda_emb"] for line in logs if line["kind"] == "train"] == [1.0, 1.0, 1.0, 10.0]


def test_bad_options_and_priors_raise_our_error():
    for bad in (dict(lambda_emb=-1.0), dict(lambda_emb_after=float("nan")), dict(lambda_r1=-0.5),
                dict(lambda_switch_step=-1), dict(emb_max_angle_deg=90.0), dict(emb_max_angle_deg=0.0)):
        with pytest.raises(GaninvError):
            DEDGANOptions(**bad)
    with pytest.raises(GaninvError, match="no option.*lambda_embb"):
        build_config("dedgan", data="digits", net=TINY, options={"lambda_embb": 2.0})
    with pytest.raises(GaninvError, match="lambda_switch_step"):
        build_config("dedgan", data="digits", net=TINY, options={"lambda_switch_step": -5})
    with pytest.raises(GaninvError, match="spherical"):
        DEDGAN(build_config("dedgan", data="digits", net={**TINY, "prior": "normal"}))
    with pytest.raises(GaninvError):
        DEDGAN(tiny_config(), options={"lambda_emb": 2.0})  # not a DEDGANOptions


def test_presets_and_the_quick_flag(tmp_path, monkeypatch, capsys):
    small = build_config("dedgan", data="mnist")
    assert (small.net.image_size, small.net.latent_dim, small.net.prior, small.net.channels) == (32, 63, "spherical", 1)
    paper = build_config("dedgan", preset="paper")
    assert (paper.net.image_size, paper.net.width, paper.net.latent_dim) == (128, 64, 511)
    assert cartesian_dim(paper.net.latent_dim) == 512
    config = json.loads(run_cli(monkeypatch, capsys, "train", "dedgan", "--data", "digits", "--out", tmp_path / "q",
                                "--quick", "--dry-run", "-o", "lambda_switch_step=150"))
    assert config["train"]["steps"] == 300 and config["train"]["eval_every"] == 100
    assert config["options"]["lambda_switch_step"] == 150
    assert not (tmp_path / "q").exists()
