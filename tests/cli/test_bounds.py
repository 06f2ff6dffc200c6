"""Issue 23: every size, count and seed a command takes is bounded, and each bad one is refused in one line with
exit status 2 — at parse time where typer can (before any heavy import), else before anything is allocated. Each
case here once was a traceback, a NaN grid, PNG bytes under .jpg, or a process the kernel killed."""
from __future__ import annotations

import errno
import json
import shutil
import sys

import pytest
from PIL import Image

from ganinv.core.bounds import MAX_GRID_COLUMNS, MAX_IMAGE_SIZE, MAX_SEED, MAX_STEPS
from helpers import assert_clean_error, run_cli


def assert_usage_error(code, err, *needles):
    """Refused by typer at parse time: exit 2, its "Invalid value" message naming every needle, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    text = " ".join(err.replace("│", " ").split())
    assert "Invalid value for" in text, text
    for needle in needles:
        assert needle in text, (needle, text)


PARSE_TIME = [  # (arguments, what the message says, a module the command imports only after parsing)
    (["train", "gan", "--data", "digits", "--out", "{tmp}/r", "--seed", "1180591620717411303424"],
     ["--seed", str(MAX_SEED)], "ganinv.training.launch"),
    (["train", "gan", "--data", "digits", "--out", "{tmp}/r", "--workers", "-1"], ["--workers"],
     "ganinv.training.launch"),
    (["train", "gan", "--data", "mnist", "--out", "{tmp}/r", "--image-size", "65536"],
     ["--image-size", f"at most {MAX_IMAGE_SIZE}", "megapixels"], "ganinv.training.launch"),
    (["train", "gan", "--data", "digits", "--out", "{tmp}/r", "--steps", str(10**20)],
     ["--steps", f"at most {MAX_STEPS}", "days"], "ganinv.training.launch"),
    (["invert", "{run}", "--data", "digits", "--out", "{tmp}/o", "--workers", "-1"], ["--workers"],
     "ganinv.apps.invert"),
    (["eval", "{run}", "--n", "-1"], ["--n"], "ganinv.inference.evaluate"),
    (["edit", "{run}", "--interpolate", "--steps", "100000", "--out", "{tmp}/e.png"],
     ["--steps", f"at most {MAX_GRID_COLUMNS}", "unreadable"], "ganinv.apps.edit"),
    (["edit", "{run}", "--interpolate", "--seed", "-1"], ["--seed"], "ganinv.apps.edit"),
    (["ablate", "dlsgan", "--data", "digits", "--image-size", "8192"], ["--image-size"], "ganinv.experiments.ablation"),
    (["index", "{run}", "--data", "digits", "--out", "{tmp}/i", "--limit", "0"], ["--limit"], "ganinv.apps.search"),
]


@pytest.mark.parametrize("args, needles, deferred", PARSE_TIME)
def test_bad_numbers_are_refused_at_parse_time(monkeypatch, capsys, tmp_path, aegan_run, args, needles, deferred):
    monkeypatch.setitem(sys.modules, deferred, None)  # importing it now fails: the refusal has to come first
    monkeypatch.setenv("COLUMNS", "400")  # typer's message box on one line
    code, _, err = run_cli(monkeypatch, capsys, *[a.format(tmp=tmp_path, run=aegan_run) for a in args])
    assert_usage_error(code, err, *needles)
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_bounds_themselves_are_accepted(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--out", tmp_path / "r",
                             "--seed", MAX_SEED, "--steps", MAX_STEPS, "--image-size", MAX_IMAGE_SIZE, "--dry-run")
    assert code == 0, err
    config = json.loads(out)
    assert (config["seed"], config["train"]["steps"], config["net"]["image_size"]) == (MAX_SEED, MAX_STEPS,
                                                                                      MAX_IMAGE_SIZE)


# ------------------------------------------------------------------------------- refused before allocating
@pytest.mark.parametrize("command, deferred", [("eval", "ganinv.inference.evaluate"),
                                               ("eval-superres", "ganinv.apps.superres")])
def test_an_n_that_cannot_fit_in_memory_is_refused_before_anything_loads(monkeypatch, capsys, aegan_run, command,
                                                                         deferred):
    monkeypatch.setitem(sys.modules, deferred, None)
    code, _, err = run_cli(monkeypatch, capsys, command, aegan_run, "--n", 10**12)
    assert_clean_error(code, err, f"{command} --n", "of 16 px", "GiB of memory", "fewer with --n")


def test_an_edit_grid_too_large_to_draw_is_refused_before_the_direction_is_learned(monkeypatch, capsys, aegan_run,
                                                                                   tmp_path):
    import ganinv.apps.edit as edit

    monkeypatch.setattr(edit, "labelled_latents", lambda *a, **k: pytest.fail("inverted the labelled images"))
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--attribute", "digit=3", "--data", "digits",
                           "--samples", 1000, "--steps", 64, "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "1000 rows × 65 images of 16 px", "megapixels", "fewer rows")
    assert not (tmp_path / "e.png").exists()


# ---------------------------------------------------------------------------------------- one clear line
@pytest.mark.parametrize("factors, needle", [("0", "got 0"), ("2.5", "got 2.5"), ("32", "got 32"),
                                             ("2,-4", "got -4")])
def test_eval_superres_bad_factors(monkeypatch, capsys, aegan_run, factors, needle):
    code, _, err = run_cli(monkeypatch, capsys, "eval-superres", aegan_run, "--factors", factors, "--n", 4)
    assert_clean_error(code, err, "--factors must be integers from 1 to the run's image side 16", needle)


def test_eval_superres_bad_sigma(monkeypatch, capsys, aegan_run):
    code, _, err = run_cli(monkeypatch, capsys, "eval-superres", aegan_run, "--sigmas", "1,nan", "--n", 4)
    assert_clean_error(code, err, "--sigmas must be finite numbers ≥ 0", "nan")


@pytest.mark.parametrize("strength", ["nan..inf", "-2..inf", "nan", "-1e30..2"])
def test_edit_refuses_strengths_that_are_not_finite(monkeypatch, capsys, aegan_run, tmp_path, strength):
    import ganinv.apps.edit as edit

    monkeypatch.setattr(edit, "load_inverter", lambda *a, **k: pytest.fail("loaded the run"))
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--attribute", "digit=3", "--data", "digits",
                           f"--strength={strength}", "--steps", 3, "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "--strength must be finite numbers from -100 to 100", strength)
    assert not (tmp_path / "e.png").exists()


def test_a_config_json_with_a_bad_field_is_one_line_naming_file_and_field(monkeypatch, capsys, aegan_run, tmp_path):
    run = tmp_path / "hostile"
    shutil.copytree(aegan_run, run)
    config = json.loads((run / "config.json").read_text())
    config["net"]["image_size"] = -16
    (run / "config.json").write_text(json.dumps(config))
    Image.new("L", (16, 16)).save(tmp_path / "a.png")
    code, _, err = run_cli(monkeypatch, capsys, "invert", run, tmp_path / "a.png", "--out", tmp_path / "o")
    assert_clean_error(code, err, str(run / "config.json"), "field net.image_size must be from 4 to 4096", "-16")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ output formats
@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".JPEG", "JPEG"), (".png", "PNG"), (".bmp", "BMP")])
def test_edit_writes_the_format_its_suffix_names(monkeypatch, capsys, aegan_run, tmp_path, suffix, fmt):
    out = tmp_path / f"e{suffix}"
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--interpolate", "--steps", 3, "--out", out)
    assert code == 0, err
    with Image.open(out) as image:
        assert image.format == fmt and image.mode == "RGB" and image.width > 3 * 16


@pytest.mark.parametrize("command", [["edit", "{run}", "--interpolate"], ["superres", "{run}", "{tmp}/a.png"],
                                     ["search", "{tmp}", "{tmp}/a.png"]])
def test_an_unknown_output_suffix_is_refused_before_any_work(monkeypatch, capsys, aegan_run, tmp_path, command):
    for module in ("ganinv.apps.edit", "ganinv.apps.superres", "ganinv.apps.search"):
        monkeypatch.setitem(sys.modules, module, None)
    args = [a.format(run=aegan_run, tmp=tmp_path) for a in command]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "grid.gif")
    assert_clean_error(code, err, "grid.gif", "suffix '.gif'", ".png, .jpg")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "grid")
    assert_clean_error(code, err, "no suffix")
    assert not list(tmp_path.glob("grid*"))


# ------------------------------------------------------------------------------------------ a full disk
def _failing_faiss_write(index, path):
    """What FAISS raises when the disk fills under write_index (its message names its temporary file)."""
    raise RuntimeError(f"Error in void faiss::write_index(const Index*, IOWriter*, int) at impl/index_write.cpp:"
                       f"499: Error: 'ret == (size * 4)' failed: write error in {path}: 4051 != 1600000 (No space "
                       "left on device)")


def test_index_on_a_full_disk_names_the_path_and_says_what_works(monkeypatch, capsys, aegan_run, tmp_path):
    import faiss

    out = tmp_path / "idx"
    args = ("index", aegan_run, "--data", "digits", "--out", out, "--limit", 48, "--shard-size", 16, "--quiet",
            "--methods", "latent")
    with monkeypatch.context() as patch:
        patch.setattr(faiss, "write_index", _failing_faiss_write)
        code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_clean_error(code, err, f"cannot write the FAISS index {out / 'latent.faiss'}", "No space left on device",
                       "run the same command again")
    assert "--resume" not in err and "index_write.cpp" not in err
    code, out_text, err = run_cli(monkeypatch, capsys, *args)  # space freed: the same command finishes the index
    assert code == 0, err
    assert "indexed 48 images" in out_text


def test_index_when_a_shard_cannot_be_written_names_the_folder(monkeypatch, capsys, aegan_run, tmp_path):
    import ganinv.apps.search as search

    real_save, calls = search.atomic_save_npz, []

    def fill_disk_on_the_second_shard(path, **arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")  # as a write() on a full disk: no file name
        return real_save(path, **arrays)

    out = tmp_path / "idx"
    args = ("index", aegan_run, "--data", "digits", "--out", out, "--limit", 48, "--shard-size", 16, "--quiet",
            "--methods", "latent")
    monkeypatch.setattr(search, "atomic_save_npz", fill_disk_on_the_second_shard)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_clean_error(code, err, f"cannot write the index in {out}: No space left on device",
                       "run the same command again")
    assert "--resume" not in err
    monkeypatch.setattr(search, "atomic_save_npz", real_save)
    code, out_text, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "indexed 48 images" in out_text and "resuming" in err
