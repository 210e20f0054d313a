"""Reading rules: how a paper's notation becomes an expectation a measurement can fail.

The papers state Θ(x), Θ̃(x), o(1), "independent of", "≪", a sign, or one number from one run;
none states its constants. Each notation is read here once, by a rule with its reason, and a
claim names its rule and the paper's quantity (`rule: o_tilde`, `value: B * s * sigma_p / n`):
its expectation is computed from them, from the experiment's own settings and grid, never
typed by hand. The constants:

    DECADE   Θ, O and Ω allow a factor 10 either way: the widest band that still tells a
             constant order from o(1) (0.05) and from a growth of a hundredfold
    ln n     Θ̃, Õ and Ω̃ allow one more factor ln n (n: the experiment's training set), the
             polylogarithm they hide at its first power
    O1       o(1) is at most 0.05 (and 1/2 − o(1) at least 0.45): the papers' "0" and "≈ 0"
             read on a test set, a twentieth of the way from 0 to chance
    NUMBER   a number the paper reports from one run is compared with the seeds' spread,
             widened by 0.05 either way (the papers give neither seeds nor spread)
    SIGN     a sign holds when a majority of the seeds has it

`RULES` is the table; `docs/science.md` ("Reading rules") states it for readers.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import ConfigError
from .metrics import populated
from .ranges import Interval

DECADE = 10.0
O1 = 0.05
NUMBER_TOLERANCE = 0.05


@dataclass(frozen=True)
class Reading:
    """What a rule makes of a claim on a summary: the values it accepts (for one seed, or the
    mean), the text the claims page shows, and how the seeds decide (`verdict`)."""

    accepted: Interval
    text: str
    by: str = "mean"  # mean: the mean must be accepted; majority: most seeds; spread: x
    paper: float = math.nan  # in the seeds' range (paper_number)

    def verdict(self, values: np.ndarray) -> tuple[bool, int]:
        """(holds, seeds that pass on their own) for per-seed values."""
        passing = int(sum(float(v) in self.accepted for v in values))
        if self.by == "majority":
            return passing > len(values) / 2, passing
        if self.by == "spread":
            lo, hi = float(values.min()), float(values.max())
            return lo - NUMBER_TOLERANCE <= self.paper <= hi + NUMBER_TOLERANCE, passing
        return float(values.mean()) in self.accepted, passing


# --- the paper's quantity: a number, or an expression of the experiment's settings ----------

# short names a value may use for the summary's settings (the papers' symbols)
SYMBOLS = {"B": "batch_size", "n": "data_n", "d": "data_d", "s": "data_s",
           "sigma_p": "data_sigma_p", "alpha": "data_alpha", "eta": "lr",
           "lambda_": "weight_decay", "sigma_0": "model_sigma_0", "q": "model_q",
           "m": "model_m", "T": "epochs", "snr": "data_snr"}
_FUNCTIONS = {"log": math.log, "log10": math.log10, "sqrt": math.sqrt, "min": min, "max": max}
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg}


def setting(ds: xr.Dataset, name: str, where: str) -> float:
    """A setting of the claim's selection: a scalar coordinate of the summary (or a grid axis
    fixed by the claim's `where`), by its summary name or its symbol (SYMBOLS)."""
    dim = SYMBOLS.get(name, name)
    if dim in ds.coords and ds[dim].ndim == 0:
        return float(ds[dim])
    if dim in ds.coords and ds[dim].dtype.kind == "f":  # a setting of the selection's runs
        values = np.unique(ds[dim].values[np.isfinite(ds[dim].values)])
        if len(values) == 1:
            return float(values[0])
    if name == "T" and "epoch" in ds.coords:  # runs of several lengths: the longest
        return float(ds[dim].max()) if dim in ds.coords else float(ds["epoch"].max())
    fixed = sorted(k for k, c in ds.coords.items() if c.ndim == 0)
    raise ConfigError(where, f"'{name}' is not a setting fixed at the claim's grid point "
                      f"(settings: {', '.join(fixed)})")


def quantity(value, ds: xr.Dataset, where: str) -> float:
    """The paper's quantity: a number, or an expression of the settings (B * s * sigma_p / n;
    + - * / **, log, log10, sqrt, min, max)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(where, "must be a number or an expression of the settings", value)

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return setting(ds, node.id, where)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            return float(_FUNCTIONS[node.func.id](*map(walk, node.args)))
        raise ConfigError(where, "must be a number or an expression of the settings "
                          "(+ - * / **, log, log10, sqrt, min, max)", value)

    try:
        tree = ast.parse(value, mode="eval")
    except SyntaxError:
        raise ConfigError(where, "is not an expression", value) from None
    return walk(tree)


def _n(ds: xr.Dataset, where: str) -> float:
    return setting(ds, "n", where)


def _g(x: float) -> str:
    return f"{x:.3g}"


# --- the rules --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One row of RULES: the notation, why it is read so, and the reading (a function of the
    paper's value, the claim's summary and the claim)."""

    notation: str
    why: str
    read: Callable[..., Reading]
    needs_value: bool = True


def _band(low: float, high: float, text: str) -> Reading:
    return Reading(Interval(low, high, True, True), text)


def _theta(x, ds, c):
    return _band(x / DECADE, x * DECADE, f"Θ({_g(x)}): in [{_g(x / DECADE)}, {_g(x * DECADE)}]")


def _big_o(x, ds, c):
    return Reading(Interval(hi=x * DECADE, hi_closed=True), f"O({_g(x)}): ≤ {_g(x * DECADE)}")


def _omega(x, ds, c):
    return Reading(Interval(lo=x / DECADE, lo_closed=True), f"Ω({_g(x)}): ≥ {_g(x / DECADE)}")


def _tilde(x, ds, c) -> tuple[float, float]:
    n = _n(ds, f"claim {c.id}.rule")
    return DECADE * math.log(n), n


def _theta_tilde(x, ds, c):
    f, n = _tilde(x, ds, c)
    return _band(x / f, x * f, f"Θ̃({_g(x)}), 10 ln n = {_g(f)} (n = {n:g}): in "
                               f"[{_g(x / f)}, {_g(x * f)}]")


def _o_tilde(x, ds, c):
    f, n = _tilde(x, ds, c)
    return Reading(Interval(hi=x * f, hi_closed=True),
                   f"Õ({_g(x)}), 10 ln n = {_g(f)} (n = {n:g}): ≤ {_g(x * f)}")


def _omega_tilde(x, ds, c):
    f, n = _tilde(x, ds, c)
    return Reading(Interval(lo=x / f, lo_closed=True),
                   f"Ω̃({_g(x)}), 10 ln n = {_g(f)} (n = {n:g}): ≥ {_g(x / f)}")


def _o1(x, ds, c):
    return _band(-O1, O1, f"o(1): within {O1} of 0")


def _half_minus_o1(x, ds, c):
    return Reading(Interval(lo=0.5 - O1, lo_closed=True), f"1/2 − o(1): ≥ {0.5 - O1}")


def _zero(x, ds, c):
    return Reading(Interval(hi=1 / x), f"0 of {x:g}: < 1/{x:g} = {_g(1 / x)}")


def _sign(x, ds, c):
    side = Interval(hi=0.0) if x < 0 else Interval(lo=0.0)
    return Reading(side, f"{'negative' if x < 0 else 'positive'} for a majority of the seeds",
                   by="majority")


def _paper_number(x, ds, c):
    return Reading(Interval(x - NUMBER_TOLERANCE, x + NUMBER_TOLERANCE, True, True),
                   f"{_g(x)} inside the seeds' range ± {NUMBER_TOLERANCE}", by="spread",
                   paper=x)


def _within(x, ds, c):
    """(a, b]; with `axis`, b raised to the grid's first value at or above it (a boundary the
    paper puts at 0.05 shows on a decade grid at 0.1)."""
    low, high = (quantity(v, ds, f"claim {c.id}.value") for v in c.value)
    text = f"in ({_g(low)}, {_g(high)}]"
    if c.axis:
        above = [v for v in populated(ds, c.axis) if v >= high * (1 - 1e-9)]
        if above and min(above) > high:
            text = f"in ({_g(low)}, {_g(high)}], {c.axis} grid's next value {_g(min(above))}"
            high = float(min(above))
    return Reading(Interval(low, high, False, True), text)


def _grid_step(ds: xr.Dataset, c) -> tuple[float, str]:
    """The largest step, in log10, between neighbouring values of the axis `c.axis` at which
    the claim's selection holds runs."""
    dim = c.axis
    if dim not in ds.dims and dim != "epoch":
        raise ConfigError(f"claim {c.id}.axis", f"'{dim}' is not an axis of the summary")
    values = populated(ds, dim)
    values = np.sort(np.log10(values[values > 0]))  # a log grid (epoch 0 aside)
    if len(values) < 2:
        raise ConfigError(f"claim {c.id}.axis", f"'{dim}' has fewer than two values here")
    return float(np.diff(values).max()), dim


def _moves_by(x, ds, c):
    step, dim = _grid_step(ds, c)
    return _band(x - step, x + step, f"{_g(x)} within one step of the {dim} grid "
                                     f"({_g(step)} in log10): in [{_g(x - step)}, {_g(x + step)}]")


def _independent_of(x, ds, c):
    step, dim = _grid_step(ds, c)
    return _band(-step, step, f"independent: within one step of the {dim} grid "
                              f"({_g(step)} in log10)")


def _much_greater(x, ds, c):
    return Reading(Interval(lo=math.log10(DECADE)), "≫: more than a decade apart (log10 > 1)")


def _log_range(ds: xr.Dataset, c) -> tuple[float, float]:
    """The smallest and largest n of the grid at which the claim's selection holds runs."""
    if "data_n" not in ds.dims:
        raise ConfigError(f"claim {c.id}.rule", "needs the grid axis data.n")
    n = populated(ds, "data_n")
    return float(n.min()), float(n.max())


def _log_factor_delta(ds: xr.Dataset, c) -> tuple[float, float, float]:
    """δ = log(ln n_max / ln n_min) / log(n_max / n_min): one factor ln n across the grid's n,
    as a power of n."""
    low, high = _log_range(ds, c)
    return math.log(math.log(high) / math.log(low)) / math.log(high / low), low, high


def _power_law(x, ds, c):
    """A boundary n·SNR^q = C up to one factor ln n: the slope of log SNR* in log n is −1/q
    up to ±δ/q, where a pure power law with that slope moves n·SNR*^q by one factor
    ln n_max / ln n_min across the grid (what `log_factor` accepts)."""
    delta, low, high = _log_factor_delta(ds, c)
    q = -1.0 / x  # the value is the slope −1/q
    lo, hi = (-1 - delta) / q, (-1 + delta) / q
    return _band(lo, hi, f"{_g(x)} up to one factor ln n over n = {low:g}…{high:g} "
                         f"(δ = {_g(delta)}): in [{_g(lo)}, {_g(hi)}]")


def _log_factor(x, ds, c):
    low, high = _log_range(ds, c)
    ratio = math.log(high) / math.log(low)
    return Reading(Interval(hi=ratio, hi_closed=True),
                   f"Θ(1) up to one factor ln n over n = {low:g}…{high:g}: ≤ {_g(ratio)}")


def _rounding(x, ds, c):
    T = float(ds["epoch"].max())  # the longest run's steps (full batch: epochs are steps)
    dtype = str(ds["train_dtype"].item()) if "train_dtype" in ds.coords else "float32"
    eps = float(np.finfo(dtype).eps)
    return Reading(Interval(hi=T * eps, hi_closed=True),
                   f"rounding: T ε = {T:g} × {eps:.2g} = {_g(T * eps)}")


RULES: dict[str, Rule] = {
    "o1": Rule("o(1)", f"a vanishing quantity, read as within {O1} of 0 (a twentieth of the "
               "way from 0 to chance on an error)", _o1, needs_value=False),
    "half_minus_o1": Rule("1/2 − o(1)", "no better than chance: at least 1/2 − 0.05",
                          _half_minus_o1, needs_value=False),
    "zero": Rule("0 (of a count)", "a table's 0 on n examples: fewer than one of them (the "
                 "value is n)", _zero),
    "theta": Rule("Θ(x)", "constants unstated: within one decade of x either way", _theta),
    "big_o": Rule("O(x)", "an upper bound of order x: at most ten times x", _big_o),
    "omega": Rule("Ω(x)", "a lower bound of order x: at least a tenth of x", _omega),
    "theta_tilde": Rule("Θ̃(x)", "Θ with the hidden polylogarithm at its first power: within "
                        "10 ln n of x either way (n: the experiment's)", _theta_tilde),
    "o_tilde": Rule("Õ(x)", "at most 10 ln n times x", _o_tilde),
    "omega_tilde": Rule("Ω̃(x)", "at least x / (10 ln n)", _omega_tilde),
    "sign": Rule("a sign", "the direction of a statement (value −1 or +1): held by a majority "
                 "of the seeds (the page shows how many)", _sign),
    "paper_number": Rule("one run's number", "a number the paper reports from one run: inside "
                         f"the seeds' range widened by {NUMBER_TOLERANCE} (one run cannot "
                         "fix a mean over seeds)", _paper_number),
    "within": Rule("between a and b", "the paper puts one end on each side (value [a, b]): in "
                   "(a, b], b raised to the next value of the grid `axis` if given", _within),
    "moves_by": Rule("moves by x", "a shift the paper predicts, read to one step of the grid "
                     "it is measured on (`axis`)", _moves_by),
    "independent_of": Rule("independent of", "moves by at most one step of the grid it is "
                           "measured on (`axis`), which decides nothing finer",
                           _independent_of, needs_value=False),
    "much_greater": Rule("≫", "at least a decade apart (a log10 ratio above 1)",
                         _much_greater, needs_value=False),
    "power_law": Rule("slope up to log factors", "a power law whose constant hides one "
                      "factor ln n: the slope within the δ that factor makes over the grid's "
                      "n (value: the slope)", _power_law),
    "log_factor": Rule("Θ(1) up to log factors", "one quantity across a grid's n, the same up "
                       "to one factor ln n_max / ln n_min", _log_factor, needs_value=False),
    "rounding": Rule("exact", "exact in exact arithmetic: at most T machine epsilons of the "
                     "run's dtype", _rounding, needs_value=False),
}


def describe_rules_markdown() -> str:
    """The rule table of docs/science.md."""
    rows = ["| rule | notation | read as |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {r.notation} | {r.why} |" for name, r in RULES.items()]
    return "\n".join(rows)
