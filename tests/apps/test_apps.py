"""Applications of latents (issue 7): search index, super-resolution, clustering, editing — library and CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.apps import cluster as C
from ganinv.apps import edit as E
from ganinv.apps import search as S
from ganinv.apps import superres as SR
from ganinv.core.viz import FONT_SIZE
from ganinv.inference.model import InversionModel
from helpers import assert_clean_error, run_cli


def save_png(path, tensor):
    arr = (tensor.clamp(0, 1) * 255).round().byte()
    arr = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="module")
def model(aegan_run):
    return InversionModel.load(aegan_run)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, model):
    """40 distinct 16×16 grey PNGs drawn from the run's own generator."""
    root = tmp_path_factory.mktemp("images")
    images = model.generate(model.sample(40, generator=torch.Generator().manual_seed(1)))
    for i, image in enumerate(images):
        save_png(root / f"{i:03d}.png", image)
    return root


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, aegan_run, folder):
    out = tmp_path_factory.mktemp("idx") / "index"
    S.build_index(aegan_run, f"folder:{folder}", out, split="all", shard_size=16, batch_size=8, show_progress=False)
    return out


# ------------------------------------------------------------------------------------------------ search
def test_index_round_trips_and_each_image_finds_itself_first(built_index, folder, model):
    index = S.SearchIndex.load(built_index)
    assert len(index) == 40 and index.manifest["shards"] == 3 and index.methods == S.METHODS
    files = sorted(folder.glob("*.png"))
    images = torch.stack([index.images([i])[0] for i in range(40)])
    for method in S.METHODS:
        features = S.embed(method, images, model)
        # the same features in a fresh in-memory index give the same neighbours as the saved → loaded one
        import faiss
        fresh = faiss.IndexBinaryFlat(64) if method in S.BINARY_METHODS else faiss.IndexFlatL2(features.shape[1])
        fresh.add(S.SearchIndex.load(built_index).vectors(method))
        _, fresh_ids = fresh.search(features, 5)
        result = index.search(features, 5, method)
        assert (result.ids[:, 0] == fresh_ids[:, 0]).all(), method
        assert (result.ids[:, 0] == np.arange(40)).all(), method  # own entry first
        assert result.items[3][0] == str(files[3].resolve())
        assert (np.diff(result.distances, axis=1) >= -1e-6).all()


def test_index_resumes_skipping_finished_shards(built_index, aegan_run, folder, tmp_path):
    import shutil
    out = tmp_path / "index"
    shutil.copytree(built_index, out)
    before = S.SearchIndex.load(out).vectors("latent")
    first = S.shard_path(out, 0).stat().st_mtime_ns
    S.shard_path(out, 1).unlink()  # as if killed while shard 1 was being inverted
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(Exception, match="unfinished index"):
        S.SearchIndex.load(out)
    S.build_index(aegan_run, f"folder:{folder}", out, split="all", shard_size=16, batch_size=8, show_progress=False)
    assert S.shard_path(out, 0).stat().st_mtime_ns == first
    np.testing.assert_allclose(S.SearchIndex.load(out).vectors("latent"), before, atol=1e-5)


def test_ivf_recall_at_10_against_flat_on_20k_random_vectors():
    import faiss
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 16)).astype(np.float32)
    q = rng.standard_normal((200, 16)).astype(np.float32)
    flat = faiss.IndexFlatL2(16)
    flat.add(x)
    _, truth = flat.search(q, 10)
    params = S.ivf_params(len(x), 16)
    ivf = S.train_ivf(x, params)
    ivf.add(x)
    S.set_search_params(ivf, params)
    _, found = ivf.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.9, recall


def test_label_similarity_and_rank_of_original():
    q = np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float32)
    results = np.array([[[1, 0, 1], [0, 0, 1]], [[0, 0, 0], [1, 1, 1]]], dtype=np.float32)
    assert S.label_similarity(q, results) == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    base = np.array([[0.0], [10.0]], dtype=np.float32)
    originals = np.array([[5.0], [20.0]], dtype=np.float32)
    ranks = S.rank_of_original("latent", np.array([[5.5], [1.0]], dtype=np.float32), originals, base)
    assert ranks.tolist() == [1.0, 4.0]  # query 2: base 0, query 1's original and base 10 beat its own at 20


# ------------------------------------------------------------------------------------------------ superres
@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (1, 3, 24, 20), (3, 1, 9, 31), (1, 3, 64, 64)])
@pytest.mark.parametrize("degradation", [dict(sigma=1.5), dict(factor=2), dict(factor=4), {}])
def test_super_resolution_keeps_the_clean_shape(model, shape, degradation):
    clean = torch.rand(shape)
    if degradation.get("factor", 1) > min(shape[-2:]):
        pytest.skip("factor too large for this size")
    rows = SR.compare(clean, model=model, **degradation)
    for name, image in rows.items():
        assert image.shape == clean.shape, name
        assert 0 <= image.min() and image.max() <= 1
    low = SR.degrade_image(clean, **degradation)
    assert SR.super_resolve(model, low, clean.shape[-2:], clean.shape[1]).shape == clean.shape


def test_eval_superres_rows(model):
    rows = SR.evaluate_superres(model, real=torch.rand(4, 1, 16, 16), n=4, sigmas=(1.0,), factors=(2,))
    methods = {(r["images"], r["degradation"], r["method"]) for r in rows}
    assert ("real", "down ×2 (8px)", "bicubic") in methods and ("generated", "blur σ=1", "inverted") in methods
    assert all(np.isfinite(r["ssim"]) for r in rows)


# ------------------------------------------------------------------------------------------------ cluster
def test_ward_on_two_separated_blobs_gives_two_clusters():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(-5, 0.3, (30, 8)), rng.normal(5, 0.3, (20, 8))]).astype(np.float32)
    result = C.ward(blobs, 2)
    assert set(result.assignments[:30]) == {0} and set(result.assignments[30:]) == {1}  # 0 = the larger cluster
    assert result.silhouette > 0.9
    labels = np.array([[0]] * 30 + [[1]] * 20, dtype=np.float32)
    assert C.purity(result.assignments, labels, ["blob"])["blob"] == {"purity": 1.0, "chance": 0.6}
    a, b, _ = result.pairs[0]
    d = np.linalg.norm(blobs[:, None] - blobs[None], axis=-1) + np.eye(len(blobs)) * 1e9
    assert d[a, b] == pytest.approx(d.min())  # the first Ward merge is the closest pair


# ------------------------------------------------------------------------------------------------ edit
def test_traversal_and_attribute_direction(model):
    with pytest.raises(Exception, match="latent scale"):
        E.top_elements(model, 2)
    z = model.sample(1, generator=torch.Generator().manual_seed(0))
    out = E.traverse(model, z, np.array([0, 3]), steps=5)
    assert out.shape == (10, 1, 16, 16)
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((200, 8)).astype(np.float32)
    direction, spread, accuracy = E.attribute_direction(latents, latents[:, 2] > 0)
    assert np.argmax(np.abs(direction)) == 2 and accuracy > 0.95 and spread > 0
    edited = E.edit_attribute(model, z, direction, spread, np.linspace(-2, 2, 3))
    assert edited.shape == (3, 1, 16, 16)


# ------------------------------------------------------------------------------------------------ the CLI
def test_cli_search_prints_json_and_writes_grid(monkeypatch, capsys, built_index, folder, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "search", built_index, folder / "005.png", folder / "007.png",
                             "-k", "3", "--json", "--out", tmp_path / "grid.png")
    assert code == 0, err
    payload = json.loads(out)
    assert [q["results"][0]["item"] for q in payload["queries"]] == [str((folder / f).resolve())
                                                                     for f in ("005.png", "007.png")]
    assert Image.open(tmp_path / "grid.png").size[0] > 16 * 4
    code, out, err = run_cli(monkeypatch, capsys, "search", built_index, folder / "005.png", "--method", "phash",
                             "-k", "2", "--out", tmp_path / "grid2.png")
    assert code == 0 and "005.png" in out


def test_cli_query_of_another_size_and_channels_is_converted_and_said(monkeypatch, capsys, built_index, tmp_path):
    query = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(0).random((24, 20, 3)) * 255).astype(np.uint8)).save(query)
    code, out, err = run_cli(monkeypatch, capsys, "search", built_index, query, "-k", "2", "--out", tmp_path / "g.png")
    assert code == 0, err
    assert "20×24" in err and "16×16" in err and "3 → 1 channel" in err


def test_cli_bad_inputs_are_one_line_errors(monkeypatch, capsys, built_index, folder, generator_run, aegan_run,
                                            tmp_path):
    query = folder / "000.png"
    code, _, err = run_cli(monkeypatch, capsys, "search", built_index, query, "-k", "41")
    assert_clean_error(code, err, "k=41 is larger than the index (40 entries)")
    code, _, err = run_cli(monkeypatch, capsys, "search", built_index, query, "--run", generator_run)
    assert_clean_error(code, err, "was built by another run")
    code, _, err = run_cli(monkeypatch, capsys, "search", tmp_path, query)
    assert_clean_error(code, err, "not a search index")
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--attribute", "Smiling", "--data", "digits",
                           "--train-n", "40", "--out", tmp_path / "e.png")
    assert_clean_error(code, err, "unknown attribute 'Smiling'", "digit=0", "digit=9")
    code, _, err = run_cli(monkeypatch, capsys, "edit", aegan_run, "--traverse", "3", "--out", tmp_path / "t.png")
    assert_clean_error(code, err, "latent scale", "'aegan'")
    code, _, err = run_cli(monkeypatch, capsys, "cluster", aegan_run, "--data", f"folder:{folder}", "--k", "50",
                           "--split", "all", "--out", tmp_path / "c")
    assert_clean_error(code, err, "larger than the number of images")
    code, _, err = run_cli(monkeypatch, capsys, "index", aegan_run, "--data", "digits", "--out", built_index)
    assert_clean_error(code, err, "already holds an index of other inputs")


def test_cli_eval_search_on_digits(monkeypatch, capsys, aegan_run, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "eval-search", aegan_run, "--data", "digits", "--limit", "120",
                             "--queries", "8", "-k", "5", "--index", tmp_path / "ix", "--json", "--quiet")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["label_similarity"]) == {"latent", "dhash", "phash", "colour", "random"}
    assert all(0 <= v <= 1 for v in result["label_similarity"].values())
    for per_kind in result["robustness"].values():
        assert set(per_kind) == {"colour", "occlude", "blur"}
        assert all(r["recall@1"] <= r["recall@10"] for r in per_kind.values())
    code, out, err = run_cli(monkeypatch, capsys, "eval-search", aegan_run, "--data", "digits", "--queries", "8",
                             "-k", "5", "--index", tmp_path / "ix")  # reuses the finished index, prints tables
    assert code == 0 and "label similarity" in out and "recall@1" in out


def test_cli_superres_cluster_edit(monkeypatch, capsys, aegan_run, folder, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "superres", aegan_run, folder / "001.png", "--factor", "4",
                             "--out", tmp_path / "sr.png")
    assert code == 0, err
    height = Image.open(tmp_path / "sr.png").size[1]  # clean, degraded, bicubic, inverted rows of 16 px tiles,
    line = FONT_SIZE + 6  # upscaled ×4 for reading, plus a title line, the file name over the column and PSNR / SSIM
    assert 4 * 64 + 6 * line < height < 5 * 64 + 6 * line  # (two lines) under the degraded, bicubic and inverted
    small = save_png(tmp_path / "small.png", torch.rand(1, 8, 8))
    code, out, err = run_cli(monkeypatch, capsys, "superres", aegan_run, small, "--out", tmp_path / "sr2.png")
    assert code == 0 and "8×8" in err
    code, out, err = run_cli(monkeypatch, capsys, "eval-superres", aegan_run, "--data", f"folder:{folder}", "--n", "4",
                             "--sigmas", "1", "--factors", "2")
    assert code == 0 and "bicubic" in out, err
    code, out, err = run_cli(monkeypatch, capsys, "cluster", aegan_run, "--data", "digits", "--k", "3", "--n", "60",
                             "--out", tmp_path / "c", "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(out)
    assert sum(summary["sizes"]) == 60 and 0 <= summary["purity"]["digit"]["purity"] <= 1
    assert sorted(p.name for p in (tmp_path / "c").glob("*.png"))[:3] == ["closest-pairs.png", "cluster-00.png",
                                                                        "cluster-01.png"]
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, folder / "001.png", folder / "002.png",
                             "--interpolate", "--steps", "5", "--out", tmp_path / "i.png")
    assert code == 0, err
    width, height = Image.open(tmp_path / "i.png").size  # one labelled row of 5 tiles and the two originals at its
    assert 7 * 66 < width < 7 * 66 + 200 and 64 < height < 2 * 64  # ends, upscaled ×4 (16 → 64 px)
    code, out, err = run_cli(monkeypatch, capsys, "edit", aegan_run, folder / "001.png", "--attribute", "digit=3",
                             "--data", "digits", "--train-n", "100", "--strength", "-2..2", "--steps", "3",
                             "--out", tmp_path / "a.png")
    assert code == 0 and "training accuracy" in out, err
