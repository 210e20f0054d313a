"""The Snakemake workflow on the tiny config: end to end, incremental reruns, invalid configs."""

import base64
import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import conftest
import pytest
import xarray as xr

from adamgen import figures
from adamgen import planner as ex

ROOT = Path(__file__).resolve().parents[1]
TINY = conftest.TINY_WORKFLOW
pytestmark = pytest.mark.slow  # every test here runs Snakemake


snakemake = conftest.snakemake


def planned_outputs(workdir: Path, config: dict) -> list[tuple[str, tuple[str, ...]]]:
    """(rule, outputs) of every job a dry run plans; the target rule has no outputs."""
    proc = snakemake(workdir, config, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    jobs, rule = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            if rule == "all":
                jobs.append(("all", ()))
            rule = header.group(1)
        elif rule and (out := re.match(r"^\s+output: (.+)$", line)):
            paths = [o.split(" (")[0] for o in out.group(1).split(", ")]  # drop " (update)"
            jobs.append((rule, tuple(paths)))
            rule = None
    if rule == "all":
        jobs.append(("all", ()))
    return jobs


def planned(workdir: Path, config: dict) -> set[tuple[str, str]]:
    """(rule, first output) of every job a dry run plans; ('all', '') for the target rule."""
    return {(rule, outputs[0] if outputs else "") for rule, outputs in
            planned_outputs(workdir, config)}


def downstream(config: dict, name: str = "tiny") -> set[tuple[str, str]]:
    """The aggregation, table and figure jobs of an experiment, and the target rule."""
    experiment = ex.plan(config)[name]
    base = f"results/test/{name}"
    jobs = {("aggregate", f"{base}/summary.nc"), ("make_tables", f"{base}/tables/final.csv"),
            ("claims", "results/test/claims.md"), ("all", "")}
    for kind in figures.FIGURES.values():
        for figure in kind.stems(experiment):
            jobs.add((f"plot_{kind.name}", f"{base}/figures/{figure}.png"))
    return jobs


def runs_where(config: dict, **coords) -> set[tuple[str, str]]:
    runs = ex.plan(config)["tiny"].runs
    return {("train", r.path) for r in runs
            if all(r.coords[k] == v for k, v in coords.items())}


@pytest.fixture
def finished(tiny_workflow):
    """The tiny workflow, run once to completion (shared with the cluster test)."""
    return tiny_workflow


def test_the_workflow_produces_summary_tables_and_figures(finished):
    results = finished / "results" / "test" / "tiny"
    summary = xr.open_dataset(results / "summary.nc", engine="netcdf4")
    assert list(summary["final_test_error"].dims) == ["optimizer", "batch_size", "weight_decay",
                                                      "seed"]
    assert summary["optimizer"].values.tolist() == ["adam", "adamw", "gd"]
    assert int(summary.attrs["runs"]) == len(ex.plan(TINY)["tiny"].runs) == 14
    assert (summary["status"] == "completed").sum() == 14
    summary.close()
    table = (results / "tables" / "final.md").read_text()
    assert table.count("\n| adam |") == 4 and "| gd | 20 | 0.0001 | 2/2 |" in table
    assert (results / "tables" / "final.tex").read_text().startswith(r"\begin{tabular}")
    for figure in figures.names(ex.plan(TINY)["tiny"]):
        for suffix in ("png", "pdf"):
            assert (results / "figures" / f"{figure}.{suffix}").stat().st_size > 1000
    logs = list((finished / "results" / "logs" / "runs").rglob("*.log"))
    every = [r for e in ex.plan(TINY).values() for r in e.runs]
    assert len(logs) == len(every) and all("wrote results/runs/" in p.read_text() for p in logs)


def test_the_workflow_fits_the_convex_counterpart_on_the_same_data(finished):
    results = finished / "results" / "test"
    summary = xr.open_dataset(results / "tiny_convex" / "summary.nc", engine="netcdf4")
    assert summary["seed"].values.tolist() == [0, 1]
    assert summary["optimizer"].values.tolist() == ["adam", "gd"]
    summary.close()
    assert (results / "tiny_convex" / "figures" / "convex.png").stat().st_size > 1000
    # no data set of its own: it reads the CNN runs' files
    datasets = {r.data_path for e in ex.plan(TINY).values() for r in e.runs}
    assert len(list((finished / "results" / "data").rglob("*.nc"))) == len(datasets)


def test_the_claims_report_has_every_verdict_and_the_workflow_still_succeeds(finished):
    md = (finished / "results" / "test" / "claims.md").read_text()
    assert "5 holds, 1 fails, 0 inconclusive, 1 not run of 7 claims" in md
    assert "written to fail" in md  # a failing row carries its explanation
    rows = (finished / "results" / "test" / "claims.csv").read_text().splitlines()
    assert rows[0].startswith("id,kind,claim,source") and len(rows) == 8
    assert "<table>" in (finished / "results" / "test" / "claims.html").read_text()


def test_a_changed_claims_file_reruns_only_the_claims(finished, tmp_path):
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text((ROOT / "config" / "claims_tiny.yaml").read_text()
                           .replace('expect: "<= 1"', 'expect: "<= 0.5"'))
    config = {**copy.deepcopy(TINY), "claims": str(claims_file)}
    assert planned(finished, config) == {("claims", "results/test/claims.md"), ("all", "")}


def test_a_local_run_is_not_held_by_snakemakes_job_rate_limit(finished, tmp_path):
    """With one job an hour allowed, the claims job and the target rule would take an hour;
    a local run has no such limit (workflow/rules/common.smk, no_rate_limit_here), so it
    ends in seconds."""
    workdir = tmp_path / "finished"
    shutil.copytree(finished, workdir, symlinks=True)
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text((ROOT / "config" / "claims_tiny.yaml").read_text()
                           .replace('expect: "<= 1"', 'expect: "<= 0.5"'))
    config = {**copy.deepcopy(TINY), "claims": str(claims_file)}
    proc = snakemake(workdir, config, "--cores", "2", "--max-jobs-per-timespan", "1/1h",
                     timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 of 2 steps (100%) done" in proc.stderr


def test_a_finished_workflow_plans_nothing(finished):
    assert planned(finished, TINY) == set()


def test_adding_a_weight_decay_plans_only_its_runs(finished):
    config = copy.deepcopy(TINY)
    config["experiments"]["tiny"]["optimizers"]["adamw"]["grid"]["weight_decay"].append(0.1)
    expected = runs_where(config, optimizer="adamw", weight_decay=0.1) | downstream(config)
    assert len(expected) == 4 + len(downstream(config))
    assert planned(finished, config) == expected


def test_changing_one_optimizers_epochs_plans_only_its_runs(finished):
    config = copy.deepcopy(TINY)
    config["experiments"]["tiny"]["optimizers"]["gd"]["train"] = {"epochs": 30}
    expected = runs_where(config, optimizer="gd") | downstream(config)
    assert planned(finished, config) == expected


def test_changing_a_data_parameter_plans_new_data_and_the_runs_that_use_it(finished):
    config = copy.deepcopy(TINY)
    config["experiments"]["tiny"]["optimizers"]["gd"]["data"] = {"alpha": 0.3}
    gd = [r for r in ex.plan(config)["tiny"].runs if r.coords["optimizer"] == "gd"]
    data = {("dataset", r.data_path) for r in gd}
    assert len(data) == 2  # one per seed
    expected = data | runs_where(config, optimizer="gd") | downstream(config)
    assert planned(finished, config) == expected


def test_the_report_bundles_every_figure_and_table(finished):
    """`snakemake --report` runs clean (reStructuredText errors are printed, not raised: the
    rmed caption's |H_ii| was an undefined substitution) and its introduction names every
    experiment of the config with its description."""
    proc = snakemake(finished, TINY, "--report", "report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERROR" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert "WARNING/2" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    html = (finished / "report.html").read_text()
    for name in [*TINY["experiments"], *TINY["convex"]]:
        assert name in html, name
    assert "tiny benign/harmful phase diagram" in html
    for figure in figures.names(ex.plan(TINY)["tiny"]):
        assert f"{figure}.png" in html
    assert "final.csv" in html and "Zou et al. Fig. 2" in html
    assert "claims.html" in html and "0 \\u00b7 claims" in html  # the first category
    # the claims page is embedded as a data: URI, so its thumbnails are embedded in it too:
    # a relative image path would not resolve inside the report
    (page,) = [base64.b64decode(m).decode() for m in re.findall(
        r"data:text/html;charset=utf8;filename=claims.html;base64,([A-Za-z0-9+/=]+)", html)]
    assert page.count('<img src="data:image/png;base64,') >= 3
    assert not re.findall(r'<img src="(?!data:)', page)


def _broken(change) -> dict:
    config = copy.deepcopy(TINY)
    change(config["experiments"]["tiny"])
    return config


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda e: e["optimizers"].update(adamm=e["optimizers"].pop("adam")),
         "config key 'experiments.tiny.optimizers.adamm': is not an optimizer (did you mean "
         "'adam'?"),
        (lambda e: e["grid"].update(batch_size=[20, 3]),
         "config key 'train.batch_size' = 3: must divide data.n = 20 [experiment 'tiny'"),
        (lambda e: e["base"]["model"].update(widht=4),
         "config key 'model.widht': unknown key for model name 'two_layer_cnn' (known: name, "
         "q, m, c, sigma_0"),
        (lambda e: e["optimizers"]["adam"]["optimizer"].update(lr="1e-3 or so"),
         "config key 'optimizer.lr' = '1e-3 or so': must be a number"),
        (lambda e: e["grid"].update(batchsize=[20]),
         "config key 'experiments.tiny.grid.batchsize': is not a grid axis (did you mean "
         "'batch_size'?"),
        (lambda e: e["optimizers"]["gd"]["optimizer"].update(lr=-0.5),
         "config key 'optimizer.lr' = -0.5: must be > 0"),
    ],
    ids=["misspelled-optimizer", "batch-not-dividing-n", "unknown-key", "text-float",
         "unknown-axis", "negative-lr"],
)
def test_an_invalid_config_fails_before_any_job(tmp_path, change, fragment):
    proc = snakemake(tmp_path, _broken(change), "--cores", "1")
    assert proc.returncode != 0
    assert fragment in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_the_workflow_is_lint_clean(tmp_path):
    proc = snakemake(tmp_path, TINY, "--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr
    fmt = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"],
                         cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr


# --- lockstep jobs (runs_per_job > 1) -------------------------------------------------------

# the tiny experiment (14 runs) and its convex counterpart, four runs per job
LOCKSTEP = {**TINY, "experiments": {"tiny": TINY["experiments"]["tiny"]}, "runs_per_job": 4}


@pytest.fixture(scope="module")
def finished_lockstep(tmp_path_factory):
    return conftest.complete_workflow(tmp_path_factory, "lockstep", LOCKSTEP)


def test_lockstep_jobs_train_several_runs_each(finished_lockstep):
    groups = ex.lockstep_groups(ex.plan(LOCKSTEP), 4)
    assert len(groups) < 14 and max(len(g.runs) for g in groups) == 4
    assert any(len(g.data_paths) == 2 for g in groups)  # a job may span seeds
    training = ex.training_jobs(ex.plan(LOCKSTEP), 4)
    assert len(training) <= len(groups)
    for job in training:  # small programs several to a job (planner.training_jobs)
        log = (finished_lockstep / f"results/logs/train/tiny/{job.name}.log").read_text()
        assert log.count("wrote results/runs/") == len(job.runs)


def test_lockstep_jobs_give_the_numbers_of_one_job_per_run(finished, finished_lockstep):
    sizes = {p: len(g.runs) for g in ex.lockstep_groups(ex.plan(LOCKSTEP), 4) for p in g.paths}
    assert sorted(set(sizes.values())) == [2, 4]
    for run in ex.plan(TINY)["tiny"].runs:
        a = xr.open_dataset(finished / run.path, engine="netcdf4")
        b = xr.open_dataset(finished_lockstep / run.path, engine="netcdf4")
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
        assert b.attrs["runs_in_lockstep"] == sizes[run.path]
        a.close()
        b.close()


def test_a_finished_lockstep_workflow_plans_nothing(finished_lockstep):
    assert planned(finished_lockstep, LOCKSTEP) == set()


def test_adding_a_run_to_a_lockstep_grid_redoes_no_finished_run(finished_lockstep, tmp_path):
    import hashlib
    import shutil

    workdir = tmp_path / "copy"
    shutil.copytree(finished_lockstep, workdir, symlinks=True)
    config = copy.deepcopy(LOCKSTEP)
    config["experiments"]["tiny"]["optimizers"]["adamw"]["grid"]["weight_decay"].append(0.1)
    new = {path for _, path in runs_where(config, optimizer="adamw", weight_decay=0.1)}
    jobs = [(rule, set(out)) for rule, out in planned_outputs(workdir, config)
            if rule.startswith("train_")]
    assert set().union(*(out for _, out in jobs)) >= new
    assert all(out & new for _, out in jobs)  # every planned training job has a new run
    assert len(jobs) == 2  # one per batch size of adamw: a job spans the seeds

    def digest(path):
        return hashlib.sha256((workdir / path).read_bytes()).hexdigest()

    old = {r.path: digest(r.path) for r in ex.plan(LOCKSTEP)["tiny"].runs}
    proc = snakemake(workdir, config, "--cores", "2", *sorted(new))  # the training jobs only
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {path: digest(path) for path in old} == old  # finished runs untouched
    assert all((workdir / path).exists() for path in new)
    assert planned(workdir, config) == downstream(config)  # what is left: the aggregation


def _extended(change) -> dict:
    config = copy.deepcopy(LOCKSTEP)
    change(config["experiments"]["tiny"]["optimizers"])
    return config


@pytest.mark.parametrize("change", [
    lambda o: o["adamw"]["grid"]["weight_decay"].append(0.1),
    lambda o: o.update(amsgrad={"optimizer": {"lr": 1.0e-3}, "grid": {"weight_decay": [0.01]}}),
], ids=["one more weight decay", "one more optimizer"])
def test_extending_a_lockstep_grid_plans_exactly_the_jobs_of_its_new_runs(finished_lockstep,
                                                                        change):
    """The first-hour issue's case: adding one weight decay planned 24 jobs, among them a job
    with no missing output whose packing had moved ("Params have changed"), and the summaries
    of an experiment that had not changed (its runs were touched). Jobs are cut by hash
    buckets (planner.buckets) and only jobs with a missing file get a rule: a dry run plans
    the jobs that hold a new run, the changed experiment's summary, tables and figures and
    the claims, nothing else; every other job keeps its runs and its name."""
    config = _extended(change)
    old = {job.name: job.paths for job in ex.training_jobs(ex.plan(LOCKSTEP), 4)}
    new_runs = ({r.path for r in ex.plan(config)["tiny"].runs}
                - {r.path for r in ex.plan(LOCKSTEP)["tiny"].runs})
    jobs = ex.training_jobs(ex.plan(config), 4)
    touched = {job.name for job in jobs if set(job.paths) & new_runs}
    assert new_runs and touched
    # a job without a new run is an old job, or a part of the old job that the new runs fell
    # into (a bucket that grew past runs_per_job splits): its runs are finished either way
    grown = [paths for paths in old.values()
             if any(set(paths) & set(job.paths) for job in jobs if job.name in touched)]
    for job in jobs:
        if job.name not in touched:
            assert (old.get(job.name) == job.paths
                    or any(set(job.paths) <= set(paths) for paths in grown)), job.name
    expected = {(f"train_{job.name}", job.paths[0]) for job in jobs if job.name in touched}
    assert planned(finished_lockstep, config) == expected | downstream(config)


def test_two_configs_keep_their_own_claims_and_share_their_runs(finished, tmp_path):
    """A named config writes under results/<name>/; another config in the same directory
    (the tiny one's `tiny` experiment alone, unnamed like the default config) writes under
    results/ and trains nothing: its runs are the named config's files. Both claims pages
    stay."""
    import shutil

    workdir = tmp_path / "two"
    shutil.copytree(finished, workdir, symlinks=True)
    before = (workdir / "results" / "test" / "claims.md").read_text()
    other = {"experiments": {"tiny": copy.deepcopy(TINY["experiments"]["tiny"])},
             "claims": TINY["claims"]}
    assert not any(rule.startswith("train") for rule, _ in planned_outputs(workdir, other))
    proc = snakemake(workdir, other, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "results" / "test" / "claims.md").read_text() == before
    mine = (workdir / "results" / "claims.md").read_text()
    assert mine != before and "experiment 'tiny_e7' not in config" in mine
    assert (workdir / "results" / "tiny" / "summary.nc").exists()  # its own summary
    assert (workdir / "results" / "test" / "tiny" / "summary.nc").exists()  # the other's


def test_a_config_name_that_is_a_shared_folder_is_refused(tmp_path):
    proc = snakemake(tmp_path, {**TINY, "name": "runs"}, "--dry-run")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config key 'name'" in out and "runs" in out, out[-2000:]
