"""The papers' claims as data, checked against the aggregated results.

A claims file (config/claims.yaml) lists entries like

    - id: E1.adam.test_error
      claim: Full-batch Adam generalises no better than chance
      source: Zou Table 2
      experiment: zou_e1              # a summary: results/<experiment>/summary.nc
      where: {optimizer: adam}        # fixes grid coordinates; seeds stay
      metric: test_error              # see METRICS
      paper: "0.884"                  # what the paper reports, as text
      expect: "> 0.5"                 # the check on the mean over seeds
      figure: zou_e1/figures/errors-adam.png
      if_fails: why it may fail here  # printed next to a failing or inconclusive verdict

and, optionally,

      contrast: {optimizer: [gd, adam]}   # the metric at b compared with the metric at a
      compare: {a: {optimizer: sgd_momentum}, b: {optimizer: padam, p: 0.0}}
                                          # ... or between two selections of the grid
      as: difference                      # b − a; or log10_ratio, or relative_distance
      average: [batch_size]               # grid axes to average over before the check
      maximum: [data_n, data_snr]         # ... or take the largest (smallest: minimum) value
      j: -1                               # the class for per-class metrics (default +1)
      layer: "j=+1"                       # the layer for per-layer metrics (default: first)
      threshold: 0.25                     # for the boundary metrics

`expect` is `< x`, `<= x`, `> x`, `>= x` or `x ± t`. Each claim is evaluated per seed and the
check applies to the mean; the row says how many seeds pass on their own. Verdicts: `holds`,
`fails`, `not run` (the experiment or the selected grid point is absent from this config) and
`inconclusive` (the metric is undefined on this grid, e.g. a boundary beyond its last value, or
a run at the grid point diverged: a diverged run never makes a claim hold).
"""

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._io import atomic_path
from .analysis import boundary_fit, flip_epoch
from .config import load_yaml
from .errors import ConfigError
from .experiments import dim_name

VERDICTS = ("holds", "fails", "inconclusive", "not run")


def _final(name: str):
    return lambda ds, c: ds[f"final_{name}"]


def _per_class(name: str):
    return lambda ds, c: ds[f"final_{name}"].sel(j=c.j, drop=True)


def _peak_feature(ds, c):
    return ds["feature_learning_max"].sel(j=c.j, drop=True).max("epoch", skipna=True)


def _feature_rise(ds, c):
    """How far feature learning rose above its value at initialisation, at its peak."""
    series = ds["feature_learning_max"].sel(j=c.j, drop=True)
    return series.max("epoch", skipna=True) - series.isel(epoch=0)


def _noise_growth(ds, c):
    """How far noise memorization rose above its value at initialisation."""
    series = ds["noise_memorization_max"].sel(j=c.j, drop=True)
    return ds["final_noise_memorization_max"].sel(j=c.j, drop=True) - series.isel(epoch=0)


def _weight_norm_ratio(ds, c):
    return ds["final_weight_norm"] / ds["weight_norm"].isel(epoch=0)


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


def _critical_batch_size(ds, c):
    """Smallest batch size whose final test error reaches the threshold (per seed)."""
    return _first_above(ds["final_test_error"], ds["status"], "batch_size", c.threshold)


def _stall_boundary(ds, c):
    """Smallest weight decay at which training fails: final train error ≥ the threshold."""
    return _first_above(ds["final_train_error"], ds["status"], "weight_decay", c.threshold)


def _boundary_over_n(ds, c, per_n):
    """`per_n(error[data_n, data_snr])` for each cell of the other axes (each seed)."""
    error = ds["final_test_error"]
    missing = {"data_n", "data_snr"} - set(error.dims)
    if missing:
        raise ConfigError(f"claim {c.id}.metric", f"{c.metric} needs the axes data.n and "
                          f"data.snr (missing: {', '.join(sorted(missing))})")
    values = _each(error, [d for d in error.dims if d not in ("data_n", "data_snr")], per_n)
    # cells not run are skipped by the boundary scan; a diverged one makes it undefined
    diverged = (ds["status"] == "diverged").any(["data_n", "data_snr"])
    return values.where(~diverged)


def _each(error: xr.DataArray, rest: list[str], per_n) -> xr.DataArray:
    if not rest:
        value = per_n(error)
        return value if isinstance(value, xr.DataArray) else xr.DataArray(value)
    dim = rest[0]
    parts = [_each(error.isel({dim: k}), rest[1:], per_n) for k in range(error.sizes[dim])]
    return xr.concat(parts, dim=error[dim])


def _boundary_slope(ds, c):
    """Slope of log SNR* against log n (E7; Cao et al.: −1/q), per seed."""
    return _boundary_over_n(ds, c, lambda e: boundary_fit(e, c.threshold)[0])


def _log10_boundary_snr(ds, c):
    """log10 of the SNR where the final test error falls below the threshold, per n."""
    def per_n(e):
        star = boundary_fit(e, c.threshold)[2]
        return xr.DataArray(np.log10(star), dims="data_n", coords={"data_n": e["data_n"]})

    return _boundary_over_n(ds, c, per_n)


def _layer(ds, c) -> str:
    return c.layer if c.layer is not None else ds["layer"].values.tolist()[0]


def _rmed_median(ds, c):
    """The median of R_med along the run (its probe epochs after the first)."""
    series = ds["rmed"].sel(layer=_layer(ds, c), drop=True).isel(epoch=slice(1, None))
    return series.median("epoch", skipna=True)


def _rmed_slope_log_d(ds, c):
    """Slope of the final R_med against ln d (Jiang et al.: Ω(log d) for SGD+M), per seed."""
    final = ds["final_rmed"].sel(layer=_layer(ds, c), drop=True)
    if "data_d" not in final.dims:
        raise ConfigError(f"claim {c.id}.metric", "rmed_slope_log_d needs the axis data.d")
    log_d = np.log(final["data_d"].values.astype(float))

    def slope(values):
        ok = np.isfinite(values)
        return np.polyfit(log_d[ok], values[ok], 1)[0] if ok.sum() >= 2 else np.nan

    return xr.apply_ufunc(slope, final, input_core_dims=[["data_d"]], vectorize=True)


def _flip_epoch(ds, c):
    """The epoch where feature learning turns negative after its peak; NaN if it never does."""
    feature = ds["feature_learning_max"].sel(j=c.j, drop=True)
    return xr.apply_ufunc(lambda f: flip_epoch(ds["epoch"].values, f), feature,
                          input_core_dims=[["epoch"]], vectorize=True)


def _switch_p(ds, c):
    """Padam's smallest p whose final test error reaches the threshold (per seed)."""
    return _first_above(ds["final_test_error"], ds["status"], "p", c.threshold)


def _final_weights(ds, c):
    if "final_weights" not in ds:
        raise KeyError("final_weights (set probes.store_weights: true for this experiment)")
    return ds["final_weights"]


METRICS = {
    "train_error": _final("train_error"),
    "test_error": _final("test_error"),
    "train_loss": _final("train_loss"),
    "test_loss": _final("test_loss"),
    "weight_norm": _final("weight_norm"),
    "grad_norm_l1": _final("grad_norm_l1"),
    "grad_norm_l2": _final("grad_norm_l2"),
    "feature_learning": _per_class("feature_learning_max"),
    "feature_learning_peak": _peak_feature,
    "feature_learning_rise": _feature_rise,
    "noise_memorization": _per_class("noise_memorization_max"),
    "noise_memorization_growth": _noise_growth,
    "weight_norm_ratio": _weight_norm_ratio,
    "critical_batch_size": _critical_batch_size,
    "stall_boundary": _stall_boundary,
    "boundary_slope": _boundary_slope,
    "log10_boundary_snr": _log10_boundary_snr,
    "rmed": lambda ds, c: ds["final_rmed"].sel(layer=_layer(ds, c), drop=True),
    "rmed_median": _rmed_median,
    "rmed_slope_log_d": _rmed_slope_log_d,
    "flip_epoch": _flip_epoch,
    "switch_p": _switch_p,
    "final_weights": _final_weights,
    # the convex counterpart (adamgen.convex)
    "distance": _final("distance"),
    "distance_peak": lambda ds, c: ds["distance"].max("step", skipna=True),
    "distance_to_optimum": _final("distance_to_optimum"),
    "distance_shrink": lambda ds, c: ds["final_distance"] / ds["distance"].max("step"),
}
METRIC_DOCS = {
    "feature_learning": "final max_r <w_{j,r}, j v>",
    "feature_learning_peak": "largest max_r <w_{j,r}, j v> along the run",
    "feature_learning_rise": "peak minus initial max_r <w_{j,r}, j v>",
    "noise_memorization": "final max_i max_r <w_{j,r}, xi_i> over class j",
    "noise_memorization_growth": "final minus initial noise memorization (max)",
    "weight_norm_ratio": "final ||W||_F / initial ||W||_F",
    "critical_batch_size": "smallest B with final test error >= threshold",
    "stall_boundary": "smallest lambda with final train error >= threshold",
    "boundary_slope": "slope of log SNR* against log n, SNR* where the test error crosses "
                      "the threshold (Cao et al.: -1/q)",
    "log10_boundary_snr": "log10 SNR* per n",
    "rmed": "final R_med = max |H_ii| / median |H_ii| of a layer",
    "rmed_median": "median of R_med along the run",
    "rmed_slope_log_d": "slope of the final R_med against ln d",
    "flip_epoch": "first epoch after its peak with negative feature learning",
    "switch_p": "smallest Padam p with final test error >= threshold",
    "final_weights": "final weights (with contrast: relative_distance)",
    "distance": "final ||w_adam - w_gd|| / ||w*||",
    "distance_peak": "largest ||w_adam - w_gd|| / ||w*|| along training",
    "distance_to_optimum": "final ||w - w*|| / ||w*||",
    "distance_shrink": "final over largest ||w_adam - w_gd|| along training",
}
COMBINE = {
    "difference": lambda a, b: b - a,
    "log10_ratio": lambda a, b: np.log10(b / a),
    "relative_distance": None,  # handled below: sums over the non-grid dims
}
REDUCTIONS = {"average": "mean", "maximum": "max", "minimum": "min"}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_EXPECT = re.compile(rf"^\s*(<=|>=|<|>)\s*{_NUMBER}\s*$")
_NEAR = re.compile(rf"^\s*{_NUMBER}\s*(?:±|\+-)\s*{_NUMBER}\s*$")


@dataclass
class Claim:
    id: str
    claim: str
    source: str
    experiment: str
    metric: str
    expect: str
    paper: str = ""
    where: dict = field(default_factory=dict)
    contrast: dict | None = None
    as_: str = "difference"
    average: list = field(default_factory=list)
    maximum: list = field(default_factory=list)
    minimum: list = field(default_factory=list)
    j: int = 1
    layer: str | None = None
    threshold: float = 0.25
    compare: dict | None = None
    figure: str = ""
    if_fails: str = ""

    def reduced(self) -> list[str]:
        return [*self.average, *self.maximum, *self.minimum]

    def check(self, value: float) -> bool:
        m = _EXPECT.match(self.expect)
        if m:
            op, x = m.group(1), float(m.group(2))
            return {"<": value < x, "<=": value <= x, ">": value > x, ">=": value >= x}[op]
        m = _NEAR.match(self.expect)
        return abs(value - float(m.group(1))) <= float(m.group(2))


_FIELDS = {"id", "claim", "source", "experiment", "metric", "expect", "paper", "where",
           "contrast", "compare", "as", "average", "maximum", "minimum", "j", "layer",
           "threshold", "figure", "if_fails"}


def parse_claims(raw: Any, source: str = "claims file") -> list[Claim]:
    """Claims from the loaded YAML; every problem names the entry and key."""
    if not isinstance(raw, dict) or not isinstance(raw.get("claims"), list):
        raise ConfigError("claims", f"{source} must hold a list under 'claims'")
    out, seen = [], set()
    for k, entry in enumerate(raw["claims"]):
        where = f"claims[{k}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be a mapping")
        where = f"claims[{k}] ({entry.get('id', '?')})"
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}", "is not a claim field "
                              f"(fields: {', '.join(sorted(_FIELDS))})")
        for key in ("id", "claim", "source", "experiment", "metric", "expect"):
            if key not in entry:
                raise ConfigError(f"{where}.{key}", "is missing")
        if entry["id"] in seen:
            raise ConfigError(f"{where}.id", "is used twice", entry["id"])
        seen.add(entry["id"])
        if entry["metric"] not in METRICS:
            raise ConfigError(f"{where}.metric", f"is not one of {', '.join(METRICS)}",
                              entry["metric"])
        expect = str(entry["expect"])
        if not (_EXPECT.match(expect) or _NEAR.match(expect)):
            raise ConfigError(f"{where}.expect", "must read '< x', '<= x', '> x', '>= x' or "
                              "'x ± t'", expect)
        as_ = entry.get("as", "difference")
        if as_ not in COMBINE:
            raise ConfigError(f"{where}.as", f"is not one of {', '.join(COMBINE)}", as_)
        contrast = entry.get("contrast")
        if contrast is not None and not (
                isinstance(contrast, dict) and len(contrast) == 1
                and all(isinstance(v, list) and len(v) == 2 for v in contrast.values())):
            raise ConfigError(f"{where}.contrast", "must map one axis to two values", contrast)
        compare = entry.get("compare")
        if compare is not None and not (isinstance(compare, dict) and set(compare) == {"a", "b"}
                                        and all(isinstance(v, dict) for v in compare.values())):
            raise ConfigError(f"{where}.compare", "must map a and b to grid selections",
                              compare)
        if compare is not None and (contrast is not None or as_ == "relative_distance"):
            raise ConfigError(f"{where}.compare", "goes without contrast, and with 'as' "
                              "difference or log10_ratio")
        if entry["metric"] == "final_weights" and (contrast is None or as_ != "relative_distance"):
            raise ConfigError(f"{where}.as", "final_weights needs a contrast with "
                              "'as: relative_distance'")
        fields = {k: v for k, v in entry.items() if k != "as"}
        # axes by their summary names: model.sigma_0 is the dimension model_sigma_0
        dims = {"where": {dim_name(k): v for k, v in (entry.get("where") or {}).items()},
                "contrast": ({dim_name(k): v for k, v in contrast.items()} if contrast else None),
                **{r: [dim_name(a) for a in entry.get(r) or []] for r in REDUCTIONS}}
        out.append(Claim(**{**fields, **dims, "as_": as_, "expect": expect,
                            "paper": str(entry.get("paper", ""))}))
    return out


def load_claims(path: str | Path) -> list[Claim]:
    return parse_claims(load_yaml(path), f"claims file '{path}'")


@dataclass
class Row:
    claim: Claim
    verdict: str
    mean: float = math.nan
    std: float = math.nan
    n: int = 0
    passing: int = 0
    reason: str = ""


def _select(ds: xr.Dataset, c: Claim) -> xr.Dataset | None:
    """The claim's grid point; None when the config does not contain it."""
    for key, value in c.where.items():
        if key not in ds.dims:
            raise ConfigError(f"claim {c.id}.where.{key}",
                              f"is not an axis of experiment '{c.experiment}' "
                              f"(axes: {', '.join(map(str, ds.dims))})")
        values = ds[key].values.tolist()
        if not any(_same(v, value) for v in values):
            return None
        ds = ds.sel({key: next(v for v in values if _same(v, value))})
    if "status" in ds:  # an axis along which only one value holds runs is fixed to it
        keep = set(c.reduced()) | set(c.contrast or {}) | {"seed"}
        for dim in [d for d in ds["status"].dims if d not in keep]:
            ran = (ds["status"] != "").any([d for d in ds["status"].dims if d != dim])
            if int(ran.sum()) == 1:
                ds = ds.isel({dim: int(np.flatnonzero(ran.values)[0])})
    return ds


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def _pick(values: xr.DataArray, dim: str, value) -> xr.DataArray | None:
    matches = [v for v in values[dim].values.tolist() if _same(v, value)]
    return values.sel({dim: matches[0]}, drop=True) if matches else None


def _reduce(values: xr.DataArray, masks, dim: str, how: str):
    """Mean, max or min over `dim`, over the cells that ran (another optimizer's axis values
    hold no run and are skipped); a diverged run among them makes the result undefined.
    `masks` (ran, diverged) follow the values' cells, and are reduced with them."""
    if masks is None or set(masks[0].dims) != set(values.dims):  # not the same cells
        return getattr(values, how)(dim, skipna=False), None
    ran, diverged = masks
    out = getattr(values.where(ran), how)(dim, skipna=True)
    ran, diverged = ran.any(dim), diverged.any(dim)
    return out.where(ran & ~diverged), (ran, diverged)


def _sides(c: Claim) -> list[Claim]:
    """A `compare` claim's two selections, as claims of their own (a, then b)."""
    return [replace(c, where={**c.where, **{dim_name(k): v for k, v in side.items()}},
                    compare=None) for side in (c.compare["a"], c.compare["b"])]


def per_seed(ds: xr.Dataset, c: Claim) -> xr.DataArray | None:
    """The claim's metric, one value per seed (or a scalar); None if not run."""
    if c.compare:
        va, vb = (per_seed(ds, side) for side in _sides(c))
        if va is None or vb is None:
            return None
        return COMBINE[c.as_](va, vb)
    sel = _select(ds, c)
    if sel is None:
        return None
    values = METRICS[c.metric](sel, c)
    if c.contrast:
        (dim, (a, b)), = c.contrast.items()
        if dim not in values.dims:
            raise ConfigError(f"claim {c.id}.contrast.{dim}", "is not a remaining axis")
        va, vb = _pick(values, dim, a), _pick(values, dim, b)
        if va is None or vb is None:
            return None
        if c.as_ == "relative_distance":
            grid = set(json.loads(ds.attrs.get("grid_dims", "[]")))
            inner = [d for d in va.dims if d not in grid]  # the parameters' own dimensions
            values = np.sqrt(((vb - va) ** 2).sum(inner)) / np.sqrt((va ** 2).sum(inner))
        else:
            values = COMBINE[c.as_](va, vb)
    masks = (sel["status"] != "", sel["status"] == "diverged") if "status" in sel else None
    for reduction, how in REDUCTIONS.items():
        for dim in getattr(c, reduction):
            if dim not in values.dims:
                raise ConfigError(f"claim {c.id}.{reduction}", f"'{dim}' is not a remaining "
                                  "axis")
            values, masks = _reduce(values, masks, dim, how)
    extra = [d for d in values.dims if d != "seed"]
    if extra:
        raise ConfigError(f"claim {c.id}.where", f"leaves the axes {extra} open; fix them in "
                          "'where', or list them under 'average', 'maximum' or 'minimum'")
    return values


def _diverged_seeds(sel: xr.Dataset) -> tuple[int, int]:
    """(seeds with a diverged run in the selection, seeds in the selection)."""
    diverged = sel["status"] == "diverged"
    ran = sel["status"] != ""
    others = [d for d in diverged.dims if d != "seed"]
    if others:
        diverged, ran = diverged.any(others), ran.any(others)
    return int(diverged.sum()), int(ran.sum())


def evaluate(claims: list[Claim], summaries: dict[str, xr.Dataset],
             unavailable: dict[str, str] | None = None) -> list[Row]:
    """Every claim's verdict. A value that is undefined because a run diverged makes the claim
    "inconclusive: diverged", never "holds". `unavailable` says why an experiment of the
    config was not planned (its data are not here)."""
    unavailable = unavailable or {}
    rows = []
    for c in claims:
        ds = summaries.get(c.experiment)
        values = None if ds is None else per_seed(ds, c)
        sels = [] if values is None else [_select(ds, x) for x in
                                            (_sides(c) if c.compare else [c])]
        if any("status" in sel and (np.asarray(sel["status"].values) == "").all()
               for sel in sels):
            values = None
        if values is None:
            if ds is not None:
                reason = f"'{c.experiment}' has no such runs here"
            elif c.experiment in unavailable:
                reason = f"experiment '{c.experiment}' not planned: {unavailable[c.experiment]}"
            else:
                reason = f"experiment '{c.experiment}' not in config"
            rows.append(Row(c, "not run", reason=reason))
            continue
        v = np.atleast_1d(values.values).astype(float)
        if not np.isfinite(v).all():
            undefined = int((~np.isfinite(v)).sum())
            diverged, seeds = max(_diverged_seeds(sel) if "status" in sel else (0, 0)
                                  for sel in sels)
            if diverged:
                reason = (f"diverged: {diverged} of {seeds} seeds have a run here whose loss "
                          "became infinite or NaN, so the value is undefined")
            else:
                reason = (f"undefined on this grid for {undefined} of {v.size} seeds (e.g. a "
                          "boundary beyond the grid)")
            rows.append(Row(c, "inconclusive", n=v.size,
                            reason=f"{reason}. {c.if_fails}" if c.if_fails else reason))
            continue
        mean, std = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
        passing = sum(c.check(float(x)) for x in v)
        rows.append(Row(c, "holds" if c.check(mean) else "fails", mean, std, v.size, passing,
                        c.if_fails if not c.check(mean) else ""))
    return rows


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def measured(row: Row) -> str:
    if row.verdict in ("not run", "inconclusive"):
        return "–"
    return f"{_fmt(row.mean)} ± {_fmt(row.std)} (n={row.n})"


def to_markdown(rows: list[Row], title: str = "Claims of the papers, checked") -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    lines = [f"# {title}", "",
             ", ".join(f"{counts[v]} {v}" for v in VERDICTS) + f" of {len(rows)} claims. "
             "Measured: mean ± std over seeds (n seeds); the check applies to the mean; "
             "'seeds' counts the seeds that pass on their own.", "",
             "| id | claim | source | paper | measured | expected | seeds | verdict | figure |"
             " note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c = r.claim
        seeds = f"{r.passing}/{r.n}" if r.verdict in ("holds", "fails") else "–"
        cells = [c.id, c.claim, c.source, c.paper or "–", measured(r), f"{c.metric} {c.expect}",
                 seeds, f"**{r.verdict}**", c.figure or "–", r.reason]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "claim", "source", "experiment", "metric", "paper", "expected", "mean",
                "std", "n_seeds", "seeds_passing", "verdict", "figure", "note"])
    for r in rows:
        c = r.claim
        w.writerow([c.id, c.claim, c.source, c.experiment, c.metric, c.paper, c.expect,
                    "" if math.isnan(r.mean) else repr(r.mean),
                    "" if math.isnan(r.std) else repr(r.std), r.n, r.passing, r.verdict,
                    c.figure, r.reason])
    return buf.getvalue()


_COLOURS = {"holds": "#d9f2d9", "fails": "#f8d7d7", "inconclusive": "#fff3cd",
            "not run": "#e9ecef"}


# column widths (%) of the claims page: the table fits the window, claims and notes wrap
_WIDTHS = {"id": 8, "claim": 17, "source": 8, "paper": 7, "measured (mean ± std, n)": 9,
           "expected": 9, "seeds": 4, "verdict": 6, "figure": 12, "note": 20}


def _figure_cell(path: str) -> str:
    """A thumbnail linking to the figure (paths are relative to results/, as the page is)."""
    if not path:
        return "–"
    esc = html.escape(path)
    if path.endswith(".png"):
        return (f'<a href="{esc}"><img src="{esc}" alt="{esc}" loading="lazy"></a>'
                f'<div class="path">{esc}</div>')
    return f'<a href="{esc}">{esc}</a>'


def to_html(rows: list[Row], title: str = "Claims of the papers, checked") -> str:
    """A standalone page (the report embeds it): one coloured row per claim, every column
    inside the window, each row's figure as a thumbnail that links to it."""
    esc = html.escape
    counts = ", ".join(f"{sum(r.verdict == v for r in rows)} {v}" for v in VERDICTS)
    body = []
    for r in rows:
        c = r.claim
        seeds = f"{r.passing}/{r.n}" if r.verdict in ("holds", "fails") else "–"
        cells = [esc(c.id), esc(c.claim), esc(c.source), esc(c.paper or "–"), esc(measured(r)),
                 esc(f"{c.metric} {c.expect}"), esc(seeds), f"<b>{esc(r.verdict)}</b>",
                 _figure_cell(c.figure), esc(r.reason)]
        body.append(f'<tr style="background:{_COLOURS[r.verdict]}">'
                    + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    columns = "".join(f'<col style="width:{w}%">' for w in _WIDTHS.values())
    style = ("body{font-family:sans-serif;font-size:13px;margin:12px}"
             "table{border-collapse:collapse;width:100%;table-layout:fixed}"
             "td,th{border:1px solid #bbb;padding:3px 5px;vertical-align:top;"
             "overflow-wrap:anywhere}th{background:#f3f3f3;text-align:left}"
             "td img{width:100%;height:auto;display:block}"
             ".path{font-size:10px;color:#555}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{style}</style></head><body><h2>{esc(title)}</h2><p>{counts} of "
            f"{len(rows)} claims. The check applies to the mean over seeds; 'seeds' counts "
            "the seeds that pass on their own. Click a figure to open it.</p>"
            f"<table><colgroup>{columns}</colgroup><tr>"
            + "".join(f"<th>{h}</th>" for h in _WIDTHS) + "</tr>"
            + "".join(body) + "</table></body></html>\n")


def write(rows: list[Row], md_path, csv_path, html_path=None) -> None:
    outputs = [(md_path, to_markdown(rows)), (csv_path, to_csv(rows))]
    if html_path is not None:
        outputs.append((html_path, to_html(rows)))
    for path, text in outputs:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
