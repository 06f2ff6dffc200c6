"""The psp method (ganinv.methods.psp): an encoder trained on real images beats one trained on the generator's own
samples on held-out real images; its space follows the generator; the e4e options (progressive layers, delta
regulariser) and the generated-sample mixing do what they say. Tiny nets on an untrained tiny dlsgan generator (one
channel, 16 px, 8 layers of W+) and the digits the tests own."""
import json
import re

import pytest
import torch

import ganinv
from ganinv import load
from ganinv.core.errors import GaninvError
from ganinv.data import open_dataset
from ganinv.methods.spaces import unflatten_wplus
from ganinv.metrics import psnr
from ganinv.nets.style import num_ws_for
from ganinv.training.launch import build_config
from helpers import TINY_NET, TINY_TRAIN, make_celeba, run_cli, tiny_stylegan, tiny_train, write_nvlabs_pickle

NUM_WS = num_ws_for(TINY_NET["image_size"])  # 8 layers of W+ at 16 px
W_DIM = TINY_NET["latent_dim"]
QUIET = {"sample_every": 1000, "eval_every": 1000, "checkpoint_every": 1000, "log_every": 1}


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    """An untrained tiny dlsgan run (style generator, scale s non-trivial): its images are no digits."""
    from ganinv.core.config import current_versions
    from ganinv.core.rundir import save_checkpoint, write_config
    from ganinv.training.launch import new_method

    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    config = build_config("dlsgan", data="digits", net={**TINY_NET, "prior": "normal"}, train=TINY_TRAIN, seed=0)
    method = new_method(config.replace(versions=current_versions()))
    method._scale = torch.linspace(0.5, 1.5, W_DIM)
    out.mkdir(parents=True)
    write_config(out, method.config)
    save_checkpoint(method, out, step=0)
    return out


def train(out, generator, steps, **options):
    tiny_train("psp", out, steps=steps, generator=generator, options=options,
               train_overrides={**QUIET, "checkpoint_every": steps})
    return load(out)


def held_out_digits(n=64):
    images, _ = open_dataset("digits", image_size=16, channels=1, split="test").tensors(n)
    return images


def test_psp_on_real_images_beats_aegan_on_generated_ones(style_run, tmp_path):
    """Same generator, same steps: pSp learns from real digits (which the untrained generator never made) and
    reconstructs held-out digits better than AEGAN's W+ encoder trained on G's own samples — and better than where
    it started, G(w̄)."""
    steps = 200
    psp = train(tmp_path / "psp", style_run, steps)
    tiny_train("aegan", tmp_path / "aegan", steps=steps, generator=style_run, options={"space": "wplus"},
               train_overrides={**QUIET, "checkpoint_every": steps})
    aegan, x = load(tmp_path / "aegan"), held_out_digits()
    found = {name: psnr(x, model.reconstruct(x)).mean().item() for name, model in (("psp", psp), ("aegan", aegan))}
    start = psp.method.start(x.device).expand(len(x), -1)
    found["w̄"] = psnr(x, psp.generate(start)).mean().item()
    assert found["psp"] > found["aegan"] + 3.0 and found["psp"] > found["w̄"] + 3.0, found


def test_the_space_follows_the_generator(style_run, generator_run, tmp_path):
    """auto: W+ on a style generator (recorded as wplus), z with one head on a DCGAN; w: one head."""
    wplus = train(tmp_path / "wplus", style_run, 2)
    assert json.loads((tmp_path / "wplus" / "config.json").read_text())["options"]["space"] == "wplus"
    x = held_out_digits(4)
    assert wplus.invert(x).shape == (4, NUM_WS * W_DIM) and len(wplus.method.nets["encoder"].heads) == NUM_WS
    untrained = train(tmp_path / "untrained", style_run, 1, mse=1e-12)  # one step of a vanishing loss: still w̄
    assert torch.allclose(untrained.invert(x), untrained.prior.mean(4), atol=1e-5)
    w = train(tmp_path / "w", style_run, 2, space="w")
    assert w.invert(x).shape == (4, W_DIM) and len(w.method.nets["encoder"].heads) == 1
    z = train(tmp_path / "z", generator_run, 2)
    assert z.method.space.name == "z" and len(z.method.nets["encoder"].heads) == 1
    low, high = z.prior.bounds
    assert low <= z.invert(x).min() and z.invert(x).max() <= high  # tanh onto the uniform prior's support


def test_e4e_progressive_training_adds_one_layer_every_n_steps(style_run, tmp_path):
    """5 steps, a new layer every 2: steps 0-1 train layer 0, 2-3 add layer 1, step 4 layer 2; the heads of layers
    3+ were never reached and stay exactly zero, so those layers keep layer 0's w."""
    model = train(tmp_path / "e4e", style_run, 5, progressive_every=2, delta_weight=2e-4)
    heads = model.method.nets["encoder"].heads
    moved = [bool(head.linear.weight.abs().sum() > 0) for head in heads]
    assert moved == [True, True, True] + [False] * (NUM_WS - 3)
    ws = unflatten_wplus(model.invert(held_out_digits(4)), NUM_WS)
    assert torch.equal(ws[:, 3:], ws[:, :1].expand(-1, NUM_WS - 3, -1))
    records = [json.loads(line) for line in (tmp_path / "e4e" / "metrics.jsonl").read_text().splitlines()]
    deltas = [r["delta"] for r in records if r["kind"] == "train" and "delta" in r]
    assert len(deltas) == 5 and deltas[0] == 0.0  # step 0: no delta trained yet


def mean_delta(model, x) -> float:
    ws = unflatten_wplus(model.invert(x), NUM_WS)
    return (ws[:, 1:] - ws[:, :1]).norm(dim=2).sum(1).mean().item()


def test_the_delta_regulariser_keeps_layers_near_layer_0(style_run, tmp_path):
    x = held_out_digits(16)
    loose = train(tmp_path / "loose", style_run, 30, delta_weight=1e-9)
    tight = train(tmp_path / "tight", style_run, 30, delta_weight=1.0)
    assert mean_delta(tight, x) < 0.5 * mean_delta(loose, x)


def test_generated_samples_add_a_latent_loss_on_their_known_latents(style_run, tmp_path):
    train(tmp_path / "mixed", style_run, 3, generated_fraction=0.5)
    records = [json.loads(line) for line in (tmp_path / "mixed" / "metrics.jsonl").read_text().splitlines()]
    assert all("latent_mse" in r and "recon_mse" in r for r in records if r["kind"] == "train")
    only = build_config("psp", options={"generated_fraction": 1.0})  # generated samples alone: no --data needed
    assert not ganinv.METHODS["psp"].needs_real_data(ganinv.METHODS["psp"].Options(**only.options))


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3"])
def test_psp_on_imported_stylegans(arch, tmp_path):
    net, kwargs = tiny_stylegan(arch)
    imported = tmp_path / "stylegan"
    generator = ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs), imported)
    faces = make_celeba(tmp_path / "celeba")
    tiny_train("psp", tmp_path / "psp", steps=2, generator=imported, data=faces, train_overrides=QUIET)
    model = load(tmp_path / "psp")
    x = torch.rand(3, 3, 16, 16)
    num_ws, w_dim = generator.method.nets["generator"].num_ws, generator.method.nets["generator"].w_dim
    assert model.invert(x).shape == (3, num_ws * w_dim) and model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("options, needle", [
    ({"generated_fraction": 1.5}, "generated_fraction"), ({"progressive_every": -1}, "progressive_every"),
    ({"backbone": "resnet"}, "backbone"), ({"mse": 0.0}, "at least one term"), ({"delta_weight": float("nan")},
                                                                                "delta_weight"),
    ({"space": "x"}, "space")])
def test_bad_options_are_one_error(options, needle):
    with pytest.raises(GaninvError, match=needle):
        build_config("psp", options=options)


def test_train_help_lists_psps_options(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "250")  # rich cuts words longer than a narrow help column
    code, out, _ = run_cli(monkeypatch, capsys, "train", "psp", "--help")
    text = re.sub(r"[\s│]", "", out)  # the help column's wrapped lines joined (the other columns are blank there)
    assert code == 0
    for option in ("generated_fraction", "progressive_every", "delta_weight", "backbone"):
        assert option in text, option



def test_e4e_latent_discriminator_learns_to_tell_the_encoders_ws_from_ws(style_run, tmp_path):
    """e4e's latent D trains beside the encoder — its loss each step, R1 after steps 0 and 16, its weights saved
    with the run — and with the right signs: given time (a weight too small to move the encoder), it scores the
    mapping network's ws above the encoder's answers."""
    x = held_out_digits(32)
    model = train(tmp_path / "judged", style_run, 40, latent_d=1e-9, latent_d_lr=1e-2)
    records = [json.loads(line) for line in (tmp_path / "judged" / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["kind"] == "train"]
    assert len(train_records) == 40 and all("latent_adv" in r and "latent_d_loss" in r for r in train_records)
    assert [r["step"] for r in train_records if "latent_r1" in r][:2] == [1, 17]  # logged after steps 0 and 16
    judge = model.method.nets["latent_discriminator"]
    with torch.no_grad():
        real = judge(model.prior.sample(256, generator=torch.Generator().manual_seed(1))[:, :W_DIM]).mean()
        fake = judge(unflatten_wplus(model.invert(x), NUM_WS)[:, 0]).mean()
    assert real > fake, (real, fake)


def test_the_latent_discriminator_needs_ws(generator_run, tmp_path):
    with pytest.raises(GaninvError, match="latent_d"):
        tiny_train("psp", tmp_path / "z", steps=1, generator=generator_run, options={"latent_d": 0.1})
