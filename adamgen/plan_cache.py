"""The plan a workflow's main process leaves for its training jobs (`.snakemake/adamgen/`).

Planning the paper config takes about a second; every training job would otherwise plan the
whole config again to find its own runs. The main process writes, for each config, every run
it planned: the run file's path and the run's resolved config, as JSON with a SHA-256 of its
contents. A job reads back only its own runs, parses each config and checks that it names the
path it is filed under (run paths are content-addressed, `adamgen.identity`).

It is a cache: anything wrong with it (missing, unreadable, damaged, of another format,
written before a data file appeared so that it lacks a job's runs) means "plan again", with
one line in the job's log saying why. JSON can only hold data, so a damaged byte cannot turn
it into objects; the checksum catches the damage that still parses.
"""

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from .config import RunConfig, parse_run_config
from .errors import AdamgenError, DataFileError
from .planner import Experiment, plan, run_path

log = logging.getLogger("adamgen")

PLAN_CACHE = Path(".snakemake") / "adamgen"
FORMAT = "adamgen plan 2"


def plan_file(config: dict) -> Path:
    """The config's plan file: named by a digest of the config (the plan follows from it and
    from which data files exist, which the jobs check run by run)."""
    key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return PLAN_CACHE / f"plan-{key[:16]}.json"


def _checksum(runs: dict) -> str:
    return hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()


def save(config: dict, experiments: dict[str, Experiment]) -> str | None:
    """Write the plan of `config` for its jobs (atomically; every start of the main process
    writes it anew, so that it always holds what that process planned). Returns a line for
    the log when it cannot be written (the jobs then plan for themselves), else None."""
    runs = {r.path: r.config.to_dict() for e in experiments.values() for r in e.runs}
    text = json.dumps({"format": FORMAT, "sha256": _checksum(runs), "runs": runs})
    path = plan_file(config)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as err:  # e.g. .snakemake/adamgen is a file
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        return (f"cannot save the plan for the training jobs in {path} ({err.strerror or err}); "
                "each job plans the config itself")
    return None


def _read(path: Path) -> dict[str, Any]:
    """The saved runs (path → config dict), or a ValueError saying what is wrong."""
    try:
        saved = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ValueError("there is none") from None
    except Exception as err:  # a cache: whatever is wrong with it means "plan again"
        raise ValueError(f"it is not readable ({type(err).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError("it is of another format")
    runs = saved.get("runs")
    if not isinstance(runs, dict) or saved.get("sha256") != _checksum(runs):
        raise ValueError("its contents do not match their checksum")
    return runs


def _parse(path: str, raw: Any) -> RunConfig:
    """A saved run, checked against the path it is filed under."""
    try:
        run = parse_run_config(raw)
    except AdamgenError as err:
        raise ValueError(f"the run of {path} does not parse ({err})") from None
    if run_path(run) != path:
        raise ValueError(f"the run filed under {path} is another run")
    return run


def planned_runs(config: dict, paths: list[str]) -> dict[str, RunConfig]:
    """The runs of `config` at `paths` (a job's outputs): from the plan its workflow saved
    (`save`), else planned here."""
    where = plan_file(config)
    try:
        saved = _read(where)
        missing = [p for p in paths if p not in saved]
        if missing:
            raise ValueError(f"it lacks {missing[0]} (it was saved before that run was "
                             "planned)")
        return {p: _parse(p, saved[p]) for p in paths}
    except ValueError as err:
        if where.exists() or "none" not in str(err):
            log.info("plan cache %s: %s; planning the config again", where, err)
    runs = {r.path: r.config for e in plan(config).values() for r in e.runs}
    unknown = [p for p in paths if p not in runs]
    if unknown:
        raise DataFileError(f"the config plans no run at {unknown[0]}: was it changed while "
                            "the workflow ran? Start the workflow again")
    return {p: runs[p] for p in paths}
