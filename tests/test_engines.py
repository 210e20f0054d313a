"""An engine is an object: a new one is a module and a row of adamgen.engines.ENGINES, and the
run config, the planner, the trainer and `adamgen train` take it from there."""

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import TINY
from toy_engine import ToyEngine

from adamgen.cli import main
from adamgen.config import parse_run_config
from adamgen.engines import ENGINES, choose, refusal
from adamgen.errors import ConfigError
from adamgen.planner import lockstep_groups, merge, plan
from adamgen.trainer import train


@pytest.fixture
def toy(monkeypatch):
    """The toy engine's row, registered for one test."""
    monkeypatch.setitem(ENGINES, "toy", ToyEngine())
    return ENGINES["toy"]


def test_a_registered_engine_trains_through_adamgen_train(toy, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(merge(TINY, {"train": {"engine": "toy", "batch_size": 5}})))
    program = toy.program()
    before = program.steps
    assert main(["train", str(config), "--out", str(tmp_path / "toy.nc")]) == 0
    assert program.steps - before == 30 * 4  # 30 epochs of n/B = 4 steps
    config.write_text(yaml.safe_dump(merge(TINY, {"train": {"engine": "torch",
                                                            "batch_size": 5}})))
    assert main(["train", str(config), "--out", str(tmp_path / "torch.nc")]) == 0
    with (xr.open_dataset(tmp_path / "toy.nc") as a,
          xr.open_dataset(tmp_path / "torch.nc") as b):
        assert a.attrs["engine"] == "toy" and b.attrs["engine"] == "torch"
        for name in ("train_loss", "test_error", "feature_learning", "weight_norm"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_the_planner_reads_a_registered_engine_from_its_declaration(toy):
    config = {"runs_per_job": 3,
              "experiments": {"e": {"base": {k: v for k, v in TINY.items()
                                             if k not in ("optimizer", "seed")},
                                    "grid": {"seed": [0, 1, 2, 3]},
                                    "optimizers": {"adam": {"optimizer": {"lr": 1e-3}}}}},
              "every_run": {"train": {"engine": "toy"}}}
    groups = lockstep_groups(plan(config), 3)
    assert sorted(len(g.runs) for g in groups) in ([1, 3], [2, 2])  # hash buckets of <= 3
    assert all(g.threads == 2 for g in groups)  # the toy's `threads`, not the torch engine's
    run = groups[0].runs[0].config
    assert choose(run) == (toy, "asked for")
    size = len(groups[0].runs)
    assert groups[0].memory_mb() == int(toy.memory(run, size, size, 14).host.total / 2**20) + 1


def test_a_registered_engine_is_checked_and_refused_like_the_others(toy):
    cuda = merge(TINY, {"train": {"engine": "toy", "device": "cuda"}})
    with pytest.raises(ConfigError, match="'train.engine' = 'toy': cannot train this run: it "
                                          "runs on the CPU"):
        parse_run_config(cuda)
    bf16 = parse_run_config(merge(TINY, {"train": {"precision": "float32"}}))
    assert refusal(toy, bf16) is None
    with pytest.raises(ConfigError, match="'train.engine' = 'tyo': must be one of: auto, fast, "
                                          r"linear, torch, module, toy \(did you mean 'toy'\?\)"):
        parse_run_config(merge(TINY, {"train": {"engine": "tyo"}}))


def test_without_its_row_the_engine_is_unknown():
    with pytest.raises(ConfigError, match="'train.engine' = 'toy': must be one of"):
        parse_run_config(merge(TINY, {"train": {"engine": "toy"}}))


def test_every_engine_declares_its_keys_and_the_train_section_holds_them():
    from dataclasses import fields

    from adamgen.config import TrainConfig

    train = {f.name: f for f in fields(TrainConfig)}
    for engine in ENGINES.values():
        for name, key in engine.keys.items():
            assert train[name].default == key.default
            assert train[name].metadata["doc"] == key.doc


def test_an_old_engine_name_trains_on_the_engine_it_became(tiny):
    (result,) = train([tiny(train={"engine": "reference"})])
    assert result.timing["engine"] == "torch"


@pytest.mark.parametrize("optimizer", [
    {"name": "adam", "lr": 1e-2, "betas": [0.9, 0.81]},
    {"name": "adam", "lr": 3e-3, "weight_decay": 1e-3},
    {"name": "sgd_momentum", "lr": 0.05, "weight_decay": 1e-3},
    {"name": "gd", "lr": 0.1},
])
def test_the_linear_engine_steps_as_the_torch_engine(optimizer):
    """The linear engine's kernels (full-batch steps from Λ = XᵀX/n and A = Xᵀy/n) against
    the network's torch implementation, 300 steps of two runs on their own data sets: every
    stored weight within 1e-10 relative, every probe (the Hessian diagonal's R_med and the
    Jiang window's quantities among them) within 1e-9."""
    from adamgen.trainer import train

    def runs(engine):
        return [parse_run_config({
            "seed": seed, "data": {"kind": "whitened", "d": 8, "n": 12, "n_test": 20},
            "model": {"name": "two_layer_linear", "alpha": 1.0}, "optimizer": optimizer,
            "train": {"epochs": 300, "dtype": "float64", "engine": engine},
            "probes": {"per_decade": 4, "store_weights": True,
                       "extra": ["hessian", "jiang_window"]}}) for seed in (0, 1)]

    fast, reference = train(runs("linear")), train(runs("torch"))
    for a, b in zip(fast, reference, strict=True):
        assert a.timing["engine"] == "linear" and b.timing["engine"] == "torch"
        scale = np.abs(b.weights_final).max()
        np.testing.assert_allclose(a.weights_final, b.weights_final, rtol=0,
                                   atol=1e-10 * scale)
        for name in b.probes:
            np.testing.assert_allclose(a.probes[name], b.probes[name], rtol=1e-9, atol=1e-14,
                                       err_msg=name)


def test_auto_takes_the_linear_engine_for_full_batch_float64_runs_only():
    from adamgen.engines import choose

    base = {"data": {"kind": "whitened", "d": 8, "n": 8}, "model": {"name": "two_layer_linear"},
            "optimizer": {"name": "adam", "lr": 1e-2}}
    assert choose(parse_run_config({**base, "train": {"dtype": "float64"}}))[0].name == "linear"
    engine, why = choose(parse_run_config(base))  # float32: the torch engine, saying why
    assert engine.name == "torch" and "not linear: it computes in float64" in why
