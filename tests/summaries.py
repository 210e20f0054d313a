"""Summaries built from a config's plan, without training: every variable of an experiment's
grid at an ordinary value, for the tests of claims and figures."""

import numpy as np
import xarray as xr

from adamgen.aggregate import _coordinate_values
from adamgen.config import dim_name
from adamgen.models import NETWORKS
from adamgen.probes import active


def _fill(shape: tuple, rng: np.random.Generator | None) -> np.ndarray:
    return np.full(shape, 0.5) if rng is None else rng.uniform(0.0, 1.0, shape)


def cnn_summary(experiment, rng: np.random.Generator | None = None) -> xr.Dataset:
    """A summary of an experiment's planned grid holding every variable its runs record: each
    at 0.5, or drawn from `rng` (uniform on [0, 1])."""
    axes = experiment.axes
    dims = [dim_name(a) for a in axes]
    shape = tuple(len(v) for v in axes.values())
    status = np.full(shape, "", dtype=object)
    for run in experiment.runs:
        status[tuple(axes[a].index(run.coords[a]) for a in axes)] = "completed"
    first = experiment.runs[0].config
    T = max(r.config.train.epochs for r in experiment.runs)
    epochs = np.array(sorted({0, 1, 10, 100, 1000, T}))
    extra = {"j": [1, -1], "layer": list(NETWORKS[first.model.name].layer_names(first))}
    data = {"status": (dims, status.astype(str)),
            "diverged_epoch": (dims, np.where(status == "", -1, -1)),
            "run_path": (dims, np.where(status == "", "", "results/runs/x.nc").astype(str))}
    for probe_set in {s.name: s for r in experiment.runs for s in active(r.config)}.values():
        for name, var in probe_set.variables.items():
            if var.summary is None:
                continue
            kept = [d for d in var.dims if d not in var.summary]
            size = tuple(len(extra[d]) for d in kept)
            data[var.summarized(name)] = ((*dims, "epoch", *kept),
                                          _fill(shape + (len(epochs),) + size, rng))
            data[f"final_{var.summarized(name)}"] = ((*dims, *kept), _fill(shape + size, rng))
    if first.probes.store_weights:
        data["final_weights"] = ((*dims, "j", "r", "k"),
                                 np.ones(shape + (2, first.model.m, first.data.d)))
    coords = {d: _coordinate_values(v) for d, v in zip(dims, axes.values(), strict=True)}
    coords |= {"epoch": epochs, **{k: v for k, v in extra.items()}}
    settings = [r.config.coordinates() for r in experiment.runs]
    for name in sorted(set().union(*settings) - set(dims)):
        values = [s.get(name) for s in settings]
        if len({repr(v) for v in values}) == 1:  # shared by every run: one value
            coords[name] = values[0]
        elif all(isinstance(v, int | float) or v is None for v in values):
            column = np.full(shape, np.nan)  # per cell, as aggregate writes it
            for run, value in zip(experiment.runs, values, strict=True):
                if value is not None:
                    column[tuple(axes[a].index(run.coords[a]) for a in axes)] = value
            coords[name] = (dims, column)
    ds = xr.Dataset(data, coords=coords)
    ran = ds["status"] != ""
    for name in list(ds.data_vars):  # as aggregate leaves them: NaN where no run is
        if name not in ("status", "diverged_epoch", "run_path"):
            ds[name] = ds[name].where(ran)
    return ds.assign_attrs(experiment=experiment.name, grid_dims=str(dims).replace("'", '"'))


def convex_summary(experiment, rng: np.random.Generator | None = None) -> xr.Dataset:
    """The same for a convex counterpart."""
    optimizers, seeds = list(experiment.settings["optimizers"]), experiment.seeds
    steps = np.array([0, 1, 10, experiment.settings["steps"]])
    per = (len(seeds), len(steps), len(optimizers))
    data = {name: (("seed", "step", "optimizer"), _fill(per, rng)) for name in
            ("train_loss", "train_error", "test_error", "grad_norm_l2", "distance_to_optimum")}
    data["distance"] = (("seed", "step"), _fill(per[:2], rng))
    for name in list(data):
        dims = tuple(d for d in data[name][0] if d != "step")
        sizes = tuple(len(x) for x in (seeds, optimizers))[:len(dims)]
        data[f"final_{name}"] = (dims, _fill(sizes, rng))
    n = experiment.data_runs[seeds[0]].data.n
    return xr.Dataset(data, coords={"seed": seeds, "step": steps, "optimizer": optimizers,
                                    "data_n": n},
                      attrs={"experiment": experiment.name,
                             "grid_dims": '["optimizer", "seed"]'})
