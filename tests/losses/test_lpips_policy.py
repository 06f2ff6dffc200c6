"""The LPIPS policy end to end, without a network: weights *present* in the cache TORCH_HOME names; *absent* with
downloads off (GANINV_OFFLINE / HF_HUB_OFFLINE) or failing (offline) — one line naming the file to place; *absent and
online* — fetched on first use through ganinv.metrics.image.download_file (replaced here), then checked like a placed
file. The stand-in checkpoint is a random AlexNet whose unused classifier is stride-0 views, so the file stays tiny."""
import math
import os

import pytest
import torch

from ganinv.core.errors import GaninvError
from ganinv.losses import image as L
from ganinv.losses.image import ImageLoss
from ganinv.metrics import image as M

NAME = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1 file
URL_PART = "download.pytorch.org/models/" + NAME


def write_fake_alexnet(path):
    import torchvision

    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.AlexNet().state_dict().items()}
    state = {k: (torch.randn(s, generator=g) / math.sqrt(math.prod(s[1:]) if len(s) > 1 else 1.0)
                 if k.startswith("features.") else torch.zeros(1).expand(s)) for k, s in shapes.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


class RunsCode:
    """Pickled as a call of os.system: what a hostile download would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty torch cache named by TORCH_HOME, downloads allowed, and a record of every download asked for."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in M.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    asked = []

    def offline(url, dest, *, timeout_s, max_bytes):
        asked.append((url, dest, timeout_s, max_bytes))
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(M, "download_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints" / NAME, asked


def test_present_weights_in_torch_home_are_used_and_nothing_is_fetched(cache):
    path, asked = cache
    write_fake_alexnet(path)
    assert M.lpips_weights_path() == path
    available, message = M.lpips_status()
    assert available, message
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = x.flip(0).requires_grad_(True)
    total, parts = ImageLoss(mse=1.0, lpips=1.0).require("setting=x")(x, y)
    assert set(parts) == {"mse", "lpips"} and float(parts["lpips"].detach()) > 0
    total.backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0  # differentiable through the real network
    assert asked == []


def test_absent_and_offline_is_one_line_naming_the_file_and_asked_once(cache):
    path, asked = cache
    available, message = M.lpips_status()
    assert not available and "\n" not in message
    assert NAME in message and str(path) in message and URL_PART in message and "Network is unreachable" in message
    assert len(asked) == 1 and asked[0][1] == path and 0 < asked[0][2] <= 30 and asked[0][3] >= 233 << 20
    with pytest.raises(GaninvError) as info:
        ImageLoss(mse=1.0, lpips=1.0).require("optimisation loss mse+lpips", "use mse")
    assert str(path) in str(info.value) and "use mse" in str(info.value)
    assert M.lpips_status()[1] == message and len(asked) == 1  # remembered: later checks do not wait again
    said = []
    assert ImageLoss(mse=1.0, lpips=1.0).when_available(said.append, "MSE only") == ImageLoss(mse=1.0)
    assert len(said) == 1 and str(path) in said[0]


@pytest.mark.parametrize("variable", ["GANINV_OFFLINE", "HF_HUB_OFFLINE"])
def test_downloads_switched_off_never_ask_and_say_which_switch(cache, monkeypatch, variable):
    path, asked = cache
    monkeypatch.setenv(variable, "1")
    available, message = M.lpips_status()
    assert not available and asked == []
    assert f"{variable}=1" in message and str(path) in message and "\n" not in message


def test_offline_switch_set_to_zero_still_allows_the_download(cache, monkeypatch):
    _, asked = cache
    monkeypatch.setenv("GANINV_OFFLINE", "0")
    assert not M.lpips_status()[0] and len(asked) == 1


def test_absent_and_online_is_fetched_on_first_use_said_on_stderr_then_works(cache, monkeypatch, capsys):
    path, _ = cache
    fetched = []

    def online(url, dest, *, timeout_s, max_bytes):
        fetched.append(url)
        write_fake_alexnet(dest)

    monkeypatch.setattr(M, "download_file", online)
    available, message = M.lpips_status()
    assert available, message
    assert len(fetched) == 1 and URL_PART in fetched[0] and path.is_file()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "downloading" in err and str(path) in err and "GANINV_OFFLINE=1" in err
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    assert float(L.perceptual_distance(x, x).abs().max()) < 1e-5
    assert M.lpips_status()[0] and len(fetched) == 1  # the second use finds the file


def test_a_downloaded_file_passes_the_placed_files_checks(cache, monkeypatch, tmp_path):
    path, _ = cache
    marker = tmp_path / "pwned"

    def hostile(url, dest, *, timeout_s, max_bytes):
        dest.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"features.0.weight": RunsCode(marker)}, dest)

    monkeypatch.setattr(M, "download_file", hostile)
    available, message = M.lpips_status()
    assert not available and "holds more than tensors" in message and "\n" not in message
    assert not marker.exists()


# --- the fetcher itself, on file:// URLs (urllib reads them without a network) ---------------------------------------

def test_download_file_writes_whole_files_and_checks_the_hash_in_the_name(tmp_path):
    import hashlib

    source = tmp_path / "source.bin"
    source.write_bytes(b"weights" * 100)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    good = tmp_path / "cache" / f"alexnet-owt-{digest[:8]}.pth"
    M.download_file(source.as_uri(), good, timeout_s=5, max_bytes=1 << 20)
    assert good.read_bytes() == source.read_bytes()
    bad = tmp_path / "cache" / "alexnet-owt-00000000.pth"
    with pytest.raises(OSError, match="sha256"):
        M.download_file(source.as_uri(), bad, timeout_s=5, max_bytes=1 << 20)
    with pytest.raises(OSError, match="more than 100 bytes"):
        M.download_file(source.as_uri(), tmp_path / "cache" / "big.pth", timeout_s=5, max_bytes=100)
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name]  # no partial file left behind
