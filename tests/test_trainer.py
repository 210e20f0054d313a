import numpy as np
import pytest
import torch
from conftest import CNN_ENGINES

from adamgen import data as datamod
from adamgen.models.two_layer_cnn import from_filters, loss_and_grad, to_filters
from adamgen.seeding import generator
from adamgen.trainer import train


@pytest.fixture(params=CNN_ENGINES)
def tiny(request, tiny):
    """Every test here runs once per engine."""
    engine = request.param

    def make(**changes):
        changes["train"] = {**changes.get("train", {}), "engine": engine}
        return tiny(**changes)

    make.engine = engine
    return make


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_same_config_and_seed_give_the_same_numbers(tiny):
    run = tiny(train={"batch_size": 5})
    (a,), (b,) = train([run]), train([run])
    _same(a.probes, b.probes)


def test_lockstep_equals_one_run_at_a_time(tiny):
    runs = [tiny(seed=0, optimizer={"name": "adam", "lr": 1e-3}, train={"batch_size": 5}),
            tiny(seed=1, optimizer={"name": "adam", "lr": 3e-3, "weight_decay": 0.0},
                 train={"batch_size": 5}, model={"sigma_0": 0.1}),
            tiny(seed=0, optimizer={"name": "adam", "lr": 1e-2, "betas": [0.5, 0.9]},
                 train={"batch_size": 5}, data={"alpha": 0.5})]
    together = train(runs)
    for run, result in zip(runs, together, strict=True):
        (alone,) = train([run])
        for k in alone.probes:
            np.testing.assert_allclose(result.probes[k], alone.probes[k], rtol=1e-12, atol=0)
        assert result.timing["runs_in_lockstep"] == 3


def test_every_optimizer_of_a_seed_starts_from_the_same_point(tiny):
    names = [("adam", 1e-3), ("gd", 0.1), ("signsgd", 1e-3), ("adagrad", 0.1)]
    results = [train([tiny(optimizer={"name": n, "lr": lr}, probes={"store_weights": True})])[0]
               for n, lr in names]
    for r in results[1:]:
        np.testing.assert_array_equal(r.weights_initial, results[0].weights_initial)
        for k in r.probes:
            np.testing.assert_array_equal(r.probes[k][0], results[0].probes[k][0], err_msg=k)
        assert not np.array_equal(r.weights_final, results[0].weights_final)


def test_an_epoch_is_a_fresh_permutation_cut_into_batches(tiny):
    """Two epochs of SGD with B = n/4, replayed by hand from the seed's batch-order stream."""
    run = tiny(seed=3, optimizer={"name": "sgd", "lr": 0.5, "weight_decay": 0.01},
               train={"batch_size": 5, "epochs": 2}, probes={"store_weights": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    x, y = torch.tensor(ds.train.x)[None], torch.tensor(ds.train.y)[None]
    W = from_filters(torch.tensor(result.weights_initial)[None])  # the network's layout
    order = generator(run.seed, "batch_order")
    for _ in range(2):
        for idx in torch.from_numpy(order.permutation(run.data.n)).split(5):
            g = loss_and_grad(W, x[:, idx], y[:, idx], run.model)[1] + 0.01 * W
            W = W - 0.5 * g
    np.testing.assert_allclose(result.weights_final, to_filters(W)[0].numpy(), rtol=1e-12,
                               atol=1e-15)
    assert not np.allclose(result.weights_final, result.weights_initial)


def test_probes_match_a_direct_computation_from_the_weights(tiny):
    run = tiny(optimizer={"name": "adamw", "lr": 3e-3, "weight_decay": 0.5},
               probes={"store_weights": True, "noise_memorization_full": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    W = result.weights_final  # [2, m, d]
    last = {k: v[-1] for k, v in result.probes.items()}
    np.testing.assert_allclose(last["feature_learning"][0], W[0, :, 0], rtol=1e-12)
    np.testing.assert_allclose(last["feature_learning"][1], -W[1, :, 0], rtol=1e-12)
    inner = np.einsum("jmd,id->jmi", W, ds.train.xi[:, 0])  # ⟨w_{j,r}, ξ_i⟩
    np.testing.assert_allclose(last["noise_memorization"], inner, rtol=1e-12)
    for j, label in enumerate((1, -1)):
        own = inner[j][:, ds.train.y == label].max(axis=0)  # max_r, for i with y_i = j
        np.testing.assert_allclose(last["noise_memorization_min"][j], own.min(), rtol=1e-12)
        np.testing.assert_allclose(last["noise_memorization_max"][j], own.max(), rtol=1e-12)
    # AdamW's objective has no L2 term: the probed gradient is the data gradient alone
    _, g = loss_and_grad(from_filters(torch.tensor(W)[None]), torch.tensor(ds.train.x)[None],
                         torch.tensor(ds.train.y)[None], run.model)
    np.testing.assert_allclose(last["grad_norm_l1"], g.abs().sum().item(), rtol=1e-10)
    np.testing.assert_allclose(last["weight_norm"], np.linalg.norm(W), rtol=1e-12)
    F = np.einsum("jmd,ipd->ijmp", W, ds.test.x).clip(min=0) ** 3
    F = F.sum(axis=(2, 3))
    test_error = ((F[:, 0] - F[:, 1]) * ds.test.y <= 0).mean()
    assert last["test_error"] == pytest.approx(test_error, abs=1e-12)


def test_coupled_weight_decay_enters_the_probed_gradient(tiny):
    run = tiny(optimizer={"name": "adam", "lr": 3e-3, "weight_decay": 0.5},
               probes={"store_weights": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    W = from_filters(torch.tensor(result.weights_final)[None])
    _, g = loss_and_grad(W, torch.tensor(ds.train.x)[None], torch.tensor(ds.train.y)[None],
                         run.model)
    expected = (g + 0.5 * W).pow(2).sum().sqrt().item()
    np.testing.assert_allclose(result.probes["grad_norm_l2"][-1], expected, rtol=1e-10)


def test_a_diverging_run_stops_and_leaves_its_neighbours_alone(tiny):
    good = tiny(optimizer={"name": "sgd", "lr": 0.1, "weight_decay": 0.0},
                train={"batch_size": 5, "dtype": "float32"})
    bad = tiny(optimizer={"name": "sgd", "lr": 1.0, "weight_decay": 0.0},
               train={"batch_size": 5, "dtype": "float32"}, model={"sigma_0": 1e9})
    ok, blown = train([good, bad])
    assert blown.status == "diverged" and blown.diverged_epoch == 1
    assert np.isfinite(blown.probes["weight_norm"][0])
    assert np.all(np.isnan(blown.probes["train_loss"][1:]))
    assert ok.status == "completed" and ok.diverged_epoch is None
    (alone,) = train([good])
    if tiny.engine == "batched":  # one product evaluates every run of a data set: the float32
        for k in ok.probes:  # probes of a run alone round differently in the last bits
            np.testing.assert_allclose(ok.probes[k], alone.probes[k], rtol=1e-6, err_msg=k)
        np.testing.assert_array_equal(ok.probes["weight_norm"], alone.probes["weight_norm"])
    else:
        _same(ok.probes, alone.probes)
    (only_bad,) = train([bad])
    assert only_bad.status == "diverged" and only_bad.timing["steps"] < 4 * bad.train.epochs


def test_runs_that_cannot_share_a_program_are_refused(tiny):
    with pytest.raises(ValueError, match="lockstep"):
        train([tiny(), tiny(train={"batch_size": 10})])
