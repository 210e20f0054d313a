"""Anyone's optimizer: a torch.optim.Optimizer named by its import path trains as adamgen's own
rows do, each run with its own instance over its own parameters (adamgen.optim.external)."""

import numpy as np
import pytest
import xarray as xr

from adamgen import planner, runfile
from adamgen.cli import main
from adamgen.config import parse_run_config
from adamgen.errors import AdamgenError, ConfigError
from adamgen.identity import run_hash, run_id
from adamgen.trainer import train

BASE = {"data": {"d": 60, "n": 20, "s": 8, "sigma_p": 0.35, "alpha": 0.2, "n_test": 100},
        "model": {"q": 3, "m": 4, "sigma_0": 0.05},
        "probes": {"per_decade": 4, "store_weights": True}}


def runs(optimizer: dict, batch_size: int = 5, epochs: int = 75, dtype: str = "float64",
         seeds=(0, 1)) -> list:
    return [parse_run_config({**BASE, "seed": s, "optimizer": optimizer,
                              "train": {"epochs": epochs, "batch_size": batch_size,
                                        "dtype": dtype}}) for s in seeds]


@pytest.mark.parametrize("ours, theirs", [
    ({"name": "adam", "lr": 1e-2, "weight_decay": 1e-3},
     {"name": "torch.optim.Adam", "lr": 1e-2, "weight_decay": 1e-3}),
    ({"name": "adamw", "lr": 1e-2, "weight_decay": 0.1},
     {"name": "torch.optim.AdamW", "lr": 1e-2, "weight_decay": 0.1}),
    ({"name": "sgd", "lr": 0.3, "weight_decay": 1e-3},
     {"name": "torch.optim.SGD", "lr": 0.3, "weight_decay": 1e-3}),
    ({"name": "sgd_momentum", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
     {"name": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    ({"name": "adagrad", "lr": 0.05, "weight_decay": 1e-3},
     {"name": "torch.optim.Adagrad", "lr": 0.05, "weight_decay": 1e-3}),
], ids=["Adam", "AdamW", "SGD", "SGD momentum", "Adagrad"])
def test_torch_optim_through_the_door_reproduces_adamgens_rows(ours, theirs):
    """torch.optim's own optimizers given by import path against adamgen's rows: the same
    data, initialisation and batch order, 300 steps of two runs in float64, every stored
    weight within 1e-10 relative (the door hands each optimizer the run's own filter banks
    and the data gradient, its weight decay its own)."""
    a, b = train(runs(ours)), train(runs(theirs))
    for x, y in zip(a, b, strict=True):
        assert y.timing["engine"] == "torch" and x.timing["steps"] == 300
        scale = np.abs(x.weights_final).max()
        np.testing.assert_allclose(y.weights_final, x.weights_final, rtol=0,
                                   atol=1e-10 * scale)


def test_each_run_has_its_own_optimizer_over_its_own_filter_banks():
    """Two runs of different learning rates in one group: each ends where it ends alone."""
    together = train(runs({"name": "outside.signum:Signum", "lr": 1e-3}, seeds=(0,))
                     + runs({"name": "outside.signum:Signum", "lr": 3e-3}, seeds=(1,)))
    apart = [train(runs({"name": "outside.signum:Signum", "lr": lr}, seeds=(s,)))[0]
             for s, lr in ((0, 1e-3), (1, 3e-3))]
    for x, y in zip(together, apart, strict=True):
        np.testing.assert_array_equal(x.weights_final, y.weights_final)


def test_lbfgs_gets_a_closure_it_may_call_again():
    (result,) = train(runs({"name": "torch.optim.LBFGS", "lr": 0.1, "max_iter": 4},
                           batch_size=20, epochs=10, seeds=(0,)))
    assert result.status == "completed"
    assert result.probes["train_loss"][-1] < 0.5 * result.probes["train_loss"][0]


def test_an_optimizer_with_modes_is_probed_in_eval_mode_and_steps_in_train_mode():
    """A schedule-free optimizer's evaluation weights are not its iterates: the probes and the
    final weights read them in eval mode, and it steps in train mode again (it raises if it
    is asked to step in eval mode)."""
    (averaged,) = train(runs({"name": "outside.signum:Averaging", "lr": 0.05}, seeds=(0,)))
    (plain,) = train(runs({"name": "torch.optim.SGD", "lr": 0.05}, seeds=(0,)))
    assert averaged.status == "completed"
    assert not np.allclose(averaged.weights_final, plain.weights_final)
    assert averaged.probes["train_loss"][-1] > plain.probes["train_loss"][-1]  # the average lags


@pytest.mark.parametrize("optimizer, key, fragment", [
    ({"name": "nowhere.opt:Mine", "lr": 1e-3}, "optimizer.name",
     "does not import: No module named 'nowhere'"),
    ({"name": "torch.nn.Linear"}, "optimizer.name", "is not a torch.optim.Optimizer subclass"),
    ({"name": "torch.optim.NAdamm", "lr": 1e-3}, "optimizer.name", "did you mean 'NAdam'?"),
    ({"name": "outside.signum:Signum", "lr": 1e-3, "momentun": 0.9}, "optimizer.momentun",
     "is not an argument of outside.signum:Signum (did you mean 'momentum'?"),
    ({"name": "outside.signum:Signum", "lr": float("nan")}, "optimizer.lr",
     "must be a finite number"),
])
def test_a_bad_outside_optimizer_is_one_line_naming_it(optimizer, key, fragment):
    with pytest.raises(ConfigError) as err:
        runs(optimizer, seeds=(0,))
    assert err.value.key == key and fragment in str(err.value)


def test_the_command_line_refuses_a_bad_optimizer_writing_nothing(tmp_path, capsys):
    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**BASE, "optimizer": {"name": "torch.optim.NAdam",
                                                            "lr": 1e-3}}))
    out = tmp_path / "run.nc"
    assert main(["train", str(config), "--set", "optimizer.name=outside.signum:Signm",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'outside.signum' has no 'Signm' (did you mean 'Signum'?)" in err[0]
    assert not out.exists()


def test_a_step_that_raises_names_the_optimizer_and_the_step():
    with pytest.raises(AdamgenError, match=r"optimizer outside.signum:Exploding raised at step "
                                           r"3 \(epoch 1\) of run 0 of its group: RuntimeError: "
                                           "the moment estimate went negative"):
        train(runs({"name": "outside.signum:Exploding", "lr": 1e-3}, seeds=(0,)))


def test_a_step_that_writes_nan_marks_the_run_diverged():
    (result,) = train(runs({"name": "outside.signum:Poisoning", "lr": 1e-3}, seeds=(0,)))
    assert result.status == "diverged" and result.diverged_epoch is not None
    assert np.isnan(result.probes["test_error"][-1])


def test_the_identity_holds_the_path_the_kwargs_and_the_package(tmp_path):
    """A changed optimizer never reuses an old run file: its package's version (or its source
    file's hash, for a module of no installed package) enters the run's hash, and the run file
    records the import path, the kwargs and the package."""
    (run,) = runs({"name": "outside.signum:Signum", "lr": 1e-3}, seeds=(0,))
    assert run.optimizer["package"].startswith("outside (source sha256 ")
    assert run_id(run).startswith("outside_signum_signum/B5-lr0.001-wd0-T75-seed0-")
    other = parse_run_config({**run.to_dict(), "optimizer": {**run.optimizer,
                                                             "package": "outside 2.0"}})
    assert run_hash(other) != run_hash(run)
    assert run_hash(parse_run_config(run.to_dict())) == run_hash(run)  # it round-trips
    (result,) = train([run])
    path = tmp_path / "run.nc"
    runfile.save(result, path)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["optimizer_kind"].startswith(
            "outside.signum:Signum (outside (source sha256 ")
        assert "its own weight decay; the objective is the plain loss" in ds.attrs[
            "optimizer_kind"]
        assert runfile.run_config(ds).optimizer == run.optimizer


def test_a_workflow_grid_sweeps_an_outside_optimizers_arguments():
    config = {"experiments": {"e": {
        "base": {k: v for k, v in BASE.items() if k != "probes"},
        "grid": {"seed": [0]},
        "optimizers": {"torch.optim.NAdam": {"optimizer": {"lr": 1e-3},
                                             "grid": {"lr": [1e-3, 1e-2], "beta1": [0.8, 0.9]}}},
    }}}
    planned = planner.plan(config)["e"].runs
    assert sorted((r.coords["lr"], r.coords["beta1"]) for r in planned) == [
        (1e-3, 0.8), (1e-3, 0.9), (1e-2, 0.8), (1e-2, 0.9)]
    assert all(r.path.startswith("results/runs/torch_optim_nadam/") for r in planned)
