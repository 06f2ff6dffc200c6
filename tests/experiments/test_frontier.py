"""`ganinv bench frontier`: every inverter family of a generator measured on the same images, with a Pareto plot
and the issue's two targets; runs end to end on tiny nets with the smoke budget."""
import json

import pytest

from ganinv.experiments.frontier import pareto, targets
from helpers import TINY_NET, assert_clean_error, run_cli, tiny_train


@pytest.fixture(scope="module")
def iterative_run(tmp_path_factory, generator_run):
    out = tmp_path_factory.mktemp("runs") / "iterative"
    tiny_train("iterative", out, steps=4, generator=generator_run, options={"steps": 2})
    return out


def test_every_family_is_measured_on_real_and_generated_images(tmp_path, generator_run, aegan_run, iterative_run,
                                                               monkeypatch, capsys):
    out = tmp_path / "frontier"
    code, stdout, err = run_cli(monkeypatch, capsys, "bench", "frontier", "--generator", generator_run, "--data",
                                "digits", "--encoders", f"{aegan_run},{iterative_run}", "--budget", "smoke",
                                "--out", out)
    assert code == 0, err
    saved = json.loads((out / "frontier.json").read_text())
    for images in ("real", "generated"):
        rows = saved["results"][images]
        names = [r["inverter"] for r in rows]
        assert {r["family"] for r in rows} == {"encoder", "iterative", "hybrid", "optimisation", "tuning"}
        assert "iterative (z) T=1" in names and "iterative (z) T=2" in names
        assert not any("optimise w" in n for n in names)  # a DCGAN has no W: z only
        assert all(r["ms/image"] > 0 and r["peak MB"] >= 0 and r["n"] == 4 for r in rows)
        assert (out / f"frontier-{images}.png").stat().st_size > 1000
    assert [t["met"] in (True, False) for t in saved["targets"]] and "pivotal tuning" in saved["targets"][-1]["target"]
    assert "## Targets" in (out / "frontier.md").read_text()


def test_a_style_generator_adds_optimisation_in_w_and_wplus(tmp_path):
    dls = tmp_path / "dlsgan"
    tiny_train("dlsgan", dls, steps=2, data="digits", preset="small",
               net_overrides={**TINY_NET, "channels": 1, "prior": "normal"})
    from ganinv.experiments.frontier import BUDGETS, inverter_list
    from ganinv.inference.model import InversionModel

    gen = InversionModel.load(dls)
    names = [i.name for i in inverter_list(gen, [gen], BUDGETS["smoke"])]
    assert "optimise w, 3 steps" in names and "optimise wplus, 3 steps" in names and "dlsgan (z) encoder" in names


def test_pareto_keeps_the_rows_nothing_beats_and_targets_say_met_or_missed():
    rows = [{"inverter": "encoder", "family": "encoder", "ms/image": 1.0, "psnr": 20.0},
            {"inverter": "slow and worse", "family": "hybrid", "ms/image": 5.0, "psnr": 19.0},
            {"inverter": "optimise z, 1000 steps", "family": "optimisation", "ms/image": 100.0, "psnr": 20.5},
            {"inverter": "pivotal tuning", "family": "tuning", "ms/image": 300.0, "psnr": 25.0}]
    assert [r["inverter"] for r in pareto(rows)] == ["encoder", "optimise z, 1000 steps", "pivotal tuning"]
    fast, tuning = targets(rows)
    assert fast["met"] and fast["best fast inverter"] == "encoder"  # 1 ms ≤ 2 % of 100 ms, 20 ≥ 0.95 × 20.5
    assert tuning["met"]  # 25 ≥ 20.5 + 3
    rows[0]["psnr"] = 10.0
    assert not targets(rows)[0]["met"]


def test_a_run_that_cannot_invert_is_one_clear_line(tmp_path, generator_run, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "bench", "frontier", "--generator", generator_run, "--data", "digits",
                           "--encoders", generator_run, "--budget", "smoke", "--out", tmp_path / "f")
    assert_clean_error(code, err, "no inverse network")
