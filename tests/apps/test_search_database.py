"""AEGAN (Luo et al.) table 2's search protocol: a database of the first N train images (the paper: 20,000; all
when fewer), queries from the test split, and a result that says what was used."""
import json

import pytest

from ganinv.apps.search import SearchIndex, evaluate_search
from ganinv.core.errors import GaninvError
from helpers import run_cli

DIGITS_TRAIN = 1618  # scikit-learn's 1,797 digits less the last 179 (test)


def test_database_is_the_first_n_train_images(aegan_run, tmp_path):
    result = evaluate_search(aegan_run, "digits", index_dir=tmp_path / "ix", database=100, queries=8, k=5,
                             methods=("latent", "dhash"), show_progress=False)
    assert (result["indexed"], result["queries"], result["database"]) == (100, 8, 100)
    assert result["database_note"] == f"the first 100 of {DIGITS_TRAIN} train images (the paper used 20,000)"
    index = SearchIndex.load(tmp_path / "ix")
    assert index.manifest["split"] == "train" and index.rows == list(range(100))  # the first 100, in order
    assert set(result["label_similarity"]) == {"latent", "dhash", "random"}


def test_default_is_the_papers_20000_or_all_there_are(aegan_run, tmp_path):
    logs = []
    result = evaluate_search(aegan_run, "digits", index_dir=tmp_path / "ix", queries=4, k=3, methods=("dhash",),
                             show_progress=False, log=logs.append)
    assert result["database"] == 20_000 and result["indexed"] == DIGITS_TRAIN
    note = f"the first {DIGITS_TRAIN} train images (all there are; the paper used 20,000)"
    assert result["database_note"] == note and f"search database: {note}" in logs


def test_limit_is_still_accepted_as_the_old_name(aegan_run, tmp_path):
    result = evaluate_search(aegan_run, "digits", limit=40, queries=4, k=3, methods=("dhash",), show_progress=False)
    assert result["indexed"] == 40 and result["database"] == 40
    with pytest.raises(GaninvError, match="at least 1"):
        evaluate_search(aegan_run, "digits", database=0, methods=("dhash",), show_progress=False)


def test_cli_database_flag_and_a_reused_index_says_what_it_holds(monkeypatch, capsys, aegan_run, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "eval-search", aegan_run, "--data", "digits", "--database", "60",
                             "--queries", "4", "-k", "3", "--methods", "dhash", "--index", tmp_path / "ix", "--json",
                             "--quiet")
    assert code == 0, err
    result = json.loads(out)
    assert result["indexed"] == 60 and result["database_note"].startswith("the first 60 of")
    code, out, err = run_cli(monkeypatch, capsys, "eval-search", aegan_run, "--data", "digits", "--queries", "4",
                             "-k", "3", "--methods", "dhash", "--index", tmp_path / "ix")  # reused: 60, not 20,000
    assert code == 0, err
    assert "holds 60 images, not the 1618 asked" in " ".join(err.split())
    assert "database: the first 60 of" in " ".join(out.split())
