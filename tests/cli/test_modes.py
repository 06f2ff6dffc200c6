"""``ganinv invert``'s three modes — IMAGES, --data SPEC, IMAGES --tune N — each take their own flags, declared in
cli/train.py (INVERT_MODES); a flag given in another mode is refused when the command line is parsed, in one line,
before the run or any library is loaded."""
import sys

import pytest

from ganinv.cli.train import INVERT_MODES
from helpers import assert_clean_error, run_cli

REFUSED = [  # (the mode's arguments, a flag of another mode, what the line says)
    (["{img}"], ["--split", "train"], "--split works on --data SPEC, not with IMAGES"),
    (["{img}"], ["--json"], "--json works on --data SPEC, not with IMAGES"),
    (["--data", "digits"], ["--space", "w"], "--space is for IMAGES"),
    (["--data", "digits"], ["--align"], "--align works on IMAGES / --tune N, not with --data SPEC"),
    (["--data", "digits"], ["--landmarks", "{img}"], "--landmarks works on IMAGES / --tune N, not with --data SPEC"),
    (["--data", "digits"], ["--tune", "3"], "--tune works on IMAGES"),
    (["{img}", "--tune", "3"], ["--refine-loss", "bce"], "--refine-loss works on IMAGES / --data SPEC, not with "
                                                         "--tune N"),
    (["{img}", "--tune", "3"], ["--space", "w"], "--space is for IMAGES"),
    (["{img}", "--data", "digits"], [], "give either IMAGES (files or folders) or --data SPEC"),
    ([], [], "give either IMAGES (files or folders) or --data SPEC"),
]


@pytest.mark.parametrize("mode, flag, says", REFUSED)
def test_a_flag_of_another_mode_is_refused_at_parse_time(monkeypatch, capsys, tmp_path, mode, flag, says):
    for deferred in ("ganinv.apps.invert", "ganinv.apps.tune", "ganinv.inference.model"):
        monkeypatch.setitem(sys.modules, deferred, None)  # importing one now fails: the refusal has to come first
    args = [a.format(img=tmp_path / "a.png") for a in mode + flag]
    code, _, err = run_cli(monkeypatch, capsys, "invert", tmp_path / "run", *args, "--out", tmp_path / "o")
    assert_clean_error(code, err, says)
    assert not (tmp_path / "o").exists()


def test_every_mode_specific_flag_is_a_parameter_of_invert():
    from ganinv.cli.train import invert
    import inspect

    parameters = set(inspect.signature(invert).parameters)
    assert set(INVERT_MODES.flags) <= parameters and set(INVERT_MODES.labels) == {"files", "data", "tune"}
