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


def test_a_job_trains_its_lockstep_groups_in_turn_with_their_numbers_apart(tiny, tmp_path,
                                                                          monkeypatch):
    """A job of several small lockstep programs (planner.training_jobs) trains them one after
    the other: each run file holds what its group gives trained on its own, a data file the
    groups share is read once, and sizes that do not add up to the run files are refused."""
    import pytest
    import xarray as xr

    a, b = tiny(seed=0), tiny(seed=1)  # one program, two data sets
    c = tiny(seed=0, optimizer={"name": "adam", "lr": 2e-3})  # another program
    paths = {}
    for seed in (0, 1):
        paths[seed] = str(tmp_path / f"data{seed}.nc")
        datafile.save(data.generate(a.data, seed), paths[seed])
    reads = []
    load = datafile.load
    monkeypatch.setattr(datafile, "load", lambda path: reads.append(path) or load(path))
    together = [str(tmp_path / f"{k}.nc") for k in "abc"]
    runs = dict(zip(together, (a, b, c), strict=True))
    data_paths = dict(zip(together, (paths[0], paths[1], paths[0]), strict=True))
    with pytest.raises(ValueError, match="lockstep groups"):
        jobs.train_missing(runs, together, data_paths, chunks=[2, 2])
    assert jobs.train_missing(runs, together, data_paths, chunks=[2, 1]) == together
    assert sorted(reads) == sorted(paths.values())  # seed 0's file once, for both groups
    apart = [str(tmp_path / f"apart_{k}.nc") for k in "abc"]
    for outs in (apart[:2], apart[2:]):
        jobs.train_missing({o: runs[t] for o, t in zip(apart, together, strict=True)}, outs,
                           {o: data_paths[t] for o, t in zip(apart, together, strict=True)})
    for x, y in zip(together, apart, strict=True):
        with xr.open_dataset(x) as one, xr.open_dataset(y) as other:
            xr.testing.assert_identical(one.drop_attrs(), other.drop_attrs())
            assert one.attrs["runs_in_lockstep"] == other.attrs["runs_in_lockstep"]


def test_small_lockstep_programs_go_several_to_a_job_each_whole():
    """The paper config's training jobs: the lockstep groups as they are (the torch engine's
    CPU jobs stop at 16 runs), small programs several to a job, whole, of one engine and data
    model, up to runs_per_job runs; a group alone in its job keeps its name."""
    from adamgen import planner
    from adamgen.config import load_yaml, lockstep_key
    from adamgen.engines import choose

    config = load_yaml(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    planned = planner.plan(config)
    groups = planner.lockstep_groups(planned, config["runs_per_job"])
    training = planner.training_jobs(planned, config["runs_per_job"])
    assert len(training) < len(groups) / 2
    assert (sorted(tuple(r.path for r in part) for job in training for part in job.parts())
            == sorted(tuple(g.paths) for g in groups))
    names = {g.name for g in groups}
    job_of = {path: job for job in training for path in job.paths}
    for job in training:
        parts = job.parts()
        if len(parts) == 1:
            assert job.name in names and not job.chunks
        else:
            assert len(job.runs) <= config["runs_per_job"]
            assert len({(choose(p[0].config)[0].name, p[0].config.data.kind)
                        for p in parts}) == 1
        assert job.threads == max(choose(p[0].config)[0].threads(len(p)) for p in parts)
    programs = {}
    for group in groups:
        programs.setdefault(lockstep_key(group.runs[0].config), []).append(group)
    for members in programs.values():  # a program's groups share a job, or have one each
        jobs_of = {job_of[g.paths[0]].name for g in members}
        assert len(jobs_of) == 1 or jobs_of == {g.name for g in members}
    assert any(len(job.parts()) > 1 and len(job.data_paths) > 1 for job in training)


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


def test_training_jobs_share_the_cores_start_longest_first_after_every_data_set():
    """The paper config's jobs: one thread each where there are more jobs than cores (side by
    side, planner.job_threads), the engine's threads when a job has the machine or a cluster
    node to itself; the torch engine's CPU jobs stop at 16 runs; priorities follow run-steps
    and stay below the data rules' (workflow/rules/data.smk: 1000)."""
    from pathlib import Path

    from adamgen import planner
    from adamgen.config import load_yaml
    from adamgen.engines import choose
    from adamgen.engines.dense import CPU_GROUP

    root = Path(__file__).resolve().parents[1]
    config = load_yaml(root / "config" / "paper.yaml")
    groups = planner.lockstep_groups(planner.plan(config), config["runs_per_job"])
    engines = {g.name: choose(g.runs[0].config)[0].name for g in groups}
    fast = [g for g in groups if engines[g.name] == "fast"]
    dense = [g for g in groups if engines[g.name] == "torch"]
    assert fast and dense and max(len(g.runs) for g in fast) > CPU_GROUP
    assert max(len(g.runs) for g in dense) == CPU_GROUP < config["runs_per_job"]
    assert {planner.job_threads(g, len(groups), 2) for g in groups} == {1}
    big = max(fast, key=lambda g: len(g.runs))
    assert planner.job_threads(big, 1, 16) == 16 and planner.job_threads(big, 3, 16) == 5
    assert planner.job_threads(big, len(groups), None) == big.threads == len(big.runs)
    assert planner.job_threads(dense[0], 1, 16) == 1  # the torch engine's CPU jobs: one
    steps = {g.name: sum(r.config.train.epochs * r.config.steps_per_epoch for r in g.runs)
             for g in groups}
    by_steps = sorted(groups, key=lambda g: steps[g.name])
    assert [g.priority for g in by_steps] == sorted(g.priority for g in groups)
    assert by_steps[0].priority < by_steps[-1].priority < 1000


def test_the_estimate_shares_every_job_out_among_its_experiments(tmp_path):
    """benchmarks/bench_engine.py --estimate: every run of the config is counted once, for the
    first experiment that plans it, with its run-steps."""
    import sys
    from pathlib import Path

    import yaml
    from conftest import TINY_WORKFLOW

    from adamgen import planner

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    import bench_engine

    config = {**TINY_WORKFLOW, "runs_per_job": 4}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    rows = bench_engine.estimate(str(path), 0.05)
    owner = {}
    for name, experiment in planner.plan(config).items():
        for run in experiment.runs:
            owner.setdefault(run.path, (name, run.config))
    want = {}
    for name, run in owner.values():
        want[name] = want.get(name, 0) + run.train.epochs * run.steps_per_epoch
    got = {}
    for row in rows:
        got[row["experiment"]] = got.get(row["experiment"], 0) + row["run_steps"]
        assert row["run_steps_per_s"] > 0 and row["hours"] > 0
    assert got == want and sum(r["runs"] for r in rows) == len(owner)
