"""Figures drawn from an experiment's summary alone.

    dynamics-<optimizer>        feature learning and noise memorization against epoch, one panel
                                per grid point (Zou Fig. 2; Tang Figs. 3-4)
    errors-<optimizer>          training and test error against epoch (Tang Figs. 5-6)
    test_error_vs_batch_size    final test error against B, one panel per optimizer
    test_error_vs_weight_decay  final test error against λ, one panel per optimizer
    heatmap_test_error          final test error over B × λ, one panel per optimizer

Lines are means over seeds; bands and error bars show the spread over seeds (min to max for
trajectories, ± one standard deviation for final values).
"""

import itertools
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from ._io import atomic_path  # noqa: E402
from .aggregate import grid_dims  # noqa: E402

LABELS = {"batch_size": "B", "weight_decay": "λ", "lr": "η", "seed": "seed", "epochs": "T",
          "beta1": "β1", "beta2": "β2", "eps": "ε", "p": "p", "momentum": "μ"}


def names(axes: dict[str, list]) -> list[str]:
    """The figures that make sense for an experiment with these axes."""
    out = [f"{kind}-{opt}" for opt in axes["optimizer"] for kind in ("dynamics", "errors")]
    sweeps = {a for a in ("batch_size", "weight_decay") if len(axes.get(a, [])) > 1}
    out += [f"test_error_vs_{a}" for a in sorted(sweeps)]
    if sweeps == {"batch_size", "weight_decay"}:
        out.append("heatmap_test_error")
    return out


def _label(dims_values: dict) -> str:
    return ", ".join(f"{LABELS.get(d, d)}={v:g}" if isinstance(v, float) else
                     f"{LABELS.get(d, d)}={v}" for d, v in dims_values.items())


def _cells(summary: xr.Dataset, optimizer: str) -> list[tuple[dict, xr.Dataset]]:
    """Grid points of one optimizer (all axes but optimizer and seed) that hold runs."""
    dims = [d for d in grid_dims(summary) if d not in ("optimizer", "seed")]
    sub = summary.sel(optimizer=optimizer)
    out = []
    for values in itertools.product(*(sub[d].values.tolist() for d in dims)):
        point = dict(zip(dims, values, strict=True))
        cell = sub.sel(point)
        if (np.atleast_1d(cell["status"].values) != "").any():
            out.append((point, cell))
    return out


def _over_seeds(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "seed" in da.dims:
        return (da.mean("seed", skipna=True).values, da.min("seed", skipna=True).values,
                da.max("seed", skipna=True).values)
    return da.values, da.values, da.values


def _panels(n: int, width: float = 4.2, height: float = 3.2):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _trajectories(summary: xr.Dataset, optimizer: str, series: list[tuple]) -> plt.Figure:
    cells = _cells(summary, optimizer)
    fig, axes = _panels(len(cells))
    epoch = summary["epoch"].values
    for ax, (point, cell) in zip(axes, cells, strict=False):
        for var, j, label, style in series:
            da = cell[var] if j is None else cell[var].sel(j=j)
            mean, lo, hi = _over_seeds(da)
            ok = np.isfinite(mean)
            line, = ax.plot(epoch[ok], mean[ok], style, label=label)
            ax.fill_between(epoch[ok], lo[ok], hi[ok], color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("epoch")
        ax.set_title(_label(point) or optimizer, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary.attrs['experiment']}: {optimizer}")
    return fig


def dynamics(summary: xr.Dataset, optimizer: str) -> plt.Figure:
    return _trajectories(summary, optimizer, [
        ("feature_learning_max", 1, "feature, j=+1: max_r <w, v>", "C0-"),
        ("feature_learning_max", -1, "feature, j=-1: max_r <w, -v>", "C0--"),
        ("noise_memorization_min", 1, "noise, j=+1: min_i max_r <w, ξ_i>", "C1-"),
        ("noise_memorization_max", 1, "noise, j=+1: max_i max_r <w, ξ_i>", "C1:"),
    ])


def errors(summary: xr.Dataset, optimizer: str) -> plt.Figure:
    fig = _trajectories(summary, optimizer, [
        ("train_error", None, "training error", "C2-"),
        ("test_error", None, "test error", "C3--"),
    ])
    for ax in fig.axes:
        ax.set_ylim(-0.03, 1.03)
    return fig


def sweep(summary: xr.Dataset, axis: str) -> plt.Figure:
    """Final test error against one axis; one line per combination of the other axes."""
    optimizers = summary["optimizer"].values.tolist()
    fig, axes = _panels(len(optimizers))
    others = [d for d in grid_dims(summary) if d not in ("optimizer", "seed", axis)]
    for ax, opt in zip(axes, optimizers, strict=False):
        sub = summary.sel(optimizer=opt)
        for values in itertools.product(*(sub[d].values.tolist() for d in others)):
            point = dict(zip(others, values, strict=True))
            da = sub["final_test_error"].sel(point)
            n = (sub["status"].sel(point) != "").sum("seed") if "seed" in da.dims else None
            mean = da.mean("seed", skipna=True) if "seed" in da.dims else da
            std = da.std("seed", ddof=1, skipna=True) if "seed" in da.dims else 0 * da
            x = sub[axis].values
            ok = np.isfinite(mean.values) & ((n.values > 0) if n is not None else True)
            if not ok.any():
                continue
            ax.errorbar(x[ok], mean.values[ok], yerr=np.nan_to_num(std.values[ok]), marker="o",
                        capsize=3, label=_label(point) or opt)
            if "seed" in da.dims:
                for s in da["seed"].values:
                    ax.plot(x[ok], da.sel(seed=s).values[ok], ".", color="gray", alpha=0.4)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(LABELS.get(axis, axis) + f" ({axis})")
        ax.set_ylabel("final test error")
        ax.set_title(opt)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{summary.attrs['experiment']}: test error against {axis}")
    return fig


def heatmap(summary: xr.Dataset) -> plt.Figure:
    optimizers = summary["optimizer"].values.tolist()
    fig, axes = _panels(len(optimizers), width=4.8, height=3.8)
    mean = summary["final_test_error"]
    if "seed" in mean.dims:
        mean = mean.mean("seed", skipna=True)
    rest = [d for d in mean.dims if d not in ("optimizer", "batch_size", "weight_decay")]
    if rest:  # average over any further axes, so the heatmap stays two-dimensional
        mean = mean.mean(rest, skipna=True)
    for ax, opt in zip(axes, optimizers, strict=False):
        grid = mean.sel(optimizer=opt).transpose("batch_size", "weight_decay")
        keep_b = np.isfinite(grid.values).any(axis=1)
        keep_w = np.isfinite(grid.values).any(axis=0)
        grid = grid.isel(batch_size=keep_b, weight_decay=keep_w)
        im = ax.imshow(grid.values, vmin=0, vmax=1, cmap="viridis", origin="lower",
                       aspect="auto")
        ax.set_xticks(range(grid.sizes["weight_decay"]),
                      [f"{v:g}" for v in grid["weight_decay"].values], rotation=45)
        ax.set_yticks(range(grid.sizes["batch_size"]),
                      [f"{v:g}" for v in grid["batch_size"].values])
        for (b, w), v in np.ndenumerate(grid.values):
            if np.isfinite(v):
                ax.text(w, b, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < 0.5 else "black")
        ax.set_xlabel("weight decay λ")
        ax.set_ylabel("batch size B")
        ax.set_title(opt)
        fig.colorbar(im, ax=ax, label="final test error")
    fig.suptitle(f"{summary.attrs['experiment']}: test error over B × λ")
    return fig


def draw(name: str, summary: xr.Dataset) -> plt.Figure:
    kind, _, optimizer = name.partition("-")
    if kind == "dynamics":
        return dynamics(summary, optimizer)
    if kind == "errors":
        return errors(summary, optimizer)
    if name.startswith("test_error_vs_"):
        return sweep(summary, name.removeprefix("test_error_vs_"))
    if name == "heatmap_test_error":
        return heatmap(summary)
    raise ValueError(f"unknown figure '{name}'")


def save(fig: plt.Figure, *paths) -> None:
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], dpi=120)
    plt.close(fig)
