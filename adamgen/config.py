"""One training run's configuration: defaults, strict validation, overrides, coordinates.

A run config has six sections [docs/science.md]:

    seed: 0                          # data, initial weights and batch order follow from it
    data: {kind: patch, ...}         # keys of the data model `kind` (adamgen.data.DATA_MODELS)
    model: {name: two_layer_cnn, ...}  # keys of the network `name` (adamgen.models.NETWORKS)
    optimizer: {name: adam, lr: ...}  # keys of the optimizer `name` (adamgen.optim.OPTIMIZERS)
    train: {batch_size, epochs, device, dtype, engine, ...}  # and the engines' own keys
    probes: {per_decade, linear_points, epochs, extra, noise_memorization_full, store_weights}

Unknown keys, wrong types and out-of-range values are errors that name the key and value. The
keys come from the registries' config dataclasses, so this module lists none of them again.
"""

import dataclasses
import functools
import math
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .data import DATA_MODELS
from .engines import ALIASES as ENGINE_ALIASES
from .engines import ENGINES, choose, engine_keys, refusal
from .errors import ConfigError, DataFileError
from .models import NETWORKS
from .optim import HYPERS, OPTIMIZERS, REQUIRED, external, optimizer_row
from .probes import OPT_IN, PROBE_SETS, active
from .settings import at_least, between, choice, device, did_you_mean, key

# beyond these, every epoch of a run is probed anyway: larger values only cost memory
MAX_PER_DECADE, MAX_LINEAR_POINTS = 1000, 1_000_000


def _engine(x: str) -> str | None:
    """train.engine: 'auto' or a row of the engine registry (read when a config is checked,
    so that an engine registered later is known)."""
    if x == "auto" or x in ENGINES or x in ENGINE_ALIASES:
        return None
    hint = did_you_mean(x, list(ENGINES)).strip()
    return f"must be one of: auto, {', '.join(ENGINES)}" + (f" ({hint})" if hint else "")


class _TrainChecks:
    def resolve(self):
        """An engine's former name (reference, batched) is the engine it became."""
        return dataclasses.replace(self, engine=ENGINE_ALIASES.get(self.engine, self.engine))

    def cross_checks(self):
        for name, (declared, _) in engine_keys().items():
            problem = declared.cross(self) if declared.cross else None
            if problem:
                yield name, getattr(self, name), problem


# the engine-specific keys (compile, precision) are the engines' declarations
# (adamgen.engines.base.EngineKey): an engine that reads a new key declares it there
TrainConfig = dataclasses.make_dataclass("TrainConfig", [
    ("batch_size", int | None, key(None, "mini-batch size B; must divide data.n (an image "
                                   "network takes a last, smaller batch instead); null means "
                                   "data.n (full batch)", at_least(1))),
    ("epochs", int, key(10000, "T in epochs; an epoch is n/B steps over a fresh permutation",
                        at_least(0))),
    ("device", str, key("cpu", "'cpu', 'cuda' or 'cuda:N'", device)),
    ("dtype", str, key("float32", "'float32' or 'float64'", choice("float32", "float64"))),
    ("engine", str, key("auto", "'auto' (the first engine that supports the run: "
                        f"{', '.join(ENGINES)}) or one of them by name", _engine)),
    *((name, str, key(declared.default, declared.doc, declared.check))
      for name, (declared, _) in engine_keys().items()),
    ("checkpoint_every", int, key(0, "save the job's whole state every this many epochs (0: "
                                  "never); a killed job resumes from its last checkpoint",
                                  at_least(0))),
], bases=(_TrainChecks,), frozen=True, namespace={
    "__doc__": "Training protocol [docs/science.md §4].", "__module__": __name__})


@dataclass(frozen=True)
class ProbeConfig:
    """What is recorded along the trajectory, and when [docs/science.md §5]."""

    per_decade: int = key(16, "log-spaced probe epochs 10^(k/per_decade) up to T (plus 0 "
                          "and T); the same for every T, so runs of any length line up",
                          between(0, MAX_PER_DECADE))
    linear_points: int = key(0, "evenly spaced probe epochs in [0, T]",
                             between(0, MAX_LINEAR_POINTS))
    epochs: tuple[int, ...] = key((), "extra probe epochs")
    extra: tuple[str, ...] = key((), "probe sets recorded on top of the data model's own: "
                                 f"{', '.join(OPT_IN)} (adamgen.probes)")
    hessian_probes: int = key(0, "the hessian set's estimator: 0 the network's exact Hessian "
                              "diagonal, k > 0 Hutchinson's with k Rademacher vectors",
                              between(0, 10_000))
    hessian_examples: int = key(0, "training examples the Hutchinson estimate reads (0: all; "
                                "the first k otherwise: an image network's full set is costly)",
                                at_least(0))
    noise_memorization_full: bool = key(False, "store the per-example noise coefficients "
                                        "(<w_{j,r}, xi_i> or rho_{j,r,i}) for every j, r, i")
    store_weights: bool = key(False, "store the initial and final weights W")

    def cross_checks(self):
        if any(e < 0 for e in self.epochs):
            yield "epochs", list(self.epochs), "must be >= 0"
        for name in self.extra:
            if name not in OPT_IN:
                yield "extra", list(self.extra), (f"'{name}' is not a probe set (choose from: "
                                                  f"{', '.join(OPT_IN)})")


# sections whose keys depend on a name: section → (the key naming the row, registry, default)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "data": ("kind", DATA_MODELS, "patch"),
    "model": ("name", NETWORKS, "two_layer_cnn"),
}
FIXED: dict[str, type] = {"train": TrainConfig, "probes": ProbeConfig}
TOP_LEVEL = ("seed", "data", "model", "optimizer", "train", "probes")


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved, validated run."""

    seed: int
    data: Any  # the data model's config dataclass
    model: Any  # the network's config dataclass
    optimizer: dict[str, Any]
    train: TrainConfig
    probes: ProbeConfig

    @property
    def batch_size(self) -> int:
        return self.train.batch_size  # resolved: never None

    @property
    def steps_per_epoch(self) -> int:
        """n/B; an image network takes a last, smaller batch where B does not divide n."""
        return -(-self.data.n // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples): JSON- and YAML-safe, parses back to itself."""
        out = {"seed": self.seed, "optimizer": _plain(self.optimizer)}
        for name in ("data", "model", "train", "probes"):
            out[name] = section_dict(getattr(self, name))
        return {k: out[k] for k in TOP_LEVEL}

    def coordinates(self) -> dict[str, Any]:
        """Every setting that shapes the run's numbers, by its axis name (`axis_name`).

        The run files carry these as scalar coordinates, so that files combine along them.
        """
        return coordinates(self.to_dict())


def coordinates(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved run config's settings (`RunConfig.to_dict`, or a run file's `config`) by
    their axis names: data, model and optimizer keys, batch size, epochs and dtype."""
    out: dict[str, Any] = {"seed": config["seed"]}
    for section in ("data", "model", "optimizer"):
        for k, value in config[section].items():
            if k == "betas":
                out["beta1"], out["beta2"] = value
            elif value is not None:
                out[axis_name(f"{section}.{k}")] = int(value) if isinstance(value, bool) \
                    else value
    for k in ("batch_size", "epochs", "dtype"):
        out[axis_name(f"train.{k}")] = config["train"][k]
    return out


def section_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (lists for tuples)."""
    return _plain(dataclasses.asdict(obj))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def _unknown(key: str, known: list[str], what: str = "") -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    prefix = key[: len(key) - len(name)]
    hint = did_you_mean(name, known, prefix)
    return ConfigError(key, f"unknown key{what} ({hint}known: {', '.join(known)})")


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
        value = as_number(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(key, "must be a finite number", value)
            return float(value)
        raise ConfigError(key, "must be a number", value)
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, "must be a string", value)
    if kind in (tuple[int, ...], tuple[str, ...]):
        inner = kind.__args__[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list of {inner.__name__}s", value)
        return tuple(_coerce(v, inner, key) for v in value)
    raise TypeError(f"no coercion for {kind}")  # a bug in this module, not in the config


def section_class(raw: dict, section: str) -> type:
    """The config dataclass of a section: fixed, or chosen by its `kind` / `name` key."""
    if section in FIXED:
        return FIXED[section]
    name_key, registry, default = VARIANTS[section]
    name = raw.get(name_key, default)
    if name not in registry:
        hint = did_you_mean(name, list(registry))
        raise ConfigError(f"{section}.{name_key}", f"unknown ({hint}choose from: "
                          f"{', '.join(registry)})", name)
    return registry[name].config


def parse_section(raw: Any, section: str) -> Any:
    """One section (data, model, train or probes) validated, every default filled."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(section, "must be a mapping of keys to values", raw)
    cls = section_class(raw, section)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in fields:
            name_key = VARIANTS[section][0] if section in VARIANTS else None
            what = f" for {section} {name_key} '{fields[name_key].default}'" if name_key else ""
            raise _unknown(f"{section}.{k}", list(fields), what)
    values = {}
    for name, f in fields.items():
        k = f"{section}.{name}"
        value = _coerce(raw.get(name, f.default), f.type, k)
        check = f.metadata.get("check")
        if value is not None and check and not isinstance(value, tuple):
            problem = check(value)
            if problem:
                raise ConfigError(k, problem, value)
        values[name] = value
    obj = cls(**values)
    obj = obj.resolve() if hasattr(obj, "resolve") else obj
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
    if external.is_import_path(name):  # anyone's torch.optim.Optimizer, by its import path
        return external.resolve(raw, as_number)
    if name not in OPTIMIZERS:
        hint = did_you_mean(name, list(OPTIMIZERS))
        raise ConfigError("optimizer.name", f"unknown optimizer ({hint}choose from: "
                          f"{', '.join(OPTIMIZERS)})", name)
    defaults = OPTIMIZERS[name].defaults
    for k in raw:
        if k != "name" and k not in defaults:
            if k in HYPERS:
                raise ConfigError(f"optimizer.{k}", f"is not a setting of {name} (its settings: "
                                  f"{', '.join(defaults)})")
            raise _unknown(f"optimizer.{k}", ["name", *defaults])
    out: dict[str, Any] = {"name": name}
    for k, default in defaults.items():
        full = f"optimizer.{k}"
        if k not in raw and default is REQUIRED:
            raise ConfigError(full, f"is missing (required by {name})")
        value = raw.get(k, default)
        kind = HYPERS[k].kind
        if kind == "pair":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ConfigError(full, "must be a pair [beta1, beta2]", value)
            value = tuple(float(_coerce(v, float, full)) for v in value)
        else:
            value = _coerce(value, {"float": float, "bool": bool}[kind], full)
            value = float(value) if kind == "float" else value
        problem = HYPERS[k].check(value)
        if problem:
            raise ConfigError(full, problem, list(value) if kind == "pair" else value)
        out[k] = value
    return out


def _check_combination(run: RunConfig) -> None:
    """What no single section can check: the sections against each other and the registries."""
    net = NETWORKS[run.model.name]
    if run.data.kind not in net.data:
        raise ConfigError("model.name", f"reads {', '.join(net.data)} data, not "
                          f"'{run.data.kind}'", run.model.name)
    if run.train.engine != "auto":
        reason = refusal(ENGINES[run.train.engine], run)
        if reason:
            raise ConfigError("train.engine", f"cannot train this run: {reason}; use 'auto'",
                              run.train.engine)
    else:
        choose(run)  # some engine supports it, or a ConfigError saying why none does
    for name in run.probes.extra:
        reason = PROBE_SETS[name].applies(run)
        if reason:
            raise ConfigError("probes.extra", f"'{name}' cannot be recorded here: {reason}",
                              list(run.probes.extra))
    names = [s.name for s in active(run)]
    if run.probes.hessian_probes and "hessian" not in names:
        raise ConfigError("probes.hessian_probes", "applies to the 'hessian' probe set; add it "
                          "to probes.extra", run.probes.hessian_probes)
    if run.probes.noise_memorization_full and not any(s.per_example for s in active(run)):
        raise ConfigError("probes.noise_memorization_full", "no probe set of this run has "
                          "per-example noise coefficients", True)


def parse_run_config(raw: Any) -> RunConfig:
    """Validate a nested dict (as read from YAML) and fill every default."""
    if not isinstance(raw, dict):
        raise ConfigError("<top level>", "a run config must be a mapping of sections", raw)
    for k in raw:
        if k not in TOP_LEVEL:
            raise _unknown(str(k), list(TOP_LEVEL))
    seed = _coerce(raw.get("seed", 0), int, "seed")
    if seed < 0:
        raise ConfigError("seed", "must be >= 0", seed)
    sections = {name: parse_section(raw.get(name), name) for name in ("data", "model", "train",
                                                                        "probes")}
    optimizer = _parse_optimizer(raw.get("optimizer"))
    data, train = sections["data"], sections["train"]
    batch = data.n if train.batch_size is None else train.batch_size
    ragged = NETWORKS[sections["model"].name].module  # a last, smaller batch, as torch's loader
    if batch > data.n and ragged:
        raise ConfigError("train.batch_size", f"must be <= data.n = {data.n}", batch)
    if data.n % batch and not ragged:
        raise ConfigError("train.batch_size", f"must divide data.n = {data.n}", batch)
    if optimizer_row(optimizer["name"]).full_batch and batch != data.n:
        raise ConfigError("train.batch_size", f"must equal data.n = {data.n}: optimizer 'gd' is "
                          "full-batch; use 'sgd' for mini-batches", batch)
    sections["train"] = dataclasses.replace(train, batch_size=batch)
    if any(e > train.epochs for e in sections["probes"].epochs):
        raise ConfigError("probes.epochs", f"must be <= train.epochs = {train.epochs}",
                          list(sections["probes"].epochs))
    run = RunConfig(seed=seed, optimizer=optimizer, **sections)
    _check_combination(run)
    return run


# --- axis names: how settings are named in grids, run files and summaries --------------------

def all_keys() -> dict[str, set[str]]:
    """Every key name by section, over every registry row."""
    out = {
        "data": {f.name for m in DATA_MODELS.values() for f in dataclasses.fields(m.config)},
        "model": {f.name for m in NETWORKS.values() for f in dataclasses.fields(m.config)},
        "optimizer": {"name", *HYPERS},
    }
    out |= {s: {f.name for f in dataclasses.fields(c)} for s, c in FIXED.items()}
    return out


@functools.cache
def short_names() -> dict[str, str]:
    """Dotted key → its short axis name.

    Short names are the optimizer's hyperparameters (betas as beta1 and beta2) and a few
    train keys; an optimizer key that is also the name of a key in another section (RMSprop's
    `alpha` next to the patch model's `alpha`) keeps its dotted name, `optimizer.alpha`, so
    that no short name means two things.
    """
    out = {"seed": "seed", "optimizer.name": "optimizer", "train.batch_size": "batch_size",
           "train.epochs": "epochs", "optimizer.betas[0]": "beta1",
           "optimizer.betas[1]": "beta2"}
    keys = all_keys()
    elsewhere = set().union(*(v for s, v in keys.items() if s != "optimizer"))
    for h in HYPERS:
        if h != "betas" and h not in elsewhere:
            out[f"optimizer.{h}"] = h
    return out


def axis_name(dotted: str) -> str:
    """A setting's name in grids, run-file coordinates and summary dimensions."""
    return short_names().get(dotted, dotted.replace(".", "_"))


def axis_key(axis: str) -> str:
    """A grid axis's run-config key: a short name's dotted key, or the axis itself."""
    return {short: dotted for dotted, short in short_names().items()}.get(axis, axis)


def dim_name(axis: str) -> str:
    """The axis's dimension name in summary files (dots become '_')."""
    return axis_name(axis_key(axis))


@functools.cache
def _docs() -> dict[str, str]:
    out = {"seed": "seed of the data, the initial weights and the batch order",
           "optimizer": "optimizer (adamgen.optim.OPTIMIZERS)",
           "beta1": "beta1 of the moment estimates", "beta2": "beta2 of the moment estimates"}
    for section, (_, registry, _) in VARIANTS.items():
        for row in registry.values():
            for f in dataclasses.fields(row.config):
                out.setdefault(axis_name(f"{section}.{f.name}"), f.metadata["doc"])
    for h, spec in HYPERS.items():
        out.setdefault(axis_name(f"optimizer.{h}"), spec.doc)
    for section, cls in FIXED.items():
        for f in dataclasses.fields(cls):
            out.setdefault(axis_name(f"{section}.{f.name}"), f.metadata["doc"])
    return out


def key_doc(name: str) -> str:
    """The meaning of a setting, by its axis name (for coordinates' long_name)."""
    return _docs().get(name, name)


# --- YAML: floats such as 1e-5 (YAML 1.1 would read them as strings) -------------------------

class _Loader(yaml.SafeLoader):
    pass


# a number as researchers write it: 5e-5, 1E4 and 1.0e-5 alike (YAML 1.1, which PyYAML and
# Snakemake's config reader follow, reads the first two as text)
NUMBER = re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[0-9][0-9_]*[eE][-+]?[0-9]+
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)

_Loader.add_implicit_resolver("tag:yaml.org,2002:float", NUMBER, list("-+0123456789."))


def as_number(value: Any) -> Any:
    """`value`, or the float it writes where it is text in NUMBER's form ('5e-5')."""
    if isinstance(value, str) and NUMBER.match(value.strip()):
        return float(value.replace("_", ""))
    return value


def numbers(value: Any) -> Any:
    """A loaded config with every text in NUMBER's form read as the number it writes: the one
    rule for every config adamgen reads, whichever YAML reader read it (Snakemake's reads a
    workflow config and its --config values)."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    return as_number(value)


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: keys may override it
            continue
        k = loader.construct_object(key_node, deep=True)
        if k in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{k}' (first on line {seen[k] + 1})",
                key_node.start_mark)
        seen[k] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


# a config of more values than this, aliases expanded, is refused as it is read (an alias bomb)
MAX_CONFIG_VALUES = 1_000_000


def _acyclic(value: Any, source: str) -> None:
    """YAML aliases can make a node contain itself, and nested aliases can make a short file
    stand for a tree of billions of values (every walk over it, a schema check or a digest,
    would never end); nothing in a config may do either. Each node is visited once (by
    identity), its expanded size counted from its children's."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise DataFileError(f"{source}: an alias (*name) refers to a node that contains it")
        open_.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child) for child in children)
        open_.discard(key)
        sizes[key] = total
        return total

    total = size(value)
    if total > MAX_CONFIG_VALUES:
        raise DataFileError(f"{source}: its aliases (*name) expand to {total:,} values, more "
                            f"than the {MAX_CONFIG_VALUES:,} a config may hold (an alias that "
                            "repeats an alias that repeats ...)")


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


def apply_overrides(raw: dict, overrides: list[str], unset: list[str] = ()) -> dict:
    """Apply `section.key=value` strings (values parsed as YAML), then remove the `unset`
    keys, in a copy."""
    out = _plain(raw if raw is not None else {})
    for item in overrides:
        dotted, sep, text = item.partition("=")
        if not sep or not dotted:
            raise ConfigError(item, "an override must look like section.key=value")
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(dotted, f"'{part}' is not a section")
        node[leaf] = load_yaml_text(text, f"--set {item}")
    for dotted in unset:
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(dotted, "--unset: the config does not set this key")
        del node[leaf]
    return out


# top-level keys of a workflow config (workflow/schemas/config.schema.yaml), none of a run's
WORKFLOW_KEYS = ("experiments", "convex", "runs_per_job", "gpu_runs_per_job", "every_run",
                 "claims")


def load_run_config(path: str | Path, overrides: list[str] = (),
                    unset: list[str] = ()) -> RunConfig:
    raw = load_yaml(path)
    found = [k for k in WORKFLOW_KEYS if isinstance(raw, dict) and k in raw]
    if found:
        raise DataFileError(f"'{path}' is a workflow config (it has '{found[0]}'), not one "
                            "run's config: run it with snakemake --configfile "
                            f"{path}, or give a run config (config/runs/*.yaml)")
    return parse_run_config(apply_overrides(raw, list(overrides), list(unset)))


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

    They must share shapes, the network's constants, the optimizer's program and the
    schedule; they may differ in seed, every numeric hyperparameter of the optimizer and the
    keys each data model and network declares PER_RUN (σ_0, σ_p, ...).
    """
    d = run.to_dict()
    data = {k: v for k, v in d["data"].items() if k not in run.data.PER_RUN}
    model = {k: v for k, v in d["model"].items() if k not in run.model.PER_RUN}
    flags = {k: v for k, v in run.optimizer.items() if HYPERS.get(k) and HYPERS[k].structural}
    return (repr(data), repr(model), run.optimizer["name"], repr(flags), repr(d["train"]),
            repr(d["probes"]))


# --- `adamgen keys`: every key with its default and meaning, as YAML that loads back ---------

def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(_plain(value), default_flow_style=True).strip().removesuffix("...") \
        .strip()


def _block(cls: type, indent: str = "  ") -> list[str]:
    return [f"{indent}{f.name}: {_yaml_value(f.default)}  # {f.metadata['doc']}"
            for f in dataclasses.fields(cls)]


def describe_keys() -> str:
    """Every key with its default and meaning, for `adamgen keys`.

    The output is YAML: it loads back to the defaults (the first data model, network and
    optimizer in full; the others' keys follow as comments).
    """
    lines = ["seed: 0  # data, initial weights and batch order follow from it"]
    for section, (name_key, registry, default) in VARIANTS.items():
        lines.append(f"{section}:  # the keys of the {name_key} chosen: "
                     f"{', '.join(registry)}")
        lines += _block(registry[default].config)
        for name, row in registry.items():
            if name != default:
                lines.append(f"  # {name_key}: {name} — {row.doc}. Keys: " + ", ".join(
                    f"{f.name}={_yaml_value(f.default)}" for f in dataclasses.fields(row.config)
                    if f.name != name_key))
    lines.append("optimizer:  # name plus that optimizer's settings")
    first = next(iter(OPTIMIZERS))
    lines.append(f"  name: {first}  # one of: {', '.join(OPTIMIZERS)}")
    for k, v in OPTIMIZERS[first].defaults.items():
        shown = "null" if v is REQUIRED else _yaml_value(v)
        lines.append(f"  {k}: {shown}  # {'(required) ' if v is REQUIRED else ''}"
                     f"{HYPERS[k].doc}")
    for name, spec in OPTIMIZERS.items():
        settings = ", ".join(
            f"{k}={'(required)' if v is REQUIRED else _yaml_value(v)}"
            for k, v in spec.defaults.items())
        lines.append(f"  # {name}: {spec.doc}. Settings: {settings}")
    for section, cls in FIXED.items():
        lines.append(f"{section}:")
        lines += _block(cls)
    return "\n".join(lines)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def describe_keys_markdown() -> str:
    """The same registries as `describe_keys`, as the Markdown tables of config/README.md
    (`adamgen keys --markdown`; tests/test_config.py checks that the README holds them)."""
    out = ["| key | default | meaning |", "| --- | --- | --- |",
           "| `seed` | 0 | data, initial weights and batch order follow from it |"]
    for section, cls in FIXED.items():
        out += [f"| `{section}.{f.name}` | `{_yaml_value(f.default)}` | "
                f"{_cell(f.metadata['doc'])} |" for f in dataclasses.fields(cls)]
    for section, (name_key, registry, _) in VARIANTS.items():
        out += ["", f"`{section}.{name_key}` picks the {section} section's keys:", "",
                f"| `{name_key}` | what | keys (default) |", "| --- | --- | --- |"]
        for name, row in registry.items():
            keys = ", ".join(f"`{f.name}` ({_yaml_value(f.default)})"
                             for f in dataclasses.fields(row.config) if f.name != name_key)
            out.append(f"| `{name}` | {_cell(row.doc)} | {keys} |")
    out += ["", "`optimizer.name` picks the optimizer; each accepts only its own settings:", "",
            "| `name` | update | settings (default) |", "| --- | --- | --- |"]
    for name, spec in OPTIMIZERS.items():
        settings = ", ".join(f"`{k}` ({'required' if v is REQUIRED else _yaml_value(v)})"
                             for k, v in spec.defaults.items())
        out.append(f"| `{name}` | {_cell(spec.doc)} | {settings} |")
    out += ["", "| optimizer setting | meaning |", "| --- | --- |"]
    out += [f"| `{k}` | {_cell(h.doc)} |" for k, h in HYPERS.items()]
    out += ["", "| `train.engine` | what |", "| --- | --- |", "| `auto` | the first of the "
            "engines below that can train the run |"]
    out += [f"| `{name}` | {_cell(e.doc)} |" for name, e in ENGINES.items()]
    out += ["", "| probe set | what (a data model records its own; `probes.extra` adds the "
            "opt-in ones) |", "| --- | --- |"]
    out += [f"| `{name}` | {_cell(ps.doc)}{' (opt-in)' if name in OPT_IN else ''} |"
            for name, ps in PROBE_SETS.items()]
    return "\n".join(out)
