"""The page's API names every endpoint and every value (no gradio ``value_N``, no internal layout endpoint), and its
attribute edit shares ``ganinv edit``'s count and saved directions, with a common attribute chosen first."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from webtools import INDEX_SIZE, small_index

import ganinv.apps.edit as edit
from ganinv.apps.edit import DIRECTION_TRAIN_N, learned_direction
from ganinv.inference.model import InversionModel
from ganinv.web.handlers import AttributeDirections, EditHandlers

ENDPOINTS = {"/rec_from_upload", "/rec_from_sample", "/rec_again", "/search_from_upload", "/search_from_entry",
             "/sr_from_upload", "/sr_from_sample", "/sr_again", "/do_interpolate", "/do_attribute", "/do_random"}


@pytest.fixture(scope="module")
def run_and_index(aegan_run, tmp_path_factory):
    """A copy of the tiny AEGAN run (the directions it saves stay here) and a small digits index built from it."""
    run = shutil.copytree(aegan_run, tmp_path_factory.mktemp("api") / "run")
    return run, small_index(run, tmp_path_factory.mktemp("index"))


def test_the_api_lists_named_endpoints_with_named_values(run_and_index):
    pytest.importorskip("gradio")
    from ganinv.web import build_app

    run, index = run_and_index
    blocks = build_app(InversionModel.load(run), index)
    info = blocks.get_api_info()
    assert set(info["named_endpoints"]) == ENDPOINTS and not info["unnamed_endpoints"]  # no /show_slider
    for name, endpoint in info["named_endpoints"].items():
        labels = [value["label"] for value in endpoint["parameters"] + endpoint["returns"]]
        assert all(label and not label.startswith(("value_", "parameter_")) for label in labels), (name, labels)
        assert endpoint["returns"][-1]["label"] == "status", name
    hidden = [fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "show_slider"]
    assert len(hidden) == 1 and hidden[0].api_visibility == "private"


def test_the_attribute_menu_starts_on_a_common_visible_attribute(run_and_index):
    directions = AttributeDirections(InversionModel.load(run_and_index[0]), None)
    directions.columns = dict.fromkeys(["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling", "Young"])
    assert directions.default == "Smiling"
    directions.columns = dict.fromkeys(["digit=0", "digit=1"])
    assert directions.default == "digit=0"
    assert AttributeDirections(InversionModel.load(run_and_index[0]), None).default is None


def test_the_page_and_the_cli_share_one_count_and_one_saved_direction(run_and_index, monkeypatch):
    """The page learns on the index's first DIRECTION_TRAIN_N latents (here all 48), saves the direction beside the
    run, and ``ganinv edit`` asking the same attribute of as many images of the same data reuses it, inverting
    nothing; so does a page started again."""
    run, index = run_and_index
    model = InversionModel.load(run)
    page = AttributeDirections(model, index)
    assert len(page.latents) == min(INDEX_SIZE, DIRECTION_TRAIN_N)
    direction, spread = page.get("digit=3")
    _, notes = EditHandlers(model, page).do_attribute(None, "digit=3", 1.0, 3)
    assert f"direction from {INDEX_SIZE} labelled latents" in notes
    monkeypatch.setattr(edit, "labelled_latents", lambda *a, **k: pytest.fail("inverted the labelled images"))
    cli, reused = learned_direction(model, "digit=3", "digits", train_n=INDEX_SIZE)
    assert reused and np.array_equal(cli.direction, direction) and cli.spread == spread
    monkeypatch.setattr("ganinv.web.handlers.attribute_direction", lambda *a, **k: pytest.fail("learned again"))
    assert np.array_equal(AttributeDirections(model, index).get("digit=3")[0], direction)
