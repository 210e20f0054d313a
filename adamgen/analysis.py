"""Analysis after the run: run files combined in one call, and the phase boundary of E7.

    open_runs("results/runs")                 every run file under a directory (or a glob, a
                                              list of files, or an experiment of a config)
    open_runs(experiment="zou_e1")            exactly the runs of one experiment of the plan
    final(runs), at_epoch(runs, 1000)         each run's last values, or its values at an epoch
    shared_epochs(runs)                       runs probed at the same epochs, along `epoch`

Each run keeps its own probe epochs: runs are stacked along `run`, their probes along `probe`,
and `epoch(run, probe)` says which epoch each probe is (NaN past a run's last probe; the CF
"incomplete multidimensional array" layout). No value is NaN only because another run was
probed at an epoch this one was not. Every run file carries each setting that shapes its
numbers (`optimizer`, `lr`, `batch_size`, `weight_decay`, `beta1`, `seed`, `model_sigma_0`,
...), which become coordinates along `run`; where the settings that differ form a full grid,
`run` unfolds into one dimension per setting.

The files are read with netCDF4 directly (a few ms each; several processes share a large set)
into arrays held in memory: 8 bytes per recorded value (tens of kB per run of the shipped
configs, `benchmarks/bench_open_runs.py`). `lazy=True` opens them with dask through xarray
instead, for sets larger than memory (slower to open).
"""

import glob
import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from ._io import check_kind
from .config import coordinates, key_doc
from .errors import DataFileError
from .planner import plan, read_workflow_config

# from this many files on, several processes read them (each reads a few hundred per second)
PARALLEL_FROM = 400


def _files(paths) -> list[str]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files = []
    for item in items:
        text = str(item)
        matches = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        for match in matches:
            if Path(match).is_dir():
                found = sorted(str(p) for p in Path(match).rglob("*.nc") if p.is_file())
                if not found:
                    raise DataFileError(f"no run files (*.nc) under the directory '{match}'")
                files += found
            else:
                files.append(match)
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        what = "is not a file" if Path(missing[0]).exists() else "does not exist"
        raise DataFileError(f"run file '{missing[0]}' {what}")
    if not files:
        raise DataFileError(f"no run files match {paths!r}")
    return files


def _experiment_files(experiment: str, config: str | Path, root: str | Path) -> list[str]:
    """The run files of one experiment of a workflow config, as its plan names them. A
    relative `config` that is not found here is looked for under `root` (the workflow's
    working directory, where config/ usually is), so that a notebook anywhere can name a
    checkout by its root alone."""
    path = Path(config)
    if not path.is_absolute() and not path.exists() and (Path(root) / path).exists():
        path = Path(root) / path
    if not path.exists():
        raise DataFileError(f"workflow config '{config}' not found (here, {Path.cwd()}, nor "
                            f"under root '{root}'); pass config= its path")
    planned = plan(read_workflow_config([path]))
    if experiment not in planned:
        raise DataFileError(f"'{experiment}' is not an experiment of {config} (its "
                            f"experiments: {', '.join(planned)})")
    return [str(Path(root) / r.path) for r in planned[experiment].runs]


def _read(path: str) -> dict:
    """One run file: its settings, probe epochs, variables (dims, values, attributes), the
    coordinates of its dimensions and its status."""
    try:
        nc = netCDF4.Dataset(path)
    except OSError as err:
        raise DataFileError(f"run file '{path}' is not a readable NetCDF file ({err})") \
            from None
    with nc:
        nc.set_auto_mask(False)
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
        check_kind(attrs, path, "run file")
        variables, scalars, dim_coords = {}, {}, {}
        for name, var in nc.variables.items():
            dims = var.dimensions
            if not dims:  # a scalar coordinate: a setting
                if "config" not in attrs:
                    scalars[name] = var[...]
                continue
            if name == "epoch" or (len(dims) == 1 and dims[0] == name):
                dim_coords[name] = var[...]
                continue
            variables[name] = (dims, var[...], {k: var.getncattr(k) for k in var.ncattrs()
                                                if k in ("long_name", "units")})
    return {"path": path, "settings": _settings(attrs, scalars),
            "epoch": dim_coords.pop("epoch", np.empty(0)), "variables": variables,
            "dims": dim_coords,
            "status": str(attrs.get("status", "")),
            "diverged_epoch": int(attrs.get("diverged_epoch", -1))}


def _read_many(files: list[str]) -> list[dict]:
    return [_read(f) for f in files]


def _read_all(files: list[str], workers: int | None) -> list[dict]:
    workers = workers or (min(os.cpu_count() or 1, 8) if len(files) >= PARALLEL_FROM else 1)
    if workers <= 1:
        return _read_many(files)
    chunks = [files[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_read_many, chunks))
    out = [None] * len(files)
    for k, part in enumerate(parts):
        out[k::workers] = part
    return out


def _labels(runs: list[dict], dim: str) -> np.ndarray:
    """The coordinate of a dimension over every run: the union of the runs' own, in order of
    appearance (a run without a coordinate for it counts 0, 1, ...)."""
    seen: dict = {}
    for run in runs:
        sizes = [v[1].shape[v[0].index(dim)] for v in run["variables"].values() if dim in v[0]]
        if not sizes:
            continue
        own = run["dims"].get(dim)
        own = np.arange(max(sizes)) if own is None else own
        seen |= dict.fromkeys(own.tolist())
    return np.array(list(seen))


def _settings(attrs: dict, scalars: dict) -> dict:
    """A run file's settings: from its resolved config (every adamgen version since the config
    attribute has written it), else its scalar coordinates (older files)."""
    if "config" in attrs:
        return coordinates(json.loads(attrs["config"]))
    return {k: v.item() if hasattr(v, "item") else v for k, v in scalars.items()}


def _setting_coords(settings: list[dict]) -> dict:
    """The runs' settings as coordinates along `run`: text where a setting is text, integers
    where every run has an integer, else floats with NaN where a run has no such setting
    (GD has no beta1)."""
    coords = {}
    R = len(settings)
    for name in dict.fromkeys(k for s in settings for k in s):
        values = [s.get(name) for s in settings]
        present = [v for v in values if v is not None]
        text = any(isinstance(v, str) for v in present)
        column = np.array(["" if v is None else v for v in values]) if text else np.array(
            [np.nan if v is None else v for v in values])
        if not text and all(isinstance(v, int) for v in present) and len(present) == R:
            column = column.astype(np.int64)
        coords[name] = ("run", column, {"long_name": key_doc(name), "units": "1"})
    return coords


def _stack(runs: list[dict]) -> xr.Dataset:
    R = len(runs)
    probes = max(len(r["epoch"]) for r in runs)
    epoch = np.full((R, probes), np.nan)
    for k, r in enumerate(runs):
        epoch[k, :len(r["epoch"])] = r["epoch"]
    names = list(dict.fromkeys(n for r in runs for n in r["variables"]))
    dims_of, attrs_of, dtype_of = {}, {}, {}
    for r in runs:
        for n, (dims, values, attrs) in r["variables"].items():
            dims_of.setdefault(n, dims)
            attrs_of.setdefault(n, attrs)
            dtype_of[n] = np.result_type(dtype_of.get(n, values.dtype), values.dtype)
    labels = {d: _labels(runs, d) for d in dict.fromkeys(d for dims in dims_of.values()
                                                           for d in dims if d != "epoch")}
    index = {d: {v: k for k, v in enumerate(lab.tolist())} for d, lab in labels.items()}
    data_vars = {}
    for n in names:
        dims = dims_of[n]
        shape = [R] + [probes if d == "epoch" else len(labels[d]) for d in dims]
        kind = dtype_of[n].kind
        fill = "" if kind in "US" else np.nan
        dtype = dtype_of[n] if kind in "fUS" else np.float64
        out = np.full(shape, fill, dtype=dtype)
        for k, r in enumerate(runs):
            if n not in r["variables"]:
                continue
            _, values, _ = r["variables"][n]
            where = []
            for axis, d in enumerate(dims):
                if d == "epoch":
                    where.append(np.arange(values.shape[axis]))
                else:
                    own = r["dims"].get(d)
                    own = np.arange(values.shape[axis]) if own is None else own
                    where.append(np.array([index[d][v] for v in own.tolist()]))
            if all(np.array_equal(w, np.arange(len(w))) for w in where):
                out[(k, *(slice(0, len(w)) for w in where))] = values
            else:
                out[k][np.ix_(*where)] = values
        out_dims = ("run", *("probe" if d == "epoch" else d for d in dims))
        data_vars[n] = (out_dims, out, attrs_of[n])
    coords = {"epoch": (("run", "probe"), epoch, {"long_name": "training epoch of the probe "
                                                  "(NaN past the run's last probe)",
                                                  "units": "1"})}
    coords |= _setting_coords([r["settings"] for r in runs])
    for d, lab in labels.items():
        coords[d] = (d, lab)
    coords["run"] = ("run", np.arange(R))
    coords["path"] = ("run", np.array([r["path"] for r in runs]))
    data_vars["status"] = ("run", np.array([r["status"] for r in runs]),
                           {"long_name": "completed or diverged"})
    data_vars["diverged_epoch"] = ("run", np.array([r["diverged_epoch"] for r in runs]),
                                   {"long_name": "epoch from which every probe is NaN (-1: "
                                                 "none)", "units": "1"})
    return xr.Dataset(data_vars, coords=coords, attrs={
        "title": f"adamgen runs: {R} run files", "Conventions": "CF-1.11"})


def _lazy(files: list[str]) -> xr.Dataset:
    """The same layout, each file opened with dask (for sets larger than memory)."""
    datasets = []
    try:
        for f in files:
            try:
                ds = xr.open_dataset(f, engine="netcdf4", chunks={})
            except (OSError, ValueError) as err:
                raise DataFileError(f"run file '{f}' is not a readable NetCDF file ({err})") \
                    from None
            datasets.append(ds)
            check_kind(ds, f, "run file")
        parts, settings = [], []
        for ds in datasets:  # settings as the eager path reads them (`_settings`)
            scalars = [n for n, c in ds.coords.items() if c.ndim == 0]
            settings.append(_settings(ds.attrs, {n: ds[n].values for n in scalars}))
            epoch = ds["epoch"].values.astype(float)
            ds = ds.drop_vars(["epoch", *scalars]).rename({"epoch": "probe"}).assign_coords(
                probe=np.arange(len(epoch)))
            parts.append(ds.expand_dims("run").assign_coords(
                epoch=(("run", "probe"), epoch[None])))
        combined = xr.concat(parts, dim="run", data_vars="all", coords="minimal",
                             compat="equals", join="outer", combine_attrs="drop_conflicts")
        combined = combined.assign_coords(_setting_coords(settings))
    except BaseException:
        for ds in datasets:  # never left to the garbage collector (see `_closing`)
            ds.close()
        raise
    combined = combined.drop_vars("probe").assign_coords(run=("run", np.arange(len(files))),
                                                          path=("run", np.array(files)))
    return _closing(combined, datasets)


def open_runs(paths: str | Path | Iterable | None = None, dims: list[str] | None = None,
              lazy: bool = False, *, experiment: str | None = None,
              config: str | Path = "config/config.yaml", root: str | Path = ".",
              workers: int | None = None) -> xr.Dataset:
    """Run files as one Dataset: along `run`, each run's probes along `probe` with their
    epochs `epoch(run, probe)`.

    `paths`: a run file, a directory (every *.nc under it), a glob, or a list of these; or
    `experiment`, the name of an experiment of the workflow `config`, whose planned runs are
    opened from under `root`. Where the settings that differ between the files form a full
    grid (every combination present once), `run` is unfolded into one dimension per setting;
    `dims` names the settings to unfold along explicitly (cells without a run are NaN).
    `lazy` opens the files with dask (for sets larger than memory); `workers` sets how many
    processes read them (default: one per core from PARALLEL_FROM files on).
    """
    if (paths is None) == (experiment is None):
        raise ValueError("give either run files (a path, a directory, a glob or a list) or "
                         "experiment=")
    files = _files(paths) if experiment is None else _experiment_files(experiment, config,
                                                                       root)
    if experiment is not None:
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise DataFileError(f"{len(missing)} of the {len(files)} runs of '{experiment}' "
                                f"have no file yet (first: '{missing[0]}'); run the workflow")
    combined = _lazy(files) if lazy else _stack(_read_all(files, workers))
    names = [n for n, c in combined.coords.items() if c.dims == ("run",)
             and n not in ("run", "path")]
    varying = [n for n in names if len(np.unique(combined[n].values.astype(str))) > 1]
    keys = [tuple(map(str, k)) for k in zip(*(combined[d].values for d in varying),
                                            strict=True)]
    if dims is None:  # unfold only a full grid of distinct runs; a repeated run stays a row
        sizes = [len(np.unique(combined[n].values.astype(str))) for n in varying]
        if not varying or int(np.prod(sizes)) != len(files) or len(set(keys)) != len(keys):
            return combined
        dims = varying
    unknown = [d for d in dims if d not in varying]
    if unknown:
        combined.close()
        raise ValueError(f"'{unknown[0]}' is not a setting that differs between the runs "
                         f"(those that do: {', '.join(varying)})")
    keys = [tuple(map(str, k)) for k in zip(*(combined[d].values for d in dims), strict=True)]
    if len(set(keys)) != len(keys):
        combined.close()
        raise ValueError(f"several runs share the settings {dims}; unfold along more of: "
                         f"{', '.join(varying)}")
    same = {n: ((), combined[n].values[0], combined[n].attrs) for n in names
            if n not in varying}  # a setting all runs share: one value, not one per cell
    flat = combined.assign_coords(same).drop_vars("path")
    if len(dims) == 1:  # one setting: it becomes the dimension
        return _reclose(flat.swap_dims(run=dims[0]).drop_vars("run"), combined)
    return _reclose(flat.set_index(run=dims).unstack("run"), combined)


def _reclose(new: xr.Dataset, old: xr.Dataset) -> xr.Dataset:
    """`new.close()` closes what `old` was read from."""
    new.set_close(old.close)
    return new


def final(runs: xr.Dataset) -> xr.Dataset:
    """Each run's values at its last probe (its last epoch: `epoch`), without `probe`."""
    last = (runs["epoch"].notnull().sum("probe") - 1).clip(min=0)
    return runs.isel(probe=last)


def at_epoch(runs: xr.Dataset, epoch: int) -> xr.Dataset:
    """Each run's values at `epoch`; NaN for a run that was not probed there."""
    here = runs["epoch"] == epoch
    picked = runs.isel(probe=here.argmax("probe"))
    probed = [n for n, v in runs.data_vars.items() if "probe" in v.dims]
    return picked.assign({n: picked[n].where(here.any("probe")) for n in probed})


def shared_epochs(runs: xr.Dataset) -> xr.Dataset:
    """Runs probed at the same epochs, with `epoch` as their dimension (for means over runs
    along a trajectory); runs probed at different epochs are refused, naming two."""
    rows = runs["epoch"].transpose(..., "probe").values.reshape(-1, runs.sizes["probe"])
    paths = runs["path"].values.reshape(-1) if "path" in runs.coords else None
    first = rows[0]
    for k, row in enumerate(rows):
        if not np.array_equal(row, first, equal_nan=True):
            which = f" ('{paths[0]}' and '{paths[k]}')" if paths is not None else ""
            raise ValueError(f"the runs were probed at different epochs{which}: select runs "
                             "of one schedule, or use final() or at_epoch()")
    epochs = first[np.isfinite(first)].astype(np.int64)
    out = runs.isel(probe=slice(0, len(epochs))).drop_vars("epoch")
    return out.rename(probe="epoch").assign_coords(epoch=("epoch", epochs, {
        "long_name": "training epoch", "units": "1"}))


def _closing(combined: xr.Dataset, datasets: list[xr.Dataset]) -> xr.Dataset:
    """`combined.close()` (or `with open_runs(...) as runs:`) closes every file it was read from.

    Closing explicitly matters with netCDF4: a lazily opened file left for the garbage collector
    may be closed from a dask worker thread while another file is being opened, which the
    netCDF-C library does not survive.
    """
    def close() -> None:
        for ds in datasets:
            ds.close()
    combined.set_close(close)
    return combined


# --- E1/E6: the flip of feature learning -----------------------------------------------------

def flip_epoch(epochs: np.ndarray, feature: np.ndarray) -> float:
    """The first probe epoch after its peak at which feature learning is negative (Zou et al.
    Lemma 5.3: Adam's feature learning rises, then flips); NaN where it never does."""
    ok = np.isfinite(feature)
    if not ok.any():
        return float("nan")
    peak = int(np.nanargmax(np.where(ok, feature, -np.inf)))
    after = np.flatnonzero(ok[peak:] & (feature[peak:] < 0))
    return float(epochs[peak + after[0]]) if after.size else float("nan")


# --- E7: where benign overfitting turns harmful ---------------------------------------------

def boundary_snr(error: np.ndarray, snr: np.ndarray, threshold: float) -> float:
    """The SNR at which the test error falls below `threshold`, interpolated in log SNR.

    Scanning down from the largest SNR, the boundary lies between the last value at or
    below the threshold and the first above it. Cells without a value (not run: another
    optimizer's SNR axis) are skipped. NaN when every value is on one side (the boundary lies
    beyond the grid) or fewer than two values exist.
    """
    error, snr = np.asarray(error, float), np.asarray(snr, float)
    ran = np.isfinite(error)
    order = np.argsort(snr[ran])
    e, s = error[ran][order], snr[ran][order]
    if len(e) < 2 or e[-1] > threshold or e[0] <= threshold:
        return float("nan")
    k = len(e) - 1
    while e[k - 1] <= threshold:
        k -= 1
    lo, hi = np.log(s[k - 1]), np.log(s[k])  # e[k − 1] > threshold ≥ e[k]
    frac = (e[k - 1] - threshold) / (e[k - 1] - e[k])
    return float(np.exp(lo + frac * (hi - lo)))


def boundary_fit(error: xr.DataArray, threshold: float) -> tuple[float, float, np.ndarray]:
    """Slope and intercept of log SNR* against log n, and the SNR* per n (NaN where beyond
    the grid). `error` has the dims data_n and data_snr; the fit needs three finite points."""
    n = error["data_n"].values.astype(float)
    snr = error["data_snr"].values.astype(float)
    values = error.transpose("data_n", "data_snr").values
    star = np.array([boundary_snr(values[i], snr, threshold) for i in range(len(n))])
    ok = np.isfinite(star)
    if ok.sum() < 3:
        return float("nan"), float("nan"), star
    slope, intercept = np.polyfit(np.log10(n[ok]), np.log10(star[ok]), 1)
    return float(slope), float(intercept), star
