"""Data set files: one NetCDF file per (data settings, seed), drawn once and read by every run
that uses it [docs/science.md §1]. A file holds the training and test splits, the noise
vectors and the signal vector the probes read, and the data settings as attributes; reading
one checks that it is a data file and that it was drawn with the settings of the run it feeds.
"""

import json
from pathlib import Path

import xarray as xr

from ._io import CONVENTIONS, history, open_netcdf, write_netcdf, zlib
from ._version import __version__
from .config import parse_section, section_dict
from .data import DATA_MODELS, Dataset, Split
from .errors import DataFileError

_ARRAYS = {  # variable → (split, field, dims, long_name)
    "x": ("train", "x", ("i", "patch", "k"), "training inputs x_i = [x_i1, ..., x_iP]"),
    "y": ("train", "y", ("i",), "training labels y_i"),
    "signal_patch": ("train", "signal_patch", ("i",), "index of the patch holding the signal"),
    "xi": ("train", "xi", ("i", "noise_patch", "k"), "noise vectors ξ_i"),
    "x_test": ("test", "x", ("i_test", "patch", "k"), "test inputs"),
    "y_test": ("test", "y", ("i_test",), "test labels"),
    "signal_patch_test": ("test", "signal_patch", ("i_test",), "index of the test signal patch"),
}
_REQUIRED = ("x", "y", "x_test", "y_test")


def _plain(value):
    return int(value) if isinstance(value, bool) else value


def to_xarray(data: Dataset) -> xr.Dataset:
    variables = {}
    for name, (split, field, dims, long_name) in _ARRAYS.items():
        value = getattr(getattr(data, split), field)
        if value is not None:
            variables[name] = (dims, value, {"long_name": long_name, "units": "1"})
    if data.signal is not None:
        variables["signal"] = (("k",), data.signal, {
            "long_name": "signal vector (v of the patch model, μ of the benign model)",
            "units": "1"})
    settings = section_dict(data.config)
    return xr.Dataset(variables, attrs={
        "title": f"adamgen data set: {DATA_MODELS[data.kind].doc}",
        "Conventions": CONVENTIONS,
        "history": history(f"drawn from the '{data.kind}' model, seed {data.seed}"),
        "source": DATA_MODELS[data.kind].reference,
        "seed": data.seed,
        **{k: _plain(v) for k, v in settings.items() if v is not None},
        "data_config": json.dumps(settings),
        "adamgen_version": __version__,
    })


def save(data: Dataset, path) -> None:
    ds = to_xarray(data)
    encoding = zlib(ds)
    for name in ("x", "xi", "x_test"):
        if name in ds:
            dims = ds[name].shape
            encoding[name]["chunksizes"] = (min(500, dims[0]),) + dims[1:]
    write_netcdf(ds, path, encoding)


def load(path: str | Path) -> Dataset:
    """A data file, checked: readable, holding what a data set holds, with a valid config."""
    ds = open_netcdf(path, "data file", _REQUIRED)
    try:
        raw = json.loads(ds.attrs["data_config"])
        cfg = parse_section(raw, "data")
        seed = int(ds.attrs["seed"])
    except (KeyError, TypeError, ValueError) as err:  # ConfigError is a ValueError
        raise DataFileError(f"data file '{path}' has no valid data_config/seed ({err})") from None

    def split(name: str) -> Split:
        get = {field: ds[var].values for var, (s, field, _, _) in _ARRAYS.items()
               if s == name and var in ds}
        return Split(x=get["x"], y=get["y"], signal_patch=get.get("signal_patch"),
                     xi=get.get("xi"))

    signal = ds["signal"].values if "signal" in ds else None
    return Dataset(config=cfg, seed=seed, train=split("train"), test=split("test"), signal=signal)


def check_matches(data: Dataset, run, path) -> None:
    """A data file may only feed a run whose data section and seed it was generated from."""
    if data.seed != run.seed:
        raise DataFileError(f"data file '{path}' was generated with seed {data.seed}, "
                            f"but the run has seed {run.seed}")
    if data.kind != run.data.kind:
        raise DataFileError(f"data file '{path}' holds a '{data.kind}' data set, but the run "
                            f"asks for '{run.data.kind}'")
    for key, value in vars(run.data).items():
        if getattr(data.config, key) != value:
            raise DataFileError(f"data file '{path}' was generated with data.{key} = "
                                f"{getattr(data.config, key)!r}, but the run has {value!r}")

