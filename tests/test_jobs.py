"""Workflow jobs: a lockstep job trains only what is missing and keeps what is finished."""

import hashlib
import os
from pathlib import Path

from adamgen import data, datafile, jobs


def test_a_job_trains_the_missing_runs_and_keeps_the_finished_ones(tiny, tmp_path):
    a, b = tiny(seed=0), tiny(seed=0, optimizer={"name": "adam", "lr": 2e-3})
    data_path = tmp_path / "data.nc"
    datafile.save(data.generate(a.data, 0), data_path)
    outs = [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")]
    runs = dict(zip(outs, (a, b), strict=True))
    data_paths = dict.fromkeys(outs, str(data_path))
    assert jobs.train_missing(runs, outs[:1], data_paths) == outs[:1]
    digest = hashlib.sha1(Path(outs[0]).read_bytes()).hexdigest()
    os.utime(outs[0], (0, 0))
    os.utime(data_path)  # the data set was regenerated after the run

    assert jobs.train_missing(runs, outs, data_paths) == outs[1:]
    assert hashlib.sha1(Path(outs[0]).read_bytes()).hexdigest() == digest  # not redone
    assert os.path.getmtime(outs[0]) >= os.path.getmtime(data_path)  # but current again
    # every output present: nothing to train, and no error
    assert jobs.train_missing(runs, outs, data_paths) == []


def test_jobs_read_the_plan_their_workflow_saved_and_only_for_their_config(tmp_path,
                                                                         monkeypatch):
    """Planning the paper config takes about a second, and every training job planned it again
    to find its runs; now the workflow's main process saves its plan and a job reads it, keyed
    by the config and by adamgen's code (a plan made by other code is never read)."""
    import copy

    from conftest import TINY_WORKFLOW

    from adamgen import planner

    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(TINY_WORKFLOW)
    experiments = planner.plan(config)
    planner.save_plan(config, experiments)
    assert len(list(planner.PLAN_CACHE.glob("plan-*.pickle"))) == 1
    calls = []
    real = planner.plan
    monkeypatch.setattr(planner, "plan", lambda c: calls.append(c) or real(c))
    runs = planner.planned_runs(config)
    assert calls == [] and set(runs) == {r.path for e in experiments.values() for r in e.runs}
    other = copy.deepcopy(config)
    other["experiments"]["tiny"]["grid"]["seed"] = [0, 1, 2]
    assert len(planner.planned_runs(other)) > len(runs) and len(calls) == 1  # planned here
    monkeypatch.setattr(planner, "_code_digest", lambda: "other code")
    planner.planned_runs(config)
    assert len(calls) == 2  # another version of adamgen plans for itself
