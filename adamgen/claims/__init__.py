"""The papers' claims as data, checked against the aggregated results.

A claims file (config/claims.yaml) lists entries like

    - id: E1.adam.test_error
      claim: Full-batch Adam's test error (the paper's number)
      kind: paper                     # paper: a statement of the paper; beyond: ours
      source: Zou et al. ICLR 2023 §6, Table 1   # the paper's section, table, figure or line
      experiment: zou_e1              # a summary: results/<experiment>/summary.nc
      where: {optimizer: adam}        # fixes grid coordinates; seeds stay
      metric: test_error              # see adamgen.claims.metrics.METRICS
      paper: "0.884"                  # what the paper reports, as text
      rule: paper_number              # how the paper's notation is read (claims.rules.RULES)
      value: 0.884                    # the paper's quantity: a number or an expression of
                                      # the settings (B * s * sigma_p / n)
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
      at: window                          # which R_med of a run: final, median, window (the
                                          # median over the theorem's window) or window_end
      threshold: 0.25                     # for the boundary metrics
      variable: test_loss                 # the variable a boundary metric reads
      undefined: {verdict: fails, because: "the paper puts the event inside the grid"}
      axis: weight_decay              # the grid a `moves_by` / `independent_of` reading uses

The expectation is the rule's reading of the value on the claim's summary (its settings, its
grid); where no rule fits, a claim gives `expect` (`< x`, `<= x`, `> x`, `>= x`, `x ± t` or
`in [a, b]`, round brackets for open ends) and says why in `rule_note`. Each claim is
evaluated per seed; the rule says how the seeds decide (the mean, a majority, or the seeds'
range for one run's number), and the row says how many seeds pass on their own. Verdicts:
`holds`, `fails`, `not run` (the experiment or the selected grid point is absent from this
config) and `inconclusive`: a run at the grid point
diverged (a diverged run never makes a claim hold nor fail), or the metric is undefined on this
grid (a boundary beyond its last value, an event that never happens) and the claim does not say
that this is a failure. Where the paper puts the event inside the grid, `undefined` says so:
an undefined value for any seed is then a failure, with its reason.

A claim must be able to fail: `falsifiable(summary, claim)` names a value of the metric's range
that its expectation excludes (tests/test_claims_falsifiable.py checks every shipped claim).
"""

import functools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import dim_name, load_yaml
from ..errors import ConfigError
from ..settings import did_you_mean
from .metrics import METRICS, describe_metrics_markdown
from .ranges import FORMS, Range, combine, parse_expect, witness
from .report import VERDICTS, measured, to_csv, to_html, to_markdown, write
from .rules import RULES, Reading, describe_rules_markdown, quantity

KINDS = ("paper", "beyond")
COMBINE = {
    "difference": lambda a, b: b - a,
    "log10_ratio": lambda a, b: np.log10(b / a),
    "relative_distance": None,  # handled below: sums over the non-grid dims
}
REDUCTIONS = {"average": "mean", "maximum": "max", "minimum": "min"}
AT = ("final", "median", "window", "window_end")

__all__ = ["AT", "KINDS", "METRICS", "RULES", "VERDICTS", "Claim", "Row",
           "describe_metrics_markdown", "describe_rules_markdown", "evaluate", "falsifiable",
           "load_claims", "measured", "parse_claims", "per_seed", "to_csv", "to_html",
           "to_markdown", "value_range", "write"]


@dataclass
class Claim:
    id: str
    claim: str
    kind: str
    source: str
    experiment: str
    metric: str
    rule: str = ""  # a row of claims.rules.RULES; "" where `expect` and `rule_note` say it
    value: Any = None  # the paper's quantity the rule reads
    expect: str = ""  # only with rule_note: the check, typed
    rule_note: str = ""  # why no rule of the table fits
    axis: str | None = None  # the grid of moves_by / independent_of
    paper: str = ""
    where: dict = field(default_factory=dict)
    contrast: dict | None = None
    as_: str = "difference"
    average: list = field(default_factory=list)
    maximum: list = field(default_factory=list)
    minimum: list = field(default_factory=list)
    j: int = 1
    layer: str | None = None
    at: str | None = None
    threshold: float = 0.25
    variable: str | None = None
    undefined: dict | None = None  # {verdict: fails | inconclusive, because: text}
    compare: dict | None = None
    figure: str = ""
    if_fails: str = ""

    def reduced(self) -> list[str]:
        return [*self.average, *self.maximum, *self.minimum]

    def reading(self, ds: xr.Dataset) -> Reading:
        """What the claim accepts on its experiment's summary: its rule's reading of its value
        at its grid point (or the `expect` a rule_note gives)."""
        if not self.rule:
            return Reading(parse_expect(self.expect), f"{self.expect} ({self.rule_note})")
        row = RULES[self.rule]
        point = _point(ds, self)
        x = None
        if row.needs_value and self.rule != "within":
            x = quantity(self.value, point, f"claim {self.id}.value")
        return row.read(x, point, self)

    @property
    def undefined_fails(self) -> bool:
        return bool(self.undefined) and self.undefined["verdict"] == "fails"


def _point(ds: xr.Dataset, c: Claim) -> xr.Dataset:
    """The summary at the claim's `where` (its first side for a comparison), where the rule
    reads the settings; the whole summary where the point is not in it."""
    first = _sides(c)[0] if c.compare else c
    sel = _select(ds, first)
    return ds if sel is None else sel


_REQUIRED = ("id", "claim", "kind", "source", "experiment", "metric")
_FIELDS = {*_REQUIRED, "rule", "value", "expect", "rule_note", "axis", "paper", "where",
           "contrast", "compare", "as", "average", "maximum", "minimum", "j", "layer", "at",
           "threshold", "variable", "undefined", "figure", "if_fails"}


def _check_rule(where: str, entry: dict) -> None:
    """A claim names a rule of the table (with its value), or types `expect` and says in
    `rule_note` why no rule fits; never both."""
    if "rule_note" in entry:
        if "rule" in entry:
            raise ConfigError(f"{where}.rule", "goes without rule_note (a claim reads its "
                              "value by a rule, or says why none fits)")
        expect = str(entry.get("expect", ""))
        if parse_expect(expect) is None or parse_expect(expect).empty:
            raise ConfigError(f"{where}.expect", f"must read {FORMS} (with rule_note)", expect)
        return
    if "expect" in entry:
        raise ConfigError(f"{where}.expect", "is computed from the claim's rule and value; "
                          "type it only with a rule_note saying why no rule fits")
    rule = entry.get("rule")
    if rule not in RULES:
        hint = did_you_mean(str(rule), list(RULES))
        raise ConfigError(f"{where}.rule", f"is not a reading rule ({hint}rules: "
                          f"{', '.join(RULES)}); or give expect and rule_note", rule)
    if RULES[rule].needs_value and "value" not in entry:
        raise ConfigError(f"{where}.value", f"is missing: rule {rule} reads the paper's "
                          f"quantity ({RULES[rule].notation})")
    if rule == "within" and not (isinstance(entry["value"], list) and len(entry["value"]) == 2):
        raise ConfigError(f"{where}.value", "must be [a, b] for rule within", entry["value"])
    if rule in ("moves_by", "independent_of") and "axis" not in entry:
        raise ConfigError(f"{where}.axis", f"is missing: rule {rule} reads the step of a grid "
                          "axis")


def _check_undefined(where: str, value: Any) -> None:
    if not (isinstance(value, dict) and set(value) == {"verdict", "because"}
            and value["verdict"] in ("fails", "inconclusive")
            and isinstance(value["because"], str) and value["because"].strip()):
        raise ConfigError(f"{where}.undefined", "must be {verdict: fails or inconclusive, "
                          "because: the reason}", value)


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
        for key in _REQUIRED:
            if key not in entry:
                raise ConfigError(f"{where}.{key}", "is missing")
        if entry["id"] in seen:
            raise ConfigError(f"{where}.id", "is used twice", entry["id"])
        seen.add(entry["id"])
        if entry["kind"] not in KINDS:
            raise ConfigError(f"{where}.kind", f"is not one of {', '.join(KINDS)}",
                              entry["kind"])
        if entry["metric"] not in METRICS:
            raise ConfigError(f"{where}.metric", f"is not one of {', '.join(METRICS)}",
                              entry["metric"])
        _check_rule(where, entry)
        if entry.get("at", "final") not in AT:
            raise ConfigError(f"{where}.at", f"is not one of {', '.join(AT)}", entry["at"])
        if "undefined" in entry:
            _check_undefined(where, entry["undefined"])
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
        if "axis" in entry:
            dims["axis"] = dim_name(entry["axis"])
        out.append(Claim(**{**fields, **dims, "as_": as_,
                            "expect": str(entry.get("expect", "")),
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
    expected: str = ""  # the rule's reading on this summary (claims.rules.Reading.text)


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
    values = METRICS[c.metric].compute(sel, c)
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


def value_range(ds: xr.Dataset, c: Claim) -> Range:
    """The values the claim's checked quantity can take on this summary: the metric's range,
    combined across a contrast or comparison (averages, maxima and minima keep it)."""
    sides = _sides(c) if c.compare else [c]
    selected = [_select(ds, s) for s in sides]
    ranges = [METRICS[c.metric].values(sel if sel is not None else ds, s)
              for sel, s in zip(selected, sides, strict=True)]
    if c.compare or c.contrast:
        a, b = (ranges * 2)[:2]
        return combine(a, b, c.as_)
    return ranges[0]


def falsifiable(ds: xr.Dataset, c: Claim) -> float | None:
    """A value the claim's quantity can take on this summary that its expectation rejects
    (NaN when only an undefined value, which the claim counts as a failure, would); None if
    the claim cannot fail."""
    found = witness(c.reading(ds).accepted, value_range(ds, c))
    if found is not None:
        return found
    return math.nan if c.undefined_fails else None


def _diverged_seeds(sel: xr.Dataset) -> tuple[int, int]:
    """(seeds with a diverged run in the selection, seeds in the selection)."""
    diverged = sel["status"] == "diverged"
    ran = sel["status"] != ""
    others = [d for d in diverged.dims if d != "seed"]
    if others:
        diverged, ran = diverged.any(others), ran.any(others)
    return int(diverged.sum()), int(ran.sum())


def _undefined_row(c: Claim, v: np.ndarray, sels: list[xr.Dataset],
                   reading: Reading) -> "Row":
    """The row of a claim whose value is undefined for some seeds."""
    undefined = int((~np.isfinite(v)).sum())
    diverged, seeds = max(_diverged_seeds(sel) if "status" in sel else (0, 0) for sel in sels)
    if diverged:
        reason = (f"diverged: {diverged} of {seeds} seeds have a run here whose loss "
                  "became infinite or NaN, so the value is undefined")
        return Row(c, "inconclusive", n=v.size, expected=reading.text,
                   reason=f"{reason}. {c.if_fails}" if c.if_fails else reason)
    what = f"undefined on this grid for {undefined} of {v.size} seeds"
    passing = sum(bool(np.isfinite(x) and float(x) in reading.accepted) for x in v)
    if c.undefined_fails:
        return Row(c, "fails", n=v.size, passing=passing, expected=reading.text,
                   reason=f"{what}, which the claim counts as a failure: "
                          f"{c.undefined['because']}")
    because = c.undefined["because"] if c.undefined else "e.g. a boundary beyond the grid"
    reason = f"{what} ({because})"
    return Row(c, "inconclusive", n=v.size, expected=reading.text,
               reason=f"{reason}. {c.if_fails}" if c.if_fails else reason)


CONFIGS = Path(__file__).resolve().parents[2] / "config"  # this checkout's workflow configs


@functools.cache
def configs_running() -> dict[str, list[str]]:
    """Each experiment (and convex counterpart) of this checkout's workflow configs, and the
    configs (config/<file>.yaml) that run it: what a claim that did not run here would need."""
    out: dict[str, list[str]] = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        try:
            raw = load_yaml(path)
        except Exception:  # noqa: BLE001  (a config that does not read names nothing)
            continue
        if not isinstance(raw, dict):
            continue
        for key in ("experiments", "convex"):
            for name in raw.get(key) or {}:
                out.setdefault(name, []).append(f"config/{path.name}")
    return out


def _not_in_config(experiment: str) -> str:
    where = configs_running().get(experiment)
    runs = f"; {' and '.join(where)} {'runs' if len(where) == 1 else 'run'} it" if where else ""
    return f"experiment '{experiment}' not in config{runs}"


def evaluate(claims: list[Claim], summaries: dict[str, xr.Dataset],
             unavailable: dict[str, str] | None = None) -> list[Row]:
    """Every claim's verdict. A value that is undefined because a run diverged makes the claim
    "inconclusive: diverged", never "holds"; any other undefined value is a failure where the
    claim says so (`undefined`), else inconclusive. `unavailable` says why an experiment of the
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
                reason = _not_in_config(c.experiment)
            rows.append(Row(c, "not run", reason=reason))
            continue
        v = np.atleast_1d(values.values).astype(float)
        reading = c.reading(ds)
        if not np.isfinite(v).all():
            rows.append(_undefined_row(c, v, sels, reading))
            continue
        mean, std = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
        holds, passing = reading.verdict(v)
        rows.append(Row(c, "holds" if holds else "fails", mean, std, v.size, passing,
                        "" if holds else c.if_fails, reading.text))
    return rows
