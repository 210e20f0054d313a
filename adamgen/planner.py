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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import battery
from .config import (
    TOP_LEVEL,
    RunConfig,
    all_keys,
    axis_key,
    load_yaml,
    lockstep_key,
    numbers,
    parse_run_config,
    probe_epochs,
    short_names,
)
from .data import DATA_MODELS
from .engines import choose
from .errors import ConfigError, DataFileError
from .identity import digest, run_hash, run_id
from .optim import OPTIMIZERS, external, optimizer_row
from .probes import values_per_probe
from .settings import did_you_mean

RESULTS = "results"
# names a config may not take: results/<name>/ would be where the shared files live
RESERVED = ("runs", "data", "logs", "benchmarks")


def outputs(config: dict) -> str:
    """Where a config's summaries, tables, figures and claims go: results/<name>/ for a
    config with a `name`, results/ for one without (the default config)."""
    if "name" not in config or config["name"] is None:
        return RESULTS
    name = config["name"]
    if name == "":
        raise ConfigError("name", "is empty: leave the key out for a config that writes under "
                          "results/, or give a name", name)
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError("name", "must be lower-case letters, digits, '_' or '-', starting "
                          "with a letter", name)
    if name in RESERVED:
        raise ConfigError("name", f"is where shared files live (results/{name}); choose "
                          "another", name)
    clash = set(config.get("experiments") or {}) | set(config.get("convex") or {})
    if name in clash:
        raise ConfigError("name", f"is also an experiment of the config, whose files would "
                          f"go to results/{name}/{name}/; choose another", name)
    return f"{RESULTS}/{name}"


def run_path(run: RunConfig) -> str:
    return f"{RESULTS}/runs/{run_id(run)}.nc"


def data_path(run: RunConfig) -> str | None:
    """The run's data file; None where the training job reads its images itself."""
    d = run.data
    if not DATA_MODELS[d.kind].stored:
        return None
    return f"{RESULTS}/data/{d.kind}-{d.label()}-{digest(vars(d), 8)}/seed{run.seed}.nc"


# a job's runtime request (Slurm's time limit): its estimated time on one core of the
# development machine (`Engine.seconds`) times SAFETY (slower cores, a loaded node, an
# estimate that is a model), and never less than MIN_RUNTIME minutes
SAFETY = 4
MIN_RUNTIME = 10
JOB_START_S = 10  # a job's start-up, data files and run files, with room (the runtime request)
# ... and as measured on the development machine (paper config): what `adamgen status` adds
# for each job still waiting to the estimate of its training
JOB_OVERHEAD_S = 3


def runtime_minutes(seconds: float) -> int:
    """The runtime request of a job estimated at `seconds` (see SAFETY)."""
    return max(MIN_RUNTIME, math.ceil(SAFETY * (seconds + JOB_START_S) / 60))


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

    def memory_mb(self) -> int:
        """Its summary's job: every run's values (8 bytes each) about three times over (read,
        stacked, written) and the interpreter."""
        values = sum(len(probe_epochs(r.config)) * values_per_probe(r.config)
                     + (2 * r.config.model.parameters(r.config.data)
                        if r.config.probes.store_weights else 0) for r in self.runs)
        return int(3 * 8 * values / 2**20) + 500

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
        betas = list(node.get("betas")
                     or optimizer_row(raw["optimizer"]["name"]).defaults["betas"])
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
        if opt_name not in OPTIMIZERS and not external.is_import_path(opt_name):
            hint = did_you_mean(opt_name, list(OPTIMIZERS))
            raise ConfigError(f"experiments.{name}.optimizers.{opt_name}",
                              f"is not an optimizer ({hint}choose from: "
                              f"{', '.join(OPTIMIZERS)}; or a torch.optim.Optimizer by its "
                              "import path, e.g. torch.optim.NAdam)")
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


# the most runs a config may plan unless it says otherwise (`max_runs`): planning takes about
# a millisecond and a few kB a run, so 10^7 runs would take hours and tens of GB
MAX_RUNS = 100_000


def grid_size(spec: dict) -> int:
    """The runs of one experiment before expanding it: per optimizer, the product of its axes'
    lengths (its own axes replace the shared ones of the same name)."""
    shared = spec.get("grid") or {}
    total = 0
    for opt_spec in (spec.get("optimizers") or {}).values():
        own = (opt_spec or {}).get("grid") or {} if isinstance(opt_spec, dict) else {}
        axes = {**shared, **own}
        total += math.prod(len(v) if isinstance(v, list) else 1 for v in axes.values())
    return total


def _check_size(config: dict, experiments: dict) -> None:
    limit = config.get("max_runs", MAX_RUNS)
    sizes = {name: grid_size(spec or {}) for name, spec in experiments.items()}
    total = sum(sizes.values())
    if total > limit:
        largest = max(sizes, key=sizes.get)
        raise ConfigError("max_runs", f"the config's grids hold {total:,} runs ('{largest}' "
                          f"{sizes[largest]:,}), more than max_runs = {limit:,}; planning "
                          "takes about a millisecond a run: raise max_runs to plan them all",
                          limit)


def plan(config: dict) -> dict[str, Experiment]:
    """Every experiment of a workflow config, expanded and validated: its `experiments` and
    its cards' batteries (adamgen.battery)."""
    experiments = {**(config.get("experiments") or {}), **battery.experiments(config)}
    if not experiments:
        raise ConfigError("experiments", "must define at least one experiment (or a card)")
    _check_size(config, experiments)
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


def by_reason(unavailable: dict[str, str]) -> dict[str, list[str]]:
    """The experiments not planned, grouped by why (one line each in the workflow's log)."""
    out: dict[str, list[str]] = {}
    for name, reason in unavailable.items():
        out.setdefault(reason, []).append(name)
    return out


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

    def seconds(self, only: set[str] | None = None) -> float:
        """Its estimated training time (`Engine.seconds`), the groups one after the other;
        with `only` (run paths), that of those runs alone, each group with just them."""
        total = 0.0
        for part in self.parts():
            count = len(part) if only is None else sum(r.path in only for r in part)
            if count:
                run = part[0].config
                total += choose(run)[0].seconds(run, count, len(probe_epochs(run)))
        return total

    def runtime(self) -> int:
        """Its runtime request in minutes (`runtime_minutes`)."""
        return runtime_minutes(self.seconds())

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


def buckets(items: list, capacity: int, key, weight=lambda item: 1) -> list[tuple[str, list]]:
    """`items` cut into buckets of at most `capacity` (total `weight`), named by bits of a hash
    of each item's `key`: the whole set is one bucket ('') unless it weighs more than
    `capacity`, and a bucket that does is split in two by the next bit ('0', '1', '01', ...).

    Whether an item goes with another depends on their hashes alone, not on what else the
    config holds: adding an item changes the bucket it falls into (which may split) and no
    other, so extending a grid never changes an existing job (a job's runs, its name). Within a
    bucket, items keep their order. Buckets are about 70 % full on average."""
    digests = {id(item): int(hashlib.sha1(str(key(item)).encode()).hexdigest(), 16)
               for item in items}

    def split(members: list, depth: int) -> list[tuple[str, list]]:
        if sum(map(weight, members)) <= capacity or len(members) == 1 or depth >= 160:
            return [("", members)]
        halves = ([], [])
        for item in members:
            halves[(digests[id(item)] >> depth) & 1].append(item)
        return [(str(bit) + name, part) for bit in (0, 1) if halves[bit]
                for name, part in split(halves[bit], depth + 1)]

    return split(list(items), 0) if items else []


def lockstep_groups(experiments: dict[str, Experiment], runs_per_job: int,
                    gpu_runs_per_job: int | str = "auto",
                    gpu_memory_gb: float = 40.0) -> list[LockstepGroup]:
    """Every run of every experiment, packed into jobs of up to `runs_per_job` runs.

    Runs go together when they can share one tensor program (`config.lockstep_key`: same
    shapes, network constants, optimizer, batch size, schedule, device); they may differ in
    seed, in their data's per-run settings (σ_p, α, SNR, ...) and so read several data files,
    one per data set. Such a set is cut into groups of at most the size its engine asks for
    (`Engine.group_size`): `runs_per_job`, or where an engine trains runs on a GPU in groups
    (the torch engine), `gpu_runs_per_job`, which 'auto' makes as large as its device-memory
    estimate fits in `gpu_memory_gb`. The cut is `buckets` by run path, so that adding runs
    to a grid leaves every group they do not fall into as it was; within a group, runs are in
    path order. The grouping depends on the config alone, so every process (a cluster job
    too) derives the same groups; a job only trains the runs whose files are missing.
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
        for bits, part in buckets(members, size, key=lambda r: r.path):
            groups.append(LockstepGroup(f"{tag}_b{bits}", tuple(part)))
    return groups


def training_jobs(experiments: dict[str, Experiment], runs_per_job: int,
                  gpu_runs_per_job: int | str = "auto",
                  gpu_memory_gb: float = 40.0) -> list[LockstepGroup]:
    """The workflow's training jobs: the lockstep groups (`lockstep_groups`), where those of
    small lockstep programs go several to a job, trained one after the other.

    A program (the runs sharing a `lockstep_key`) with at most `runs_per_job` runs is small
    unless its engine sends it to a device in groups; small programs of one engine and data
    model are packed into jobs of up to `runs_per_job` runs, each program whole, with its
    lockstep groups as they are: `buckets` by program, so that a new program changes only the
    job it falls into. A job's numbers are those of its groups trained apart; what it saves
    is a job's start-up, and reading a data file its groups share, once for each group
    (about 3 s a job on the paper config). A group that is a job of its own keeps its name.
    """
    groups = lockstep_groups(experiments, runs_per_job, gpu_runs_per_job, gpu_memory_gb)
    programs: dict[tuple, list[LockstepGroup]] = {}
    for group in groups:
        programs.setdefault(lockstep_key(group.runs[0].config), []).append(group)
    jobs, small = [], {}
    for key, members in programs.items():
        first = members[0].runs[0].config
        runs = sum(len(g.runs) for g in members)
        if runs > runs_per_job or choose(first)[0].device_groups(first):
            jobs += members
        else:
            small.setdefault((choose(first)[0].name, first.data.kind), []).append(
                (key, members))
    for kind, entries in small.items():
        entries.sort(key=lambda entry: entry[1][0].paths[0])
        tag = digest(list(kind), 8)
        for bits, bundle in buckets(entries, runs_per_job, key=lambda entry: entry[0],
                                    weight=lambda entry: sum(len(g.runs) for g in entry[1])):
            members = [g for _, group in bundle for g in group]
            jobs.append(members[0] if len(members) == 1 else LockstepGroup(
                f"{tag}_p{bits}", tuple(r for g in members for r in g.runs),
                tuple(len(g.runs) for g in members)))
    return jobs


def unfinished(jobs: list) -> list:
    """The jobs (training or data) with a file still to make."""
    return [job for job in jobs if not all(os.path.exists(p) for p in job.paths)]


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


def any_device_groups(experiments: dict[str, Experiment]) -> bool:
    """Whether some run goes to a device in a group sized by its memory."""
    return any(choose(r.config)[0].device_groups(r.config)
               for e in experiments.values() for r in e.runs)


def asks_for_cuda(experiments: dict[str, Experiment]) -> int:
    """How many distinct runs ask for a CUDA device (train.device: cuda or cuda:N); a run two
    experiments share counts once, as it trains once."""
    return len({r.path for e in experiments.values() for r in e.runs
                if r.config.train.device != "cpu"})


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

    def memory_mb(self) -> int:
        """Its largest data set's estimate, and the interpreter (data sets are drawn one at a
        time)."""
        largest = max(DATA_MODELS[r.data.kind].memory(r.data).total for r in self.runs)
        return int(largest / 2**20) + 500


def data_groups(datasets: dict[str, RunConfig], per_job: int) -> list[DataGroup]:
    """Data sets packed into jobs of up to `per_job`: drawing one takes milliseconds, starting
    a job a second. `buckets` by path, so the packing follows from the config alone and a new
    data set changes only the job it falls into; the workflow marks the files updatable and a
    job writes only the missing ones, so a regrouped data set is never rewritten."""
    return [DataGroup(f"b{bits}", tuple(datasets[p] for p in part))
            for bits, part in buckets(sorted(datasets), per_job, key=lambda p: p)]


def check_config_file(path: str) -> None:
    """A workflow config file read strictly: duplicate keys and self-referencing aliases are
    errors (Snakemake's own reader keeps the last of two equal keys without a word)."""
    load_yaml(path)


# the workflow's schema (in this checkout, beside the Snakefile)
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def _schema_problem(error) -> tuple[str, str]:
    """(the key, the problem) of a jsonschema error, with a did-you-mean for an unknown key."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        if unknown:
            key = f"{path}.{unknown[0]}" if path else str(unknown[0])
            hint = did_you_mean(str(unknown[0]), known)
            return key, f"is not a key here ({hint}known: {', '.join(known)})"
    return path or "<top level>", error.message


def explain_schema_error(err: Exception) -> str:
    """One line naming the offending key, from Snakemake's schema-validation error."""
    import jsonschema  # lazy: only an invalid config needs it

    inner = err
    while inner is not None and not isinstance(inner, jsonschema.ValidationError):
        inner = inner.__cause__ or inner.__context__
    if inner is None:
        return str(err)
    key, problem = _schema_problem(inner)
    return f"invalid config: config key '{key}': {problem}"


def read_workflow_config(paths: list[str | Path]) -> dict:
    """Workflow config files read as the workflow reads them, without Snakemake: merged in
    order (as `--configfile A B` merges an overlay onto a config), numbers as numbers
    (`config.numbers`), checked against the workflow's schema, its defaults filled in. A run
    config is refused, naming the command that reads it."""
    import jsonschema  # lazy: the schema check reads the workflow's schema only here

    config: dict = {}
    for path in paths:
        raw = load_yaml(path)
        if not isinstance(raw, dict):
            raise ConfigError("<top level>", f"'{path}' must be a mapping of keys to values")
        if "experiments" not in raw and set(raw) <= set(TOP_LEVEL) and len(paths) == 1:
            raise DataFileError(f"'{path}' is one run's config, not a workflow config: train "
                                f"it with `adamgen train {path} --out run.nc`")
        config = merge(config, raw)
    config = numbers(config)
    outputs(config)
    schema = load_yaml(SCHEMA)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(*_schema_problem(error))
    for key, spec in schema["properties"].items():
        if "default" in spec:
            config.setdefault(key, copy.deepcopy(spec["default"]))
    return config


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
        """The fit's file, content-addressed as run files are: named by a hash of its settings
        and its data set, so that a fit is redone exactly when one of them changes (a finished
        fit is kept, as a finished run is)."""
        spec = {"settings": self.settings, "seed": seed,
                "data": self.data_runs[seed].to_dict()["data"]}
        return f"{self.out}/{self.name}/convex/seed{seed}-{digest(spec, 10)}.nc"

    def seed_of(self, fit: str) -> int:
        """The seed of a fit file's stem (`fit_path`)."""
        return int(fit.removeprefix("seed").split("-")[0])

    @property
    def summary_path(self) -> str:
        return f"{self.out}/{self.name}/summary.nc"

    def _dimension(self) -> tuple[int, int]:
        data = next(iter(self.data_runs.values())).data
        return data.n + data.n_test, data.example_size()

    def memory_mb(self) -> int:
        """A fit's memory: its data set, the linear model's Newton step (a D × D Hessian a few
        times over) and the interpreter."""
        examples, D = self._dimension()
        return int((8 * 3 * examples * D + 8 * 4 * D * D) / 2**20) + 500

    def runtime(self) -> int:
        """A fit's runtime request: two gradients of the n examples per step and optimizer, and
        Newton's method (D³), at 1 GFLOP/s (`runtime_minutes`)."""
        examples, D = self._dimension()
        steps = self.settings["steps"] * len(self.settings["optimizers"])
        return runtime_minutes((4 * steps * examples * D + 20 * D**3) / 1e9)


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
            if external.is_import_path(opt):
                raise ConfigError(f"{key}.optimizers.{opt}", "the convex counterpart trains "
                                  "adamgen's own optimizers only")
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
