"""The one training loop: save → load, losses that fall, exact resume, the NaN guard, atomic checkpoints."""
import json
import math

import pytest
import torch
from conftest import TINY_NET, TINY_TRAIN, tiny_train
from safetensors.torch import load_file

from ganinv import load
from ganinv.core.errors import GaninvError, TrainingDiverged
from ganinv.core.rundir import latest_checkpoint
from ganinv.training.launch import build_config, new_method
from ganinv.training.loop import ResumableBatchSampler, train


def test_run_directory_layout(gan_run, aegan_run, generator_run):
    for run in (gan_run, aegan_run):
        for name in ("config.json", "checkpoint.json", "weights.safetensors", "metrics.jsonl"):
            assert (run / name).is_file(), name
        checkpoint = latest_checkpoint(run)
        assert checkpoint.step == 10 and checkpoint.state.is_file()
        assert checkpoint.weights.read_bytes() == (run / "weights.safetensors").read_bytes()
        folders = list((run / "checkpoints").iterdir())  # the newest, and the one before it until the next commit
        assert checkpoint.folder in folders and len(folders) <= 2
        assert list((run / "samples").glob("step-*.png"))
        assert list((run / "tb").iterdir())
    config = json.loads((aegan_run / "config.json").read_text())
    assert config["method"] == "aegan" and config["generator_run"] == str(generator_run.resolve())
    assert config["net"]["image_size"] == 16 and config["versions"]["torch"] == torch.__version__
    lines = [json.loads(line) for line in (aegan_run / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if line["kind"] == "eval"]
    assert evals and "generated/psnr" in evals[-1] and "real/dhash_similarity" in evals[-1]


def test_save_load_gives_identical_inversion(aegan_run):
    a, b = load(aegan_run), load(aegan_run)
    x = a.generate(a.sample(8, generator=torch.Generator().manual_seed(1)))
    assert x.shape == (8, 1, 16, 16) and 0 <= x.min() and x.max() <= 1
    za, zb = a.invert(x), b.invert(x)
    assert torch.equal(za, zb)
    assert za.shape == (8, 8) and za.abs().max() <= 1  # inside U(-1,1)
    assert torch.equal(a.reconstruct(x), b.generate(zb))


def test_posthoc_run_carries_its_generator(generator_run, aegan_run):
    g, e = load(generator_run), load(aegan_run)
    z = g.sample(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(g.generate(z), e.generate(z))  # frozen: not one weight moved


def test_inversion_is_independent_of_batch(aegan_run):
    model = load(aegan_run)
    x = model.generate(model.sample(6, generator=torch.Generator().manual_seed(5)))
    assert torch.allclose(model.invert(x)[:2], model.invert(x[:2]), atol=1e-6)


@pytest.mark.parametrize("method", ["aegan", "regression"])
def test_encoder_loss_falls_and_beats_a_random_encoder(generator_run, tmp_path, method):
    torch.manual_seed(0)
    tiny_train(method, tmp_path / method, steps=40, generator=generator_run,
                        train_overrides={"lr": 1e-3, "log_every": 1, "eval_every": 1000})
    losses = [json.loads(line) for line in (tmp_path / method / "metrics.jsonl").read_text().splitlines()]
    losses = [v for line in losses if line["kind"] == "train" for k, v in line.items() if k not in ("step", "kind")]
    assert len(losses) == 40
    early, late = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # BCE cannot fall below the entropy of G's grey-level pixels (~0.6 here), so AEGAN's margin is smaller
    assert late < (0.97 if method == "aegan" else 0.8) * early
    trained = load(tmp_path / method)
    x = trained.generate(trained.sample(64, generator=torch.Generator().manual_seed(9)))
    random_encoder = new_method(trained.config, load(generator_run))  # untrained IG, same G
    with random_encoder.eval_mode():
        random_error = torch.nn.functional.mse_loss(random_encoder.generate(random_encoder.invert(x)), x)
    assert torch.nn.functional.mse_loss(trained.reconstruct(x), x) < random_error


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    """A run stopped after its step-5 checkpoint and resumed ends bit-identical to one that never stopped."""
    full = tmp_path / "full"
    tiny_train("gan", full, steps=10, data="digits")
    part = tmp_path / "part"
    tiny_train("gan", part, steps=5, data="digits")  # as if killed right after the step-5 checkpoint
    with open(part / "metrics.jsonl", "a") as f:  # ... having logged a step past it and half a line
        f.write('{"step": 6, "kind": "train", "d_loss": 1.0}\n{"step": 7, "ki')
    config = json.loads((part / "config.json").read_text())
    config["train"]["steps"] = 10
    (part / "config.json").write_text(json.dumps(config))
    tiny_train("gan", part, steps=10, resume=True)
    a, b = load_file(full / "weights.safetensors"), load_file(part / "weights.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 10 and steps.count(6) == 0  # no duplicate lines from the killed part


def poisoned_method(monkeypatch, at_call: int, value: float):
    """A tiny gan whose ``at_call``-th step reports d_loss = value."""
    config = build_config("gan", data="digits", net=TINY_NET, train={**TINY_TRAIN, "steps": 20})
    method = new_method(config)
    original = method.train_step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        logs = original(batch)
        return {**logs, "d_loss": value} if calls["n"] == at_call else logs

    monkeypatch.setattr(method, "train_step", poisoned)
    return method


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 8, math.nan)
    with pytest.raises(TrainingDiverged, match=r"d_loss=nan at step 8.*step 5"):
        train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False)
    assert latest_checkpoint(tmp_path / "run").step == 5
    load(tmp_path / "run")  # still a loadable run


def test_nan_before_the_first_checkpoint_says_nothing_is_kept(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 3, math.inf)
    with pytest.raises(TrainingDiverged, match=r"d_loss=inf at step 3.*No checkpoint was written") as failure:
        train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False)
    assert "step 0" not in str(failure.value) and latest_checkpoint(tmp_path / "run") is None


def test_an_exploding_loss_warns_once(tmp_path, monkeypatch):
    from ganinv.data import open_dataset

    method = poisoned_method(monkeypatch, 4, 3e7)
    warnings = []
    train(method, tmp_path / "run", dataset=open_dataset("digits", 16, 1), show_progress=False,
          warn=warnings.append)
    assert len(warnings) == 1 and "d_loss = 3e+07 at step 4" in warnings[0] and "--lr" in warnings[0]


def test_fresh_run_refuses_to_overwrite(gan_run):
    with pytest.raises(GaninvError, match="already holds a run"):
        tiny_train("gan", gan_run, data="digits")


def test_batch_sampler_resumes_mid_epoch():
    full = ResumableBatchSampler(50, 8, seed=3)
    it = iter(full)
    expected = [next(it) for _ in range(14)]  # crosses the 6-batch epoch boundary twice
    resumed = iter(ResumableBatchSampler(50, 8, seed=3, start_batch=9))
    assert [next(resumed) for _ in range(5)] == expected[9:]
    assert sorted(sum(expected[:6], [])) == sorted(set(sum(expected[:6], [])))  # no repeats inside an epoch
