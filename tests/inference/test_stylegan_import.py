"""Bring your StyleGAN: NVlabs StyleGAN2-ADA / StyleGAN3 pickles and rosinality checkpoints, written by the tests
from the project's own nets in their owners' file layouts, round-trip through ``import_stylegan`` to the same
images; a file that would run code is refused and nothing runs; truncated and foreign files get one clear line; the
imported run is a generator every post-hoc method takes, in z, W and W+; an NVlabs snapshot's discriminator comes
along, frozen, for the d_features image term."""
import os
import pickle

import pytest
import torch

import ganinv
from ganinv.core.errors import GaninvError
from ganinv.inference.safe_unpickle import read_checkpoint
from helpers import (
    assert_clean_error,
    run_cli,
    tiny_stylegan,
    tiny_stylegan_d,
    tiny_train,
    write_nvlabs_pickle,
    write_rosinality_checkpoint,
)


def latents(n=4, dim=16, seed=1):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def expected_images(net, z, psi=1.0):
    with torch.no_grad():
        return ((net(z, truncation_psi=psi) + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3"])
def test_an_nvlabs_snapshot_imports_to_the_same_images(tmp_path, arch):
    net, kwargs = tiny_stylegan(arch)
    path = write_nvlabs_pickle(tmp_path / "network-snapshot-000100.pkl", net, kwargs)
    model = ganinv.import_stylegan(path, tmp_path / "run", truncation_psi=0.7)
    z = latents()
    assert model.config.method == "stylegan" and model.method.options.arch == arch
    assert model.method.options.source_format == f"nvlabs-{arch}"
    assert torch.allclose(model.generate(z), expected_images(net, z, psi=0.7), atol=1e-6)
    reloaded = ganinv.load(tmp_path / "run")  # a normal run directory: config.json + weights.safetensors
    assert torch.equal(reloaded.generate(z), model.generate(z))
    assert model.prior.name == "normal" and model.image_shape == (3, 16, 16)
    assert model.config.net.max_width == 512  # its encoders stop doubling at StyleGAN's widest layer


def test_a_rosinality_checkpoint_imports_to_the_same_images(tmp_path):
    net, _ = tiny_stylegan("stylegan2")
    path = write_rosinality_checkpoint(tmp_path / "100000.pt", net, with_latent_avg=True)
    model = ganinv.import_stylegan(path)
    z = latents()
    assert model.method.options.source_format == "rosinality"
    assert torch.allclose(model.generate(z), expected_images(net, z), atol=1e-5)
    assert torch.allclose(model.method.nets["generator"].generator.state_dict()["mapping.w_avg"],
                          net.state_dict()["mapping.w_avg"])


def test_without_latent_avg_w_avg_is_the_mapping_mean(tmp_path):
    net, _ = tiny_stylegan("stylegan2")
    model = ganinv.import_stylegan(write_rosinality_checkpoint(tmp_path / "g.pt", net), truncation_psi=0.0)
    w_avg = model.method.nets["generator"].generator.state_dict()["mapping.w_avg"]
    with torch.no_grad():
        mean = net.mapping(torch.randn(10_000, 16, generator=torch.Generator().manual_seed(0))).mean(0)
    assert torch.allclose(w_avg, mean, atol=1e-5)
    images = model.generate(latents())
    assert torch.allclose(images, images[:1].expand_as(images))  # ψ = 0: every latent is w̄


class RunsCode:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


@pytest.mark.parametrize("suffix", [".pkl", ".pt"])
def test_a_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path, suffix):
    sentinel = tmp_path / "ran"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"G_ema": RunsCode(sentinel)}))
    else:
        torch.save({"g_ema": RunsCode(sentinel)}, path)
    with pytest.raises(GaninvError, match="refusing to load .*system"):
        ganinv.import_stylegan(path)
    assert not sentinel.exists()


def test_the_source_code_inside_an_nvlabs_pickle_is_never_run(tmp_path):
    sentinel = tmp_path / "ran"
    net, kwargs = tiny_stylegan("stylegan2")
    source = f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
    ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs, module_src=source))
    assert not sentinel.exists()


def test_truncated_foreign_and_conditional_files_get_one_clear_message(tmp_path):
    net, kwargs = tiny_stylegan("stylegan2")
    good = write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs).read_bytes()
    (tmp_path / "cut.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(GaninvError, match="truncated"):
        ganinv.import_stylegan(tmp_path / "cut.pkl")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(GaninvError, match="not a readable StyleGAN checkpoint"):
        ganinv.import_stylegan(tmp_path / "photo.png")
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "classifier.pt")
    with pytest.raises(GaninvError, match="not a StyleGAN checkpoint.*found model"):
        ganinv.import_stylegan(tmp_path / "classifier.pt")
    write_nvlabs_pickle(tmp_path / "cond.pkl", net, {**kwargs, "c_dim": 10})
    with pytest.raises(GaninvError, match="c_dim|conditional"):
        ganinv.import_stylegan(tmp_path / "cond.pkl")
    with pytest.raises(GaninvError, match="does not exist"):
        ganinv.import_stylegan(tmp_path / "missing.pkl")
    (tmp_path / "tf.pkl").write_bytes(b"cdnnlib.tflib.network\n_reconstruct_persistent_obj\n.")
    with pytest.raises(GaninvError, match="TensorFlow StyleGAN pickle.*legacy.py"):
        ganinv.import_stylegan(tmp_path / "tf.pkl")


def test_tensors_that_do_not_fit_are_named(tmp_path):
    net, kwargs = tiny_stylegan("stylegan2")
    path = write_nvlabs_pickle(tmp_path / "g.pkl", net, {**kwargs, "w_dim": 32})  # kwargs disagree with tensors
    with pytest.raises(GaninvError, match="does not fit .*wrong shape: .*affine.weight"):
        ganinv.import_stylegan(path)


def test_read_checkpoint_keeps_records_as_data(tmp_path):
    net, kwargs = tiny_stylegan("stylegan3")
    snapshot = read_checkpoint(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs))
    assert snapshot["G_ema"].class_name == "Generator" and snapshot["G_ema"].init_kwargs["img_resolution"] == 16
    assert snapshot["G_ema"].tensors().keys() == net.state_dict().keys()


def test_cli_imports_and_a_posthoc_encoder_trains_in_wplus(monkeypatch, capsys, tmp_path):
    code, out, _ = run_cli(monkeypatch, capsys, "import", "--help")
    assert code == 0 and "stylegan" in out
    net, kwargs = tiny_stylegan("stylegan2")
    path = write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs)
    code, out, err = run_cli(monkeypatch, capsys, "import", "stylegan", path, "--out", tmp_path / "sg",
                             "--width", "8")
    assert code == 0, err
    assert "nvlabs-stylegan2" in out and "w 16 × " in " ".join(out.split())
    code, _, err = run_cli(monkeypatch, capsys, "import", "stylegan", tmp_path / "nope.pkl", "--out", tmp_path / "x")
    assert_clean_error(code, err, "checkpoint not found")

    tiny_train("aegan", tmp_path / "enc", steps=2, generator=tmp_path / "sg", options={"space": "wplus"},
               train_overrides={"batch_size": 4})
    encoder = ganinv.load(tmp_path / "enc")
    num_ws = encoder.method.nets["generator"].num_ws
    x = ganinv.load(tmp_path / "sg").generate(latents(2))
    assert encoder.invert(x).shape == (2, num_ws * 16)
    assert encoder.reconstruct(x).shape == x.shape


def test_an_encoder_of_an_imported_stylegan_drives_every_tab_of_the_web_page(tmp_path):
    from ganinv.apps.search import build_index
    from ganinv.web.handlers import (
        AttributeDirections,
        EditHandlers,
        RandomHandlers,
        ReconstructHandlers,
        SearchHandlers,
        SuperresHandlers,
    )
    from ganinv.web.page import build_app
    from helpers import make_celeba

    net, kwargs = tiny_stylegan("stylegan3")
    ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs), tmp_path / "sg", width=8)
    tiny_train("iterative", tmp_path / "enc", steps=2, generator=tmp_path / "sg", options={"space": "w", "steps": 2},
               train_overrides={"batch_size": 4})
    model = ganinv.load(tmp_path / "enc")
    spec = make_celeba(tmp_path / "celeba", n_train=16, n_test=4)
    index = build_index(tmp_path / "enc", spec, tmp_path / "idx", limit=16, show_progress=False)
    photo, other = sorted((tmp_path / "celeba" / "img_align_celeba").glob("*.jpg"))[:2]

    *_, metrics, _, status = ReconstructHandlers(model).rec_from_upload(str(photo), "hybrid", 2)
    assert "PSNR" in metrics, status
    found = SearchHandlers(model, index).from_entry(3, 4)
    assert "finds itself first" in found[-1] and len(found[1]) == 4
    assert SuperresHandlers(model).sr_from_upload(str(photo), "downsample", 2, 1.0)[1] is not None
    edits = EditHandlers(model, AttributeDirections(model, index))
    assert edits.do_interpolate(str(photo), str(other), 3)[0] is not None
    assert edits.do_attribute(str(photo), "Smiling", 1.0, 3)[0] is not None
    assert RandomHandlers(model).do_random(1, 2)[0] is not None
    assert build_app(model, index) is not None


class LegacyStorage:
    """A storage as torch 1.7–1.9 pickled it inside NVlabs' snapshots: the bytes of a legacy ``torch.save``."""

    def __init__(self, tensor):
        import io
        import warnings

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage is deprecated, and exactly what old files hold
            torch.save(tensor.storage(), buffer, _use_new_zipfile_serialization=False)
        self.data = buffer.getvalue()

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.data,)


class LegacyTensor:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        from collections import OrderedDict

        t = self.tensor
        return torch._utils._rebuild_tensor_v2, (LegacyStorage(t), 0, tuple(t.shape), t.stride(), False, OrderedDict())


def test_tensors_pickled_as_older_torch_did_are_read(tmp_path):
    t = torch.randn(3, 4)
    (tmp_path / "old.pkl").write_bytes(pickle.dumps({"w": LegacyTensor(t)}, protocol=3))
    assert torch.equal(read_checkpoint(tmp_path / "old.pkl")["w"], t)


def test_compare_and_the_frontier_take_an_imported_stylegan(monkeypatch, capsys, tmp_path):
    import json

    from helpers import make_celeba

    net, kwargs = tiny_stylegan("stylegan2")
    ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs), tmp_path / "sg", width=8)
    spec = make_celeba(tmp_path / "celeba", n_train=16, n_test=4)
    code, out, err = run_cli(monkeypatch, capsys, "compare", "--generator", tmp_path / "sg", "--data", spec,
                             "--methods", "aegan,regression,optimize,hybrid", "--out", tmp_path / "cmp",
                             "--train-steps", "2", "--optimize-steps", "3", "--refine-steps", "2", "--n", "4",
                             "--n-real", "4", "--batch-size", "4", "--json")
    assert code == 0, err
    assert {"aegan", "regression", "optimize", "hybrid"} <= json.loads(out).keys()
    code, _, err = run_cli(monkeypatch, capsys, "bench", "frontier", "--generator", tmp_path / "sg", "--data", spec,
                           "--encoders", tmp_path / "cmp" / "runs" / "aegan", "--budget", "smoke", "--out",
                           tmp_path / "frontier", "--quiet")
    assert code == 0, err
    names = {r["inverter"] for r in json.loads((tmp_path / "frontier" / "frontier.json").read_text())["results"]["real"]}
    assert {"optimise w, 3 steps", "optimise wplus, 3 steps"} <= names  # a StyleGAN has W and W+


def test_a_plain_torch_module_inside_a_snapshot_is_read_as_data(tmp_path):
    from ganinv.inference.safe_unpickle import PersistentRecord

    linear = torch.nn.Linear(2, 3)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"m": linear}))
    module = read_checkpoint(tmp_path / "m.pkl")["m"]
    assert torch.equal(module.tensors()["weight"], linear.weight.detach())
    parent = PersistentRecord("Generator", {"_modules": {"lin": module}})
    assert set(parent.tensors()) == {"lin.weight", "lin.bias"}


def nvlabs_images(net, z, psi, cutoff):
    """NVlabs' G(z, truncation_psi=psi, truncation_cutoff=cutoff), written out: ψ on the first ``cutoff`` ws only."""
    with torch.no_grad():
        ws = net.mapping(z, truncation_psi=1.0).unsqueeze(1).repeat(1, net.num_ws, 1)
        ws[:, :cutoff] = net.state_dict()["mapping.w_avg"].lerp(ws[:, :cutoff], psi)
        return ((net.synthesis(ws) + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3"])
def test_truncation_cutoff_applies_psi_to_the_first_layers_only(tmp_path, arch):
    net, kwargs = tiny_stylegan(arch)
    path = write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs)
    z = latents()
    cut = ganinv.import_stylegan(path, tmp_path / "run", truncation_psi=0.3, truncation_cutoff=2)
    assert cut.method.options.truncation_cutoff == 2
    assert torch.allclose(cut.generate(z), nvlabs_images(net, z, 0.3, 2), atol=1e-6)
    everywhere = ganinv.import_stylegan(path, truncation_psi=0.3).generate(z)
    assert (cut.generate(z) - everywhere).abs().max() > 1e-3  # the cutoff changes the images
    assert torch.allclose(ganinv.import_stylegan(path, truncation_psi=0.3, truncation_cutoff=99).generate(z),
                          everywhere, atol=1e-6)  # a cutoff past the last layer is every layer, as in NVlabs
    assert torch.equal(ganinv.load(tmp_path / "run").generate(z), cut.generate(z))  # stored in the run
    assert cut.method.nets["generator"].spec()["truncation_cutoff"] == 2  # and in what post-hoc runs record


def test_negative_psi_is_allowed_as_in_nvlabs_and_the_cli_takes_a_cutoff(monkeypatch, capsys, tmp_path):
    net, kwargs = tiny_stylegan("stylegan2")
    path = write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs)
    z = latents()
    assert torch.allclose(ganinv.import_stylegan(path, truncation_psi=-0.5).generate(z),
                          expected_images(net, z, psi=-0.5), atol=1e-6)
    code, out, err = run_cli(monkeypatch, capsys, "import", "stylegan", path, "--out", tmp_path / "sg",
                             "--truncation-psi", "-0.5", "--truncation-cutoff", "3", "--width", "8")
    assert code == 0, err
    assert "on the first 3 layers" in " ".join(out.split())
    assert torch.allclose(ganinv.load(tmp_path / "sg").generate(z), nvlabs_images(net, z, -0.5, 3), atol=1e-6)
    for bad in (["--truncation-cutoff", "-1"], ["--truncation-psi", "nan"]):
        code, _, err = run_cli(monkeypatch, capsys, "import", "stylegan", path, "--out", tmp_path / "x", *bad)
        assert_clean_error(code, err, "truncation_")


def test_a_pre_1_6_torch_file_imports_as_before(tmp_path):
    import argparse
    import warnings

    net, _ = tiny_stylegan("stylegan2")
    zipped = write_rosinality_checkpoint(tmp_path / "new.pt", net, with_latent_avg=True)
    checkpoint = read_checkpoint(zipped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({**checkpoint, "args": argparse.Namespace(size=16)}, tmp_path / "old.pt",
                   _use_new_zipfile_serialization=False)
    assert (tmp_path / "old.pt").read_bytes()[:4] == b"\x80\x02\x8a\x0a"  # the legacy stream, not a zip
    z = latents()
    old, new = ganinv.import_stylegan(tmp_path / "old.pt"), ganinv.import_stylegan(zipped)
    assert torch.equal(old.generate(z), new.generate(z))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_reads_back_under_every_pickle_protocol(tmp_path, protocol):
    import argparse
    from collections import OrderedDict

    import numpy as np

    data = {"t": torch.arange(12.0).reshape(3, 4)[:, 1:], "np": np.arange(6, dtype=np.float32).reshape(2, 3),
            "scalar": np.float64(2.5), "ns": argparse.Namespace(size=16), "od": OrderedDict(a=1), "set": {"x"},
            "half": torch.ones(2, dtype=torch.float16), "empty": torch.zeros(0, 3)}
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    back = read_checkpoint(tmp_path / "d.pkl")
    assert torch.equal(back["t"], data["t"]) and back["half"].dtype == torch.float16 and back["empty"].shape == (0, 3)
    assert back["np"].tolist() == data["np"].tolist() and back["scalar"] == 2.5 and back["set"] == {"x"}
    assert back["ns"].attrs == {"size": 16} and back["od"] == {"a": 1}


def test_a_rosinality_tensor_of_the_wrong_shape_is_the_one_named(tmp_path):
    net, _ = tiny_stylegan("stylegan2")
    path = write_rosinality_checkpoint(tmp_path / "g.pt", net)
    checkpoint = read_checkpoint(path)
    weight = checkpoint["g_ema"]["convs.2.conv.weight"]
    for edited in (weight[:, :-1], weight[:, :, :-1]):  # one output channel fewer, one input channel fewer
        g_ema = {**checkpoint["g_ema"], "convs.2.conv.weight": edited.clone()}
        torch.save({"g_ema": g_ema, "latent_avg": torch.zeros(16)}, tmp_path / "edited.pt")
        with pytest.raises(GaninvError, match=r"edited\.pt.*convs\.2\.conv\.weight has shape") as info:
            ganinv.import_stylegan(tmp_path / "edited.pt")
        assert "activate" not in str(info.value) and "\n" not in str(info.value)


def test_recorded_kwargs_of_the_wrong_type_are_refused_in_one_line(tmp_path):
    for arch, bad, needle in [("stylegan2", {"z_dim": "abc"}, "z_dim must be an integer"),
                              ("stylegan3", {"z_dim": "abc"}, "z_dim must be an integer"),
                              ("stylegan3", {"num_layers": 4, "num_critical": 4}, "num_critical < num_layers"),
                              ("stylegan2", {"synthesis_kwargs": {"resample_filter": [[1, 2], [3, 4]]}}, "1-D"),
                              ("stylegan2", {"mapping_kwargs": {"num_layers": 2.5}}, "mapping_layers")]:
        net, kwargs = tiny_stylegan(arch)
        path = write_nvlabs_pickle(tmp_path / f"{arch}.pkl", net, {**kwargs, **bad})
        with pytest.raises(GaninvError, match=needle) as info:
            ganinv.import_stylegan(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- the snapshot's discriminator (D) ---------------------------------------------------------------------------------

def d_images(n=4, seed=3):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3"])
def test_a_snapshots_discriminator_is_imported_and_gives_the_same_logits(tmp_path, arch):
    net, kwargs = tiny_stylegan(arch)
    d, d_kwargs = tiny_stylegan_d()
    path = write_nvlabs_pickle(tmp_path / "s.pkl", net, kwargs, discriminator=(d, d_kwargs))
    model = ganinv.import_stylegan(path, tmp_path / "run")
    imported = model.method.nets["discriminator"]
    assert model.method.options.discriminator["channel_max"] == 16 and not imported.training
    assert not any(p.requires_grad for p in imported.parameters())  # frozen
    x = d_images() * 2 - 1
    with torch.no_grad():
        expected = d(x)
        assert torch.allclose(imported(x), expected, atol=1e-6)
        reloaded = ganinv.load(tmp_path / "run").method.nets["discriminator"]  # kept in the run's weights
        assert torch.equal(reloaded(x), imported(x))
    z = latents()
    assert torch.allclose(model.generate(z), expected_images(net, z), atol=1e-6)  # generate never reads D


def test_d_features_works_on_an_imported_run(tmp_path):
    from ganinv.losses.features import DiscriminatorFeatures
    from ganinv.losses.image import ImageLoss

    net, kwargs = tiny_stylegan("stylegan2")
    d, d_kwargs = tiny_stylegan_d(architecture="skip")  # skip: every block also reads the downsampled image
    path = write_nvlabs_pickle(tmp_path / "s.pkl", net, kwargs, discriminator=(d, d_kwargs))
    nets = ganinv.import_stylegan(path, tmp_path / "run").method.nets
    loss = ImageLoss(mse=1.0, d_features=0.5).with_discriminator(nets, "the imported run")
    x, y = d_images(seed=4), d_images(seed=5)
    total, parts = loss(x, y)
    assert 0 < float(parts["d_features"]) <= 4 and torch.allclose(total, parts["mse"] + 0.5 * parts["d_features"])
    assert float(loss(x, x)[1]["d_features"]) < 1e-6
    per_image, _ = loss.per_image(x, y)
    assert torch.allclose(per_image[1:], loss.per_image(x[1:], y[1:])[0], atol=1e-6)  # no minibatch std in the maps
    maps = DiscriminatorFeatures(nets["discriminator"], source="the imported run").maps(x)
    with torch.no_grad():
        first, image = d.b16(None, x * 2 - 1)
        assert [m.shape[-1] for m in maps] == [8, 4] and torch.allclose(maps[0], first, atol=1e-6)
        assert torch.allclose(maps[1], d.b8(first, image)[0], atol=1e-6)
    assert loss.describe() == "mse + 0.5·d_features (the imported run)"


def test_a_snapshot_without_d_imports_the_generator_alone(tmp_path):
    from ganinv.losses.image import ImageLoss

    net, kwargs = tiny_stylegan("stylegan2")
    model = ganinv.import_stylegan(write_nvlabs_pickle(tmp_path / "g.pkl", net, kwargs), tmp_path / "run")
    assert set(model.method.nets) == {"generator"} and model.method.options.discriminator == {}
    assert set(ganinv.load(tmp_path / "run").method.nets) == {"generator"}
    with pytest.raises(GaninvError, match="needs a discriminator and the imported run has none"):
        ImageLoss(d_features=1.0).with_discriminator(model.method.nets, "the imported run")


def test_a_d_of_another_class_is_skipped_with_a_warning(monkeypatch, tmp_path):
    import helpers

    net, kwargs = tiny_stylegan("stylegan2")
    d, d_kwargs = tiny_stylegan_d()
    original = helpers._persistent

    def fork(module, class_name, *args, **kw):  # D recorded under another class name (a fork's discriminator)
        return original(module, "ProjectedDiscriminator" if class_name == "Discriminator" else class_name, *args, **kw)

    monkeypatch.setattr(helpers, "_persistent", fork)
    path = write_nvlabs_pickle(tmp_path / "fork.pkl", net, kwargs, discriminator=(d, d_kwargs))
    assert read_checkpoint(path)["D"].class_name == "ProjectedDiscriminator"
    with pytest.warns(UserWarning, match="ProjectedDiscriminator.*generator alone"):
        model = ganinv.import_stylegan(path)
    assert set(model.method.nets) == {"generator"}


def test_a_discriminator_with_hostile_kwargs_is_refused_in_one_line(tmp_path):
    net, kwargs = tiny_stylegan("stylegan2")
    d, d_kwargs = tiny_stylegan_d()
    for bad, needle in [({"img_resolution": 2**30}, "img_resolution must be an integer in"),
                        ({"img_resolution": "16"}, "img_resolution must be an integer in"),
                        ({"channel_base": [256]}, "channel_base must be an integer"),
                        ({"architecture": 7}, "architecture must be one of"),
                        ({"c_dim": 3}, "conditional"),
                        ({"epilogue_kwargs": {"mbstd_group_size": 10**12}}, "mbstd_group_size"),
                        ({"block_kwargs": "resnet"}, "not a dict"),
                        ({"eval": "os.system"}, "unsupported NVlabs discriminator kwarg"),
                        ({"channel_max": 32}, r"discriminator \(D\) does not fit .*wrong shape: b16\.")]:
        path = write_nvlabs_pickle(tmp_path / "d.pkl", net, kwargs, discriminator=(d, {**d_kwargs, **bad}))
        with pytest.raises(GaninvError, match=needle) as info:
            ganinv.import_stylegan(path)
        assert str(path) in str(info.value) and "discriminator" in str(info.value) and "\n" not in str(info.value)


def test_the_discriminators_conv_clamp_default_follows_the_repository(tmp_path):
    d, d_kwargs = tiny_stylegan_d()
    unclamped = {k: v for k, v in d_kwargs.items() if k != "conv_clamp"}  # left out: the constructor's default
    for arch, clamp in (("stylegan2", None), ("stylegan3", 256.0)):  # stylegan2-ada-pytorch: None; stylegan3: 256
        net, kwargs = tiny_stylegan(arch)
        path = write_nvlabs_pickle(tmp_path / f"{arch}.pkl", net, kwargs, discriminator=(d, unclamped))
        assert ganinv.import_stylegan(path).method.options.discriminator["conv_clamp"] == clamp
