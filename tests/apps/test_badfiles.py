"""One behaviour for bad image files in every command that reads user images: each bad file named once on stderr
with its reason, every good file processed, exit status 3, outputs that never collide, names that round-trip.

The corpus (tests/badfiles.py) mixes broken files, odd formats, links and odd names; see its docstring for which are
accepted and which refused. The library's reader itself: tests/data/test_image_files.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from badfiles import (
    NEWLINE,
    NON_UTF8,
    UNREADABLE,
    assert_reported,
    assert_skipped_records,
    folder_names,
    item_name,
    listable,
    make_corpus,
    picture,
    seen_by_folder_scan,
    split_corpus,
)
from helpers import labelled_grid_width, run_cli


def assert_exit_skipped(code: int, err: str) -> None:
    assert code == 3, err
    assert "exit status 3" in err.splitlines()[-1]


# ------------------------------------------------------------------------------------------------ invert
def test_invert_files_writes_the_good_ones_names_the_bad_ones_and_exits_3(monkeypatch, capsys, tmp_path,
                                                                          bad_corpus, aegan_run):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, corpus)
    out = tmp_path / "inv"
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, *[root / n for n in corpus], "--out", out)
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    inputs = [item["input"] for item in manifest["items"]]
    assert [os.fsencode(i) for i in inputs] == [os.fsencode(root / n) for n in good]  # exact bytes, round-tripped
    outputs = [item["reconstruction"] for item in manifest["items"]]
    assert len(set(outputs)) == len(good) and all((out / o).is_file() for o in outputs)
    assert len(list((out / "reconstructions").iterdir())) == len(good)  # d1/same.png and d2/same.png both kept
    assert np.load(out / "latents.npy").shape == (len(good), 8)
    assert len((out / "paths.txt").read_text(encoding="utf-8").splitlines()) == len(good)
    assert_skipped_records(manifest["skipped"], root, bad)


def test_invert_with_no_usable_file_is_an_error_and_writes_nothing(monkeypatch, capsys, tmp_path, bad_corpus,
                                                                   aegan_run):
    root, _ = bad_corpus
    names = ["empty.png", "loop.png", "bomb.png"]
    code, _, err = run_cli(monkeypatch, capsys, "invert", aegan_run, *[root / n for n in names],
                              "--out", tmp_path / "o")
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: none of the inputs is a usable image (3 skipped")
    assert not (tmp_path / "o").exists()


def test_invert_a_collection_records_the_bad_files_and_names_them_again_on_resume(monkeypatch, capsys, tmp_path,
                                                                                  bad_corpus, aegan_run):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, folder_names(root, corpus))
    args = ["invert", aegan_run, "--data", f"folder:{root}", "--out", tmp_path / "lat", "--workers", "0",
            "--shard-size", "8", "--batch-size", "4", "--quiet"]
    for _ in range(2):  # the second run finds every shard done and still reports the skipped files
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert_exit_skipped(code, err)
        assert_reported(err, root, corpus, bad, good)
    from ganinv.apps.collection import read_latents

    latents, items = read_latents(tmp_path / "lat")
    finite = np.isfinite(latents).all(axis=1)
    assert sorted(os.fsencode(i) for i, ok in zip(items, finite) if ok) == sorted(os.fsencode(root / n) for n in good)
    failed = [f for shard in sorted((tmp_path / "lat" / "shards").glob("*.json"))
              for f in json.loads(shard.read_text(encoding="utf-8"))["failed"]]
    assert_skipped_records([{"item": items[f["index"]], "error": f["error"]} for f in failed], root, bad)


# ------------------------------------------------------------------------------------------------ index, search
def index_corpus(monkeypatch, capsys, out: Path, root: Path, run: Path) -> tuple[int, str]:
    """`ganinv index` over the corpus folder: (exit status, stderr)."""
    code, _, err = run_cli(monkeypatch, capsys, "index", run, "--data", f"folder:{root}", "--split", "all",
                              "--out", out, "--shard-size", "8", "--quiet")
    return code, err


def test_index_keeps_the_good_files_and_records_the_bad_ones(monkeypatch, capsys, tmp_path, bad_corpus, aegan_run):
    from ganinv.apps.search import SearchIndex

    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, folder_names(root, corpus))
    out = tmp_path / "index"
    code, err = index_corpus(monkeypatch, capsys, out, root, aegan_run)
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    index = SearchIndex.load(out)
    assert len(index) == len(good) == index.manifest["indexed"]
    assert sorted(os.fsencode(i) for i in index.items) == sorted(os.fsencode(item_name(root / n, True)) for n in good)
    assert_skipped_records(json.loads((out / "failures.json").read_text()), root, bad, resolved=True)
    assert index.manifest["failed"] == len(bad)
    newline = index.items.index(item_name(root / NEWLINE, True))  # a newline in a name survives items.json
    assert index.images([newline]).shape == (1, 1, 16, 16)


def test_search_with_bad_queries(monkeypatch, capsys, tmp_path, bad_corpus, aegan_run):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, corpus)
    out = tmp_path / "index"
    index_corpus(monkeypatch, capsys, out, root, aegan_run)
    code, stdout, err = run_cli(monkeypatch, capsys, "search", out, *[root / n for n in corpus], "-k", "3",
                                   "--json", "--out", tmp_path / "s.png")
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    result = json.loads(stdout)
    assert [os.fsencode(q["query"]) for q in result["queries"]] == [os.fsencode(root / n) for n in good]
    assert_skipped_records(result["skipped"], root, bad)
    # the tables print odd item names (a newline, bytes that are not UTF-8) on one line each
    indexed = len(split_corpus(root, corpus, folder_names(root, corpus))[0])  # every entry, in each table
    code, stdout, err = run_cli(monkeypatch, capsys, "search", out, root / NEWLINE, root / NON_UTF8,
                                   root / "empty.png", "-k", str(indexed), "--out", tmp_path / "t.png")
    assert_exit_skipped(code, err)
    assert "new\\nline.png" in stdout and "bytes-\\xff\\xfe.png" in stdout


def test_an_index_of_format_1_is_still_read(tmp_path, aegan_run):
    from ganinv.apps import search as S

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(picture(i, 16, 16, 1)).save(folder / f"{i}.png")
    out = tmp_path / "v1"
    S.build_index(aegan_run, f"folder:{folder}", out, split="all", show_progress=False)
    items = S.SearchIndex.load(out).items
    # rewrite it as format 1 wrote it: items.txt, no rows in the shards, no items.json / failures.json
    (out / "items.txt").write_text("".join(f"{i}\n" for i in items), encoding="utf-8")
    for name in ("items.json", "failures.json", "shards/00000.json"):
        (out / name).unlink()
    with np.load(S.shard_path(out, 0)) as shard:
        arrays = {k: v for k, v in shard.items() if k != "rows"}
    np.savez(S.shard_path(out, 0), **arrays)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    index = S.SearchIndex.load(out)
    assert index.items == items and index.rows == [0, 1, 2] and index.failures == []
    assert index.images([2]).shape == (1, 1, 16, 16) and len(index.vectors("latent")) == 3


def test_an_index_of_nothing_readable_is_an_error(monkeypatch, capsys, tmp_path, aegan_run):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not a picture")
    code, _, err = run_cli(monkeypatch, capsys, "index", aegan_run, "--data", f"folder:{folder}", "--split",
                              "all", "--out", tmp_path / "ix", "--quiet")
    assert code == 2 and "Traceback" not in err
    assert "error: none of the 2 images of folder:" in err and "2 skipped" in err


def test_search_grid_survives_an_indexed_file_that_went_away(monkeypatch, capsys, tmp_path, aegan_run):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(picture(i, 16, 16, 1)).save(folder / f"{i}.png")
    code, _, err = run_cli(monkeypatch, capsys, "index", aegan_run, "--data", f"folder:{folder}", "--split",
                              "all", "--out", tmp_path / "ix", "--quiet")
    assert code == 0, err
    query = tmp_path / "query.png"
    shutil.copy(folder / "1.png", query)
    (folder / "2.png").unlink()
    code, _, err = run_cli(monkeypatch, capsys, "search", tmp_path / "ix", query, "-k", "3",
                              "--out", tmp_path / "s.png")
    assert code == 0 and "Traceback" not in err
    assert f"indexed entry 2: {folder / '2.png'} does not exist" in err
    width, height = Image.open(tmp_path / "s.png").size  # the query and its 3 results, one labelled row
    assert 4 * 66 < width < 4 * 66 + 300 and 64 < height < 2 * 64 + 40


def _celeba_corpus(root: Path) -> tuple[Path, dict]:
    """The corpus inside a CelebA layout (img_align_celeba/, attributes, partition) with 24 more good faces; bad
    files alternate between the train and test splits."""
    images = root / "img_align_celeba"
    corpus = make_corpus(images)
    for i in range(24):
        Image.fromarray(picture(50 + i)).save(images / f"{i:06d}.png")
        corpus[f"{i:06d}.png"] = "ok"
    names = [n for n in corpus if listable(n) and "/" not in n]
    rng = np.random.default_rng(0)
    rows = [f"{n} " + " ".join(rng.choice(["1", "-1"], 2)) for n in names]
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\nSmiling Young\n" + "\n".join(rows) + "\n",
                                               encoding="utf-8")
    test = set(names[1::2][:12])
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {2 if n in test else 0}\n" for n in names),
                                                  encoding="utf-8")
    return images, {n: corpus[n] for n in names}


def test_eval_search_skips_bad_train_and_test_images(monkeypatch, capsys, tmp_path, aegan_run):
    images, corpus = _celeba_corpus(tmp_path / "celeba")
    seen = [n for n in corpus if seen_by_folder_scan(images, n)]  # the rows whose image is in the folder
    good, bad = split_corpus(images, corpus, seen)
    code, stdout, err = run_cli(monkeypatch, capsys, "eval-search", aegan_run, "--data",
                                   f"celeba:{tmp_path / 'celeba'}", "--queries", "16", "-k", "3", "--index",
                                   tmp_path / "ix", "--json", "--quiet")
    assert_exit_skipped(code, err)
    assert_reported(err, images, corpus, bad, good)
    result = json.loads(stdout)
    assert result["indexed"] + result["queries"] == len(good)
    assert_skipped_records(result["skipped"], images, bad, resolved=True)


# ------------------------------------------------------------------------------------------------ superres
@pytest.mark.parametrize("degrade", [[], ["--factor", "2"]], ids=["as-is", "factor-2"])
def test_superres_with_bad_files(monkeypatch, capsys, tmp_path, bad_corpus, aegan_run, degrade):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, corpus)
    code, stdout, err = run_cli(monkeypatch, capsys, "superres", aegan_run, *[root / n for n in corpus],
                                   *degrade, "--out", tmp_path / "sr.png")
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    assert f"super-resolved {len(good)} image(s)" in stdout
    labels = ["clean", "degraded", "bicubic", "inverted"] if degrade else ["input (nearest)", "bicubic", "inverted"]
    assert Image.open(tmp_path / "sr.png").size[0] == labelled_grid_width(len(good), labels)


def test_eval_superres_skips_bad_test_images(monkeypatch, capsys, tmp_path, aegan_run):
    root = tmp_path / "corpus"
    corpus = make_corpus(root)
    names = folder_names(root, corpus)
    (root / "list_eval_partition.txt").write_text("".join(f"{n} 2\n" for n in names if listable(n)),
                                                  encoding="utf-8")
    good, bad = split_corpus(root, corpus, [n for n in names if listable(n)])
    code, stdout, err = run_cli(monkeypatch, capsys, "eval-superres", aegan_run, "--data", f"folder:{root}",
                                   "--n", "64", "--sigmas", "1", "--factors", "2", "--json")
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    result = json.loads(stdout)
    assert {r["n"] for r in result["rows"] if r["images"] == "real"} == {len(good)}
    assert_skipped_records(result["skipped"], root, bad)


# ------------------------------------------------------------------------------------------------ cluster, edit
def test_cluster_skips_bad_files(monkeypatch, capsys, tmp_path, bad_corpus, aegan_run):
    root, corpus = bad_corpus
    good, bad = split_corpus(root, corpus, folder_names(root, corpus))
    out = tmp_path / "clusters"
    code, stdout, err = run_cli(monkeypatch, capsys, "cluster", aegan_run, "--data", f"folder:{root}", "--k", "3",
                                   "--split", "all", "--out", out, "--json", "--quiet")
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, good)
    summary = json.loads(stdout)
    assert summary["n"] == sum(summary["sizes"]) == len(good)
    assert_skipped_records(summary["skipped"], root, bad)
    saved = json.loads((out / "clusters.json").read_text())
    assert sorted(os.fsencode(i) for i in saved["items"]) == sorted(os.fsencode(root / n) for n in good)


def test_edit_interpolates_the_two_readable_images(monkeypatch, capsys, tmp_path, bad_corpus, aegan_run):
    root, corpus = bad_corpus
    bad = [n for n, e in corpus.items() if e == "bad"]
    files = [root / "plain.png", *[root / n for n in bad], root / NON_UTF8]
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, *files, "--interpolate", "--steps", "3",
                              "--out", tmp_path / "i.png")
    assert_exit_skipped(code, err)
    assert_reported(err, root, corpus, bad, ["plain.png", NON_UTF8])
    assert Image.open(tmp_path / "i.png").size[0] == labelled_grid_width(5, ["first → second"])  # the originals at the ends
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, root / "plain.png", root / "empty.png",
                              "--interpolate", "--out", tmp_path / "j.png")
    assert code == 2 and "exactly two readable images, got 1 (1 skipped" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ permissions
def _without_dac_override() -> list[str] | None:
    """A command prefix that runs a process as root minus CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (so mode 000 is
    unreadable to it), or None where this machine cannot do that."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import os; os.stat('/')"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def test_an_unreadable_file_is_named_and_skipped(tmp_path, bad_corpus, aegan_run):
    root, corpus = bad_corpus
    if corpus[UNREADABLE] == "bad":
        pytest.skip("not root: the in-process tests already see the unreadable file refused")
    prefix = _without_dac_override()
    if prefix is None:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here (no setpriv, or no permission to change capabilities)")
    out = tmp_path / "o"
    done = subprocess.run([*prefix, sys.executable, "-m", "ganinv", "invert", os.fspath(aegan_run),
                           os.fspath(root / "plain.png"), os.fspath(root / UNREADABLE), "--out", os.fspath(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"}, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot read {root / UNREADABLE}: permission denied" in done.stderr
    assert len(json.loads((out / "manifest.json").read_text())["items"]) == 1
