"""An IVF index fitted to its collection: FAISS gets enough training points and prints no warning."""
import json

import numpy as np

from ganinv.apps.collection import FORMAT, index_latents, latent_shard, search_latents
from ganinv.apps.faiss_index import POINTS_PER_CENTROID, ivf_params


def write_latents(out, latents, shard_size=4096):
    """A complete latent directory as `ganinv invert --data` leaves it, without a run."""
    (out / "shards").mkdir(parents=True)
    shards = -(-len(latents) // shard_size)
    for i in range(shards):
        np.save(latent_shard(out, i), latents[i * shard_size:(i + 1) * shard_size])
        names = [f"{k}.png" for k in range(i * shard_size, min(len(latents), (i + 1) * shard_size))]
        (out / "shards" / f"{i:05d}.json").write_text(json.dumps({"items": names}))
    manifest = {"format": FORMAT, "complete": True, "n": len(latents), "latent_dim": latents.shape[1],
                "shards": shards, "shard_size": shard_size}
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_ivf_on_5000_latents_trains_without_faiss_warnings(tmp_path, capfd):
    latents = np.random.default_rng(0).normal(size=(5000, 100)).astype(np.float32)
    write_latents(tmp_path / "lat", latents)
    capfd.readouterr()
    info = index_latents(tmp_path / "lat", ivf=True)
    captured = capfd.readouterr()  # FAISS warns from C++, straight to file descriptor 2
    assert "WARNING" not in captured.err + captured.out, captured.err[:500]
    assert info["kind"] == "ivfpq" and info["indexed"] == 5000
    _, names = search_latents(tmp_path / "lat", latents[:5], k=1, nprobe=info["params"]["nlist"])
    assert sum(row[0] == f"{i}.png" for i, row in enumerate(names)) >= 3  # still finds (most of) itself


def test_ivf_sizes_leave_every_centroid_its_training_points():
    for n in (78, 500, 5000, 9983, 9984, 10**6):
        p = ivf_params(n, 100)
        assert POINTS_PER_CENTROID * p["nlist"] <= n and POINTS_PER_CENTROID * 2 ** p["pq_bits"] <= max(n, 78)
        assert 1 <= p["pq_bits"] <= 8
    assert ivf_params(10**6, 100)["pq_bits"] == 8  # large collections keep 8-bit codes
