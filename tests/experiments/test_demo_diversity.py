"""The demo's report shows the generator's samples and its diversity beside the reconstruction table, and a visible
warning when the generator collapsed (whose reconstruction scores would otherwise read as a success)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from ganinv.experiments import demo
from ganinv.inference.model import InversionModel

WARNING = "<div class='warning'"


def run_tiny_demo(monkeypatch, tmp_path, aegan_run, generated=None):
    """run_demo on the tiny session run (the demo's own training is not what is tested), optionally with the
    generator's samples replaced; FD-domain's classifier trained a few steps into a private cache."""
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "FD_CLASSIFIER_STEPS", 5)
    monkeypatch.setattr(demo, "ensure_trained", lambda *args, **kwargs: None)
    monkeypatch.setattr(demo, "InversionModel", SimpleNamespace(load=lambda path: InversionModel.load(aegan_run)))
    if generated is not None:
        monkeypatch.setattr(demo, "generated_batch", lambda model, n, seed: generated(n))
    lines = []
    _, report = demo.run_demo(tmp_path / "demo", quick=True, show_progress=False, log=lines.append)
    return report.read_text(), json.loads((tmp_path / "demo" / "diversity.json").read_text()), lines


def test_a_forced_collapse_is_a_visible_warning_in_the_report_and_the_log(monkeypatch, tmp_path, aegan_run):
    blob = torch.zeros(1, 1, 16, 16)
    blob[..., 4:12, 6:10] = 1.0
    page, diversity, lines = run_tiny_demo(monkeypatch, tmp_path, aegan_run,
                                           generated=lambda n: blob.expand(n, -1, -1, -1).clone())
    assert diversity["collapsed"] and diversity["generated_distinct"] == 1 / 256
    assert WARNING in page and "Mode collapse" in page and "only 0% of its 256 samples are distinct" in page
    assert any(line.startswith("warning: the generator collapsed") for line in lines)
    assert "class='samples'" in page  # the samples are shown, so the reader sees the one picture


def test_the_report_shows_samples_and_diversity_beside_the_table(monkeypatch, tmp_path, aegan_run):
    real = lambda n: demo.open_dataset("mnist", image_size=16, channels=1, split="train").tensors(n)[0]  # noqa: E731
    page, diversity, lines = run_tiny_demo(monkeypatch, tmp_path, aegan_run, generated=real)
    assert not diversity["collapsed"] and diversity["generated_distinct"] > 0.5
    assert diversity["fd_name"] == "FD-domain" and diversity["fd_generated"] >= 0 and diversity["fd_real"] >= 0
    assert WARNING not in page and not any(line.startswith("warning") for line in lines)
    table_end = page.index("</table>")  # the reconstruction table, then the diversity table beside it
    assert page.index("<table class='diversity'>") > table_end and "distinct dHash" in page
    assert f"{diversity['generated_distinct']:.1%}" in page
    assert "<img class='samples' src='data:image/png;base64," in page
    assert "the first 64 of the 256 generated samples" in page
    assert page.count("data:image/png;base64,") == 3  # the samples and the two reconstruction figures
