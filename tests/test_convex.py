"""The convex counterpart (E3, docs/science.md §6): Newton's minimiser and the Adam/GD fits."""

import numpy as np
import pytest

from adamgen import convex, data
from adamgen.config import parse_run_config


@pytest.fixture(scope="module")
def small():
    cfg = parse_run_config({"data": {"d": 40, "n": 20, "s": 6, "sigma_p": 0.4, "alpha": 0.2,
                                     "n_test": 300}, "optimizer": {"name": "gd", "lr": 0.1}})
    return data.generate(cfg.data, 3)


def test_the_minimiser_zeroes_the_regularised_gradient(small):
    X = small.train.x.reshape(20, -1)
    y = small.train.y.astype(float)
    lam = 0.03
    w = convex.minimiser(X, y, lam)
    s = 1.0 / (1.0 + np.exp(y * (X @ w)))
    grad = -(X.T @ (y * s)) / len(y) + lam * w
    assert np.linalg.norm(grad) < 1e-12 and np.linalg.norm(w) > 0.1


def test_adam_and_gd_converge_to_the_same_solution(small):
    settings = convex.ConvexSettings(0.05, 4000, {"adam": {"lr": 1e-2}, "gd": {"lr": 1.0}})
    fit = convex.fit(small, settings)
    final = fit.isel(step=-1)
    assert list(fit["optimizer"].values) == ["adam", "gd"]
    assert (final["distance_to_optimum"] < 1e-3).all()
    assert float(final["distance"]) < 1e-3 < float(fit["distance"].max())
    assert float(final["test_error"].sel(optimizer="adam")) == \
        float(final["test_error"].sel(optimizer="gd")) == float(fit["test_error_optimum"])
    # the trajectory is recorded on a log-spaced schedule that starts at 0 and ends at T
    assert fit["step"].values[0] == 0 and fit["step"].values[-1] == 4000
    assert float(fit["train_error"].sel(optimizer="gd").isel(step=0)) == 1.0  # ties at w = 0


def test_the_summary_stacks_seeds_and_keeps_final_values(small):
    settings = convex.ConvexSettings(0.05, 50, {"adam": {"lr": 1e-2}, "gd": {"lr": 1.0}})
    fits = {0: convex.fit(small, settings), 5: convex.fit(small, settings)}
    s = convex.summarize(fits, "e")
    assert list(s["seed"].values) == [0, 5]
    assert s["final_distance"].dims == ("seed",)
    np.testing.assert_array_equal(s["final_test_error"].sel(seed=0),
                                  fits[0]["test_error"].isel(step=-1))


def test_an_unknown_optimizer_setting_is_rejected(small):
    from adamgen import planner as ex
    from adamgen.errors import ConfigError

    spec = {"convex": {"c": {"data": {"d": 40, "n": 20, "s": 6}, "seeds": [0],
                             "weight_decay": 0.1, "steps": 10,
                             "optimizers": {"adam": {"lr": 1e-2, "momentum": 0.9}}}}}
    with pytest.raises(ConfigError, match=r"convex\.c\.optimizers\.adam\.momentum"):
        ex.plan_convex(spec)
    spec["convex"]["c"]["optimizers"] = {"adamm": {}}
    with pytest.raises(ConfigError, match=r"convex\.c\.optimizers\.adamm"):
        ex.plan_convex(spec)


def test_a_fit_file_is_named_by_its_settings_and_data(tmp_path, monkeypatch):
    """The reliability issue's case: after `steps: 100, gd lr: 1.0` became `steps: 300,
    lr: 0.1`, the workflow reran the fit job, which found the old seed0.nc and kept it (rc 0,
    a summary reporting steps 100). Fit files are content-addressed now, as run files are: a
    changed setting or data set is a new file, the same settings the same file."""
    import copy

    from adamgen import jobs
    from adamgen import planner as ex

    spec = {"convex": {"c": {"data": {"d": 40, "n": 20, "s": 6}, "seeds": [0, 1],
                             "weight_decay": 0.1, "steps": 100,
                             "optimizers": {"adam": {"lr": 1e-2}, "gd": {"lr": 1.0}}}}}
    first = ex.plan_convex(spec)["c"]
    assert first.fit_path(0) != first.fit_path(1)
    assert ex.plan_convex(copy.deepcopy(spec))["c"].fit_path(0) == first.fit_path(0)
    changed = copy.deepcopy(spec)
    changed["convex"]["c"].update(steps=300)
    changed["convex"]["c"]["optimizers"]["gd"]["lr"] = 0.1
    second = ex.plan_convex(changed)["c"]
    assert second.fit_path(0) != first.fit_path(0)
    other_data = copy.deepcopy(spec)
    other_data["convex"]["c"]["data"]["s"] = 7
    assert ex.plan_convex(other_data)["c"].fit_path(0) != first.fit_path(0)
    assert first.seed_of(first.fit_path(1).rsplit("/", 1)[1].removesuffix(".nc")) == 1
    # the job keeps a finished file only where its path names its content
    monkeypatch.chdir(tmp_path)
    from adamgen import datafile

    path = ex.data_path(first.data_runs[0])
    datafile.save(data.generate(first.data_runs[0].data, 0), path)
    assert jobs.convex_job(path, first.settings, first.fit_path(0))
    assert jobs.convex_job(path, second.settings, second.fit_path(0))  # not kept: fitted
    assert not jobs.convex_job(path, first.settings, first.fit_path(0))  # the same: kept
    import xarray as xr

    with xr.open_dataset(second.fit_path(0)) as fit:
        assert int(fit["step"].values[-1]) == 300
