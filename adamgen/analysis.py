"""Analysis after the run: run files combined in one call, and the phase boundary of E7.

    open_runs("results/runs/*/*.nc")     every run file, along its settings

Every run file carries each setting that shapes its numbers as a scalar coordinate
(`optimizer`, `lr`, `batch_size`, `weight_decay`, `beta1`, `seed`, `model_sigma_0`, ...), so the
files combine without a hand-written `preprocess`. With dask installed (`pip install
'adamgen[analysis]'`) the files are opened lazily, which keeps thousands of runs cheap.
"""

import glob
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from ._io import check_kind
from .errors import DataFileError


def _files(paths) -> list[str]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files = []
    for item in items:
        text = str(item)
        found = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        files += found
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise DataFileError(f"run file '{missing[0]}' does not exist")
    if not files:
        raise DataFileError(f"no run files match {paths!r}")
    return files


def _settings(datasets: list[xr.Dataset]) -> list[str]:
    """Names of the scalar coordinates (the settings), in the order the first file has them."""
    names = dict.fromkeys(n for ds in datasets for n, c in ds.coords.items() if c.ndim == 0)
    return list(names)


def _fill_missing(ds: xr.Dataset, names: list[str], kinds: dict[str, str]) -> xr.Dataset:
    """A setting a run does not have (gd has no beta1) becomes NaN, or '' for text."""
    extra = {n: ((), "" if kinds[n] in "US" else np.nan) for n in names if n not in ds.coords}
    return ds.assign_coords(extra) if extra else ds


def _along_run(ds: xr.Dataset, names: list[str]) -> xr.Dataset:
    settings = {n: ("run", [ds[n].values.item()], ds[n].attrs) for n in names}
    return ds.drop_vars(names).expand_dims("run").assign_coords(settings)


def open_runs(paths: str | Path | Iterable, dims: list[str] | None = None,
              lazy: bool | None = None) -> xr.Dataset:
    """Run files as one Dataset.

    The runs are stacked along `run`. Where the settings that differ between the files form a
    full grid (every combination present once), `run` is unfolded into one dimension per
    setting; `dims` names the settings to unfold along explicitly (cells without a run are
    NaN). `lazy` (default: when dask is installed) opens the files with dask.
    """
    files = _files(paths)
    if lazy is None:
        lazy = importlib.util.find_spec("dask") is not None
    datasets: list[xr.Dataset] = []
    try:
        for f in files:
            try:
                ds = xr.open_dataset(f, engine="netcdf4", chunks={} if lazy else None)
            except (OSError, ValueError) as err:
                raise DataFileError(f"run file '{f}' is not a readable NetCDF file ({err})") \
                    from None
            datasets.append(ds if lazy else ds.load())
            check_kind(ds, f, "run file")
        names = _settings(datasets)
        kinds = {n: next(ds[n].dtype.kind for ds in datasets if n in ds.coords) for n in names}
        # each setting becomes a coordinate along `run`; a variable or dimension that some
        # files lack (the hessian probes' `layer`, a linear network's missing `r`) is NaN there
        combined = xr.concat([_along_run(_fill_missing(ds, names, kinds), names)
                              for ds in datasets], dim="run", data_vars="all", coords="minimal",
                             compat="equals", join="outer", combine_attrs="drop_conflicts")
    except BaseException:
        for ds in datasets:  # never left to the garbage collector (see `_closing`)
            ds.close()
        raise
    combined = combined.assign_coords(run=("run", np.arange(len(files))),
                                      path=("run", np.array(files)))
    combined = _closing(combined, datasets)
    varying = [n for n in names if combined[n].dims == ("run",)
               and len(np.unique(combined[n].values.astype(str))) > 1]
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
    return _closing(combined.drop_vars("path").set_index(run=dims).unstack("run"), datasets)


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
