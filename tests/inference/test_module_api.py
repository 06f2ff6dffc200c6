"""InversionModel as the libraries people already use expect it: an nn.Module (.to, .eval, model(x), .parameters),
save_pretrained / from_pretrained through huggingface_hub, load(device="auto", dtype=…), a gradient path through
generate, uint8 and other-size inputs, and ganinv.load_images. No test touches the network."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganinv
from ganinv.core.errors import GaninvError, RunDirError
from ganinv.inference.hybrid import OptimizingModel
from ganinv.inference.model import InversionModel


def latents(model, n=6, seed=0):
    return model.sample(n, generator=torch.Generator().manual_seed(seed))


def test_a_loaded_run_is_an_nn_module_over_every_net(aegan_run):
    model = ganinv.load(aegan_run)
    assert isinstance(model, torch.nn.Module)
    nets = model.method.nets
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for n in nets.values() for p in n.parameters())
    assert all(model.nets[name] is net for name, net in nets.items())  # shared, not copied
    assert not model.training and not any(net.training for net in nets.values())
    model.train()
    assert all(net.training for net in nets.values())
    model.eval()
    assert not any(net.training for net in nets.values())
    x = model.generate(latents(model))
    assert torch.equal(model(x), model.reconstruct(x))


def test_building_a_model_leaves_the_nets_modes_alone(aegan_run):
    """The training loop wraps its method in an InversionModel for samples and evaluation mid-training."""
    method = ganinv.load(aegan_run).method
    method.nets["encoder"].train()
    model = InversionModel(method)
    assert method.nets["encoder"].training and model.training


def test_to_float64_casts_the_method_and_every_output(aegan_run):
    model = ganinv.load(aegan_run)
    z = latents(model)
    x32 = model.generate(z)
    model.to("cpu", torch.float64)
    assert model.dtype == torch.float64
    assert all(p.dtype == torch.float64 for n in model.method.nets.values() for p in n.parameters())
    x64 = model.generate(z)
    assert x64.dtype == torch.float64 and model.invert(x64).dtype == torch.float64
    assert model.sample(2).dtype == torch.float64
    torch.testing.assert_close(x64.float(), x32, atol=1e-5, rtol=0)
    loaded = ganinv.load(aegan_run, dtype=torch.float64)
    assert torch.equal(loaded.generate(z), x64)


def test_moving_the_model_moves_the_methods_device(aegan_run):
    """The method computes on ``method.device``; .to() must keep it with the nets (the meta device moves nothing
    real, so this runs on any machine)."""
    model = ganinv.load(aegan_run)
    model.to("meta")
    assert model.device.type == "meta" and model.method.device.type == "meta"
    assert all(p.device.type == "meta" for p in model.method.nets["encoder"].parameters())


def test_save_pretrained_then_from_pretrained_is_exact(aegan_run, tmp_path):
    model = ganinv.load(aegan_run)
    model.save_pretrained(tmp_path / "export")
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in (tmp_path / "export").iterdir()}
    assert json.loads((tmp_path / "export" / "config.json").read_text())["method"] == "aegan"
    card = (tmp_path / "export" / "README.md").read_text()
    assert "aegan" in card and "Luo et al." in card and "arXiv:1703.10094" in card
    assert "library_name: ganinv" in card and "real/psnr" in card  # the run's recorded evaluation
    again = InversionModel.from_pretrained(tmp_path / "export")
    z = latents(again)
    x = model.generate(z)
    assert torch.equal(again.generate(z), x) and torch.equal(again.invert(x), model.invert(x))
    assert again.config == model.config
    again.save_pretrained(tmp_path / "twice")  # the card still has the metrics: they travel with the folder
    assert "real/psnr" in (tmp_path / "twice" / "README.md").read_text()


def test_from_pretrained_opens_a_run_directory(gan_run):
    model = InversionModel.from_pretrained(gan_run)
    z = latents(model)
    assert torch.equal(model.generate(z), ganinv.load(gan_run).generate(z))


def test_from_pretrained_says_what_is_missing_without_the_network(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at call time: no request is made
    with pytest.raises(RunDirError, match="does not exist"):
        InversionModel.from_pretrained(tmp_path / "missing")
    with pytest.raises(GaninvError, match="no local folder.*Hugging Face Hub") as info:
        InversionModel.from_pretrained("nobody/no-such-model", cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)


def test_device_auto_and_bad_devices_or_dtypes(aegan_run):
    model = ganinv.load(aegan_run, device="auto")
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert model.generate(latents(model)).device.type == model.device.type
    for device in ("tpu", "gpu", 3.5):
        with pytest.raises(GaninvError, match="device") as info:
            ganinv.load(aegan_run, device=device)
        assert "\n" not in str(info.value)
    if not torch.cuda.is_available():
        with pytest.raises(GaninvError, match="no CUDA device"):
            ganinv.load(aegan_run, device="cuda")
    with pytest.raises(GaninvError, match="dtype"):
        ganinv.load(aegan_run, dtype=torch.int64)
    assert ganinv.load(aegan_run, dtype="float64").dtype == torch.float64


def test_generate_with_grad_backpropagates_to_the_latents_and_the_weights(gan_run):
    model = ganinv.load(gan_run)
    z = latents(model).requires_grad_(True)
    images = model.generate(z, grad=True)
    ((images - 0.5) ** 2).mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert any(p.grad is not None for p in model.nets["generator"].parameters())  # a gan run's G trains
    plain = model.generate(z.detach())  # a latent that does not require grad: no graph
    assert not plain.requires_grad and torch.equal(plain, images.detach())  # eval mode on both paths
    followed = model.generate(z)  # one that does: autograd follows without grad=True
    assert followed.grad_fn is not None and torch.equal(followed.detach(), plain)
    assert not model.nets["generator"].training


def test_the_readme_gradient_example_fits_a_real_image_with_nonzero_loss_and_gradient(aegan_run, tmp_path):
    model = ganinv.load(aegan_run)
    pixels = np.random.default_rng(0).integers(0, 256, (24, 20), dtype=np.uint8)  # a file, not one of G's images
    write_png(tmp_path / "a.png", pixels)
    # the README's lines (Python API), as written there
    channels, size, _ = model.image_shape
    target = ganinv.load_images([tmp_path / "a.png"], size=size, channels=channels)
    z = model.invert(target).clone().requires_grad_(True)
    loss = (model.generate(z) - target).square().mean()
    loss.backward()
    assert loss.item() > 1e-3 and z.grad is not None and z.grad.abs().sum() > 0
    assert model.generate(z).grad_fn is not None and model.generate(z.detach()).grad_fn is None
    refined = OptimizingModel(model, steps=1, start="encoder")  # the hybrid's generate follows autograd too
    assert refined.generate(z).grad_fn is not None and refined.generate(z.detach()).grad_fn is None


def test_invert_takes_uint8_and_resizes_other_sizes(aegan_run):
    model = ganinv.load(aegan_run)
    x = model.generate(latents(model))
    as_bytes = (x * 255).round().to(torch.uint8)
    assert torch.equal(model.invert(as_bytes), model.invert(as_bytes.float() / 255))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run's own size: no warning
        model.invert(x)
    twice = F.interpolate(x, scale_factor=2, mode="nearest")
    with pytest.warns(UserWarning, match="resized to this run's 16×16"):
        z = model.invert(twice)
    torch.testing.assert_close(z, model.invert(x), atol=0.05, rtol=0)  # nearest ×2 then antialiased ÷2: x again
    with pytest.warns(UserWarning, match="20×24"):
        assert model.reconstruct(torch.rand(2, 1, 20, 24)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 3, 16, 16), "N×1×H×W"),
    (torch.rand(1, 16, 16), "N×1×H×W"),
    (torch.full((1, 1, 16, 16), float("nan")), "NaN"),
    (torch.full((1, 1, 16, 16), 2.0), r"\[0, 1\]"),
    (torch.ones(1, 1, 16, 16, dtype=torch.int64), "uint8"),
    (np.zeros((1, 1, 16, 16), np.float32), "torch tensor"),
])
def test_invert_still_refuses_what_it_cannot_read(aegan_run, bad, match):
    with pytest.raises(GaninvError, match=match):
        ganinv.load(aegan_run).invert(bad)


def test_subclasses_take_the_same_inputs_and_share_parameters(aegan_run):
    model = ganinv.load(aegan_run)
    refined = OptimizingModel(model, steps=2, start="encoder")
    assert len(list(refined.parameters())) == len(list(model.parameters()))
    x = model.generate(latents(model, n=2))
    z = refined.invert((x * 255).round().to(torch.uint8))
    assert z.shape == (2, model.prior.dim)
    zz = z.clone().requires_grad_(True)
    refined.generate(zz, grad=True).sum().backward()
    assert zz.grad is not None


def write_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_load_images_reads_files_and_folders(tmp_path, aegan_run):
    grey = write_png(tmp_path / "grey.png", np.full((20, 20), 128, np.uint8))
    (tmp_path / "more").mkdir()
    write_png(tmp_path / "more" / "b.png", np.full((24, 30), 255, np.uint8))
    x = ganinv.load_images([grey, tmp_path / "more"], size=16)
    assert x.shape == (2, 1, 16, 16) and x.dtype == torch.float32
    torch.testing.assert_close(x[0], torch.full((1, 16, 16), 128 / 255))
    assert ganinv.load_images(grey).shape == (1, 1, 20, 20)  # one path; its own size
    colour = write_png(tmp_path / "colour.png", np.zeros((16, 16, 3), np.uint8))
    assert ganinv.load_images([grey, colour], size=16).shape == (2, 3, 16, 16)
    assert ganinv.load_images([colour], size=16, channels=1).shape == (1, 1, 16, 16)
    assert ganinv.load(aegan_run).invert(x).shape == (2, 8)


def test_load_images_names_every_file_it_cannot_use(tmp_path):
    good = write_png(tmp_path / "good.png", np.zeros((16, 16), np.uint8))
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(GaninvError, match="broken.png") as info:
        ganinv.load_images([good, tmp_path / "broken.png", tmp_path / "gone.png"])
    assert "gone.png" in str(info.value) and "2 of the images" in str(info.value)
    other = write_png(tmp_path / "other.png", np.zeros((24, 24), np.uint8))
    with pytest.raises(GaninvError, match="different sizes.*size=S"):
        ganinv.load_images([good, other])
