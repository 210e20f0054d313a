"""Drawing the figures of `adamgen.figures` from an experiment's summary (matplotlib).

Readable at a paper's width: at most two panels side by side (3.4 × 2.6 in each), axis labels
with units, one legend below the panels so that no legend covers data, and j = −1 in its own
colour. Lines are means over seeds; bands and error bars show the spread over seeds (min to
max for trajectories, ± one standard deviation for final values). Diverged seeds are marked.
Heatmaps are drawn in the data's own (log) coordinates, so that boundaries are lines in
those coordinates, not diagonals across categorical cells.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .._io import atomic_path
from ..aggregate import grid_dims
from ..analysis import boundary_fit, flip_epoch
from ..probes import PROBE_SETS

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

PANEL = (3.4, 2.6)  # inches: two panels fill a 7-inch page width
LABELS = {"batch_size": "B", "weight_decay": "λ", "lr": "η", "seed": "seed", "epochs": "T",
          "beta1": "β1", "beta2": "β2", "eps": "ε", "p": "p", "momentum": "μ",
          "model_sigma_0": "σ_0", "model_q": "q", "data_n": "n", "data_snr": "SNR",
          "data_sigma_p": "σ_p", "data_alpha": "α", "data_mu_norm": "‖μ‖"}
STYLES = [("C0", "-"), ("C2", "--"), ("C1", "-"), ("C3", ":")]  # j = −1 in its own colour


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, imported at the first figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    matplotlib.pyplot.rcParams.update({"font.size": 9, "axes.titlesize": 9,
                                       "legend.fontsize": 8, "figure.dpi": 150})
    return matplotlib.pyplot


def _panels(n: int, width: float = PANEL[0], height: float = PANEL[1]):
    """n panels, two per row; a large grid (E7's 88 points) in up to eight columns, so that the
    figure stays about as wide as it is tall instead of a strip of 44 rows."""
    cols = 1 if n == 1 else 2 if n <= 16 else min(8, math.ceil(math.sqrt(n * height / width)))
    rows = math.ceil(n / cols)
    width = max(width, 5.0) if n == 1 else width  # room for the title and the legend
    fig, axes = _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows + 0.6),
                                   squeeze=False, constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _legend_below(fig, axes, dark: bool = False) -> None:
    """One legend for the figure, under the panels: labels gathered from every panel. `dark`
    gives it a grey background, for lines drawn in white over a heatmap."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:  # two columns where the labels are short enough to fit side by side
        chars = fig.get_figwidth() * 11
        ncol = 2 if len(seen) > 1 and 2 * max(map(len, seen)) < chars else 1
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=ncol,
                   frameon=dark, facecolor="0.55" if dark else None)


def _title(fig, text: str) -> None:
    """A figure title wrapped to the figure's width."""
    chars = int(fig.get_figwidth() * 11)
    fig.suptitle(textwrap.fill(text, chars))


def axis_label(dim: str) -> str:
    symbol = LABELS.get(dim, dim)
    return f"{symbol} ({dim})" if symbol != dim else dim


def _label(point: dict) -> str:
    return ", ".join(f"{LABELS.get(d, d)}={v:g}" if isinstance(v, float) else
                     f"{LABELS.get(d, d)}={v}" for d, v in point.items())


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


def _diverged(cell: xr.Dataset) -> tuple[list[int], int]:
    """Divergence epochs of the cell's diverged seeds, and how many seeds ran."""
    status = np.atleast_1d(cell["status"].values)
    epochs = np.atleast_1d(cell["diverged_epoch"].values)
    return [int(e) for e in epochs[status == "diverged"]], int((status != "").sum())


def _mark_divergence(ax, cell: xr.Dataset, title: str) -> str:
    """Red dotted lines where seeds diverged; returns the panel title, saying how many."""
    epochs, ran = _diverged(cell)
    for k, e in enumerate(epochs):
        ax.axvline(e, color="red", ls=":", lw=1.5, label="a seed diverged" if k == 0 else None)
    return f"{title} [{len(epochs)}/{ran} diverged]".strip() if epochs else title


# a trajectory figure draws at most this many grid points (more cannot be read); a larger grid
# shows this many, evenly spaced, and its title says where every point is
MOST_PANELS = 16


def _trajectories(summary: xr.Dataset, optimizer: str, series: list[tuple], ylabel: str,
                  title: str) -> plt.Figure:
    cells = _cells(summary, optimizer)
    total = len(cells)
    if total > MOST_PANELS:
        cells = [cells[k] for k in np.linspace(0, total - 1, MOST_PANELS).round().astype(int)]
        title += (f"; {MOST_PANELS} of its {total} grid points, evenly spaced (every point: "
                  "the experiment's tables/final.csv and summary.nc)")
    fig, axes = _panels(len(cells))
    epoch = summary["epoch"].values
    for ax, (point, cell) in zip(axes, cells, strict=False):
        for k, (var, j, label) in enumerate(series):
            if var not in cell:
                continue
            colour, style = STYLES[k % len(STYLES)]
            da = cell[var] if j is None else cell[var].sel(j=j)
            mean, lo, hi = _over_seeds(da)
            ok = np.isfinite(mean)
            ax.plot(epoch[ok], mean[ok], style, color=colour, label=label,
                    lw=2.2 if style == "--" else 1.4)
            ax.fill_between(epoch[ok], lo[ok], hi[ok], color=colour, alpha=0.15, lw=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(_mark_divergence(ax, cell, _label(point)))  # the optimizer: in the title
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    _title(fig, f"{summary.attrs['experiment']}, {optimizer}: {title}")
    return fig


def dynamics(summary: xr.Dataset, optimizer: str) -> plt.Figure:
    """The trajectories of the probe sets the summary holds (their `dynamics` series)."""
    sets = [s for s in PROBE_SETS.values()
            if s.dynamics and all(x.variable in summary for x in s.dynamics)]
    series = [(x.variable, x.j, x.label) for s in sets for x in s.dynamics]
    ylabel = " / ".join(s.dynamics_ylabel for s in sets)
    return _trajectories(summary, optimizer, series, ylabel,
                         "; ".join(s.doc for s in sets) + " (mean and range over seeds)")


def errors(summary: xr.Dataset, optimizer: str) -> plt.Figure:
    fig = _trajectories(summary, optimizer, [("train_error", None, "training error"),
                                             ("test_error", None, "test error")],
                        "error (fraction of examples)", "errors (mean and range over seeds)")
    for ax in fig.axes:
        if ax.get_visible() and ax.get_xlabel():
            ax.set_ylim(-0.03, 1.03)
    return fig


def _log_axis(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size and (finite > 0).all() and finite.max() / finite.min() >= 10)


def sweep(summary: xr.Dataset, axis: str) -> plt.Figure:
    """Final test error against one axis; one line per combination of the other axes."""
    return _final_sweep(summary, axis, "final_test_error", None, "final test error (fraction)",
                        "final test error")


def _swept(summary: xr.Dataset, optimizer: str, axis: str) -> bool:
    """Whether the optimizer has runs at two or more values of the axis (Padam along p; not
    SGD+M and AMSGrad beside it, whose panels would be empty)."""
    ran = summary["status"].sel(optimizer=optimizer) != ""
    return int(ran.any([d for d in ran.dims if d != axis]).sum()) >= 2


# a legend lists at most this many series; more are coloured by one axis's value (a colour
# bar) and split into small multiples by the others
MAX_LEGEND = 8


def _ran_values(sub: xr.Dataset, dim: str) -> list:
    """The values of `dim` at which the (selected) summary holds runs."""
    ran = sub["status"] != ""
    ran = ran.any([d for d in ran.dims if d != dim]) if ran.ndim > 1 else ran
    return [v for v, r in zip(sub[dim].values.tolist(), np.atleast_1d(ran.values),
                              strict=True) if r]


def _integer_ticks(ax, x: np.ndarray) -> None:
    """An axis of whole numbers (q, n) is labelled with its grid's values, not 3.2 ... 3.8."""
    if x.size and np.all(np.isfinite(x)) and np.all(x == np.round(x)) and len(x) <= 12:
        ax.set_xticks(x, [f"{int(v)}" for v in x])
        ax.minorticks_off()


def _final_sweep(summary: xr.Dataset, axis: str, variable: str, j: int | None, ylabel: str,
                 what: str) -> plt.Figure:
    """A final value against one axis; one line per combination of the other axes.

    A series (a combination of the other axes' values) has one colour in every panel, so the
    one legend below the panels is true for each. Past MAX_LEGEND series, the axis with the
    most values colours the lines by value (a colour bar) and the others become small
    multiples, one panel per combination."""
    optimizers = [o for o in summary["optimizer"].values.tolist() if _swept(summary, o, axis)]
    optimizers = optimizers or summary["optimizer"].values.tolist()
    others = [d for d in grid_dims(summary) if d not in ("optimizer", "seed", axis)]
    values = {d: sorted({v for o in optimizers for v in _ran_values(summary.sel(optimizer=o), d)},
                        key=lambda v: (isinstance(v, str), v)) for d in others}
    # a constant axis tells no series apart: its one value (where these optimizers ran; the
    # grid may hold others' values, e.g. another optimizer's own axis) is selected throughout
    constant = {d: values[d][0] for d in others if len(values[d]) == 1}
    others = [d for d in others if len(values[d]) > 1]
    series = math.prod(len(values[d]) for d in others)
    colour_by, split = None, []
    if series > MAX_LEGEND:
        numeric = [d for d in others if all(isinstance(v, int | float) for v in values[d])]
        colour_by = max(numeric or others, key=lambda d: len(values[d]))
        split = [d for d in others if d != colour_by]
    panels = [(opt, dict(zip(split, combo, strict=True))) for opt in optimizers
              for combo in itertools.product(*(values[d] for d in split))]
    panels = [(o, fixed) for o, fixed in panels if (summary["status"].sel(
        optimizer=o, **fixed, **constant) != "").any()]
    fig, axes = _panels(len(panels), height=PANEL[1] + (0.3 if colour_by else 0))
    legend_colour = {combo: f"C{k % 10}" for k, combo in
                     enumerate(itertools.product(*(values[d] for d in others)))}
    cmap, norm = None, None
    if colour_by:
        import matplotlib.colors as mcolors

        cmap = _pyplot().get_cmap("viridis")
        vals = np.asarray(values[colour_by], dtype=float)
        log = bool((vals > 0).all() and vals.max() / vals.min() >= 10)
        norm = (mcolors.LogNorm if log else mcolors.Normalize)(vals.min(), vals.max())
    for ax, (opt, fixed) in zip(axes, panels, strict=False):
        sub = summary.sel(optimizer=opt, **fixed, **constant)
        x = sub[axis].values.astype(float)
        rest = [d for d in others if d not in fixed]
        for combo in itertools.product(*(values[d] for d in rest)):
            point = dict(zip(rest, combo, strict=True))
            if any(point[d] not in sub[d].values.tolist() for d in point):
                continue
            da = sub[variable].sel(point) if j is None else sub[variable].sel(j=j, **point)
            ran = (sub["status"].sel(point) != "")
            ok = ran.any("seed").values if "seed" in ran.dims else ran.values
            if "seed" in da.dims:
                mean, std = da.mean("seed", skipna=True), da.std("seed", ddof=1, skipna=True)
            else:
                mean, std = da, 0 * da
            ok = ok & np.isfinite(mean.values)
            if not ok.any():
                continue
            if colour_by:
                colour, label = cmap(norm(float(point[colour_by]))), None
            else:
                key = tuple(point.get(d, fixed.get(d)) for d in others)
                colour, label = legend_colour[key], _label(point) or opt
            ax.errorbar(x[ok], mean.values[ok], yerr=np.nan_to_num(std.values[ok]),
                        marker="o", ms=3, capsize=2, color=colour, label=label)
            if "seed" in da.dims:
                for s in da["seed"].values:
                    ax.plot(x[ok], da.sel(seed=s).values[ok], ".", color=colour,
                            alpha=0.35, ms=3)
            status = sub["status"].sel(point)
            broken = ((status == "diverged").any("seed") if "seed" in status.dims
                      else status == "diverged").values
            if broken.any():
                top = 1.0 if variable == "final_test_error" else np.nanmax(mean.values)
                ax.plot(x[broken], np.full(int(broken.sum()), top), "x", color="red", ms=8,
                        mew=2, label="a seed diverged")
        if _log_axis(x):
            ax.set_xscale("log")
        _integer_ticks(ax, x[np.isfinite(x)])
        if variable == "final_test_error":
            ax.set_ylim(-0.03, 1.03)
        else:
            ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(axis_label(axis))
        ax.set_ylabel(ylabel)
        ax.set_title(", ".join([opt] + [_label({d: v}) for d, v in fixed.items()]))
        ax.grid(alpha=0.3)
    if colour_by:
        mappable = _pyplot().cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(mappable, ax=[a for a in axes if a.get_visible()],
                     label=axis_label(colour_by), shrink=0.8)
    _legend_below(fig, axes)
    _title(fig, f"{summary.attrs['experiment']}: {what} against {axis} "
                "(mean ± std over seeds; dots: single seeds)")
    return fig


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centres: geometric midpoints on a log axis."""
    v = np.log10(values) if log else values.astype(float)
    if len(v) == 1:
        mid = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        inner = (v[1:] + v[:-1]) / 2
        mid = np.concatenate([[v[0] - (inner[0] - v[0])], inner, [v[-1] + (v[-1] - inner[-1])]])
    return 10**mid if log else mid


def _mesh(ax, grid: xr.DataArray, xdim: str, ydim: str, label: str):
    """A heatmap of `grid` (dims ydim, xdim) on log axes, values written in the cells."""
    x, y = grid[xdim].values.astype(float), grid[ydim].values.astype(float)
    xlog, ylog = bool((x > 0).all()), bool((y > 0).all())
    values = grid.transpose(ydim, xdim).values
    mesh = ax.pcolormesh(_edges(x, xlog), _edges(y, ylog), np.ma.masked_invalid(values),
                         vmin=0, vmax=1, cmap="viridis")
    size = 6 if max(values.shape) <= 10 else 5
    for (b, w), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(x[w], y[b], f"{v:.2f}", ha="center", va="center", fontsize=size,
                    color="white" if v < 0.5 else "black")
    for set_scale, set_ticks, set_lim, values_, log, edges in (
            (ax.set_xscale, ax.set_xticks, ax.set_xlim, x, xlog, _edges(x, xlog)),
            (ax.set_yscale, ax.set_yticks, ax.set_ylim, y, ylog, _edges(y, ylog))):
        if log:
            set_scale("log")
        step = math.ceil(len(values_) / 8)  # the grid's own values, at most eight labelled
        set_ticks(values_[::step], [f"{v:g}" for v in values_[::step]])
        set_lim(edges[0], edges[-1])
    ax.minorticks_off()
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel(axis_label(xdim))
    ax.set_ylabel(axis_label(ydim))
    ax.figure.colorbar(mesh, ax=ax, label=label)
    return x, y


def _panel_points(summary: xr.Dataset, keep: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(optimizer, values of the other axes) for each panel that holds runs."""
    ran = (summary["status"] != "")
    if "seed" in ran.dims:
        ran = ran.any("seed")
    rest = [d for d in ran.dims if d not in ("optimizer", *keep)]
    out = []
    for opt in summary["optimizer"].values.tolist():
        for values in itertools.product(*(ran[d].values.tolist() for d in rest)):
            point = dict(zip(rest, values, strict=True))
            if ran.sel(optimizer=opt, **point).any():
                out.append((opt, point))
    return out


def _seed_mean(summary: xr.Dataset, name: str) -> xr.DataArray:
    da = summary[name]
    return da.mean("seed", skipna=True) if "seed" in da.dims else da


def _setting(summary: xr.Dataset, point: dict, name: str):
    """A setting's value at a panel: its grid coordinate, or the summary's shared one."""
    if name in point:
        return point[name]
    return summary[name].item() if name in summary.coords and summary[name].ndim == 0 else None


def _predicted_lambdas(summary: xr.Dataset, optimizer: str, point: dict,
                       batch_sizes: np.ndarray) -> list[tuple[np.ndarray, str, str]]:
    """Tang et al.'s weight-decay bounds at each batch size, with constant 1: (λ, label, line
    style) for each. Adam (Cor. 4.3): it stalls once λ ≫ σ_0^{q−2}. AdamW (Thms 4.4-4.5, Cor.
    4.6): its admissible λ runs from Ω(B²/n ∧ 1), a sufficient lower end, up to Õ(1), where it
    stops training whatever B and σ_0."""
    q, n = _setting(summary, point, "model_q"), _setting(summary, point, "data_n")
    sigma_0 = _setting(summary, point, "model_sigma_0")
    ones = np.ones(len(batch_sizes))
    if optimizer in ("adam", "amsgrad", "padam") and q is not None and sigma_0 is not None:
        return [(ones * float(sigma_0) ** (float(q) - 2), "Cor. 4.3: σ₀^(q−2)", "--")]
    if optimizer in ("adamw", "signsgdw") and n is not None:
        lower = np.minimum(batch_sizes.astype(float) ** 2 / float(n), 1.0)
        return [(lower, "Thm 4.5 lower end B²/n ∧ 1", "--"), (ones, "upper end Õ(1)", ":")]
    return []


def _reached(summary: xr.Dataset, sel: dict, a: str, b: str) -> dict:
    """For .isel: the values of axes `a` and `b` at which some run at `sel` ran (any seed)."""
    ran = summary["status"].sel(sel) != ""
    ran = ran.any("seed") if "seed" in ran.dims else ran
    return {a: ran.any(b).values, b: ran.any(a).values}


def heatmap(summary: xr.Dataset) -> plt.Figure:
    """Final test error over B × λ: one panel per optimizer and value of any further axis.

    Tang's bounds are white lines in (λ, B) coordinates, with constant 1: Adam's stall point
    σ_0^{q−2} (Cor. 4.3, dashed); AdamW's admissible window from the lower end B²/n ∧ 1
    (dashed) to the upper end Õ(1) (dotted, at λ = 1). Cells where training fails (mean final
    train error ≥ 0.25) are hatched and outlined in red, inside the cell, so that a failing
    cell on the panel's edge shows too.
    """
    error, train = _seed_mean(summary, "final_test_error"), _seed_mean(summary,
                                                                       "final_train_error")
    panels = _panel_points(summary, ("batch_size", "weight_decay"))
    fig, axes = _panels(len(panels), height=PANEL[1] + 0.4)
    for ax, (opt, point) in zip(axes, panels, strict=False):
        sel = {"optimizer": opt, **point}
        reached = _reached(summary, sel, "batch_size", "weight_decay")
        grid, fit = error.sel(sel).isel(reached), train.sel(sel).isel(reached)
        lams, bs = _mesh(ax, grid, "weight_decay", "batch_size", "final test error")
        title = [opt] + [_label({d: v}) for d, v in point.items()]
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        fine = np.geomspace(*ylim, 200)
        for lam, label, style in _predicted_lambdas(summary, opt, point, fine):
            inside = (lam >= xlim[0]) & (lam <= xlim[1])
            if inside.any():
                ax.plot(lam, fine, color="white", lw=2, ls=style, label=label)
            else:
                title.append(f"{label} (λ ≥ {lam.min():.2g}) beyond the grid")
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        fails = fit.transpose("batch_size", "weight_decay").values >= 0.25
        edges = _edges(lams, bool((lams > 0).all()))
        yedges = _edges(bs, bool((bs > 0).all()))
        for b, w in zip(*np.nonzero(fails), strict=True):
            _fail_cell(ax, edges[w:w + 2], yedges[b:b + 2])
        ax.set_title(", ".join(title))
    _legend_below(fig, axes, dark=True)
    _title(fig, f"{summary.attrs['experiment']}: final test error over B × λ (mean over "
                 "seeds), with Tang et al.'s bounds (constant 1)")
    return fig


def _fail_cell(ax, xs: np.ndarray, ys: np.ndarray) -> None:
    """A heatmap cell where training fails: hatched, with a red outline drawn inside it (in
    axes-scale fractions of the cell, on linear or log axes alike)."""
    def inset(lo: float, hi: float, log: bool) -> tuple[float, float]:
        if log:
            a, b = np.log10(lo), np.log10(hi)
            return 10 ** (a + 0.06 * (b - a)), 10 ** (b - 0.06 * (b - a))
        return lo + 0.06 * (hi - lo), hi - 0.06 * (hi - lo)

    (x0, x1), (y0, y1) = (inset(*xs, ax.get_xscale() == "log"),
                          inset(*ys, ax.get_yscale() == "log"))
    ax.add_patch(_pyplot().Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="red",
                                     lw=1.8, hatch="//", label="training fails (train error "
                                                               "≥ 0.25)"))


def heatmap_eps(summary: xr.Dataset, threshold: float = 0.25) -> plt.Figure:
    """Final test error over B × Adam's ε, one panel per optimizer and value of any further
    axis. White dots: per ε, the smallest B whose mean test error reaches the threshold (the
    critical batch size); dashed: Tang et al.'s B* ∝ n / ln(1/ε) (Thm 4.2's condition
    n/B ≥ Θ(log 1/ε)), drawn through the dots' geometric centre, since the theorem leaves
    the constant open."""
    error = _seed_mean(summary, "final_test_error")
    panels = _panel_points(summary, ("batch_size", "eps"))
    fig, axes = _panels(len(panels), height=PANEL[1] + 0.4)
    for ax, (opt, point) in zip(axes, panels, strict=False):
        sel = {"optimizer": opt, **point}
        grid = error.sel(sel).isel(_reached(summary, sel, "batch_size", "eps"))
        eps, bs = _mesh(ax, grid, "eps", "batch_size", "final test error")
        values = grid.transpose("eps", "batch_size").values
        star = np.array([next((b for b, e in zip(bs, row, strict=True) if e >= threshold),
                              np.nan) for row in values])
        ok = np.isfinite(star)
        ax.plot(eps[ok], star[ok], "o", mfc="none", mec="white", ms=14, mew=1.5,
                label=f"critical B (test error ≥ {threshold})")  # around the cell's number
        title = [opt] + [_label({d: v}) for d, v in point.items()]
        if ok.sum() >= 1:
            fine = np.geomspace(eps.min(), eps.max(), 100)
            shape = 1 / np.log(1 / fine)
            scale = np.exp(np.mean(np.log(star[ok]) - np.log(1 / np.log(1 / eps[ok]))))
            ylim = ax.get_ylim()
            ax.plot(fine, scale * shape, color="white", ls="--", lw=2,
                    label="B* ∝ n / ln(1/ε) (Tang Thm 4.2) through the dots")
            ax.set_ylim(ylim)
        else:
            title.append("no critical B inside the grid")
        ax.set_title(", ".join(title))
    _legend_below(fig, axes, dark=True)
    _title(fig, f"{summary.attrs['experiment']}: final test error over B × Adam's ε (mean over "
                 "seeds)")
    return fig


def phase(summary: xr.Dataset, threshold: float = 0.25) -> plt.Figure:
    """Final test error over n × SNR, with the measured boundary and its fit.

    Per n, the SNR where the mean test error crosses `threshold` (interpolated in log SNR,
    white dots); the least-squares line through them in (log n, log SNR) (white, solid) and
    the theory's slope −1/q through their centre (white, dashed): Cao et al.'s boundary is
    n·SNR^q = C.
    """
    error = _seed_mean(summary, "final_test_error")
    panels = _panel_points(summary, ("data_n", "data_snr"))
    fig, axes = _panels(len(panels), height=PANEL[1] + 0.4)
    for ax, (opt, point) in zip(axes, panels, strict=False):
        sel = {"optimizer": opt, **point}
        grid = error.sel(sel).isel(_reached(summary, sel, "data_n", "data_snr"))
        n, _ = _mesh(ax, grid, "data_n", "data_snr", "final test error")
        slope, intercept, star = boundary_fit(grid, threshold)
        ok = np.isfinite(star)
        ax.plot(n[ok], star[ok], "o", color="white", mec="black", ms=5,
                label=f"test error = {threshold} (per n)")
        title = [opt] + [_label({d: v}) for d, v in point.items()]
        if np.isfinite(slope):
            line = np.geomspace(n.min(), n.max(), 50)
            ax.plot(line, 10 ** (intercept + slope * np.log10(line)), color="white", lw=1.5,
                    label="fitted boundary")
            q = point.get("model_q", summary["model_q"].item() if "model_q" in summary.coords
                          and summary["model_q"].ndim == 0 else None)
            if q is not None:
                centre = np.log10(n[ok]).mean(), np.log10(star[ok]).mean()
                ax.plot(line, 10 ** (centre[1] - (np.log10(line) - centre[0]) / float(q)),
                        color="white", ls="--", lw=1.5, label="slope -1/q (n SNR^q = C)")
            title.append(f"slope {slope:.2f}")
        ax.set_title(", ".join(title))
    _legend_below(fig, axes, dark=True)
    _title(fig, f"{summary.attrs['experiment']}: final test error over n × SNR (mean over "
                 "seeds)")
    return fig


def across_boundary(summary: xr.Dataset, optimizer: str, threshold: float = 0.25) -> plt.Figure:
    """At the largest n: the dynamics at the grid's SNR just below the measured boundary
    (harmful side: noise memorization wins) and just above it (benign side: signal learning
    wins), for each value of the other axes (e.g. q)."""
    sets = [s for s in PROBE_SETS.values()
            if s.dynamics and all(x.variable in summary for x in s.dynamics)]
    series = [(x.variable, x.j, x.label) for s in sets for x in s.dynamics]
    sub = summary.sel(optimizer=optimizer)
    n = float(sub["data_n"].max())
    error = _seed_mean(sub, "final_test_error").sel(data_n=n)
    rest = [d for d in error.dims if d != "data_snr"]
    panels = []
    for values in itertools.product(*(error[d].values.tolist() for d in rest)):
        point = dict(zip(rest, values, strict=True))
        e = error.sel(point).sortby("data_snr").dropna("data_snr")  # this optimizer's SNRs
        snr, values_ = e["data_snr"].values, e.values
        k = len(values_) - 1  # scanning down from the largest SNR, as boundary_snr does
        while k >= 0 and values_[k] <= threshold:
            k -= 1
        if 0 <= k < len(values_) - 1:
            panels += [(point, "harmful", snr[k]), (point, "benign", snr[k + 1])]
    fig, axes = _panels(max(1, len(panels)))
    epoch = summary["epoch"].values
    for ax, (point, side, value) in zip(axes, panels, strict=False):
        cell = sub.sel(data_n=n, data_snr=value, **point)
        for k, (var, j, label) in enumerate(series):
            colour, style = STYLES[k % len(STYLES)]
            mean, lo, hi = _over_seeds(cell[var].sel(j=j))
            ok = np.isfinite(mean)
            ax.plot(epoch[ok], mean[ok], style, color=colour, label=label,
                    lw=2.2 if style == "--" else 1.4)
            ax.fill_between(epoch[ok], lo[ok], hi[ok], color=colour, alpha=0.15, lw=0)
        test = float(_seed_mean(cell, "final_test_error"))
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(" / ".join(s.dynamics_ylabel for s in sets))
        ax.set_title(f"{side}: {_label({'data_snr': value, **point})} (test error {test:.2f})")
        ax.grid(alpha=0.3)
    if not panels:
        axes[0].text(0.5, 0.5, "no boundary inside the grid", ha="center",
                     transform=axes[0].transAxes)
    _legend_below(fig, axes)
    _title(fig, f"{summary.attrs['experiment']}, {optimizer}: both sides of the boundary at "
                 f"n = {n:g} (mean and range over seeds)")
    return fig


def feature_sweep(summary: xr.Dataset, axis: str) -> plt.Figure:
    """Final feature learning max_r <w_{+1,r}, v> against one axis (as `sweep` does for the
    test error): which side of zero a setting ends on."""
    return _final_sweep(summary, axis, "final_feature_learning_max", 1,
                        "final max_r <w_(+1,r), v> (1)", "final feature learning")


def _run_points(summary: xr.Dataset):
    """Every run of a summary: (its cell's coordinates, the cell)."""
    ran = summary["status"] != ""
    dims = [d for d in grid_dims(summary)]
    for values in itertools.product(*(summary[d].values.tolist() for d in dims)):
        point = dict(zip(dims, values, strict=True))
        if bool(ran.sel(point)):
            yield point, summary.sel(point)


def rmed(summary: xr.Dataset) -> plt.Figure:
    """R_med per layer against epoch, one line per optimizer (mean over seeds, range as a
    band); a triangle marks where an optimizer's feature learning flips (median over the seeds
    that flip) [Jiang et al.; Zou et al. Lemma 5.3]."""
    layers = summary["layer"].values.tolist()
    rest = [d for d in grid_dims(summary) if d not in ("optimizer", "seed")]
    combos = list(itertools.product(*(summary[d].values.tolist() for d in rest)))
    fig, axes = _panels(len(layers) * len(combos))
    epoch = summary["epoch"].values
    panels = [(layer, dict(zip(rest, c, strict=True))) for c in combos for layer in layers]
    for ax, (layer, point) in zip(axes, panels, strict=False):
        for k, opt in enumerate(summary["optimizer"].values.tolist()):
            cell = summary.sel(optimizer=opt, **point)
            if not (np.atleast_1d(cell["status"].values) != "").any():
                continue
            mean, lo, hi = _over_seeds(cell["rmed"].sel(layer=layer))
            ok = np.isfinite(mean)
            colour = f"C{k % 10}"
            ax.plot(epoch[ok], mean[ok], color=colour, label=opt)
            ax.fill_between(epoch[ok], lo[ok], hi[ok], color=colour, alpha=0.15, lw=0)
            if "feature_learning_max" in cell:
                feature = cell["feature_learning_max"].sel(j=1)
                seeds = feature.transpose(..., "epoch").values.reshape(-1, len(epoch))
                flips = [flip_epoch(epoch, f) for f in seeds]
                flips = [f for f in flips if np.isfinite(f)]
                if flips:
                    at = float(np.median(flips))
                    ax.plot(at, np.interp(at, epoch[ok], mean[ok]), "v", color=colour, ms=8,
                            mec="black", label="feature learning flips" if k == 0 else None)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("R_med = max |H_ii| / median |H_ii| (1)")
        ax.set_title(", ".join([f"layer {layer}"] + [_label({d: v}) for d, v in point.items()]))
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    _title(fig, f"{summary.attrs['experiment']}: uniformity of the Hessian diagonal per layer "
                "(Jiang et al.), from the same initialisation")
    return fig


def rmed_at_flip(summary: xr.Dataset) -> plt.Figure:
    """R_med of the first layer where feature learning flips, against the final test error,
    one point per run (hollow: runs that never flip, at their last epoch)."""
    fig, (ax,) = _panels(1)
    epoch = summary["epoch"].values
    layer = summary["layer"].values.tolist()[0]
    colours = {o: f"C{k % 10}" for k, o in enumerate(summary["optimizer"].values.tolist())}
    labelled = set()
    for point, cell in _run_points(summary):
        feature = cell["feature_learning_max"].sel(j=1).values
        series = cell["rmed"].sel(layer=layer).values
        at = flip_epoch(epoch, feature)
        flipped = np.isfinite(at)
        k = int(np.searchsorted(epoch, at)) if flipped else int(np.flatnonzero(
            np.isfinite(series))[-1])
        opt = point["optimizer"]
        label = f"{opt}{'' if flipped else ' (no flip: last epoch)'}"
        ax.plot(float(cell["final_test_error"]), series[k], "o" if flipped else "o",
                color=colours[opt], mfc=colours[opt] if flipped else "none", ms=6,
                label=None if label in labelled else label)
        labelled.add(label)
    ax.set_yscale("log")
    ax.set_xlabel("final test error (fraction)")
    ax.set_ylabel(f"R_med of layer {layer} at the flip (1)")
    ax.grid(alpha=0.3)
    _legend_below(fig, [ax])
    _title(fig, f"{summary.attrs['experiment']}: does R_med where feature learning flips "
                "predict the test error?")
    return fig


def convex(summary: xr.Dataset) -> plt.Figure:
    """E3: Adam and GD on the linear logistic model converge to the same solution."""
    fig, axes = _panels(3)
    step = summary["step"].values[1:]
    colours = {o: f"C{k % 10}" for k, o in enumerate(summary["optimizer"].values.tolist())}
    for ax, (name, label) in zip(axes, [
            ("distance", "‖w_adam − w_gd‖ / ‖w*‖ (1)"),
            ("distance_to_optimum", "‖w − w*‖ / ‖w*‖ (1)"),
            ("test_error", "test error (fraction)")], strict=False):
        da = summary[name].isel(step=slice(1, None))
        groups = [(None, da)] if "optimizer" not in da.dims else [
            (o, da.sel(optimizer=o)) for o in summary["optimizer"].values.tolist()]
        for opt, values in groups:
            lo, mid, hi = (values.min("seed"), values.mean("seed"), values.max("seed"))
            colour = colours[opt] if opt else "black"  # one colour an optimizer, every panel
            ax.plot(step, mid, color=colour, label=opt or "Adam vs GD (their distance)")
            ax.fill_between(step, lo, hi, color=colour, alpha=0.25)
        ax.set_xscale("log")
        if name != "test_error":
            ax.set_yscale("log")
        ax.set_xlabel("step (full batch)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    _title(fig, f"{summary.attrs['experiment']}: linear logistic model, "
                 f"λ = {summary.attrs['weight_decay']:g} (Zou Thm 4.2)")
    return fig


def save(fig: plt.Figure, *paths) -> None:
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1])
    _pyplot().close(fig)
