"""The benign-overfitting data model (Cao et al.), its signal-noise decomposition probes, and
what is refused for it."""

import math

import numpy as np
import pytest
import torch
import yaml

from adamgen import data as datamod
from adamgen import datafile
from adamgen.cli import main
from adamgen.config import parse_run_config
from adamgen.trainer import train

BENIGN = {"kind": "benign", "d": 50, "n": 20, "sigma_p": 0.2, "snr": 0.8, "n_test": 300}


def benign_raw(tiny_raw, **changes) -> dict:
    """The tiny run config with the benign data model in place of the patch model's data."""
    data = {**BENIGN, **changes.pop("data", {})}
    raw = tiny_raw(model={"q": 3, "m": 4, "c": 0.25, "sigma_0": 0.1}, **changes)
    raw["data"] = {k: v for k, v in data.items() if v is not None}
    return raw


@pytest.fixture
def benign(tiny_raw):
    return lambda **changes: parse_run_config(benign_raw(tiny_raw, **changes))


def test_the_data_are_a_signal_patch_and_noise_orthogonal_to_it(benign):
    run = benign()
    ds = datamod.generate(run.data, 0)
    mu = ds.signal
    assert np.linalg.norm(mu) == pytest.approx(0.8 * 0.2 * math.sqrt(50))  # ‖μ‖ = SNR σ_p √d
    for split in (ds.train, ds.test):
        assert np.array_equal(split.x[:, 0], split.y[:, None] * mu[None])  # y·μ, first patch
        assert np.abs(split.x[:, 1] @ mu).max() == 0  # ξ ⟂ μ
    assert (ds.train.y == 1).sum() == 10  # balanced
    noise = ds.train.xi[:, 0, 1:]
    assert noise.std() == pytest.approx(0.2, rel=0.1)  # N(0, σ_p²) off μ
    again = datamod.generate(run.data, 0)
    assert np.array_equal(again.train.x, ds.train.x) and np.array_equal(again.test.x, ds.test.x)


def test_snr_and_mu_norm_each_derive_the_other(benign):
    by_snr = benign().data
    by_norm = benign(data={"snr": None, "mu_norm": by_snr.mu_norm}).data
    assert by_norm.snr == pytest.approx(0.8)
    assert parse_run_config(benign().to_dict()).data == by_snr  # the stored config re-parses


def test_a_benign_data_file_round_trips(benign, tmp_path):
    run = benign()
    ds = datamod.generate(run.data, 3)
    datafile.save(ds, tmp_path / "d.nc")
    back = datafile.load(tmp_path / "d.nc")
    assert back.config == run.data and back.seed == 3
    assert np.array_equal(back.signal, ds.signal) and np.array_equal(back.train.xi, ds.train.xi)


@pytest.mark.parametrize("data, fragment", [
    ({"snr": -1.0}, "'data.snr' = -1.0: must be > 0"),
    ({"snr": 0.0}, "'data.snr' = 0.0: must be > 0"),
    ({"d": 15}, "'data.d' = 15: must be >= data.n + 1 = 21"),
    ({"s": 10}, "'data.s': unknown key for data kind 'benign'"),
    ({"alpha": 0.2}, "'data.alpha': unknown key for data kind 'benign'"),
    ({"snr": None}, "'data.snr' = None: is missing: set data.snr (or data.mu_norm"),
    ({"mu_norm": 5.0}, "'data.mu_norm' = 5.0: disagrees with data.snr = 0.8"),
], ids=["negative-snr", "zero-snr", "d-too-small", "patch-key-s", "patch-key-alpha",
        "no-snr", "both-disagree"])
def test_bad_benign_input_is_one_line_and_writes_nothing(tiny_raw, tmp_path, capsys, data,
                                                         fragment):
    raw = benign_raw(tiny_raw)
    raw["data"] = {k: v for k, v in {**raw["data"], **data}.items() if v is not None}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out" / "run.nc"
    assert main(["train", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.parent.exists()


def test_gradient_descent_stays_in_the_span_of_signal_and_noise(benign):
    """Slides / Cao et al.: W(t) = W(0) + j γ μ/‖μ‖² + Σ_i ρ_i ξ_i/‖ξ_i‖²; the recorded
    coefficients rebuild the final weights to rounding."""
    run = benign(optimizer={"name": "gd", "lr": 1.0, "weight_decay": 0.0}, train={"epochs": 200},
                 probes={"store_weights": True, "noise_memorization_full": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    assert np.abs(result.probes["decomposition_residual"]).max() < 1e-10
    gamma, rho = result.probes["signal_learning"][-1], result.probes["rho"][-1]
    mu, xi = ds.signal, ds.train.xi[:, 0]
    j = np.array([1, -1])[:, None, None]
    rebuilt = (result.weights_initial + j * gamma[..., None] * mu / (mu @ mu)
               + np.einsum("jri,id->jrd", rho, xi / (xi * xi).sum(1, keepdims=True)))
    delta = result.weights_final - result.weights_initial
    assert np.abs(rebuilt - result.weights_final).max() <= 1e-10 * np.abs(delta).max()
    assert np.abs(delta).max() > 0.05  # the weights really moved
    # ξ ⟂ μ: γ is the inner product with μ, with the sign of j
    np.testing.assert_allclose(gamma, j[..., 0] * (delta @ mu), rtol=1e-9, atol=1e-12)


def test_the_positive_and_negative_noise_summaries_follow_the_labels(benign):
    run = benign(optimizer={"name": "gd", "lr": 1.0, "weight_decay": 0.0}, train={"epochs": 100},
                 probes={"noise_memorization_full": True})
    (result,) = train([run])
    ds = datamod.generate(run.data, run.seed)
    rho = result.probes["rho"][-1]  # [2, m, n]
    for k, j in enumerate((1, -1)):
        own = rho[k].clip(min=0).max(axis=0)[ds.train.y == j]
        other = rho[k].clip(max=0).min(axis=0)[ds.train.y == -j]
        assert result.probes["rho_pos_min"][-1][k] == pytest.approx(own.min(), rel=1e-6)
        assert result.probes["rho_pos_max"][-1][k] == pytest.approx(own.max(), rel=1e-6)
        assert result.probes["rho_neg_min"][-1][k] == pytest.approx(other.min(), rel=1e-6)
        assert result.probes["rho_neg_max"][-1][k] == pytest.approx(other.max(), rel=1e-6)
    assert result.probes["rho_pos_max"][-1].max() > 0 > result.probes["rho_neg_min"][-1].min()


def test_adam_leaves_the_span(benign):
    run = benign(optimizer={"name": "adam", "lr": 1e-2}, train={"epochs": 50})
    (result,) = train([run])
    assert result.probes["decomposition_residual"][-1] > 1e-3


def test_the_decomposition_can_be_asked_for_on_the_patch_model(tiny):
    run = tiny(optimizer={"name": "gd", "lr": 0.5, "weight_decay": 0.0},
               probes={"extra": ["signal_noise"]})
    (result,) = train([run])
    assert "feature_learning" in result.probes and "signal_learning" in result.probes
    assert np.abs(result.probes["decomposition_residual"]).max() < 1e-8
    with pytest.raises(ValueError, match="'probes.extra' = \\['nothing'\\]: 'nothing' is not a "
                                         "probe set"):
        tiny(probes={"extra": ["nothing"]})
    with pytest.raises(ValueError, match="needs one noise vector per example"):
        tiny(data={"patches": 3}, probes={"extra": ["signal_noise"]})


def test_benign_runs_train_on_the_torch_engine_in_lockstep_across_data_sets(benign):
    runs = [benign(seed=s, data={"snr": snr}, optimizer={"name": "gd", "lr": 1.0},
                   train={"epochs": 30}) for s, snr in ((0, 0.5), (1, 0.8), (0, 1.2))]
    together = train(runs)
    assert together[0].timing["engine"] == "torch"
    for run, result in zip(runs, together, strict=True):
        (alone,) = train([run])
        for k in alone.probes:
            np.testing.assert_allclose(result.probes[k], alone.probes[k], rtol=1e-12, atol=0)
    assert torch.get_num_threads() >= 1
