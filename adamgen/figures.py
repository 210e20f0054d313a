"""Figures drawn from an experiment's summary alone.

    dynamics-<optimizer>        feature learning and noise memorization against epoch, one panel
                                per grid point (Zou Fig. 2; Tang Figs. 3-4)
    errors-<optimizer>          training and test error against epoch (Tang Figs. 5-6)
    test_error_vs_batch_size    final test error against B, one panel per optimizer
    test_error_vs_weight_decay  final test error against λ, one panel per optimizer
    heatmap_test_error          final test error over B × λ, one panel per optimizer (and per
                                value of any further axis, e.g. σ_0), with Tang's boundaries
    convex                      the convex counterpart (SPEC E3): distances and test errors

Lines are means over seeds; bands and error bars show the spread over seeds (min to max for
trajectories, ± one standard deviation for final values).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ._io import atomic_path
from .aggregate import grid_dims

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, imported at the first figure: the
    workflow reads this module for figure names on every parse and need not pay for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot

LABELS = {"batch_size": "B", "weight_decay": "λ", "lr": "η", "seed": "seed", "epochs": "T",
          "beta1": "β1", "beta2": "β2", "eps": "ε", "p": "p", "momentum": "μ",
          "model_sigma_0": "σ_0"}


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
    fig, axes = _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows),
                                   squeeze=False, constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _diverged(cell: xr.Dataset) -> tuple[list[int], int]:
    """Divergence epochs of the cell's diverged seeds, and how many seeds ran."""
    status = np.atleast_1d(cell["status"].values)
    epochs = np.atleast_1d(cell["diverged_epoch"].values)
    return [int(e) for e in epochs[status == "diverged"]], int((status != "").sum())


def _mark_divergence(ax, cell: xr.Dataset, title: str) -> str:
    """Red dotted lines where seeds diverged; returns the panel title, saying how many."""
    epochs, ran = _diverged(cell)
    for k, e in enumerate(epochs):
        ax.axvline(e, color="red", ls=":", lw=1.5, label="diverged" if k == 0 else None)
    return f"{title} [{len(epochs)}/{ran} seeds diverged]" if epochs else title


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
        ax.set_title(_mark_divergence(ax, cell, _label(point) or optimizer), fontsize=10)
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
    others = [d for d in grid_dims(summary) if d not in ("optimizer", "seed", axis)]
    lines = math.prod(summary.sizes[d] for d in others)
    many = lines > 6  # then a legend beside each panel, and a palette of twenty colours
    fig, axes = _panels(len(optimizers), width=6.4 if many else 4.2, height=4.2 if many else 3.2)
    for ax, opt in zip(axes, optimizers, strict=False):
        sub = summary.sel(optimizer=opt)
        if many:
            ax.set_prop_cycle(color=_pyplot().get_cmap("tab20").colors)
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
            status = sub["status"].sel(point)
            broken = (status == "diverged").any("seed") if "seed" in status.dims else \
                status == "diverged"
            if broken.any():
                ax.plot(x[broken.values], np.full(int(broken.sum()), 1.0), "x", color="red",
                        ms=9, mew=2, label="a seed diverged")
            if "seed" in da.dims:
                for s in da["seed"].values:
                    ax.plot(x[ok], da.sel(seed=s).values[ok], ".", color="gray", alpha=0.4)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(LABELS.get(axis, axis) + f" ({axis})")
        ax.set_ylabel("final test error")
        ax.set_title(opt)
        ax.grid(alpha=0.3)
        if many:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        else:
            ax.legend(fontsize=8)
    fig.suptitle(f"{summary.attrs['experiment']}: test error against {axis}")
    return fig


def _predicted_boundaries(summary: xr.Dataset, optimizer: str, point: dict,
                          batch_sizes: np.ndarray) -> np.ndarray | None:
    """Tang et al.'s λ boundary (constant 1) at each batch size, or None if not defined.

    Cor. 4.3: Adam stalls once λ ≫ σ_0^{q−2}. Cor. 4.6: AdamW keeps learning up to
    λ ~ B²/n ∧ 1. The corollaries fix the scaling only; the constant is drawn as 1.
    """
    q, n = summary.attrs.get("model_q"), summary.attrs.get("data_n")
    sigma_0 = point.get("model_sigma_0", summary.attrs.get("model_sigma_0"))
    if optimizer in ("adam", "amsgrad", "padam") and q is not None and sigma_0 is not None:
        return np.full(len(batch_sizes), float(sigma_0) ** (float(q) - 2))
    if optimizer in ("adamw", "signsgdw") and n is not None:
        return np.minimum(batch_sizes.astype(float) ** 2 / float(n), 1.0)
    return None


def heatmap(summary: xr.Dataset) -> plt.Figure:
    """Final test error over B × λ: one panel per optimizer and value of any further axis.

    The Cor. 4.3 / 4.6 boundaries are drawn as a white line (scaling with constant 1) and the
    measured boundary where training fails (final train error ≥ 0.25, mean over seeds) as red
    marks.
    """
    mean = summary["final_test_error"]
    train = summary["final_train_error"]
    if "seed" in mean.dims:
        mean, train = mean.mean("seed", skipna=True), train.mean("seed", skipna=True)
    rest = [d for d in mean.dims if d not in ("optimizer", "batch_size", "weight_decay")]
    panels = []
    for opt in summary["optimizer"].values.tolist():
        for values in itertools.product(*(mean[d].values.tolist() for d in rest)):
            point = dict(zip(rest, values, strict=True))
            grid = mean.sel(optimizer=opt, **point).transpose("batch_size", "weight_decay")
            if np.isfinite(grid.values).any():
                panels.append((opt, point, grid, train.sel(optimizer=opt, **point)
                               .transpose("batch_size", "weight_decay")))
    fig, axes = _panels(len(panels), width=4.8, height=3.8)
    for ax, (opt, point, grid, fit) in zip(axes, panels, strict=False):
        keep_b = np.isfinite(grid.values).any(axis=1)
        keep_w = np.isfinite(grid.values).any(axis=0)
        grid, fit = (g.isel(batch_size=keep_b, weight_decay=keep_w) for g in (grid, fit))
        im = ax.imshow(grid.values, vmin=0, vmax=1, cmap="viridis", origin="lower",
                       aspect="auto")
        lams = grid["weight_decay"].values.astype(float)
        bs = grid["batch_size"].values
        ax.set_xticks(range(len(lams)), [f"{v:g}" for v in lams], rotation=45)
        ax.set_yticks(range(len(bs)), [f"{v:g}" for v in bs])
        for (b, w), v in np.ndenumerate(grid.values):
            if np.isfinite(v):
                ax.text(w, b, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
        predicted = _predicted_boundaries(summary, opt, point, bs)
        title = [opt] + [_label({d: v}) for d, v in point.items()]
        if predicted is not None and len(lams) > 1 and (lams > 0).all():
            # position of λ on the panel's log-spaced column axis
            x = np.interp(np.log10(predicted), np.log10(lams), np.arange(len(lams)),
                          left=-0.5, right=len(lams) - 0.5)
            ax.plot(x, np.arange(len(bs)), color="white", lw=2, ls="--")
            # named in the title: a legend would hide cells
            title.append("dashed: Cor. 4.3" if opt in ("adam", "amsgrad", "padam")
                         else "dashed: Cor. 4.6")
        stalled = fit.values >= 0.25
        for b in range(len(bs)):
            hits = np.flatnonzero(stalled[b] & np.isfinite(fit.values[b]))
            if hits.size:
                ax.plot(hits[0] - 0.5, b, marker="|", color="red", ms=16, mew=2.5)
        ax.set_xlabel("weight decay λ")
        ax.set_ylabel("batch size B")
        ax.set_title(", ".join(title), fontsize=9)
        fig.colorbar(im, ax=ax, label="final test error")
    fig.suptitle(f"{summary.attrs['experiment']}: test error over B × λ "
                 "(red: training fails from here; dashed: predicted boundary)")
    return fig


def convex(summary: xr.Dataset) -> plt.Figure:
    """SPEC E3: Adam and GD on the linear logistic model converge to the same solution."""
    fig, axes = _panels(3, width=4.4, height=3.4)
    step = summary["step"].values[1:]
    for ax, (name, label) in zip(axes, [
            ("distance", "‖w_adam − w_gd‖ / ‖w*‖"),
            ("distance_to_optimum", "‖w − w*‖ / ‖w*‖"),
            ("test_error", "test error")], strict=True):
        da = summary[name].isel(step=slice(1, None))
        groups = [(None, da)] if "optimizer" not in da.dims else [
            (o, da.sel(optimizer=o)) for o in summary["optimizer"].values.tolist()]
        for opt, series in groups:
            lo, mid, hi = (series.min("seed"), series.mean("seed"), series.max("seed"))
            line, = ax.plot(step, mid, label=opt or "adam vs gd")
            ax.fill_between(step, lo, hi, color=line.get_color(), alpha=0.25)
        ax.set_xscale("log")
        if name != "test_error":
            ax.set_yscale("log")
        ax.set_xlabel("step (full batch)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"{summary.attrs['experiment']}: linear logistic model, "
                 f"λ = {summary.attrs['weight_decay']:g} (Zou Thm 4.2)")
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
    if name == "convex":
        return convex(summary)
    raise ValueError(f"unknown figure '{name}'")


def save(fig: plt.Figure, *paths) -> None:
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], dpi=120)
    _pyplot().close(fig)
