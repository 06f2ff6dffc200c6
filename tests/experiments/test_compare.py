"""`ganinv compare`: every baseline on one generator end to end, and its bad inputs."""
import json

from PIL import Image

from helpers import assert_clean_error, run_cli


def test_compare_end_to_end(monkeypatch, capsys, tmp_path, generator_run):
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--generator", generator_run, "--data", "digits",
                             "--methods", "aegan,regression,bigan,optimize,hybrid", "--out", tmp_path / "cmp",
                             "--train-steps", "3", "--bigan-steps", "3", "--optimize-steps", "5", "--refine-steps",
                             "3", "--n", "8", "--n-real", "8", "--batch-size", "8", "--json")
    assert code == 0, err
    results = json.loads(out)
    for name in ("aegan", "regression", "bigan", "optimize", "hybrid"):
        for split in ("generated", "real"):
            assert {"psnr", "ssim", "dhash_similarity", "invert_ms_per_image"} <= results[name][split].keys()
    assert results["summary"]["speed_ratio"]["ratio"] > 1
    assert Image.open(tmp_path / "cmp" / "grid.png").size[1] > 16 * 10


def test_bad_compare_and_generator_inputs(monkeypatch, capsys, tmp_path, aegan_run, generator_run):
    code, _, err = run_cli(monkeypatch, capsys, "compare", "--generator", generator_run, "--methods", "aegan,vae",
                           "--out", tmp_path / "c")
    assert_clean_error(code, err, "unknown method(s) vae")
    code, _, err = run_cli(monkeypatch, capsys, "compare", "--generator", aegan_run, "--methods", "optimize",
                           "--out", tmp_path / "c")
    assert_clean_error(code, err, "'aegan' run", "trained a generator")
    assert not (tmp_path / "c").exists()
    code, _, err = run_cli(monkeypatch, capsys, "train", "regression", "--generator", generator_run, "--out",
                           tmp_path / "w", "-o", "space=w")
    assert_clean_error(code, err, "space=w needs a style generator")
    assert not (tmp_path / "w").exists()
