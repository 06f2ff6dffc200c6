"""The training session (ganinv.methods.session): the one place a method's losses are applied, and the one step
every method reads. The methods' numbers through it are covered by tests/methods/test_contract.py (train, resume
bit-identical) and tests/core/test_distributed.py (two processes equal one)."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import ganinv
from ganinv.latent import make_prior
from ganinv.methods.session import TrainingSession, gradient_step

SRC = Path(ganinv.__file__).parent


def session_over(**nets: nn.Module) -> TrainingSession:
    session = TrainingSession()
    session.optimizers = {name: torch.optim.SGD(net.parameters(), lr=0.5) for name, net in nets.items()}
    return session


def test_update_steps_only_the_named_players_on_their_own_gradients():
    torch.manual_seed(0)
    g, e, d = nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1)
    session = session_over(generator=g, encoder=e, discriminator=d)
    untouched = [p.clone() for p in d.parameters()]
    x = torch.ones(1, 2)
    d(x).sum().backward()  # a stale gradient on D: must neither be applied nor leak into G and E
    expected = [p - 0.5 * torch.autograd.grad((g(x) + e(x)).sum(), p)[0] for p in (g.weight, e.weight)]
    session.update(("generator", "encoder"), (g(x) + e(x)).sum())
    assert torch.allclose(g.weight, expected[0]) and torch.allclose(e.weight, expected[1])
    assert all(torch.equal(p, q) for p, q in zip(d.parameters(), untouched))


def test_updating_sums_several_backward_passes_into_one_step():
    net = nn.Linear(1, 1, bias=False)
    session = session_over(encoder=net)
    with torch.no_grad():
        net.weight.fill_(1.0)
    x = torch.ones(1, 1)
    with session.updating("encoder"):
        for _ in range(3):  # d/dw of w·x is 1 each pass: one step of 0.5 · 3
            session.backward(net(x).sum())
    assert net.weight.item() == pytest.approx(1.0 - 1.5)


def test_a_failing_loss_leaves_every_weight_untouched():
    net = nn.Linear(2, 1)
    before = [p.clone() for p in net.parameters()]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    with pytest.raises(ValueError), gradient_step([optimizer]):
        net(torch.ones(1, 2)).sum().backward()
        raise ValueError("the loss was not finite")
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_the_step_counts_steps_done_and_seeds_the_steps_latents():
    prior = make_prior("normal", 4)
    one, other = TrainingSession(), TrainingSession()
    one.begin_step(7, seed=3)
    assert one.step == 7  # while the step runs: the steps done before it
    first = one.latents(prior, 5)
    one.end_step()
    assert one.step == 8
    other.begin_step(7, seed=3)  # the same (seed, step): the same latents, resumed or not
    assert torch.equal(other.latents(prior, 5), first)
    other.begin_step(8, seed=3)
    assert not torch.equal(other.latents(prior, 5), first)


def test_ranks_split_the_latents_one_process_would_draw():
    prior = make_prior("normal", 4)
    alone = TrainingSession()
    alone.begin_step(2, seed=1)
    whole = alone.latents(prior, 6)
    halves = []
    for rank in (0, 1):
        session = TrainingSession()
        session.attach(SimpleNamespace(process_index=rank, num_processes=2))
        session.begin_step(2, seed=1)
        halves.append(session.latents(prior, 3))
    assert torch.equal(torch.cat(halves), whole)


def test_detached_keeps_the_step_and_drops_the_runtime():
    session = session_over(generator=nn.Linear(1, 1))
    session.accelerator, session.step = object(), 12
    copy = session.detached()
    assert copy.step == 12 and copy.accelerator is None and copy.optimizers == {}
    assert session.optimizers and session.accelerator is not None  # the original is untouched


def test_gradients_are_cleared_and_optimisers_stepped_in_one_place():
    """The training step is written once: methods and the loop hand their losses to the session."""
    hits = [f"{path.relative_to(SRC)}:{n}" for folder in ("methods", "training")
            for path in sorted((SRC / folder).glob("*.py"))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if "zero_grad" in line or ".step()" in line]
    assert [hit.split(":")[0] for hit in hits] == ["methods/session.py"] * 2, hits
