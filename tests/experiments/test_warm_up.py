"""compare and bench warm up before timing: Adam's one-off import and every inverter's first call stay untimed."""
import torch

from ganinv.experiments.compare import warm_up


class Recorder:
    def __init__(self):
        self.seen = []

    def invert(self, x):
        self.seen.append(len(x))
        torch.rand(3)  # an inverter that draws from the global RNG
        return x


def test_warm_up_runs_every_inverter_once_on_two_images_and_leaves_the_rng_alone(monkeypatch):
    built = []
    monkeypatch.setattr(torch.optim, "Adam", lambda params, **kw: built.append(1) or torch.optim.SGD(params, lr=0.1))
    models = {"a": Recorder(), "b": Recorder()}
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    warm_up(models, torch.zeros(16, 1, 8, 8))
    assert built == [1] and [m.seen for m in models.values()] == [[2], [2]]
    assert torch.equal(torch.rand(4), expected)  # the timed runs draw what they would have drawn without it
