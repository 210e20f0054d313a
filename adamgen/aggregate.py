"""One experiment's runs combined into a summary along named grid dimensions.

The summary has one dimension per grid axis (optimizer, batch_size, weight_decay, ..., seed),
plus `epoch` and `j`. Which variables it holds follows from the runs' probe sets
(adamgen.probes): each declares how its variables are summarized.

    <variable>(grid..., epoch[, j])    a scalar trajectory, or a per-class summary such as
                                       feature_learning_max = max_r ⟨w_{j,r}, j v⟩
    final_<variable>(grid...[, j])     the same at each run's last epoch
    in_grid(grid...)                   1 where the cell's optimizer has this grid point: cells
                                       outside an optimizer's own axes are NaN, and a mean over
                                       an axis should be taken over in_grid cells only
    run_path, status, diverged_epoch   which file each cell came from, and how it ended
    final_weights(grid..., j, r, k)    the final weights, when every run stored them

Settings that every run shares are scalar coordinates (model_q, data_n, ...). Runs of
different lengths share the union of their probe epochs; a run is NaN at epochs it did not
probe (with the default schedule that is only the other runs' final epochs).
"""

import json

import numpy as np
import xarray as xr

from . import runfile
from ._io import CONVENTIONS, history, open_netcdf, write_netcdf
from .config import dim_name, key_doc
from .errors import DataFileError
from .probes import variables


def _summarized(ds: xr.Dataset, run) -> dict[str, tuple[xr.DataArray, str, str]]:
    """summary name → (trajectory, long name, units) of one run file."""
    out = {}
    for name, var in variables(run).items():
        if var.summary is None:
            continue
        series = ds[name].max(list(var.summary)) if var.summary else ds[name]
        long_name = (f"max over {', '.join(var.summary)} of {var.long_name}" if var.summary
                     else var.long_name)
        out[var.summarized(name)] = (series, long_name, var.units)
    return out


def _coordinate_values(values: list) -> np.ndarray:
    """An axis's values as a coordinate; None (setting absent for that optimizer) → NaN/''."""
    if all(isinstance(v, str) or v is None for v in values):
        return np.array(["" if v is None else v for v in values])
    return np.array([np.nan if v is None else v for v in values])


def _settings(runs: list[tuple], dims: list[str], grid: list[str], shape: tuple,
              cells: list[tuple]) -> dict:
    """The runs' settings (their scalar coordinates, the grid's axes left out): one value
    where every run shares it, else a coordinate over the grid's cells (NaN, or '' for text,
    where a cell has no run or its run has no such setting), so that a selection of the grid
    reads its runs' own settings (the learning rate of one optimizer, say)."""
    names = sorted(set().union(*(set(ds.coords) for ds in runs)) - set(dims))
    out = {}
    for name in names:
        having = [ds for ds in runs if name in ds.coords and ds[name].ndim == 0]
        if not having:
            continue
        attrs = dict(having[0][name].attrs)
        values = [ds[name].item() if name in ds.coords else None for ds in runs]
        if len(having) == len(runs) and len(set(values)) == 1:
            out[name] = ((), values[0], attrs)
            continue
        text = any(isinstance(v, str) for v in values)
        column = np.full(shape, "" if text else np.nan, dtype=object if text else float)
        for cell, value in zip(cells, values, strict=True):
            if value is not None:
                column[cell] = value
        out[name] = (grid, column.astype(str) if text else column, attrs)
    return out


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
        runs.append((entry, ds, _summarized(ds, runfile.run_config(ds, entry["path"]))))
    epochs = np.array(sorted(set().union(*(ds["epoch"].values.tolist() for _, ds, _ in runs))))

    meta = {}  # summary name → (kept dims, long name, units), in the order the runs declare
    kept_coords = {}  # j, layer, ...: the same in every run of an experiment
    for _, ds, series in runs:
        for name, (values, long_name, units) in series.items():
            kept = tuple(d for d in values.dims if d != "epoch")
            meta.setdefault(name, (kept, long_name, units))
            for d in kept:
                kept_coords.setdefault(d, ds[d])
    traj = {n: np.full(shape + (len(epochs),) + tuple(kept_coords[d].size for d in kept),
                       np.nan) for n, (kept, _, _) in meta.items()}
    final = {n: np.full(shape + tuple(kept_coords[d].size for d in kept), np.nan)
             for n, (kept, _, _) in meta.items()}
    with_weights = (all("weights_final" in ds for _, ds, _ in runs)
                    and len({ds["weights_final"].shape for _, ds, _ in runs}) == 1)
    if with_weights:
        weights = np.full(shape + runs[0][1]["weights_final"].shape, np.nan)
    paths = np.full(shape, "", dtype=object)
    status = np.full(shape, "", dtype=object)
    diverged_epoch = np.full(shape, -1, dtype=np.int64)
    cells = []
    for entry, ds, series in runs:
        cell = tuple(values.index(entry["coords"][axis]) for axis, values in axes.items())
        cells.append(cell)
        if paths[cell]:  # two runs of one grid point: one of them would vanish from every output
            point = ", ".join(f"{k}={v}" for k, v in entry["coords"].items())
            raise DataFileError(f"run files '{paths[cell]}' and '{entry['path']}' fall into one "
                                f"cell ({point}) of experiment '{manifest['name']}': their "
                                "settings differ only in what is not a grid axis; make it one")
        where = np.searchsorted(epochs, ds["epoch"].values)
        for name, (values, _, _) in series.items():
            traj[name][cell][where] = values.values
            final[name][cell] = values.values[-1]
        if with_weights:
            weights[cell] = ds["weights_final"].values
        paths[cell] = entry["path"]
        status[cell] = ds.attrs["status"]
        diverged_epoch[cell] = ds.attrs["diverged_epoch"]

    data_vars = {}
    for name, (kept, long_name, units) in meta.items():
        attrs = {"long_name": long_name, "units": units}
        data_vars[name] = ((*dims, "epoch", *kept), traj[name], attrs)
        data_vars[f"final_{name}"] = ((*dims, *kept), final[name],
                                      {**attrs, "long_name": f"final {long_name}"})
    if with_weights:
        data_vars["final_weights"] = ((*dims, *runs[0][1]["weights_final"].dims), weights,
                                      {"long_name": "final parameters of the network",
                                       "units": "1"})
    data_vars["in_grid"] = (dims, (status != "").astype(np.int8), {
        "long_name": "whether the cell's optimizer has this grid point", "units": "1",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "outside_the_optimizers_grid in_the_grid"})
    data_vars["run_path"] = (dims, paths.astype(str), {"long_name": "run file of the cell"})
    data_vars["status"] = (dims, status.astype(str), {"long_name": "completed, diverged or ''"})
    data_vars["diverged_epoch"] = (dims, diverged_epoch, {
        "long_name": "epoch from which the run's probes are NaN (a loss or norm became "
                     "infinite or NaN); -1 where it completed or was not run", "units": "1"})
    coords = {dim_name(a): (dim_name(a), _coordinate_values(v),
                            {"long_name": key_doc(dim_name(a)), "units": "1"})
              for a, v in axes.items()}
    coords |= {"epoch": ("epoch", epochs, {"long_name": "training epoch", "units": "1"})}
    coords |= {d: (d, c.values, dict(c.attrs)) for d, c in kept_coords.items()}
    coords |= _settings([ds for _, ds, _ in runs], [*dims, "epoch", *kept_coords], dims,
                        shape, cells)
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"adamgen summary of experiment {manifest['name']}",
        "Conventions": CONVENTIONS,
        "history": history(f"summarized {len(runs)} runs"),
        "experiment": manifest["name"],
        "description": manifest.get("description", ""),
        "grid_dims": json.dumps(dims),
        "runs": len(runs),
    })


def save(summary: xr.Dataset, path) -> None:
    encoding = {n: {"zlib": True, "complevel": 4} for n, v in summary.data_vars.items()
                if v.dtype.kind == "f"}
    # CF: a coordinate variable has no missing values, so no _FillValue either
    encoding |= {n: {"_FillValue": None} for n, c in summary.coords.items()
                 if c.dtype.kind == "f"}
    write_netcdf(summary, path, encoding)


def load(path) -> xr.Dataset:
    """An experiment's summary, read into memory."""
    return open_netcdf(path, "summary", ("status", "run_path"))


def grid_dims(summary: xr.Dataset) -> list[str]:
    return json.loads(summary.attrs["grid_dims"])
