"""Tables never cut a name or a number (issue 26, item 6): piped, every table is TSV with full values; on an
80-column terminal, a rich table that folds a long name onto more lines and never ends a cell in "…"."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from ganinv.cli import app, common

ELLIPSIS = "…"


def invoke(*args):
    """`ganinv ARGS` through typer's CliRunner: stdout is not a terminal, 80 columns."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "80", "GANINV_OFFLINE": "1"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def tsv_rows(text: str, header_start: str) -> list[list[str]]:
    """The rows of the TSV table whose header starts with ``header_start``, the header first."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start + "\t"))
    rows = []
    for line in lines[start:]:
        if "\t" not in line:
            break
        rows.append(line.split("\t"))
    return rows


def terminal(monkeypatch, width: int = 80) -> io.StringIO:
    """Make the CLI's tables think they print on a terminal ``width`` columns wide; returns what they print."""
    buffer = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=buffer, force_terminal=True, width=width, color_system=None))
    return buffer


RESULTS = {
    "optimize": {"loss": "bce image loss, 200 Adam steps", "generated": {
        "n": 64, "psnr": 16.59131, "ssim": 0.26291, "dhash_similarity": 0.59183, "lpips": 0.12345,
        "invert_ms_per_image": 1234.56789}, "real": {"n": 32, "psnr": 8.03481, "ssim": 0.00761,
                                                     "dhash_similarity": 0.42481, "invert_ms_per_image": 2.4}},
    "hybrid": {"loss": "encoder + 50 steps of bce", "generated": {
        "n": 64, "psnr": 21.12345, "ssim": 0.51234, "dhash_similarity": 0.81234, "lpips": 0.05432,
        "invert_ms_per_image": 321.98765}},
    "regression": {"loss": "latent MSE + 0.1·bce recon on generated images from step 100 (trained)", "generated": {
        "n": 64, "psnr": 18.5, "ssim": 0.4, "dhash_similarity": 0.7, "invert_ms_per_image": 1.5678,
        "angle_error_deg": 45.12345, "angle_chance_deg": 90.0}},
}
VALUES = [f"{v:.4f}" for r in RESULTS.values() for split in ("generated", "real") if split in r
          for k, v in r[split].items() if k != "n"]


def test_eval_piped_prints_tsv_with_every_name_and_full_value(aegan_run):
    out = invoke("eval", aegan_run, "--data", "digits", "--n", "16")
    assert ELLIPSIS not in out
    header, *rows = tsv_rows(out, "run / method")
    assert header == ["run / method", "images", "n", "dHash similarity", "PSNR dB", "SSIM", "ms per image"]
    result = json.loads(invoke("eval", aegan_run, "--data", "digits", "--n", "16", "--json"))
    for row, split in zip(rows, ("generated", "real"), strict=True):
        assert row[:3] == [str(aegan_run), split, str(result[split]["n"])]
        assert row[3:6] == [f"{result[split][k]:.4f}" for k in ("dhash_similarity", "psnr", "ssim")]


def test_results_table_piped_keeps_the_loss_whole(capsys):
    common.print_results_table(RESULTS, title="inversion methods on /a/generator/run")
    out = capsys.readouterr().out
    assert ELLIPSIS not in out and out.startswith("# inversion methods on /a/generator/run\n")
    header, *rows = tsv_rows(out, "run / method")
    assert header[:4] == ["run / method", "loss", "images", "n"]
    assert [r[:2] for r in rows] == [["optimize", RESULTS["optimize"]["loss"]], ["optimize", RESULTS["optimize"]["loss"]],
                                     ["hybrid", RESULTS["hybrid"]["loss"]], ["regression", RESULTS["regression"]["loss"]]]
    assert all(len(r) == len(header) for r in rows)
    for value in VALUES:
        assert value in out.split(), value


def test_results_table_on_an_80_column_terminal_cuts_nothing(monkeypatch):
    printed = terminal(monkeypatch)
    common.print_results_table(RESULTS, title="inversion methods on /a/generator/run (same images for every method)")
    out = printed.getvalue()
    assert ELLIPSIS not in out
    words = out.split()
    for value in [*VALUES, "optimize", "hybrid", "regression", "generated", "real", "PSNR↑", "SSIM↑", "dHash↑"]:
        assert value in words, value  # whole, on one line: no number is folded
    for name, result in RESULTS.items():  # the long losses go under the table, whole
        assert f"{name} minimised: {result['loss']}" in out
    usual = {k: v for k, v in RESULTS.items() if k != "regression"}  # no angle columns: the table fits 80 columns
    printed.truncate(0)
    printed.seek(0)
    common.print_results_table(usual, title="inversion methods")
    table = printed.getvalue().splitlines()
    assert max(len(line) for line in table if not line.startswith(("optimize minimised", "↑"))) <= 80, table
    assert len([line for line in table if line.startswith("optimize ") and "minimised" not in line]) == 2  # a line a row


def test_a_long_name_folds_on_a_terminal_and_stays_whole_in_tsv(monkeypatch, capsys):
    name = "/a/very/long/path/to/a/run/directory/that/is/deep/aegan-run-celeba-64px"
    results = {name: {"generated": RESULTS["optimize"]["generated"]}}
    common.print_results_table(results, title="eval")
    assert f"{name}\tgenerated\t64\t" in capsys.readouterr().out
    printed = terminal(monkeypatch)
    common.print_results_table(results, title="eval")
    out = printed.getvalue()
    assert ELLIPSIS not in out and "1234.5679" in out.split()
    first_column = "".join(line[:30].split("  ")[0].strip() for line in out.splitlines()[3:])
    assert name in first_column  # folded over lines, every character kept


def test_tsv_escapes_tabs_and_line_breaks_in_values():
    text = common.tsv_table("t", ["a", "b"], [["x\ty", "1\n2"]])
    assert text.splitlines() == ["# t", "a\tb", "x\\ty\t1\\n2"]


@pytest.fixture(scope="module")
def digits_index(tmp_path_factory, aegan_run):
    index = tmp_path_factory.mktemp("index") / "idx"
    invoke("index", aegan_run, "--data", "digits", "--out", index, "--limit", "40", "--methods", "latent,dhash",
           "--quiet")
    return index


def test_search_piped_prints_whole_file_names(tmp_path, monkeypatch, digits_index):
    monkeypatch.chdir(tmp_path)
    query = tmp_path / "a-query-image-with-a-rather-long-file-name-0123456789.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).save(query)
    out = invoke("search", digits_index, query, "-k", "3")
    assert ELLIPSIS not in out
    header, *rows = tsv_rows(out, "query")
    assert header == ["query", "rank", "item", "distance"]
    result = json.loads(invoke("search", digits_index, query, "-k", "3", "--json"))
    expected = [[str(query), str(r["rank"]), r["item"], f"{r['distance']:.6g}"] for r in result["queries"][0]["results"]]
    assert rows == expected
    assert "wrote ganinv-out/search-a-query-image-with-a-rather-long-file-name-0123456789.png" in out.splitlines()
    printed = terminal(monkeypatch)
    invoke("search", digits_index, query, "-k", "3")
    assert ELLIPSIS not in printed.getvalue() and all(r[2] in printed.getvalue() for r in expected)
