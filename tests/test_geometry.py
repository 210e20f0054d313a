"""Curvature (Jiang et al.'s R_med) and partial adaptivity (Padam's p)."""

import numpy as np
import pytest
import torch

from adamgen.config import parse_run_config
from adamgen.models import CNNConfig, LinearConfig
from adamgen.models import two_layer_cnn as cnn
from adamgen.models import two_layer_linear as linear
from adamgen.probes.hessian import hutchinson_diagonal, summaries
from adamgen.trainer import train


def _autograd_diagonal(loss, W):
    """The exact diagonal from the full Hessian, one run at a time (small sizes only)."""
    out = []
    for r in range(W.shape[0]):
        def one(w, r=r):
            return loss(w.reshape((1,) + W.shape[1:]), r).sum()

        H = torch.autograd.functional.hessian(one, W[r].reshape(-1))
        out.append(H.diagonal().reshape(W.shape[1:]))
    return torch.stack(out)


@pytest.mark.parametrize("model, shared", [
    (CNNConfig(q=3, m=3, c=0.7), False), (CNNConfig(q=2.5, m=2), True),
    (CNNConfig(q=3, m=2, activation="huber", h=0.3), False), (CNNConfig(q=4, m=2), False)],
    ids=["relu3-scaled", "relu2.5-shared-inputs", "huber", "relu4"])
def test_the_cnns_analytic_diagonal_is_autograds(model, shared):
    g = torch.Generator().manual_seed(0)
    R, N, P, d = 2, 7, 3, 5
    x = torch.randn((N, P, d) if shared else (R, N, P, d), generator=g, dtype=torch.float64)
    y = (torch.randint(0, 2, (N,) if shared else (R, N), generator=g) * 2 - 1).to(torch.int8)
    W = cnn.from_filters(0.8 * torch.randn(R, 2, model.m, d, generator=g, dtype=torch.float64))

    def loss(w, r):
        return cnn.mean_loss(w, x if shared else x[r:r + 1], y if shared else y[r:r + 1], model)

    expected = _autograd_diagonal(loss, W)
    ours = cnn.hessian_diagonal(W, x, y, model, elements=64)  # several chunks
    assert torch.allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert expected.abs().max() > 0.1


def test_the_linear_networks_analytic_diagonal_is_autograds():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(2, 6, 5, generator=g, dtype=torch.float64)
    x = torch.randn(2, 9, 1, 5, generator=g, dtype=torch.float64)
    y = torch.randn(2, 9, generator=g, dtype=torch.float64)

    def loss(w, r):
        return linear.mean_loss(w, x[r:r + 1], y[r:r + 1], LinearConfig())

    expected = _autograd_diagonal(loss, W)
    assert torch.allclose(linear.hessian_diagonal(W, x, y, LinearConfig()), expected,
                          rtol=1e-10, atol=1e-12)
    # and the gradient is autograd's
    Wg = W.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(linear.mean_loss(Wg, x, y, None).sum(), Wg)
    assert torch.allclose(linear.loss_and_grad(W, x, y, None)[1], auto, rtol=1e-12)


def test_hutchinson_converges_to_the_exact_diagonal_as_one_over_sqrt_probes():
    g = torch.Generator().manual_seed(2)
    model = CNNConfig(q=3, m=3)
    x = torch.randn(1, 20, 2, 8, generator=g, dtype=torch.float64)
    y = (torch.randint(0, 2, (1, 20), generator=g) * 2 - 1).to(torch.int8)
    W = cnn.from_filters(0.7 * torch.randn(1, 2, 3, 8, generator=g, dtype=torch.float64))
    exact = cnn.hessian_diagonal(W, x, y, model)

    def error(probes, trials=8):
        errors = []
        for t in range(trials):
            gens = [torch.Generator().manual_seed(100 + t)]
            est = hutchinson_diagonal(lambda w: cnn.mean_loss(w, x, y, model).sum(), W, probes,
                                      gens)
            errors.append(float((est - exact).norm() / exact.norm()))
        return float(np.mean(errors))

    small, large = error(16), error(256)
    assert large < small / 2.5  # 1/√probes predicts a factor 4
    assert small * np.sqrt(16) == pytest.approx(large * np.sqrt(256), rel=0.6)


def test_rmed_is_max_over_median_per_layer():
    H = torch.tensor([[1.0, -2.0, 4.0, 8.0, 0.5, 3.0]], dtype=torch.float64)
    out = summaries(H, [H[:, :4], H[:, 4:]])
    # lower median of |1, 2, 4, 8| is 2; of |0.5, 3| is 0.5
    assert out["rmed"].tolist() == [[8.0 / 2.0, 3.0 / 0.5]]
    assert out["rmed_damped"][0, 0] == pytest.approx(8.0 / (2.0 + 0.008))
    assert out["hessian_diagonal_quantiles"].shape == (1, 2, 7)


def test_the_hessian_probe_set_records_the_objectives_diagonal(tiny):
    """Coupled weight decay adds λ to every entry; AdamW's objective has none."""
    from adamgen import data as datamod

    for name, coupled in (("adam", True), ("adamw", False)):
        run = tiny(optimizer={"name": name, "lr": 1e-2, "weight_decay": 0.3},
                   probes={"extra": ["hessian"], "store_weights": True})
        (result,) = train([run])
        ds = datamod.generate(run.data, run.seed)
        W = cnn.from_filters(torch.tensor(result.weights_final)[None])
        H = cnn.hessian_diagonal(W, torch.tensor(ds.train.x)[None],
                                 torch.tensor(ds.train.y)[None], run.model) + 0.3 * coupled
        out = summaries(H, cnn.layer_values(H))
        np.testing.assert_allclose(result.probes["rmed"][-1], out["rmed"][0].numpy(), rtol=1e-9)


def test_hessian_settings_are_checked(tiny):
    with pytest.raises(ValueError, match="'probes.hessian_probes' = 8: applies to the 'hessian' "
                                         "probe set"):
        tiny(probes={"hessian_probes": 8})
    run = tiny(probes={"extra": ["hessian"], "hessian_probes": 8}, train={"epochs": 3})
    (result,) = train([run])
    assert np.isfinite(result.probes["rmed"]).all()


def test_jiangs_linear_network_trains_on_whitened_data():
    run = parse_run_config({"data": {"kind": "whitened", "d": 8, "n": 16},
                            "model": {"name": "two_layer_linear"},
                            "optimizer": {"name": "adam", "lr": 0.02}, "train": {"epochs": 300},
                            "probes": {"extra": ["hessian"], "per_decade": 4}})
    from adamgen import data as datamod

    ds = datamod.generate(run.data, run.seed)
    x = ds.train.x[:, 0]
    np.testing.assert_allclose(x.T @ x / len(x), np.eye(8), atol=1e-12)  # whitened
    (result,) = train([run])
    assert result.probes["train_error"][-1] < 1e-3 < result.probes["train_error"][0]
    assert result.probes["rmed"].shape[-1] == 2  # W1, w2
    with pytest.raises(ValueError, match="'model.name' = 'two_layer_cnn': reads patch, benign, "
                                         "noisy_digits data, not 'whitened'"):
        parse_run_config({"data": {"kind": "whitened"}, "optimizer": {"name": "gd", "lr": 1}})


def test_the_window_of_jiangs_theorem_is_read_off_the_weights():
    """The jiang_window probes against the proof's definitions, on weights set by hand:
    E = W_1^T w_2 − A; SGD+M's window opens at max |w| >= d^(-alpha/2) and closes at
    max_j E_j >= −sqrt(d^(1 − alpha/4)); Adam's opens once W_1 is rank 1 and closes at
    max_j E_j >= −sqrt(eta d)."""
    from adamgen.probes import jiang_window

    d, alpha = 4, 1.0
    A = torch.tensor([[1.0, 0.5, 2.0, 1.0]], dtype=torch.float64)
    u, v = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.5, 0.2, 0.1, 0.4])
    W = torch.zeros(1, d + 1, d, dtype=torch.float64)
    W[0, :d] = torch.outer(u, v)  # rank 1
    W[0, d] = torch.tensor([0.3, 0.1, 0.0, 0.0])  # w_2
    E = (W[0, :d].T @ W[0, d] - A[0])
    hyper = {"hyper": {"lr": torch.tensor([0.5], dtype=torch.float64)}}
    for name, opening, closing in (
            ("sgd_momentum", 0.5 >= d ** -0.5, float(E.max()) >= -(d ** 0.75) ** 0.5),
            ("adam", True, float(E.max()) >= -(0.5 * d) ** 0.5)):
        state = jiang_window.State(A=A, optimizer=name, alpha=alpha, d=d)
        out = jiang_window.record(state, W, hyper)
        assert float(out["residual_max"]) == pytest.approx(float(E.max()))
        assert float(out["w_max"]) == 0.5 and float(out["rank1"]) == pytest.approx(1.0)
        assert float(out["window_open"]) == float(opening), name
        assert float(out["window_close"]) == float(closing), name
    other = jiang_window.record(jiang_window.State(A=A, optimizer="gd", alpha=alpha, d=d), W,
                                hyper)
    assert torch.isnan(other["window_open"]).all()
    run = parse_run_config({"data": {"kind": "whitened", "d": 4, "n": 8},
                            "model": {"name": "two_layer_linear"},
                            "optimizer": {"name": "sgd_momentum", "lr": 0.05},
                            "train": {"epochs": 30},
                            "probes": {"extra": ["jiang_window"], "per_decade": 4}})
    (result,) = train([run])
    assert set(result.probes["window_open"]) <= {0.0, 1.0}
    # a probe set of the linear network only
    with pytest.raises(ValueError, match="'jiang_window' cannot be recorded here"):
        parse_run_config({"optimizer": {"name": "adam", "lr": 1e-3},
                          "probes": {"extra": ["jiang_window"]}})


def test_padam_at_half_power_is_amsgrad_on_the_fast_engine(tiny):
    """The equivalence the optimizer tests prove for the transforms (as ε → 0, where Padam's
    ε and AMSGrad's sit alike), on the fused kernel."""
    runs = [tiny(optimizer={"name": "padam", "lr": 1e-3, "p": 0.5, "eps": 1e-300},
                 train={"engine": "fast", "batch_size": 5}),
            tiny(optimizer={"name": "amsgrad", "lr": 1e-3, "eps": 1e-300},
                 train={"engine": "fast", "batch_size": 5})]
    padam, amsgrad = (train([r])[0] for r in runs)
    for k in padam.probes:
        np.testing.assert_allclose(padam.probes[k], amsgrad.probes[k], rtol=1e-12, atol=1e-15,
                                   err_msg=k)


def test_padam_at_zero_power_is_ema_momentum_on_the_fast_engine(tiny):
    """p = 0, ε = 0, no bias correction: W ← W − η m with m ← β1 m + (1 − β1)(g + λW)."""
    from adamgen import data as datamod
    from adamgen.seeding import generator

    run = tiny(optimizer={"name": "padam", "lr": 0.5, "p": 0.0, "eps": 0.0,
                          "bias_correction": False, "weight_decay": 0.01},
               train={"engine": "fast", "batch_size": 5, "epochs": 3},
               probes={"store_weights": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    x, y = torch.tensor(ds.train.x)[None], torch.tensor(ds.train.y)[None]
    W, m = cnn.from_filters(torch.tensor(result.weights_initial)[None]), 0
    order = generator(run.seed, "batch_order")
    for _ in range(3):
        for idx in torch.from_numpy(order.permutation(run.data.n)).split(5):
            g = cnn.loss_and_grad(W, x[:, idx], y[:, idx], run.model)[1] + 0.01 * W
            m = 0.9 * m + 0.1 * g
            W = W - 0.5 * m
    np.testing.assert_allclose(result.weights_final, cnn.to_filters(W)[0].numpy(), rtol=1e-10,
                               atol=1e-13)
