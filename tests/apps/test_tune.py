"""Pivotal tuning of image files (ganinv.apps.tune): tolerant reading, the tuned run, before/after PNGs, the
manifest — and the order that keeps an interrupted call safe."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganinv.apps.tune as T
from ganinv import load
from ganinv.core.errors import DataError, GaninvError
from ganinv.inference.tuning import load_tuned
from ganinv.metrics import lpips_status


@pytest.fixture(scope="module")
def folder(tmp_path_factory, aegan_run):
    """Three of the run's own images mirrored (out of its reach) as PNGs, and one file that is no image."""
    model = load(aegan_run)
    root = tmp_path_factory.mktemp("tune-images")
    images = model.generate(model.sample(3, generator=torch.Generator().manual_seed(3))).flip(-1)
    for i, image in enumerate(images):
        Image.fromarray((image[0] * 255).round().byte().numpy()).save(root / f"{i}.png")
    (root / "broken.png").write_text("not an image")
    return root


def read_grey_png(path):
    """A PNG written by ganinv.core.viz.save_png (grey images as three equal channels) as an H×W tensor."""
    return torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0)


def test_tune_files_writes_the_tuned_run_images_and_manifest(aegan_run, folder, tmp_path):
    messages = []
    files = sorted(folder.glob("*.png"))
    summary = T.tune_files(aegan_run, files, tmp_path / "out", steps=120, warn=messages.append,
                           show_progress=False)
    out = tmp_path / "out"
    assert summary.n == 3 and [s.item for s in summary.skipped] == [str(folder / "broken.png")]
    assert any("broken.png" in m for m in messages)
    assert lpips_status()[0] or sum("LPIPS" in m for m in messages) == 1  # said once when its weights are missing
    assert summary.mean_psnr_after > summary.mean_psnr_before + 1.0
    assert all(a > b for a, b in zip(summary.psnr_after, summary.psnr_before))
    assert 0 <= summary.locality_drift < summary.drift_scale

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tuned_run"] == str(out / "tuned-run") and len(manifest["items"]) == 3
    assert manifest["items"][0]["after"] == "after/00000-0.png"
    assert manifest["skipped"][0]["item"].endswith("broken.png") and (out / "grid.png").is_file()
    assert (out / "paths.txt").read_text().splitlines() == [str(f) for f in files if f.name != "broken.png"]

    tuned = load(out / "tuned-run")  # by path, like any run: the after PNGs are its images at the pivots
    generated = tuned.generate(summary.pivots)
    for row, item in enumerate(manifest["items"]):
        assert torch.allclose(read_grey_png(out / item["after"]), generated[row, 0], atol=1 / 255 + 1e-6)
    assert load_tuned(out / "tuned-run").names == [str(f) for f in files if f.name != "broken.png"]


def test_tune_files_records_pivot_sources_and_the_drift_on_held_out_files(aegan_run, folder, tmp_path):
    model = load(aegan_run)
    held = model.generate(model.sample(2, generator=torch.Generator().manual_seed(9))).flip(-1)
    for i, image in enumerate(held):
        Image.fromarray((image[0] * 255).round().byte().numpy()).save(tmp_path / f"held-{i}.png")
    result = T.tune_files(aegan_run, [folder / "0.png", folder / "1.png"], tmp_path / "out", steps=20,
                          pivot_steps=30, held_out=[tmp_path / "held-0.png", tmp_path / "held-1.png"],
                          show_progress=False)
    assert len(result.pivot_sources) == 2 and set(result.pivot_sources) <= {"encoder", "z optimisation"}
    assert result.drift["held_out"] == 2 and result.drift["prior_samples"] > 0
    assert all(0 < result.drift[k] < 100 for k in ("prior_psnr", "held_out_psnr", "held_out_before"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["drift"] == result.drift and manifest["pivot_sources"] == result.pivot_sources
    assert load_tuned(tmp_path / "out" / "tuned-run").drift == result.drift


def test_bad_settings_and_an_existing_tuned_run_are_refused_before_any_work(aegan_run, folder, tmp_path):
    with pytest.raises(GaninvError, match="steps must be an integer"):
        T.tune_files(aegan_run, [folder], tmp_path / "a", steps=-1, show_progress=False)
    assert not (tmp_path / "a").exists()
    (tmp_path / "b" / "tuned-run").mkdir(parents=True)
    with pytest.raises(GaninvError, match="already exists"):
        T.tune_files(aegan_run, [folder], tmp_path / "b", steps=1, show_progress=False)
    assert list((tmp_path / "b").iterdir()) == [tmp_path / "b" / "tuned-run"]
    with pytest.raises(DataError):
        T.tune_files(aegan_run, [folder / "broken.png"], tmp_path / "c", steps=1, show_progress=False)
    assert not (tmp_path / "c").exists()


def test_an_interruption_between_files_leaves_the_complete_tuned_run_and_no_manifest(aegan_run, folder, tmp_path,
                                                                                      monkeypatch):
    written = []

    def save_png(image, path):  # the third image file is where the process "dies"
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)

    monkeypatch.setattr(T, "save_png", save_png)
    with pytest.raises(KeyboardInterrupt):
        T.tune_files(aegan_run, [folder], tmp_path / "out", steps=3, show_progress=False)
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()  # written last: its absence says the outputs are incomplete
    tuned = load_tuned(out / "tuned-run")  # written first, as one unit
    assert len(tuned.pivots) == 3 and tuned.settings.steps == 3


def test_cli_invert_tune_writes_a_tuned_run_and_says_the_gain(tmp_path, aegan_run, monkeypatch, capsys):
    import numpy as np
    from PIL import Image

    from helpers import run_cli

    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "tuned"
    code, stdout, err = run_cli(monkeypatch, capsys, "invert", aegan_run, tmp_path / "0.png", tmp_path / "1.png",
                                "--tune", "3", "--out", out, "--quiet")
    assert code == 0, err
    assert "tuned the generator on 2 images: PSNR" in stdout and (out / "tuned-run" / "config.json").is_file()
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, tmp_path / "0.png", "--tune", "-1", "--out",
                           tmp_path / "bad")
    assert code == 2 and "steps" in err and not (tmp_path / "bad").exists()




def test_cli_invert_align_tune_aligns_the_photo_then_tunes_on_the_aligned_crop(tmp_path, rgb_aegan_run, monkeypatch,
                                                                              capsys):
    from faces import drawn_face
    from helpers import run_cli

    drawn_face(12)[0].save(tmp_path / "face.png")
    out = tmp_path / "tuned"
    code, stdout, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "face.png", "--align",
                                "--tune", "3", "--out", out, "--quiet")
    assert code == 0, err
    assert "face(s) aligned to the aligned-CelebA square at 16×16" in err  # invert --align's own note
    assert "tuned the generator on 1 images: PSNR" in stdout and (out / "tuned-run" / "config.json").is_file()
    item = json.loads((out / "manifest.json").read_text())["items"][0]
    assert item["aligned"] == "aligned/00000-face.png" and item["alignment"]["source"] == "eyes"
    aligned = torch.from_numpy(np.asarray(Image.open(out / item["aligned"]), dtype=np.float32) / 255.0)
    assert aligned.shape == (16, 16, 3)
    plain = T.read_images([tmp_path / "face.png"], (3, 16, 16)).batch()[0].permute(1, 2, 0)
    assert (aligned - plain).abs().mean() > 0.05  # the tuning saw the aligned crop, not the centre-cropped canvas
    before = torch.from_numpy(np.asarray(Image.open(out / item["before"]), dtype=np.float32) / 255.0)
    assert abs(item["psnr_before"] - float(-10 * torch.log10((before - aligned).square().mean()))) < 0.5
    code, _, err = run_cli(monkeypatch, capsys, "invert", rgb_aegan_run, tmp_path / "face.png", "--tune", "3",
                           "--landmarks", tmp_path / "lbfmodel.yaml", "--out", tmp_path / "o")
    assert code == 2 and ("opencv-contrib" in err or "does not exist" in err) and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # the landmark model is refused before anything is written
