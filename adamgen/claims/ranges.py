"""Sets of numbers: what a claim expects of its metric, and what values the metric can take.

A claim can only fail if some value its metric can take lies outside its expectation. Both
are sets of real numbers here: an expectation is an `Interval` (`< x`, `>= x`, `x ± t`,
`in (a, b]`), and a metric's range is an `Interval` or, for a metric that reads a coordinate of
the grid (a critical batch size, a stall point), the finite set of the grid's values
(`Values`). `witness` finds a value of the range outside the expectation, or says that none
exists: a claim whose expectation covers its whole range cannot fail.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)"
_BOUND = re.compile(rf"^\s*(<=|>=|<|>)\s*{_NUMBER}\s*$")
_NEAR = re.compile(rf"^\s*{_NUMBER}\s*(?:±|\+-)\s*{_NUMBER}\s*$")
_IN = re.compile(rf"^\s*in\s*([\[(])\s*{_NUMBER}\s*,\s*{_NUMBER}\s*([\])])\s*$")
FORMS = "'< x', '<= x', '> x', '>= x', 'x ± t' or 'in [a, b]' (round brackets: open ends)"


@dataclass(frozen=True)
class Interval:
    """{x : lo < x < hi}, each end closed where its flag says so (an infinite end is open)."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_closed: bool = False
    hi_closed: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.lo or (self.lo_closed and x == self.lo)
        below = x < self.hi or (self.hi_closed and x == self.hi)
        return above and below

    @property
    def empty(self) -> bool:
        if self.lo < self.hi:
            return False
        return not (self.lo == self.hi and self.lo_closed and self.hi_closed)

    def point(self) -> float:
        """A value inside (the interval must not be empty): the middle of a finite interval,
        a unit inside an infinite one."""
        if self.lo == self.hi:
            return self.lo
        if math.isinf(self.lo) and math.isinf(self.hi):
            return 0.0
        if math.isinf(self.lo):
            return self.hi - 1.0
        if math.isinf(self.hi):
            return self.lo + 1.0
        return 0.5 * (self.lo + self.hi)

    def __and__(self, other: Interval) -> Interval:
        lo, lo_closed = max((self.lo, not self.lo_closed), (other.lo, not other.lo_closed))
        hi, hi_closed = min((self.hi, self.hi_closed), (other.hi, other.hi_closed))
        return Interval(lo, hi, not lo_closed, hi_closed)

    def outside(self) -> list[Interval]:
        """The complement, as up to two intervals."""
        parts = []
        if self.lo > -math.inf:
            parts.append(Interval(-math.inf, self.lo, False, not self.lo_closed))
        if self.hi < math.inf:
            parts.append(Interval(self.hi, math.inf, not self.hi_closed, False))
        return parts

    def __str__(self) -> str:
        left = "[" if self.lo_closed else "("
        right = "]" if self.hi_closed else ")"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


@dataclass(frozen=True)
class Values:
    """A finite set of values (a grid axis's coordinates)."""

    values: tuple[float, ...]

    def __str__(self) -> str:
        return "{" + ", ".join(f"{v:g}" for v in self.values) + "}"


Range = Interval | Values

REALS = Interval()
NON_NEGATIVE = Interval(0.0, math.inf, True, False)
UNIT = Interval(0.0, 1.0, True, True)
AT_LEAST_ONE = Interval(1.0, math.inf, True, False)


def parse_expect(text: str) -> Interval | None:
    """The set of values an expectation accepts; None if the text is none of the forms."""
    m = _BOUND.match(text)
    if m:
        op, x = m.group(1), float(m.group(2))
        return {"<": Interval(hi=x), "<=": Interval(hi=x, hi_closed=True),
                ">": Interval(lo=x), ">=": Interval(lo=x, lo_closed=True)}[op]
    m = _NEAR.match(text)
    if m:
        x, t = float(m.group(1)), float(m.group(2))
        return Interval(x - t, x + t, True, True)
    m = _IN.match(text)
    if m:
        return Interval(float(m.group(2)), float(m.group(3)), m.group(1) == "[",
                        m.group(4) == "]")
    return None


def witness(accepted: Interval, possible: Range) -> float | None:
    """A value the metric can take that the expectation does not accept, just past the
    accepted set's edge (a claim's boundary case: the smallest violation, a millionth beyond
    the edge so that rounding cannot carry it back); None if the expectation accepts every
    possible value."""
    if isinstance(possible, Values):
        outside = [v for v in possible.values if v not in accepted]
        return min(outside, key=lambda v: _distance(v, accepted), default=None)
    for part in accepted.outside():
        common = part & possible
        if common.empty:
            continue
        below = part.hi <= accepted.lo  # the part left of the accepted interval
        edge = common.hi if below else common.lo
        length = common.hi - common.lo
        if length == 0:
            return edge
        gap = min(1e-6 * max(1.0, abs(edge)), 0.5 * length)
        return edge - gap if below else edge + gap
    return None


def _distance(x: float, accepted: Interval) -> float:
    return max(accepted.lo - x, x - accepted.hi, 0.0)


def combine(a: Range, b: Range, how: str) -> Range:
    """The range of b − a (`difference`), log10(b / a) (`log10_ratio`) or a relative distance,
    for a and b in the given ranges."""
    if how == "relative_distance":
        return NON_NEGATIVE
    if isinstance(a, Values) and isinstance(b, Values):
        out = set()
        for x in a.values:
            for y in b.values:
                if how == "difference":
                    out.add(y - x)
                elif x > 0 and y > 0:
                    out.add(math.log10(y / x))
        return Values(tuple(sorted(out)))
    a, b = (_span(r) for r in (a, b))
    if how == "difference":
        return Interval(b.lo - a.hi, b.hi - a.lo, a.hi_closed and b.lo_closed,
                        a.lo_closed and b.hi_closed)
    if a.lo > 0 and b.lo > 0:  # log10_ratio of two positive ranges
        return Interval(math.log10(b.lo / a.hi) if a.hi < math.inf else -math.inf,
                        math.log10(b.hi / a.lo) if b.hi < math.inf else math.inf,
                        a.hi_closed and b.lo_closed, a.lo_closed and b.hi_closed)
    return REALS


def _span(r: Range) -> Interval:
    if isinstance(r, Interval):
        return r
    return Interval(min(r.values), max(r.values), True, True)
