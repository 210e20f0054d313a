"""Experiments: base settings plus grid axes, expanded into runs with stable, readable paths.

An experiment in the workflow config reads

    zou_e1:
      description: "..."
      base: {data: {...}, model: {...}, train: {...}}     # a run-config fragment
      grid: {seed: [0, 1, 2]}                              # axes shared by every optimizer
      optimizers:                                          # the optimizer axis
        adam: {optimizer: {lr: 5.0e-5}, grid: {weight_decay: [1.0e-5, 0.05]}}
        gd: {optimizer: {lr: 0.02}}
      when:                                                # conditional overrides, in order
        - {match: {batch_size: 2}, set: {train: {epochs: 1000}}}

A grid point's run config is `base`, then its optimizer's fragment, then every matching `when`
override, then the axis values, then the config's top-level `every_run` fragment (e.g.
`{train: {device: cuda}}` moves a whole config onto a GPU). Axes are the short names of
`adamgen.config.short_names` (seed, batch_size, epochs, lr, weight_decay, beta1, ...) or any
dotted run-config key (`data.sigma_p`, `model.sigma_0`, ...). An optimizer's own axis
replaces a shared axis of the same name. Every run is validated by `adamgen.config` before
any job starts.

Run files are content-addressed: `results/runs/<optimizer>/B..-lr..-wd..-T..-seed..-<hash>.nc`,
where the hash covers the whole resolved run config except the device. A run therefore keeps
its path until one of its own settings changes, and experiments (or configs) that contain the
same run share its file.
"""

import copy
import hashlib
import itertools
import json
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    RunConfig,
    all_keys,
    axis_key,
    load_yaml,
    lockstep_key,
    parse_run_config,
    probe_epochs,
    short_names,
)
from .data import DATA_MODELS
from .engines import choose
from .errors import ConfigError
from .identity import digest, run_hash, run_id
from .optim import OPTIMIZERS
from .settings import did_you_mean

RESULTS = "results"
# names a config may not take: results/<name>/ would be where the shared files live
RESERVED = ("runs", "data", "logs", "benchmarks")


def outputs(config: dict) -> str:
    """Where a config's summaries, tables, figures and claims go: results/<name>/ for a
    config with a `name`, results/ for one without (the default config)."""
    name = config.get("name") or ""
    if not name:
        return RESULTS
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError("name", "must be lower-case letters, digits, '_' or '-', starting "
                          "with a letter", name)
    if name in RESERVED:
        raise ConfigError("name", f"is where shared files live (results/{name}); choose "
                          "another", name)
    return f"{RESULTS}/{name}"


def run_path(run: RunConfig) -> str:
    return f"{RESULTS}/runs/{run_id(run)}.nc"


def data_path(run: RunConfig) -> str | None:
    """The run's data file; None where the training job reads its images itself."""
    d = run.data
    if not DATA_MODELS[d.kind].stored:
        return None
    return f"{RESULTS}/data/{d.kind}-{d.label()}-{digest(vars(d), 8)}/seed{run.seed}.nc"


def memory_mb(run: RunConfig, runs_in_job: int = 1, datasets: int = 1) -> int:
    """The scheduler's memory request for a training job: its engine's host estimate."""
    engine, _ = choose(run)
    host = engine.memory(run, runs_in_job, datasets, len(probe_epochs(run))).host
    return int(host.total / 2**20) + 1


def sources(runs: list[RunConfig]) -> list[str]:
    """The external files a set of runs reads (their data models' `sources`)."""
    out: dict[str, None] = {}
    for run in runs:
        read = DATA_MODELS[run.data.kind].sources
        out |= dict.fromkeys(read(run.data) if read else [])
    return list(out)


@dataclass(frozen=True)
class Run:
    config: RunConfig
    coords: dict[str, Any] = field(hash=False)  # axis → value

    @property
    def id(self) -> str:
        return run_id(self.config)

    @property
    def path(self) -> str:
        return run_path(self.config)

    @property
    def data_path(self) -> str | None:
        return data_path(self.config)


@dataclass
class Experiment:
    name: str
    description: str
    axes: dict[str, list]  # axis → its values (union over optimizers), seed last
    runs: list[Run]
    out: str = RESULTS  # the config's outputs (`outputs`)

    @property
    def summary_path(self) -> str:
        return f"{self.out}/{self.name}/summary.nc"

    def manifest(self) -> dict:
        """What the aggregation needs to know, as plain JSON-able data."""
        return {
            "name": self.name,
            "description": self.description,
            "axes": self.axes,
            "runs": [{"path": r.path, "coords": r.coords, "hash": run_hash(r.config)}
                     for r in self.runs],
        }


def merge(base: dict, changes: dict) -> dict:
    """A copy of `base` with `changes` laid over it, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set(raw: dict, key: str, value: Any) -> None:
    """Set a dotted run-config key (with `betas[0]` / `betas[1]` for one beta) in a raw dict."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if leaf.startswith("betas["):
        betas = list(node.get("betas") or OPTIMIZERS[raw["optimizer"]["name"]].defaults["betas"])
        betas[int(leaf[6])] = value
        node["betas"] = betas
    else:
        node[leaf] = value


def _check_axis(where: str, axis: str) -> None:
    """An axis is a short name or a dotted key of a section (any data model's or network's)."""
    if axis in short_names().values():
        return
    section, _, leaf = axis.partition(".")
    keys = all_keys()
    if section in keys and leaf in keys[section]:
        return
    shorts = [s for s in short_names().values() if s != "optimizer"]
    hint = did_you_mean(axis, shorts)
    raise ConfigError(where, f"is not a grid axis ({hint}short names: {', '.join(shorts)}; or "
                      "a dotted run-config key such as data.sigma_p or model.sigma_0)")


def _where(experiment: str, coords: dict) -> str:
    point = ", ".join(f"{k}={v}" for k, v in coords.items())
    return f"experiment '{experiment}' at ({point})"


def _sorted_values(values: list) -> list:
    """Unique values in order: numbers ascending, others as first seen; None last."""
    unique = [json.loads(v) for v in dict.fromkeys(json.dumps(v) for v in values)]
    present = [v for v in unique if v is not None]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        present = sorted(present)
    return present + [None] * (len(present) < len(unique))


def _dotted(fragment: dict, prefix: str = "") -> list[str]:
    """The dotted keys a run-config fragment sets."""
    out = []
    for key, value in fragment.items():
        if isinstance(value, dict) and value:
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def _check_every_run(name: str, every_run: dict, axes: set[str]) -> None:
    """`every_run` may change how runs are carried out, never what tells grid points apart:
    the optimizer, the seed, an axis of the experiment."""
    identity = {"optimizer.name": "the optimizer", "seed": "the seed"}
    identity |= {axis_key(a).split("[")[0]: f"the grid axis '{a}'" for a in axes
                 if a != "optimizer"}  # beta1, beta2: both in optimizer.betas
    for dotted in _dotted(every_run):
        if dotted in identity:
            raise ConfigError(f"every_run.{dotted}", f"sets {identity[dotted]}, which tells the "
                              f"grid points of experiment '{name}' apart: two of them would "
                              "become one run (set it in the experiment instead)")


def expand(name: str, spec: dict, every_run: dict | None = None) -> Experiment:
    """All runs of one experiment, validated. Errors name the experiment and the grid point.

    `every_run` (the config's top-level section of that name) is set on every run last; it may
    not set what tells grid points apart (`_check_every_run`)."""
    base = spec.get("base") or {}
    shared = spec.get("grid") or {}
    rules = spec.get("when") or []
    optimizers = spec.get("optimizers") or {}
    if not optimizers:
        raise ConfigError(f"experiments.{name}.optimizers", "must name at least one optimizer")
    runs, axis_values = [], {"optimizer": list(optimizers)}  # axes in order of appearance
    for opt_name in optimizers:
        if opt_name not in OPTIMIZERS:
            hint = did_you_mean(opt_name, list(OPTIMIZERS))
            raise ConfigError(f"experiments.{name}.optimizers.{opt_name}",
                              f"is not an optimizer ({hint}choose from: "
                              f"{', '.join(OPTIMIZERS)})")
    every_axis = {"optimizer", *shared}  # a `when` may match any optimizer's axis
    for opt_spec in optimizers.values():
        every_axis |= set((opt_spec or {}).get("grid") or {})
    _check_every_run(name, every_run or {}, every_axis)
    for opt_name, opt_spec in optimizers.items():
        opt_spec = dict(opt_spec or {})
        own = opt_spec.pop("grid", None) or {}
        axes = {**shared, **own}
        for axis, values in axes.items():
            if axis == "optimizer":
                raise ConfigError(f"experiments.{name}.grid.optimizer",
                                  "the optimizer axis is the 'optimizers' section")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"experiments.{name}.grid.{axis}", "must be a non-empty list",
                                  values)
            _check_axis(f"experiments.{name}.grid.{axis}", axis)
            axis_values.setdefault(axis, [])
        fragment = merge(merge(base, opt_spec), {"optimizer": {"name": opt_name}})
        for combo in itertools.product(*axes.values()):
            coords = {"optimizer": opt_name, **dict(zip(axes, combo, strict=True))}
            raw = fragment
            for i, rule in enumerate(rules):
                raw = _apply_rule(raw, rule, coords, every_axis,
                                  f"experiments.{name}.when[{i}]")
            raw = copy.deepcopy(raw)
            for axis, value in coords.items():
                _set(raw, axis_key(axis), value)
            raw = merge(raw, every_run or {})
            try:
                config = parse_run_config(raw)
            except ConfigError as err:
                raise ConfigError(err.key, f"{err.problem} [{_where(name, coords)}]",
                                  err.value) from None
            runs.append(Run(config=config, coords=coords))
    _check_unique(name, runs)
    order = [a for a in axis_values if a != "seed"] + (["seed"] if "seed" in axis_values else [])
    # every run has a coordinate on every axis: its own value of that key, or None where its
    # optimizer has no such setting (gd has no beta1)
    runs = [Run(config=r.config, coords={a: coordinate(r.config, a) for a in order})
            for r in runs]
    axes = {a: _sorted_values([r.coords[a] for r in runs]) for a in order}
    return Experiment(name=name, description=spec.get("description", ""), axes=axes, runs=runs)


def coordinate(run: RunConfig, axis: str) -> Any:
    """The run's value of an axis's key; None where the key does not apply to the run."""
    node: Any = run.to_dict()
    for part in axis_key(axis).split("."):
        index = None
        if part.endswith("]"):
            part, index = part[:-3], int(part[-2])
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part] if index is None else node[part][index]
    return node


def _apply_rule(raw: dict, rule: dict, coords: dict, axes: set, where: str) -> dict:
    """A `when` rule applied to one grid point: it matches where every one of its axes has
    the given value (an axis the point's optimizer does not have never matches)."""
    match, changes = rule.get("match") or {}, rule.get("set") or {}
    for key in match:
        if key not in axes:
            raise ConfigError(f"{where}.match.{key}", "is not a grid axis of this experiment")
    if not all(key in coords and coords[key] == v for key, v in match.items()):
        return raw
    for axis in coords:
        section, _, leaf = axis_key(axis).partition(".")
        leaf = leaf.split("[")[0]
        if section in changes and (not leaf or leaf in (changes[section] or {})):
            raise ConfigError(f"{where}.set.{section}.{leaf}", f"sets the grid axis '{axis}'")
    return merge(raw, changes)


def _check_unique(name: str, runs: list[Run]) -> None:
    seen: dict[str, Run] = {}
    for run in runs:
        if run.id in seen:
            raise ConfigError(f"experiments.{name}", f"grid points {seen[run.id].coords} and "
                              f"{run.coords} give the same run")
        seen[run.id] = run


def plan(config: dict) -> dict[str, Experiment]:
    """Every experiment of a workflow config, expanded and validated."""
    experiments = config.get("experiments") or {}
    if not experiments:
        raise ConfigError("experiments", "must define at least one experiment")
    every_run, out = config.get("every_run") or {}, outputs(config)
    planned = {name: expand(name, spec or {}, every_run) for name, spec in experiments.items()}
    for experiment in planned.values():
        experiment.out = out
    return planned


def available(experiments: dict[str, Experiment]) -> tuple[dict[str, Experiment],
                                                          dict[str, str]]:
    """The experiments whose data can be read here, and why each other one cannot (its data
    model's `missing`: CIFAR-10 files not found). Files that exist but are broken raise."""
    kept, reasons, seen = {}, {}, {}
    for name, experiment in experiments.items():
        for run in experiment.runs:
            check = DATA_MODELS[run.config.data.kind].missing
            if check is None:
                continue
            if run.config.data not in seen:
                seen[run.config.data] = check(run.config.data)
            if seen[run.config.data]:
                reasons[name] = seen[run.config.data]
                break
        else:
            kept[name] = experiment
    return kept, reasons


@dataclass(frozen=True)
class LockstepGroup:
    """Runs that one job trains: one lockstep group (see `lockstep_groups`), or several small
    ones in turn (`training_jobs`), `chunks` giving their sizes in the order of `runs`."""

    name: str
    runs: tuple[Run, ...]
    chunks: tuple[int, ...] = ()  # () : all of `runs` in one lockstep group

    @property
    def chunk_sizes(self) -> list[int]:
        return list(self.chunks) or [len(self.runs)]

    def parts(self) -> list[tuple[Run, ...]]:
        """The lockstep groups the job trains, one after the other."""
        ends = list(itertools.accumulate(self.chunk_sizes))
        return [self.runs[end - size:end] for size, end in zip(self.chunk_sizes, ends,
                                                                strict=True)]

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.runs]

    @property
    def data_paths(self) -> list[str]:
        """The distinct data files its runs read (a job may span seeds and data settings)."""
        return list(dict.fromkeys(r.data_path for r in self.runs if r.data_path))

    @property
    def sources(self) -> list[str]:
        """External files its runs read (CIFAR-10's batches)."""
        return sources([r.config for r in self.runs])

    def memory_mb(self) -> int:
        """Its largest lockstep group's, with every data set of the job (a job reads them all
        once)."""
        datasets = len({(r.config.seed, r.config.data) for r in self.runs})
        return max(memory_mb(part[0].config, len(part), datasets) for part in self.parts())

    @property
    def priority(self) -> int:
        """The job's Snakemake priority: its run-steps' order of magnitude (tenths of a
        decade). Among ready jobs, those with the most run-steps start first, so that no long
        job is left to run alone at the end of the workflow. Run-steps are a proxy for time:
        a step's cost also grows with the batch size, and Padam's power makes its step 3x
        (float32, p = k/16) to 13x (any other p) Adam's at B = 2 (benchmarks/bench_padam.py;
        benchmarks/bench_engine.py --estimate measures each kind)."""
        steps = sum(r.config.train.epochs * r.config.steps_per_epoch for r in self.runs)
        return int(10 * math.log10(max(1, steps)))

    @property
    def threads(self) -> int:
        """As many as its engine uses well (the fast engine: one per run; the torch engine's
        small tensor programs gain little from a second thread, so its jobs take one and
        Snakemake runs several side by side)."""
        return max(choose(part[0].config)[0].threads(len(part)) for part in self.parts())


def lockstep_groups(experiments: dict[str, Experiment], runs_per_job: int,
                    gpu_runs_per_job: int | str = "auto",
                    gpu_memory_gb: float = 40.0) -> list[LockstepGroup]:
    """Every run of every experiment, packed into jobs of up to `runs_per_job` runs.

    Runs go together when they can share one tensor program (`config.lockstep_key`: same
    shapes, network constants, optimizer, batch size, schedule, device); they may differ in
    seed, in their data's per-run settings (σ_p, α, SNR, ...) and so read several data files,
    one per data set. Within such a set, runs are ordered by path and cut into chunks of the
    size their engine asks for (`Engine.group_size`): `runs_per_job`, or where an engine
    trains runs on a GPU in groups (the torch engine), `gpu_runs_per_job`, which 'auto' makes
    as large as its device-memory estimate fits in `gpu_memory_gb`. The grouping depends on
    the config alone, so every process (a cluster job too) derives the same groups; the
    workflow marks a group's run files as updatable and a job only trains the runs whose
    files are missing, so regrouping never redoes a finished run.
    """
    unique = {r.path: r for e in experiments.values() for r in e.runs}
    sets: dict[tuple, list[Run]] = {}
    for run in unique.values():
        sets.setdefault(lockstep_key(run.config), []).append(run)
    groups = []
    for key, members in sets.items():
        members.sort(key=lambda r: r.path)
        tag = digest(list(map(str, key)), 8)
        first = members[0].config
        size = choose(first)[0].group_size(first, runs_per_job, gpu_runs_per_job,
                                           gpu_memory_gb)
        for k in range(0, len(members), size):
            groups.append(LockstepGroup(f"{tag}_{k // size}", tuple(members[k:k + size])))
    return groups


def training_jobs(experiments: dict[str, Experiment], runs_per_job: int,
                  gpu_runs_per_job: int | str = "auto",
                  gpu_memory_gb: float = 40.0) -> list[LockstepGroup]:
    """The workflow's training jobs: the lockstep groups (`lockstep_groups`), where those of
    small lockstep programs go several to a job, trained one after the other.

    A program (the runs sharing a `lockstep_key`) with at most `runs_per_job` runs is small
    unless its engine sends it to a device in groups; small programs of one engine and data
    model are taken in the order of their data files and packed into jobs of up to
    `runs_per_job` runs, each program whole, with its lockstep groups as they are. A job's
    numbers are those of its groups trained apart; what it saves is a job's start-up, and
    reading a data file its groups share, once for each group (about 3 s a job on the paper
    config). A group that is a job of its own keeps its name.
    """
    groups = lockstep_groups(experiments, runs_per_job, gpu_runs_per_job, gpu_memory_gb)
    programs: dict[tuple, list[LockstepGroup]] = {}
    for group in groups:
        programs.setdefault(lockstep_key(group.runs[0].config), []).append(group)
    jobs, small = [], []
    for members in programs.values():
        first = members[0].runs[0].config
        runs = sum(len(g.runs) for g in members)
        if runs > runs_per_job or choose(first)[0].device_groups(first):
            jobs += members
        else:
            small.append(members)
    def kind(members):
        first = members[0].runs[0].config
        return choose(first)[0].name, first.data.kind

    small.sort(key=lambda members: (kind(members), members[0].data_paths[:1],
                                    members[0].paths[0]))
    bundle: list[LockstepGroup] = []
    for members in small + [None]:
        if bundle and (members is None or kind(members) != kind(bundle)
                       or sum(len(g.runs) for g in bundle + members) > runs_per_job):
            jobs.append(bundle[0] if len(bundle) == 1 else LockstepGroup(
                f"{bundle[0].name}_{len(bundle)}g",
                tuple(r for g in bundle for r in g.runs), tuple(len(g.runs) for g in bundle)))
            bundle = []
        bundle += members or []
    return jobs


def job_threads(group: LockstepGroup, jobs: int, cores: int | None) -> int:
    """Threads of `group`'s job among `jobs` training jobs on `cores` local cores (None: on a
    cluster, where each job has a node of its own): what its engine uses well, but no more
    than the cores shared out among the jobs, at least one.

    With at least as many jobs as cores each job takes one thread and Snakemake runs jobs side
    by side: measured on 2 cores, two 16-run fast-engine jobs (Adam, B = 2) train in 23.6 s
    side by side against 24.6 s one after the other with 2 threads each, and a job's
    single-threaded phases (start-up, reading data, writing run files: about 3 s a job on the
    paper config) no longer leave a core idle.
    """
    if cores is None:
        return group.threads
    return max(1, min(group.threads, cores // max(1, jobs)))


# where the workflow's main process leaves its plan for its jobs (`planned_runs`)
PLAN_CACHE = Path(".snakemake") / "adamgen"


def _code_digest() -> str:
    """A digest of adamgen's source: a saved plan is only valid for the code that made it."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _plan_file(config: dict) -> Path:
    key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return PLAN_CACHE / f"plan-{key[:16]}-{_code_digest()}.pickle"


def save_plan(config: dict, experiments: dict[str, Experiment]) -> None:
    """The plan of `config`, for its jobs: planning the paper config takes about a second, and
    every training job would plan it again to find its runs."""
    path = _plan_file(config)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(pickle.dumps(experiments))
    tmp.replace(path)


def planned_runs(config: dict) -> dict[str, Run]:
    """Every run of `config` by its path: from the plan its workflow saved (`save_plan`, made
    by the same code from the same config), else planned here."""
    try:
        experiments = pickle.loads(_plan_file(config).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        experiments = plan(config)
    return {r.path: r for e in experiments.values() for r in e.runs}


def any_device_groups(experiments: dict[str, Experiment]) -> bool:
    """Whether some run goes to a device in a group sized by its memory."""
    return any(choose(r.config)[0].device_groups(r.config)
               for e in experiments.values() for r in e.runs)


def asks_for_cuda(experiments: dict[str, Experiment]) -> int:
    """How many runs ask for a CUDA device (train.device: cuda or cuda:N)."""
    return sum(r.config.train.device != "cpu" for e in experiments.values() for r in e.runs)


@dataclass(frozen=True)
class DataGroup:
    """Data sets that one job draws (see `data_groups`)."""

    name: str
    runs: tuple[RunConfig, ...]  # one run config standing for each data set

    @property
    def paths(self) -> list[str]:
        return [data_path(r) for r in self.runs]

    def specs(self) -> list[dict]:
        """What each data set depends on: its data settings and seed."""
        return [{"seed": r.seed, "data": r.to_dict()["data"]} for r in self.runs]


def data_groups(datasets: dict[str, RunConfig], per_job: int) -> list[DataGroup]:
    """Data sets packed into jobs of up to `per_job`: drawing one takes milliseconds, starting
    a job a second. Ordered by path, so the packing follows from the config alone; the
    workflow marks the files updatable and a job writes only the missing ones, so a regrouped
    data set is never rewritten."""
    paths = sorted(datasets)
    return [DataGroup(f"{k // per_job}", tuple(datasets[p] for p in paths[k:k + per_job]))
            for k in range(0, len(paths), per_job)]


def check_config_file(path: str) -> None:
    """A workflow config file read strictly: duplicate keys and self-referencing aliases are
    errors (Snakemake's own reader keeps the last of two equal keys without a word)."""
    load_yaml(path)


def explain_schema_error(err: Exception) -> str:
    """One line naming the offending key, from Snakemake's schema-validation error."""
    import jsonschema

    inner = err
    while inner is not None and not isinstance(inner, jsonschema.ValidationError):
        inner = inner.__cause__ or inner.__context__
    if inner is None:
        return str(err)
    path = ".".join(str(p) for p in inner.absolute_path) or "<top level>"
    return f"invalid config: config key '{path}': {inner.message}"


@dataclass
class ConvexExperiment:
    """The convex counterpart (E3, `adamgen.convex`): one linear-model fit per seed.

    Its data sets are the CNN runs' data sets (same data settings and seed → same file).
    """

    name: str
    description: str
    settings: dict  # weight_decay, steps, optimizers (as in adamgen.convex.ConvexSettings)
    seeds: list[int]
    data_runs: dict[int, RunConfig]  # seed → a run config that names the data set
    out: str = RESULTS  # the config's outputs (`outputs`)

    def fit_path(self, seed: int) -> str:
        return f"{self.out}/{self.name}/convex/seed{seed}.nc"

    @property
    def summary_path(self) -> str:
        return f"{self.out}/{self.name}/summary.nc"


def plan_convex(config: dict) -> dict[str, ConvexExperiment]:
    """Every entry of the config's `convex` section, validated."""
    out = {}
    for name, spec in (config.get("convex") or {}).items():
        key = f"convex.{name}"
        if name in (config.get("experiments") or {}):
            raise ConfigError(key, f"has the name of an experiment; both would write "
                              f"{outputs(config)}/{name}/summary.nc")
        if not math.isfinite(spec["weight_decay"]):
            raise ConfigError(f"{key}.weight_decay", "must be a finite number",
                              spec["weight_decay"])
        for opt, hyper in spec["optimizers"].items():
            if opt not in OPTIMIZERS:
                raise ConfigError(f"{key}.optimizers.{opt}",
                                  f"is not an optimizer (known: {', '.join(OPTIMIZERS)})")
            unknown = set(hyper or {}) - set(OPTIMIZERS[opt].defaults) - {"weight_decay"}
            if unknown:
                raise ConfigError(f"{key}.optimizers.{opt}.{sorted(unknown)[0]}",
                                  f"is not a setting of {opt}")
        data_runs = {}
        for seed in spec["seeds"]:
            try:
                data_runs[seed] = parse_run_config(
                    {"seed": seed, "data": spec["data"],
                     "optimizer": {"name": "gd", "lr": 1.0}})
            except ConfigError as err:
                raise ConfigError(f"{key}.{err.key}", err.problem, err.value) from None
        settings = {"weight_decay": spec["weight_decay"], "steps": spec["steps"],
                    "optimizers": spec["optimizers"]}
        out[name] = ConvexExperiment(name, spec.get("description", ""), settings,
                                     list(spec["seeds"]), data_runs, outputs(config))
    return out
