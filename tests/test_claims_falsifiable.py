"""Every claim of the shipped claims files can fail.

For each claim: find a value its metric can take (`adamgen.claims.falsifiable`: the metric's
declared range, combined across a contrast) that its expectation rejects, build a summary of
the claim's experiment (its planned grid, every variable its runs record) in which the metric
takes exactly that value, and check that the verdict is "fails". A claim whose expectation
covers every value its metric can take fails this test, named by its id. Where the metric can
be undefined on a grid, the claim must say what that means (`undefined`), and an undefined
value must give that verdict, with its reason.
"""

import functools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from summaries import cnn_summary, convex_summary

from adamgen import claims
from adamgen.claims import metrics
from adamgen.claims.ranges import Interval, Values
from adamgen.config import load_yaml
from adamgen.planner import plan, plan_convex

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["config.yaml", "paper.yaml", "cifar.yaml", "tiny.yaml"]
CLAIMS = [c for name in ("claims.yaml", "claims_tiny.yaml")
          for c in claims.load_claims(ROOT / "config" / name)]


@functools.cache
def _experiments() -> dict:
    """Every experiment of the shipped configs, by name: a list, one per config that has it
    (the default config's small cao_e7 and the paper config's full one)."""
    out = {}
    for name in CONFIGS:
        config = load_yaml(ROOT / "config" / name)
        for source in (plan(config), plan_convex(config)):
            for key, value in source.items():
                out.setdefault(key, []).append(value)
    return out


@functools.cache
def _summaries(name: str) -> list[xr.Dataset]:
    return [(convex_summary if hasattr(e, "seeds") else cnn_summary)(e)
            for e in _experiments()[name]]


def _base(c) -> xr.Dataset:
    """A summary of the claim's experiment from the first config that holds its grid point."""
    for ds in _summaries(c.experiment):
        if all(claims._select(ds, replace(c, where=w, compare=None, contrast=None)) is not None
               for w in _sides(c)):
            return ds
    raise AssertionError(f"claim {c.id}: no shipped config runs its grid point")


# --- writing a target value of a claim's metric into the summary ---------------------------

def _mask(da: xr.DataArray, where: dict) -> xr.DataArray:
    mask = xr.ones_like(da, dtype=bool)
    for dim, value in where.items():
        if dim in da.dims:
            coord = da[dim]
            same = (coord == value) if coord.dtype.kind in "OUS" else (
                abs(coord.astype(float) - float(value)) <= 1e-9 * abs(float(value)))
            mask = mask & same
    return mask


def _set(ds: xr.Dataset, name: str, where: dict, value) -> None:
    da = ds[name]
    ds[name] = da.where(~_mask(da, where), value)


def _series(ds, name, where, values) -> None:
    """A trajectory over the probe epochs: `values` [epoch]."""
    _set(ds, name, where, xr.DataArray(np.asarray(values, float), dims="epoch",
                                       coords={"epoch": ds["epoch"]}))


def _boundary_plane(snr: np.ndarray, star: float, thr: float) -> np.ndarray:
    """Values over ascending SNRs whose crossing of `thr`, interpolated in log SNR as
    `analysis.boundary_snr` does, is at `star` (inside the grid, above its smallest SNR)."""
    k = int(np.searchsorted(snr, star))  # snr[k - 1] < star <= snr[k]
    f = (math.log(star) - math.log(snr[k - 1])) / (math.log(snr[k]) - math.log(snr[k - 1]))
    out = np.where(np.arange(len(snr)) < k, 2 * thr, 0.0)
    if f <= 0.5:
        out[k - 1], out[k] = thr / (1 - f), 0.0
    else:
        out[k - 1], out[k] = 2 * thr, 2 * thr - thr / f
    return out


def _stars(ns: np.ndarray, snr: np.ndarray, log_star_of_n) -> np.ndarray:
    return np.array([10 ** log_star_of_n(n) for n in ns])


def _plane(ds, c, where, stars_by_n) -> None:
    """Final values over data_n × data_snr with the boundary SNR* of each n (NaN: none)."""
    name = f"final_{c.variable or 'test_error'}"
    snr = metrics.populated(ds.sel({k: v for k, v in where.items() if k in ds.dims}),
                             "data_snr")
    for n, star in stars_by_n.items():
        column = (np.zeros(len(snr)) if not np.isfinite(star)
                  else _boundary_plane(snr, star, c.threshold))
        for s, value in zip(snr, column, strict=True):
            _set(ds, name, {**where, "data_n": n, "data_snr": s}, value)


def _snr_line(ds, c, where, slope, collapse=None):
    """SNR* per n on a line of the given slope in log-log coordinates, inside the grid (or, for
    `collapse`, n·SNR*^q equal at every n but the last, which is `collapse` times larger)."""
    sub = ds.sel({k: v for k, v in where.items() if k in ds.dims})
    ns = metrics.populated(sub, "data_n")
    snr = metrics.populated(sub, "data_snr")
    lo, hi = math.log10(snr[1]), math.log10(snr[-1])
    x = np.log10(ns) - np.log10(ns).mean()
    if collapse is None:
        centre = 0.5 * (lo + hi)
        return dict(zip(ns, 10 ** (centre + slope * x), strict=True))
    q = float(sub["model_q"]) if "model_q" in sub.coords else 3.0
    C = np.full(len(ns), 1.0)
    C[-1] = collapse
    log_star = (np.log10(C) - np.log10(ns)) / q
    log_star += 0.5 * (lo + hi) - log_star.mean()
    return dict(zip(ns, 10 ** log_star, strict=True))


def _at_write(name: str, layered: bool = False):
    """A trajectory `name` equal to `value` wherever the claim's `at` reads it (its final
    value, along the run, and the theorem's window open from the first probe on)."""
    def write(ds, c, where, value) -> None:
        if layered:
            where = {**where, "layer": c.layer if c.layer is not None
                     else ds["layer"].values[0]}
        at = c.at or "final"
        if at == "final":
            _set(ds, f"final_{name}", where, value)
            return
        _set(ds, name, where, value)
        if at in ("window", "window_end"):
            window = {k: v for k, v in where.items() if k != "layer"}
            is_open = np.isfinite(value) if np.ndim(value) == 0 else True
            _series(ds, "window_open", window, np.r_[0.0, np.ones(len(ds["epoch"]) - 1)]
                    if is_open else np.zeros(len(ds["epoch"])))
            _series(ds, "window_close", window, np.zeros(len(ds["epoch"])))
    return write


_rmed_at = _at_write("rmed", layered=True)


def _over_d(ds, c, where, per_d, write=_rmed_at) -> None:
    for d in metrics.populated(ds.sel({k: v for k, v in where.items() if k in ds.dims}),
                                "data_d"):
        write(ds, c, {**where, "data_d": d}, per_d(d))


def _first_at(ds, c, where, dim, default, value) -> None:
    """The final `variable` along `dim`: below the threshold before `value`, above from it."""
    name = f"final_{c.variable or default}"
    for x in ds[dim].values.astype(float):
        above = np.isfinite(value) and x >= value
        _set(ds, name, {**where, dim: x}, max(1.0, 2 * c.threshold) if above else 0.0)


def _per_class(name):
    return lambda ds, c, where, v: _set(ds, f"final_{name}", {**where, "j": c.j}, v)


def _ratio(name):
    def write(ds, c, where, v):
        initial = 0.0 if not np.isfinite(v) else 1.0
        _series(ds, name, {**where, "j": c.j}, np.r_[initial, np.ones(len(ds["epoch"]) - 1)])
        _set(ds, f"final_{name}", {**where, "j": c.j}, v if np.isfinite(v) else 1.0)
    return write


def _flip(ds, c, where, v):
    epochs = ds["epoch"].values
    values = np.full(len(epochs), 0.5) if not np.isfinite(v) else np.where(epochs < v, 0.5, -0.5)
    _series(ds, "feature_learning_max", {**where, "j": c.j}, values)


def _final(name):
    return lambda ds, c, where, v: _set(ds, f"final_{name}", where, v)


WRITE = {
    **{m: _final(m) for m in ("train_error", "test_error", "train_loss", "test_loss",
                              "weight_norm", "grad_norm_l1", "grad_norm_l2", "distance",
                              "distance_to_optimum", "decomposition_residual")},
    "feature_learning": _per_class("feature_learning_max"),
    "noise_memorization_min": _per_class("noise_memorization_min"),
    "noise_memorization_max": _per_class("noise_memorization_max"),
    "noise_memorization_min_ratio": _ratio("noise_memorization_min"),
    "noise_memorization_max_ratio": _ratio("noise_memorization_max"),
    "feature_learning_peak": lambda ds, c, w, v: _series(
        ds, "feature_learning_max", {**w, "j": c.j}, np.full(len(ds["epoch"]), v)),
    "feature_learning_rise": lambda ds, c, w, v: _series(
        ds, "feature_learning_max", {**w, "j": c.j}, np.r_[0.0, np.full(len(ds["epoch"]) - 1,
                                                                         v)]),
    "weight_norm_ratio": lambda ds, c, w, v: (_series(ds, "weight_norm", w,
                                                      np.ones(len(ds["epoch"]))),
                                              _set(ds, "final_weight_norm", w, v)),
    "signal_over_noise": lambda ds, c, w, v: (
        _set(ds, "final_signal_learning_max", {**w, "j": c.j}, 10.0 ** v if np.isfinite(v)
             else 0.0), _set(ds, "final_rho_pos_max", {**w, "j": c.j}, 1.0)),
    "critical_batch_size": lambda ds, c, w, v: _first_at(ds, c, w, "batch_size",
                                                         "test_error", v),
    "stall_boundary": lambda ds, c, w, v: _first_at(ds, c, w, "weight_decay", "train_error", v),
    "switch_p": lambda ds, c, w, v: _first_at(ds, c, w, "p", "test_error", v),
    "boundary_slope": lambda ds, c, w, v: _plane(
        ds, c, w, _snr_line(ds, c, w, v) if np.isfinite(v) else
        {n: np.nan for n in metrics.populated(ds, "data_n")}),
    "log10_boundary_snr": lambda ds, c, w, v: _plane(
        ds, c, w, {n: 10 ** v if np.isfinite(v) else np.nan
                   for n in metrics.populated(ds, "data_n")}),
    "boundary_collapse": lambda ds, c, w, v: _plane(
        ds, c, w, _snr_line(ds, c, w, 0.0, collapse=v) if np.isfinite(v) else
        {n: np.nan for n in metrics.populated(ds, "data_n")}),
    "rmed": lambda ds, c, w, v: _rmed_at(ds, c, w, v),
    "rmed_slope_log_d": lambda ds, c, w, v: _over_d(
        ds, c, w, lambda d: np.nan if not np.isfinite(v) else 1 + 10 * abs(v) + v * math.log(d)),
    "rmed_excess_slope": lambda ds, c, w, v: _over_d(
        ds, c, w, lambda d: np.nan if not np.isfinite(v) else 1 + 10 ** (v * math.log10(d))),
    "flip_epoch": _flip,
    "singular_uniformity": _at_write("singular_uniformity"),
    "singular_uniformity_excess_slope": lambda ds, c, w, v: _over_d(
        ds, c, w, lambda d: np.nan if not np.isfinite(v) else 1 + 10 ** (v * math.log10(d)),
        _at_write("singular_uniformity")),
    "rank_one_deficit": lambda ds, c, w, v: _at_write("rank1")(ds, c, w, 1 - v),
    "grad_norm_l1_best": lambda ds, c, w, v: _series(ds, "grad_norm_l1", w,
                                                     np.full(len(ds["epoch"]), v)),
    "grad_norm_l2_best": lambda ds, c, w, v: _series(ds, "grad_norm_l2", w,
                                                     np.full(len(ds["epoch"]), v)),
    "final_weights": lambda ds, c, w, v: _set(ds, "final_weights", w, 1.0 + v),
    "distance_peak": lambda ds, c, w, v: _set(ds, "distance", w, v),
    "distance_shrink": lambda ds, c, w, v: (
        _set(ds, "distance", w, xr.DataArray(np.r_[0.5, 1.0, 0.5, v], dims="step",
                                             coords={"step": ds["step"]})),
        _set(ds, "final_distance", w, v)),
}


def _sides(c) -> list[dict]:
    """The grid selections the claim reads: one, or its two sides (a, then b)."""
    if c.compare:
        return [s.where for s in claims._sides(c)]
    if c.contrast:
        (dim, (a, b)), = c.contrast.items()
        return [{**c.where, dim: a}, {**c.where, dim: b}]
    return [c.where]


def _pair(value: float, how: str, ra, rb) -> tuple[float, float]:
    """a in ra and b in rb with b − a (difference), log10(b / a) or ‖b − a‖ / ‖a‖ = value."""
    if how == "relative_distance":
        return 0.0, value  # final_weights: a side at 1, b side at 1 + value
    combine = {"difference": lambda a, b: b - a, "log10_ratio": lambda a, b: math.log10(b / a)}
    if isinstance(ra, Values) and isinstance(rb, Values):
        for a in ra.values:
            for b in rb.values:
                if (how == "difference" or (a > 0 and b > 0)) and \
                        math.isclose(combine[how](a, b), value, abs_tol=1e-12):
                    return a, b
        raise AssertionError(f"no pair of grid values gives {value}")
    for a in (ra.point(), ra.lo, ra.hi, ra.lo + 1e-3, ra.hi - 1e-3, 1.0, 0.0):
        if not (math.isfinite(a) and a in ra) or (how == "log10_ratio" and a <= 0):
            continue
        b = a + value if how == "difference" else a * 10 ** value
        if b in rb:
            return a, b
    raise AssertionError(f"no pair in {ra} x {rb} gives {value}")


def realize(c, value: float) -> xr.Dataset:
    """The claim's experiment's summary, with the claim's quantity equal to `value`."""
    ds = _base(c).copy(deep=True)
    sides = _sides(c)
    if len(sides) == 1:
        targets = [value]
    elif not np.isfinite(value):
        targets = [value, value]
    else:
        sels = [claims._select(ds, replace(c, where=s, compare=None, contrast=None))
                for s in sides]
        ra, rb = (metrics.METRICS[c.metric].values(sel, c) for sel in sels)
        targets = list(_pair(value, c.as_, ra, rb))
    if c.metric == "final_weights" and len(sides) == 2:
        targets = [0.0, value]
    for where, target in zip(sides, targets, strict=True):
        WRITE[c.metric](ds, c, where, target)
    return ds


@pytest.mark.parametrize("c", CLAIMS, ids=[c.id for c in CLAIMS])
def test_every_claim_can_fail(c):
    ds = _base(c)
    value = claims.falsifiable(ds, c)
    assert value is not None, (
        f"claim {c.id} cannot fail: its expectation '{c.reading(ds).text}' accepts every "
        f"value its metric {c.metric} can take here ({claims.value_range(ds, c)})")
    (row,) = claims.evaluate([c], {c.experiment: realize(c, value)})
    assert row.verdict == "fails", (f"claim {c.id}: a summary with {c.metric} = {value} gives "
                                    f"'{row.verdict}' ({row.reason})")
    if np.isfinite(value):
        assert row.mean == pytest.approx(value, rel=1e-6, abs=1e-9), c.id


@pytest.mark.parametrize("c", [c for c in CLAIMS if metrics.METRICS[c.metric].undefined],
                         ids=lambda c: c.id)
def test_a_claim_says_what_an_undefined_value_means(c):
    assert c.undefined, (f"claim {c.id}: its metric {c.metric} can be undefined on a grid; "
                         "say what that means (undefined: {verdict, because})")
    (row,) = claims.evaluate([c], {c.experiment: realize(c, math.nan)})
    assert row.verdict == c.undefined["verdict"] and c.undefined["because"] in row.reason


def test_a_vacuous_claim_is_named():
    """E1.adam.test_error with '0.5 ± 0.6' (every error in [0, 1] passes) cannot fail: the
    test above fails for it, naming it."""
    (c,) = [x for x in CLAIMS if x.id == "E1.adam.test_error"]
    vacuous = replace(c, rule="", expect="0.5 ± 0.6", rule_note="a vacuous band")
    with pytest.raises(AssertionError, match="claim E1.adam.test_error cannot fail"):
        test_every_claim_can_fail(vacuous)


def test_every_metric_can_be_written():
    assert set(WRITE) == set(metrics.METRICS)


def test_ranges_are_what_the_metrics_can_take():
    (c,) = [x for x in CLAIMS if x.id == "B.adam.boundary"]
    ds = _base(c)
    sel = claims._select(ds, c)
    assert metrics.METRICS["stall_boundary"].values(sel, c) == Values(
        (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0))  # Adam's own weight decays
    assert metrics.METRICS["test_error"].values(sel, c) == Interval(0, 1, True, True)
