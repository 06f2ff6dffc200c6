"""core/safe_files.py and the weights readers built on it: every hostile or damaged file is one GaninvError line,
refused from its size and headers before anything big is allocated, and no code in a file ever runs."""
import hashlib
import io
import json
import os
import resource
import struct
import tarfile
import time
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganinv.core import safe_files
from ganinv.core.errors import GaninvError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script, for the TorchScript files
BIG = 1 << 40  # a declared size no test machine has: allocating it would fail or swap


class RunsCode:
    """Pickled as a call of os.system: what a hostile weights file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def one_line(info) -> str:
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def torchscript_file(path):
    class AddOne(torch.nn.Module):
        def forward(self, x):
            return x + 1

    torch.jit.save(torch.jit.script(AddOne()), str(path))
    return path


def recompressed(src, dst):
    """``src`` (a zip) again with every entry deflated: a zip bomb's shape."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as w:
        for info in z.infolist():
            w.writestr(info.filename, z.read(info.filename))
    return dst


def tar_file(path):
    with tarfile.open(path, "w") as tar:
        data = b"x" * 100
        info = tarfile.TarInfo("storages")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------------------------------------ torch files
def test_a_plain_state_dict_loads(tmp_path):
    torch.save({"w": torch.arange(6.0)}, tmp_path / "ok.pt")
    state = safe_files.torch_load_tensors(tmp_path / "ok.pt", "weights", max_bytes=1 << 20)
    assert torch.equal(state["w"], torch.arange(6.0))


@pytest.mark.parametrize("kind, needle", [
    ("code", "holds more than tensors"), ("torchscript", "TorchScript"), ("compressed", "compressed entries"),
    ("tar", "a tar archive"), ("junk", "not a torch file"), ("empty", "empty"), ("legacy", "pickle stream"),
    ("too big", "more than the"), ("missing", "does not exist"), ("folder", "not a regular file"),
])
def test_hostile_torch_files_are_one_line(tmp_path, kind, needle):
    marker, path = tmp_path / "pwned", tmp_path / "w.pt"
    make = {
        "code": lambda: torch.save({"w": RunsCode(marker)}, path),
        "torchscript": lambda: torchscript_file(path),
        "compressed": lambda: (torch.save({"w": torch.zeros(1000)}, tmp_path / "plain.pt"),
                               recompressed(tmp_path / "plain.pt", path)),
        "tar": lambda: tar_file(path),
        "junk": lambda: path.write_bytes(b"GIF89a" + bytes(100)),
        "empty": lambda: path.write_bytes(b""),
        "legacy": lambda: torch.save({"w": torch.zeros(3)}, path, _use_new_zipfile_serialization=False),
        "too big": lambda: torch.save({"w": torch.zeros(1 << 16)}, path),
        "missing": lambda: None,
        "folder": lambda: path.mkdir(),
    }
    make[kind]()
    with pytest.raises(GaninvError) as info:
        safe_files.torch_load_tensors(path, "test weights", max_bytes=64 << 10)
    assert needle in one_line(info) and "test weights" in str(info.value)
    assert not marker.exists()


def test_legacy_streams_only_where_asked(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    state = safe_files.torch_load_tensors(tmp_path / "old.pt", "weights", max_bytes=1 << 20, legacy=True)
    assert torch.equal(state["w"], torch.ones(3))
    marker = tmp_path / "pwned"
    torch.save({"w": RunsCode(marker)}, tmp_path / "evil.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(GaninvError, match="holds more than tensors"):
        safe_files.torch_load_tensors(tmp_path / "evil.pt", "weights", max_bytes=1 << 20, legacy=True)
    assert not marker.exists()


def test_overlapping_zip_entries_are_refused(tmp_path):
    """Entries whose sizes add up to more than the file: the same bytes named many times (a stored zip bomb)."""
    torch.save({"w": torch.zeros(4096)}, tmp_path / "ok.pt")
    data = bytearray((tmp_path / "ok.pt").read_bytes())
    end = data.rfind(b"PK\x05\x06")  # end of central directory: point a copy of every entry at the same bytes
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, end + 10)
    directory = bytes(data[cd_offset:cd_offset + cd_size])
    # seven renamed copies of the central directory: distinct members over the same stored bytes
    copies = b"".join(directory.replace(b"archive/", f"archiv{i}/".encode()) for i in range(1, 8))
    tail = bytearray(data[end:])
    struct.pack_into("<HHII", tail, 8, count * 8, count * 8, cd_size * 8, cd_offset)
    (tmp_path / "overlap.pt").write_bytes(bytes(data[:cd_offset]) + directory + copies + bytes(tail))
    with pytest.raises(GaninvError, match="add up to more bytes than the file holds"):
        safe_files.torch_load_tensors(tmp_path / "overlap.pt", "weights", max_bytes=1 << 20)


def test_a_storage_larger_than_its_record_is_refused_quickly(tmp_path):
    """torch checks each storage record's size against the size its pickle declares: a crafted pickle claiming
    2^40 elements over a 4 KiB record is one line, without the allocation."""
    torch.save({"w": torch.zeros(1024)}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    pkl = next(n for n in members if n.endswith("data.pkl"))
    members[pkl] = members[pkl].replace(struct.pack("<H", 1024), struct.pack("<H", 65535))  # numel 1024 -> 65535
    with zipfile.ZipFile(tmp_path / "lie.pt", "w", zipfile.ZIP_STORED) as w:
        for name, data in members.items():
            w.writestr(name, data)
    before, started = peak_rss_mib(), time.perf_counter()
    with pytest.raises(GaninvError) as info:
        safe_files.torch_load_tensors(tmp_path / "lie.pt", "weights", max_bytes=1 << 20)
    assert "truncated or corrupt" in one_line(info)
    assert time.perf_counter() - started < 10 and peak_rss_mib() - before < 256


# ------------------------------------------------------------------------------------------------ safetensors
def test_safetensors_round_trip_and_garbage(tmp_path):
    save_file({"a": torch.ones(2, 3)}, tmp_path / "ok.safetensors", metadata={"format": "x"})
    tensors, metadata = safe_files.read_safetensors(tmp_path / "ok.safetensors", "w", max_bytes=1 << 20)
    assert torch.equal(tensors["a"], torch.ones(2, 3)) and metadata == {"format": "x"}
    cases = {
        "junk": b"not safetensors at all, just text",
        "huge header": struct.pack("<Q", BIG) + b"{}",
        "header past the end": struct.pack("<Q", 100) + b"{}",
        "not JSON": struct.pack("<Q", 4) + b"\xff\xfe{]",
        "a list": struct.pack("<Q", 2) + b"[]",
        "offsets past the end": struct.pack("<Q", 64) + json.dumps(
            {"a": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]}}).encode().ljust(64),
        "short": b"\x01",
    }
    for name, data in cases.items():
        (tmp_path / "bad.safetensors").write_bytes(data)
        with pytest.raises(GaninvError) as info:
            safe_files.read_safetensors(tmp_path / "bad.safetensors", "test weights", max_bytes=1 << 20)
        assert "test weights" in one_line(info), name
    with pytest.raises(GaninvError, match="more than the"):
        safe_files.read_safetensors(tmp_path / "ok.safetensors", "w", max_bytes=16)


# ------------------------------------------------------------------------------------------------ numpy
def npy_with_header(shape, dtype="<f4", payload=b"") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + payload


def test_npy_headers_are_checked_before_loading(tmp_path):
    np.save(tmp_path / "ok.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert safe_files.load_npy(tmp_path / "ok.npy", "x", max_bytes=1 << 20, ndim=2).shape == (2, 3)
    cases = {
        "a huge shape": (npy_with_header((1 << 40, 64), payload=bytes(64)), "header claims shape"),
        "objects": (npy_with_header((2,), dtype="|O", payload=bytes(16)), "Python objects"),
        "junk": (b"\x93NUMPX" + bytes(20), "not a numpy array file"),
        "truncated": (npy_with_header((4, 4), payload=bytes(10)), "header claims shape"),
    }
    for name, (data, needle) in cases.items():
        (tmp_path / "bad.npy").write_bytes(data)
        before, started = peak_rss_mib(), time.perf_counter()
        with pytest.raises(GaninvError) as info:
            safe_files.load_npy(tmp_path / "bad.npy", "labels", max_bytes=1 << 20)
        assert needle in one_line(info), name
        assert time.perf_counter() - started < 5 and peak_rss_mib() - before < 64
    with pytest.raises(GaninvError, match="expected 1 dimensions"):
        safe_files.load_npy(tmp_path / "ok.npy", "x", max_bytes=1 << 20, ndim=1)


def test_npz_members_are_stored_and_checked(tmp_path):
    np.savez(tmp_path / "ok.npz", a=np.ones((3, 2), np.float32), b=np.arange(3))
    layout = safe_files.npz_layout(tmp_path / "ok.npz", "shard", max_bytes=1 << 20)
    assert layout["a"][0] == (3, 2) and layout["b"][0] == (3,)
    assert set(safe_files.load_npz(tmp_path / "ok.npz", "shard", max_bytes=1 << 20)) == {"a", "b"}
    np.savez_compressed(tmp_path / "bomb.npz", a=np.zeros(1 << 16, np.float32))
    with pytest.raises(GaninvError, match="compressed members"):
        safe_files.load_npz(tmp_path / "bomb.npz", "shard", max_bytes=1 << 20)
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as z:
        z.writestr("a.npy", npy_with_header((1 << 40,), payload=bytes(16)))
    with pytest.raises(GaninvError, match="header claims shape"):
        safe_files.load_npz(tmp_path / "lie.npz", "shard", max_bytes=1 << 20)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(GaninvError, match="truncated or corrupt"):
        safe_files.load_npz(tmp_path / "junk.npz", "shard", max_bytes=1 << 20)


def test_json_is_bounded_before_it_is_read(tmp_path):
    (tmp_path / "big.json").write_text("[" + "1," * 1000 + "1]")
    with pytest.raises(GaninvError, match="larger than"):
        safe_files.read_json_bounded(tmp_path / "big.json", 1024)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(GaninvError, match="not JSON"):
        safe_files.read_json_bounded(tmp_path / "deep.json", 1 << 20)


# ------------------------------------------------------------------------------------------------ the weights readers
def test_generator_weights_are_read_safely(tmp_path):
    from ganinv.inference.wrap import load_module_weights

    module, marker = torch.nn.Linear(2, 2), tmp_path / "pwned"
    torch.save({"weight": RunsCode(marker)}, tmp_path / "evil.pt")
    torchscript_file(tmp_path / "ts.pt")
    (tmp_path / "junk.safetensors").write_bytes(struct.pack("<Q", BIG) + b"{}")
    for name, needle in (("evil.pt", "holds more than tensors"), ("ts.pt", "TorchScript"),
                         ("junk.safetensors", "not a safetensors file")):
        with pytest.raises(GaninvError) as info:
            load_module_weights(module, tmp_path / name)
        assert needle in one_line(info) and "generator weights" in str(info.value)
    assert not marker.exists()
    torch.save({"state_dict": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "ok.pt")
    load_module_weights(module, tmp_path / "ok.pt")


def test_resnet18_weights_are_read_safely(tmp_path):
    from ganinv.nets.encoders import ResNetEncoder

    encoder, marker = ResNetEncoder(latent_dim=4), tmp_path / "pwned"
    torch.save({"conv1.weight": RunsCode(marker)}, tmp_path / "evil.pth")
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "shape.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    for name, needle in (("evil.pth", "holds more than tensors"), ("shape.pth", "not a torchvision ResNet18"),
                         ("list.pth", "not a torchvision ResNet18")):
        with pytest.raises(GaninvError) as info:
            encoder.load_imagenet(tmp_path / name)
        assert needle in one_line(info)
    assert not marker.exists()
    body = {k: v for k, v in encoder.backbone.state_dict().items() if not k.startswith("fc.")}
    torch.save(body, tmp_path / "ok.pth", _use_new_zipfile_serialization=False)  # published files predate zips
    assert encoder.load_imagenet(tmp_path / "ok.pth") == str(tmp_path / "ok.pth")


def test_inception_weights_never_reach_torch_fidelitys_full_unpickler(tmp_path):
    from ganinv.metrics.fid import inception_extractor

    marker = tmp_path / "pwned"
    torch.save({"fc.weight": RunsCode(marker)}, tmp_path / "inception.pth")
    extractor, note = inception_extractor(str(tmp_path / "inception.pth"))
    assert extractor is None and "holds more than tensors" in note and "\n" not in note
    assert not marker.exists()


def test_lpips_backbone_in_the_hub_cache_is_checked_first(tmp_path, monkeypatch):
    from ganinv.metrics import image

    marker, path = tmp_path / "pwned", tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"features.0.weight": RunsCode(marker)}, path)
    monkeypatch.setattr(image, "lpips_weights_path", lambda: path)
    with pytest.raises(RuntimeError) as info:
        image.lpips_metric()
    assert "holds more than tensors" in one_line(info) and not marker.exists()


def test_a_damaged_fd_domain_cache_is_one_line(tmp_path, monkeypatch):
    from ganinv.metrics import fid

    monkeypatch.setenv("GANINV_CACHE", str(tmp_path))
    key = hashlib.sha1(b"digits|8|1|1|v1").hexdigest()[:16]  # domain_extractor's cache name for these arguments
    path = fid._cache_dir() / f"{key}.safetensors"
    path.parent.mkdir(parents=True)
    for data in (b"garbage", struct.pack("<Q", BIG) + b"{}"):
        path.write_bytes(data)
        with pytest.raises(GaninvError) as info:
            fid.domain_extractor("digits", image_size=8, channels=1, steps=1)
        assert "FD-domain classifier cache" in one_line(info)
    save_file({"head.weight": torch.zeros(3, 7)}, path)  # a head that does not fit the classifier
    with pytest.raises(GaninvError, match="does not fit the classifier"):
        fid.domain_extractor("digits", image_size=8, channels=1, steps=1)
