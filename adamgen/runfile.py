"""One NetCDF file per run: the probe trajectory, the resolved config and the provenance.

Dimensions: epoch, j (class, +1 and −1), r (neuron), i (training example, with the full noise
memorization), k (input coordinate, with stored weights). Variables use SPEC §5's names; the
resolved run config is the JSON attribute `config`, and every hyperparameter is also a flat
scalar attribute (`optimizer_lr`, `train_batch_size`, ...). `status` is "completed" or
"diverged"; `diverged_epoch` is the epoch whose steps first gave a non-finite loss (−1 if none),
and every probe from that epoch on is NaN.
"""

import datetime
import functools
import json
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from . import __version__
from ._io import open_netcdf, write_netcdf, zlib
from .config import RunConfig, parse_run_config
from .errors import DataFileError
from .probes import OPTIONAL, VARIABLES
from .trainer import RunResult

REQUIRED = ("epoch", *(name for name in VARIABLES if name not in OPTIONAL))


@functools.cache
def git_commit() -> str:
    """The commit of the adamgen source tree, with '-dirty' for local changes; '' outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


def provenance(timing: dict) -> dict:
    return {
        "adamgen_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "python_version": platform.python_version(),
        "host": platform.node(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **timing,
    }


def to_xarray(result: RunResult) -> xr.Dataset:
    cfg = result.config
    coords = {
        "epoch": ("epoch", result.epochs, {"long_name": "training epoch", "units": "epoch"}),
        "j": ("j", np.array([1, -1], dtype=np.int8), {"long_name": "class j"}),
        "r": ("r", np.arange(cfg.model.m), {"long_name": "neuron r"}),
    }
    data_vars = {}
    for name, values in result.probes.items():
        dims, long_name, units = VARIABLES[name]
        data_vars[name] = (("epoch", *dims), values, {"long_name": long_name, "units": units})
    if "noise_memorization" in result.probes:
        coords["i"] = ("i", np.arange(cfg.data.n), {"long_name": "training example i"})
        data_vars["y"] = ("i", result.labels, {"long_name": "training label y_i"})
    for when in ("initial", "final"):
        w = getattr(result, f"weights_{when}")
        if w is not None:
            data_vars[f"weights_{when}"] = (("j", "r", "k"), w,
                                            {"long_name": f"{when} weights w_(j,r)"})
    attrs = {
        "title": "adamgen run: probe trajectory of a two-layer CNN",
        "status": result.status,
        "diverged_epoch": -1 if result.diverged_epoch is None else result.diverged_epoch,
        "config": json.dumps(cfg.to_dict()),
        **cfg.flat(),
        **provenance(result.timing),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def save(result: RunResult, path: str | Path) -> None:
    """Write atomically: an interrupted run never leaves a file that looks finished."""
    ds = to_xarray(result)
    write_netcdf(ds, path, zlib(ds, level=4))


def load(path: str | Path) -> xr.Dataset:
    return open_netcdf(path, "run file", REQUIRED)


def run_config(ds: xr.Dataset, path: str | Path = "run file") -> RunConfig:
    """The resolved run config a run file stores."""
    try:
        return parse_run_config(json.loads(ds.attrs["config"]))
    except (KeyError, TypeError, ValueError) as err:  # ConfigError is a ValueError
        raise DataFileError(f"run file '{path}' holds no valid run config ({err})") from None


def check_provenance(ds: xr.Dataset, path: str | Path, expected_hash: str, point: str) -> None:
    """A run file must hold the run of the grid point whose path it has.

    The hash covers the whole resolved config but the device and engine
    (`adamgen.experiments.run_hash`): a file copied or moved over another run's path, or
    written by a different config, is refused with both configs named.
    """
    from .experiments import run_hash, run_id

    stored = run_config(ds, path)
    if run_hash(stored) != expected_hash:
        raise DataFileError(
            f"run file '{path}' holds the run {run_id(stored)}, not the grid point {point} whose "
            "path it has (copied or moved by hand?); delete it and rerun to train that point")
