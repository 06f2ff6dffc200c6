"""One run, one PSNR: the demo scores the same generated and real images as `ganinv eval` (EVAL_IMAGES of each)."""
from types import SimpleNamespace

import pytest

from ganinv.experiments import demo
from ganinv.inference.evaluate import EVAL_IMAGES, evaluate_run
from ganinv.inference.model import InversionModel


def test_demo_and_eval_report_the_same_numbers_for_one_run(monkeypatch, tmp_path, aegan_run):
    # the demo's own training is not what is tested: both of its inverters are this one tiny run
    monkeypatch.setattr(demo, "ensure_trained", lambda *args, **kwargs: None)
    monkeypatch.setenv("GANINV_CACHE", str(tmp_path / "cache"))  # the report's FD-domain: a quick private classifier
    monkeypatch.setattr(demo, "FD_CLASSIFIER_STEPS", 5)
    monkeypatch.setattr(demo, "InversionModel", SimpleNamespace(load=lambda path: InversionModel.load(aegan_run)))
    results, _ = demo.run_demo(tmp_path / "demo", quick=True, show_progress=False, log=lambda m: None)
    evaluated = evaluate_run(aegan_run, data=demo.DATA)
    for split in ("generated", "real"):
        assert results["aegan"][split]["n"] == evaluated[split]["n"] == EVAL_IMAGES
        assert results["aegan"][split]["psnr"] == pytest.approx(evaluated[split]["psnr"], abs=1e-4)
