"""What a claim can measure: one row per metric in METRICS, with the values it can take.

A metric reads an experiment's summary (adamgen.aggregate), already narrowed to the claim's
grid point, and returns one value per seed (and per any axis the claim averages or compares
along). Its row says what it means, the set of values it can take (`range`: an interval, or the
values of a grid axis) and whether it can be undefined on a grid (a boundary beyond the grid's
last value, an event that never happens): what `adamgen.claims.falsifiable` needs to show that
a claim could have failed.

Claim fields a metric reads: `j` (the class of per-class probes), `layer` (per-layer probes),
`threshold` (boundary metrics), `variable` (the variable a boundary is located on) and `at` (which
R_med of a run: `final`, `median` along the run, or `window`, the median over the time window
of Jiang et al.'s Theorem 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..analysis import boundary_fit, flip_epoch
from ..errors import ConfigError
from .ranges import AT_LEAST_ONE, NON_NEGATIVE, REALS, UNIT, Interval, Range, Values


@dataclass(frozen=True)
class Metric:
    """One row of METRICS: `compute(summary, claim)`, its meaning, the values it can take
    (a Range, or a function of the summary and claim giving one) and whether a grid can leave
    it undefined."""

    compute: Callable[[xr.Dataset, Any], xr.DataArray]
    doc: str
    range: Range | Callable[[xr.Dataset, Any], Range]
    undefined: bool = False

    def values(self, ds: xr.Dataset, c) -> Range:
        return self.range(ds, c) if callable(self.range) else self.range


def _final(name: str):
    return lambda ds, c: ds[f"final_{name}"]


def _per_class(name: str):
    return lambda ds, c: ds[f"final_{name}"].sel(j=c.j, drop=True)


def _series(ds: xr.Dataset, name: str, c) -> xr.DataArray:
    return ds[name].sel(j=c.j, drop=True)


def _peak_feature(ds, c):
    return _series(ds, "feature_learning_max", c).max("epoch", skipna=True)


def _feature_rise(ds, c):
    """How far feature learning rose above its value at initialisation, at its peak."""
    series = _series(ds, "feature_learning_max", c)
    return series.max("epoch", skipna=True) - series.isel(epoch=0)


def _ratio_to_initial(name: str):
    """final / initial of a per-class summary (undefined where the initial value is ≤ 0)."""
    def metric(ds, c):
        series = _series(ds, name, c)
        initial = series.isel(epoch=0, drop=True)
        return (ds[f"final_{name}"].sel(j=c.j, drop=True) / initial).where(initial > 0)
    return metric


def _weight_norm_ratio(ds, c):
    return ds["final_weight_norm"] / ds["weight_norm"].isel(epoch=0)


def _signal_over_noise(ds, c):
    """log10 of the final signal coefficient max_r γ_{j,r} over the largest noise coefficient
    max_{i, r} ρ̄_{j,r,i} (undefined where either is ≤ 0)."""
    gamma = ds["final_signal_learning_max"].sel(j=c.j, drop=True)
    rho = ds["final_rho_pos_max"].sel(j=c.j, drop=True)
    return np.log10((gamma / rho).where((gamma > 0) & (rho > 0)))


def _first_above(values: xr.DataArray, status: xr.DataArray, dim: str,
                 threshold: float) -> xr.DataArray:
    """The smallest coordinate along `dim` where `values` ≥ threshold; NaN if none.

    Cells without a run are skipped; a diverged run before the first crossing makes the
    boundary unknown (NaN), since its value says nothing either way.
    """
    coords = values[dim].values.astype(float)
    order = [*(d for d in values.dims if d != dim), dim]
    vals = values.transpose(*order).values
    state = status.transpose(*order).values
    out = np.full(vals.shape[:-1], np.nan)
    for idx in np.ndindex(out.shape):
        for k in range(len(coords)):
            if state[idx][k] == "":
                continue
            if state[idx][k] == "diverged" or not np.isfinite(vals[idx][k]):
                break
            if vals[idx][k] >= threshold:
                out[idx] = coords[k]
                break
    dims = order[:-1]
    return xr.DataArray(out, dims=dims, coords={d: values[d] for d in dims})


def _first_along(dim: str, default: str):
    """The smallest value of the axis `dim` whose final `variable` (default `default`) reaches the
    threshold, per seed."""
    def metric(ds, c):
        if dim not in ds.dims:
            raise ConfigError(f"claim {c.id}.metric", f"{c.metric} needs the grid axis {dim}")
        return _first_above(ds[f"final_{c.variable or default}"], ds["status"], dim, c.threshold)
    return metric


def populated(ds: xr.Dataset, dim: str) -> np.ndarray:
    """The values of a grid axis at which the (selected) summary holds runs."""
    values = ds[dim].values.astype(float)
    if "status" not in ds or dim not in ds["status"].dims:
        return values
    ran = (ds["status"] != "").any([d for d in ds["status"].dims if d != dim])
    return values[ran.values]


def _grid(dim: str):
    """The range of a boundary along `dim`: the values of that axis that hold runs."""
    def values(ds, c) -> Range:
        return Values(tuple(float(v) for v in populated(ds, dim)))

    values.__doc__ = f"the grid's values of {dim}"
    return values


def _boundary_over_n(ds, c, per_n):
    """`per_n(values[data_n, data_snr])` for each cell of the other axes (each seed), where
    values is the final `variable` variable (default test_error)."""
    values = ds[f"final_{c.variable or 'test_error'}"]
    missing = {"data_n", "data_snr"} - set(values.dims)
    if missing:
        raise ConfigError(f"claim {c.id}.metric", f"{c.metric} needs the axes data.n and "
                          f"data.snr (missing: {', '.join(sorted(missing))})")
    out = _each(values, [d for d in values.dims if d not in ("data_n", "data_snr")], per_n)
    # cells not run are skipped by the boundary scan; a diverged one makes it undefined
    diverged = (ds["status"] == "diverged").any(["data_n", "data_snr"])
    return out.where(~diverged)


def _each(values: xr.DataArray, rest: list[str], per_n) -> xr.DataArray:
    if not rest:
        value = per_n(values)
        return value if isinstance(value, xr.DataArray) else xr.DataArray(value)
    dim = rest[0]
    parts = [_each(values.isel({dim: k}), rest[1:], per_n) for k in range(values.sizes[dim])]
    return xr.concat(parts, dim=values[dim])


def _boundary_slope(ds, c):
    """Slope of log SNR* against log n (E7; Cao et al.: −1/q), per seed."""
    return _boundary_over_n(ds, c, lambda e: boundary_fit(e, c.threshold)[0])


def _log10_boundary_snr(ds, c):
    """log10 of the SNR where the final value falls below the threshold, per n."""
    def per_n(e):
        star = boundary_fit(e, c.threshold)[2]
        return xr.DataArray(np.log10(star), dims="data_n", coords={"data_n": e["data_n"]})

    return _boundary_over_n(ds, c, per_n)


def _q(ds, c) -> float:
    if "model_q" not in ds.coords or ds["model_q"].ndim:
        raise ConfigError(f"claim {c.id}.where", f"{c.metric} needs one value of model.q "
                          "(fix it in 'where')")
    return float(ds["model_q"])


def _boundary_collapse(ds, c):
    """max over n of n·SNR*(n)^q divided by its min: how far the boundary's points are from
    one curve n·SNR^q = C (1 on it; undefined with fewer than two boundary points)."""
    q = _q(ds, c)

    def per_n(e):
        star = boundary_fit(e, c.threshold)[2]
        C = e["data_n"].values.astype(float) * star**q
        C = C[np.isfinite(C)]
        return float(C.max() / C.min()) if C.size >= 2 else np.nan

    return _boundary_over_n(ds, c, per_n)


def _snr_span(ds, c) -> Range:
    """log10 of the grid's SNR span"""
    snr = populated(ds, "data_snr")
    return Interval(math.log10(np.nanmin(snr)), math.log10(np.nanmax(snr)), True, True)


def _layer(ds, c) -> str:
    return c.layer if c.layer is not None else ds["layer"].values.tolist()[0]


def _in_window(ds: xr.Dataset) -> xr.DataArray:
    """Probe epochs inside the window of Jiang et al.'s Theorem 1: after the first epoch at
    which its opening condition held, before the first at which its closing one did
    (adamgen.probes.jiang_window records both conditions)."""
    opened = (ds["window_open"] > 0).cumsum("epoch") > 0
    closed = (ds["window_close"] > 0).cumsum("epoch") > 0
    return opened & ~closed


def _at(ds, c, series: xr.DataArray, final: xr.DataArray) -> xr.DataArray:
    """A run's value of a trajectory `at` final (default), median along the run (probe epochs
    after the first), median over the theorem's window, or at the window's end (its last
    probe epoch: NaN if the window is empty)."""
    at = c.at or "final"
    if at == "final":
        return final
    if at == "median":
        return series.isel(epoch=slice(1, None)).median("epoch", skipna=True)
    if "window_open" not in ds:
        raise ConfigError(f"claim {c.id}.at", f"'{at}' needs the jiang_window probe set "
                          "(probes.extra)")
    inside = series.where(_in_window(ds))
    if at == "window":
        return inside.median("epoch", skipna=True)

    def last(values: np.ndarray) -> float:  # window_end: the window's last probe
        finite = np.flatnonzero(np.isfinite(values))
        return float(values[finite[-1]]) if finite.size else np.nan

    return xr.apply_ufunc(last, inside, input_core_dims=[["epoch"]], vectorize=True)


def _rmed_per_run(ds, c) -> xr.DataArray:
    """A run's R_med of the claim's layer, `at` (see `_at`)."""
    layer = _layer(ds, c)
    return _at(ds, c, ds["rmed"].sel(layer=layer, drop=True),
               ds["final_rmed"].sel(layer=layer, drop=True))


def _uniformity_per_run(ds, c) -> xr.DataArray:
    """A run's R_u = max_i u_i² / median_i u_i² of W_1's leading left singular vector u
    (Jiang et al. §6), `at` (see `_at`)."""
    return _at(ds, c, ds["singular_uniformity"], ds["final_singular_uniformity"])


def _rank_one_deficit(ds, c) -> xr.DataArray:
    """1 − the share of ‖W_1‖_F² in its top singular value, `at` (see `_at`)."""
    return 1 - _at(ds, c, ds["rank1"], ds["final_rank1"])


def _best(name: str):
    """The smallest value of a probe along the run (Zou Thm 4.1: 'we can find' an iterate)."""
    return lambda ds, c: ds[name].min("epoch", skipna=True)


def _slope_over_d(ds, c, transform, log_d, per_run=_rmed_per_run):
    """Least-squares slope of transform(per_run) (R_med by default) against log_d(d), along
    data.d, per seed."""
    values = transform(per_run(ds, c))
    if "data_d" not in values.dims:
        raise ConfigError(f"claim {c.id}.metric", f"{c.metric} needs the grid axis data.d")
    x = log_d(values["data_d"].values.astype(float))

    def slope(v):
        ok = np.isfinite(v)
        return np.polyfit(x[ok], v[ok], 1)[0] if ok.sum() >= 2 else np.nan

    return xr.apply_ufunc(slope, values, input_core_dims=[["data_d"]], vectorize=True)


def _rmed_slope_log_d(ds, c):
    """Slope of R_med against ln d (Jiang et al.: Ω(log d) for SGD+M), per seed."""
    return _slope_over_d(ds, c, lambda r: r, np.log)


def _rmed_excess_slope(ds, c):
    """Slope of log10(R_med − 1) against log10 d (Jiang et al.: R_med^Adam = 1 ± o(1), so
    R_med − 1 shrinks as d grows: a negative slope), per seed."""
    return _slope_over_d(ds, c, lambda r: np.log10((r - 1).where(r > 1)), np.log10)


def _uniformity_excess_slope(ds, c):
    """Slope of log10(R_u − 1) against log10 d (Adam's u is a sign vector up to o(1): R_u − 1
    shrinks as d grows), per seed."""
    return _slope_over_d(ds, c, lambda r: np.log10((r - 1).where(r > 1)), np.log10,
                         _uniformity_per_run)


def _flip_epoch(ds, c):
    """The epoch where feature learning turns negative after its peak; NaN if it never does."""
    feature = _series(ds, "feature_learning_max", c)
    return xr.apply_ufunc(lambda f: flip_epoch(ds["epoch"].values, f), feature,
                          input_core_dims=[["epoch"]], vectorize=True)


def _probe_epochs(ds, c) -> Range:
    """the probe epochs after 0"""
    return Values(tuple(float(e) for e in ds["epoch"].values[1:]))


def _final_weights(ds, c):
    if "final_weights" not in ds:
        raise KeyError("final_weights (set probes.store_weights: true for this experiment)")
    return ds["final_weights"]


POSITIVE_REALS = Interval(0.0, math.inf, False, False)

METRICS: dict[str, Metric] = {
    "train_error": Metric(_final("train_error"), "final training error", UNIT),
    "test_error": Metric(_final("test_error"), "final test error", UNIT),
    "train_loss": Metric(_final("train_loss"), "final training loss", NON_NEGATIVE),
    "test_loss": Metric(_final("test_loss"), "final test loss", NON_NEGATIVE),
    "weight_norm": Metric(_final("weight_norm"), "final ‖W‖_F", NON_NEGATIVE),
    "grad_norm_l1": Metric(_final("grad_norm_l1"), "final ‖∇L‖_1", NON_NEGATIVE),
    "grad_norm_l2": Metric(_final("grad_norm_l2"), "final ‖∇L‖_F", NON_NEGATIVE),
    "feature_learning": Metric(_per_class("feature_learning_max"),
                               "final max_r ⟨w_{j,r}, j v⟩", REALS),
    "feature_learning_peak": Metric(_peak_feature, "largest max_r ⟨w_{j,r}, j v⟩ along the run",
                                    REALS),
    "feature_learning_rise": Metric(_feature_rise, "peak minus initial max_r ⟨w_{j,r}, j v⟩",
                                    NON_NEGATIVE),
    "noise_memorization_min": Metric(
        _per_class("noise_memorization_min"),
        "final min_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩ (Zou Fig. 2, Tang Figs. 3(a)-4(a))", REALS),
    "noise_memorization_max": Metric(
        _per_class("noise_memorization_max"),
        "final max_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩ (Tang Fig. 3(b))", REALS),
    "noise_memorization_min_ratio": Metric(
        _ratio_to_initial("noise_memorization_min"),
        "final over initial min_i max_r ⟨w_{j,r}, ξ_i⟩", REALS, undefined=True),
    "noise_memorization_max_ratio": Metric(
        _ratio_to_initial("noise_memorization_max"),
        "final over initial max_i max_r ⟨w_{j,r}, ξ_i⟩", REALS, undefined=True),
    "weight_norm_ratio": Metric(_weight_norm_ratio, "final ‖W‖_F / initial ‖W‖_F",
                                NON_NEGATIVE),
    "signal_over_noise": Metric(
        _signal_over_noise, "log10 of final max_r γ_{j,r} over final max_{i,r} ρ̄_{j,r,i} "
        "(signal-noise decomposition, Cao et al.)", REALS, undefined=True),
    "decomposition_residual": Metric(
        _final("decomposition_residual"), "final part of W − W(0) outside span{μ, ξ_i}, "
        "relative", NON_NEGATIVE),
    "critical_batch_size": Metric(
        _first_along("batch_size", "test_error"),
        "smallest B whose final `variable` (test_error) reaches the threshold",
        _grid("batch_size"), undefined=True),
    "stall_boundary": Metric(
        _first_along("weight_decay", "train_error"),
        "smallest λ whose final `variable` (train_error) reaches the threshold",
        _grid("weight_decay"), undefined=True),
    "switch_p": Metric(_first_along("p", "test_error"),
                       "smallest Padam p whose final `variable` (test_error) reaches the threshold",
                       _grid("p"), undefined=True),
    "boundary_slope": Metric(
        _boundary_slope, "slope of log SNR* against log n, SNR* where the final `variable` "
        "(test_error) crosses the threshold (Cao et al.: −1/q)", REALS, undefined=True),
    "log10_boundary_snr": Metric(_log10_boundary_snr, "log10 SNR* per n", _snr_span,
                                 undefined=True),
    "boundary_collapse": Metric(
        _boundary_collapse, "max over min across n of n·SNR*^q (1: every boundary point on "
        "one curve n·SNR^q = C)", AT_LEAST_ONE, undefined=True),
    "rmed": Metric(lambda ds, c: _rmed_per_run(ds, c),
                   "R_med = max |H_ii| / median |H_ii| of a layer, `at` final, median or window",
                   AT_LEAST_ONE, undefined=True),
    "rmed_slope_log_d": Metric(_rmed_slope_log_d, "slope of R_med against ln d", REALS,
                               undefined=True),
    "rmed_excess_slope": Metric(_rmed_excess_slope,
                                "slope of log10(R_med − 1) against log10 d", REALS,
                                undefined=True),
    "singular_uniformity": Metric(
        _uniformity_per_run, "R_u = max u_i² / median u_i² of W_1's leading left singular "
        "vector (Jiang et al. §6), `at` final or window_end", AT_LEAST_ONE, undefined=True),
    "singular_uniformity_excess_slope": Metric(
        _uniformity_excess_slope, "slope of log10(R_u − 1) against log10 d", REALS,
        undefined=True),
    "rank_one_deficit": Metric(
        _rank_one_deficit, "1 − the share of ‖W_1‖_F² in its top singular value, `at` final "
        "or window_end", UNIT, undefined=True),
    "grad_norm_l1_best": Metric(_best("grad_norm_l1"), "smallest ‖∇L‖_1 along the run (at "
                                "its probe epochs)", NON_NEGATIVE),
    "grad_norm_l2_best": Metric(_best("grad_norm_l2"), "smallest ‖∇L‖_F along the run (at "
                                "its probe epochs)", NON_NEGATIVE),
    "flip_epoch": Metric(_flip_epoch, "first epoch after its peak with negative feature "
                         "learning", _probe_epochs, undefined=True),
    "final_weights": Metric(_final_weights, "final weights (with a contrast as "
                            "relative_distance: ‖W_b − W_a‖ / ‖W_a‖)", NON_NEGATIVE),
    # the convex counterpart (adamgen.convex)
    "distance": Metric(_final("distance"), "final ‖w_adam − w_gd‖ / ‖w*‖", NON_NEGATIVE),
    "distance_peak": Metric(lambda ds, c: ds["distance"].max("step", skipna=True),
                            "largest ‖w_adam − w_gd‖ / ‖w*‖ along training", NON_NEGATIVE),
    "distance_to_optimum": Metric(_final("distance_to_optimum"), "final ‖w − w*‖ / ‖w*‖",
                                  NON_NEGATIVE),
    "distance_shrink": Metric(lambda ds, c: ds["final_distance"] / ds["distance"].max("step"),
                              "final over largest ‖w_adam − w_gd‖ along training", UNIT),
}


def describe_metrics_markdown() -> str:
    """The metric table of config/README.md (`adamgen keys --markdown` prints it too)."""
    rows = ["| metric | what | values |", "| --- | --- | --- |"]
    for name, m in METRICS.items():
        values = m.range.__doc__ if callable(m.range) else str(m.range)
        values += ", or undefined" if m.undefined else ""
        rows.append(f"| `{name}` | {m.doc.replace('|', '∣')} | {values} |")
    return "\n".join(rows)
