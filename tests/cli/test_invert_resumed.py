"""``ganinv invert RUN --data SPEC --out DIR`` run again once every shard is done: it says there was nothing left to
invert (it printed "at None images/s"), and still ends with "wrote DIR/shards"."""
from __future__ import annotations

from helpers import make_celeba, run_cli


def test_a_finished_collection_says_nothing_was_left(monkeypatch, capsys, tmp_path, aegan_run):
    spec = make_celeba(tmp_path / "celeba", n_train=5, n_valid=0, n_test=0)
    out = tmp_path / "latents"
    args = ("invert", aegan_run, "--data", spec, "--out", out, "--shard-size", "2", "--workers", "0", "--quiet")
    code, first, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "inverted 5 images (0 done before, 0 unreadable) at " in first and " images/s" in first
    code, again, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "nothing left to invert: all 5 images were done before (0 unreadable)" in again
    assert "None" not in again and again.strip().splitlines()[-1] == f"wrote {out / 'shards'}"
