"""`adamgen plan` and `adamgen status`: what a workflow config will do before it runs, and how
far it has got while it runs.

    adamgen plan config/paper.yaml --cores 2    per experiment: runs, those present, those to
                                                train, the jobs that train them, the estimated
                                                core-minutes; which summaries are redone, why
    adamgen status config/paper.yaml            per experiment: runs done, running, left, and
                                                the time left, from the training jobs' logs

Both read the config as the workflow does (`planner.read_workflow_config`), plan it with the
same packing into jobs, and look at the files under the working directory: a run is present
when its file exists. Times are `Engine.seconds` estimates (made on the development machine;
`benchmarks/bench_engine.py --estimate` measures another), and, for running jobs, what their
logs say is left.
"""

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataFileError
from .planner import (
    JOB_OVERHEAD_S,
    RESULTS,
    Experiment,
    LockstepGroup,
    available,
    outputs,
    plan,
    plan_convex,
    read_workflow_config,
    training_jobs,
)
from .trainer import duration

# a job whose log has not changed for this long is taken as not running (a workflow job logs
# its progress every few seconds between chunks of at most a few minutes)
STALE_S = 15 * 60
_LEFT = re.compile(r"about (.+) left$")


def log_path(job: LockstepGroup, experiment: str, grouped: bool = True) -> str:
    """A training job's log, as the workflow names it: a job of several runs under its first
    run's experiment (rules train_<group>), a job of one run by the run (rule train)."""
    if not grouped:
        return f"{RESULTS}/logs/runs/{job.paths[0].removeprefix(RESULTS + '/runs/')[:-3]}.log"
    return f"{RESULTS}/logs/train/{experiment}/{job.name}.log"


@dataclass
class _Job:
    job: LockstepGroup
    missing: list[str]
    seconds: float  # estimated, for its missing runs
    log: Path
    state: str = "waiting"  # waiting, running, failed or done
    left_s: float | None = None  # what its log says is left of its current group


@dataclass
class _Plan:
    config: dict
    experiments: dict[str, Experiment]
    unavailable: dict[str, str]
    convex: dict
    owner: dict[str, str]  # run path → the first experiment that holds it
    jobs: list[_Job] = field(default_factory=list)


def _prepare(paths: list[str], root: Path) -> _Plan:
    config = read_workflow_config(paths)
    experiments, unavailable = available(plan(config))
    owner: dict[str, str] = {}
    for name, experiment in experiments.items():
        for run in experiment.runs:
            owner.setdefault(run.path, name)
    out = _Plan(config, experiments, unavailable, plan_convex(config), owner)
    grouped = config["runs_per_job"] > 1
    jobs = training_jobs(experiments, config["runs_per_job"], config["gpu_runs_per_job"],
                         config["gpu_memory_gb"]) if grouped else [
        LockstepGroup(run.path, (run,))  # one job per run (rule train)
        for run in {r.path: r for e in experiments.values() for r in e.runs}.values()]
    for job in jobs:
        missing = [p for p in job.paths if not (root / p).exists()]
        if missing:
            log = root / log_path(job, owner[job.paths[0]], grouped)
            out.jobs.append(_Job(job, missing, job.seconds(set(missing)), log))
    return out


def _shares(p: _Plan) -> dict[str, float]:
    """Each experiment's share of the estimated seconds left: a job's time split by the
    run-steps of its missing runs, a run counting for the first experiment that holds it."""
    out: dict[str, float] = {}
    runs = {r.path: r for e in p.experiments.values() for r in e.runs}
    for j in p.jobs:
        steps = {path: runs[path].config.train.epochs * runs[path].config.steps_per_epoch
                 for path in j.missing}
        total = sum(steps.values()) or 1
        for path, s in steps.items():
            out[p.owner[path]] = out.get(p.owner[path], 0.0) + j.seconds * s / total
    return out


def _summary_reason(p: _Plan, name: str, root: Path, to_train: int) -> str:
    experiment = p.experiments[name]
    summary = root / experiment.summary_path
    if not summary.exists():
        return "made: no summary yet"
    if to_train:
        return f"redone: {to_train} of its runs to train"
    made = summary.stat().st_mtime
    newer = sum((root / r.path).stat().st_mtime > made for r in experiment.runs)
    if newer:
        return f"redone: {newer} run files newer than it"
    import xarray as xr  # lazy: only to read which runs a summary holds

    with xr.open_dataset(summary, engine="netcdf4") as ds:
        held = {str(v) for v in ds["run_path"].values.ravel() if str(v)}
    if held != {r.path for r in experiment.runs}:
        return "redone: its grid changed"
    return "up to date"


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if k in right else c.ljust(w)
                      for k, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def plan_report(paths: list[str], cores: int = 2, root: str | Path = ".") -> str:
    """What `snakemake --cores N` would do with the config now, per experiment."""
    root = Path(root)
    p = _prepare(paths, root)
    shares = _shares(p)
    rows = [["experiment", "runs", "present", "to train", "jobs", "core-min", "summary"]]
    for name, experiment in p.experiments.items():
        paths_ = {r.path for r in experiment.runs}
        present = sum((root / path).exists() for path in paths_)
        jobs = sum(bool(paths_ & set(j.missing)) for j in p.jobs)
        rows.append([name, str(len(paths_)), str(present), str(len(paths_) - present),
                     str(jobs), _minutes(shares.get(name, 0.0)),
                     _summary_reason(p, name, root, len(paths_) - present)])
    for name, convex in p.convex.items():
        fits = [convex.fit_path(seed) for seed in convex.seeds]
        made = sum((root / f).exists() for f in fits)
        summary = "up to date" if made == len(fits) and (root / convex.summary_path).exists() \
            else "made: fits to make" if made < len(fits) else "made: no summary yet"
        rows.append([f"{name} (convex)", f"{len(fits)} fits", str(made),
                     str(len(fits) - made), "-", "-", summary])
    for name, reason in p.unavailable.items():
        rows.append([name, "-", "-", "-", "-", "-", f"not planned: {reason}"])
    unique = {r.path for e in p.experiments.values() for r in e.runs}
    present = sum((root / path).exists() for path in unique)
    total = sum(j.seconds for j in p.jobs)
    longest = max((j.seconds for j in p.jobs), default=0.0)
    rows.append(["all (distinct runs)", str(len(unique)), str(present),
                 str(len(unique) - present), str(len(p.jobs)), _minutes(total), ""])
    wall = max(total / max(1, cores), longest)
    lines = [f"{', '.join(map(str, paths))}: {len(p.experiments)} experiments"
             f"{f', {len(p.convex)} convex' if p.convex else ''}; the config is valid",
             *_table(rows, {1, 2, 3, 4, 5}), "",
             f"Training: about {_minutes(total)} core-minutes, so about {duration(wall)} on "
             f"{cores} cores (the longest job {duration(longest)}); estimated from the speed of "
             "this project's development machine (benchmarks/bench_engine.py --estimate "
             "measures this one)."]
    return "\n".join(lines)


def _log_state(job: _Job, now: float) -> None:
    """Read a waiting job's log: running (recently written, no error), failed, or not
    started; and what its last progress line says is left."""
    if not job.log.exists():
        return
    text = job.log.read_text(errors="replace")
    if "adamgen: error:" in text:
        job.state = "failed"
        return
    age = now - job.log.stat().st_mtime
    if age > STALE_S:
        return
    job.state = "running"
    for line in reversed(text.splitlines()):
        m = _LEFT.search(line)
        if m:
            job.left_s = max(0.0, _seconds(m.group(1)) - age)
            break


def _seconds(text: str) -> float:
    """The inverse of trainer.duration: '12 s', '3 min 20 s', '2 h 05 min'."""
    units = {"h": 3600, "min": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+) (h|min|s)\b", text)))


def status_report(paths: list[str], root: str | Path = ".", cores: int = 2,
                  now: float | None = None) -> str:
    """How far a run of the config has got, per experiment, from its files and job logs."""
    root, now = Path(root), time.time() if now is None else now
    p = _prepare(paths, root)
    for job in p.jobs:
        _log_state(job, now)
    rows = [["experiment", "runs", "done", "running", "left", "failed", "time left"]]
    waiting = [j for j in p.jobs if j.state == "waiting"]
    queued = sum(j.seconds + JOB_OVERHEAD_S for j in waiting) / max(1, cores)
    for name, experiment in p.experiments.items():
        mine = {r.path for r in experiment.runs}
        done = sum((root / path).exists() for path in mine)
        by_state = {s: [j for j in p.jobs if j.state == s and mine & set(j.missing)]
                    for s in ("running", "failed", "waiting")}
        count = {s: sum(len(mine & set(j.missing)) for j in jobs) for s, jobs in
                 by_state.items()}
        if done == len(mine):
            left = "done"
        elif by_state["failed"] and not by_state["running"] and not by_state["waiting"]:
            left = "stopped (a job failed)"
        else:
            running = [j.left_s for j in by_state["running"] if j.left_s is not None]
            estimate = max(running, default=0.0) + (queued if by_state["waiting"] else 0.0)
            # a running job that has not yet logged what is left: no estimate
            left = f"about {duration(max(1.0, estimate))}" if estimate else "under a minute"
        rows.append([name, str(len(mine)), str(done), str(count["running"]),
                     str(count["waiting"]), str(count["failed"]), left])
    lines = _table(rows, {1, 2, 3, 4, 5})
    failed = [j for j in p.jobs if j.state == "failed"]
    if failed:
        lines += ["", "failed jobs (their logs):", *(f"  {j.log.relative_to(root)}"
                                                     for j in failed)]
    running = [j for j in p.jobs if j.state == "running"]
    lines += ["", f"{len(running)} training jobs running, {len(waiting)} waiting, "
                  f"{len(failed)} failed; time left: running jobs from their logs, the rest "
                  f"estimated on {cores} cores."]
    if not p.jobs:
        lines[-1] = "every run is trained."
    return "\n".join(lines)


def check_paths(paths: list[str]) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise DataFileError(f"config file '{path}' does not exist")


def produces_table(paths: list[str]) -> str:
    """What a workflow config writes, per experiment, as the README's Markdown table: runs,
    seeds, tables and figures (from the plan and `figures.names`, as the workflow's rules
    name them). tests/test_readme.py checks the README's copy for the default config."""
    from . import figures  # lazy: the figure registry reads matplotlib's names only here

    config = read_workflow_config(paths)
    out = outputs(config)
    experiments, unavailable = available(plan(config))
    rows = ["| experiment | runs | seeds | `tables/` | `figures/` (each .png and .pdf) |",
            "| --- | --- | --- | --- | --- |"]
    for name, e in experiments.items():
        seeds = len(e.axes.get("seed", [0]))
        names = ", ".join(f"`{n}`" for n in figures.names(e))
        rows.append(f"| `{name}` | {len(e.runs)} | {seeds} | `final.md`, `.csv`, `.tex` | "
                    f"{names} |")
    for name, c in plan_convex(config).items():
        rows.append(f"| `{name}` | convex fits | {len(c.seeds)} | none | `convex` |")
    for name, why in unavailable.items():
        rows.append(f"| `{name}` | not planned: {why} | | | |")
    return "\n".join([f"Under `{out}/`:", "", *rows])
