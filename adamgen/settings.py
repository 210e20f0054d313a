"""How a config key is declared: a default, its meaning and a check, in one place.

Every section of a run config is a frozen dataclass whose fields are declared with `key`; the
validation (`adamgen.config`), `adamgen keys`, the docs and the run files' coordinate metadata
all read these declarations. This module imports nothing heavy, so that the registries that use
it (data models, networks) stay cheap to import.
"""

import dataclasses
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any

Check = Callable[[Any], str | None]


def key(default: Any, doc: str, check: Check | None = None, units: str = "1") -> Any:
    """A config field: its default, its meaning (one line), a range check and its units."""
    return field(default=default, metadata={"doc": doc, "check": check, "units": units})


def positive(x: float) -> str | None:
    return None if x > 0 else "must be > 0"


def at_least(k: float) -> Check:
    return lambda x: None if x >= k else f"must be >= {k}"


def between(lo: float, hi: float) -> Check:
    return lambda x: None if lo <= x <= hi else f"must be in [{lo}, {hi}]"


def unit_interval(x: float) -> str | None:
    return None if 0.0 <= x < 1.0 else "must be in [0, 1)"


def choice(*options: str) -> Check:
    return lambda x: None if x in options else f"must be one of: {', '.join(options)}"


def device(x: str) -> str | None:
    ok = x == "cpu" or re.fullmatch(r"cuda(:\d+)?", x)
    return None if ok else "must be 'cpu', 'cuda' or 'cuda:N'"


def did_you_mean(name: object, known: list[str], prefix: str = "") -> str:
    """"did you mean 'x'? " for the closest of `known` to a misspelt name, or ""."""
    close = difflib.get_close_matches(str(name), known, n=1)
    return f"did you mean '{prefix}{close[0]}'? " if close else ""


def finite(x: float) -> bool:
    return math.isfinite(x)


def docs(cls: type) -> dict[str, tuple[Any, str, str]]:
    """name → (default, meaning, units) for every key of a config dataclass."""
    return {f.name: (f.default, f.metadata.get("doc", ""), f.metadata.get("units", "1"))
            for f in dataclasses.fields(cls)}
