"""Search indexes and latent directories from others: every damaged or crafted file is one GaninvError line (exit 2
through `ganinv search`), refused from its size and headers before anything big is allocated."""
import io
import json
import resource
import shutil
import struct
import time
import zipfile

import faiss
import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.apps import search as S
from ganinv.apps.collection import invert_collection, read_latents, search_latents
from ganinv.core.errors import GaninvError
from ganinv.inference.model import InversionModel
from helpers import run_cli

BIG = 1 << 40


@pytest.fixture(scope="module")
def built_index(aegan_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "ix"
    S.build_index(aegan_run, "digits", out, limit=20, methods=("latent", "dhash"), shard_size=8, show_progress=False)
    return out


@pytest.fixture(scope="module")
def latent_dir(aegan_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("latents") / "lat"
    invert_collection(InversionModel.load(aegan_run), aegan_run, "digits", out, split="test", shard_size=64,
                      show_progress=False)
    from ganinv.apps.collection import index_latents

    index_latents(out, ivf=False)
    return out


def npy_header(shape, dtype="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def edit_json(path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def huge_vector_faiss(path):
    """A flat index whose codes array declares 2^40 bytes: FAISS would allocate it before reading."""
    data = bytearray(path.read_bytes())
    flat = data.find(b"IxF2")  # the flat index (alone, or inside an IndexIDMap2)
    struct.pack_into("<Q", data, flat + 4 + 4 + 8 + 8 + 8 + 1 + 4, BIG)  # fourcc, d, ntotal, 2 dummies, trained,
    # metric, then the codes' length
    path.write_bytes(bytes(data))


def other_width_faiss(path):
    index = faiss.IndexFlatL2(3)
    index.add(np.zeros((20, 3), np.float32))
    faiss.write_index(index, str(path))


def compressed_shard(path):
    with np.load(path) as shard:
        np.savez_compressed(path, **dict(shard))


def lying_shard(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("latent.npy", npy_header((BIG, 8)) + bytes(64))


DAMAGE = {
    "manifest too big": (lambda r: (r / "manifest.json").write_bytes(b" " * (5 << 20)), "larger than"),
    "manifest a list": (lambda r: (r / "manifest.json").write_text("[]"), "not a ganinv index manifest"),
    "n a string": (lambda r: edit_json(r / "manifest.json", n="20"), "n must be a whole number"),
    "n huge": (lambda r: edit_json(r / "manifest.json", n=BIG, shards=BIG // 8), "n must be a whole number"),
    "shards inconsistent": (lambda r: edit_json(r / "manifest.json", shards=1), "shards is 1"),
    "unknown method": (lambda r: edit_json(r / "manifest.json", methods=["latent", "os.system"]), "methods must"),
    "label names": (lambda r: edit_json(r / "manifest.json", label_names=[1, 2]), "label_names must"),
    "ivf": (lambda r: edit_json(r / "manifest.json", ivf={"nlist": -1}), "ivf must hold"),
    "items wrong type": (lambda r: edit_json(r / "items.json", items="x"), "items.json is damaged"),
    "items short": (lambda r: edit_json(r / "items.json", items=["a"], rows=[0]), "items.json is damaged"),
    "rows out of range": (lambda r: edit_json(r / "items.json", rows=[99] * 20), "items.json is damaged"),
    "failures": (lambda r: (r / "failures.json").write_text('[{"item": 1}]'), "failures.json is damaged"),
    "labels huge shape": (lambda r: (r / "labels.npy").write_bytes(npy_header((BIG, 1)) + bytes(64)),
                          "header claims shape"),
    "labels objects": (lambda r: (r / "labels.npy").write_bytes(npy_header((20, 1), "|O") + bytes(160)),
                       "Python objects"),
    "labels wrong shape": (lambda r: np.save(r / "labels.npy", np.zeros((3, 1), np.float32)), "the index has 20"),
    "faiss junk": (lambda r: (r / "latent.faiss").write_bytes(b"IxF2" + bytes(40)), "truncated or corrupt"),
    "faiss truncated": (lambda r: (r / "latent.faiss").write_bytes((r / "latent.faiss").read_bytes()[:60]),
                        "truncated or corrupt"),
    "faiss huge vector": (lambda r: huge_vector_faiss(r / "latent.faiss"), "truncated or corrupt"),
    "faiss too big": (lambda r: (r / "dhash.faiss").write_bytes(bytes(70 << 20)), "more than the"),
    "faiss other width": (lambda r: other_width_faiss(r / "latent.faiss"), "entries of width 3"),
    "shard compressed": (lambda r: compressed_shard(S.shard_path(r, 0)), "compressed members"),
    "shard lies": (lambda r: lying_shard(S.shard_path(r, 0)), "header claims shape"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_hostile_index_files_are_one_line(built_index, tmp_path, case):
    root = tmp_path / "copy"
    shutil.copytree(built_index, root)
    assert len(S.SearchIndex.load(root)) == 20
    damage, needle = DAMAGE[case]
    damage(root)
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(GaninvError) as info:
        S.SearchIndex.load(root)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert time.perf_counter() - started < 10
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 256  # MiB


def test_search_exits_2_on_a_hostile_index(built_index, tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    shutil.copytree(built_index, root)
    huge_vector_faiss(root / "latent.faiss")
    query = tmp_path / "q.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(query)
    code, _, err = run_cli(monkeypatch, capsys, "search", root, query, "--out", tmp_path / "s.png")
    assert code == 2 and "Traceback" not in err and "latent.faiss is truncated or corrupt" in err
    assert len(err.strip().splitlines()) == 1


def test_hostile_latent_directories_are_one_line(latent_dir, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(latent_dir, root)
    latents, _ = read_latents(root)
    queries = torch.zeros(1, latents.shape[1]).numpy()
    assert search_latents(root, queries, k=2)[0].shape == (1, 2)
    cases = [
        (lambda: (root / "shards" / "00000.npy").write_bytes(npy_header((BIG, 8)) + bytes(64)),
         read_latents, "header claims shape"),
        (lambda: np.save(root / "shards" / "00000.npy", np.zeros((64, 3), np.float32)), read_latents,
         "the manifest says 64×8"),
        (lambda: (root / "shards" / "00000.json").write_text('{"items": 5}'), read_latents, "is damaged"),
        (lambda: edit_json(root / "manifest.json", latent_dim="8"), read_latents, "latent_dim must be"),
        (lambda: huge_vector_faiss(root / "latents.faiss"), lambda r: search_latents(r, queries),
         "truncated or corrupt"),
    ]
    for damage, read, needle in cases:
        shutil.rmtree(root)
        shutil.copytree(latent_dir, root)
        damage()
        with pytest.raises(GaninvError) as info:
            read(root)
        assert needle in str(info.value) and "\n" not in str(info.value)
