"""One rule forbids downloads (``ganinv.core.offline``), and both places that may download read it."""
from __future__ import annotations

import pytest

from ganinv.core import offline
from ganinv.data import ffhq_align
from ganinv.metrics import image


@pytest.mark.parametrize(("value", "forbidden"), [("1", True), ("yes", True), ("0", False), ("off", False),
                                                  (" ", False), ("FALSE", False)])
@pytest.mark.parametrize("variable", offline.OFFLINE_VARIABLES)
def test_either_variable_forbids_downloads_unless_it_says_no(monkeypatch, variable, value, forbidden):
    for name in offline.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert offline.downloads_forbidden() is None
    monkeypatch.setenv(variable, value)
    assert offline.downloads_forbidden() == (f"{variable}={value.strip()}" if forbidden else None)


def test_lpips_and_the_landmark_model_share_the_rule():
    assert image.downloads_forbidden is offline.downloads_forbidden
    assert ffhq_align.downloads_forbidden is offline.downloads_forbidden
    assert not hasattr(ffhq_align, "OFFLINE_VARIABLES")  # no second copy of the variables to drift
