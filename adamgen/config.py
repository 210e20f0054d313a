"""One training run's configuration: defaults, strict validation, overrides, flat attributes.

A run config has six sections (SPEC §1.1, §2, §3, §4, §5):

    seed: 0                       # data, initial weights and batch order all follow from it
    data: {kind, d, n, s, sigma_p, alpha, n_test, balanced, patches}
    model: {q, m, c, sigma_0, activation, h}
    optimizer: {name, lr, weight_decay, ...}   # keys depend on the optimizer (adamgen.optim)
    train: {batch_size, epochs, device, dtype}
    probes: {per_decade, linear_points, epochs, noise_memorization_full, store_weights}

Unknown keys, wrong types and out-of-range values are errors that name the key and value.
"""

import dataclasses
import difflib
import math
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import ConfigError, DataFileError
from .optim import HYPERS, OPTIMIZERS, REQUIRED


def _key(default: Any, doc: str, check=None) -> Any:
    return field(default=default, metadata={"doc": doc, "check": check})


def _positive(x: float) -> str | None:
    return None if x > 0 else "must be > 0"


def _at_least(k: float):
    return lambda x: None if x >= k else f"must be >= {k}"


def _between(lo: float, hi: float):
    return lambda x: None if lo <= x <= hi else f"must be in [{lo}, {hi}]"


# beyond these, every epoch of a run is probed anyway: larger values only cost memory
MAX_PER_DECADE, MAX_LINEAR_POINTS = 1000, 1_000_000


def _choice(*options: str):
    return lambda x: None if x in options else f"must be one of: {', '.join(options)}"


def _device(x: str) -> str | None:
    ok = x == "cpu" or re.fullmatch(r"cuda(:\d+)?", x)
    return None if ok else "must be 'cpu', 'cuda' or 'cuda:N'"


@dataclass(frozen=True)
class DataConfig:
    """Feature–noise patch model [SPEC §1.1; Zou Def. 3.1; Tang Def. 3.1]."""

    kind: str = _key("patch", "data model: 'patch' (1-sparse feature patch + sparse noise patch)",
                     _choice("patch"))
    d: int = _key(1000, "dimension of each patch", _at_least(2))
    n: int = _key(200, "training examples", _at_least(1))
    s: int = _key(100, "noise sparsity: Gaussian coordinates of ξ, drawn from {2..d}", _at_least(1))
    sigma_p: float = _key(0.1, "standard deviation σ_p of ξ's Gaussian coordinates", _positive)
    alpha: float = _key(0.2, "feature-noise strength α: ξ ← ξ − α y v", _at_least(0))
    n_test: int = _key(10000, "test examples (i.i.d. Rademacher labels)", _at_least(1))
    balanced: bool = _key(True, "training set holds n/2 examples of each label")
    patches: int = _key(2, "patches P per example: one signal patch, P − 1 noise patches",
                        _at_least(2))

    def cross_checks(self):
        if self.s > self.d - 1:
            yield "s", self.s, f"must be <= data.d - 1 = {self.d - 1}"
        if self.balanced and self.n % 2:
            yield "n", self.n, "must be even when data.balanced is true"


@dataclass(frozen=True)
class ModelConfig:
    """Two-layer CNN F_j(W, x) = c Σ_r Σ_p σ(⟨w_{j,r}, x_p⟩) [SPEC §2; Zou eq. 3.1]."""

    q: float = _key(3, "activation power: σ(z) = max(0, z)^q", _at_least(1))
    m: int = _key(20, "neurons per class", _at_least(1))
    c: float = _key(1.0, "output scale c (1 in Zou/Tang, 1/m in Cao et al.)", _positive)
    sigma_0: float = _key(0.01, "initialization: w_{j,r} ~ N(0, σ_0² I_d)", _at_least(0))
    activation: str = _key("relu", "'relu' (ReLU^q) or 'huber' (z^q/(q h^(q−1)) on [0, h], "
                           "linear beyond)", _choice("relu", "huber"))
    h: float = _key(1.0, "threshold of the Huberized ReLU (activation: huber)", _positive)


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol [SPEC §4]."""

    batch_size: int | None = _key(None, "mini-batch size B; must divide data.n; null means "
                                  "data.n (full batch)", _at_least(1))
    epochs: int = _key(10000, "T in epochs; an epoch is n/B steps over a fresh permutation",
                       _at_least(0))
    device: str = _key("cpu", "'cpu', 'cuda' or 'cuda:N'", _device)
    dtype: str = _key("float32", "'float32' or 'float64'", _choice("float32", "float64"))
    engine: str = _key("auto", "'reference' (torch, any device), 'fast' (structured-sparse "
                       "CPU kernels) or 'auto' (fast where it applies)",
                       _choice("auto", "reference", "fast"))

    def cross_checks(self):
        if self.engine == "fast" and self.device != "cpu":
            yield "engine", self.engine, "the fast engine runs on the CPU; use 'auto' or " \
                "'reference' with a CUDA device"


@dataclass(frozen=True)
class ProbeConfig:
    """What is recorded along the trajectory, and when [SPEC §5]."""

    per_decade: int = _key(16, "log-spaced probe epochs 10^(k/per_decade) up to T (plus 0 "
                           "and T); the same for every T, so runs of any length line up",
                           _between(0, MAX_PER_DECADE))
    linear_points: int = _key(0, "evenly spaced probe epochs in [0, T]",
                              _between(0, MAX_LINEAR_POINTS))
    epochs: tuple[int, ...] = _key((), "extra probe epochs", None)
    noise_memorization_full: bool = _key(False, "store ⟨w_{j,r}, ξ_i⟩ for every j, r, i")
    store_weights: bool = _key(False, "store the initial and final weights W")

    def cross_checks(self):
        if any(e < 0 for e in self.epochs):
            yield "epochs", list(self.epochs), "must be >= 0"


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved, validated run."""

    seed: int
    data: DataConfig
    model: ModelConfig
    optimizer: dict[str, Any]
    train: TrainConfig
    probes: ProbeConfig

    @property
    def batch_size(self) -> int:
        return self.train.batch_size  # resolved: never None

    @property
    def steps_per_epoch(self) -> int:
        return self.data.n // self.batch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples): JSON- and YAML-safe, parses back to itself."""
        out = {"seed": self.seed, "optimizer": _plain(self.optimizer)}
        for name in _SECTIONS:
            out[name] = _plain(dataclasses.asdict(getattr(self, name)))
        return {k: out[k] for k in ("seed", "data", "model", "optimizer", "train", "probes")}

    def flat(self) -> dict[str, Any]:
        """One scalar per hyperparameter, named section_key (booleans as 0/1, betas split)."""
        out: dict[str, Any] = {"seed": self.seed}
        for section, values in self.to_dict().items():
            if section == "seed":
                continue
            for key, value in values.items():
                if key == "betas":
                    out[f"{section}_beta1"], out[f"{section}_beta2"] = value
                elif isinstance(value, bool):
                    out[f"{section}_{key}"] = int(value)
                elif isinstance(value, int | float | str):
                    out[f"{section}_{key}"] = value
                elif isinstance(value, list) and value:
                    out[f"{section}_{key}"] = np.asarray(value)
        return out


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
             "probes": ProbeConfig}
TOP_LEVEL = ("seed", "data", "model", "optimizer", "train", "probes")


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def _unknown(key: str, known: list[str]) -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    prefix = key[: len(key) - len(name)]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
    return ConfigError(key, f"unknown key ({hint}known: {', '.join(known)})")


def _float_hint(value: Any) -> str:
    """YAML 1.1 loaders (Snakemake's among them) read 1e-5 as text; say so."""
    try:
        float(value)
    except (TypeError, ValueError):
        return ""
    return f" (YAML reads {value} as text; write it with a decimal point, e.g. 1.0e-5)"


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check the YAML value against the annotated type; ints are accepted where floats are."""
    if isinstance(kind, types.UnionType):  # `int | None`
        if value is None:
            return None
        kind = next(k for k in kind.__args__ if k is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, "must be true or false", value)
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, "must be an integer", value)
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(key, "must be a finite number", value)
            return float(value)
        raise ConfigError(key, "must be a number" + _float_hint(value), value)
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, "must be a string", value)
    if kind == tuple[int, ...]:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, "must be a list of integers", value)
        return tuple(_coerce(v, int, key) for v in value)
    raise TypeError(f"no coercion for {kind}")  # a bug in this module, not in the config


def _parse_section(cls: type, raw: Any, section: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(section, "must be a mapping of keys to values", raw)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise _unknown(f"{section}.{key}", list(fields))
    values = {}
    for name, f in fields.items():
        key = f"{section}.{name}"
        value = _coerce(raw.get(name, f.default), f.type, key)
        check = f.metadata.get("check")
        if value is not None and check and not isinstance(value, tuple):
            problem = check(value)
            if problem:
                raise ConfigError(key, problem, value)
        values[name] = value
    obj = cls(**values)
    for name, value, problem in getattr(obj, "cross_checks", lambda: [])():
        raise ConfigError(f"{section}.{name}", problem, value)
    return obj


def _parse_optimizer(raw: Any) -> dict[str, Any]:
    if raw is None:
        raise ConfigError("optimizer", "is missing (it needs at least 'name' and 'lr')")
    if not isinstance(raw, dict):
        raise ConfigError("optimizer", "must be a mapping of keys to values", raw)
    if "name" not in raw:
        raise ConfigError("optimizer.name", f"is missing (choose from: {', '.join(OPTIMIZERS)})")
    name = raw["name"]
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(name), list(OPTIMIZERS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError("optimizer.name", f"unknown optimizer ({hint}choose from: "
                          f"{', '.join(OPTIMIZERS)})", name)
    defaults = OPTIMIZERS[name].defaults
    for key in raw:
        if key != "name" and key not in defaults:
            if key in HYPERS:
                raise ConfigError(f"optimizer.{key}", f"is not a setting of {name} (its settings: "
                                  f"{', '.join(defaults)})")
            raise _unknown(f"optimizer.{key}", ["name", *defaults])
    out: dict[str, Any] = {"name": name}
    for key, default in defaults.items():
        full = f"optimizer.{key}"
        if key not in raw and default is REQUIRED:
            raise ConfigError(full, f"is missing (required by {name})")
        value = raw.get(key, default)
        kind = HYPERS[key].kind
        if kind == "pair":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ConfigError(full, "must be a pair [beta1, beta2]", value)
            value = tuple(float(_coerce(v, float, full)) for v in value)
        else:
            value = _coerce(value, {"float": float, "bool": bool}[kind], full)
            value = float(value) if kind == "float" else value
        problem = HYPERS[key].check(value)
        if problem:
            raise ConfigError(full, problem, list(value) if kind == "pair" else value)
        out[key] = value
    return out


def parse_run_config(raw: Any) -> RunConfig:
    """Validate a nested dict (as read from YAML) and fill every default."""
    if not isinstance(raw, dict):
        raise ConfigError("<top level>", "a run config must be a mapping of sections", raw)
    for key in raw:
        if key not in TOP_LEVEL:
            raise _unknown(str(key), list(TOP_LEVEL))
    seed = _coerce(raw.get("seed", 0), int, "seed")
    if seed < 0:
        raise ConfigError("seed", "must be >= 0", seed)
    sections = {name: _parse_section(cls, raw.get(name), name) for name, cls in _SECTIONS.items()}
    optimizer = _parse_optimizer(raw.get("optimizer"))
    data, train = sections["data"], sections["train"]
    batch = data.n if train.batch_size is None else train.batch_size
    if data.n % batch:
        raise ConfigError("train.batch_size", f"must divide data.n = {data.n}", batch)
    if OPTIMIZERS[optimizer["name"]].full_batch and batch != data.n:
        raise ConfigError("train.batch_size", f"must equal data.n = {data.n}: optimizer 'gd' is "
                          "full-batch; use 'sgd' for mini-batches", batch)
    sections["train"] = dataclasses.replace(train, batch_size=batch)
    if any(e > train.epochs for e in sections["probes"].epochs):
        raise ConfigError("probes.epochs", f"must be <= train.epochs = {train.epochs}",
                          list(sections["probes"].epochs))
    return RunConfig(seed=seed, optimizer=optimizer, **sections)


# --- YAML: floats such as 1e-5 (YAML 1.1 would read them as strings) -------------------------

class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[0-9][0-9_]*[eE][-+]?[0-9]+
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first on line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _acyclic(value: Any, source: str, parents: tuple = ()) -> None:
    """YAML aliases can make a node contain itself; nothing in a config may."""
    if isinstance(value, dict | list):
        if any(value is p for p in parents):
            raise DataFileError(f"{source}: an alias (*name) refers to a node that contains it")
        for child in value.values() if isinstance(value, dict) else value:
            _acyclic(child, source, (*parents, value))


def load_yaml_text(text: str, source: str = "<string>") -> Any:
    try:
        value = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(filter(None, (err.context, err.problem)))
        raise DataFileError(f"{source}{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as err:
        raise DataFileError(f"{source}: not valid YAML ({err})".replace("\n", " ")) from None
    _acyclic(value, source)
    return value


def load_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFileError(f"config file '{path}' is not UTF-8 text (byte {err.start}: "
                            f"{err.reason}); save it as UTF-8") from None
    except OSError as err:
        raise DataFileError(f"cannot read config file '{path}': {err.strerror}") from None
    return load_yaml_text(text, f"config file '{path}'")


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` strings (values parsed as YAML) to a nested dict, in a copy."""
    out = _plain(raw if raw is not None else {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, "an override must look like section.key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(key, f"'{part}' is not a section")
        node[leaf] = load_yaml_text(text, f"--set {item}")
    return out


def load_run_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    return parse_run_config(apply_overrides(load_yaml(path), list(overrides)))


def probe_epochs(run: RunConfig) -> np.ndarray:
    """Sorted epochs at which probes are recorded: 0, T, log- and evenly spaced points, extras."""
    T, p = run.train.epochs, run.probes
    epochs = {0, T, *p.epochs}
    if T >= 1 and p.per_decade:
        k = np.arange(int(np.floor(np.log10(T) * p.per_decade)) + 1)
        epochs.update(np.rint(10.0 ** (k / p.per_decade)).astype(int).tolist())
    if p.linear_points:
        epochs.update(np.rint(np.linspace(0, T, p.linear_points)).astype(int).tolist())
    return np.array(sorted(e for e in epochs if e <= T), dtype=np.int64)


def lockstep_key(run: RunConfig) -> tuple:
    """Runs with equal keys can advance together as one tensor program.

    They must share shapes, the optimizer's program and the schedule; they may differ in seed,
    every numeric hyperparameter of the optimizer, σ_0, and the data's σ_p, α and s.
    """
    d = run.to_dict()
    data = {k: v for k, v in d["data"].items() if k not in ("sigma_p", "alpha", "s")}
    model = {k: v for k, v in d["model"].items() if k != "sigma_0"}
    flags = {k: v for k, v in run.optimizer.items() if HYPERS.get(k) and HYPERS[k].structural}
    return (repr(data), repr(model), run.optimizer["name"], repr(flags), repr(d["train"]),
            repr(d["probes"]))


def describe_keys() -> str:
    """Every key with its default and meaning, for `adamgen keys` and the docs."""
    lines = ["seed: 0  # data, initial weights and batch order follow from it"]
    for name, cls in _SECTIONS.items():
        lines.append(f"{name}:")
        for f in dataclasses.fields(cls):
            lines.append(f"  {f.name}: {_plain(f.default)!r}  # {f.metadata['doc']}")
    lines.append("optimizer:  # name plus that optimizer's settings")
    for name, spec in OPTIMIZERS.items():
        settings = ", ".join(
            f"{k}={'(required)' if v is REQUIRED else _plain(v)}" for k, v in spec.defaults.items()
        )
        lines.append(f"  # {name}: {spec.doc}. Settings: {settings}")
    return "\n".join(lines)
