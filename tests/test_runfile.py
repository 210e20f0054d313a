import json

import numpy as np
import pytest
import xarray as xr

from adamgen import runfile
from adamgen.errors import DataFileError
from adamgen.trainer import train


def test_run_file_speaks_the_papers_language(tiny, tmp_path):
    run = tiny(probes={"noise_memorization_full": True, "store_weights": True})
    (result,) = train([run])
    path = tmp_path / "run.nc"
    runfile.save(result, path)
    ds = xr.open_dataset(path, engine="netcdf4")
    assert ds["feature_learning"].dims == ("epoch", "j", "r")
    assert ds["noise_memorization"].dims == ("epoch", "j", "r", "i")
    assert ds["noise_memorization_min"].dims == ("epoch", "j")
    for name in ("train_loss", "test_loss", "train_error", "test_error", "grad_norm_l1",
                 "grad_norm_l2", "weight_norm"):
        assert ds[name].dims == ("epoch",)
        assert ds[name].attrs["long_name"] and "units" in ds[name].attrs
    assert ds["j"].values.tolist() == [1, -1]
    assert ds["epoch"].values.tolist() == result.epochs.tolist()
    assert ds["weights_final"].dims == ("j", "r", "k")
    assert ds.attrs["status"] == "completed" and ds.attrs["diverged_epoch"] == -1
    assert ds["lr"].item() == 1e-3 and ds["batch_size"].item() == 20
    assert ds["lr"].attrs["long_name"] == "learning rate η" and ds.attrs["Conventions"]
    for key in ("adamgen_version", "git_commit", "torch_version", "device", "dtype",
                "wall_time_s", "steps_per_second"):
        assert key in ds.attrs
    assert runfile.run_config(ds) == run
    assert json.loads(ds.attrs["config"]) == run.to_dict()
    assert ds["feature_learning"].encoding["zlib"]
    ds.close()


def test_default_run_file_stays_under_a_megabyte(tmp_path):
    from adamgen.config import parse_run_config

    # the paper's model and probe schedule; a small data set keeps the test quick
    run = parse_run_config({"optimizer": {"name": "adam", "lr": 5e-5},
                            "data": {"d": 100, "n": 20, "s": 10, "n_test": 100},
                            "train": {"epochs": 10000, "batch_size": 20}})
    (result,) = train([run])
    runfile.save(result, tmp_path / "run.nc")
    assert (tmp_path / "run.nc").stat().st_size < 1_000_000


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tiny, tmp_path, monkeypatch):
    (result,) = train([tiny(train={"epochs": 3})])
    path = tmp_path / "run.nc"
    path.write_text("a finished result from before")

    def broken(self, target, **kwargs):
        with open(target, "w") as f:
            f.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        runfile.save(result, path)
    assert path.read_text() == "a finished result from before"
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]


def test_diverged_runs_are_written_with_their_status(tiny, tmp_path):
    bad = tiny(optimizer={"name": "sgd", "lr": 1.0, "weight_decay": 0.0},
               train={"batch_size": 5, "dtype": "float32"}, model={"sigma_0": 1e9})
    (result,) = train([bad])
    runfile.save(result, tmp_path / "bad.nc")
    ds = runfile.load(tmp_path / "bad.nc")
    assert ds.attrs["status"] == "diverged" and ds.attrs["diverged_epoch"] == 1
    assert np.isnan(ds["train_loss"].values[1:]).all()


def test_loading_something_else_is_an_error(tmp_path):
    xr.Dataset({"z": ("a", [1.0])}).to_netcdf(tmp_path / "x.nc", engine="netcdf4")
    with pytest.raises(DataFileError, match="x.nc' is not an adamgen run file"):
        runfile.load(tmp_path / "x.nc")
    xr.Dataset({"z": ("a", [1.0])}, attrs={"title": "adamgen run: a fake"}).to_netcdf(
        tmp_path / "y.nc", engine="netcdf4")
    with pytest.raises(DataFileError, match="y.nc' lacks"):
        runfile.load(tmp_path / "y.nc")
