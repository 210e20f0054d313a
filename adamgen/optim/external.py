"""Anyone's optimizer: a `torch.optim.Optimizer` subclass named by its import path.

A run's `optimizer.name` with a dot or a colon is an import path (`torch.optim.NAdam`,
`mypkg.opt:MyOpt`); the other keys are the class's keyword arguments, checked against its
signature before any job (did-you-mean on a misspelt one, numbers finite). Such a run trains
on the torch engine, each run with its own instance over its own parameters (the network's
parameter groups: the CNN's two filter banks W₊₁ and W₋₁, each m × d), its `step` always
given a closure. Its weight decay is its own `weight_decay` argument, where the signature has
one: the objective is then the plain loss. Its identity is the import path, the kwargs and the
version of the package that holds it (or a hash of its source file), recorded as `package`:
an upgraded optimizer never reuses an old run file.

Names without a dot or colon are the table of `adamgen.optim.alias` (`OPTIMIZERS`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import ConfigError
from ..settings import did_you_mean

# keys adamgen adds to an outside optimizer's resolved settings (not keyword arguments)
PACKAGE = "package"


def is_import_path(name: Any) -> bool:
    """A name with a dot or a colon names a class by its import path."""
    return isinstance(name, str) and ("." in name or ":" in name)


def slug(name: str) -> str:
    """The import path as a folder name: lower-case letters, digits and '_'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class Outside:
    """What adamgen needs of an outside optimizer, in the shape of a NamedOptimizer row."""

    name: str
    defaults: dict  # its keyword arguments with their defaults (JSON-able ones)
    coupled: bool = False  # its decay is its own: the objective is the plain loss
    full_batch: bool = False
    revision: int = 0
    doc: str = "an optimizer of another package, through the torch engine"


def _split(path: str) -> tuple[str, str]:
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    return module, attr


@cache
def load(path: str) -> type:
    """The class at `path`; a ConfigError naming it where it does not import or is not an
    Optimizer."""
    import torch  # lazy: only an outside optimizer's config needs torch to be read

    module_name, attr = _split(path)
    if not module_name or not attr:
        raise ConfigError("optimizer.name", "is not an import path (write package.module.Class "
                          "or package.module:Class)", path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError("optimizer.name", f"does not import: {err}", path) from None
    cls = module
    for part in attr.split("."):
        if not hasattr(cls, part):
            hint = did_you_mean(part, [n for n in dir(cls) if not n.startswith("_")]).strip()
            raise ConfigError("optimizer.name", f"'{module_name}' has no '{part}'"
                              + (f" ({hint})" if hint else ""), path)
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError("optimizer.name", "is not a torch.optim.Optimizer subclass", path)
    return cls


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor's keyword arguments (its parameter list aside)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # self
    return {p.name: p for p in params[1:] if p.kind not in (p.VAR_POSITIONAL,)}  # params


def _plain(value: Any) -> bool:
    if isinstance(value, bool | str) or value is None:
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    return isinstance(value, list | tuple) and all(_plain(v) for v in value)


@cache
def package(path: str) -> str:
    """Who made the class: its package's name and version, or its source file's hash."""
    from importlib import metadata

    cls = load(path)
    top = cls.__module__.split(".")[0]
    try:
        return f"{top} {metadata.version(top)}"
    except metadata.PackageNotFoundError:
        pass
    try:
        source = inspect.getsourcefile(cls) or ""
        with open(source, "rb") as f:
            return f"{top} (source sha256 {hashlib.sha256(f.read()).hexdigest()[:16]})"
    except (OSError, TypeError):
        return f"{top} (no version, no source)"


def row(path: str) -> Outside:
    """The class's declaration: its keyword arguments with their (JSON-able) defaults."""
    defaults = {}
    for name, p in _parameters(load(path)).items():
        if p.kind == p.VAR_KEYWORD:
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        if _plain(default):
            defaults[name] = list(default) if isinstance(default, tuple) else default
    return Outside(name=path, defaults=defaults)


def resolve(raw: dict, as_number) -> dict[str, Any]:
    """An outside optimizer's settings, checked: the import path, the keyword arguments the
    config gives (numbers as numbers, finite), and the package that holds it."""
    path = raw["name"]
    params = _parameters(load(path))
    open_keywords = any(p.kind == p.VAR_KEYWORD for p in params.values())
    out: dict[str, Any] = {"name": path}
    for key, value in raw.items():
        if key in ("name", PACKAGE):
            continue
        if key not in params and not open_keywords:
            hint = did_you_mean(key, list(params))
            raise ConfigError(f"optimizer.{key}", f"is not an argument of {path} ({hint}its "
                              f"arguments: {', '.join(params) or 'none'})")
        value = [as_number(v) for v in value] if isinstance(value, list) else as_number(value)
        if not _plain(value):
            raise ConfigError(f"optimizer.{key}", "must be a finite number, true or false, a "
                              "text or a list of these", value)
        out[key] = value
    missing = [name for name, p in params.items() if p.default is inspect.Parameter.empty
               and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in out]
    if missing:
        raise ConfigError(f"optimizer.{missing[0]}", f"is missing (required by {path})")
    out[PACKAGE] = raw.get(PACKAGE) or package(path)
    return out


def kwargs(settings: dict) -> dict[str, Any]:
    """The keyword arguments to build the optimizer with (lists as the tuples torch takes)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()
            if k not in ("name", PACKAGE)}


def value(settings: dict, key: str, default: float = 0.0) -> float:
    """A numeric setting of the run (its label's lr or weight decay): given, else the
    class's default, else `default`."""
    got = settings.get(key, row(settings["name"]).defaults.get(key))
    return float(got) if isinstance(got, int | float) and not isinstance(got, bool) \
        else default
