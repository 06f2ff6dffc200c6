"""`ganinv reproduce --budget smoke`: the whole CelebA reproduction suite end to end on a tiny CelebA-layout folder
the test makes, resumable, with a verdict row per claim and labelled figures."""
import json

import pytest

from ganinv.experiments.reproduce import PARTS, reproduce
from ganinv.experiments.reproduce.verdicts import REFUTED, REPRODUCED, aegan_table1, graded
from helpers import assert_clean_error, make_celeba, run_cli

CLAIMS = ["AEGAN reconstructs", "Searching by AEGAN latent", "Gaussian-blurred", "Without DLS", "With DLS",
          "(DG)", "best with DLS and DG", "little difference", "embedding direction", "super-resolves",
          "Fine-tuning P", "Ward clusters"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    data = make_celeba(root / "celeba")
    messages = []
    report = reproduce(data, root / "out", budget="smoke", log=messages.append)
    return data, root / "out", report, messages


def test_smoke_writes_a_verdict_row_per_claim_and_labelled_figures(smoke):
    _, out, report, _ = smoke
    text = report.read_text()
    verdict_rows = [line for line in text.splitlines() if line.startswith("| ") and any(c in line for c in CLAIMS)]
    assert len(verdict_rows) == len(CLAIMS), verdict_rows
    assert all(any(v in line for v in ("reproduced", "partly", "refuted")) for line in verdict_rows)
    for link in [part for line in text.splitlines() for part in line.split("](")[1:]]:
        assert (out / link.split(")")[0]).is_file(), link  # every figure the report names exists
    assert "--budget smoke" in text or "budget `smoke`" in text.lower()


def test_every_sub_run_is_a_normal_run_directory_and_progress_says_done(smoke):
    _, out, _, _ = smoke
    progress = json.loads((out / "progress.json").read_text())
    assert {p["status"] for p in progress["parts"].values()} == {"done"}
    assert set(progress["parts"]) == {name for name, _ in PARTS}
    for run in ("dcgan", "aegan", "regression", "bigan", "dedgan", "projection"):
        assert (out / "runs" / run / "config.json").is_file(), run
    assert (out / "dlsgan" / "N-DLS-DG" / "config.json").is_file()
    table1 = json.loads((out / "results" / "aegan-table1.json").read_text())
    assert table1["rows"]["optimize"]["loss"].lower().startswith("bce")  # Creswell's BCE (eq. 2), said per row


def test_rerun_skips_finished_parts_and_redoes_a_lost_one(smoke):
    data, out, _, _ = smoke
    (out / "results" / "dedgan.json").unlink()  # as if killed during the part
    messages = []
    reproduce(data, out, budget="smoke", log=messages.append)
    assert any("aegan-table1: finished earlier" in m for m in messages)
    assert any(m.endswith("dedgan") for m in messages) and (out / "results" / "dedgan.json").is_file()
    assert any("reusing finished dedgan" in m for m in messages)  # its run was finished: not trained again


def test_another_budget_in_the_same_folder_is_refused(smoke, monkeypatch, capsys):
    data, out, _, _ = smoke
    code, _, err = run_cli(monkeypatch, capsys, "reproduce", "--data", data, "--out", str(out), "--budget", "cpu")
    assert_clean_error(code, err, "--budget smoke")


def test_data_that_is_not_celeba_is_one_clear_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "reproduce", "--data", "mnist", "--out", str(tmp_path / "o"))
    assert_clean_error(code, err, "celeba:PATH")
    code, _, err = run_cli(monkeypatch, capsys, "reproduce", "--data", f"celeba:{tmp_path}/nope", "--out",
                           str(tmp_path / "o"))
    assert_clean_error(code, err, "nope")
    assert not (tmp_path / "o").exists()


def test_verdicts_follow_their_stated_rule():
    rows = {m: {"generated": {"dhash_similarity": v}, "real": {"dhash_similarity": 0.7}}
            for m, v in (("aegan", 0.9), ("regression", 0.8), ("bigan", 0.7))}
    assert aegan_table1({"rows": rows})["verdict"] == REPRODUCED
    rows["aegan"]["generated"]["dhash_similarity"] = 0.5
    assert aegan_table1({"rows": rows})["verdict"] == "partly"  # only regression > bigan still holds
    rows["bigan"]["real"]["dhash_similarity"] = 0.5  # a BiGAN whose G learned nothing: left out, said so
    verdict = aegan_table1({"rows": rows})
    assert verdict["verdict"] == REFUTED and "BiGAN left out" in verdict["ours"]
    assert graded(0, 3) == REFUTED and graded(3, 3) == REPRODUCED


def test_dedgan_is_trained_at_two_budgets_and_draws_the_angle_against_steps(smoke):
    _, out, report, _ = smoke
    result = json.loads((out / "results" / "dedgan.json").read_text())
    assert result["short"]["steps"] < result["steps"]  # style_epochs, then dedgan_epochs
    for r in (result, result["short"]):
        steps = [s for s, _, _ in r["angle_curve"]]
        assert steps and steps == sorted(steps) and steps[-1] <= r["steps"]
        assert all(0 <= a <= 180 and 0 <= c <= 180 for _, a, c in r["angle_curve"])
    assert (out / result["curves"]).is_file() and result["curves"] in report.read_text()


def test_jobs_run_the_parts_in_several_processes_with_their_share_of_the_cores(tmp_path):
    from ganinv.core.threads import chosen_threads, threads_per_process
    from ganinv.experiments.reproduce.jobs import deal

    groups = deal({name for name, _ in PARTS}, 2)
    assert len(groups) == 2 and sorted(p for g in groups for p in g) == sorted(name for name, _ in PARTS)
    for chain in (["aegan-table1", "aegan-table2", "aegan-superres"], ["dlsgan", "projection", "projection-finetune"]):
        group = next(g for g in groups if chain[0] in g)
        assert [p for p in group if p in chain] == chain  # dependent parts in one process, in order
    data = make_celeba(tmp_path / "celeba")
    messages = []
    report = reproduce(data, tmp_path / "out", budget="smoke", jobs=2, parts=["dedgan", "aegan-table1"],
                       log=messages.append)
    logs = sorted((tmp_path / "out" / "jobs").glob("*.log"))
    assert len(logs) == 2 and all("finished" in m for m in messages if m.startswith("job") and "(" in m
                                  and "thread" not in m)
    assert f"({chosen_threads() or threads_per_process(2)} thread(s))" in " ".join(messages)
    assert {p.stem for p in (tmp_path / "out" / "results").glob("*.json")} == {"dedgan", "aegan-table1"}
    assert "embedding direction" in report.read_text()
