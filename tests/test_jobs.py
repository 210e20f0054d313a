"""Workflow jobs: a lockstep job trains only what is missing and keeps what is finished."""

import hashlib
import json
import os
from pathlib import Path

from adamgen import data, datafile, jobs, planner


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
    # nor touched: a touched run file made every summary that holds it look out of date
    assert os.path.getmtime(outs[0]) == 0
    # every output present: nothing to train, and no error
    assert jobs.train_missing(runs, outs, data_paths) == []


def test_a_group_killed_between_its_file_writes_resumes_from_its_checkpoint(tiny, tmp_path,
                                                                          monkeypatch):
    """The reliability issue's case: a kill between the run-file writes of one packed group
    retrained the rest of the group from epoch 0 (the checkpoint was named after the first
    missing file) and left the group's checkpoint behind forever. The checkpoint is the
    group's: the rerun resumes from it, writes only the missing files (the same numbers as an
    undisturbed job) and removes it once every file of the group exists."""
    import pytest
    import xarray as xr

    from adamgen import runfile, trainer

    runs_ = [tiny(seed=s, optimizer={"name": "adam", "lr": 2e-3},
                  train={"epochs": 40, "checkpoint_every": 10}) for s in (0, 1, 2)]
    outs = [str(tmp_path / f"run{k}.nc") for k in range(3)]
    runs = dict(zip(outs, runs_, strict=True))
    reference = [str(tmp_path / f"ref{k}.nc") for k in range(3)]
    jobs.train_missing(dict(zip(reference, runs_, strict=True)), reference,
                       dict.fromkeys(reference))
    saves, real_save = [], runfile.save

    def killed_after_one(result, out):
        if saves:
            raise KeyboardInterrupt  # the kill, after the group's first file
        saves.append(out)
        real_save(result, out)

    epochs_trained = []
    real_run = trainer._Lockstep.run
    monkeypatch.setattr(trainer._Lockstep, "run", lambda self, p: epochs_trained.append(
        self.done) or real_run(self, p))
    monkeypatch.setattr(runfile, "save", killed_after_one)
    monkeypatch.setattr(trainer, "CHUNK_RUN_STEPS", 10)
    with pytest.raises(KeyboardInterrupt):
        jobs.train_missing(runs, outs, dict.fromkeys(outs))
    saved = jobs.checkpoint_path(outs[0])
    assert Path(outs[0]).exists() and not Path(outs[1]).exists() and saved.exists()
    monkeypatch.setattr(runfile, "save", real_save)
    first = Path(outs[0]).read_bytes()
    assert jobs.train_missing(runs, outs, dict.fromkeys(outs)) == outs[1:]
    assert epochs_trained == [0, 30]  # resumed at its last checkpoint, not from epoch 0
    assert Path(outs[0]).read_bytes() == first and not saved.exists()
    for mine, ref in zip(outs, reference, strict=True):
        with xr.open_dataset(mine) as a, xr.open_dataset(ref) as b:
            xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    saved.write_bytes(b"a checkpoint left by an older version")
    assert jobs.train_missing(runs, outs, dict.fromkeys(outs)) == []
    assert not saved.exists()  # every file of the group exists: the checkpoint goes


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


def _saved_plan(tmp_path, monkeypatch):
    """The tiny workflow's plan saved as its main process saves it, and a counter of the
    plans made afterwards."""
    import copy

    from conftest import TINY_WORKFLOW

    from adamgen import plan_cache

    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(TINY_WORKFLOW)
    experiments = planner.plan(config)
    assert plan_cache.save(config, experiments) is None
    calls = []
    real = plan_cache.plan
    monkeypatch.setattr(plan_cache, "plan", lambda c: calls.append(c) or real(c))
    paths = sorted({r.path for e in experiments.values() for r in e.runs})
    return config, paths, calls


def test_jobs_read_their_runs_from_the_plan_their_workflow_saved(tmp_path, monkeypatch):
    """Planning the paper config takes about a second, and every training job planned it again
    to find its runs; the workflow's main process saves its plan and a job reads its own runs
    from it, each checked against the path it is filed under."""
    from adamgen import plan_cache

    config, paths, calls = _saved_plan(tmp_path, monkeypatch)
    runs = plan_cache.planned_runs(config, paths[:3])
    assert calls == [] and list(runs) == paths[:3]
    assert all(planner.run_path(run) == path for path, run in runs.items())
    other = {**config, "experiments": {"tiny": {**config["experiments"]["tiny"],
                                                "grid": {"seed": [5]}}}}
    planned = planner.plan(other)["tiny"].runs[0].path
    assert plan_cache.planned_runs(other, [planned])[planned].seed == 5
    assert len(calls) == 1  # another config: planned here


def test_a_plan_saved_before_a_run_was_planned_is_planned_again(tmp_path, monkeypatch, caplog):
    """The reliability issue's case: a CIFAR experiment is not planned while its files are
    missing, the plan is saved, the files are added, and every job of the new runs failed
    with a KeyError on every rerun (the saved plan was never rewritten). A job now checks
    that the plan holds its runs, and the main process writes the plan at every start."""
    from adamgen import plan_cache

    config, paths, calls = _saved_plan(tmp_path, monkeypatch)
    saved = plan_cache.plan_file(config)
    kept = {k: v for k, v in plan_cache._read(saved).items() if k != paths[0]}
    saved.write_text(json.dumps({"format": plan_cache.FORMAT,
                                 "sha256": plan_cache._checksum(kept), "runs": kept}))
    with caplog.at_level("INFO", logger="adamgen"):
        runs = plan_cache.planned_runs(config, paths[:2])
    assert list(runs) == paths[:2] and len(calls) == 1
    assert f"it lacks {paths[0]}" in caplog.text and "planning the config again" in caplog.text
    assert plan_cache.save(config, planner.plan(config)) is None  # rewritten at every start
    plan_cache.planned_runs(config, paths[:2])
    assert len(calls) == 1


def test_a_damaged_plan_cache_means_plan_again_whatever_the_damage(tmp_path, monkeypatch,
                                                                  caplog):
    """A changed byte in the old pickle made every training job fail forever, and 22 % of
    random damage raised exceptions the loader did not catch. The cache is JSON with a
    checksum: every flip, truncation and insertion below ends in the right runs, planned
    again where the damage shows."""
    import random

    from adamgen import plan_cache

    config, paths, calls = _saved_plan(tmp_path, monkeypatch)
    saved = plan_cache.plan_file(config)
    good = saved.read_bytes()
    expected = plan_cache.planned_runs(config, paths[:2])
    rng = random.Random(0)
    damaged = 0
    for trial in range(300):
        data = bytearray(good)
        at = rng.randrange(len(data))
        kind = trial % 3
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data = data[:at]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        saved.write_bytes(bytes(data))
        before = len(calls)
        assert plan_cache.planned_runs(config, paths[:2]) == expected
        damaged += len(calls) > before
    assert damaged >= 290  # the rest changed bytes that JSON reads the same (whitespace)
    saved.unlink()
    saved.parent.rmdir()
    saved.parent.write_text("a file where the cache's directory belongs")
    line = plan_cache.save(config, planner.plan(config))
    assert line.startswith(f"cannot save the plan for the training jobs in {saved}")
    assert plan_cache.planned_runs(config, paths[:1]) == {paths[0]: expected[paths[0]]}


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
