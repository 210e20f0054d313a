import numpy as np
import pytest
import xarray as xr

from adamgen import data as datamod
from adamgen import datafile
from adamgen.errors import DataFileError


def test_same_seed_gives_the_same_arrays_bit_for_bit(tiny):
    cfg = tiny().data
    a, b = datamod.generate(cfg, 7), datamod.generate(cfg, 7)
    for split in ("train", "test"):
        for name in ("x", "y", "signal_patch"):
            assert np.array_equal(getattr(getattr(a, split), name),
                                  getattr(getattr(b, split), name))
    assert not np.array_equal(a.train.x, datamod.generate(cfg, 8).train.x)


def test_test_set_comes_from_an_independent_stream(tiny):
    # changing the training set's size must not change the test set
    a = datamod.generate(tiny().data, 3)
    b = datamod.generate(tiny(data={"n": 40}).data, 3)
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.x[:5], a.test.x[:5])


def test_structure_matches_the_definition(tiny):
    cfg = tiny(data={"n": 400, "n_test": 2000, "d": 200, "s": 30, "alpha": 0.3}).data
    ds = datamod.generate(cfg, 0)
    for split in (ds.train, ds.test):
        n = len(split.y)
        rows = np.arange(n)
        signal = split.x[rows, split.signal_patch]
        noise = split.x[rows, 1 - split.signal_patch]
        assert np.array_equal(signal, split.y[:, None] * ds.signal[None, :])
        assert np.allclose(noise[:, 0], -cfg.alpha * split.y)  # ξ[1] = −α y
        assert np.all((noise[:, 1:] != 0).sum(axis=1) == cfg.s)  # s-sparse, off coordinate 1
    assert np.array_equal(ds.train.xi[:, 0], ds.train.x[np.arange(cfg.n),
                                                        1 - ds.train.signal_patch])
    assert (ds.train.y == 1).sum() == cfg.n // 2  # balanced
    assert 0.45 < (ds.test.y == 1).mean() < 0.55  # Rademacher
    assert 0.45 < (ds.test.signal_patch == 0).mean() < 0.55  # signal patch uniform
    values = ds.test.x[np.arange(cfg.n_test), 1 - ds.test.signal_patch, 1:]
    values = values[values != 0]
    assert abs(values.std() / cfg.sigma_p - 1) < 0.03
    counts = (ds.test.x[:, :, 1:] != 0).sum(axis=(0, 1))  # every coordinate of {2..d} is used
    assert counts.min() > 0.5 * counts.mean()


def test_more_patches_hold_independent_noise(tiny):
    cfg = tiny(data={"patches": 3}).data
    ds = datamod.generate(cfg, 1)
    assert ds.train.x.shape == (cfg.n, 3, cfg.d) and ds.train.xi.shape == (cfg.n, 2, cfg.d)
    signal_count = (ds.train.x == ds.train.y[:, None, None] * ds.signal).all(axis=2).sum(axis=1)
    assert np.all(signal_count == 1)
    assert not np.array_equal(ds.train.xi[:, 0], ds.train.xi[:, 1])


def test_netcdf_round_trip_is_exact(tiny, tmp_path):
    cfg = tiny().data
    ds = datamod.generate(cfg, 5)
    path = tmp_path / "data.nc"
    datafile.save(ds, path)
    back = datafile.load(path)
    assert back.config == cfg and back.seed == 5
    for split in ("train", "test"):
        for name in ("x", "y", "signal_patch"):
            assert np.array_equal(getattr(getattr(back, split), name),
                                  getattr(getattr(ds, split), name))
    assert np.array_equal(back.train.xi, ds.train.xi)
    opened = xr.open_dataset(path, engine="netcdf4")
    assert opened.attrs["sigma_p"] == cfg.sigma_p and opened["x"].dims == ("i", "patch", "k")
    opened.close()
    assert [p.name for p in tmp_path.iterdir()] == ["data.nc"]  # no temporary left behind


def test_loading_a_wrong_file_names_it(tmp_path, tiny):
    with pytest.raises(DataFileError, match="missing.nc' does not exist"):
        datafile.load(tmp_path / "missing.nc")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(DataFileError, match="junk.nc' is not a readable NetCDF"):
        datafile.load(tmp_path / "junk.nc")
    xr.Dataset({"z": ("a", [1, 2])}).to_netcdf(tmp_path / "other.nc", engine="netcdf4")
    with pytest.raises(DataFileError, match="other.nc' is not an adamgen data file"):
        datafile.load(tmp_path / "other.nc")
    titled = xr.Dataset({"z": ("a", [1, 2])}, attrs={"title": "adamgen data set: a fake"})
    titled.to_netcdf(tmp_path / "titled.nc", engine="netcdf4")
    with pytest.raises(DataFileError, match="titled.nc' lacks"):
        datafile.load(tmp_path / "titled.nc")


def test_a_data_file_only_feeds_its_own_run(tiny):
    ds = datamod.generate(tiny().data, 0)
    datafile.check_matches(ds, tiny(), "d.nc")
    with pytest.raises(DataFileError, match="seed 0, but the run has seed 1"):
        datafile.check_matches(ds, tiny(seed=1), "d.nc")
    with pytest.raises(DataFileError, match="data.alpha = 0.2, but the run has 0.5"):
        datafile.check_matches(ds, tiny(data={"alpha": 0.5}), "d.nc")
