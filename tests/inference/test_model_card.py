"""The model card save_pretrained writes, read back with huggingface_hub's own parsers (ModelCard, metadata_load):
licence, datasets, metrics and model-index in the YAML, no path of this machine anywhere, training and limitations
sections, and usage code that runs against the saved folder (so it calls only what the model offers)."""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load

import ganinv
from ganinv.core.errors import GaninvError
from ganinv.inference.card import data_line, hub_repo_of, last_name, sort_numbers
from helpers import make_celeba, make_generator_run, tiny_train

HUB_SNAPSHOT = "hub/models--alice--celeba-gan/snapshots/0123456789abcdef"  # huggingface_hub's cache layout


@pytest.fixture(scope="module")
def celeba_encoder_run(tmp_path_factory):
    """A tiny AEGAN on CelebA (the test's own faces, by an absolute ``celeba:/…`` spec) whose frozen generator run
    sits where from_pretrained("alice/celeba-gan") would have downloaded it."""
    root = tmp_path_factory.mktemp("card")
    spec = make_celeba(root / "celeba")
    generator = root / HUB_SNAPSHOT
    make_generator_run(generator)
    config = json.loads((generator / "config.json").read_text())
    (generator / "config.json").write_text(json.dumps({**config, "data": spec}))  # a generator trained on CelebA
    tiny_train("aegan", root / "aegan", steps=3, generator=generator)
    return root / "aegan"


def saved_card(model, folder: Path, **card_options) -> tuple[str, ModelCard]:
    model.save_pretrained(folder, model_card_kwargs=card_options or None)
    text = (folder / "README.md").read_text(encoding="utf-8")
    return text, ModelCard.load(folder / "README.md")


def local_paths(text: str) -> list[str]:
    """Every word of the card that is an absolute or home path (a URL's "https://…" is none)."""
    words = re.split(r"[\s`'\"(),|=\[\]]+", text)
    return [w for w in words if re.match(r"(/.|~|[A-Za-z]:\\)", w)]


def assert_no_machine_paths(text: str, *roots: Path) -> None:
    assert local_paths(text) == []
    for root in (Path.home(), *roots):
        assert str(root) not in text


def usage_code(text: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, text
    return blocks[0]


def last_eval(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("kind") == "eval"][-1]


def test_encoder_run_card_parses_as_a_hub_card(celeba_encoder_run, tmp_path):
    text, card = saved_card(ganinv.load(celeba_encoder_run), tmp_path / "export", repo_id="bob/celeba-aegan")
    data = card.data
    assert data.license == "mit" and data.library_name == "ganinv"  # pyproject's licence, as a Hub licence id
    assert data.datasets == ["celeba"]  # the kind of `celeba:/tmp/…`, never its path
    assert data.pipeline_tag == "image-feature-extraction"
    assert data.base_model == "alice/celeba-gan"  # the frozen generator's Hub id, from where it was downloaded
    recorded = last_eval(celeba_encoder_run)
    quality = {k for k, v in recorded.items() if k not in ("step", "kind") and math.isfinite(v)
               and k.rpartition("/")[2] in ("psnr", "ssim", "dhash_similarity")}
    assert {"real/psnr", "generated/psnr"} <= quality
    assert {"psnr", "ssim", "dhash_similarity"} <= set(data.metrics)
    results = {r.metric_name: r for r in data.eval_results}
    assert set(results) == quality  # counts (real/n) and timings (…_ms_per_image) kept out of the model-index
    assert all(results[k].metric_value == pytest.approx(recorded[k], rel=1e-12) for k in quality)
    assert results["real/psnr"].dataset_type == "celeba" and results["real/psnr"].dataset_split == "test"
    assert data.model_name == "celeba-aegan"
    assert "model-index" in metadata_load(tmp_path / "export" / "README.md")
    assert "bob/celeba-aegan" in usage_code(text)
    assert_no_machine_paths(text, celeba_encoder_run.parent)


def test_card_sections_keep_counts_apart_and_name_training_and_limits(celeba_encoder_run, tmp_path):
    text, _ = saved_card(ganinv.load(celeba_encoder_run), tmp_path / "export")
    sections = dict(re.findall(r"^## (\w[\w ]*)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    assert {"Model details", "How to use", "Training", "Evaluation", "Limitations"} <= set(sections)
    assert "**steps**: 3 " in sections["Training"] and "batch 16" in sections["Training"]
    assert "16×16" in sections["Training"]
    evaluation = sections["Evaluation"]
    metrics_table, counts_table = evaluation.split("Images each was measured on:")
    assert "real/psnr" in metrics_table and "real/n" not in metrics_table
    assert "real/n" in counts_table
    assert "non-commercial" in sections["Limitations"]  # CelebA's licence
    assert "CelebA" in sections["Model details"]


def test_gan_run_card_offers_generation_only_and_its_code_runs(gan_run, tmp_path, monkeypatch):
    export = tmp_path / "export"
    text, card = saved_card(ganinv.load(gan_run), export)
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.license == "mit"
    code = usage_code(text)
    assert "invert" not in code and "reconstruct" not in code and "model(" not in code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(code.replace("PATH_OR_REPO_ID", "export"), namespace)  # noqa: S102 - the card's own code, on its folder
    assert tuple(namespace["images"].shape) == (16, 1, 16, 16)
    assert_no_machine_paths(text, gan_run.parent)


def test_encoder_card_code_runs_against_the_saved_folder(aegan_run, tmp_path, monkeypatch):
    text, card = saved_card(ganinv.load(aegan_run), tmp_path / "export")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(usage_code(text).replace("PATH_OR_REPO_ID", "export"), namespace)  # noqa: S102
    assert namespace["x_hat"].shape == namespace["images"].shape
    assert card.data.base_model is None  # a local generator run has no Hub id to link
    assert card.data.datasets is None  # scikit-learn's digits have no Hub id either: named in the body
    assert "scikit-learn's 8×8 handwritten digits" in text and "run `generator`" in text
    assert_no_machine_paths(text, aegan_run.parent)


def test_folder_data_and_path_options_are_named_without_their_place(aegan_run):
    model = ganinv.load(aegan_run)
    home = str(Path.home())
    model.method.config = model.config.replace(data=f"folder:{home}/photos/faces",
                                               options={**model.config.options, "start": "/srv/runs/aegan-start",
                                                        "backbone_weights": "C:\\Users\\me\\resnet18.pth",
                                                        "backbone_init": f"ImageNet weights from {home}/r18.pth"})
    card = model.generate_model_card()
    text = str(card)
    assert "a folder of images (`faces`)" in text
    assert "`start=aegan-start`" in text and "`backbone_weights=resnet18.pth`" in text
    assert "`backbone_init=ImageNet weights from r18.pth`" in text
    assert card.data.datasets is None
    assert_no_machine_paths(text)


def test_license_is_a_card_option_and_unknown_options_write_nothing(aegan_run, tmp_path):
    _, card = saved_card(ganinv.load(aegan_run), tmp_path / "export", license="cc-by-nc-4.0")
    assert card.data.license == "cc-by-nc-4.0"
    with pytest.raises(GaninvError, match="licence"):
        ganinv.load(aegan_run).save_pretrained(tmp_path / "bad", model_card_kwargs={"licence": "mit"})
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("path", "repo"), [
    ("/root/.cache/huggingface/hub/models--alice--celeba-gan/snapshots/0abc", "alice/celeba-gan"),
    ("C:\\Users\\me\\.cache\\huggingface\\hub\\models--bob--x\\snapshots\\1", "bob/x"),
    ("/runs/models--not-a-cache/gan", None),
    ("/home/me/runs/gan", None),
    (None, None),
])
def test_hub_repo_of_reads_huggingface_hubs_cache_layout(path, repo):
    assert hub_repo_of(path) == repo


def test_data_and_numbers_are_described_without_paths():
    assert data_line("celeba:/home/me/data/celeba") == "CelebA (aligned celebrity faces)"
    assert data_line("folder:~/pictures/cats/") == "a folder of images (`cats`)"
    assert data_line(None) == "the generator's own samples only"
    assert last_name("D:\\data\\faces") == "faces"
    metrics, counts, other = sort_numbers({"real/psnr": 9.0, "real/n": 179, "fid": 3.0, "kid_std": 0.1,
                                           "real/invert_ms_per_image": 0.2})
    assert metrics == {"real/psnr": 9.0, "fid": 3.0}
    assert counts == {"real/n": 179}
    assert other == {"kid_std": 0.1, "real/invert_ms_per_image": 0.2}


def test_copied_run_card_does_not_name_the_copy_source(aegan_run, tmp_path):
    """The folder a run was copied from never shows: save_pretrained of a save_pretrained folder keeps the card
    path-free (its metrics travel along)."""
    first = tmp_path / "first"
    ganinv.load(aegan_run).save_pretrained(first)
    shutil.copytree(first, tmp_path / "elsewhere")
    text, card = saved_card(ganinv.load(tmp_path / "elsewhere"), tmp_path / "second")
    assert card.data.eval_results and "real/psnr" in text
    assert_no_machine_paths(text, tmp_path)


def test_a_strangers_metrics_keys_cannot_break_the_card(aegan_run, tmp_path):
    folder = tmp_path / "theirs"
    ganinv.load(aegan_run).save_pretrained(folder)
    hostile = {"step": 99, "kind": "eval", "real/psnr": 5.0, "evil\n---\n| key": 1.0, "real/ssim": float("inf")}
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(hostile) + "\n")
    text, card = saved_card(ganinv.load(folder), tmp_path / "mine")
    assert {r.metric_name for r in card.data.eval_results} == {"real/psnr"}  # inf is no number the Hub shows
    assert "evil" not in text and "(step 99)" in text
