"""Real images: the digits, noisy-digits and CIFAR-10 data models, the image networks, the
module engine against plain torch training loops, checkpoints, mixed precision, bad input."""

import logging
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CNN_ENGINES
from torch import nn

from adamgen import data as datamod
from adamgen import datafile
from adamgen import planner as ex
from adamgen.config import parse_run_config
from adamgen.data import images
from adamgen.errors import ConfigError, DataFileError
from adamgen.models import NETWORKS, image_nets
from adamgen.seeding import generator
from adamgen.trainer import train


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """A small CIFAR-10 look-alike in the python format: 40 training, 20 test images."""
    return images.write_cifar_like(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py",
                                   40, 20)


def image_run(data: dict, model: dict, optimizer: dict, **sections):
    raw = {"seed": sections.pop("seed", 0), "data": data, "model": model,
           "optimizer": optimizer,
           "train": {"epochs": 2, "dtype": "float64", **sections.pop("train", {})},
           "probes": {"per_decade": 0, "linear_points": 2, **sections.pop("probes", {})}}
    return parse_run_config(raw)


DIGITS = {"kind": "digits", "n": 60, "n_test": 40}


# --- data ------------------------------------------------------------------------------------

def test_digits_are_the_bundled_images_split_by_the_seed():
    from sklearn.datasets import load_digits

    cfg = parse_run_config({"data": DIGITS, "model": {"name": "small_cnn"},
                            "optimizer": {"name": "sgd", "lr": 0.1}}).data
    ds = datamod.generate(cfg, 0)
    assert ds.train.x.shape == (60, 1, 8, 8) and ds.test.x.shape == (40, 1, 8, 8)
    bunch = load_digits()
    order = generator(0, "train_data").permutation(1797)
    assert np.array_equal(ds.train.x[:, 0], bunch.images[order[:60]] / 16)
    assert np.array_equal(ds.test.y, bunch.target[order[60:100]])
    assert not np.array_equal(datamod.generate(cfg, 1).train.y, ds.train.y)


def test_noisy_digits_hold_a_unit_digit_patch_and_sparse_noise_off_it(tmp_path):
    from sklearn.datasets import load_digits

    assert (load_digits().target >= 5).sum() == images.PER_SIDE  # the bound config checks
    cfg = parse_run_config({"data": {"kind": "noisy_digits", "d": 200, "n": 40, "s": 20,
                                     "sigma_p": 0.3, "n_test": 100},
                            "optimizer": {"name": "gd", "lr": 0.1}}).data
    ds = datamod.generate(cfg, 0)
    for split in (ds.train, ds.test):
        rows = np.arange(len(split.y))
        digit, noise = split.x[rows, split.signal_patch], split.x[rows, 1 - split.signal_patch]
        assert np.allclose(np.linalg.norm(digit, axis=1), 1) and not digit[:, 64:].any()
        assert not noise[:, :64].any() and ((noise != 0).sum(axis=1) == 20).all()
    assert (ds.train.y == 1).sum() == 20
    assert np.array_equal(ds.train.xi[:, 0], ds.train.x[np.arange(40), 1 - ds.train.signal_patch])
    assert np.linalg.norm(ds.signal) == pytest.approx(1) and not ds.signal[64:].any()
    datafile.save(ds, tmp_path / "d.nc")
    back = datafile.load(tmp_path / "d.nc")
    assert np.array_equal(back.train.x, ds.train.x) and np.array_equal(back.signal, ds.signal)


def test_cifar_is_read_from_the_python_format(cifar_dir):
    cfg = parse_run_config({"data": {"kind": "cifar10", "path": str(cifar_dir), "n": 40,
                                     "n_test": 20},
                            "model": {"name": "small_cnn"},
                            "optimizer": {"name": "sgd", "lr": 0.1}}).data
    ds = datamod.generate(cfg, 0)
    assert ds.train.x.shape == (40, 3, 32, 32) and ds.train.x.dtype == np.uint8
    with open(cifar_dir / "data_batch_2", "rb") as f:
        second = pickle.load(f, encoding="bytes")
    assert np.array_equal(ds.train.x[8:16].reshape(8, -1), second[b"data"])
    assert ds.train.y[8:16].tolist() == second[b"labels"]
    sources = datamod.DATA_MODELS["cifar10"].sources(cfg)
    assert sources == [str(cifar_dir / name) for name in images.CIFAR_FILES]


def _cifar_cfg(path, **changes):
    return parse_run_config({"data": {"kind": "cifar10", "path": str(path), "n": 40,
                                      "n_test": 20, **changes},
                             "model": {"name": "small_cnn"},
                             "optimizer": {"name": "sgd", "lr": 0.1}})


def test_missing_cifar_names_the_file_and_the_download(tmp_path):
    run = _cifar_cfg(tmp_path / "nowhere")
    reason = datamod.DATA_MODELS["cifar10"].missing(run.data)
    assert f"'{tmp_path / 'nowhere' / 'data_batch_1'}' does not exist" in reason
    assert "cifar-10-python.tar.gz" in reason
    experiment = ex.expand("e", {"base": run.to_dict(), "optimizers": {"sgd": {}}})
    kept, reasons = ex.available({"e": experiment})
    assert kept == {} and reasons == {"e": reason}


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(p.read_bytes()[:1000]), "is not a readable batch (truncated"),
    (lambda p: _rewrite(p, data=np.zeros((8, 100), np.uint8)), "holds images of shape (8, 100)"),
    (lambda p: _rewrite(p, labels=[11] * 8), "has labels outside 0..9"),
    (lambda p: _rewrite(p, drop=b"labels"), "lacks b'labels'"),
], ids=["truncated", "wrong-shape", "bad-labels", "no-labels"])
def test_a_damaged_cifar_batch_is_one_error_naming_the_file(tmp_path, damage, fragment):
    root = images.write_cifar_like(tmp_path / "c", 40, 20)
    damage(root / "data_batch_3")
    run = _cifar_cfg(root)
    with pytest.raises(DataFileError) as err:
        datamod.DATA_MODELS["cifar10"].missing(run.data)
    assert f"'{root / 'data_batch_3'}'" in str(err.value) and fragment in str(err.value)


def test_more_images_than_the_files_hold_is_refused_before_training(cifar_dir):
    with pytest.raises(DataFileError, match="holds 40 training and 20 test images; the config "
                       "asks for data.n = 50"):
        datamod.DATA_MODELS["cifar10"].missing(_cifar_cfg(cifar_dir, n=50).data)


def _rewrite(path, data=None, labels=None, drop=None):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if data is not None:
        batch[b"data"] = data
    if labels is not None:
        batch[b"labels"] = labels
    batch.pop(drop, None)
    with open(path, "wb") as f:
        pickle.dump(batch, f)


@pytest.mark.parametrize("model, fragment", [
    ({"name": "resnet"}, "'model.name' = 'resnet': unknown (did you mean 'resnet18'?"),
    ({"name": "vgg16", "width": 3}, "'model.width': unknown key for model name 'vgg16'"),
    ({"name": "two_layer_cnn"}, "'model.name' = 'two_layer_cnn': reads patch, benign, "
                                "noisy_digits data, not 'cifar10'"),
    ({"name": "resnet18", "q": 3}, "'model.q': unknown key"),
])
def test_bad_network_choices_name_the_key(cifar_dir, model, fragment):
    with pytest.raises(ConfigError) as err:
        parse_run_config({"data": {"kind": "cifar10", "path": str(cifar_dir)}, "model": model,
                          "optimizer": {"name": "sgd", "lr": 0.1}})
    assert fragment in str(err.value)


def test_a_cifar_network_refuses_the_digits():
    with pytest.raises(ConfigError, match="'model.name' = 'resnet18': reads cifar10 data, not "
                       "'digits'"):
        parse_run_config({"data": DIGITS, "model": {"name": "resnet18"},
                          "optimizer": {"name": "sgd", "lr": 0.1}})


# --- networks --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, batch_norm, count", [
    ("resnet18", None, 11_173_962),   # the common CIFAR ResNet-18
    ("vgg16", True, 14_728_266),      # VGG-16 with batch norm, one linear layer
    ("vgg16", False, 14_719_818),     # the same less 2 x 4224 batch-norm scales and shifts
    ("alexnet", None, 2_472_266),     # the common CIFAR AlexNet
])
def test_parameter_counts_are_those_of_the_papers_networks(cifar_dir, name, batch_norm, count):
    model = {"name": name} | ({} if batch_norm is None else {"batch_norm": batch_norm})
    run = parse_run_config({"data": {"kind": "cifar10", "path": str(cifar_dir)}, "model": model,
                            "optimizer": {"name": "sgd", "lr": 0.1}})
    assert run.model.parameters(run.data) == count
    built = image_nets.build(run.model, run.data)
    assert sum(p.numel() for p in built.parameters()) == count


def test_small_cnn_count_by_hand():
    run = parse_run_config({"data": DIGITS, "model": {"name": "small_cnn", "width": 16},
                            "optimizer": {"name": "sgd", "lr": 0.1}})
    by_hand = (1 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 4 * 4 * 10 + 10)
    assert run.model.parameters(run.data) == by_hand
    assert NETWORKS["small_cnn"].layer_names(run) == ("features.0.weight", "features.2.weight",
                                                      "classifier.weight")


def test_initial_weights_depend_on_the_seed_alone():
    a = image_run(DIGITS, {"name": "small_cnn"}, {"name": "sgd", "lr": 0.1})
    b = image_run(DIGITS, {"name": "small_cnn"}, {"name": "adam", "lr": 1e-3}, seed=0)
    c = image_run(DIGITS, {"name": "small_cnn"}, {"name": "sgd", "lr": 0.1}, seed=1)
    assert torch.equal(image_nets.init_weights(a), image_nets.init_weights(b))
    assert not torch.equal(image_nets.init_weights(a), image_nets.init_weights(c))


# --- the module engine against plain torch loops ---------------------------------------------

def _plain_loop(run, opt_cls, opt_kwargs, x, y, x_test, y_test, crops=False, stats=None):
    """Train the network as a textbook torch loop: torch.optim, the run's batch order, and
    (with `crops`) the augmentation written with numpy slicing. Returns the final flat
    parameters and the test loss in eval mode."""
    net = image_nets.build(run.model, run.data).double()
    nn.utils.vector_to_parameters(image_nets.init_weights(run), net.parameters())
    opt = opt_cls(net.parameters(), **opt_kwargs)
    order, augment = generator(run.seed, "batch_order"), generator(run.seed, "augment")
    n, B = len(y), run.batch_size

    def prepare(images):
        images = images.astype(np.float64) / (255 if images.dtype == np.uint8 else 1)
        return images

    for _ in range(run.train.epochs):
        perm = order.permutation(n)
        for start in range(0, n, B):
            idx = perm[start:start + B]
            xb = prepare(x[idx])
            if crops:
                dy, dx = augment.integers(0, 9, size=(2, len(idx)))
                flip = augment.integers(0, 2, size=len(idx)).astype(bool)
                padded = np.pad(xb, ((0, 0), (0, 0), (4, 4), (4, 4)))
                xb = np.stack([padded[k, :, dy[k]:dy[k] + 32, dx[k]:dx[k] + 32]
                               for k in range(len(idx))])
                xb[flip] = xb[flip][..., ::-1]
            if stats is not None:
                xb = (xb - stats[0][None, :, None, None]) / stats[1][None, :, None, None]
            net.train()
            opt.zero_grad()
            F.cross_entropy(net(torch.from_numpy(np.ascontiguousarray(xb))),
                            torch.from_numpy(y[idx]).long()).backward()
            opt.step()
    net.eval()
    xt = prepare(x_test)
    if stats is not None:
        xt = (xt - stats[0][None, :, None, None]) / stats[1][None, :, None, None]
    with torch.no_grad():
        test_loss = F.cross_entropy(net(torch.from_numpy(xt)), torch.from_numpy(y_test).long())
    return nn.utils.parameters_to_vector(net.parameters()).detach(), float(test_loss)


PLAIN_CASES = {  # ours → (torch.optim class, its settings, ours)
    "sgd_momentum": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
                     {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    "adam": (torch.optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 1e-3},
             {"lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 1e-3}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.05},
              {"lr": 1e-3, "weight_decay": 0.05}),
}


@pytest.mark.parametrize("name", list(PLAIN_CASES))
def test_small_cnn_on_digits_matches_a_plain_torch_loop(name):
    cls, theirs, ours = PLAIN_CASES[name]
    runs = [image_run(DIGITS, {"name": "small_cnn", "width": 4}, {"name": name, **ours},
                      seed=seed, train={"batch_size": 16, "epochs": 3},
                      probes={"store_weights": True}) for seed in (0, 1)]
    results = train(runs)  # two seeds in lockstep: a ragged last batch (60 = 3 x 16 + 12)
    for run, result in zip(runs, results, strict=True):
        ds = datamod.generate(run.data, run.seed)
        W, test_loss = _plain_loop(run, cls, theirs, ds.train.x, ds.train.y, ds.test.x,
                                   ds.test.y)
        assert np.allclose(result.weights_final, W.numpy(), rtol=1e-10, atol=1e-13)
        assert result.probes["test_loss"][-1] == pytest.approx(test_loss, rel=1e-10)


@pytest.mark.slow  # 30 s: ResNet-18 in float64 on the CPU
def test_resnet18_with_batch_norm_crops_and_normalisation_matches_a_plain_loop(cifar_dir):
    run = image_run({"kind": "cifar10", "path": str(cifar_dir), "n": 12, "n_test": 6,
                     "augment": True, "normalize": True}, {"name": "resnet18"},
                    {"name": "adam", "lr": 1e-3}, train={"batch_size": 4, "epochs": 1},
                    probes={"store_weights": True, "linear_points": 1})
    (result,) = train([run])
    ds = datamod.generate(run.data, 0)
    pixels = ds.train.x.astype(np.float64) / 255
    stats = pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3))
    W, test_loss = _plain_loop(run, torch.optim.Adam, {"lr": 1e-3}, ds.train.x, ds.train.y,
                               ds.test.x, ds.test.y, crops=True, stats=stats)
    assert np.allclose(result.weights_final, W.numpy(), rtol=1e-9, atol=1e-12)
    # eval mode reads the running statistics the training steps updated
    assert result.probes["test_loss"][-1] == pytest.approx(test_loss, rel=1e-9)


def test_crop_and_flip_is_a_window_of_the_padded_image():
    from adamgen.engines.module_program import crop_and_flip

    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float64).reshape(2, 3, 32, 32)
    out = crop_and_flip(x, torch.tensor([0, 8]), torch.tensor([3, 4]), torch.tensor([False,
                                                                                     True]))
    padded = F.pad(x, (4, 4, 4, 4))
    assert torch.equal(out[0], padded[0, :, 0:32, 3:35])
    assert torch.equal(out[1], padded[1, :, 8:40, 4:36].flip(-1))


def test_same_seed_same_numbers_with_augmentation(cifar_dir):
    def once():
        run = image_run({"kind": "cifar10", "path": str(cifar_dir), "n": 40, "n_test": 20,
                         "augment": True}, {"name": "small_cnn", "width": 4},
                        {"name": "sgd_momentum", "lr": 0.01},
                        train={"batch_size": 8, "dtype": "float32"})
        return train([run])[0].probes

    first, second = once(), once()
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_bf16_autocast_trains_close_to_float32():
    def final(precision):
        run = image_run(DIGITS, {"name": "small_cnn"}, {"name": "adam", "lr": 1e-2},
                        train={"batch_size": 20, "epochs": 5, "dtype": "float32",
                               "precision": precision})
        return train([run])[0].probes["train_loss"]

    full, half = final("float32"), final("bf16")
    assert not np.array_equal(full, half)  # bf16 really ran
    assert half[0] == pytest.approx(full[0], rel=0.02)
    assert half[-1] == pytest.approx(full[-1], rel=0.1) and half[-1] < 0.8 * half[0]


def test_bf16_is_refused_where_no_engine_offers_it(tiny_raw):
    with pytest.raises(ConfigError, match="no engine can train this run: not fast: it has no "
                       "train.precision 'bf16' \\(read by: module\\); not linear: it has no "
                       "train.precision 'bf16' \\(read by: module\\); not torch: it has no "
                       "train.precision 'bf16' \\(read by: module\\); not module: "):
        parse_run_config(tiny_raw(train={"precision": "bf16", "dtype": "float32"}))


def test_hutchinson_rmed_per_weight_tensor():
    run = image_run(DIGITS, {"name": "small_cnn", "width": 4}, {"name": "sgd", "lr": 0.1},
                    probes={"extra": ["hessian"], "hessian_probes": 2, "hessian_examples": 30})
    (result,) = train([run])
    rmed = result.probes["rmed"]
    assert rmed.shape == (len(result.epochs), 3) and np.isfinite(rmed).all() and (rmed >= 1).all()


# --- checkpoints -----------------------------------------------------------------------------

class Killed(Exception):
    pass


@pytest.mark.parametrize("engine", ["module", *CNN_ENGINES])
def test_a_killed_job_resumes_from_its_checkpoint_with_the_same_numbers(
        engine, tiny, tmp_path, monkeypatch, caplog):
    if engine == "module":
        runs = [image_run(DIGITS, {"name": "small_cnn", "width": 4},
                          {"name": "adam", "lr": 1e-3}, seed=s,
                          train={"batch_size": 20, "epochs": 5, "checkpoint_every": 1},
                          probes={"store_weights": True, "linear_points": 5}) for s in (0, 1)]
    else:
        runs = [tiny(seed=s, optimizer={"name": "sgd", "lr": 0.5},
                     train={"engine": engine, "epochs": 25, "checkpoint_every": 5,
                            "batch_size": 10},
                     probes={"store_weights": True}) for s in (0, 1)]
    whole = train(runs)
    saved = tmp_path / "job.checkpoint"
    cls = engine_class(engine)
    advance = cls.advance

    def dies_midway(self, epoch0, perms, epochs):
        if epoch0 >= 3 * runs[0].train.checkpoint_every:
            raise Killed
        return advance(self, epoch0, perms, epochs)

    monkeypatch.setattr(cls, "advance", dies_midway)
    with pytest.raises(Killed):
        train(runs, checkpoint=saved)
    assert saved.exists()
    monkeypatch.setattr(cls, "advance", advance)
    caplog.set_level(logging.INFO, logger="adamgen")
    logging.getLogger("adamgen").addHandler(caplog.handler)
    resumed = train(runs, checkpoint=saved)
    epoch = 3 * runs[0].train.checkpoint_every
    assert f"resumed from checkpoint {saved} at epoch {epoch}/" in caplog.text
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(a.weights_final, b.weights_final)
        assert all(np.array_equal(a.probes[k], b.probes[k], equal_nan=True) for k in a.probes)


def engine_class(name):
    from adamgen.engines import ENGINES

    return ENGINES[name].program()


def test_a_checkpoint_of_other_runs_is_ignored(tiny, tmp_path, caplog):
    saved = tmp_path / "job.checkpoint"
    run = tiny(train={"epochs": 10, "checkpoint_every": 2})
    from adamgen import checkpoint as checkpoints

    checkpoints.save(saved, {"runs": "something else"})
    caplog.set_level(logging.INFO, logger="adamgen")
    logging.getLogger("adamgen").addHandler(caplog.handler)
    (result,) = train([run], checkpoint=saved)
    assert "belongs to other runs; starting from epoch 0" in caplog.text
    assert result.status == "completed"
