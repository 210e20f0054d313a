"""One NetCDF file per run: the probe trajectory, the resolved config and the provenance.

Dimensions: epoch, j (class, +1 and −1), r (neuron), i (training example, with the per-example
arrays), k (input coordinate, with stored weights). Variables are those of the run's probe
sets (adamgen.probes), with their long names and units. Every setting that shapes the numbers
is a scalar coordinate named as in grids and summaries (`optimizer`, `lr`, `batch_size`,
`weight_decay`, `beta1`, `seed`, `model_sigma_0`, `data_sigma_p`, ...), so that run files
combine along them (`adamgen.open_runs`); the resolved config is also the JSON attribute
`config`. `status` is "completed" or "diverged"; `diverged_epoch` is the epoch from which
every probe is NaN (−1 if none). The files follow the CF conventions (CF-1.11).
"""

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ._io import CONVENTIONS, git_commit, history, open_netcdf, write_netcdf, zlib
from ._version import __version__
from .config import RunConfig, key_doc, parse_run_config
from .errors import DataFileError
from .identity import run_hash, run_id
from .models import NETWORKS
from .optim import OPTIMIZERS, external
from .probes import PROBE_SETS, QUANTILES, values_per_probe, variables

REQUIRED = ("epoch", *PROBE_SETS["core"].variables)


@dataclass
class RunResult:
    config: RunConfig
    epochs: np.ndarray  # probe epochs, [E]
    probes: dict[str, np.ndarray]  # name → [E, ...]
    status: str  # "completed" or "diverged"
    diverged_epoch: int | None
    labels: np.ndarray  # training labels y_i, [n]
    weights_initial: np.ndarray | None = None  # as the network stores them (weight_dims)
    weights_final: np.ndarray | None = None
    timing: dict = field(default_factory=dict)


def file_bytes(run: RunConfig, probe_count: int) -> float:
    """Uncompressed size of a run's file: an upper bound for the free-space check."""
    weights = 2 * run.model.parameters(run.data) if run.probes.store_weights else 0
    return 8.0 * (probe_count * values_per_probe(run) + weights) + 64 * 2**10


def provenance(timing: dict) -> dict:
    import torch  # lazy: reading run files never needs torch

    return {
        "adamgen_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "python_version": platform.python_version(),
        "host": platform.node(),
        **timing,
    }


def setting_coordinates(run: RunConfig) -> dict:
    """The run's settings as scalar coordinates, each with its meaning."""
    return {name: ((), value, {"long_name": key_doc(name), "units": "1"})
            for name, value in run.coordinates().items()}


def to_xarray(result: RunResult) -> xr.Dataset:
    cfg = result.config
    coords = {
        "epoch": ("epoch", result.epochs, {"long_name": "training epoch", "units": "1"}),
        **setting_coordinates(cfg),
    }
    declared = variables(cfg)
    data_vars, sizes = {}, {}
    for name, values in result.probes.items():
        var = declared[name]
        data_vars[name] = (("epoch", *var.dims), values,
                           {"long_name": var.long_name, "units": var.units})
        sizes |= dict(zip(var.dims, values.shape[1:], strict=True))
    index = {  # the coordinates of the dimensions the variables use
        "j": (np.array([1, -1], dtype=np.int8), "class j"),
        "r": (np.arange(sizes.get("r", 0)), "neuron r"),
        "i": (np.arange(cfg.data.n), "training example i"),
        "layer": (np.array(NETWORKS[cfg.model.name].layer_names(cfg)),
                  "layer (parameter group) of the network"),
        "quantile": (np.array(QUANTILES), "quantile"),
    }
    for dim in sizes:
        values, long_name = index[dim]
        coords[dim] = (dim, values, {"long_name": long_name}
                       | ({} if values.dtype.kind == "U" else {"units": "1"}))
    if "i" in sizes:
        data_vars["y"] = ("i", result.labels, {"long_name": "training label y_i", "units": "1"})
    for when in ("initial", "final"):
        w = getattr(result, f"weights_{when}")
        if w is not None:
            data_vars[f"weights_{when}"] = (NETWORKS[cfg.model.name].weight_dims, w, {
                "long_name": f"{when} parameters of the network", "units": "1"})
    attrs = {
        "title": "adamgen run: probe trajectory of one training run",
        "Conventions": CONVENTIONS,
        "history": history("trained"),
        "source": "adamgen: how optimizers shape what a neural network learns",
        "status": result.status,
        "diverged_epoch": -1 if result.diverged_epoch is None else result.diverged_epoch,
        "config": json.dumps(cfg.to_dict()),
        "optimizer_kind": optimizer_kind(cfg.optimizer),
        **provenance(result.timing),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def optimizer_kind(settings: dict) -> str:
    """Which optimizer, whose code, and where its weight decay is: one line for the file."""
    name = settings["name"]
    if external.is_import_path(name):
        return (f"{name} ({settings.get(external.PACKAGE, '?')}), an outside optimizer with "
                "its own weight decay; the objective is the plain loss")
    where = ("coupled: (lambda/2)|W|^2 in the objective" if OPTIMIZERS[name].coupled
             else "decoupled: W <- (1 - eta lambda) W after the step")
    return f"{name} (adamgen's table), weight decay {where}"


def save(result: RunResult, path: str | Path) -> None:
    """Write atomically: an interrupted run never leaves a file that looks finished."""
    ds = to_xarray(result)
    write_netcdf(ds, path, zlib(ds, level=4))


def load(path: str | Path) -> xr.Dataset:
    """A run file, checked: the core variables, and every variable its own config records."""
    ds = open_netcdf(path, "run file", REQUIRED)
    missing = [name for name in variables(run_config(ds, path)) if name not in ds]
    if missing:
        raise DataFileError(f"run file '{path}' lacks {', '.join(missing)}: not a complete "
                            "adamgen run file")
    return ds


def run_config(ds: xr.Dataset, path: str | Path = "run file") -> RunConfig:
    """The resolved run config a run file stores."""
    try:
        return parse_run_config(json.loads(ds.attrs["config"]))
    except (KeyError, TypeError, ValueError) as err:  # ConfigError is a ValueError
        raise DataFileError(f"run file '{path}' holds no valid run config ({err})") from None


def check_provenance(ds: xr.Dataset, path: str | Path, expected_hash: str, point: str) -> None:
    """A run file must hold the run of the grid point whose path it has.

    The hash covers the whole resolved config but the device and engine
    (`adamgen.identity.run_hash`): a file copied or moved over another run's path, or
    written by a different config, is refused with both configs named.
    """
    stored = run_config(ds, path)
    if run_hash(stored) != expected_hash:
        raise DataFileError(
            f"run file '{path}' holds the run {run_id(stored)}, not the grid point {point} whose "
            "path it has (copied or moved by hand?); delete it and rerun to train that point")
