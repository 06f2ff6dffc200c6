"""Options that make the methods match their papers: DLSGAN's "DG" default, the projection network's §4.3
fine-tuning on real images (Arfeen & Zhang), and the record of how its ResNet18 backbone started."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.core.errors import GaninvError
from ganinv.experiments import ablation
from ganinv.methods import regression
from ganinv.methods.regression import RANDOM_INIT, Regression, RegressionOptions, backbone_init
from ganinv.training.launch import build_config, open_training_data, parse_option_strings, train_run
from helpers import assert_clean_error, make_generator_run, run_cli, tiny_train

N_IMAGES = 40  # the folder's train split: the first 36 (the last 10% are test)


# ------------------------------------------------------------------------------------------------ DLSGAN: DG
@pytest.mark.parametrize("preset", ["paper", "small"])
def test_dlsgan_presets_train_the_dg_variant(preset):
    assert build_config("dlsgan", preset=preset).options["encoder_loss_on"] == "DG"


def test_dlsgan_d_stays_selectable_and_the_ablation_names_both():
    options = parse_option_strings("dlsgan", ["encoder_loss_on=D"])
    assert build_config("dlsgan", options=options).options["encoder_loss_on"] == "D"
    assert {on for _, _, on in ablation.CELLS} == {"D", "DG"}  # each cell passes its own explicitly


# ------------------------------------------------------------------------------------------------ recon on real images
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of flat-colour 16 px RGB images: image i has red level i/N_IMAGES, so a batch tells where it came
    from."""
    root = tmp_path_factory.mktemp("flat")
    for i in range(N_IMAGES):
        pixel = np.array([round(255 * i / N_IMAGES), 40, 200], dtype=np.uint8)
        Image.fromarray(np.broadcast_to(pixel, (16, 16, 3)).copy()).save(root / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def rgb_generator(tmp_path_factory):
    return make_generator_run(tmp_path_factory.mktemp("runs") / "rgb", channels=3)


@pytest.fixture(scope="module")
def generator_without_data(tmp_path_factory):
    out = make_generator_run(tmp_path_factory.mktemp("runs") / "nodata")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "data": None}))
    return out


def is_dataset_image(x: torch.Tensor) -> bool:
    """Flat colour (0, 40, 200)/255 with a red level i/N_IMAGES of some train image i."""
    if x.shape[0] != 3 or (x - x.mean((1, 2), keepdim=True)).abs().max() >= 1e-3:
        return False
    red = x[0].mean().item() * N_IMAGES
    return abs(x[1].mean().item() - 40 / 255) < 2e-3 and abs(red - round(red)) < 0.1


def test_recon_term_sees_real_images_from_its_start_step(rgb_generator, folder, tmp_path, monkeypatch):
    targets = []
    loss = regression.reconstruction_loss

    def spy(kind, reconstruction, target):
        targets.append(target.detach().cpu())
        return loss(kind, reconstruction, target)

    monkeypatch.setattr(regression, "reconstruction_loss", spy)
    out = tmp_path / "ft"
    tiny_train("regression", out, steps=5, generator=rgb_generator, data=f"folder:{folder}",
               train_overrides={"batch_size": 8, "log_every": 1},
               options={"recon_weight": 0.5, "recon_start_step": 2})
    assert len(targets) == 3  # steps 2, 3, 4 of 0..4
    assert all(t.shape == (8, 3, 16, 16) and all(is_dataset_image(x) for x in t) for t in targets)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = {line["step"]: line for line in lines if line["kind"] == "train"}
    assert [s for s in sorted(train) if "recon" in train[s]] == [3, 4, 5]  # logged after step s - 1
    assert all("latent_mse" in line for line in train.values())
    options = json.loads((out / "config.json").read_text())["options"]
    assert options["recon_loss"] == "mse" and options["recon_images"] == "real" and options["recon_start_step"] == 2
    assert options["backbone_init"] == "not applicable (dcgan backbone)"


def test_generated_recon_images_need_no_data_and_real_ones_do(generator_run, tmp_path, monkeypatch):
    targets = []
    loss = regression.reconstruction_loss
    monkeypatch.setattr(regression, "reconstruction_loss",
                        lambda kind, r, t: targets.append(t) or loss(kind, r, t))
    config = build_config("regression", options={"recon_weight": 0.5, "recon_images": "generated"})
    assert not Regression.needs_real_data(RegressionOptions(**config.options))
    assert open_training_data(config) == (None, None)
    assert Regression.needs_real_data(RegressionOptions(recon_weight=0.5))
    assert not Regression.needs_real_data(RegressionOptions())  # no recon term: G's samples only
    tiny_train("regression", tmp_path / "gen", steps=2, generator=generator_run,
               options={"recon_weight": 0.5, "recon_images": "generated"})
    assert len(targets) == 2 and not all(is_dataset_image(x) for x in targets[0])
    with pytest.raises(GaninvError, match="trains on real images"):
        open_training_data(build_config("regression", options={"recon_weight": 0.5}))


def test_recon_on_real_images_without_data_fails_before_writing(generator_without_data, monkeypatch, capsys,
                                                                 tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "regression", "--generator", generator_without_data,
                           "--out", tmp_path / "r", "-o", "recon_weight=0.1")
    assert_clean_error(code, err, "trains on real images", "give --data")
    assert not (tmp_path / "r").exists()


def test_mse_plus_lpips_is_refused_when_lpips_is_missing(generator_run, monkeypatch, capsys, tmp_path):
    from ganinv.losses import image as image_losses  # the one LPIPS policy regression shares

    monkeypatch.setattr(image_losses, "lpips_status", lambda: (False, "LPIPS unavailable: alex.pth is missing"))
    with pytest.raises(GaninvError, match=r"recon_loss=mse\+lpips needs LPIPS"):
        build_config("regression", options={"recon_weight": 0.1, "recon_loss": "mse+lpips"})
    build_config("regression", options={"recon_loss": "mse+lpips"})  # no recon term: nothing to refuse
    code, _, err = run_cli(monkeypatch, capsys, "train", "regression", "--generator", generator_run, "--out",
                           tmp_path / "r", "-o", "recon_weight=0.1", "-o", "recon_loss=mse+lpips")
    assert_clean_error(code, err, "recon_loss=mse+lpips needs LPIPS", "alex.pth is missing")
    assert not (tmp_path / "r").exists()
    with pytest.raises(GaninvError, match="recon_loss=mse\\+lpips"):  # a resumed run on a machine without LPIPS
        regression.reconstruction_loss("mse+lpips", torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))


def test_bad_recon_options_raise_our_error():
    for options, needle in [({"recon_loss": "l1"}, "recon_loss"), ({"recon_images": "fake"}, "recon_images"),
                            ({"recon_start_step": -1}, "recon_start_step")]:
        with pytest.raises(GaninvError, match=needle):
            RegressionOptions(**options)


# ------------------------------------------------------------------------------------------------ backbone init
def test_backbone_init_is_resolved_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    config = build_config("regression", options={"backbone": "resnet18"})
    assert config.options["backbone_init"] == RANDOM_INIT == backbone_init(config)
    assert backbone_init(build_config("regression")) == "not applicable (dcgan backbone)"
    # the same lookup as ResNetEncoder.load_imagenet: torchvision's cache file, when it is there
    from ganinv.nets.encoders import resnet18_cache_path

    cached = resnet18_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    config = build_config("regression", options={"backbone": "resnet18"})
    assert backbone_init(config) == f"ImageNet weights from {cached}"
    explicit = tmp_path / "r18.pth"
    explicit.write_bytes(b"")
    assert backbone_init(build_config("regression", options={"backbone": "resnet18",
                                                               "backbone_weights": str(explicit)})) == (
        f"ImageNet weights from {explicit}")
    # a run recorded before backbone_init existed: this machine's answer, marked as such
    assert "not recorded" in backbone_init({"backbone": "resnet18"})
    # what the run recorded wins on another machine
    cached.unlink()
    assert backbone_init(config) == f"ImageNet weights from {cached}"


def test_a_random_init_projection_run_records_it(generator_run, tmp_path, monkeypatch, capsys):
    from ganinv.nets import encoders

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(encoders, "_SAID", set())  # the notice is said once per process: this test's process
    train_run("regression", tmp_path / "p", generator=generator_run, show_progress=False,
              train_overrides={"steps": 1, "batch_size": 4}, options={"backbone": "resnet18"})
    assert "RANDOM init" in capsys.readouterr().err
    recorded = json.loads((tmp_path / "p" / "config.json").read_text())["options"]["backbone_init"]
    assert recorded == RANDOM_INIT
