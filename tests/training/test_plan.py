"""Validate once, build once (issue 24): a run is planned — config, options and the frozen generator checked,
building no net of the method and writing nothing — and then trained by building the method exactly once. The walk
of ``-o space=wplus`` from the command line to the generator is in docs/design.md."""
import json
from collections import Counter

import pytest

from ganinv.core.errors import GaninvError
from ganinv.methods.base import Method
from ganinv.training.launch import plan_run, train_plan, train_run
from helpers import TINY_NET, TINY_TRAIN, assert_clean_error, make_generator_run, run_cli


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    """A tiny dlsgan run: a style generator (mapping network, W and W+) for post-hoc methods to sit on."""
    out = tmp_path_factory.mktemp("runs") / "dlsgan"
    train_run("dlsgan", out, data="digits", show_progress=False, net_overrides={**TINY_NET, "prior": "normal"},
              train_overrides={**TINY_TRAIN, "steps": 1})
    return out


@pytest.fixture()
def built(monkeypatch):
    """Every method construction from here on, counted by method name (Method.__init__ is where every method —
    the frozen generator's run when it is loaded, too — is built)."""
    counts = Counter()
    original = Method.__init__

    def counting(self, *args, **kwargs):
        counts[self.name] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(Method, "__init__", counting)
    return counts


def test_train_builds_the_method_once_and_the_plan_builds_it_never(monkeypatch, capsys, tmp_path, style_run, built):
    args = ["train", "aegan", "--generator", style_run, "-o", "space=wplus", "--steps", "1", "--out", tmp_path / "e"]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--dry-run")
    assert code == 0, err
    config = json.loads(out)
    assert config["options"]["space"] == "wplus" and config["generator"]["kind"] == "style"
    assert built == {"dlsgan": 1}  # the generator run, loaded once; no aegan, no throwaway method
    assert not (tmp_path / "e").exists()

    built.clear()
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert built["aegan"] == 1 and built["dlsgan"] == 1, built


def test_the_plan_refuses_a_space_the_generator_lacks_without_building_nets(tmp_path, built):
    make_generator_run(tmp_path / "g")  # a DCGAN: z only
    built.clear()
    with pytest.raises(GaninvError, match="space=w needs a style generator.*kind 'dcgan'"):
        plan_run("aegan", tmp_path / "e", generator=tmp_path / "g", options={"space": "w"})
    assert built == {"gan": 1} and not (tmp_path / "e").exists()


def test_a_plan_is_trained_as_planned(tmp_path, style_run, built):
    plan = plan_run("regression", tmp_path / "r", generator=style_run, options={"space": "w"},
                    train_overrides={**TINY_TRAIN, "steps": 2})
    assert plan.config.options["space"] == "w" and plan.generator is not None and not plan.resume
    assert built["regression"] == 0
    result = train_plan(plan, show_progress=False)
    assert result.step == 2 and built["regression"] == 1 and built["dlsgan"] == 1

    again = plan_run("regression", tmp_path / "r", resume=True)  # finished: said so, nothing loaded or built
    assert again.done_step == 2 and train_plan(again).already_finished and built["regression"] == 1


def test_a_bad_name_is_refused_when_the_command_line_is_parsed(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", "gan", "--data", "digits", "--out", tmp_path / "r",
                           "--prior", "cauchy")
    assert_clean_error(code, err, "--prior must be one of uniform, normal, uniform_sqrt3, spherical", "'cauchy'")
    code, _, err = run_cli(monkeypatch, capsys, "invert", tmp_path / "nowhere", tmp_path / "a.png", "--out",
                           tmp_path / "o", "--space", "wminus")
    assert_clean_error(code, err, "--space wminus: the space must be one of z, w, wplus")
    assert not any(tmp_path.iterdir())
