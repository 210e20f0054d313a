"""One experiment's runs combined into a summary along named grid dimensions.

The summary has one dimension per grid axis (optimizer, batch_size, weight_decay, ..., seed),
plus `epoch` and `j`. Grid cells without a run (say, Adam's λ values under AdamW) are NaN.

    <trajectory>(grid..., epoch)       train/test loss and error, gradient and weight norms
    feature_learning_max(grid..., epoch, j)          max_r ⟨w_{j,r}, j v⟩
    noise_memorization_min/max(grid..., epoch, j)
    final_<name>(grid...[, j])         the same at each run's last epoch
    run_path, status(grid...)          which file each cell came from, and how it ended
    diverged_epoch(grid...)            where a run diverged (its values from then on are NaN)
    final_weights(grid..., j, r, k)    the final weights, when every run stored them
                                       (probes.store_weights)

Runs of different lengths share the union of their probe epochs; a run is NaN at epochs it did
not probe (with the default schedule that is only the other runs' final epochs).
"""

import json

import numpy as np
import xarray as xr

from . import runfile
from ._io import open_netcdf, write_netcdf
from .experiments import dim_name
from .probes import VARIABLES

SCALARS = ("train_loss", "test_loss", "train_error", "test_error", "grad_norm_l1",
           "grad_norm_l2", "weight_norm")
PER_CLASS = ("feature_learning_max", "noise_memorization_min", "noise_memorization_max")


def _series(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    out = {name: ds[name] for name in SCALARS}
    out["feature_learning_max"] = ds["feature_learning"].max("r")
    out["noise_memorization_min"] = ds["noise_memorization_min"]
    out["noise_memorization_max"] = ds["noise_memorization_max"]
    return out


def _coordinate_values(values: list) -> np.ndarray:
    """An axis's values as a coordinate; None (setting absent for that optimizer) → NaN/''."""
    if all(isinstance(v, str) or v is None for v in values):
        return np.array(["" if v is None else v for v in values])
    return np.array([np.nan if v is None else v for v in values])


def summarize(manifest: dict) -> xr.Dataset:
    """Read every run named in an experiment manifest (see `Experiment.manifest`)."""
    axes = manifest["axes"]
    dims = [dim_name(a) for a in axes]
    shape = tuple(len(v) for v in axes.values())
    runs = []
    for entry in manifest["runs"]:
        ds = runfile.load(entry["path"])
        point = ", ".join(f"{k}={v}" for k, v in entry["coords"].items())
        runfile.check_provenance(ds, entry["path"], entry["hash"], f"({point})")
        runs.append((entry, ds))
    epochs = np.array(sorted(set().union(*(ds["epoch"].values.tolist() for _, ds in runs))))

    traj = {n: np.full(shape + (len(epochs),), np.nan) for n in SCALARS}
    traj |= {n: np.full(shape + (len(epochs), 2), np.nan) for n in PER_CLASS}
    final = {n: np.full(shape, np.nan) for n in SCALARS}
    final |= {n: np.full(shape + (2,), np.nan) for n in PER_CLASS}
    with_weights = (all("weights_final" in ds for _, ds in runs)
                    and len({ds["weights_final"].shape for _, ds in runs}) == 1)
    if with_weights:
        weights = np.full(shape + runs[0][1]["weights_final"].shape, np.nan)
    paths = np.full(shape, "", dtype=object)
    status = np.full(shape, "", dtype=object)
    diverged_epoch = np.full(shape, -1, dtype=np.int64)
    for entry, ds in runs:
        cell = tuple(values.index(entry["coords"][axis]) for axis, values in axes.items())
        where = np.searchsorted(epochs, ds["epoch"].values)
        for name, series in _series(ds).items():
            traj[name][cell][where] = series.values
            final[name][cell] = series.values[-1]
        if with_weights:
            weights[cell] = ds["weights_final"].values
        paths[cell] = entry["path"]
        status[cell] = ds.attrs["status"]
        diverged_epoch[cell] = ds.attrs["diverged_epoch"]

    data_vars = {}
    for name in SCALARS:
        long_name = VARIABLES[name][1]
        data_vars[name] = ((*dims, "epoch"), traj[name], {"long_name": long_name})
        data_vars[f"final_{name}"] = (dims, final[name], {"long_name": f"final {long_name}"})
    for name in PER_CLASS:
        long_name = ("max_r <w_{j,r}, j v>" if name == "feature_learning_max"
                     else VARIABLES[name][1])
        data_vars[name] = ((*dims, "epoch", "j"), traj[name], {"long_name": long_name})
        data_vars[f"final_{name}"] = ((*dims, "j"), final[name],
                                      {"long_name": f"final {long_name}"})
    if with_weights:
        data_vars["final_weights"] = ((*dims, "j", "r", "k"), weights,
                                      {"long_name": "final weights w_(j,r)"})
    data_vars["run_path"] = (dims, paths.astype(str), {"long_name": "run file of the cell"})
    data_vars["status"] = (dims, status.astype(str), {"long_name": "completed, diverged or ''"})
    data_vars["diverged_epoch"] = (dims, diverged_epoch, {
        "long_name": "epoch from which the run's probes are NaN (a loss or norm became "
                     "infinite or NaN); -1 where it completed or was not run"})
    shared = {}  # settings every run shares, for the figures' theory lines
    for key in ("model_q", "data_n", "model_sigma_0"):
        values = {ds.attrs.get(key) for _, ds in runs}
        if len(values) == 1 and None not in values:
            shared[key] = values.pop()
    coords = {dim_name(a): (dim_name(a), _coordinate_values(v)) for a, v in axes.items()}
    coords |= {"epoch": ("epoch", epochs, {"units": "epoch"}),
               "j": ("j", np.array([1, -1], dtype=np.int8))}
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"adamgen summary of experiment {manifest['name']}",
        "experiment": manifest["name"],
        "description": manifest.get("description", ""),
        "grid_dims": json.dumps(dims),
        "runs": len(runs),
        **shared,
    })


def save(summary: xr.Dataset, path) -> None:
    encoding = {n: {"zlib": True, "complevel": 4} for n, v in summary.data_vars.items()
                if v.dtype.kind == "f"}
    write_netcdf(summary, path, encoding)


def load(path) -> xr.Dataset:
    """An experiment's summary, read into memory."""
    return open_netcdf(path, "summary", ("status", "run_path"))


def grid_dims(summary: xr.Dataset) -> list[str]:
    return json.loads(summary.attrs["grid_dims"])
