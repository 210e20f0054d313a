"""`adamgen plan` and `adamgen status`: a workflow config validated and planned without
Snakemake, and a run's progress read from its files and job logs."""

import copy
import time
from pathlib import Path

import conftest
import pytest
import yaml

from adamgen import planner, progress
from adamgen.cli import main

TINY = conftest.TINY_WORKFLOW
GROUPED = {**copy.deepcopy(TINY), "runs_per_job": 4}


def _write(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _rows(report: str) -> dict[str, list[str]]:
    """The report's table rows (cells apart by two spaces or more) by their first cell."""
    import re

    rows = [re.split(r"\s{2,}", line.strip()) for line in report.splitlines() if line.strip()]
    return {row[0]: row for row in rows}


def test_plan_validates_a_workflow_config_without_snakemake_and_names_the_key(tmp_path,
                                                                             capsys):
    """Only `snakemake -n` could validate a workflow config; `adamgen plan` does, with the
    same schema and the same did-you-mean as the workflow (a top-level typo had none)."""
    bad = copy.deepcopy(TINY)
    bad["experiment"] = bad.pop("experiments")
    assert main(["plan", _write(tmp_path, bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adamgen: error: config key 'experiment': is not a key here (did "
                          "you mean 'experiments'?")
    assert main(["plan", str(conftest.ROOT / "config" / "runs" / "zou_e1_adam.yaml")]) == 2
    assert "is one run's config, not a workflow config" in capsys.readouterr().err
    assert main(["plan", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plan_says_what_a_fresh_directory_would_train(tmp_path, capsys):
    path = _write(tmp_path, GROUPED)
    assert main(["plan", path, "--cores", "2", "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    experiments = planner.plan(GROUPED)
    for name, experiment in experiments.items():
        runs = str(len(experiment.runs))
        assert rows[name][1:4] == [runs, "0", runs], out
        assert out.count("made: no summary yet") >= len(experiments)
    jobs = planner.training_jobs(experiments, 4)
    distinct = str(len({r.path for e in experiments.values() for r in e.runs}))
    assert rows["all (distinct runs)"][1:5] == [distinct, "0", distinct, str(len(jobs))], out
    assert "on 2 cores" in out and "the config is valid" in out


def test_plan_and_status_follow_the_files_and_the_job_logs(tmp_path):
    """Half the runs of each job present, one job running (its log says 3 min 20 s left),
    one failed: the plan counts what is left and why each summary is redone; status says per
    experiment what is done, running, waiting and failed, and the time left."""
    path = _write(tmp_path, GROUPED)
    experiments = planner.plan(GROUPED)
    jobs = planner.unfinished(planner.training_jobs(experiments, 4))
    present = set()
    for job in jobs:
        for run in job.paths[: len(job.paths) // 2]:
            (tmp_path / run).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / run).write_text("")
            present.add(run)
    owner = {}
    for name, experiment in experiments.items():
        for run in experiment.runs:
            owner.setdefault(run.path, name)
    jobs = [j for j in jobs if not all((tmp_path / p).exists() for p in j.paths)]
    running, failed = jobs[0], jobs[1]
    for job, text in ((running, "12:00:01 adamgen: epoch 4/20 (20%), 1 s, 900 steps/s, about "
                                "3 min 20 s left\n"),
                      (failed, "12:00:01 adamgen: error: data file 'x' is not readable\n")):
        log = tmp_path / progress.log_path(job, owner[job.paths[0]])
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text)
    status = progress.status_report([path], tmp_path, cores=2, now=time.time() + 20)
    rows = _rows(status)
    mine = owner[running.paths[0]]
    assert int(rows[mine][3]) >= 1  # runs of the running job
    assert rows[mine][6].startswith("about 3 min"), status
    assert "failed jobs (their logs):" in status and str(progress.log_path(
        failed, owner[failed.paths[0]])) in status
    for name, experiment in experiments.items():
        done = sum(r.path in present for r in experiment.runs)
        assert rows[name][2] == str(done), status
    later = progress.status_report([path], tmp_path, now=time.time() + progress.STALE_S + 60)
    assert "1 training jobs running" not in later  # a log untouched that long: not running
    report = progress.plan_report([path], 2, tmp_path)
    for name, experiment in experiments.items():
        left = sum(r.path not in present for r in experiment.runs)
        assert _rows(report)[name][3] == str(left)


def test_status_counts_each_waiting_jobs_start_up_in_the_time_left(tmp_path):
    """The tiny config's runs train in a fraction of a second each: 'about 0 s' left was
    printed while its 16 jobs still had to start (about 3 s each on the development
    machine). Time left is at least the waiting jobs' start-up shared over the cores."""
    path = _write(tmp_path, TINY)
    status = progress.status_report([path], tmp_path, cores=2)
    rows = _rows(status)
    assert "about 0 s" not in status, status
    for name, experiment in planner.plan(TINY).items():
        runs = {r.path for r in experiment.runs}
        jobs = len(runs)  # one job a run (runs_per_job 1), every one waiting
        left = progress._seconds(rows[name][6])
        assert left >= planner.JOB_OVERHEAD_S * jobs / 2, status


@pytest.mark.slow
def test_plan_after_a_finished_run_and_after_one_more_weight_decay(tiny_workflow, tmp_path):
    """After the tiny workflow: every run present, every summary up to date. With one more
    weight decay: exactly its runs to train, and the summary of the one experiment redone."""
    report = progress.plan_report([_write(tmp_path, TINY)], 2, tiny_workflow)
    rows = _rows(report)
    for name in TINY["experiments"]:
        assert rows[name][3] == "0" and report.count("up to date") >= len(TINY["experiments"])
    more = copy.deepcopy(TINY)
    more["experiments"]["tiny"]["optimizers"]["adamw"]["grid"]["weight_decay"].append(0.1)
    rows = _rows(progress.plan_report([_write(tmp_path, more)], 2, tiny_workflow))
    assert rows["tiny"][3] == "4" and "redone: 4 of its runs to train" in " ".join(rows["tiny"])
    assert rows["tiny_e7"][3] == "0" and "up to date" in " ".join(rows["tiny_e7"])
