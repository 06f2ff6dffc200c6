"""The command line end to end, and every bad input the foundation issue names: one clear line, exit 2,
nothing written half-way."""
import json

import numpy as np
import pytest
from PIL import Image

from ganinv.core.rundir import latest_checkpoint
from helpers import assert_clean_error, run_cli




def save_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_help_lists_commands(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    for command in ("train", "invert", "eval", "demo"):
        assert command in out


def test_dry_run_prints_resolved_config_and_writes_nothing(monkeypatch, capsys, tmp_path):
    code, out, _ = run_cli(monkeypatch, capsys, "train", "gan", "--data", "mnist", "--out", tmp_path / "r",
                           "--preset", "paper", "--steps", "7", "--dry-run")
    assert code == 0
    config = json.loads(out)
    assert config["net"] == {"image_size": 64, "channels": 3, "width": 64, "latent_dim": 100, "prior": "uniform",
                             "max_width": 0}
    assert config["train"]["steps"] == 7 and config["train"]["lr"] == 2e-4 and config["train"]["beta1"] == 0.5
    assert not (tmp_path / "r").exists()


def test_invert_and_eval_json(monkeypatch, capsys, tmp_path, aegan_run):
    rng = np.random.default_rng(0)
    images = [save_png(tmp_path / f"in{i}.png", rng.integers(0, 255, (20, 24), dtype=np.uint8)) for i in range(3)]
    code, out, err = run_cli(monkeypatch, capsys, "invert", aegan_run, *images, "--out", tmp_path / "inv")
    assert code == 0, err
    latents = np.load(tmp_path / "inv" / "latents.npy")
    assert latents.shape == (3, 8) and np.abs(latents).max() <= 1
    assert (tmp_path / "inv" / "paths.txt").read_text().splitlines() == [str(p) for p in images]
    assert len(list((tmp_path / "inv" / "reconstructions").glob("*.png"))) == 3
    assert Image.open(tmp_path / "inv" / "grid.png").size[0] > 16 * 3

    code, out, err = run_cli(monkeypatch, capsys, "eval", aegan_run, "--data", "digits", "--n", "32", "--json")
    assert code == 0, err
    result = json.loads(out)
    for split in ("generated", "real"):
        assert {"psnr", "ssim", "dhash_similarity"} <= result[split].keys()
        assert 0 <= result[split]["dhash_similarity"] <= 1 and -1 <= result[split]["ssim"] <= 1


def test_grey_and_rgba_images_are_converted_for_an_rgb_run(monkeypatch, capsys, tmp_path, rgb_aegan_run):
    grey = save_png(tmp_path / "grey.png", np.full((30, 30), 128, np.uint8))
    rgba = save_png(tmp_path / "rgba.png", np.full((30, 40, 4), 200, np.uint8))
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, grey, rgba, "--out", tmp_path / "o")
    assert code == 0, err
    assert np.load(tmp_path / "o" / "latents.npy").shape == (2, 8)


def test_missing_image_path(monkeypatch, capsys, tmp_path, aegan_run):
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, tmp_path / "nope.png", "--out", tmp_path / "o")
    assert_clean_error(code, err, "nope.png", "does not exist")
    assert not (tmp_path / "o").exists()


def test_truncated_image(monkeypatch, capsys, tmp_path, aegan_run):
    good = save_png(tmp_path / "good.png", np.zeros((16, 16), np.uint8))
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[:300])
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, good, tmp_path / "cut.jpg",
                           "--out", tmp_path / "o")
    assert code == 3 and "cut.jpg" in err and "cannot decode" in err and "Traceback" not in err
    assert np.load(tmp_path / "o" / "latents.npy").shape[0] == 1  # the good image is written all the same


def test_empty_image_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", f"folder:{tmp_path / 'empty'}",
                           "--out", tmp_path / "run", "--steps", "2")
    assert_clean_error(code, err, "empty")
    assert not (tmp_path / "run").exists()


def test_missing_data_path(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", f"celeba:{tmp_path / 'absent'}",
                           "--out", tmp_path / "run", "--steps", "2")
    assert_clean_error(code, err, "absent")
    assert not (tmp_path / "run").exists()


def test_generator_must_be_a_gan_run(monkeypatch, capsys, tmp_path, aegan_run):
    code, _, err = run_cli(monkeypatch, capsys, "train", "aegan", "--generator", aegan_run, "--out", tmp_path / "e")
    assert_clean_error(code, err, "'aegan' run", "trained a generator")
    assert not (tmp_path / "e").exists()
    code, _, err = run_cli(monkeypatch, capsys, "train", "aegan", "--generator", tmp_path, "--out", tmp_path / "e")
    assert_clean_error(code, err, "not a ganinv run directory")


def test_resume_into_a_run_of_another_method(monkeypatch, capsys, generator_run, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "aegan", "--out", generator_run, "--resume")
    assert_clean_error(code, err, "'gan' run, not 'aegan'")


def test_run_of_a_newer_format(monkeypatch, capsys, tmp_path, aegan_run):
    import shutil

    run = tmp_path / "future"
    shutil.copytree(aegan_run, run)
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(monkeypatch, capsys, "eval", run)
    assert_clean_error(code, err, "newer", "config.json")


def test_checkpoint_of_another_method_under_this_config(monkeypatch, capsys, tmp_path, aegan_run, generator_run):
    import shutil

    run = tmp_path / "mixed"
    shutil.copytree(aegan_run, run)
    weights = latest_checkpoint(run).weights
    shutil.copy(generator_run / "weights.safetensors", weights)
    record_size(run, weights)  # a consistent checkpoint.json: the file is whole, only of another method
    code, _, err = run_cli(monkeypatch, capsys, "eval", run)
    assert_clean_error(code, err, "'gan' checkpoint", "'aegan'")


def record_size(run, weights):
    """Make checkpoint.json record the current size of ``weights`` (what a consistent, not damaged, run has)."""
    pointer = json.loads((run / "checkpoint.json").read_text())
    pointer.setdefault("sizes", {})[weights.name] = weights.stat().st_size
    (run / "checkpoint.json").write_text(json.dumps(pointer))


def truncate_newest_weights(run):
    weights = latest_checkpoint(run).weights
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return weights


def test_truncated_weights_fall_back_to_the_previous_checkpoint(monkeypatch, capsys, tmp_path, aegan_run):
    import shutil

    run = tmp_path / "cut"
    shutil.copytree(aegan_run, run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    if pointer.get("previous") is None:
        pytest.skip("the fixture run kept a single checkpoint")
    weights = truncate_newest_weights(run)
    code, _, err = run_cli(monkeypatch, capsys, "eval", run)
    assert code == 0
    assert str(weights) in err and "previous checkpoint" in err


def test_truncated_weights_without_an_earlier_checkpoint(monkeypatch, capsys, tmp_path, aegan_run):
    import shutil

    run = tmp_path / "cut"
    shutil.copytree(aegan_run, run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    if pointer.get("previous"):
        shutil.rmtree(run / pointer["previous"]["folder"])
    truncate_newest_weights(run)
    code, _, err = run_cli(monkeypatch, capsys, "eval", run)
    assert_clean_error(code, err, "weights.safetensors", "damaged")


def test_gan_run_cannot_be_inverted(monkeypatch, capsys, tmp_path, generator_run):
    code, _, err = run_cli(monkeypatch, capsys, "eval", generator_run)
    assert_clean_error(code, err, "no inverse network", "ganinv train aegan")


def test_bad_flag_values(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--out", tmp_path / "r",
                           "--image-size", "24")
    assert_clean_error(code, err, "power of two")
    code, _, err = run_cli(monkeypatch, capsys, "train", "vae", "--data", "digits", "--out", tmp_path / "r")
    assert_clean_error(code, err, "unknown method 'vae'")
    assert not (tmp_path / "r").exists()


def test_dlsgan_bad_encoder_loss_target(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "dlsgan", "--data", "digits", "--out", tmp_path / "r",
                           "--encoder-loss-on", "X")
    assert_clean_error(code, err, "encoder_loss_on must be one of D, DG")
    assert not (tmp_path / "r").exists()


def test_resume_with_a_latent_dim_that_does_not_match(monkeypatch, capsys, generator_run):
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--out", generator_run, "--resume",
                           "--latent-dim", "32")
    assert_clean_error(code, err, "--latent-dim 32 does not match", "latent_dim = 8")


def test_unknown_method_option(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "dlsgan", "--data", "digits", "--out", tmp_path / "r",
                           "-o", "lambda_enk=2")
    assert_clean_error(code, err, "lambda_enk", "encoder_loss_on")
