"""The iterative encoder trained on real images (``-o data=real``, ReStyle's setting; ganinv.methods.iterative): on
held-out real images — the digits' test split, which the untrained tiny style generator never drew — five passes
reconstruct better than one, and better than the same training on the generator's own samples (whose passes, on
real images, barely move off the mean: the residual it learnt points nowhere useful off its training distribution).
"""
import pytest
import torch

import ganinv
from ganinv import load
from ganinv.core.config import current_versions
from ganinv.core.errors import GaninvError
from ganinv.core.rundir import save_checkpoint, write_config
from ganinv.data import open_dataset
from ganinv.inference.wrap import save_wrapped_run
from ganinv.methods.iterative import Iterative, IterativeOptions, invert_steps
from ganinv.metrics import psnr
from ganinv.nets.frozen import build_module
from ganinv.training.launch import build_config, new_method
from helpers import TINY_NET, TINY_TRAIN, run_cli, tiny_train

# measured PSNR on the held-out digits, W+, T = 5: data=real 3.58 (w̄) 13.85 15.51 16.85 17.47 17.59 (passes 1…5);
# data=generated 3.58 4.42 5.46 5.53 5.32 5.36
STEPS = 150
TRAIN = {"lr": 1e-3, "eval_every": 10_000, "sample_every": 10_000, "checkpoint_every": 10_000}
OPTIONS = {"steps": 5, "loss": "mse", "space": "wplus"}


@pytest.fixture(scope="module")
def style_generator_run(tmp_path_factory):
    """An untrained tiny style generator (a dlsgan run at step 0, normal prior): its W+ reaches digit-like images
    that its own samples (near-uniform textures) never show."""
    out = tmp_path_factory.mktemp("runs") / "style"
    torch.manual_seed(0)
    config = build_config("dlsgan", data="digits", net={**TINY_NET, "prior": "normal"}, train=TINY_TRAIN)
    method = new_method(config.replace(versions=current_versions()))
    out.mkdir(parents=True)
    write_config(out, method.config)
    save_checkpoint(method, out, step=0)
    return out


@pytest.fixture(scope="module")
def held_out():
    """Real images no run here trains on: the first 64 of the digits' test split."""
    return open_dataset("digits", image_size=16, channels=1, split="test").tensors(64)[0]


def trained(tmp_path_factory, generator, data: str):
    out = tmp_path_factory.mktemp("runs") / f"iterative-{data}"
    tiny_train("iterative", out, steps=STEPS, generator=generator, data="digits", options={**OPTIONS, "data": data},
               train_overrides=TRAIN)
    return load(out)


def psnr_per_pass(model, images, passes: int = 5) -> list[float]:
    """Mean PSNR (dB) of G(ẑ_t) against the images for t = 0 (the start, w̄) … passes."""
    return [float(psnr(model.generate(z).clamp(0, 1), images).mean()) for z in invert_steps(model, images, passes)]


def test_passes_help_on_held_out_real_images_and_beat_generated_training(tmp_path_factory, style_generator_run,
                                                                         held_out):
    real = psnr_per_pass(trained(tmp_path_factory, style_generator_run, "real"), held_out)
    generated = psnr_per_pass(trained(tmp_path_factory, style_generator_run, "generated"), held_out)
    print("PSNR per pass, data=real:", [round(p, 2) for p in real], "data=generated:",
          [round(p, 2) for p in generated])
    assert real[1] > real[0] + 3, real  # one pass moves well off w̄'s image
    assert real[5] >= real[1], real  # and every pass helps on average: five beat one (measured: by 3.7 dB)
    assert real[5] > generated[5] + 3, (real, generated)  # the same steps on G's own samples (measured: 12 dB)


def test_real_data_needs_the_dataset_and_mixed_adds_the_latent_term(tmp_path, style_generator_run):
    assert not Iterative.needs_real_data(IterativeOptions())  # today's default: G's own samples, no --data
    assert Iterative.needs_real_data(IterativeOptions(data="real"))
    assert Iterative.needs_real_data(IterativeOptions(data="mixed"))
    wrapped = ganinv.wrap_generator(build_module("helpers:tiny_wrapped_generator"), "uniform", (-1, 1),
                                    latent_dim=8, width=8, factory="helpers:tiny_wrapped_generator")
    save_wrapped_run(wrapped, tmp_path / "wrapped")  # a generator run without a dataset to inherit
    with pytest.raises(GaninvError, match="trains on real images with these options: give --data"):
        tiny_train("iterative", tmp_path / "no-data", steps=1, generator=tmp_path / "wrapped", options={"data": "real"})
    assert not (tmp_path / "no-data").exists()
    with pytest.raises(GaninvError, match="data must be one of generated, real, mixed"):
        IterativeOptions(data="faces")
    tiny_train("iterative", tmp_path / "mixed", steps=2, generator=style_generator_run, data="digits",
               options={**OPTIONS, "data": "mixed"}, train_overrides={**TRAIN, "log_every": 1})
    logs = (tmp_path / "mixed" / "metrics.jsonl").read_text()
    assert '"latent_mse"' in logs and '"mse_first"' in logs  # the generated half's known latents are supervised


def test_lpips_asked_for_without_its_weights_is_refused_before_training(tmp_path, style_generator_run,
                                                                      monkeypatch):
    monkeypatch.setattr("ganinv.losses.image.lpips_problem", lambda: "LPIPS weights: place alexnet.pth in HUB")
    with pytest.raises(GaninvError, match="loss=mse\\+lpips needs LPIPS"):
        tiny_train("iterative", tmp_path / "lpips", steps=1, generator=style_generator_run, data="digits",
                   options={**OPTIONS, "data": "real", "loss": "mse+lpips"})
    assert not (tmp_path / "lpips").exists()


def test_train_help_explains_the_data_option(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "train", "iterative", "--help")
    assert code == 0
    assert "data=generated|real|mixed" in " ".join(out.replace("│", " ").split())


def test_restyle_from_a_psp_run_starts_at_its_answer_and_improves_on_it(style_generator_run, held_out, tmp_path):
    """ReStyle bootstrapped by an encoder (start=a psp run, e4e's form here): ẑ_0 is exactly the psp run's answer
    (w̄ from this run's generator plus the copied encoder's offsets), the run loads from its own folder, and its
    passes, trained on real images, reconstruct held-out digits better than the psp run alone."""
    import shutil

    start = tmp_path / "psp"
    tiny_train("psp", start, steps=60, generator=style_generator_run, data="digits",
               options={"progressive_every": 5, "delta_weight": 2e-4}, train_overrides=TRAIN)
    psp = load(start)
    tiny_train("iterative", tmp_path / "it", steps=STEPS, generator=style_generator_run, data="digits",
               options={**OPTIONS, "data": "real", "start": str(start), "steps": 2}, train_overrides=TRAIN)
    shutil.rmtree(start)
    model = load(tmp_path / "it")
    assert model.config.options["start_method"] == "psp"
    assert torch.allclose(invert_steps(model, held_out, 0)[0], psp.invert(held_out), atol=1e-5)
    by_pass = psnr_per_pass(model, held_out, 2)
    assert by_pass[2] > by_pass[0] + 0.5, by_pass  # measured 13.2 (psp) → 18.8 → 20.1 dB
