"""The one image loss (ganinv.losses.image) shared by optimisation, the encoders and pivotal tuning: its terms, its
two reductions, and the one LPIPS policy (refuse when asked for and missing; drop, said once, when only offered)."""
import pytest
import torch
import torch.nn.functional as F

from ganinv.core.errors import GaninvError
from ganinv.losses import image as L
from ganinv.losses import reconstruction_bce
from ganinv.losses.image import ImageLoss, image_loss

MISSING = "LPIPS unavailable: the AlexNet backbone weights 'alexnet-owt-7be5be79.pth' are missing. Put that file at X"


def pair(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.rand(n, 1, 8, 8, generator=g)


@pytest.fixture
def no_lpips(monkeypatch):
    monkeypatch.setattr(L, "lpips_status", lambda: (False, MISSING))


@pytest.fixture
def fake_lpips(monkeypatch):
    """LPIPS 'available', its distance a differentiable stand-in (no AlexNet weights here)."""
    calls = []

    def perceptual(x, y):
        calls.append(len(x))
        return 10.0 * (x - y).abs().flatten(1).amax(1)

    monkeypatch.setattr(L, "lpips_status", lambda: (True, "LPIPS available"))
    monkeypatch.setattr(L, "perceptual_distance", perceptual)
    return calls


def test_each_term_is_the_formula_it_names_as_a_batch_mean_and_per_image():
    x, y = pair()
    cases = {"mse": (F.mse_loss(x, y), (x - y).square().flatten(1).mean(1)),
             "l1": (F.l1_loss(x, y), (x - y).abs().flatten(1).mean(1)),
             "bce": (reconstruction_bce(x, y), F.binary_cross_entropy(x.clamp(1e-6, 1 - 1e-6), y, reduction="none")
                     .flatten(1).mean(1))}
    for name, (mean, per_image) in cases.items():
        loss = ImageLoss(**{name: 1.0})
        total, parts = loss(x, y)
        assert torch.equal(total, mean) and set(parts) == {name}, name  # bit-identical to what the methods used
        total, parts = loss.per_image(x, y)
        assert torch.equal(total, per_image) and total.shape == (3,), name


def test_weights_sum_the_terms_and_parts_are_unweighted():
    x, y = pair()
    total, parts = ImageLoss(mse=2.0, l1=0.5)(x, y)
    assert set(parts) == {"mse", "l1"}
    assert torch.allclose(total, 2.0 * F.mse_loss(x, y) + 0.5 * F.l1_loss(x, y))
    assert torch.equal(parts["mse"], F.mse_loss(x, y))
    per_image, _ = ImageLoss(mse=2.0, l1=0.5).per_image(x, y)
    assert torch.allclose(per_image[1:], ImageLoss(mse=2.0, l1=0.5).per_image(x[1:], y[1:])[0])  # batch-free


def test_bad_weights_and_names_are_one_error_line():
    for weights in ({"mse": -1.0}, {"mse": float("nan")}, {"lpips": float("inf")}, {}):
        with pytest.raises(GaninvError, match="weight"):
            ImageLoss(**weights)
    with pytest.raises(GaninvError, match="loss must be one of bce, mse, got 'mse\\+lpips'"):
        image_loss("mse+lpips", ("bce", "mse"), "loss")
    assert image_loss("mse+lpips") == ImageLoss(mse=1.0, lpips=1.0)


def test_asking_for_lpips_without_its_weights_is_refused_naming_the_file(no_lpips):
    x, y = pair()
    with pytest.raises(GaninvError, match=r"setting=x needs LPIPS, which is unavailable here \(.*Put that file.*"
                                          r"\); use mse"):
        ImageLoss(mse=1.0, lpips=1.0).require("setting=x", "use mse")
    assert ImageLoss(mse=1.0).require("setting=x") == ImageLoss(mse=1.0)  # no LPIPS asked for: nothing to refuse
    with pytest.raises(GaninvError, match="Put that file"):  # computed anyway (a resumed run): never MSE alone
        ImageLoss(mse=1.0, lpips=1.0)(x, y)


def test_a_default_that_offers_lpips_drops_it_saying_so_once(no_lpips):
    said = []
    loss = ImageLoss(mse=1.0, lpips=1.0).when_available(said.append, "tuning leaves it out")
    assert loss == ImageLoss(mse=1.0) and said == [f"{MISSING} — tuning leaves it out"]


def test_lpips_joins_when_available(fake_lpips):
    x, y = pair()
    loss = ImageLoss(mse=1.0, lpips=1.0).require("setting=x")
    assert loss.when_available(lambda m: pytest.fail(m), "unused") is loss
    total, parts = loss.per_image(x, y)
    assert fake_lpips == [3] and set(parts) == {"mse", "lpips"}
    assert torch.allclose(total, (x - y).square().flatten(1).mean(1) + 10.0 * (x - y).abs().flatten(1).amax(1))
    assert torch.allclose(loss(x, y)[0], total.mean())  # the batch mean of LPIPS is the mean over images


@pytest.mark.skipif(not L.lpips_status()[0], reason="the LPIPS weights are not on this machine")
def test_real_lpips_is_differentiable_and_zero_on_equal_images():
    x, y = pair()
    x.requires_grad_(True)
    d = L.perceptual_distance(x, y)
    d.sum().backward()
    assert d.shape == (3,) and bool((d > 0).all()) and x.grad is not None
    assert float(L.perceptual_distance(y, y).abs().max()) < 1e-5
